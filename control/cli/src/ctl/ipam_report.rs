//! The machine-readable report `ipam check -o FILE` writes and `ipam release --from-report`
//! reads, in calicoctl's JSON shape (`CheckReport`, `Allocation`, `HandleInfo`), so that a
//! report from one tool reads as one from the other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version stamped on reports; a report from another version is refused without --force.
pub fn client_version() -> String {
    format!("v{}", env!("CARGO_PKG_VERSION"))
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckReport {
    pub version: String,
    #[serde(rename = "clusterGUID")]
    pub cluster_guid: String,
    #[serde(rename = "datastoreLocked")]
    pub datastore_locked: bool,
    /// ClusterInformation's `resourceVersion` when the report was made.
    #[serde(rename = "clusterInformationRevision")]
    pub cluster_info_revision: String,
    #[serde(rename = "clusterType")]
    pub cluster_type: String,
    /// Address -> its allocations (more than one only in a corrupt datastore).
    pub allocations: BTreeMap<String, Vec<Allocation>>,
    #[serde(rename = "leakedHandles", skip_serializing_if = "Vec::is_empty")]
    pub leaked_handles: Vec<HandleInfo>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One allocated address, cross-referenced with what uses it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Allocation {
    pub ip: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub handle: String,
    #[serde(rename = "sequenceNumber", skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<u64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pod: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub node: String,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub alloc_type: String,
    #[serde(rename = "creationTimestamp", skip_serializing_if = "String::is_empty")]
    pub creation_timestamp: String,
    /// Held by a workload endpoint or a node; false means leaked.
    #[serde(rename = "inUse")]
    pub in_use: bool,
    /// From a block affine to another node.
    #[serde(skip_serializing_if = "is_false")]
    pub borrowed: bool,
    #[serde(rename = "coolingDown", skip_serializing_if = "is_false")]
    pub cooling_down: bool,
    /// Go writes a nil list as `null`; so does this.
    pub owners: Option<Vec<String>>,
}

/// A handle record that no allocation refers to, with the revision it was seen at (it is
/// deleted only if still at that revision).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct HandleInfo {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "UID")]
    pub uid: Option<String>,
    #[serde(rename = "Revision")]
    pub revision: String,
}
