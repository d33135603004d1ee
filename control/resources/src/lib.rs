//! Calico's `projectcalico.org/v3` resources as brindle reads, checks, stores and prints them.
//!
//! - [`Kind`]: the kinds, with calicoctl's CLI spellings, etcd plurals and table columns.
//! - [`Resource`]: one resource of any kind (typed `Object<Spec>` per kind); `key()`,
//!   `apply_defaults()`, `validate()`, `to_stored_json()` / `from_stored()`, `table_row()`.
//! - [`parse_documents`] / [`load_documents`]: manifests (multi-document YAML, JSON, lists).
//! - [`to_yaml`] / [`to_json`] / [`list_to_yaml`] / [`render_table`]: calicoctl's output shapes.
//! - [`validate_pool_against`] / [`validate_update`]: rules that need other resources.
//!
//! Field names, defaults and validation follow Calico's resource reference. Fields brindle
//! does not model are kept (each object's `extra`) and written back unchanged.

mod macros;
mod yaml_value;

pub mod bgp;
pub mod common;
pub mod cross;
pub mod endpoint;
pub mod felix;
pub mod ippool;
pub mod kind;
pub mod meta;
pub mod netset;
pub mod node;
pub mod output;
pub mod parse;
pub mod patch;
pub mod policy;
pub mod resource;
pub mod selector;
pub mod validate;

pub use bgp::{BgpConfigurationSpec, BgpPeerSpec, LogSeverity};
pub use common::{AsNumber, NumOrString, Port, PortMatch, Protocol};
pub use cross::{validate_pool_against, validate_update};
pub use endpoint::{
    workload_endpoint_name, EndpointPort, HostEndpointSpec, IpNat, WorkloadEndpointSpec,
};
pub use felix::{ClusterInformationSpec, EndpointToHostAction, FelixConfigurationSpec, ProtoPort};
pub use ippool::{AllowedUse, EncapMode, IpPoolSpec};
pub use kind::{Kind, UnknownKind};
pub use meta::Metadata;
pub use netset::{GlobalNetworkSetSpec, NetworkSetSpec};
pub use node::{NodeBgpSpec, NodeSpec};
pub use output::{list_to_json, list_to_yaml, list_value, render_table, to_json, to_yaml};
pub use parse::{load_documents, parse_documents, ParseError};
pub use policy::{
    Action, EntityRule, GlobalNetworkPolicySpec, IcmpFields, NetworkPolicySpec, PolicyType,
    ProfileSpec, Rule, TierSpec,
};
pub use resource::{
    BgpConfiguration, BgpPeer, ClusterInformation, FelixConfiguration, GlobalNetworkPolicy,
    GlobalNetworkSet, HostEndpoint, IpPool, NetworkPolicy, NetworkSet, Node, Object, Profile,
    Resource, Spec, StoredError, Tier, WorkloadEndpoint,
};
pub use validate::{FieldError, ValidationError};

/// The only API version brindle reads and writes.
pub const API_VERSION: &str = "projectcalico.org/v3";

/// Namespace of a namespaced resource that names none (as calicoctl defaults it).
pub const DEFAULT_NAMESPACE: &str = "default";
