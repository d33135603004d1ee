//! Resources in the datastore as calicoctl's client (libcalico-go `clientv3`) handles them:
//! create, update at a revision, delete, get and list, with libcalico-go's error texts
//! (`resource already exists: IPPool(name)`, `update conflict: IPPool(name)` ...), Calico's
//! write-time checks (IPPool overlap and immutable fields) and the metadata the store keeps
//! (`uid`, `creationTimestamp`, `resourceVersion` = the key's mod revision).

use std::fmt;

use datastore::{Datastore, DatastoreError};
use resources::{validate_pool_against, validate_update, IpPool, Kind, Resource, ValidationError};

/// libcalico-go's `model.ResourceKey` string: `Kind(name)` or `Kind(namespace/name)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
}

impl Identity {
    pub fn of(r: &Resource) -> Identity {
        Identity {
            kind: r.kind(),
            namespace: r.namespace().map(str::to_string),
            name: r.name().to_string(),
        }
    }

    /// `namespace` is used only for namespaced kinds (`default` when `None`).
    pub fn new(kind: Kind, namespace: Option<&str>, name: &str) -> Identity {
        let namespace = kind.namespaced().then(|| {
            namespace
                .unwrap_or(resources::DEFAULT_NAMESPACE)
                .to_string()
        });
        Identity {
            kind,
            namespace,
            name: name.to_string(),
        }
    }

    pub fn key(&self) -> String {
        datastore::keys::resource(self.kind.plural(), self.namespace.as_deref(), &self.name)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}({ns}/{})", self.kind, self.name),
            None => write!(f, "{}({})", self.kind, self.name),
        }
    }
}

/// Why one resource could not be read or written, worded as libcalico-go's errors.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("resource already exists: {0}")]
    AlreadyExists(Identity),
    // etcd reports a missing key without an underlying error, hence `<nil>` (as calicoctl).
    #[error("resource does not exist: {0} with error: <nil>")]
    DoesNotExist(Identity),
    #[error("update conflict: {0}")]
    Conflict(Identity),
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    #[error("error with field metadata.resourceVersion = '{0}' ({1})")]
    ResourceVersion(String, &'static str),
    #[error("{0}")]
    Datastore(DatastoreError),
    #[error("stored {0} cannot be read: {1}")]
    Stored(Identity, String),
}

impl ResourceError {
    fn from_store(e: DatastoreError, id: &Identity) -> ResourceError {
        match e {
            DatastoreError::AlreadyExists { .. } => ResourceError::AlreadyExists(id.clone()),
            DatastoreError::NotFound { .. } => ResourceError::DoesNotExist(id.clone()),
            DatastoreError::Conflict { .. } => ResourceError::Conflict(id.clone()),
            other => ResourceError::Datastore(other),
        }
    }
}

pub type Result<T> = std::result::Result<T, ResourceError>;

/// The resource at `id`, with `resourceVersion` set; `None` if absent.
pub fn get(ds: &dyn Datastore, id: &Identity) -> Result<Option<Resource>> {
    let Some(kv) = ds
        .get(&id.key())
        .map_err(|e| ResourceError::from_store(e, id))?
    else {
        return Ok(None);
    };
    Resource::from_kv(&kv)
        .map(Some)
        .map_err(|e| ResourceError::Stored(id.clone(), e.to_string()))
}

/// The resource at `id` or `DoesNotExist`.
pub fn get_existing(ds: &dyn Datastore, id: &Identity) -> Result<Resource> {
    get(ds, id)?.ok_or_else(|| ResourceError::DoesNotExist(id.clone()))
}

/// Every resource of `kind` (in `namespace`, or in all namespaces when `None`), sorted by
/// key, and the revision the list was read at.
pub fn list(
    ds: &dyn Datastore,
    kind: Kind,
    namespace: Option<&str>,
) -> Result<(Vec<Resource>, i64)> {
    let prefix = datastore::keys::resource_prefix(
        kind.plural(),
        if kind.namespaced() { namespace } else { None },
    );
    let (kvs, revision) = ds.list(&prefix).map_err(ResourceError::Datastore)?;
    let mut out = Vec::with_capacity(kvs.len());
    for kv in &kvs {
        let r = Resource::from_kv(kv).map_err(|e| {
            let name = kv.key.rsplit('/').next().unwrap_or(&kv.key);
            ResourceError::Stored(Identity::new(kind, namespace, name), e.to_string())
        })?;
        out.push(r);
    }
    Ok((out, revision))
}

/// Creates `r` (already defaulted and validated). Like libcalico-go, a create must not carry
/// a `resourceVersion`; the store sets `uid` and `creationTimestamp`.
pub fn create(ds: &dyn Datastore, r: &Resource) -> Result<Resource> {
    if let Some(rv) = &r.metadata().resource_version {
        return Err(ResourceError::ResourceVersion(
            rv.clone(),
            "field must not be set for a Create request",
        ));
    }
    check_against_others(ds, r)?;
    check_policy_tier_exists(ds, r)?;
    let id = Identity::of(r);
    let mut stored = r.clone();
    let meta = stored.metadata_mut();
    meta.uid = Some(new_uid());
    meta.creation_timestamp = Some(rfc3339_now());
    let rev = ds
        .create(&id.key(), &stored.to_stored_json())
        .map_err(|e| ResourceError::from_store(e, &id))?;
    stored.metadata_mut().resource_version = Some(rev.to_string());
    Ok(stored)
}

