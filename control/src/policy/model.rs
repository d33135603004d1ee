//! The store of policy resources, how each update changes address sets and which endpoints it
//! makes dirty, and rendering one endpoint's [`EndpointRules`].

use std::collections::{BTreeMap, BTreeSet};

use fastpath::classifier::{self, Cidr, EndpointRules, IpSetId, TierDefaultAction};
use resources::policy::{default_policy_types, PolicyType, DEFAULT_TIER, DEFAULT_TIER_ORDER};
use resources::{GlobalNetworkPolicy, Kind, NetworkPolicy, Profile, Resource, Tier};
use selector::{scope, PolicyScope, Selector};

use super::ipsets::{AddressSets, IpSetDelta, MemberFacts};
use super::members::{self, effective_labels, EndpointFacts, Labelled, NamedPort};
use super::rules::{parse_rule, LocalSide, ParsedRule};
use super::{Direction, EndpointKey, MemberKey, PolicyError, PolicyStage};

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

fn rule_sets(rules: &[ParsedRule]) -> impl Iterator<Item = IpSetId> + '_ {
    rules.iter().flat_map(ParsedRule::sets)
}

fn has_remote_named_ports(ingress: &[ParsedRule], egress: &[ParsedRule]) -> bool {
    ingress.iter().any(|r| r.src.has_named_ports())
        || egress.iter().any(|r| r.dst.has_named_ports())
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

    fn upsert_tier(&mut self, tier: &Tier) {
        let name = tier.metadata.name.clone();
        let default_action = match tier.spec.default_action {
            Some(resources::policy::TierDefaultAction::Pass) => TierDefaultAction::Pass,
            _ => TierDefaultAction::Deny,
        };
        let order = tier
            .spec
            .order
            .or((name == DEFAULT_TIER).then_some(DEFAULT_TIER_ORDER));
        let facts = TierFacts {
            order,
            default_action,
        };
        if self.tiers.insert(name.clone(), facts) != Some(facts) {
            self.dirty_tier(&name);
        }
    }

    fn remove_tier(&mut self, name: &str) {
        if self.tiers.remove(name).is_some() {
            self.dirty_tier(name);
        }
    }

    fn upsert_network_policy(&mut self, p: &NetworkPolicy) -> Result<(), PolicyError> {
        let ns = p
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| resources::DEFAULT_NAMESPACE.to_string());
        let key = PolicyKey {
            namespace: Some(ns.clone()),
            name: p.metadata.name.clone(),
        };
        let what = format!("NetworkPolicy {ns}/{}", p.metadata.name);
        let s = &p.spec;
        let selector = parse_selector(&what, "spec.selector", s.selector.as_deref())?;
        let mut applies_to = scope::policy_selector(PolicyScope::Namespace(&ns), selector.as_ref());
        if let Some(sa) = parse_selector(
            &what,
            "spec.serviceAccountSelector",
            s.service_account_selector.as_deref(),
        )? {
            applies_to = applies_to.and(&sa.with_label_prefix("pcsa."));
        }
        let tier = s.tier.clone().unwrap_or_else(|| DEFAULT_TIER.to_string());
        let types = if s.types.is_empty() {
            default_policy_types(&s.ingress, &s.egress)
        } else {
            s.types.clone()
        };
        let stored = self.parse_policy(
            PolicyScope::Namespace(&ns),
            &what,
            tier,
            s.order,
            applies_to,
            &types,
            &s.ingress,
            &s.egress,
        )?;
        self.store_policy(key, Some(stored));
        Ok(())
    }

    fn upsert_global_network_policy(&mut self, p: &GlobalNetworkPolicy) -> Result<(), PolicyError> {
        let key = PolicyKey {
            namespace: None,
            name: p.metadata.name.clone(),
        };
        let what = format!("GlobalNetworkPolicy {}", p.metadata.name);
        let s = &p.spec;
        // Calico runs these before conntrack / before DNAT, on host endpoints only.
        let stage = match (s.do_not_track, s.pre_dnat) {
            (Some(true), _) => PolicyStage::Untracked,
            (_, Some(true)) => PolicyStage::PreDnat,
            _ => PolicyStage::Normal,
        };
        let selector = parse_selector(&what, "spec.selector", s.selector.as_deref())?;
        let namespace_selector = parse_selector(
            &what,
            "spec.namespaceSelector",
            s.namespace_selector.as_deref(),
        )?;
        let mut applies_to = match &namespace_selector {
            // The same rewrite as a rule's namespaceSelector: over `pcns.` labels.
            Some(ns_sel) => scope::rule_selector(
                PolicyScope::Global,
                Some(&selector.clone().unwrap_or_else(Selector::all)),
                Some(ns_sel),
                false,
            )
            .unwrap_or_else(Selector::all),
            None => scope::policy_selector(PolicyScope::Global, selector.as_ref()),
        };
        if let Some(sa) = parse_selector(
            &what,
            "spec.serviceAccountSelector",
            s.service_account_selector.as_deref(),
        )? {
            applies_to = applies_to.and(&sa.with_label_prefix("pcsa."));
        }
        let tier = s.tier.clone().unwrap_or_else(|| DEFAULT_TIER.to_string());
        let types = if s.types.is_empty() {
            default_policy_types(&s.ingress, &s.egress)
        } else {
            s.types.clone()
        };
        let stored = self.parse_policy(
            PolicyScope::Global,
            &what,
            tier,
            s.order,
            applies_to,
            &types,
            &s.ingress,
            &s.egress,
        )?;
        let stored = StoredPolicy {
            stage,
            apply_on_forward: s.apply_on_forward == Some(true),
            ..stored
        };
        self.store_policy(key, Some(stored));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn parse_policy(
        &mut self,
        scope: PolicyScope<'_>,
        what: &str,
        tier: String,
        order: Option<f64>,
        applies_to: Selector,
        types: &[PolicyType],
        ingress: &[resources::Rule],
        egress: &[resources::Rule],
    ) -> Result<StoredPolicy, PolicyError> {
        let ingress = if types.contains(&PolicyType::Ingress) {
            Some(self.parse_rules(scope, what, "spec.ingress", ingress)?)
        } else {
            None
        };
        let egress = if types.contains(&PolicyType::Egress) {
            match self.parse_rules(scope, what, "spec.egress", egress) {
                Ok(rules) => Some(rules),
                Err(e) => {
                    for id in ingress.iter().flat_map(|r| rule_sets(r)) {
                        self.sets.release(id);
                    }
                    return Err(e);
                }
            }
        } else {
            None
        };
        Ok(StoredPolicy {
            stage: PolicyStage::Normal,
            apply_on_forward: false,
            tier,
            order,
            applies_to,
            ingress,
            egress,
        })
    }

    /// Parses every rule, or none: on error the sets acquired so far are released.
    fn parse_rules(
        &mut self,
        scope: PolicyScope<'_>,
        what: &str,
        path: &str,
        rules: &[resources::Rule],
    ) -> Result<Vec<ParsedRule>, PolicyError> {
        let mut parsed = Vec::with_capacity(rules.len());
        for (i, rule) in rules.iter().enumerate() {
            match parse_rule(&mut self.sets, scope, what, &format!("{path}[{i}]"), rule) {
                Ok(r) => parsed.push(r),
                Err(e) => {
                    for id in rule_sets(&parsed) {
                        self.sets.release(id);
                    }
                    return Err(e);
                }
            }
        }
        Ok(parsed)
    }

    /// Replaces (or with `None` removes) a policy. The new version's sets were acquired
    /// before the old one's are released, so a selector both use keeps its set and id.
    fn store_policy(&mut self, key: PolicyKey, new: Option<StoredPolicy>) {
        let old = match new {
            Some(p) => {
                self.dirty_selected(&p.applies_to);
                self.policies.insert(key, p)
            }
            None => self.policies.remove(&key),
        };
        if let Some(old) = old {
            self.dirty_selected(&old.applies_to);
            self.release_rules(old.ingress.iter().chain(old.egress.iter()).flatten());
        }
    }

    fn remove_policy(&mut self, key: &PolicyKey) {
        self.store_policy(key.clone(), None);
    }

    fn release_rules<'a>(&mut self, rules: impl Iterator<Item = &'a ParsedRule>) {
        let ids: Vec<IpSetId> = rules.flat_map(ParsedRule::sets).collect();
        for id in ids {
            self.sets.release(id);
        }
    }

    fn upsert_profile(&mut self, p: &Profile) -> Result<(), PolicyError> {
        let name = p.metadata.name.clone();
        let what = format!("Profile {name}");
        // Profiles are global: their rules' selectors are not namespace-scoped.
        let ingress =
            self.parse_rules(PolicyScope::Global, &what, "spec.ingress", &p.spec.ingress)?;
        let egress =
            match self.parse_rules(PolicyScope::Global, &what, "spec.egress", &p.spec.egress) {
                Ok(rules) => rules,
                Err(e) => {
                    self.release_rules(ingress.iter());
                    return Err(e);
                }
            };
        let stored = StoredProfile {
            labels_to_apply: p.spec.labels_to_apply.clone(),
            ingress,
            egress,
        };
        let old = self.profiles.insert(name.clone(), stored);
        if let Some(old) = old {
            self.release_rules(old.ingress.iter().chain(&old.egress));
        }
        self.profile_changed(&name);
        Ok(())
    }

    fn remove_profile(&mut self, name: &str) {
        if let Some(old) = self.profiles.remove(name) {
            self.release_rules(old.ingress.iter().chain(&old.egress));
            self.profile_changed(name);
        }
    }

    /// A profile's labels reach everything inheriting from it; its rules the endpoints
    /// listing it.
    fn profile_changed(&mut self, name: &str) {
        let inheriting: Vec<MemberKey> = self
            .labelled
            .iter()
            .filter(|(_, l)| l.parents.iter().any(|p| p == name))
            .map(|(k, _)| k.clone())
            .collect();
        for key in inheriting {
            self.refresh_member(&key);
            if let MemberKey::Endpoint(e) = &key {
                self.dirty_if_local(e);
            }
        }
        let listing: Vec<EndpointKey> = self
            .endpoints
            .iter()
            .filter(|(_, f)| f.profiles.iter().any(|p| p == name))
            .map(|(k, _)| k.clone())
            .collect();
        for e in listing {
            self.dirty_if_local(&e);
        }
    }

    fn upsert_endpoint(&mut self, key: EndpointKey, labelled: Labelled, facts: EndpointFacts) {
        let member = MemberKey::Endpoint(key.clone());
        let old_labels = self.sets.member(&member).map(|m| m.labels.clone());
        let old_facts = self.endpoints.insert(key.clone(), facts.clone());
        let old_labelled = self.labelled.insert(member.clone(), labelled.clone());
        if old_facts.as_ref() == Some(&facts) && old_labelled.as_ref() == Some(&labelled) {
            return;
        }
        self.refresh_member(&member);
        let was_local = old_facts.as_ref().is_some_and(|f| f.node == self.node);
        if was_local || facts.node == self.node {
            self.dirty.insert(key.clone());
        }
        // Named ports on a rule's remote side are compiled in as numbers from the selected
        // endpoints' ports (see `rules`), so a change of those may change local programs.
        let new_labels = self.sets.member(&member).map(|m| m.labels.clone());
        let ports_moved =
            old_facts.as_ref().map(|f| &f.ports) != Some(&facts.ports) || old_labels != new_labels;
        let endpoint_has_ports =
            !facts.ports.is_empty() || old_facts.is_some_and(|f| !f.ports.is_empty());
        if ports_moved && endpoint_has_ports && self.any_remote_named_ports() {
            self.dirty_all_local();
        }
    }

    fn remove_endpoint(&mut self, key: &EndpointKey) {
        let Some(old) = self.endpoints.remove(key) else {
            return;
        };
        self.remove_labelled(&MemberKey::Endpoint(key.clone()));
        if old.node == self.node {
            self.dirty.insert(key.clone());
        }
        if !old.ports.is_empty() && self.any_remote_named_ports() {
            self.dirty_all_local();
        }
    }

    fn upsert_labelled(&mut self, key: MemberKey, labelled: Labelled) {
        if self.labelled.get(&key) == Some(&labelled) {
            return;
        }
        self.labelled.insert(key.clone(), labelled);
        self.refresh_member(&key);
    }

    fn remove_labelled(&mut self, key: &MemberKey) {
        self.labelled.remove(key);
        self.sets.remove_member(key);
    }

    /// Recomputes a member's effective labels and moves its addresses between sets.
    fn refresh_member(&mut self, key: &MemberKey) {
        let Some(labelled) = self.labelled.get(key) else {
            return;
        };
        let profiles = &self.profiles;
        let labels = effective_labels(labelled, |name| {
            profiles.get(name).map(|p| p.labels_to_apply.clone())
        });
        let facts = MemberFacts {
            labels,
            cidrs: labelled.cidrs.clone(),
        };
        self.sets.upsert_member(key.clone(), facts);
    }

    // ---- dirty tracking ----------------------------------------------------------------

    fn is_local(&self, key: &EndpointKey) -> bool {
        self.endpoints.get(key).is_some_and(|f| f.node == self.node)
    }

    fn dirty_if_local(&mut self, key: &EndpointKey) {
        if self.is_local(key) {
            self.dirty.insert(key.clone());
        }
    }

    fn local_endpoint_keys(&self) -> Vec<EndpointKey> {
        self.endpoints
            .iter()
            .filter(|(_, f)| f.node == self.node)
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn dirty_all_local(&mut self) {
        let local = self.local_endpoint_keys();
        self.dirty.extend(local);
    }

    fn dirty_selected(&mut self, selector: &Selector) {
        let selected: Vec<EndpointKey> = self
            .local_endpoint_keys()
            .into_iter()
            .filter(|k| {
                self.sets
                    .member(&MemberKey::Endpoint(k.clone()))
                    .is_some_and(|m| selector.matches(&m.labels))
            })
            .collect();
        self.dirty.extend(selected);
    }

    fn dirty_tier(&mut self, tier: &str) {
        let selectors: Vec<Selector> = self
            .policies
            .values()
            .filter(|p| p.tier == tier)
            .map(|p| p.applies_to.clone())
            .collect();
        for s in selectors {
            self.dirty_selected(&s);
        }
    }

    fn any_remote_named_ports(&self) -> bool {
        self.policies.values().any(|p| {
            has_remote_named_ports(
                p.ingress.as_deref().unwrap_or(&[]),
                p.egress.as_deref().unwrap_or(&[]),
            )
        }) || self
            .profiles
            .values()
            .any(|p| has_remote_named_ports(&p.ingress, &p.egress))
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

    // ---- rendering ---------------------------------------------------------------------

    /// What Calico applies to local endpoint `key` in `direction`: the tiers with the policies
    /// selecting it, then its profiles. Compile with `ClassifierBuilder::compile`.
    pub fn endpoint_rules(
        &self,
        key: &EndpointKey,
        direction: Direction,
    ) -> Result<EndpointRules, PolicyError> {
        self.endpoint_rules_in(key, direction, PolicyStage::Normal)
    }

    /// [`Self::endpoint_rules`] for one policy stage. The untracked, pre-DNAT and forward
    /// stages exist for host endpoints only (empty for workloads) and hold no profiles. The
    /// untracked and pre-DNAT tiers pass at their end: such a program decides only through an
    /// explicit rule, and when none matches the next stage decides. The forward stage is the
    /// normal policies with `applyOnForward` (Calico: no such policy, forwarded traffic
    /// passes; some, and nothing allows it, it is dropped).
    pub fn endpoint_rules_in(
        &self,
        key: &EndpointKey,
        direction: Direction,
        stage: PolicyStage,
    ) -> Result<EndpointRules, PolicyError> {
        let facts = self
            .endpoints
            .get(key)
            .ok_or_else(|| PolicyError::UnknownEndpoint(key.clone()))?;
        if facts.node != self.node {
            return Err(PolicyError::NotLocal {
                endpoint: key.clone(),
                node: facts.node.clone(),
            });
        }
        if stage != PolicyStage::Normal && matches!(key, EndpointKey::Workload { .. }) {
            return Ok(EndpointRules::default());
        }
        let empty = BTreeMap::new();
        let labels = self
            .sets
            .member(&MemberKey::Endpoint(key.clone()))
            .map(|m| &m.labels)
            .unwrap_or(&empty);
        let local = match direction {
            Direction::Ingress => LocalSide::Destination,
            Direction::Egress => LocalSide::Source,
        };
        let render = |rules: &[ParsedRule]| -> Vec<classifier::Rule> {
            rules
                .iter()
                .filter_map(|r| r.render(local, &facts.ports, |sel| self.named_ports_of(sel)))
                .collect()
        };

        let mut tiers: BTreeMap<&str, classifier::Tier> = BTreeMap::new();
        for (pkey, policy) in &self.policies {
            let rules = match direction {
                Direction::Ingress => policy.ingress.as_deref(),
                Direction::Egress => policy.egress.as_deref(),
            };
            let Some(rules) = rules else { continue };
            let in_stage = match stage {
                PolicyStage::Forward => {
                    policy.stage == PolicyStage::Normal && policy.apply_on_forward
                }
                _ => policy.stage == stage,
            };
            if !in_stage || !policy.applies_to.matches(labels) {
                continue;
            }
            let Some(tier_facts) = self.tier(&policy.tier) else {
                // Felix renders only tiers it knows; Calico refuses such policies on write.
                tracing::debug!(policy = %pkey.program_name(), tier = %policy.tier, "policy in an unknown tier is ignored");
                continue;
            };
            tiers
                .entry(policy.tier.as_str())
                .or_insert_with(|| classifier::Tier {
                    name: policy.tier.clone(),
                    order: tier_facts.order,
                    default_action: match stage {
                        PolicyStage::Normal | PolicyStage::Forward => tier_facts.default_action,
                        PolicyStage::Untracked | PolicyStage::PreDnat => TierDefaultAction::Pass,
                    },
                    policies: Vec::new(),
                })
                .policies
                .push(classifier::Policy {
                    name: pkey.program_name(),
                    order: policy.order,
                    rules: render(rules),
                });
        }

        let mut profiles = Vec::new();
        for name in facts
            .profiles
            .iter()
            .filter(|_| stage == PolicyStage::Normal)
        {
            let Some(profile) = self.profiles.get(name) else {
                tracing::debug!(endpoint = %key, profile = %name, "endpoint names a profile that does not exist");
                continue;
            };
            let rules = match direction {
                Direction::Ingress => &profile.ingress,
                Direction::Egress => &profile.egress,
            };
            profiles.push(classifier::Profile {
                name: name.clone(),
                rules: render(rules),
            });
        }
        Ok(EndpointRules {
            tiers: tiers.into_values().collect(),
            profiles,
        })
    }

    /// A stored tier, or the `default` tier Calico always has.
    fn tier(&self, name: &str) -> Option<TierFacts> {
        self.tiers.get(name).copied().or_else(|| {
            (name == DEFAULT_TIER).then_some(TierFacts {
                order: Some(DEFAULT_TIER_ORDER),
                default_action: TierDefaultAction::Deny,
            })
        })
    }

    /// The named ports of every endpoint `selector` selects (all endpoints for `None`).
    fn named_ports_of(&self, selector: Option<&Selector>) -> Vec<NamedPort> {
        self.endpoints
            .iter()
            .filter(|(k, _)| {
                selector.is_none_or(|s| {
                    self.sets
                        .member(&MemberKey::Endpoint((*k).clone()))
                        .is_some_and(|m| s.matches(&m.labels))
                })
            })
            .flat_map(|(_, f)| f.ports.iter().cloned())
            .collect()
    }
}

fn parse_selector(
    what: &str,
    field: &str,
    text: Option<&str>,
) -> Result<Option<Selector>, PolicyError> {
    text.map(|t| {
        Selector::parse(t).map_err(|e| PolicyError::Selector {
            resource: what.to_string(),
            field: field.to_string(),
            value: t.to_string(),
            source: e,
        })
    })
    .transpose()
}
