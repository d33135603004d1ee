//! `node.toml`, the node's file configuration (`control/src/config.rs`), with its `[hw]`
//! table resolved against the NIC profiles compiled into the node (`control/hwprofile`), as
//! `brindle-node` does at start.
//!
//! Holds for every input: a refused field is named with its value; what is accepted has
//! pools that do not overlap, workloads with distinct interfaces and at least one address
//! each, addresses given to one workload only.

use control::config::{ConfigError, NodeConfig};
use control::hwprofile::ProfileSet;
use std::sync::LazyLock;

static PROFILES: LazyLock<ProfileSet> =
    LazyLock::new(|| ProfileSet::embedded().expect("the embedded NIC profiles load"));

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match NodeConfig::parse(text) {
        Ok(config) => config,
        Err(ConfigError::Field { field, reason, .. }) => {
            assert!(!field.is_empty() && !reason.is_empty());
            return;
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    for (i, pool) in config.pools.iter().enumerate() {
        for other in &config.pools[..i] {
            assert!(!pool.overlaps(other), "{pool} overlaps {other}");
        }
    }
    for (i, w) in config.workloads.iter().enumerate() {
        assert!(!w.ips.is_empty(), "{w:?}");
        for other in &config.workloads[..i] {
            assert_ne!(w.interface, other.interface);
            assert!(
                w.ips.iter().all(|ip| !other.ips.contains(ip)),
                "{w:?} {other:?}"
            );
        }
    }
    for driver in [None, Some("veth"), Some("virtio_net")] {
        if let Err(e) = PROFILES.resolve(driver, config.hw.as_ref(), "node.toml") {
            assert!(!e.to_string().is_empty());
        }
    }
}
