//! The JSON bodies of libnetwork's remote driver and IPAM driver APIs (moby/libnetwork
//! `docs/remote.md` and `docs/ipam.md`), as dockerd sends and expects them, and the checks
//! every value from dockerd goes through before it names an interface or a datastore key.
//!
//! Requests are decoded leniently (unknown fields ignored, missing ones empty) as Go's
//! `encoding/json` does; what a handler uses is validated by the functions below, whose
//! errors name the field and the value.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a handler refuses: the message dockerd shows the user (`{"Err": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DriverError(pub String);

impl DriverError {
    pub fn new(msg: impl Into<String>) -> DriverError {
        DriverError(msg.into())
    }
}

pub type DriverResult<T> = Result<T, DriverError>;

/// `{"Err": "..."}`, the body of every error answer.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    #[serde(rename = "Err")]
    pub err: &'a str,
}

// ---- network driver -----------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct IpamData {
    pub address_space: String,
    pub pool: String,
    pub gateway: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateNetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "Options")]
    #[serde(deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, Value>,
    #[serde(rename = "IPv4Data")]
    #[serde(deserialize_with = "null_as_default")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data")]
    #[serde(deserialize_with = "null_as_default")]
    pub ipv6_data: Vec<IpamData>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NetworkRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct EndpointInterface {
    pub address: String,
    #[serde(rename = "AddressIPv6")]
    pub address_ipv6: String,
    pub mac_address: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateEndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Interface")]
    #[serde(deserialize_with = "null_as_default")]
    pub interface: EndpointInterface,
}

/// DeleteEndpoint, EndpointOperInfo, Join and Leave name the network and the endpoint (Join
/// adds the sandbox, which the driver does not need: dockerd moves the interface itself).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EndpointRequest {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct InterfaceName {
    pub src_name: String,
    pub dst_prefix: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct StaticRoute {
    pub destination: String,
    /// 0: via `NextHop`, 1: connected (on the interface, no next hop).
    pub route_type: u8,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub next_hop: String,
}

pub const ROUTE_CONNECTED: u8 = 1;

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct JoinResponse {
    pub interface_name: InterfaceName,
    pub gateway: String,
    pub static_routes: Vec<StaticRoute>,
}

// ---- IPAM driver --------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RequestPoolRequest {
    pub address_space: String,
    pub pool: String,
    pub sub_pool: String,
    #[serde(deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "V6")]
    pub v6: bool,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct RequestPoolResponse {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    pub pool: String,
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PoolRequest {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AddressRequest {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Options")]
    #[serde(deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
}

/// Go encodes a nil map, slice or pointer as `null`: read as empty.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

// ---- checks -------------------------------------------------------------------------------

/// Docker's network and endpoint ids are 64 lowercase hex digits; anything else is refused
/// before it becomes part of an interface name or a datastore key.
pub fn docker_id<'a>(field: &str, value: &'a str) -> DriverResult<&'a str> {
    let ok = (12..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(value)
    } else {
        Err(DriverError::new(format!(
            "{field}: {:?} is not a Docker id (12 to 64 lowercase hex digits)",
            shorten(value)
        )))
    }
}

/// An IPv4 address with an optional prefix length (`10.1.1.5/32`, `10.1.1.5`).
pub fn ipv4_address(field: &str, value: &str) -> DriverResult<Ipv4Addr> {
    let addr = value.split_once('/').map_or(value, |(a, _)| a);
    let len_ok = value
        .split_once('/')
        .is_none_or(|(_, l)| l.parse::<u8>().is_ok_and(|l| l <= 32));
    match addr.parse::<Ipv4Addr>() {
        Ok(ip) if len_ok => Ok(ip),
        _ => Err(DriverError::new(format!(
            "{field}: {:?} is not an IPv4 address",
            shorten(value)
        ))),
    }
}

/// A value quoted in an error, cut to a length a log line can carry.
pub fn shorten(value: &str) -> String {
    const MAX: usize = 80;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}

