//! Rendering what Calico applies to one local endpoint: its tiers with the policies that
//! select it, then its profiles.

use std::collections::BTreeMap;

use fastpath::classifier::{self, EndpointRules, TierDefaultAction};
use resources::policy::{DEFAULT_TIER, DEFAULT_TIER_ORDER};
use selector::Selector;

use super::{PolicyModel, TierFacts};
use crate::policy::members::NamedPort;
use crate::policy::rules::{LocalSide, ParsedRule};
use crate::policy::{Direction, EndpointKey, MemberKey, PolicyError, PolicyStage};

impl PolicyModel {
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
                .flat_map(|r| r.render(local, &facts.ports, |sel| self.named_ports_of(sel)))
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
