//! ClusterInformation `default` as calicoctl's IPAM and migration verbs use it: its GUID and
//! `resourceVersion` stamp an `ipam check` report, and `datastoreReady: false` is the lock of
//! `datastore migrate lock` that `ipam release --from-report`, `ipam split` and
//! `datastore migrate export` look for.

use datastore::Datastore;
use resources::{ClusterInformation, ClusterInformationSpec, Kind, Metadata, Resource};

use super::store::{self, Identity};
use super::CtlError;

fn identity() -> Identity {
    Identity::new(Kind::ClusterInformation, None, "default")
}

/// The ClusterInformation, `None` when no node (or `datastore migrate lock`) created it yet.
pub fn get(ds: &dyn Datastore) -> Result<Option<ClusterInformation>, CtlError> {
    let r = store::get(ds, &identity())
        .map_err(|e| CtlError::new(format!("error retrieving ClusterInformation: {e}")))?;
    Ok(r.and_then(|r| r.as_cluster_information().cloned()))
}

/// Whether the datastore is locked (`datastoreReady: false`). Like libcalico-go, a missing
/// `datastoreReady` is an unlocked (ready) datastore.
pub fn is_locked(info: Option<&ClusterInformation>) -> bool {
    info.and_then(|i| i.spec.datastore_ready) == Some(false)
}

/// Checks the lock and fails with `hint` (calicoctl's words for the verb) when unlocked.
pub fn require_locked(ds: &dyn Datastore, hint: &str) -> Result<(), CtlError> {
    let info = get(ds).map_err(|e| {
        CtlError::new(format!(
            "error while checking if datastore was locked: {}",
            e.0
        ))
    })?;
    if is_locked(info.as_ref()) {
        Ok(())
    } else {
        Err(CtlError::new(format!(
            "datastore is not locked. Run the `brindlectl datastore migrate lock` command {hint}"
        )))
    }
}

/// libcalico-go's `EnsureInitialized` as far as ClusterInformation goes: created (with a new
/// GUID, ready) when missing. Returns the stored resource.
pub fn ensure(ds: &dyn Datastore) -> Result<ClusterInformation, CtlError> {
    super::initialize::ensure_initialized(ds);
    if let Some(info) = get(ds)? {
        return Ok(info);
    }
    let spec = ClusterInformationSpec {
        cluster_guid: Some(new_guid()),
        datastore_ready: Some(true),
        ..ClusterInformationSpec::default()
    };
    let r = Resource::ClusterInformation(ClusterInformation::new(Metadata::named("default"), spec));
    match store::create(ds, &r) {
        Ok(_) | Err(store::ResourceError::AlreadyExists(_)) => {}
        Err(e) => {
            return Err(CtlError::new(format!(
                "unable to initialize cluster information: {e}"
            )))
        }
    }
    get(ds)?.ok_or_else(|| CtlError::new("unable to initialize cluster information"))
}

/// Sets `datastoreReady` (the lock is `false`), at the revision read.
pub fn set_ready(ds: &dyn Datastore, ready: bool) -> Result<(), CtlError> {
    let verb = if ready { "unlocking" } else { "locking" };
    let mut info = get(ds)?.ok_or_else(|| {
        CtlError::new(format!(
            "error retrieving ClusterInformation for {verb}: {}",
            store::ResourceError::DoesNotExist(identity())
        ))
    })?;
    info.spec.datastore_ready = Some(ready);
    store::update(ds, &Resource::ClusterInformation(info))
        .map_err(|e| CtlError::new(format!("error updating ClusterInformation for {verb}: {e}")))?;
    Ok(())
}

/// A cluster GUID as Calico makes them: 16 random bytes in hex.
fn new_guid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().replace('-', ""))
        .unwrap_or_else(|_| format!("{:032x}", std::process::id()))
}
