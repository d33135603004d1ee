//! calico-node's environment, honoured by brindle-node so that deployment habits carry over:
//! `NODENAME`, `IP`, `IP_AUTODETECTION_METHOD`, `AS`, `DATASTORE_TYPE`, `ETCD_ENDPOINTS`,
//! `CALICO_IPV4POOL_CIDR`, `CALICO_IPV4POOL_IPIP`, `NO_DEFAULT_POOLS`. Every bad value is an
//! error naming the variable and the value.

use std::net::{Ipv4Addr, UdpSocket};

use crate::host::{self, Ipv4Prefix};

/// How the node finds its own address (`IP_AUTODETECTION_METHOD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Autodetection {
    /// The first address on an interface that is not loopback or a workload/container veth.
    FirstFound,
    /// The first address on an interface whose name matches the regex.
    Interface(String),
    /// The address the kernel would use as source to reach this destination.
    CanReach(Ipv4Addr),
}

/// Where the node's address comes from (`IP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAddress {
    Static(Ipv4Addr, u8),
    Autodetect(Autodetection),
}

/// The IPIP mode of the default pool (`CALICO_IPV4POOL_IPIP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolIpip {
    Never,
    Always,
    CrossSubnet,
}

impl PoolIpip {
    pub fn as_str(self) -> &'static str {
        match self {
            PoolIpip::Never => "Never",
            PoolIpip::Always => "Always",
            PoolIpip::CrossSubnet => "CrossSubnet",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEnv {
    pub node_name: String,
    pub address: NodeAddress,
    pub as_number: Option<u32>,
    pub default_pool: Option<(Ipv4Prefix, PoolIpip)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}={value:?}: {reason}")]
pub struct EnvError {
    pub var: &'static str,
    pub value: String,
    pub reason: String,
}

fn bad(var: &'static str, value: &str, reason: impl Into<String>) -> EnvError {
    EnvError {
        var,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

impl NodeEnv {
    /// Reads the variables through `get` (the process environment, or a map in tests).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<NodeEnv, EnvError> {
        let get = |k: &str| {
            get(k)
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.trim().to_owned())
        };

        let node_name = match get("NODENAME") {
            Some(n) => {
                let ok = n.len() <= 253
                    && n.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.'
                    })
                    && n.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && n.ends_with(|c: char| c.is_ascii_alphanumeric());
                if !ok {
                    return Err(bad(
                        "NODENAME",
                        &n,
                        "must be a DNS subdomain (lowercase letters, digits, '-', '.')",
                    ));
                }
                n
            }
            None => host::hostname()
                .ok_or_else(|| bad("NODENAME", "", "not set and the hostname cannot be read"))?,
        };

        let method = match get("IP_AUTODETECTION_METHOD") {
            None => Autodetection::FirstFound,
            Some(m) => parse_method(&m)?,
        };
        let address = match get("IP").as_deref() {
            None | Some("autodetect") => NodeAddress::Autodetect(method),
            Some(text) => {
                let (addr, len) = match text.split_once('/') {
                    Some((a, l)) => (
                        a,
                        l.parse::<u8>()
                            .ok()
                            .filter(|l| *l <= 32)
                            .ok_or_else(|| bad("IP", text, "prefix length must be 0..32"))?,
                    ),
                    None => (text, 32),
                };
                let ip: Ipv4Addr = addr.parse().map_err(|_| {
                    bad(
                        "IP",
                        text,
                        "expected an IPv4 address (with an optional /len) or 'autodetect'",
                    )
                })?;
                NodeAddress::Static(ip, len)
            }
        };

        let as_number = match get("AS") {
            None => None,
            Some(text) => Some(parse_asn(&text).map_err(|reason| bad("AS", &text, reason))?),
        };

        let no_default_pools = match get("NO_DEFAULT_POOLS").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(bad("NO_DEFAULT_POOLS", other, "expected true or false")),
        };
        let default_pool = if no_default_pools {
            None
        } else {
            let cidr_text =
                get("CALICO_IPV4POOL_CIDR").unwrap_or_else(|| "192.168.0.0/16".to_owned());
            let cidr = host::parse_prefix(&cidr_text)
                .map_err(|e| bad("CALICO_IPV4POOL_CIDR", &cidr_text, e))?;
            // calico-node's default pool is IPIP Always unless told otherwise.
            let ipip = match get("CALICO_IPV4POOL_IPIP").as_deref() {
                None | Some("Always") | Some("always") => PoolIpip::Always,
                Some("Never") | Some("never") | Some("Off") | Some("off") => PoolIpip::Never,
                Some("CrossSubnet") | Some("crosssubnet") | Some("cross-subnet") => {
                    PoolIpip::CrossSubnet
                }
                Some(other) => {
                    return Err(bad(
                        "CALICO_IPV4POOL_IPIP",
                        other,
                        "expected Always, CrossSubnet or Never",
                    ))
                }
            };
            Some((cidr, ipip))
        };

