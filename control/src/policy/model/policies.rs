//! Tiers, NetworkPolicies, GlobalNetworkPolicies and Profiles: storing them, the address
//! sets their rules hold, and the endpoints a change makes dirty.

use fastpath::classifier::{IpSetId, TierDefaultAction};
use resources::policy::{default_policy_types, PolicyType, DEFAULT_TIER, DEFAULT_TIER_ORDER};
use resources::{GlobalNetworkPolicy, NetworkPolicy, Profile, Tier};
use selector::{scope, PolicyScope, Selector};

use super::{PolicyKey, PolicyModel, StoredPolicy, StoredProfile, TierFacts};
use crate::policy::rules::{parse_rule, ParsedRule};
use crate::policy::{EndpointKey, MemberKey, PolicyError, PolicyStage};

impl PolicyModel {
    pub(super) fn upsert_tier(&mut self, tier: &Tier) {
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

    pub(super) fn remove_tier(&mut self, name: &str) {
        if self.tiers.remove(name).is_some() {
            self.dirty_tier(name);
        }
    }

    pub(super) fn upsert_network_policy(&mut self, p: &NetworkPolicy) -> Result<(), PolicyError> {
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

    pub(super) fn upsert_global_network_policy(
        &mut self,
        p: &GlobalNetworkPolicy,
    ) -> Result<(), PolicyError> {
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
    pub(super) fn parse_policy(
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
    pub(super) fn parse_rules(
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
    pub(super) fn store_policy(&mut self, key: PolicyKey, new: Option<StoredPolicy>) {
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

    pub(super) fn remove_policy(&mut self, key: &PolicyKey) {
        self.store_policy(key.clone(), None);
    }

    pub(super) fn release_rules<'a>(&mut self, rules: impl Iterator<Item = &'a ParsedRule>) {
        let ids: Vec<IpSetId> = rules.flat_map(ParsedRule::sets).collect();
        for id in ids {
            self.sets.release(id);
        }
    }

    pub(super) fn upsert_profile(&mut self, p: &Profile) -> Result<(), PolicyError> {
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

    pub(super) fn remove_profile(&mut self, name: &str) {
        if let Some(old) = self.profiles.remove(name) {
            self.release_rules(old.ingress.iter().chain(&old.egress));
            self.profile_changed(name);
        }
    }

    /// A profile's labels reach everything inheriting from it; its rules the endpoints
    /// listing it.
    pub(super) fn profile_changed(&mut self, name: &str) {
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
}

fn rule_sets(rules: &[ParsedRule]) -> impl Iterator<Item = IpSetId> + '_ {
    rules.iter().flat_map(ParsedRule::sets)
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
