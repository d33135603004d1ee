//! A resource of any kind: the typed `Object<Spec>` of each kind behind one `Resource` enum,
//! with the operations every user needs (defaults, validation, table rows). The datastore
//! encoding is in [`crate::stored`].

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::bgp::{BgpConfigurationSpec, BgpPeerSpec};
use crate::endpoint::{HostEndpointSpec, WorkloadEndpointSpec};
use crate::felix::{ClusterInformationSpec, FelixConfigurationSpec};
use crate::ippool::IpPoolSpec;
use crate::kind::Kind;
use crate::meta::{Metadata, DEFAULT_NAMESPACE};
use crate::netset::{GlobalNetworkSetSpec, NetworkSetSpec};
use crate::node::NodeSpec;
use crate::object::{Object, Spec};
use crate::policy::{GlobalNetworkPolicySpec, NetworkPolicySpec, ProfileSpec, TierSpec};
use crate::validate::{Errors, ValidationError};

pub type IpPool = Object<IpPoolSpec>;
pub type BgpConfiguration = Object<BgpConfigurationSpec>;
pub type BgpPeer = Object<BgpPeerSpec>;
pub type Node = Object<NodeSpec>;
pub type Profile = Object<ProfileSpec>;
pub type NetworkPolicy = Object<NetworkPolicySpec>;
pub type GlobalNetworkPolicy = Object<GlobalNetworkPolicySpec>;
pub type Tier = Object<TierSpec>;
pub type WorkloadEndpoint = Object<WorkloadEndpointSpec>;
pub type HostEndpoint = Object<HostEndpointSpec>;
pub type NetworkSet = Object<NetworkSetSpec>;
pub type GlobalNetworkSet = Object<GlobalNetworkSetSpec>;
pub type FelixConfiguration = Object<FelixConfigurationSpec>;
pub type ClusterInformation = Object<ClusterInformationSpec>;

macro_rules! resource_enum {
    ($($variant:ident($spec:ty)),* $(,)?) => {
        /// A resource of any kind.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Resource {
            $( $variant(Object<$spec>), )*
        }

        $(
            impl From<Object<$spec>> for Resource {
                fn from(o: Object<$spec>) -> Resource {
                    Resource::$variant(o)
                }
            }
        )*

        impl Serialize for Resource {
            fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
                match self { $( Resource::$variant(o) => o.serialize(s), )* }
            }
        }

        impl Resource {
            pub fn kind(&self) -> Kind {
                match self { $( Resource::$variant(_) => <$spec as Spec>::KIND, )* }
            }

            pub fn metadata(&self) -> &Metadata {
                match self { $( Resource::$variant(o) => &o.metadata, )* }
            }

            pub fn metadata_mut(&mut self) -> &mut Metadata {
                match self { $( Resource::$variant(o) => &mut o.metadata, )* }
            }

            /// Top-level fields other than apiVersion/kind/metadata/spec, kept as read.
            pub fn extra(&self) -> &BTreeMap<String, serde_json::Value> {
                match self { $( Resource::$variant(o) => &o.extra, )* }
            }

            /// Calico's defaults for this kind (see each spec's `apply_defaults`).
            pub fn apply_defaults(&mut self) {
                // calicoctl: a namespaced resource that names no namespace, or an empty one,
                // is in `default`.
                if self.kind().namespaced() {
                    let ns = &mut self.metadata_mut().namespace;
                    if ns.as_deref().is_none_or(str::is_empty) {
                        *ns = Some(DEFAULT_NAMESPACE.to_string());
                    }
                }
                match self { $( Resource::$variant(o) => o.spec.apply_defaults(&mut o.metadata), )* }
            }

            /// Every invalid field of this resource, or Ok.
            pub fn validate(&self) -> Result<(), ValidationError> {
                let mut errs = Errors::new();
                let meta = self.metadata();
                self.validate_metadata(&mut errs);
                match self { $( Resource::$variant(o) => o.spec.validate(&o.metadata, &mut errs), )* }
                errs.into_result(self.kind().as_str(), &meta.name)
            }

            fn spec_row(&self, wide: bool) -> Vec<String> {
                match self { $( Resource::$variant(o) => o.spec.table_row(&o.metadata, wide), )* }
            }

            /// An empty resource of `kind` (used to build one from the datastore or the CLI).
            pub fn empty(kind: Kind, metadata: Metadata) -> Resource {
                $(
                    if kind == <$spec as Spec>::KIND {
                        return Resource::$variant(Object::new(metadata, <$spec>::default()));
                    }
                )*
                unreachable!("every Kind has a variant")
            }

            /// Reads the typed `metadata` and `spec` of a resource whose kind is known.
            pub(crate) fn from_parts(
                kind: Kind,
                metadata: serde_json::Value,
                spec: serde_json::Value,
                extra: BTreeMap<String, serde_json::Value>,
            ) -> Result<Resource, (String, String)> {
                let metadata: Metadata = typed("metadata", metadata)?;
                $(
                    if kind == <$spec as Spec>::KIND {
                        let spec: $spec = typed("spec", spec)?;
                        return Ok(Resource::$variant(Object { metadata, spec, extra }));
                    }
                )*
                unreachable!("every Kind has a variant")
            }
        }
    };
}

