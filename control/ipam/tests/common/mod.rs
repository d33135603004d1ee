//! The shared test support (`control/testkit`), and a single-member etcd as these tests use it.
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