/// Decodes a request body; an error names the API call.
pub fn decode<T: for<'de> Deserialize<'de> + Default>(call: &str, body: &[u8]) -> DriverResult<T> {
    // dockerd sends no body at all for calls without arguments.
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| DriverError::new(format!("{call}: cannot decode the request: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_ids_are_hex_and_bounded() {
        let id = "5efe1ee8d2b8a3bf2237a3c41ea32622ac332e844762fa3a2aa2d5b27939494b";
        assert_eq!(docker_id("EndpointID", id).unwrap(), id);
        for bad in [
            "",
            "abc",
            "../../etc/passwd0000",
            &"a".repeat(65),
            "5EFE1EE8D2B8",
        ] {
            let e = docker_id("EndpointID", bad).unwrap_err();
            assert!(e.0.starts_with("EndpointID: "), "{e}");
        }
    }

    #[test]
    fn addresses_take_an_optional_prefix_and_junk_is_named() {
        assert_eq!(
            ipv4_address("Address", "10.1.1.5/32").unwrap(),
            Ipv4Addr::new(10, 1, 1, 5)
        );
        assert_eq!(
            ipv4_address("Address", "10.1.1.5").unwrap(),
            Ipv4Addr::new(10, 1, 1, 5)
        );
        for bad in ["10.1.1.5/33", "fd00::1/64", "x", "10.1.1.5/"] {
            let e = ipv4_address("Interface.Address", bad).unwrap_err();
            assert!(
                e.0.contains("Interface.Address") && e.0.contains(bad),
                "{e}"
            );
        }
        assert!(shorten(&"x".repeat(1000)).len() < 100);
    }

    #[test]
    fn requests_decode_as_dockerd_sends_them() {
        // Captured from dockerd 20.10's CreateNetwork.
        let body = br#"{"NetworkID":"5efe1ee8d2b8a3bf2237a3c41ea32622ac332e844762fa3a2aa2d5b27939494b","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{}},"IPv4Data":[{"AddressSpace":"G","Gateway":"0.0.0.0/0","Pool":"10.1.1.0/24"}],"IPv6Data":[]}"#;
        let r: CreateNetworkRequest = decode("CreateNetwork", body).unwrap();
        assert_eq!(r.ipv4_data[0].pool, "10.1.1.0/24");
        assert_eq!(r.ipv4_data[0].gateway, "0.0.0.0/0");
        let r: RequestPoolRequest = decode(
            "RequestPool",
            br#"{"AddressSpace":"G","Pool":"10.1.1.0/24","SubPool":"","Options":{},"V6":false}"#,
        )
        .unwrap();
        assert_eq!(r.pool, "10.1.1.0/24");
        // Captured from dockerd 20.10's RequestAddress: a nil map is `null`.
        let r: AddressRequest = decode(
            "RequestAddress",
            br#"{"PoolID":"libnetwork-10-1-1-0-24","Address":"","Options":null}"#,
        )
        .unwrap();
        assert!(r.options.is_empty());
        let r: CreateEndpointRequest =
            decode("CreateEndpoint", br#"{"Interface":null,"Options":null}"#).unwrap();
        assert_eq!(r.interface.address, "");
        let empty: PoolRequest = decode("GetCapabilities", b"").unwrap();
        assert_eq!(empty.pool_id, "");
        let e = decode::<PoolRequest>("ReleasePool", b"{\"PoolID\": 7}").unwrap_err();
        assert!(e.0.starts_with("ReleasePool: "), "{e}");
        let join = JoinResponse {
            interface_name: InterfaceName {
                src_name: "tmp0".into(),
                dst_prefix: "cali".into(),
            },
            gateway: "169.254.1.1".into(),
            static_routes: vec![StaticRoute {
                destination: "169.254.1.1/32".into(),
                route_type: ROUTE_CONNECTED,
                next_hop: String::new(),
            }],
        };
        assert_eq!(
            serde_json::to_value(&join).unwrap(),
            serde_json::json!({"InterfaceName":{"SrcName":"tmp0","DstPrefix":"cali"},
                "Gateway":"169.254.1.1",
                "StaticRoutes":[{"Destination":"169.254.1.1/32","RouteType":1}]})
        );
    }
}
