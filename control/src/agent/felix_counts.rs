//! What the agent knows that Felix's metrics report: the cluster's nodes and endpoints, the
//! policy resources, and the datastore sync.

use super::Agent;
use crate::metrics::felix::ClusterCounts;

impl Agent {
    /// The counts behind the `felix_*` metrics of agent mode. Walks the policy model (see
    /// [`crate::policy::PolicyModel::stats`]): call it now and then, not on every event.
    pub fn felix_counts(&self) -> ClusterCounts {
        let model = self.policy.model().stats();
        // Felix counts a host for every Node and for every node named by an endpoint.
        let mut hosts = model.endpoint_nodes.clone();
        hosts.extend(self.view.nodes().map(|n| n.name.clone()));
        ClusterCounts {
            local_endpoints: model.local_endpoints,
            active_local_policies: model.active_local_policies,
            active_local_selectors: model.active_local_selectors,
            hosts: hosts.len(),
            workload_endpoints: model.workload_endpoints,
            host_endpoints: model.host_endpoints,
            tiers: model.tiers,
            policies: model.policies,
            profiles: model.profiles,
            ipsets: model.ipsets,
            resyncs_started: self.resyncs_started,
            in_sync: !self.needs_resync,
        }
    }
}