/// libcalico-go's `UnsafeCreate`: creates `r` without the checks against other resources
/// (pool overlap), for `ipam split`, whose new pools overlap the pool they replace until it
/// is deleted. `r` itself must be valid.
pub fn create_unchecked(ds: &dyn Datastore, r: &Resource) -> Result<Resource> {
    let id = Identity::of(r);
    let mut stored = r.clone();
    let meta = stored.metadata_mut();
    meta.resource_version = None;
    meta.uid = Some(new_uid());
    meta.creation_timestamp = Some(rfc3339_now());
    let rev = ds
        .create(&id.key(), &stored.to_stored_json())
        .map_err(|e| ResourceError::from_store(e, &id))?;
    stored.metadata_mut().resource_version = Some(rev.to_string());
    Ok(stored)
}

/// Replaces the stored resource with `r` at `r`'s `resourceVersion`, or at the current one
/// when `r` names none (calicoctl's replace). Immutable fields and pool overlap are checked
/// against what is stored; `uid` and `creationTimestamp` are kept.
pub fn update(ds: &dyn Datastore, r: &Resource) -> Result<Resource> {
    let id = Identity::of(r);
    let current = get_existing(ds, &id)?;
    let revision = match &r.metadata().resource_version {
        Some(rv) => rv
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| {
                ResourceError::ResourceVersion(rv.clone(), "not a revision of this datastore")
            })?,
        None => current_revision(&current),
    };
    validate_update(&current, r)?;
    check_against_others(ds, r)?;
    let mut stored = r.clone();
    let meta = stored.metadata_mut();
    meta.uid = current.metadata().uid.clone();
    meta.creation_timestamp = current.metadata().creation_timestamp.clone();
    let rev = ds
        .update(&id.key(), &stored.to_stored_json(), revision)
        .map_err(|e| ResourceError::from_store(e, &id))?;
    stored.metadata_mut().resource_version = Some(rev.to_string());
    Ok(stored)
}

/// Deletes `id` (only at `resource_version` when given).
pub fn delete(ds: &dyn Datastore, id: &Identity, resource_version: Option<&str>) -> Result<()> {
    let revision = match resource_version {
        Some(rv) => Some(
            rv.trim()
                .parse::<i64>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    ResourceError::ResourceVersion(
                        rv.to_string(),
                        "not a revision of this datastore",
                    )
                })?,
        ),
        None => None,
    };
    ds.delete(&id.key(), revision)
        .map_err(|e| ResourceError::from_store(e, id))
}

fn current_revision(r: &Resource) -> i64 {
    // Set by `from_kv`, so always present and numeric for a stored resource.
    r.metadata()
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Rules that need the other stored resources: an IPPool must not overlap another pool.
fn check_against_others(ds: &dyn Datastore, r: &Resource) -> Result<()> {
    if let Resource::IpPool(pool) = r {
        let (all, _) = list(ds, Kind::IpPool, None)?;
        let others: Vec<IpPool> = all
            .into_iter()
            .filter_map(|p| p.as_ip_pool().cloned())
            .collect();
        validate_pool_against(pool, &others)?;
    }
    Ok(())
}

/// libcalico-go's policy Create: the policy's tier must exist (checked on create only, as
/// Calico does; a tier is not deleted while policies are in it).
fn check_policy_tier_exists(ds: &dyn Datastore, r: &Resource) -> Result<()> {
    let tier = match r {
        Resource::NetworkPolicy(p) => p.spec.tier.as_deref(),
        Resource::GlobalNetworkPolicy(p) => p.spec.tier.as_deref(),
        _ => return Ok(()),
    };
    let tier = tier.unwrap_or(resources::policy::DEFAULT_TIER);
    get_existing(ds, &Identity::new(Kind::Tier, None, tier)).map(drop)
}

/// A random RFC 4122 UUID from the kernel (as Kubernetes' `uid`).
fn new_uid() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            format!("{:032x}", nanos ^ ((std::process::id() as u128) << 64))
        })
}

/// Now as Kubernetes writes `creationTimestamp`: `2024-05-01T12:00:00Z`.
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    resources::meta::rfc3339_utc(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_print_as_libcalico_keys() {
        assert_eq!(
            Identity::new(Kind::IpPool, Some("x"), "p1").to_string(),
            "IPPool(p1)"
        );
        assert_eq!(
            Identity::new(Kind::NetworkPolicy, None, "np").to_string(),
            "NetworkPolicy(default/np)"
        );
        assert_eq!(
            Identity::new(Kind::NetworkPolicy, Some("ns1"), "np").key(),
            "/calico/resources/v3/projectcalico.org/networkpolicies/ns1/np"
        );
        let id = Identity::new(Kind::BgpConfiguration, None, "default");
        assert_eq!(
            ResourceError::DoesNotExist(id.clone()).to_string(),
            "resource does not exist: BGPConfiguration(default) with error: <nil>"
        );
        assert_eq!(
            ResourceError::AlreadyExists(id.clone()).to_string(),
            "resource already exists: BGPConfiguration(default)"
        );
        assert_eq!(
            ResourceError::Conflict(id).to_string(),
            "update conflict: BGPConfiguration(default)"
        );
    }
}
