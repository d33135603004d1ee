//! The counts behind the node's `felix_*` metrics.

use super::*;

#[test]
fn stats_count_local_and_cluster_resources_and_only_locally_active_policies_and_selectors() {
    let mut lab = two_workloads("[net]");
    lab.apply(&network_profile("net"));
    lab.apply(ALLOW_ALL_PROFILE);
    lab.apply(&wep(
        "default/remote",
        "node-b",
        "10.0.5.5",
        "{role: server}",
        "[open]",
    ));
    lab.apply(&tier("security", "10", "Deny"));
    // Applies to a local server: active here, with its one rule selector.
    lab.apply(&gnp(
        "security.servers",
        "1",
        "role == 'server'",
        "[{action: Allow, source: {selector: \"role == 'client'\"}}]",
        "[]",
    ));
    // Applies to no endpoint of this node: counted in the cluster, not here.
    lab.apply(&gnp(
        "guests",
        "1",
        "role == 'guest'",
        "[{action: Allow, source: {selector: \"role == 'admin'\"}}]",
        "[]",
    ));
    let stats = lab.model.stats();
    assert_eq!(stats.local_endpoints, 2);
    assert_eq!(stats.active_local_policies, 1);
    // `role == 'client'` and the local profile's `has(net)`; not `role == 'admin'`.
    assert_eq!(stats.active_local_selectors, 2);
    assert_eq!(stats.workload_endpoints, 3);
    assert_eq!(stats.host_endpoints, 0);
    assert_eq!(
        stats
            .endpoint_nodes
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        [NODE, "node-b"]
    );
    assert_eq!((stats.tiers, stats.policies, stats.profiles), (1, 2, 2));
    // Every rule selector has its set in the dataplane, active here or not.
    assert_eq!(stats.ipsets, 3);

    // The local endpoints go: nothing is active here any more.
    lab.model
        .remove(Kind::WorkloadEndpoint, Some("default"), "client");
    lab.model
        .remove(Kind::WorkloadEndpoint, Some("default"), "server");
    let stats = lab.model.stats();
    assert_eq!(
        (
            stats.local_endpoints,
            stats.active_local_policies,
            stats.active_local_selectors
        ),
        (0, 0, 0)
    );
    assert_eq!(stats.workload_endpoints, 1);
}
