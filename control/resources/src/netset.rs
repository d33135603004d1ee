//! NetworkSet (namespaced) and GlobalNetworkSet: named lists of networks that policies select
//! by label.

use crate::kind::Kind;
use crate::macros::calico_struct;
use crate::meta::Metadata;
use crate::object::Spec;
use crate::validate::{check_cidr, check_labels, check_subdomain_name, index, Errors};

calico_struct! {
    pub struct NetworkSetSpec {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "nets" => pub nets: Vec<String>,
    }
}

fn validate_set(spec: &NetworkSetSpec, meta: &Metadata, errs: &mut Errors) {
    check_subdomain_name(errs, "metadata.name", &meta.name);
    check_labels(errs, "metadata.labels", &meta.labels);
    for (i, n) in spec.nets.iter().enumerate() {
        check_cidr(errs, &index("spec.nets", i), n);
    }
}

fn row(spec: &NetworkSetSpec, meta: &Metadata, wide: bool) -> Vec<String> {
    if wide {
        vec![meta.name.clone(), spec.nets.join(",")]
    } else {
        vec![meta.name.clone()]
    }
}

impl Spec for NetworkSetSpec {
    const KIND: Kind = Kind::NetworkSet;

    fn apply_defaults(&mut self, meta: &mut Metadata) {
        meta.namespace
            .get_or_insert_with(|| crate::meta::DEFAULT_NAMESPACE.into());
    }

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        validate_set(self, meta, errs);
    }

    fn table_row(&self, meta: &Metadata, wide: bool) -> Vec<String> {
        row(self, meta, wide)
    }
}

/// Same shape as [`NetworkSetSpec`], cluster-wide.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct GlobalNetworkSetSpec(pub NetworkSetSpec);

impl Spec for GlobalNetworkSetSpec {
    const KIND: Kind = Kind::GlobalNetworkSet;

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        validate_set(&self.0, meta, errs);
    }

    fn table_row(&self, meta: &Metadata, wide: bool) -> Vec<String> {
        row(&self.0, meta, wide)
    }
}

impl std::ops::Deref for GlobalNetworkSetSpec {
    type Target = NetworkSetSpec;
    fn deref(&self) -> &NetworkSetSpec {
        &self.0
    }
}

impl std::ops::DerefMut for GlobalNetworkSetSpec {
    fn deref_mut(&mut self) -> &mut NetworkSetSpec {
        &mut self.0
    }
}
