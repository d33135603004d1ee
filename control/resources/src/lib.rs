//! Calico's `projectcalico.org/v3` resources as brindle reads, checks, stores and prints them.
//!
//! - [`Kind`]: the kinds, with calicoctl's CLI spellings, etcd plurals and table columns.
//! - [`Resource`]: one resource of any kind (typed `Object<Spec>` per kind); `key()`,
//!   `apply_defaults()`, `validate()`, `to_stored_json()` / `from_stored()`, `table_row()`.
//! - [`parse_documents`] / [`load_documents`]: manifests (multi-document YAML, JSON, lists).
//! - [`to_yaml`] / [`to_json`] / [`list_to_yaml`] / [`render_table`]: calicoctl's output shapes.
//! - [`validate_pool_against`] / [`validate_update`]: rules that need other resources.
//!
//! Layering, bottom up: [`kind`], [`meta`], [`validate`], [`common`] and [`object`] (the
//! `Object<Spec>` shape and the [`Spec`] trait) are shared by the kind modules ([`bgp`],
//! [`endpoint`] (with its [`qos`] part), [`felix`], [`ippool`], [`netset`], [`node`],
//! [`policy`]), which depend on those and not on each other; [`resource`] dispatches over all
//! kinds, and [`parse`], [`stored`], [`output`], [`patch`] and [`cross`] work on a
//! [`Resource`].
//!
//! Field names, defaults and validation follow Calico's resource reference. Fields brindle
//! does not model are kept (each object's `extra`) and written back unchanged.

mod fold;
mod macros;
mod yaml_nesting;
mod yaml_value;

pub mod bgp;
mod bgp_peer_check;
pub mod common;
pub mod cross;
pub mod duration;
pub mod endpoint;
mod endpoint_check;
pub mod felix;
pub mod ippool;
mod ippool_check;
pub mod kind;
pub mod meta;
pub mod netset;
pub mod node;
pub mod object;
pub mod output;
pub mod parse;
pub mod patch;
pub mod policy;
pub mod qos;
pub mod resource;
mod rule_check;
pub mod selector;
pub mod stored;
pub mod validate;

pub use bgp::{BgpConfigurationSpec, BgpPeerSpec, NextHopMode};
pub use common::{AsNumber, LogSeverity, NumOrString, Port, PortMatch, Protocol};
pub use cross::{validate_pool_against, validate_update};
pub use endpoint::{
    workload_endpoint_name, EndpointPort, HostEndpointSpec, IpNat, WorkloadEndpointSpec,
};
pub use felix::{ClusterInformationSpec, EndpointToHostAction, FelixConfigurationSpec, ProtoPort};
pub use ippool::{AllowedUse, AssignmentMode, EncapMode, IpPoolSpec};
pub use kind::{Kind, UnknownKind};
pub use meta::{Metadata, DEFAULT_NAMESPACE};
pub use netset::{GlobalNetworkSetSpec, NetworkSetSpec};
pub use node::{NodeBgpSpec, NodeSpec};
pub use object::{Object, Spec, API_VERSION};
pub use output::{
    list_to_json, list_to_yaml, list_value, render_custom_table, render_table, to_json, to_yaml,
};
pub use parse::{load_documents, parse_documents, ParseError};
pub use policy::{
    Action, EntityRule, GlobalNetworkPolicySpec, IcmpFields, NetworkPolicySpec, PolicyType,
    ProfileSpec, Rule, TierSpec,
};
pub use qos::{QosControls, QosDirection, QosRate};
pub use resource::{
    BgpConfiguration, BgpPeer, ClusterInformation, FelixConfiguration, GlobalNetworkPolicy,
    GlobalNetworkSet, HostEndpoint, IpPool, NetworkPolicy, NetworkSet, Node, Profile, Resource,
    Tier, WorkloadEndpoint,
};
pub use stored::StoredError;
pub use validate::{FieldError, ValidationError};
