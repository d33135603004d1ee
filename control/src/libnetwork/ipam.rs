//! The IPAM driver (`--ipam-driver calico-ipam`), as Calico's libnetwork plugin behaved:
//!
//! - RequestPool: without `--subnet`, a fixed pool id meaning "any enabled pool"; with
//!   `--subnet`, the IP pool whose CIDR is that subnet, created when there is none. Either
//!   way the answer carries the gateway `0.0.0.0/0`, which stops dockerd from asking for a
//!   gateway address: every workload's gateway is 169.254.1.1, set at Join.
//! - RequestAddress: one address from brindle's IPAM (blocks affine to this node), or the
//!   address `--ip` asked for; returned as a /32.
//! - ReleaseAddress: gives the address back (releasing a free one is not an error).
//!
//! The pool id is the pool's name, which every node resolves in the datastore: a network
//! created on one host allocates from the same pool on every host (global scope).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use datastore::{Datastore, DatastoreError};
use ipam::{AutoAssignArgs, Ipam, IpamError};
use resources::{IpPool, IpPoolSpec, Metadata, Object, Resource};
use serde_json::{json, Value};

use super::types::{
    decode, ipv4_address, shorten, AddressRequest, DriverError, DriverResult, PoolRequest,
    RequestPoolRequest, RequestPoolResponse,
};
use super::Driver;

/// The pool id of a network created without `--subnet` (Calico's name for it).
pub const ANY_POOL_ID: &str = "CalicoPoolIPv4";
/// The address spaces Calico's driver reports; dockerd only passes them back.
pub const LOCAL_ADDRESS_SPACE: &str = "CalicoLocalAddressSpace";
pub const GLOBAL_ADDRESS_SPACE: &str = "CalicoGlobalAddressSpace";
/// The dummy gateway that tells dockerd (and CreateNetwork) that this IPAM driver is ours.
pub const NO_GATEWAY: &str = "0.0.0.0/0";
const GATEWAY_OPTION: &str = "com.docker.network.gateway";
const ADDRESS_TYPE_OPTION: &str = "RequestAddressType";
/// The name of a pool `--subnet` created starts with this (the rest is the CIDR).
pub const CREATED_POOL_PREFIX: &str = "libnetwork-";
/// Calico's IPAM attribute for the node an address is used on.
const ATTR_NODE: &str = "node";

/// The IPAM handle every address this node hands to dockerd is recorded under.
pub fn handle_id(node: &str) -> String {
    format!("libnetwork.{node}")
}

/// Answers one `/IpamDriver.*` call.
pub fn handle(driver: &Driver, call: &str, body: &[u8]) -> DriverResult<Value> {
    match call {
        "GetCapabilities" => Ok(json!({"RequiresMACAddress": false})),
        "GetDefaultAddressSpaces" => Ok(json!({
            "LocalDefaultAddressSpace": LOCAL_ADDRESS_SPACE,
            "GlobalDefaultAddressSpace": GLOBAL_ADDRESS_SPACE,
        })),
        "RequestPool" => request_pool(driver, &decode(call, body)?)
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null)),
        "ReleasePool" => {
            // The pool belongs to the network, which DeleteNetwork removes.
            let _: PoolRequest = decode(call, body)?;
            Ok(json!({}))
        }
        "RequestAddress" => {
            let ip = request_address(driver, &decode(call, body)?)?;
            Ok(json!({"Address": format!("{ip}/32"), "Data": {}}))
        }
        "ReleaseAddress" => release_address(driver, &decode(call, body)?).map(|()| json!({})),
        other => Err(DriverError::new(format!(
            "IpamDriver.{}: not an IPAM driver call",
            shorten(other)
        ))),
    }
}

fn request_pool(driver: &Driver, req: &RequestPoolRequest) -> DriverResult<RequestPoolResponse> {
    if req.v6 {
        return Err(DriverError::new("RequestPool: brindle assigns IPv4 only"));
    }
    if !req.sub_pool.is_empty() {
        return Err(DriverError::new(format!(
            "RequestPool: SubPool {:?}: --ip-range is not supported; addresses come from the whole pool",
            shorten(&req.sub_pool)
        )));
    }
    if let Some(key) = req.options.keys().next() {
        return Err(DriverError::new(format!(
            "RequestPool: option {:?} (--ipam-opt) is not supported",
            shorten(key)
        )));
    }
    let data = BTreeMap::from([(GATEWAY_OPTION.to_owned(), NO_GATEWAY.to_owned())]);
    if req.pool.is_empty() {
        return Ok(RequestPoolResponse {
            pool_id: ANY_POOL_ID.to_owned(),
            pool: NO_GATEWAY.to_owned(),
            data,
        });
    }
    let cidr = cli::host::parse_prefix(&req.pool).map_err(|e| {
        DriverError::new(format!(
            "RequestPool: Pool (--subnet) {:?}: {e}",
            shorten(&req.pool)
        ))
    })?;
    let pool = pool_for_subnet(driver.store.as_ref(), cidr)?;
    Ok(RequestPoolResponse {
        pool_id: pool.metadata.name.clone(),
        pool: cidr.to_string(),
        data,
    })
}

