//! Rules that involve more than one resource; brindlectl calls them before writing.

use crate::resource::{IpPool, Resource};
use crate::validate::{Errors, ValidationError};

/// Refuses a pool whose CIDR overlaps another pool's (Calico: "IPPool(x) CIDR overlaps with
/// IPPool(y) CIDR"). `existing` may include the pool itself (an update): same name is skipped.
pub fn validate_pool_against(new: &IpPool, existing: &[IpPool]) -> Result<(), ValidationError> {
    let mut errs = Errors::new();
    if let Some(net) = new.spec.network() {
        for other in existing
            .iter()
            .filter(|o| o.metadata.name != new.metadata.name)
        {
            if let Some(o) = other.spec.network() {
                if net.contains(&o.network()) || o.contains(&net.network()) {
                    errs.add(
                        "spec.cidr",
                        &new.spec.cidr,
                        format!(
                            "IPPool({}) CIDR overlaps with IPPool({}) CIDR {}",
                            new.metadata.name, other.metadata.name, other.spec.cidr
                        ),
                    );
                }
            }
        }
    }
    errs.into_result("IPPool", &new.metadata.name)
}

/// Checks that `new` may replace `old`: same kind, name and namespace, and no change to
/// fields Calico makes immutable (an IPPool's `cidr` and `blockSize`; a WorkloadEndpoint's
/// `node`).
pub fn validate_update(old: &Resource, new: &Resource) -> Result<(), ValidationError> {
    let mut errs = Errors::new();
    if old.kind() != new.kind() {
        errs.add(
            "kind",
            new.kind(),
            format!("cannot change kind from {}", old.kind()),
        );
    }
    if old.name() != new.name() {
        errs.add(
            "metadata.name",
            new.name(),
            format!("cannot change name from '{}'", old.name()),
        );
    }
    if old.namespace() != new.namespace() {
        errs.add(
            "metadata.namespace",
            new.namespace().unwrap_or(""),
            "cannot change namespace",
        );
    }
    match (old, new) {
        (Resource::IpPool(o), Resource::IpPool(n)) => {
            // Compare networks, not strings: `10.0.0.0/16` and `10.0.0.0/016` are one pool.
            let same_cidr = match (o.spec.network(), n.spec.network()) {
                (Some(a), Some(b)) => a == b,
                _ => o.spec.cidr == n.spec.cidr,
            };
            if !same_cidr {
                errs.add(
                    "spec.cidr",
                    &n.spec.cidr,
                    format!("IPPool cidr cannot be modified (was {})", o.spec.cidr),
                );
            }
            if o.spec.effective_block_size() != n.spec.effective_block_size() {
                errs.add(
                    "spec.blockSize",
                    n.spec.effective_block_size(),
                    format!(
                        "IPPool blockSize cannot be modified (was {})",
                        o.spec.effective_block_size()
                    ),
                );
            }
        }
        (Resource::WorkloadEndpoint(o), Resource::WorkloadEndpoint(n))
            if o.spec.node != n.spec.node =>
        {
            errs.add(
                "spec.node",
                &n.spec.node,
                format!(
                    "cannot move a workload endpoint to another node (was {})",
                    o.spec.node
                ),
            );
        }
        _ => {}
    }
    errs.into_result(new.kind().as_str(), new.name())
}
