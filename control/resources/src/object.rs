//! The shape every resource kind shares: `metadata`, a typed `spec`, and what the kind's spec
//! must know about itself ([`Spec`]). Each kind's module depends on this one; the dispatch over
//! all kinds ([`crate::resource::Resource`]) sits above them.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::kind::Kind;
use crate::meta::Metadata;
use crate::validate::Errors;

/// The only API version brindle reads and writes.
pub const API_VERSION: &str = "projectcalico.org/v3";

/// What each kind's spec knows about itself.
pub trait Spec: Sized {
    const KIND: Kind;
    /// Fills in Calico's defaults (may also default metadata, e.g. the namespace).
    fn apply_defaults(&mut self, _meta: &mut Metadata) {}
    /// Records every invalid field (with its path from the resource root) in `errs`.
    fn validate(&self, meta: &Metadata, errs: &mut Errors);
    /// The cells of calicoctl's table row (without NAMESPACE).
    fn table_row(&self, meta: &Metadata, wide: bool) -> Vec<String>;
}

/// One resource of a known kind: `metadata`, `spec`, and any other top-level field (such as a
/// Node's `status`) kept as it was read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Object<S> {
    pub metadata: Metadata,
    pub spec: S,
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl<S: Spec> Object<S> {
    pub fn new(metadata: Metadata, spec: S) -> Object<S> {
        Object {
            metadata,
            spec,
            extra: BTreeMap::new(),
        }
    }
}

/// Serialization shape of every resource: `apiVersion`, `kind`, `metadata`, `spec`, extras.
#[derive(Serialize)]
struct Envelope<'a, S> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    metadata: &'a Metadata,
    spec: &'a S,
    #[serde(flatten)]
    extra: &'a BTreeMap<String, serde_json::Value>,
}

impl<S: Spec + Serialize> Serialize for Object<S> {
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        Envelope {
            api_version: API_VERSION,
            kind: S::KIND.as_str(),
            metadata: &self.metadata,
            spec: &self.spec,
            extra: &self.extra,
        }
        .serialize(s)
    }
}
