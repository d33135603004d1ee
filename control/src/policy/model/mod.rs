//! The store of policy resources, how each update changes address sets and which endpoints it
//! makes dirty, and rendering one endpoint's
//! [`EndpointRules`](fastpath::classifier::EndpointRules).
//!
//! The store and what the agent reads of it are here; `policies` (tiers, policies, profiles)
//! and `endpoints` (endpoints, network sets, dirty tracking) apply updates; `render` makes an
//! endpoint's rules.

mod endpoints;
mod policies;
mod render;
mod stats;

pub use stats::ModelStats;

use std::collections::{BTreeMap, BTreeSet};

use fastpath::classifier::{Cidr, IpSetId, TierDefaultAction};
use resources::{Kind, Resource};
use selector::Selector;

use super::ipsets::{AddressSets, IpSetDelta};
use super::members::{self, EndpointFacts, Labelled};
use super::rules::ParsedRule;
use super::{EndpointKey, MemberKey, PolicyError, PolicyStage};

#[derive(Debug, Clone, Copy, PartialEq)]
struct TierFacts {
    order: Option<f64>,
    default_action: TierDefaultAction,
}

/// NetworkPolicies are keyed by namespace and name, GlobalNetworkPolicies by name alone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PolicyKey {
    namespace: Option<String>,
    name: String,
}

impl PolicyKey {
    /// The name the classifier sorts by within an order: `<ns>/<name>` for NetworkPolicies
    /// (as Felix names them), the name for GlobalNetworkPolicies.
    fn program_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

#[derive(Debug)]
struct StoredPolicy {
    stage: PolicyStage,
    /// `applyOnForward` (GlobalNetworkPolicy only).
    apply_on_forward: bool,
    tier: String,
    order: Option<f64>,
    /// The endpoints the policy applies to (namespace scoping folded in).
    applies_to: Selector,
    /// `None` when `types` leaves the direction out.
    ingress: Option<Vec<ParsedRule>>,
    egress: Option<Vec<ParsedRule>>,
}

#[derive(Debug)]
struct StoredProfile {
    labels_to_apply: BTreeMap<String, String>,
    ingress: Vec<ParsedRule>,
    egress: Vec<ParsedRule>,
}

/// Calico's policy resources as one node's agent needs them (see the module docs).
#[derive(Debug)]
pub struct PolicyModel {
    /// This node's name: endpoints with `spec.node` equal to it are local.
    node: String,
    tiers: BTreeMap<String, TierFacts>,
    policies: BTreeMap<PolicyKey, StoredPolicy>,
    profiles: BTreeMap<String, StoredProfile>,
    labelled: BTreeMap<MemberKey, Labelled>,
    endpoints: BTreeMap<EndpointKey, EndpointFacts>,
    sets: AddressSets,
    dirty: BTreeSet<EndpointKey>,
}

impl PolicyModel {
    pub fn new(node: impl Into<String>) -> PolicyModel {
        PolicyModel {
            node: node.into(),
            tiers: BTreeMap::new(),
            policies: BTreeMap::new(),
            profiles: BTreeMap::new(),
            labelled: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            sets: AddressSets::default(),
            dirty: BTreeSet::new(),
        }
    }

    // ---- updates -----------------------------------------------------------------------

