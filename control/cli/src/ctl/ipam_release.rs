//! `ipam release --from-report=FILE [--from-report=FILE...] [--force]` (calicoctl's
//! `commands/ipam/release.go`): releases the addresses and handles every given report found
//! leaked.
//!
//! The safety checks are calicoctl's, on brindle's datastore revisions: the report's cluster
//! GUID must be this datastore's (never overridable); a report from another brindlectl version
//! needs --force; at least one report must carry ClusterInformation's current
//! `resourceVersion` (the key's mod revision, which `datastore migrate lock` moves: a report
//! made before the lock is stale, also with --force); the datastore must be locked unless
//! --force. Each address is then released only while it is still the allocation the report
//! saw (same handle and block sequence number) and each handle deleted only at the revision the
//! report saw, so an address reused since the report is left alone.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use datastore::{keys, Datastore, DatastoreError};
use ipam::{Ipam, ReleaseOptions};

use super::ipam_report::{client_version, CheckReport, HandleInfo};
use super::{cluster_info, CtlError};

fn read_report(path: &str) -> Result<CheckReport, CtlError> {
    // A report is a few hundred bytes per allocation; 256 MiB covers millions of them.
    const MAX_REPORT: u64 = 256 << 20;
    let meta = std::fs::metadata(path)
        .map_err(|e| CtlError::new(format!("cannot read --from-report '{path}': {e}")))?;
    if meta.len() > MAX_REPORT {
        return Err(CtlError::new(format!(
            "--from-report '{path}' is {} bytes, more than the {MAX_REPORT} a report can be",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| CtlError::new(format!("cannot read --from-report '{path}': {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        CtlError::new(format!(
            "--from-report '{path}' is not an `ipam check -o` report: {e}"
        ))
    })
}

pub fn release_from_reports(
    ds: std::sync::Arc<dyn Datastore>,
    files: &[String],
    force: bool,
    out: &mut String,
) -> Result<(), CtlError> {
    let info = cluster_info::get(ds.as_ref())?;
    let guid = info
        .as_ref()
        .and_then(|i| i.spec.cluster_guid.clone())
        .unwrap_or_default();
    let revision = info
        .as_ref()
        .and_then(|i| i.metadata.resource_version.clone())
        .unwrap_or_default();
    let version = client_version();
    let mut found_current = false;
    let mut reports = Vec::new();
    for file in files {
        let r = read_report(file)?;
        if r.cluster_guid != guid {
            return Err(CtlError::new(format!(
                "cluster does not match the provided report ({file}): mismatched cluster GUID. Refusing to release"
            )));
        }
        if r.version != version {
            if !force {
                return Err(CtlError::new(format!(
                    "the provided report ({file}) was produced using a different version ({}) of brindlectl. Refusing to release",
                    r.version
                )));
            }
            out.push_str("WARNING: Report was produced using a different version of brindlectl. Ignoring due to --force option\n");
        }
        found_current |= r.cluster_info_revision == revision;
        reports.push(r);
    }
    if !found_current {
        return Err(CtlError::new(
            "the provided reports are all stale - at least one should be up-to-date. Please generate a new report while the data store is locked and try again",
        ));
    }
    if !cluster_info::is_locked(info.as_ref()) {
        if !force {
            return Err(CtlError::new(
                "data store is not locked. Either lock the data store, or re-run with --force",
            ));
        }
        out.push_str("WARNING: Data store is not locked. Ignoring due to --force option\n");
    }

    let (ips, handles) = merge(&reports);
    if ips.is_empty() {
        out.push_str("Report didn't contain any leaked IPs to clean up.\n");
    } else {
        release_ips(&ds, ips, out);
    }
    if handles.is_empty() {
        out.push_str("Report didn't contain any handles to clean up.\n");
    } else {
        delete_handles(ds.as_ref(), &handles, out);
    }
    out.push_str("You may now unlock the data store.\n");
    Ok(())
}

/// What every report agrees is leaked: addresses not in use in any of them (with the
/// allocation the last report saw), handles leaked at the same revision in all of them.
fn merge(reports: &[CheckReport]) -> (Vec<ReleaseOptions>, Vec<HandleInfo>) {
    let mut ips: Option<BTreeMap<Ipv4Addr, ReleaseOptions>> = None;
    let mut handles: Option<BTreeMap<String, HandleInfo>> = None;
    for r in reports {
        let mut merged = BTreeMap::new();
        for a in r.allocations.values().flatten() {
            if a.in_use || a.cooling_down {
                continue;
            }
            // brindle's IPAM is IPv4; anything else in a report is no address of ours.
            let Ok(address) = a.ip.parse::<Ipv4Addr>() else {
                continue;
            };
            if ips
                .as_ref()
                .is_some_and(|prev| !prev.contains_key(&address))
            {
                continue;
            }
            merged.insert(
                address,
                ReleaseOptions {
                    address,
                    handle: Some(a.handle.clone()).filter(|h| !h.is_empty()),
                    sequence_number: a.sequence_number,
                },
            );
        }
        ips = Some(merged);
        let mut merged = BTreeMap::new();
        for h in &r.leaked_handles {
            let keep = match &handles {
                None => true,
                Some(prev) => prev.get(&h.id).is_some_and(|p| p.revision == h.revision),
            };
            if keep {
                merged.insert(h.id.clone(), h.clone());
            }
        }
        handles = Some(merged);
    }
    (
        ips.unwrap_or_default().into_values().collect(),
        handles.unwrap_or_default().into_values().collect(),
    )
}

fn release_ips(ds: &std::sync::Arc<dyn Datastore>, ips: Vec<ReleaseOptions>, out: &mut String) {
    out.push_str(&format!("Releasing {} old IPs...\n", ips.len()));
    match Ipam::new(ds.clone()).release_checked(&ips) {
        Err(e) => out.push_str(&format!(
            "An error occurred while releasing some IPs: {e}.  Problems are often caused by an out-of-date IPAM report.  Try regenerating the IPAM report and retry.\n"
        )),
        Ok(o) => {
            out.push_str(&format!("Released {} IPs successfully\n", o.released.len()));
            if !o.not_allocated.is_empty() {
                out.push_str(&format!(
                    "{} addresses marked as leaked in the report had already been cleaned up.\n",
                    o.not_allocated.len()
                ));
            }
            if !o.changed.is_empty() {
                let list: Vec<String> = o.changed.iter().map(|ip| ip.to_string()).collect();
                out.push_str(&format!(
                    "{} addresses marked as leaked in the report have been allocated again since; left alone: {}\n",
                    o.changed.len(),
                    list.join(", ")
                ));
            }
        }
    }
}

fn delete_handles(ds: &dyn Datastore, handles: &[HandleInfo], out: &mut String) {
    out.push_str(&format!("Deleting {} handles...\n", handles.len()));
    out.push_str("Key: '.' = Deleted OK; 'x' = skip, handle missing/changed.\n");
    let (mut released, mut skipped) = (0, 0);
    let mut errors = Vec::new();
    for h in handles {
        let revision = h.revision.trim().parse::<i64>().ok().filter(|r| *r > 0);
        // A revision that is no revision cannot be the handle's current one: skipped.
        let result = match revision {
            None => Err(DatastoreError::Conflict {
                key: keys::ipam_handle(&h.id),
                expected: 0,
                actual: 0,
            }),
            Some(rev) => ds.delete(&keys::ipam_handle(&h.id), Some(rev)),
        };
        match result {
            Ok(()) => {
                released += 1;
                out.push('.');
            }
            Err(DatastoreError::NotFound { .. } | DatastoreError::Conflict { .. }) => {
                skipped += 1;
                out.push('x');
            }
            Err(e) => errors.push(format!("\nDeleting handle {} failed: {e}.\n", h.id)),
        }
    }
    for e in &errors {
        out.push_str(e);
    }
    out.push('\n');
    out.push_str(&format!(
        "Released {released} handles; {skipped} skipped; {} errors.\n",
        errors.len()
    ));
}
