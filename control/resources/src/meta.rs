//! Object metadata, the Kubernetes `ObjectMeta` subset Calico's v3 resources carry.

use std::collections::BTreeMap;

use crate::macros::calico_struct;

calico_struct! {
    /// `metadata:` of every resource. `resourceVersion` is the datastore revision the resource
    /// was read at; it is never stored (see `Resource::to_stored_json`).
    pub struct Metadata {
        #[serde(skip_serializing_if = "String::is_empty")]
        "name" => pub name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        "namespace" => pub namespace: Option<String>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        "labels" => pub labels: BTreeMap<String, String>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        "annotations" => pub annotations: BTreeMap<String, String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "resourceVersion" => pub resource_version: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "uid" => pub uid: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "creationTimestamp" => pub creation_timestamp: Option<String>,
    }
}

impl Metadata {
    pub fn named(name: impl Into<String>) -> Metadata {
        Metadata {
            name: name.into(),
            ..Metadata::default()
        }
    }

    pub fn namespaced(namespace: impl Into<String>, name: impl Into<String>) -> Metadata {
        Metadata {
            name: name.into(),
            namespace: Some(namespace.into()),
            ..Metadata::default()
        }
    }
}
