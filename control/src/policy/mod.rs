//! Calico's policy model: from the policy resources in the datastore to what the fastpath
//! classifier runs for each local endpoint and direction.
//!
//! - [`PolicyModel`] holds Tiers, NetworkPolicies, GlobalNetworkPolicies, Profiles,
//!   NetworkSets, GlobalNetworkSets and the workload and host endpoints of **every** node (rule
//!   selectors match endpoints cluster-wide). The agent feeds it with [`PolicyModel::upsert`] /
//!   [`PolicyModel::remove`] as its watch reports changes. It does no I/O.
//! - [`PolicyModel::endpoint_rules`] gives the [`EndpointRules`] Calico applies to a local
//!   endpoint in one [`Direction`]; the agent compiles them with `ClassifierBuilder`.
//! - Selectors in rules become address sets ([`IpSetId`]), one per distinct effective
//!   selector. Their membership follows endpoint and network set changes without any
//!   recompilation: [`PolicyModel::take_ipset_deltas`] gives what to apply through
//!   `IpSetsWriter` ([`apply_ipset_deltas`]), [`PolicyModel::dirty_endpoints`] which local
//!   endpoints need their programs rebuilt (a policy, profile or tier that concerns them
//!   changed, or the endpoint itself).
//!
//! Applying an update without a window where a program sees a half-filled set: apply the
//! `Added` deltas and publish, swap in the recompiled programs of the dirty endpoints, then
//! apply the `Removed` deltas and publish. (A set a new program names is then full before the
//! program runs, and a set only an old program names empties after that program is gone.)
//!
//! Evaluation order (Calico's, implemented by the classifier): tiers by `order` (the `default`
//! tier at 1,000,000 whether or not it is stored; no order last), in each tier the policies that
//! select the endpoint and list the direction in `types` (Calico's defaulting when absent), by
//! `order` then name; then the endpoint's `profiles` in order; nothing decided: deny.
//!
//! Module map: `members` (labels, addresses, named ports of endpoints and network sets),
//! `ipsets` (selector sets, member counting, deltas), `rules` (Calico rule -> classifier rule),
//! `model` (the store; its updates in `model::policies` and `model::endpoints`, rendering in
//! `model::render`).

mod ipsets;
mod members;
mod model;
mod rules;

#[cfg(test)]
mod tests;

use std::fmt;

pub use fastpath::classifier::{EndpointRules, IpSetId};
pub use ipsets::{apply_ipset_deltas, IpSetDelta, MemberChange};
pub use members::{
    LABEL_NAMESPACE, LABEL_ORCHESTRATOR, LABEL_SERVICE_ACCOUNT, NAMESPACE_PROFILE_PREFIX,
};
pub use model::{ModelStats, PolicyModel};

/// An endpoint policy applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointKey {
    Workload { namespace: String, name: String },
    Host { name: String },
}

impl fmt::Display for EndpointKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointKey::Workload { namespace, name } => {
                write!(f, "WorkloadEndpoint {namespace}/{name}")
            }
            EndpointKey::Host { name } => write!(f, "HostEndpoint {name}"),
        }
    }
}

/// Anything with labels and addresses that a rule selector can select.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum MemberKey {
    Endpoint(EndpointKey),
    /// `namespace` is `None` for a GlobalNetworkSet.
    NetworkSet {
        namespace: Option<String>,
        name: String,
    },
}

/// Traffic into the endpoint (`ingress` rules) or out of it (`egress` rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Ingress,
    Egress,
}

/// Which of Calico's policy stages a GlobalNetworkPolicy belongs to. `doNotTrack` and
/// `preDNAT` policies apply to host endpoints only, before the normal (tracked) ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PolicyStage {
    #[default]
    Normal,
    /// `doNotTrack: true`: every packet, before connection tracking.
    Untracked,
    /// `preDNAT: true`: ingress only, the first packet of a flow, before the normal policies.
    PreDnat,
    /// The normal policies with `applyOnForward: true`: what of a host endpoint's policy
    /// applies to traffic forwarded through it (to and from workloads).
    Forward,
}

/// Why a resource was not taken or a program could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{resource}: {field} {value:?}: {reason}")]
    Field {
        resource: String,
        field: String,
        value: String,
        reason: String,
    },
    #[error("{resource}: {field} {value:?}: {source}")]
    Selector {
        resource: String,
        field: String,
        value: String,
        source: selector::ParseError,
    },
    #[error("{0} is not known")]
    UnknownEndpoint(EndpointKey),
    #[error("{endpoint} is on node {node}, not this one")]
    NotLocal { endpoint: EndpointKey, node: String },
}
