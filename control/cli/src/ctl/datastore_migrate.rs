//! `datastore migrate lock|unlock|export|import` (calicoctl's `commands/datastore/migrate`).
//!
//! calicoctl moves an etcd datastore into Kubernetes; brindle has no Kubernetes datastore, so
//! here the same verbs move one brindle datastore into another (etcd to embedded and back, or
//! a copy of a cluster's state). The file format is calicoctl's: the v3 resources as YAML
//! lists (one per kind, each followed by `---`), `===`, ClusterInformation as JSON, `===`, the
//! IPAM records as JSON (`block_affinities`, `blocks`, `handles`, `config`, each `Key`/`Value`).
//!
//! Differences, each because brindle has no orchestrator behind the datastore: Nodes keep
//! their names (calicoctl renames them to their Kubernetes node names), and WorkloadEndpoints
//! and Profiles are exported too (Kubernetes recreates them after a calicoctl migration; under
//! brindle nothing would, and the addresses they hold would look leaked).

use std::collections::BTreeMap;

use datastore::{keys, Datastore};
use ipam::block::AllocationBlock;
use ipam::records::{BlockAffinity, IpamConfig, IpamHandle, IPAM_CONFIG_KEY};
use resources::{Kind, Resource};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::store::{self, ResourceError};
use super::{cluster_info, crud, CtlError};

/// The kinds exported, in calicoctl's order (tiers before policies, nodes before what
/// names nodes), then brindle's additions.
const EXPORTED: [Kind; 13] = [
    Kind::IpPool,
    Kind::BgpPeer,
    Kind::Tier,
    Kind::GlobalNetworkPolicy,
    Kind::GlobalNetworkSet,
    Kind::HostEndpoint,
    Kind::NetworkPolicy,
    Kind::NetworkSet,
    Kind::Node,
    Kind::BgpConfiguration,
    Kind::FelixConfiguration,
    Kind::Profile,
    Kind::WorkloadEndpoint,
];

/// The built-in tiers every datastore has once written to; they do not make one non-empty.
const BUILT_IN_TIERS: [&str; 3] = ["default", "kube-admin", "kube-baseline"];

pub fn lock(ds: &dyn Datastore, out: &mut String) -> Result<(), CtlError> {
    cluster_info::ensure(ds).map_err(|e| {
        CtlError::new(format!(
            "unable to initialize cluster information for the datastore migration: {}",
            e.0
        ))
    })?;
    cluster_info::set_ready(ds, false)?;
    out.push_str("Datastore locked.\n");
    Ok(())
}

pub fn unlock(ds: &dyn Datastore, out: &mut String) -> Result<(), CtlError> {
    cluster_info::set_ready(ds, true)?;
    out.push_str("Datastore unlocked.\n");
    Ok(())
}