        Ok(NodeEnv {
            node_name,
            address,
            as_number,
            default_pool,
        })
    }
}

fn parse_method(text: &str) -> Result<Autodetection, EnvError> {
    if text == "first-found" {
        return Ok(Autodetection::FirstFound);
    }
    if let Some(re) = text.strip_prefix("interface=") {
        regex::Regex::new(re)
            .map_err(|e| bad("IP_AUTODETECTION_METHOD", text, format!("bad regex: {e}")))?;
        return Ok(Autodetection::Interface(re.to_owned()));
    }
    if let Some(dest) = text.strip_prefix("can-reach=") {
        let ip = dest.parse().map_err(|_| {
            bad(
                "IP_AUTODETECTION_METHOD",
                text,
                "can-reach= needs an IPv4 address",
            )
        })?;
        return Ok(Autodetection::CanReach(ip));
    }
    Err(bad(
        "IP_AUTODETECTION_METHOD",
        text,
        "expected first-found, interface=REGEX or can-reach=ADDR",
    ))
}

/// `64512` or asdot `1.10` (RFC 5396).
fn parse_asn(text: &str) -> Result<u32, String> {
    if let Some((hi, lo)) = text.split_once('.') {
        let hi: u16 = hi
            .parse()
            .map_err(|_| "asdot high part must be 0..65535".to_string())?;
        let lo: u16 = lo
            .parse()
            .map_err(|_| "asdot low part must be 0..65535".to_string())?;
        return Ok((u32::from(hi) << 16) | u32::from(lo));
    }
    text.parse::<u32>()
        .map_err(|_| "expected an AS number 0..4294967295".to_string())
}

/// Interfaces never used for the node address by first-found (calico-node's default skip list:
/// docker, cbr, dummy, virbr, lxcbr, veth, lo, cali, tunl, flannel, kube-ipvs, cni, vxlan...).
const SKIPPED_PREFIXES: [&str; 14] = [
    "lo",
    "docker",
    "cbr",
    "dummy",
    "virbr",
    "lxcbr",
    "veth",
    "cali",
    "tunl",
    "flannel",
    "kube-ipvs",
    "cni",
    "vxlan",
    "ifb",
];

