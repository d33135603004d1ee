//! Counts of what the model holds, for the node's Felix-compatible metrics
//! (`felix_active_local_*`, `felix_cluster_num_*`, `felix_ipsets_*`).

use std::collections::BTreeSet;

use super::{EndpointKey, MemberKey, PolicyModel};

/// What the model holds, counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// This node's endpoints (workload and host).
    pub local_endpoints: usize,
    /// Policies that apply to at least one of this node's endpoints.
    pub active_local_policies: usize,
    /// Distinct rule selectors (address sets) in the rules of those policies and of the
    /// profiles this node's endpoints name.
    pub active_local_selectors: usize,
    /// Workload and host endpoints of every node.
    pub workload_endpoints: usize,
    pub host_endpoints: usize,
    /// The nodes the endpoints belong to.
    pub endpoint_nodes: BTreeSet<String>,
    /// Tier, (Global)NetworkPolicy and Profile resources stored.
    pub tiers: usize,
    pub policies: usize,
    pub profiles: usize,
    /// Address sets the model keeps for rule selectors (what the workers hold).
    pub ipsets: usize,
}

impl PolicyModel {
    /// Counts what the model holds; walks every policy against the local endpoints, so it is
    /// for scrapes and periodic refreshes, not for every update.
    pub fn stats(&self) -> ModelStats {
        let local: Vec<(&EndpointKey, _)> = self
            .endpoints
            .iter()
            .filter(|(_, f)| f.node == self.node)
            .collect();
        let labels: Vec<_> = local
            .iter()
            .filter_map(|(k, _)| self.sets.member(&MemberKey::Endpoint((*k).clone())))
            .map(|m| &m.labels)
            .collect();
        let mut selectors = BTreeSet::new();
        let mut active_local_policies = 0;
        for policy in self.policies.values() {
            if !labels.iter().any(|l| policy.applies_to.matches(*l)) {
                continue;
            }
            active_local_policies += 1;
            let rules = policy.ingress.iter().chain(&policy.egress).flatten();
            selectors.extend(rules.flat_map(|r| r.sets()));
        }
        let profiles: BTreeSet<&String> = local.iter().flat_map(|(_, f)| &f.profiles).collect();
        for profile in profiles.into_iter().filter_map(|p| self.profiles.get(p)) {
            let rules = profile.ingress.iter().chain(&profile.egress);
            selectors.extend(rules.flat_map(|r| r.sets()));
        }
        let workload_endpoints = self
            .endpoints
            .keys()
            .filter(|k| matches!(k, EndpointKey::Workload { .. }))
            .count();
        ModelStats {
            local_endpoints: local.len(),
            active_local_policies,
            active_local_selectors: selectors.len(),
            workload_endpoints,
            host_endpoints: self.endpoints.len() - workload_endpoints,
            endpoint_nodes: self.endpoints.values().map(|f| f.node.clone()).collect(),
            tiers: self.tiers.len(),
            policies: self.policies.len(),
            profiles: self.profiles.len(),
            ipsets: self.sets.set_ids().count(),
        }
    }
}
