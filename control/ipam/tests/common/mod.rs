//! The shared test support (`control/testkit`), a single-member etcd as these tests use it,
//! and the two backends every IPAM case runs against (also included by perf/tests/ipam_workers.rs).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use datastore::{Datastore, EmbeddedStore, EtcdConfig, EtcdStore};
use ipam::PoolInfo;

pub use testkit::TempDir;

/// A single-member etcd on loopback; killed and its data removed on drop.
pub struct Etcd {
    pub endpoint: String,
    _member: testkit::EtcdMember,
}

impl Etcd {
    pub fn start(label: &str) -> Etcd {
        let member = testkit::start_etcd(&format!("ipam-{label}"));
        Etcd {
            endpoint: member.client_url.clone(),
            _member: member,
        }
    }
}

/// A backend for one test: the store, how a worker process reaches the same data, and what
/// the store needs kept alive.
pub struct Fixture {
    pub store: Arc<dyn Datastore>,
    /// `embedded:PATH` or `etcd:URL`, for `brindle-perf ipam-worker --store` (perf's
    /// ipam_workers test, which shares these fixtures).
    #[allow(dead_code)]
    pub worker_spec: String,
    _keep: Box<dyn std::any::Any>,
}

pub fn embedded(label: &str) -> Fixture {
    let dir = TempDir::new(label);
    let path = dir.path().join("store.redb");
    let store = EmbeddedStore::open(&path).expect("opening the embedded store");
    Fixture {
        store: Arc::new(store),
        worker_spec: format!("embedded:{}", path.display()),
        _keep: Box::new(dir),
    }
}

pub fn etcd(label: &str) -> Fixture {
    let etcd = Etcd::start(label);
    let config = EtcdConfig {
        endpoints: vec![etcd.endpoint.clone()],
        timeout: Duration::from_secs(10),
        ..EtcdConfig::default()
    };
    let store = EtcdStore::connect(config).expect("connecting to etcd");
    Fixture {
        store: Arc::new(store),
        worker_spec: format!("etcd:{}", etcd.endpoint),
        _keep: Box::new(etcd),
    }
}

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn pool(cidr: &str, block_size: u8) -> PoolInfo {
    let (addr, len) = cidr.split_once('/').unwrap();
    PoolInfo {
        cidr: (ip(addr), len.parse().unwrap()),
        block_size,
        disabled: false,
        node_selector_matches: true,
    }
}

pub fn json_at(store: &dyn Datastore, key: &str) -> serde_json::Value {
    let kv = store
        .get(key)
        .unwrap()
        .unwrap_or_else(|| panic!("{key} exists"));
    serde_json::from_slice(&kv.value).unwrap()
}
