//! The plugin killed in the middle of ADD and of DEL, at a spread of moments (a runtime's
//! timeout, an OOM kill): the runtime's repair works (after a failed ADD it runs DEL, then
//! ADD again; after a failed DEL, DEL again), and in the end nothing is left behind: no
//! address, handle, endpoint or interface, and `ipam check` finds the datastore consistent.

use std::time::Duration;

use ipam::Ipam;

use super::fixture::*;

/// Kill moments, in milliseconds after the start: before the plugin reads its input, while
/// it allocates, wires and records, and after it is done.
const KILL_AFTER_MS: [u64; 12] = [0, 2, 4, 6, 8, 10, 13, 16, 20, 25, 35, 60];

pub(crate) fn a_plugin_killed_mid_add_or_del_leaks_nothing_once_the_runtime_repairs(
    cluster: Cluster,
) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let conf = cluster.netconf("net1", &[]);
    let mut killed = 0;
    for ms in KILL_AFTER_MS {
        let after = Duration::from_millis(ms);
        let w = Workload::new(&cluster.label);
        killed += usize::from(cluster.cni_killed_after("ADD", &w, &conf, after));
        let (ok, out) = cluster.cni("DEL", &w, &conf);
        assert!(ok, "DEL after an ADD killed at {ms} ms: {out}");
        let (ok, out) = cluster.cni("ADD", &w, &conf);
        assert!(ok, "ADD after an ADD killed at {ms} ms and its DEL: {out}");
        let (ok, out) = cluster.cni("CHECK", &w, &conf);
        assert!(ok, "CHECK after the repaired ADD ({ms} ms): {out}");

        killed += usize::from(cluster.cni_killed_after("DEL", &w, &conf, after));
        let (ok, out) = cluster.cni("DEL", &w, &conf);
        assert!(ok, "DEL after a DEL killed at {ms} ms: {out}");
        assert!(
            !host_if_exists(&w.host_if()) && cluster.endpoint(&w).is_none(),
            "left after DEL ({ms} ms)"
        );
        assert!(
            cluster.allocated().is_empty(),
            "addresses left after a kill at {ms} ms: {:?}",
            cluster.allocated()
        );
    }
    // The moments reach into the plugins' work, not only before or after it.
    assert!(
        killed >= 4,
        "only {killed} runs were still going when killed"
    );
    let report = Ipam::new(cluster.open())
        .check(&[NODE.to_string()])
        .unwrap();
    assert!(report.is_clean(), "{report:?}");
}
