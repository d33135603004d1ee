//! The plugin run under `nsenter --net`, as some runtimes and scripts run it: its network
//! namespace is another one, its `/sys` still the root namespace's. Everything it does and
//! checks on "the host" must be in the namespace it runs in.

use std::process::Command;

use super::fixture::*;

/// Embedded store only: etcd listens on the root namespace's loopback, which a plugin in
/// another namespace cannot reach.
pub(crate) fn under_nsenter_the_host_end_is_found_checked_and_removed_in_the_callers_namespace(
    cluster: Cluster,
) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    // The "host" the plugin runs in, and the container.
    let node = Workload::new(&format!("{}-node", cluster.label));
    let w = Workload::new(&cluster.label);
    let conf = cluster.netconf("net1", &[]).to_string();
    let nsenter = format!("--net={}", node.netns_path());
    let run = |command: &str| {
        cluster.run_under(
            &["nsenter", &nsenter],
            "brindle-cni",
            command,
            &w.container_id,
            &w.netns_path(),
            conf.as_bytes(),
            "",
        )
    };
    let in_node = |name: &str| {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &node.netns_name(),
                "ip",
                "link",
                "show",
                "dev",
                name,
            ])
            .output()
            .unwrap()
            .status
            .success()
    };

    let (ok, result) = run("ADD");
    assert!(ok, "ADD failed: {result}");
    assert!(
        in_node(&w.host_if()),
        "the host end is in the caller's namespace"
    );
    assert!(
        !host_if_exists(&w.host_if()),
        "and not in the root namespace"
    );
    assert_eq!(result["interfaces"][0]["mac"], "ee:ee:ee:ee:ee:ee");

    let (ok, out) = run("CHECK");
    assert!(ok, "CHECK did not find the host end it made: {out}");

    // DEL removes the veth from the caller's namespace.
    let (ok, out) = run("DEL");
    assert!(ok, "DEL failed: {out}");
    assert!(!in_node(&w.host_if()), "DEL left the veth");
    assert!(cluster.endpoint(&w).is_none());

    // ADD again, the host end removed behind the plugin's back: CHECK says so.
    let (ok, result) = run("ADD");
    assert!(ok, "second ADD failed: {result}");
    let deleted = Command::new("ip")
        .args([
            "netns",
            "exec",
            &node.netns_name(),
            "ip",
            "link",
            "del",
            "dev",
            &w.host_if(),
        ])
        .status()
        .unwrap()
        .success();
    assert!(deleted);
    let (ok, out) = run("CHECK");
    assert!(!ok, "CHECK passed without the host end");
    let msg = out["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&w.host_if()) && msg.contains("missing"),
        "{out}"
    );
    let (ok, out) = run("DEL");
    assert!(ok, "DEL failed: {out}");
    assert!(cluster.ipam_ips("net1", &w.container_id).is_empty());
}