    /// Stores a resource of a kind the model holds; other kinds are ignored. A resource that
    /// cannot be translated is refused with an error naming the field and value, and the
    /// previous version (if any) stays in force.
    pub fn upsert(&mut self, resource: &Resource) -> Result<(), PolicyError> {
        match resource {
            Resource::Tier(t) => {
                self.upsert_tier(t);
                Ok(())
            }
            Resource::NetworkPolicy(p) => self.upsert_network_policy(p),
            Resource::GlobalNetworkPolicy(p) => self.upsert_global_network_policy(p),
            Resource::Profile(p) => self.upsert_profile(p),
            Resource::WorkloadEndpoint(w) => {
                let (key, labelled, facts) = members::workload(w)?;
                self.upsert_endpoint(key, labelled, facts);
                Ok(())
            }
            Resource::HostEndpoint(h) => {
                let (key, labelled, facts) = members::host(h)?;
                self.upsert_endpoint(key, labelled, facts);
                Ok(())
            }
            Resource::NetworkSet(s) => {
                let (key, labelled) = members::network_set(s)?;
                self.upsert_labelled(key, labelled);
                Ok(())
            }
            Resource::GlobalNetworkSet(s) => {
                let (key, labelled) = members::global_network_set(s)?;
                self.upsert_labelled(key, labelled);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Forgets a resource (`namespace` for namespaced kinds; `default` when `None`).
    pub fn remove(&mut self, kind: Kind, namespace: Option<&str>, name: &str) {
        let ns = || {
            namespace
                .unwrap_or(resources::DEFAULT_NAMESPACE)
                .to_string()
        };
        match kind {
            Kind::Tier => self.remove_tier(name),
            Kind::NetworkPolicy => self.remove_policy(&PolicyKey {
                namespace: Some(ns()),
                name: name.into(),
            }),
            Kind::GlobalNetworkPolicy => self.remove_policy(&PolicyKey {
                namespace: None,
                name: name.into(),
            }),
            Kind::Profile => self.remove_profile(name),
            Kind::WorkloadEndpoint => self.remove_endpoint(&EndpointKey::Workload {
                namespace: ns(),
                name: name.into(),
            }),
            Kind::HostEndpoint => self.remove_endpoint(&EndpointKey::Host { name: name.into() }),
            Kind::NetworkSet => self.remove_labelled(&MemberKey::NetworkSet {
                namespace: Some(ns()),
                name: name.into(),
            }),
            Kind::GlobalNetworkSet => self.remove_labelled(&MemberKey::NetworkSet {
                namespace: None,
                name: name.into(),
            }),
            _ => {}
        }
    }

    // ---- what the agent reads ----------------------------------------------------------

    /// IP set membership changes since the last call, in (set, member) order. Apply them with
    /// [`super::apply_ipset_deltas`] and publish. A fresh `IpSetsWriter` fed every delta since
    /// the model was created holds exactly the model's sets.
    pub fn take_ipset_deltas(&mut self) -> Vec<IpSetDelta> {
        self.sets.take_deltas()
    }

    /// Local endpoints whose programs must be rendered and compiled again since the last call
    /// (including removed ones and ones that moved to another node: [`Self::endpoint_rules`] then
    /// says [`PolicyError::UnknownEndpoint`] or [`PolicyError::NotLocal`]; drop their programs).
    pub fn dirty_endpoints(&mut self) -> Vec<EndpointKey> {
        std::mem::take(&mut self.dirty).into_iter().collect()
    }

    /// This node's endpoints and their interface names.
    pub fn local_endpoints(&self) -> Vec<(EndpointKey, String)> {
        self.endpoints
            .iter()
            .filter(|(_, f)| f.node == self.node)
            .map(|(k, f)| (k.clone(), f.interface.clone()))
            .collect()
    }

    /// The effective labels of an endpoint (own over inherited, plus Calico's).
    pub fn endpoint_labels(&self, key: &EndpointKey) -> Option<&BTreeMap<String, String>> {
        self.sets
            .member(&MemberKey::Endpoint(key.clone()))
            .map(|m| &m.labels)
    }

    /// Every address set in use with the selector it stands for.
    pub fn ipsets(&self) -> Vec<(IpSetId, &Selector)> {
        self.sets
            .set_ids()
            .filter_map(|id| self.sets.selector(id).map(|s| (id, s)))
            .collect()
    }

    /// The current members of a set, sorted (empty for an unknown set).
    pub fn ipset_members(&self, id: IpSetId) -> Vec<Cidr> {
        self.sets.addresses(id)
    }
}
