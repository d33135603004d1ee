//! Where both plugins find the cluster: the datastore (netconf fields first, as Calico's CNI
//! plugin reads them, then calicoctl's environment), the node's name, and the IP pools an
//! allocation may use.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use datastore::{keys, Datastore, DatastoreConfig, DatastoreError, DatastoreType};
use ipam::PoolInfo;
use resources::{IpPool, Kind, Resource};

use super::spec::{code, CniError, NetConf};

/// Netconf fields Calico's plugin reads for etcd TLS (kept in `NetConf::extra`).
const ETCD_KEY_FILE: &str = "etcd_key_file";
const ETCD_CERT_FILE: &str = "etcd_cert_file";
const ETCD_CA_CERT_FILE: &str = "etcd_ca_cert_file";
/// Brindle's own: the embedded store's file (else `BRINDLE_EMBEDDED_PATH` or the default).
const EMBEDDED_PATH: &str = "embedded_path";

/// The datastore the netconf names; what it leaves out comes from the environment
/// (`DATASTORE_TYPE`, `ETCD_ENDPOINTS`, ... as calicoctl reads them).
pub fn datastore_config(conf: &NetConf) -> Result<DatastoreConfig, CniError> {
    let mut config =
        DatastoreConfig::from_env().map_err(|e| CniError::new(code::INVALID_ENV, e.to_string()))?;
    let invalid = |field: &str, value: &str, why: &str| {
        CniError::new(
            code::INVALID_NETWORK_CONFIG,
            format!("{field} {value:?}: {why}"),
        )
    };
    if let Some(endpoints) = conf
        .etcd_endpoints
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    {
        config.etcd.endpoints = datastore::config::parse_endpoints(endpoints)
            .map_err(|why| invalid("etcd_endpoints", endpoints, &why))?;
        config.datastore_type = DatastoreType::Etcdv3;
    }
    if let Some(kind) = conf.datastore_type.as_deref().filter(|t| !t.is_empty()) {
        config.datastore_type = kind
            .parse()
            .map_err(|why: String| invalid("datastore_type", kind, &why))?;
    }
    let path_field = |name: &str| -> Result<Option<PathBuf>, CniError> {
        match conf.extra.get(name) {
            None => Ok(None),
            Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(PathBuf::from(s))),
            Some(other) => Err(invalid(
                name,
                &other.to_string(),
                "expected a file path string",
            )),
        }
    };
    if let Some(p) = path_field(ETCD_KEY_FILE)? {
        config.etcd.key_file = Some(p);
    }
    if let Some(p) = path_field(ETCD_CERT_FILE)? {
        config.etcd.cert_file = Some(p);
    }
    if let Some(p) = path_field(ETCD_CA_CERT_FILE)? {
        config.etcd.ca_file = Some(p);
    }
    if let Some(p) = path_field(EMBEDDED_PATH)? {
        config.embedded_path = p;
    }
    Ok(config)
}

pub fn open_datastore(conf: &NetConf) -> Result<Arc<dyn Datastore>, CniError> {
    let config = datastore_config(conf)?;
    datastore::open(&config).map_err(datastore_error)
}

/// The datastore open, once it is ready: ClusterInformation `default` with `datastoreReady:
/// false` (`brindlectl datastore migrate lock`, or an upgrade in progress) makes ADD and DEL
/// fail as Calico's plugin does, with "try again later" so that the runtime retries once the
/// lock is lifted. No ClusterInformation yet (no node has started) is not a lock.
pub fn open_ready_datastore(conf: &NetConf) -> Result<Arc<dyn Datastore>, CniError> {
    let store = open_datastore(conf)?;
    let info = crate::ctl::cluster_info::get(store.as_ref()).map_err(|e| {
        CniError::new(code::DATASTORE, "error getting ClusterInformation").with_details(e.0)
    })?;
    if crate::ctl::cluster_info::is_locked(info.as_ref()) {
        return Err(CniError::new(
            code::TRY_AGAIN_LATER,
            "Calico is currently not ready to process requests",
        )
        .with_details(
            "ClusterInformation default has datastoreReady: false (a migration or upgrade in progress; `brindlectl datastore migrate unlock` lifts it)",
        ));
    }
    Ok(store)
}

/// Every datastore failure is reported as the plugin's own code 100 (or "try again later"
/// when the store is unreachable, so that the runtime retries).
pub fn datastore_error(e: DatastoreError) -> CniError {
    let code = match e {
        DatastoreError::Unavailable(_) => code::TRY_AGAIN_LATER,
        _ => code::DATASTORE,
    };
    CniError::new(code, "datastore error").with_details(e)
}

/// netconf `nodename`, else the host name lowercased (Calico's `determineNodename`).
pub fn node_name(conf: &NetConf) -> Result<String, CniError> {
    let name = match conf.nodename.as_deref().filter(|n| !n.is_empty()) {
        Some(name) => name.to_owned(),
        None => crate::host::hostname().ok_or_else(|| {
            CniError::new(
                code::INVALID_NETWORK_CONFIG,
                "nodename is not set and the host name cannot be read",
            )
        })?,
    };
    // Part of datastore keys (IPAM affinities, endpoint names).
    super::names::check_node_name(&name)?;
    Ok(name)
}