/// Finds the node's address (and the interface holding it, which becomes the uplink).
pub fn autodetect(method: &Autodetection) -> Result<(String, Ipv4Addr, u8), String> {
    let interfaces = host::interface_names();
    let mut candidates = interfaces.iter().filter_map(|name| {
        let facts = host::interface(name).ok()?;
        let (ip, len) = *facts
            .addrs
            .iter()
            .find(|(ip, _)| !ip.is_loopback() && !ip.is_link_local())?;
        Some((name.clone(), ip, len))
    });
    match method {
        Autodetection::FirstFound => candidates
            .filter(|(name, _, _)| !SKIPPED_PREFIXES.iter().any(|p| name.starts_with(p)))
            .min_by(|a, b| a.0.cmp(&b.0))
            .ok_or_else(|| "first-found: no interface with an IPv4 address".into()),
        Autodetection::Interface(re) => {
            let re = regex::Regex::new(re).map_err(|e| e.to_string())?;
            candidates
                .filter(|(name, _, _)| re.is_match(name))
                .min_by(|a, b| a.0.cmp(&b.0))
                .ok_or_else(|| {
                    format!("interface={re}: no matching interface with an IPv4 address")
                })
        }
        Autodetection::CanReach(dest) => {
            // connect(2) on a UDP socket picks the source address without sending anything.
            let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
            sock.connect((*dest, 9))
                .map_err(|e| format!("can-reach={dest}: {e}"))?;
            let local = match sock.local_addr().map_err(|e| e.to_string())?.ip() {
                std::net::IpAddr::V4(ip) => ip,
                other => return Err(format!("can-reach={dest}: source {other} is not IPv4")),
            };
            candidates
                .find(|(_, ip, _)| *ip == local)
                .ok_or_else(|| format!("can-reach={dest}: source {local} is on no interface"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<NodeEnv, EnvError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NodeEnv::from_env(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn calico_node_variables_are_read() {
        let e = env(&[
            ("NODENAME", "node-1"),
            ("IP", "10.0.0.5/24"),
            ("AS", "64513"),
            ("CALICO_IPV4POOL_CIDR", "10.20.0.0/16"),
            ("CALICO_IPV4POOL_IPIP", "CrossSubnet"),
        ])
        .unwrap();
        assert_eq!(e.node_name, "node-1");
        assert_eq!(
            e.address,
            NodeAddress::Static(Ipv4Addr::new(10, 0, 0, 5), 24)
        );
        assert_eq!(e.as_number, Some(64513));
        assert_eq!(
            e.default_pool,
            Some(("10.20.0.0/16".parse().unwrap(), PoolIpip::CrossSubnet))
        );
    }

    #[test]
    fn defaults_follow_calico_node() {
        let e = env(&[("NODENAME", "n")]).unwrap();
        assert_eq!(
            e.address,
            NodeAddress::Autodetect(Autodetection::FirstFound)
        );
        assert_eq!(
            e.default_pool,
            Some(("192.168.0.0/16".parse().unwrap(), PoolIpip::Always))
        );
        assert_eq!(
            env(&[("NODENAME", "n"), ("NO_DEFAULT_POOLS", "true")])
                .unwrap()
                .default_pool,
            None
        );
        assert_eq!(
            env(&[
                ("NODENAME", "n"),
                ("IP_AUTODETECTION_METHOD", "can-reach=10.1.2.3")
            ])
            .unwrap()
            .address,
            NodeAddress::Autodetect(Autodetection::CanReach(Ipv4Addr::new(10, 1, 2, 3)))
        );
        assert_eq!(
            env(&[("NODENAME", "n"), ("AS", "1.10")]).unwrap().as_number,
            Some(65546)
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_value() {
        for (var, value) in [
            ("NODENAME", "Node_1"),
            ("IP", "10.0.0.300"),
            ("IP", "10.0.0.1/40"),
            ("AS", "-5"),
            ("IP_AUTODETECTION_METHOD", "interface=("),
            ("IP_AUTODETECTION_METHOD", "nearest"),
            ("CALICO_IPV4POOL_CIDR", "10.20.0.1/16"),
            ("CALICO_IPV4POOL_IPIP", "Sometimes"),
            ("NO_DEFAULT_POOLS", "maybe"),
        ] {
            let mut vars = vec![("NODENAME", "n"), (var, value)];
            if var == "NODENAME" {
                vars.remove(0);
            }
            let err = env(&vars).unwrap_err();
            assert_eq!((err.var, err.value.as_str()), (var, value), "{err}");
        }
    }

    #[test]
    fn can_reach_finds_the_loopback_source_for_loopback() {
        // 127.0.0.1 is reached from 127.0.0.1 on lo; loopback is excluded from candidates, so
        // the answer is an error that names the source, not a wrong interface.
        let err = autodetect(&Autodetection::CanReach(Ipv4Addr::LOCALHOST)).unwrap_err();
        assert!(err.contains("127.0.0.1"), "{err}");
    }
}