/// One IPAM record as calicoctl's `migrateIPAM` writes it.
#[derive(Debug, Serialize, Deserialize)]
struct KvPair {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value")]
    value: Value,
    #[serde(rename = "TTL", default)]
    ttl: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IpamRecords {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    block_affinities: Vec<KvPair>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    blocks: Vec<KvPair>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    handles: Vec<KvPair>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config: Option<KvPair>,
}

impl IpamRecords {
    fn len(&self) -> usize {
        self.block_affinities.len()
            + self.blocks.len()
            + self.handles.len()
            + usize::from(self.config.is_some())
    }
}

fn pairs(ds: &dyn Datastore, prefix: &str) -> Result<Vec<KvPair>, CtlError> {
    let (kvs, _) = ds
        .list(prefix)
        .map_err(|e| CtlError::new(format!("failed to list {prefix}: {e}")))?;
    kvs.into_iter()
        .map(|kv| {
            let value = serde_json::from_slice(&kv.value)
                .map_err(|e| CtlError::new(format!("stored record {} is not JSON: {e}", kv.key)))?;
            Ok(KvPair {
                key: kv.key,
                value,
                ttl: 0,
            })
        })
        .collect()
}

fn read_ipam(ds: &dyn Datastore) -> Result<IpamRecords, CtlError> {
    Ok(IpamRecords {
        block_affinities: pairs(ds, keys::IPAM_HOSTS)?,
        blocks: pairs(ds, keys::IPAM_BLOCKS)?,
        handles: pairs(ds, keys::IPAM_HANDLES)?,
        config: pairs(ds, IPAM_CONFIG_KEY)?
            .into_iter()
            .find(|p| p.key == IPAM_CONFIG_KEY),
    })
}

/// `datastore migrate export`: everything, to stdout; the datastore must be locked so that
/// nothing changes under the export.
pub fn export(ds: &dyn Datastore, out: &mut String) -> Result<(), CtlError> {
    cluster_info::require_locked(ds, "in order to begin migration")?;
    for kind in EXPORTED {
        let (mut items, _) = store::list(ds, kind, None)
            .map_err(|e| CtlError::new(format!("failed to list {}: {e}", kind.plural())))?;
        for r in &mut items {
            let meta = r.metadata_mut();
            meta.uid = None;
            meta.resource_version = None;
            meta.creation_timestamp = None;
        }
        out.push_str(&resources::output::list_to_yaml(kind, &items, None));
        out.push_str("---\n");
    }
    out.push_str("===\n");
    let info = cluster_info::get(ds)?.ok_or_else(|| {
        CtlError::new("the datastore has no ClusterInformation 'default' to export")
    })?;
    let info = serde_json::to_string_pretty(&Resource::ClusterInformation(info))
        .map_err(|e| CtlError::new(format!("failed to encode ClusterInformation: {e}")))?;
    out.push_str(&info);
    out.push_str("\n===\n");
    let ipam = serde_json::to_string_pretty(&read_ipam(ds)?)
        .map_err(|e| CtlError::new(format!("failed to encode the IPAM records: {e}")))?;
    out.push_str(&ipam);
    out.push('\n');
    Ok(())
}

/// Checks one IPAM record from the file before it is written: its key is of its kind and its
/// value decodes as that record.
fn check_record(kind: &str, p: &KvPair) -> Result<Vec<u8>, String> {
    let bytes = serde_json::to_vec(&p.value).map_err(|e| e.to_string())?;
    let bad = |why: String| format!("{kind} {}: {why}", p.key);
    let segment_ok = |prefix: &str| {
        p.key.strip_prefix(prefix).is_some_and(|rest| {
            !rest.is_empty()
                && !rest
                    .split('/')
                    .any(|s| s.is_empty() || s == "." || s == "..")
        })
    };
    match kind {
        "block" => {
            let b = AllocationBlock::decode(&bytes).map_err(bad)?;
            if keys::ipam_block(&b.cidr.to_string()) != p.key {
                return Err(bad(format!("the key is not that of block {}", b.cidr)));
            }
        }
        "block affinity" => {
            if !segment_ok(keys::IPAM_HOSTS) {
                return Err(bad(format!("the key is not under {}", keys::IPAM_HOSTS)));
            }
            serde_json::from_slice::<BlockAffinity>(&bytes).map_err(|e| bad(e.to_string()))?;
        }
        "handle" => {
            if !segment_ok(keys::IPAM_HANDLES) {
                return Err(bad(format!("the key is not under {}", keys::IPAM_HANDLES)));
            }
            serde_json::from_slice::<IpamHandle>(&bytes).map_err(|e| bad(e.to_string()))?;
        }
        _ => {
            if p.key != IPAM_CONFIG_KEY {
                return Err(bad(format!("the key is not {IPAM_CONFIG_KEY}")));
            }
            serde_json::from_slice::<IpamConfig>(&bytes).map_err(|e| bad(e.to_string()))?;
        }
    }
    Ok(bytes)
}

/// What makes the target not empty, if anything: a resource (other than the built-in tiers)
/// or an IPAM record.
fn first_existing(ds: &dyn Datastore) -> Result<Option<String>, CtlError> {
    for kind in EXPORTED.iter().copied().chain([Kind::ClusterInformation]) {
        let (items, _) = store::list(ds, kind, None).map_err(|e| {
            CtlError::new(format!(
                "failed to retrieve {} resources during datastore check: {e}",
                kind.plural()
            ))
        })?;
        if items
            .iter()
            .any(|r| kind != Kind::Tier || !BUILT_IN_TIERS.contains(&r.name()))
        {
            return Ok(Some(format!("found existing Calico {kind} resource")));
        }
    }
    if read_ipam(ds)?.len() > 0 {
        return Ok(Some("found existing IPAM resources".into()));
    }
    Ok(None)
}

/// `datastore migrate import -f FILE|-`: into an empty datastore, which is left locked.
pub fn import(ds: &dyn Datastore, file: &str, out: &mut String) -> Result<(), CtlError> {
    let text = crud::read_manifest(file)?;
    let parts: Vec<&str> = text.split("===\n").collect();
    let [v3, info, ipam] = parts[..] else {
        return Err(CtlError::new(format!(
            "error while reading migration file: imported file: {file} is improperly formatted. Try recreating with 'brindlectl datastore migrate export'"
        )));
    };
    // Everything in the file is checked before the datastore is touched.
    let resources = crud::load_manifest(v3, file, None)?;
    if let Some(r) = resources
        .iter()
        .find(|r| r.kind() == Kind::ClusterInformation)
    {
        return Err(CtlError::new(format!(
            "error while reading migration file: ClusterInformation({}) belongs in the file's second part",
            r.name()
        )));
    }
    let info: Value = serde_json::from_str(info).map_err(|e| {
        CtlError::new(format!(
            "failed to update cluster information: error reading exported cluster info for migration: {e}"
        ))
    })?;
    let spec = info.get("spec").cloned().unwrap_or(Value::Null);
    let text_of = |k: &str| spec.get(k).and_then(Value::as_str).map(str::to_string);
    let (guid, version) = (text_of("clusterGUID"), text_of("calicoVersion"));
    let records: IpamRecords = serde_json::from_str(ipam)
        .map_err(|e| CtlError::new(format!("failed to read IPAM resources: {e}")))?;
    let mut writes: Vec<(String, Vec<u8>)> = Vec::with_capacity(records.len());
    let groups: [(&str, Vec<&KvPair>); 4] = [
        ("block", records.blocks.iter().collect()),
        ("block affinity", records.block_affinities.iter().collect()),
        ("handle", records.handles.iter().collect()),
        ("config", records.config.iter().collect()),
    ];
    for (kind, group) in &groups {
        for p in group {
            let bytes = check_record(kind, p)
                .map_err(|e| CtlError::new(format!("failed to read IPAM resources: {e}")))?;
            writes.push((p.key.clone(), bytes));
        }
    }

    if let Some(what) = first_existing(ds)? {
        return Err(CtlError::new(format!(
            "datastore already has Calico resources: {what}. Import needs an empty datastore"
        )));
    }
    cluster_info::ensure(ds).map_err(|e| {
        CtlError::new(format!(
            "unable to initialize cluster information for the datastore migration: {}",
            e.0
        ))
    })?;
    if !cluster_info::is_locked(cluster_info::get(ds)?.as_ref()) {
        lock(ds, &mut String::new()).map_err(|e| {
            CtlError::new(format!(
                "error while attempting to lock the datastore for import: {}",
                e.0
            ))
        })?;
    }

    apply_resources(ds, &resources, out)?;

    let mut current = cluster_info::get(ds)?
        .ok_or_else(|| CtlError::new("error retrieving current cluster info for migration"))?;
    current.spec.cluster_guid = guid;
    current.spec.calico_version = version;
    store::update(ds, &Resource::ClusterInformation(current)).map_err(|e| {
        CtlError::new(format!(
            "failed to update cluster information: error updating current cluster info for migration: {e}"
        ))
    })?;

    // calicoctl fails here when the file has no IPAM records, after the resources are
    // written; a brindle datastore without allocations yet is a normal one to copy.
    out.push_str("Importing IPAM resources\n");
    let mut handled = 0;
    for (key, value) in &writes {
        if let Err(e) = ds.create(key, value) {
            if handled > 0 {
                out.push_str(&format!(
                    "Partial success: applied the first {handled} out of {} resources:\n",
                    writes.len()
                ));
            }
            return Err(CtlError::new(format!("hit error(s): [{key}: {e}]")));
        }
        handled += 1;
    }
    out.push_str(&format!(
        "Successfully applied {handled} IPAM resource(s)\n"
    ));
    out.push_str("Datastore information successfully imported. Please refer to the datastore migration documentation for next steps.\n");
    Ok(())
}

/// The v3 resources, applied in file order (the built-in tiers exist already: updated).
fn apply_resources(
    ds: &dyn Datastore,
    resources: &[Resource],
    out: &mut String,
) -> Result<(), CtlError> {
    let mut errors: BTreeMap<usize, String> = BTreeMap::new();
    for (i, r) in resources.iter().enumerate() {
        let result = match store::create(ds, r) {
            Err(ResourceError::AlreadyExists(_)) => store::update(ds, r).map(drop),
            other => other.map(drop),
        };
        if let Err(e) = result {
            errors.insert(i, e.to_string());
        }
    }
    if !errors.is_empty() {
        let list: Vec<String> = errors.into_values().collect();
        return Err(CtlError::new(format!(
            "failed to import v3 resources: [{}]",
            list.join(" ")
        )));
    }
    out.push_str(&format!(
        "Successfully applied {} resource(s)\n",
        resources.len()
    ));
    Ok(())
}
