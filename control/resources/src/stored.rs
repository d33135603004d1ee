//! A resource as the datastore holds it: its key and its stored JSON (Calico's etcd layout).

use crate::parse::{resource_from_value, ParseError};
use crate::resource::Resource;

/// Errors when decoding a resource stored in the datastore.
#[derive(Debug, thiserror::Error)]
pub enum StoredError {
    #[error("stored resource is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stored resource: {0}")]
    Parse(#[from] ParseError),
}

impl Resource {
    /// The datastore key: `/calico/resources/v3/projectcalico.org/<plural>/[<ns>/]<name>`.
    pub fn key(&self) -> String {
        datastore::keys::resource(self.kind().plural(), self.namespace(), self.name())
    }

    /// The value stored in the datastore: the resource's JSON without `resourceVersion` (the
    /// store's own revision is the version).
    pub fn to_stored_json(&self) -> Vec<u8> {
        let mut copy = self.clone();
        copy.metadata_mut().resource_version = None;
        // Serializing plain data to JSON cannot fail (string keys, no non-finite floats are
        // produced by the parser).
        serde_json::to_vec(&copy).unwrap_or_default()
    }

    /// Decodes a stored value; `resourceVersion` becomes `mod_revision`.
    pub fn from_stored(bytes: &[u8], mod_revision: i64) -> Result<Resource, StoredError> {
        let value: serde_json::Value = serde_json::from_slice(bytes)?;
        let mut r = resource_from_value(value, 0)?;
        r.metadata_mut().resource_version = Some(mod_revision.to_string());
        Ok(r)
    }

    /// [`Resource::from_stored`] for a datastore entry.
    pub fn from_kv(kv: &datastore::KeyValue) -> Result<Resource, StoredError> {
        Resource::from_stored(&kv.value, kv.mod_revision)
    }
}
