//! `brindle-ipam`, the IPAM plugin (Calico's `calico-ipam`): one IPv4 address per container,
//! recorded under the handle `<network name>.<container id>` so that DEL releases exactly what
//! ADD took (CNI spec 1.0.0, "IP Allocation Delegation").

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipam::{AutoAssignArgs, Ipam, IpamError};
use serde_json::Value;

use super::cluster::{datastore_error, node_name, open_datastore, pools_for, read_pools};
use super::entry::{ip_version_field, Request};
use super::gc::{release_stale_addresses, ValidAttachments};
use super::spec::{code, CniError, CniResult, Command, ResultIp};
use super::status;

/// Calico's IPAM attribute names (libcalico-go `ipam.Attribute*`), plus the container id.
const ATTR_NODE: &str = "node";
const ATTR_NAMESPACE: &str = "namespace";
const ATTR_POD: &str = "pod";
const ATTR_CONTAINER_ID: &str = "containerID";

/// The IPAM handle of a container on a network (calico-ipam's `<network>.<container id>`).
pub fn handle_id(network: &str, container_id: &str) -> String {
    format!("{network}.{container_id}")
}

pub fn handle(req: &Request) -> Result<Value, CniError> {
    if req.invocation.command == Command::Status {
        // Before opening the store: an unreachable store is STATUS's answer, not its error.
        return status::ready(&req.conf).map(|()| Value::Null);
    }
    let store = open_datastore(&req.conf)?;
    let ipam = Ipam::new(store.clone());
    let handle = handle_id(&req.conf.name, &req.invocation.container_id);
    match req.invocation.command {
        Command::Add => {
            let ip = add(req, &ipam, &*store, &handle)?;
            let result = CniResult {
                cni_version: req.conf.cni_version.clone(),
                ips: vec![ResultIp {
                    version: ip_version_field(&req.conf.cni_version),
                    address: format!("{ip}/32"),
                    gateway: None,
                    interface: None,
                }],
                ..CniResult::default()
            };
            serde_json::to_value(result).map_err(|e| {
                CniError::new(code::IO_FAILURE, "cannot encode the result").with_details(e)
            })
        }
        Command::Del => {
            // An unknown handle releases nothing and succeeds: DEL may run any number of times.
            let released = ipam.release_by_handle(&handle).map_err(ipam_error)?;
            tracing::info!(%handle, ?released, "released");
            Ok(Value::Null)
        }
        Command::Check => {
            check(req, &ipam, &handle)?;
            Ok(Value::Null)
        }
        Command::Gc => {
            let valid = ValidAttachments::of(&req.conf)?;
            let node = node_name(&req.conf)?;
            release_stale_addresses(&*store, &ipam, &req.conf.name, &node, &valid, ATTR_NODE)?;
            Ok(Value::Null)
        }
        Command::Status | Command::Version => Ok(Value::Null),
    }
}

/// ADD: the address the handle already holds (a runtime retrying an ADD gets the same answer,
/// as calico-ipam does), else a new one from the requested pools or all pools.
fn add(
    req: &Request,
    ipam: &Ipam,
    store: &dyn datastore::Datastore,
    handle: &str,
) -> Result<Ipv4Addr, CniError> {
    if let Some(&ip) = ipam.ips_by_handle(handle).map_err(ipam_error)?.first() {
        return Ok(ip);
    }
    let requested = req
        .conf
        .ipam
        .as_ref()
        .map(|i| i.ipv4_pools.clone())
        .unwrap_or_default();
    let pools = pools_for(&read_pools(store)?, &requested)?;
    let host = node_name(&req.conf)?;
    let mut attrs = BTreeMap::from([
        (ATTR_NODE.to_owned(), host.clone()),
        (
            ATTR_CONTAINER_ID.to_owned(),
            req.invocation.container_id.clone(),
        ),
    ]);
    if let (Some(ns), Some(pod)) = (
        req.invocation.args.get("K8S_POD_NAMESPACE"),
        req.invocation.args.get("K8S_POD_NAME"),
    ) {
        attrs.insert(ATTR_NAMESPACE.to_owned(), ns.clone());
        attrs.insert(ATTR_POD.to_owned(), pod.clone());
    }
    // `IP=` in CNI_ARGS (podman's `--ip`): exactly that address, as calico-ipam's AssignIP,
    // from any enabled pool, or an error that names it.
    if let Some(wanted) = req.invocation.args.get("IP") {
        let ip: Ipv4Addr = wanted.trim().parse().map_err(|_| {
            CniError::new(
                code::IPAM,
                format!("CNI_ARGS IP={wanted}: not an IPv4 address"),
            )
        })?;
        let all = pools_for(&read_pools(store)?, &[])?;
        ipam.assign_ip(ip, handle, &attrs, &host, &all)
            .map_err(|e| match e {
                IpamError::Datastore(e) => datastore_error(e),
                other => CniError::new(code::IPAM, format!("CNI_ARGS IP={ip}: {other}")),
            })?;
        return Ok(ip);
    }
    let args = AutoAssignArgs {
        num: 1,
        handle_id: handle.to_owned(),
        attrs,
        host,
        pools,
    };
    let ips = ipam.auto_assign(&args).map_err(ipam_error)?;
    ips.first()
        .copied()
        .ok_or_else(|| CniError::new(code::IPAM, "IPAM assigned no address"))
}

