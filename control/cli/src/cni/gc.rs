//! GC (CNI spec 1.1.0, "GC: Clean up any stale resources"): the runtime lists, in the
//! configuration's `cni.dev/valid-attachments`, every attachment to this network it still
//! has; whatever the plugins hold on this node for any other container of the network goes.
//!
//! `brindle-cni` removes the stale WorkloadEndpoints and their interfaces (a veth's host end, a
//! TAP's registration), then forwards GC to the IPAM plugin, as the spec requires of a plugin
//! that delegates; `brindle-ipam` releases the addresses held under this network's handles
//! (`<network>.<container id>`) on this node by containers not in the list. Every stale item is
//! attempted; the first failure is reported after the rest were tried.

use std::collections::BTreeSet;

use datastore::{keys, Datastore};
use ipam::block::AllocationBlock;
use ipam::Ipam;
use serde_json::Value;

use super::spec::{code, CniError, NetConf};

/// The key of the list; libcni also sends it as `cni.dev/attachments` (the name an earlier
/// draft of the spec used), which is read when the first is absent.
pub const VALID_ATTACHMENTS: &str = "cni.dev/valid-attachments";
const OLD_NAME: &str = "cni.dev/attachments";

/// The attachments the runtime still has: (container id, interface name).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ValidAttachments(BTreeSet<(String, String)>);

impl ValidAttachments {
    /// From the configuration; a GC without the list is refused rather than taken as "none
    /// are valid", which would detach every container of the network.
    pub fn of(conf: &NetConf) -> Result<ValidAttachments, CniError> {
        let invalid = |msg: String| CniError::new(code::INVALID_NETWORK_CONFIG, msg);
        let list = conf
            .extra
            .get(VALID_ATTACHMENTS)
            .or_else(|| conf.extra.get(OLD_NAME))
            .ok_or_else(|| invalid(format!("GC without {VALID_ATTACHMENTS}")))?;
        let Value::Array(items) = list else {
            return Err(invalid(format!("{VALID_ATTACHMENTS} {list}: not an array")));
        };
        let mut valid = BTreeSet::new();
        for item in items {
            let field = |name: &str| match item.get(name) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(invalid(format!(
                    "{VALID_ATTACHMENTS} entry {item}: {name} must be a non-empty string"
                ))),
            };
            valid.insert((field("containerID")?, field("ifname")?));
        }
        Ok(ValidAttachments(valid))
    }

    pub fn has(&self, container_id: &str, ifname: &str) -> bool {
        self.0
            .contains(&(container_id.to_owned(), ifname.to_owned()))
    }

    pub fn has_container(&self, container_id: &str) -> bool {
        self.0.iter().any(|(c, _)| c == container_id)
    }
}

/// brindle-ipam's GC: the handles of `network` on `node` whose container is not valid are
/// released; returns them.
pub fn release_stale_addresses(
    store: &dyn Datastore,
    ipam: &Ipam,
    network: &str,
    node: &str,
    valid: &ValidAttachments,
    node_attr: &str,
) -> Result<Vec<String>, CniError> {
    let prefix = format!("{network}.");
    let (blocks, _) = store
        .list(keys::IPAM_BLOCKS)
        .map_err(super::cluster::datastore_error)?;
    let mut stale = BTreeSet::new();
    for kv in &blocks {
        let Ok(block) = AllocationBlock::decode(&kv.value) else {
            tracing::warn!(key = %kv.key, "GC: skipping an unreadable IPAM block");
            continue;
        };
        for (_, attr) in block.allocated() {
            let Some(container) = attr
                .handle_id
                .as_deref()
                .and_then(|h| h.strip_prefix(&prefix))
            else {
                continue;
            };
            let here = attr.secondary.get(node_attr).map(String::as_str) == Some(node);
            if here && !valid.has_container(container) {
                stale.insert(format!("{prefix}{container}"));
            }
        }
    }
    let mut first_error = None;
    for handle in &stale {
        match ipam.release_by_handle(handle) {
            Ok(released) => tracing::info!(%handle, ?released, "GC released"),
            Err(e) => {
                tracing::warn!(%handle, error = %e, "GC: cannot release");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => {
            Err(CniError::new(code::IPAM, "GC: cannot release every stale address").with_details(e))
        }
        None => Ok(stale.into_iter().collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: &str) -> NetConf {
        NetConf::parse(
            format!(r#"{{"cniVersion":"1.1.0","name":"n","type":"brindle-cni"{extra}}}"#)
                .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn the_valid_list_is_read_under_either_name_and_bad_entries_are_named() {
        let v = ValidAttachments::of(&conf(
            r#","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]"#,
        ))
        .unwrap();
        assert!(v.has("c1", "eth0") && !v.has("c1", "eth1") && v.has_container("c1"));
        assert!(!v.has_container("c2"));
        let old = ValidAttachments::of(&conf(
            r#","cni.dev/attachments":[{"containerID":"c2","ifname":"eth0"}]"#,
        ))
        .unwrap();
        assert!(old.has("c2", "eth0"));
        let e = ValidAttachments::of(&conf("")).unwrap_err();
        assert_eq!(e.code, code::INVALID_NETWORK_CONFIG);
        let e = ValidAttachments::of(&conf(
            r#","cni.dev/valid-attachments":[{"containerID":7,"ifname":"eth0"}]"#,
        ))
        .unwrap_err();
        assert!(e.msg.contains("containerID") && e.msg.contains('7'), "{e}");
        let e = ValidAttachments::of(&conf(r#","cni.dev/valid-attachments":"x""#)).unwrap_err();
        assert!(e.msg.contains("not an array"), "{e}");
    }
}