/// Every IPPool resource in the store.
pub fn read_pools(store: &dyn Datastore) -> Result<Vec<IpPool>, CniError> {
    let (kvs, _) = store
        .list(&keys::resource_prefix(Kind::IpPool.plural(), None))
        .map_err(datastore_error)?;
    let mut pools = Vec::with_capacity(kvs.len());
    for kv in &kvs {
        match Resource::from_kv(kv) {
            Ok(Resource::IpPool(pool)) => pools.push(pool),
            Ok(_) => {}
            // One bad record must not stop every allocation; it is skipped, loudly.
            Err(e) => tracing::warn!(key = %kv.key, error = %e, "skipping an unreadable IP pool"),
        }
    }
    Ok(pools)
}

/// The pools an allocation may use: those `requested` names (by CIDR or by name, as Calico's
/// `ipv4_pools`), else every IPv4 pool. IPv6 pools are left out (brindle assigns IPv4).
///
/// Node selectors: brindle cannot evaluate a selector against the Node's labels here, so a
/// pool whose selector is not `all()` is used only when the netconf names it explicitly.
pub fn pools_for(all: &[IpPool], requested: &[String]) -> Result<Vec<PoolInfo>, CniError> {
    let chosen: Vec<&IpPool> = if requested.is_empty() {
        all.iter().collect()
    } else {
        let mut chosen = Vec::with_capacity(requested.len());
        for want in requested {
            let found = all
                .iter()
                .find(|p| p.metadata.name == *want || same_cidr(&p.spec.cidr, want));
            match found {
                Some(p) => chosen.push(p),
                None => {
                    return Err(CniError::new(
                        code::INVALID_NETWORK_CONFIG,
                        format!("ipam.ipv4_pools: the pool {want:?} does not exist"),
                    ))
                }
            }
        }
        chosen
    };
    let explicit = !requested.is_empty();
    Ok(chosen
        .into_iter()
        .filter_map(|p| pool_info(p, explicit))
        .collect())
}

fn same_cidr(a: &str, b: &str) -> bool {
    match (a.parse::<ipam::Ipv4Prefix>(), b.parse::<ipam::Ipv4Prefix>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn pool_info(pool: &IpPool, explicit: bool) -> Option<PoolInfo> {
    let (addr, len) = pool.spec.cidr.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let block_size = u8::try_from(pool.spec.effective_block_size()).ok()?;
    let selector = pool
        .spec
        .node_selector
        .as_deref()
        .map(str::trim)
        .unwrap_or("");
    Some(PoolInfo {
        cidr: (addr, len),
        block_size,
        disabled: pool.spec.is_disabled(),
        node_selector_matches: explicit || selector.is_empty() || selector == "all()",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use resources::{IpPoolSpec, Metadata, Object};

    fn pool(name: &str, cidr: &str, selector: Option<&str>) -> IpPool {
        Object::new(
            Metadata::named(name),
            IpPoolSpec {
                cidr: cidr.into(),
                node_selector: selector.map(str::to_owned),
                ..IpPoolSpec::default()
            },
        )
    }

    #[test]
    fn requested_pools_are_found_by_cidr_or_name_and_unknown_ones_are_refused() {
        let all = [
            pool("default-ipv4-ippool", "192.168.0.0/16", None),
            pool("p20", "10.20.0.0/24", None),
        ];
        let by_cidr = pools_for(&all, &["10.20.0.0/24".into()]).unwrap();
        assert_eq!(by_cidr.len(), 1);
        assert_eq!(by_cidr[0].cidr, (Ipv4Addr::new(10, 20, 0, 0), 24));
        assert_eq!(by_cidr[0].block_size, 26);
        assert_eq!(pools_for(&all, &["p20".into()]).unwrap(), by_cidr);
        assert_eq!(pools_for(&all, &[]).unwrap().len(), 2);
        let e = pools_for(&all, &["10.99.0.0/24".into()]).unwrap_err();
        assert_eq!(e.code, code::INVALID_NETWORK_CONFIG);
        assert!(e.msg.contains("10.99.0.0/24"), "{e}");
    }

    #[test]
    fn a_pool_with_a_real_node_selector_is_used_only_when_named() {
        let all = [
            pool("rack1", "10.1.0.0/24", Some("rack == 'one'")),
            pool("any", "10.2.0.0/24", Some("all()")),
        ];
        let implicit = pools_for(&all, &[]).unwrap();
        assert!(!implicit[0].node_selector_matches);
        assert!(implicit[1].node_selector_matches);
        assert!(pools_for(&all, &["rack1".into()]).unwrap()[0].node_selector_matches);
    }

    #[test]
    fn netconf_fields_override_the_environment() {
        let conf = NetConf::parse(
            br#"{"cniVersion":"1.0.0","name":"n","type":"brindle-cni","datastore_type":"etcdv3",
                 "etcd_endpoints":"http://127.0.0.1:12379","etcd_ca_cert_file":"/etc/ca.pem"}"#,
        )
        .unwrap();
        let config = datastore_config(&conf).unwrap();
        assert_eq!(config.datastore_type, DatastoreType::Etcdv3);
        assert_eq!(config.etcd.endpoints, vec!["http://127.0.0.1:12379"]);
        assert_eq!(config.etcd.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        let bad = NetConf::parse(
            br#"{"cniVersion":"1.0.0","name":"n","type":"t","etcd_endpoints":"127.0.0.1:2379"}"#,
        )
        .unwrap();
        let e = datastore_config(&bad).unwrap_err();
        assert_eq!(e.code, code::INVALID_NETWORK_CONFIG);
        assert!(e.msg.contains("etcd_endpoints"), "{e}");
    }
}