/// CHECK: the handle holds an address, and every address of `prevResult` (when given).
fn check(req: &Request, ipam: &Ipam, handle: &str) -> Result<(), CniError> {
    let held = ipam.ips_by_handle(handle).map_err(ipam_error)?;
    if held.is_empty() {
        return Err(CniError::new(
            code::IPAM,
            format!("IPAM handle {handle} holds no address"),
        ));
    }
    for ip in prev_result_ipv4s(req.conf.prev_result.as_ref())? {
        if !held.contains(&ip) {
            return Err(CniError::new(
                code::IPAM,
                format!("{ip} is not assigned to IPAM handle {handle}"),
            )
            .with_details(format!("the handle holds {held:?}")));
        }
    }
    Ok(())
}

/// The IPv4 addresses of a `prevResult`'s `ips` (without their prefix lengths).
pub fn prev_result_ipv4s(prev: Option<&Value>) -> Result<Vec<Ipv4Addr>, CniError> {
    let Some(prev) = prev else {
        return Ok(Vec::new());
    };
    let result: CniResult = serde_json::from_value(prev.clone()).map_err(|e| {
        CniError::new(code::DECODE_FAILURE, "cannot decode prevResult").with_details(e)
    })?;
    let mut ips = Vec::with_capacity(result.ips.len());
    for ip in &result.ips {
        let addr = ip
            .address
            .split_once('/')
            .map_or(ip.address.as_str(), |(a, _)| a);
        match addr.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(v4)) => ips.push(v4),
            Ok(std::net::IpAddr::V6(_)) => {}
            Err(_) => {
                return Err(CniError::new(
                    code::DECODE_FAILURE,
                    format!("prevResult.ips: bad address {:?}", ip.address),
                ))
            }
        }
    }
    Ok(ips)
}

fn ipam_error(e: IpamError) -> CniError {
    match e {
        IpamError::Datastore(e) => datastore_error(e),
        other => CniError::new(code::IPAM, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_is_network_dot_container_id() {
        assert_eq!(handle_id("net1", "abc123"), "net1.abc123");
    }

    #[test]
    fn prev_result_addresses_are_read_without_prefix_and_junk_is_refused() {
        let prev = serde_json::json!({"cniVersion":"1.0.0","ips":[{"address":"10.20.0.3/32"},{"address":"fd00::1/128"}]});
        assert_eq!(
            prev_result_ipv4s(Some(&prev)).unwrap(),
            vec![Ipv4Addr::new(10, 20, 0, 3)]
        );
        assert!(prev_result_ipv4s(None).unwrap().is_empty());
        let bad = serde_json::json!({"cniVersion":"1.0.0","ips":[{"address":"nope/32"}]});
        assert_eq!(
            prev_result_ipv4s(Some(&bad)).unwrap_err().code,
            code::DECODE_FAILURE
        );
    }

    #[test]
    fn exhaustion_is_an_ipam_error_and_an_unreachable_store_asks_to_retry() {
        let e = ipam_error(IpamError::Exhausted {
            requested: 1,
            assigned: 0,
            strict_affinity: false,
        });
        assert_eq!(e.code, code::IPAM);
        assert!(e.msg.contains("no more free addresses"), "{e}");
        let e = ipam_error(IpamError::Datastore(
            datastore::DatastoreError::Unavailable("down".into()),
        ));
        assert_eq!(e.code, code::TRY_AGAIN_LATER);
    }
}