/// The pool whose CIDR is `cidr`; one is created (named after the CIDR, `--subnet` being all
/// dockerd says at this point) when there is none. A pool that overlaps without being equal
/// is refused, as brindlectl refuses it.
fn pool_for_subnet(store: &dyn Datastore, cidr: ipv4net::Ipv4Prefix) -> DriverResult<IpPool> {
    let text = cidr.to_string();
    let pools = read_pools(store)?;
    if let Some(pool) = pools.iter().find(|p| same_cidr(&p.spec.cidr, cidr)) {
        return Ok(pool.clone());
    }
    let name = format!("{CREATED_POOL_PREFIX}{}", text.replace(['.', '/'], "-"));
    let pool: IpPool = Object::new(
        Metadata::named(&name),
        IpPoolSpec {
            cidr: text.clone(),
            ..IpPoolSpec::default()
        },
    );
    resources::validate_pool_against(&pool, &pools)
        .map_err(|e| DriverError::new(format!("RequestPool: Pool (--subnet) {text}: {e}")))?;
    let resource = Resource::from(pool.clone());
    resource
        .validate()
        .map_err(|e| DriverError::new(format!("RequestPool: Pool (--subnet) {text}: {e}")))?;
    match store.create(&resource.key(), &resource.to_stored_json()) {
        // Another node created it at the same moment: the same CIDR, the same name.
        Ok(_) | Err(DatastoreError::AlreadyExists { .. }) => {
            tracing::info!(pool = %name, cidr = %text, "created the IP pool for a Docker network");
            Ok(pool)
        }
        Err(e) => Err(store_error("RequestPool", e)),
    }
}

fn same_cidr(text: &str, cidr: ipv4net::Ipv4Prefix) -> bool {
    cli::host::parse_prefix(text).is_ok_and(|c| c == cidr)
}

pub fn read_pools(store: &dyn Datastore) -> DriverResult<Vec<IpPool>> {
    cli::cni::cluster::read_pools(store).map_err(|e| DriverError::new(e.msg))
}

fn request_address(driver: &Driver, req: &AddressRequest) -> DriverResult<Ipv4Addr> {
    if req.options.get(ADDRESS_TYPE_OPTION).map(String::as_str) == Some(GATEWAY_OPTION) {
        return Err(DriverError::new(
            "RequestAddress: a gateway cannot be chosen: every workload's gateway is 169.254.1.1",
        ));
    }
    let store = driver.store.as_ref();
    let all = read_pools(store)?;
    let ipam = Ipam::new(driver.store.clone());
    let handle = handle_id(&driver.node);
    let attrs = BTreeMap::from([(ATTR_NODE.to_owned(), driver.node.clone())]);
    if !req.address.is_empty() {
        // `docker run --ip`: exactly that address, from any enabled pool (as Calico did).
        let ip = ipv4_address("Address", &req.address)?;
        let pools = cli::cni::cluster::pools_for(&all, &[]).map_err(|e| DriverError::new(e.msg))?;
        ipam.assign_ip(ip, &handle, &attrs, &driver.node, &pools)
            .map_err(|e| ipam_error(&format!("RequestAddress: Address {ip}"), e))?;
        return Ok(ip);
    }
    let requested: Vec<String> = match req.pool_id.as_str() {
        ANY_POOL_ID | "" => Vec::new(),
        name => vec![name.to_owned()],
    };
    let pools = cli::cni::cluster::pools_for(&all, &requested).map_err(|_| {
        DriverError::new(format!(
            "RequestAddress: PoolID {:?}: no such IP pool (was it deleted?)",
            shorten(&req.pool_id)
        ))
    })?;
    let args = AutoAssignArgs {
        num: 1,
        handle_id: handle,
        attrs,
        host: driver.node.clone(),
        pools,
    };
    let ips = ipam
        .auto_assign(&args)
        .map_err(|e| ipam_error("RequestAddress", e))?;
    let ip = ips
        .first()
        .copied()
        .ok_or_else(|| DriverError::new("RequestAddress: IPAM assigned no address"))?;
    tracing::info!(%ip, pool = %req.pool_id, "address assigned for Docker");
    Ok(ip)
}

fn release_address(driver: &Driver, req: &AddressRequest) -> DriverResult<()> {
    let ip = ipv4_address("Address", &req.address)?;
    // dockerd releases the dummy gateway (`0.0.0.0`) when a network goes: nothing was taken.
    if ip.is_unspecified() {
        return Ok(());
    }
    let ipam = Ipam::new(driver.store.clone());
    ipam.release_ips(&[ip])
        .map_err(|e| ipam_error(&format!("ReleaseAddress: Address {ip}"), e))?;
    tracing::info!(%ip, "address released for Docker");
    Ok(())
}

