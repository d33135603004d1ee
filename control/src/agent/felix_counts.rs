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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use resources::load_documents;

    use super::super::fixtures::{endpoint, node};
    use super::super::tests::{agent_on_embedded_store, Dir};
    use crate::metrics::felix::ClusterCounts;

    #[test]
    fn the_counts_follow_the_datastore() {
        let dir =
            Dir(std::env::temp_dir()
                .join(format!("brindle-agent-felix-counts-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&dir.0);
        std::fs::create_dir_all(&dir.0).unwrap();
        let (mut agent, store) = agent_on_embedded_store(&dir.0);
        for kv in [
            endpoint("n1", "a", "10.1.0.1"),
            endpoint("n1", "b", "10.1.0.2"),
            endpoint("n3", "c", "10.1.3.1"),
            node("n2", "10.99.0.2/24", None, &[], ""),
        ] {
            store.put(&kv.key, &kv.value).unwrap();
        }
        let policy = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: everyone
spec:
  selector: all()
  ingress: [{action: Allow, source: {selector: \"role == 'db'\"}}]
";
        for r in load_documents(policy).unwrap() {
            store.put(&r.key(), &r.to_stored_json()).unwrap();
        }
        let want = ClusterCounts {
            local_endpoints: 2,
            active_local_policies: 1,
            active_local_selectors: 1,
            // n1 (this node), n2 (a Node), n3 (named by an endpoint only).
            hosts: 3,
            workload_endpoints: 3,
            host_endpoints: 0,
            tiers: 0,
            policies: 1,
            profiles: 0,
            ipsets: 1,
            resyncs_started: 1,
            in_sync: true,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while agent.felix_counts() != want && Instant::now() < deadline {
            agent.poll();
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(agent.felix_counts(), want);
    }
}
