//! Endpoints and network sets: their addresses in the sets rules select, and which local
//! endpoints a change makes dirty.

use selector::Selector;

use super::PolicyModel;
use crate::policy::ipsets::MemberFacts;
use crate::policy::members::{effective_labels, EndpointFacts, Labelled};
use crate::policy::rules::ParsedRule;
use crate::policy::{EndpointKey, MemberKey};

impl PolicyModel {
    pub(super) fn upsert_endpoint(
        &mut self,
        key: EndpointKey,
        labelled: Labelled,
        facts: EndpointFacts,
    ) {
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

    pub(super) fn remove_endpoint(&mut self, key: &EndpointKey) {
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

    pub(super) fn upsert_labelled(&mut self, key: MemberKey, labelled: Labelled) {
        if self.labelled.get(&key) == Some(&labelled) {
            return;
        }
        self.labelled.insert(key.clone(), labelled);
        self.refresh_member(&key);
    }

    pub(super) fn remove_labelled(&mut self, key: &MemberKey) {
        self.labelled.remove(key);
        self.sets.remove_member(key);
    }

    /// Recomputes a member's effective labels and moves its addresses between sets.
    pub(super) fn refresh_member(&mut self, key: &MemberKey) {
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

    pub(super) fn is_local(&self, key: &EndpointKey) -> bool {
        self.endpoints.get(key).is_some_and(|f| f.node == self.node)
    }

    pub(super) fn dirty_if_local(&mut self, key: &EndpointKey) {
        if self.is_local(key) {
            self.dirty.insert(key.clone());
        }
    }

    pub(super) fn local_endpoint_keys(&self) -> Vec<EndpointKey> {
        self.endpoints
            .iter()
            .filter(|(_, f)| f.node == self.node)
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub(super) fn dirty_all_local(&mut self) {
        let local = self.local_endpoint_keys();
        self.dirty.extend(local);
    }

    pub(super) fn dirty_selected(&mut self, selector: &Selector) {
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

    pub(super) fn dirty_tier(&mut self, tier: &str) {
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

    pub(super) fn any_remote_named_ports(&self) -> bool {
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
}

fn has_remote_named_ports(ingress: &[ParsedRule], egress: &[ParsedRule]) -> bool {
    ingress.iter().any(|r| r.src.has_named_ports())
        || egress.iter().any(|r| r.dst.has_named_ports())
}