fn ipam_error(what: &str, e: IpamError) -> DriverError {
    DriverError::new(format!("{what}: {e}"))
}

pub fn store_error(what: &str, e: DatastoreError) -> DriverError {
    DriverError::new(format!("{what}: datastore: {e}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::docker::DockerApi;
    use super::*;

    fn driver() -> Driver {
        Driver {
            store: Arc::new(datastore::EmbeddedStore::open_in_memory().unwrap()),
            node: "node-a".into(),
            docker: DockerApi {
                socket: "/nonexistent".into(),
            },
            mtu: 1500,
        }
    }

    fn call(driver: &Driver, call: &str, body: Value) -> DriverResult<Value> {
        handle(driver, call, body.to_string().as_bytes())
    }

    #[test]
    fn a_subnet_makes_a_pool_once_and_its_addresses_come_and_go() {
        let d = driver();
        let req = json!({"AddressSpace": GLOBAL_ADDRESS_SPACE, "Pool": "10.1.1.0/24", "Options": {}, "V6": false});
        let pool = call(&d, "RequestPool", req.clone()).unwrap();
        assert_eq!(pool["PoolID"], "libnetwork-10-1-1-0-24");
        assert_eq!(pool["Pool"], "10.1.1.0/24");
        assert_eq!(pool["Data"][GATEWAY_OPTION], NO_GATEWAY);
        // The same subnet again (another host, or dockerd retrying): the same pool.
        assert_eq!(call(&d, "RequestPool", req).unwrap(), pool);
        assert_eq!(read_pools(d.store.as_ref()).unwrap().len(), 1);

        let first = call(
            &d,
            "RequestAddress",
            json!({"PoolID": pool["PoolID"], "Address": "", "Options": null}),
        )
        .unwrap();
        let text = first["Address"].as_str().unwrap();
        assert!(
            text.starts_with("10.1.1.") && text.ends_with("/32"),
            "{text}"
        );
        let ip: Ipv4Addr = text.trim_end_matches("/32").parse().unwrap();
        let ipam = Ipam::new(d.store.clone());
        let held = ipam.get_assignment_attrs(ip).unwrap().expect("assigned");
        assert_eq!(held.handle_id.as_deref(), Some("libnetwork.node-a"));
        let second = call(&d, "RequestAddress", json!({"PoolID": pool["PoolID"]})).unwrap();
        assert_ne!(first, second);

        call(
            &d,
            "ReleaseAddress",
            json!({"PoolID": pool["PoolID"], "Address": ip.to_string()}),
        )
        .unwrap();
        assert!(ipam.get_assignment_attrs(ip).unwrap().is_none());
        // dockerd releases the dummy gateway when the network goes.
        call(
            &d,
            "ReleaseAddress",
            json!({"PoolID": pool["PoolID"], "Address": "0.0.0.0"}),
        )
        .unwrap();
        // --ip: exactly that address.
        let fixed = call(
            &d,
            "RequestAddress",
            json!({"PoolID": pool["PoolID"], "Address": "10.1.1.77"}),
        )
        .unwrap();
        assert_eq!(fixed["Address"], "10.1.1.77/32");
    }

    #[test]
    fn what_calicos_ipam_refused_is_refused_with_the_field_named() {
        let d = driver();
        for (req, expect) in [
            (json!({"Pool": "10.1.1.1/24"}), "host bits"),
            (
                json!({"Pool": "10.1.1.0/24", "SubPool": "10.1.1.0/25"}),
                "SubPool",
            ),
            (
                json!({"Pool": "10.1.1.0/24", "Options": {"x": "y"}}),
                "option",
            ),
            (json!({"V6": true}), "IPv4"),
        ] {
            let e = call(&d, "RequestPool", req).unwrap_err();
            assert!(e.0.contains(expect), "{e}");
        }
        call(&d, "RequestPool", json!({"Pool": "10.2.0.0/16"})).unwrap();
        let e = call(&d, "RequestPool", json!({"Pool": "10.2.1.0/24"})).unwrap_err();
        assert!(e.0.contains("overlaps"), "{e}");
        let e = call(&d, "RequestAddress", json!({"PoolID": "gone"})).unwrap_err();
        assert!(e.0.contains("PoolID") && e.0.contains("gone"), "{e}");
        let e = call(
            &d,
            "RequestAddress",
            json!({"PoolID": ANY_POOL_ID, "Options": {"RequestAddressType": GATEWAY_OPTION}}),
        )
        .unwrap_err();
        assert!(e.0.contains("gateway"), "{e}");
        let e = call(&d, "ReleaseAddress", json!({"Address": "300.1.1.1"})).unwrap_err();
        assert!(e.0.contains("Address") && e.0.contains("300.1.1.1"), "{e}");
        // Without --subnet: any pool.
        let any = call(&d, "RequestPool", json!({})).unwrap();
        assert_eq!(any["PoolID"], ANY_POOL_ID);
    }
}