resource_enum! {
    IpPool(IpPoolSpec),
    BgpConfiguration(BgpConfigurationSpec),
    BgpPeer(BgpPeerSpec),
    Node(NodeSpec),
    Profile(ProfileSpec),
    NetworkPolicy(NetworkPolicySpec),
    GlobalNetworkPolicy(GlobalNetworkPolicySpec),
    Tier(TierSpec),
    WorkloadEndpoint(WorkloadEndpointSpec),
    HostEndpoint(HostEndpointSpec),
    NetworkSet(NetworkSetSpec),
    GlobalNetworkSet(GlobalNetworkSetSpec),
    FelixConfiguration(FelixConfigurationSpec),
    ClusterInformation(ClusterInformationSpec),
}

/// Deserializes `value` as `T`; on failure returns (field path under `root`, serde's message,
/// which names the bad value and what was expected).
fn typed<T: serde::de::DeserializeOwned>(
    root: &str,
    value: serde_json::Value,
) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            root.to_string()
        } else {
            format!("{root}.{inner}")
        };
        (path, e.into_inner().to_string())
    })
}

impl Resource {
    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    /// The namespace of a namespaced resource (`default` when unset), `None` otherwise.
    pub fn namespace(&self) -> Option<&str> {
        if self.kind().namespaced() {
            Some(
                self.metadata()
                    .namespace
                    .as_deref()
                    .unwrap_or(DEFAULT_NAMESPACE),
            )
        } else {
            None
        }
    }

    fn validate_metadata(&self, errs: &mut Errors) {
        let meta = self.metadata();
        if self.kind().namespaced() {
            if let Some(ns) = &meta.namespace {
                crate::validate::check_label_name(errs, "metadata.namespace", ns);
            }
        } else if let Some(ns) = &meta.namespace {
            if !ns.is_empty() {
                errs.add(
                    "metadata.namespace",
                    ns,
                    format!("{} is not a namespaced resource", self.kind()),
                );
            }
        }
        crate::validate::check_labels(errs, "metadata.labels", &meta.labels);
        crate::validate::check_annotations(errs, "metadata.annotations", &meta.annotations);
        // Calico maps a namespace into its v1 data model with this label; a network set may
        // not carry it.
        const NAMESPACE_LABEL: &str = "projectcalico.org/namespace";
        if matches!(self.kind(), Kind::NetworkSet | Kind::GlobalNetworkSet)
            && meta.labels.contains_key(NAMESPACE_LABEL)
        {
            errs.add(
                &format!("metadata.labels.{NAMESPACE_LABEL}"),
                NAMESPACE_LABEL,
                "projectcalico.org/namespace is not a valid label name",
            );
        }
    }

    /// The table cells for `brindlectl get` (see [`Kind::table_headers`]).
    pub fn table_row(&self, wide: bool, all_namespaces: bool) -> Vec<String> {
        let mut row = self.spec_row(wide);
        if all_namespaces {
            if let Some(ns) = self.namespace() {
                row.insert(0, ns.to_string());
            }
        }
        row
    }
}

macro_rules! accessors {
    ($($fn:ident, $fn_mut:ident, $variant:ident, $ty:ty);* $(;)?) => {
        impl Resource {
            $(
                pub fn $fn(&self) -> Option<&$ty> {
                    match self { Resource::$variant(o) => Some(o), _ => None }
                }
                pub fn $fn_mut(&mut self) -> Option<&mut $ty> {
                    match self { Resource::$variant(o) => Some(o), _ => None }
                }
            )*
        }
    };
}

accessors! {
    as_ip_pool, as_ip_pool_mut, IpPool, IpPool;
    as_bgp_configuration, as_bgp_configuration_mut, BgpConfiguration, BgpConfiguration;
    as_bgp_peer, as_bgp_peer_mut, BgpPeer, BgpPeer;
    as_node, as_node_mut, Node, Node;
    as_profile, as_profile_mut, Profile, Profile;
    as_network_policy, as_network_policy_mut, NetworkPolicy, NetworkPolicy;
    as_global_network_policy, as_global_network_policy_mut, GlobalNetworkPolicy, GlobalNetworkPolicy;
    as_tier, as_tier_mut, Tier, Tier;
    as_workload_endpoint, as_workload_endpoint_mut, WorkloadEndpoint, WorkloadEndpoint;
    as_host_endpoint, as_host_endpoint_mut, HostEndpoint, HostEndpoint;
    as_network_set, as_network_set_mut, NetworkSet, NetworkSet;
    as_global_network_set, as_global_network_set_mut, GlobalNetworkSet, GlobalNetworkSet;
    as_felix_configuration, as_felix_configuration_mut, FelixConfiguration, FelixConfiguration;
    as_cluster_information, as_cluster_information_mut, ClusterInformation, ClusterInformation;
}
