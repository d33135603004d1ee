//! Bandwidth limits end to end on one agent node (issue 13 item 7): a workload plugged in by
//! brindle-cni with the `bandwidth` capability's limits (`runtimeConfig.bandwidth`) gets them
//! as its endpoint's `qosControls`, and the vRouter holds TCP to and from it to those rates
//! (Calico's directions: ingress is what the workload receives, egress what it sends), while
//! the workloads without limits are not slowed. tc qdiscs on the veth could not do this: the
//! vRouter moves the veth's frames with AF_XDP, which bypasses them. Root: network namespaces,
//! XDP, iperf3.

mod cluster;

use std::net::Ipv4Addr;
use std::time::Duration;

use cluster::{drop_count, eventually, pings, Cluster};
use serde_json::{json, Value};

const NETWORK: &str = "qosnet";
/// Workload A's limits, bits per second.
const INGRESS: f64 = 20_000_000.0;
const EGRESS: f64 = 10_000_000.0;
/// Each burst, in seconds of its rate. The vRouter polices (drops over the limit, holds
/// nothing back), and TCP through a policer gets its rate only with a burst of a good part of
/// its window: measured here, a burst of 0.05 s of the rate got TCP a quarter of it, 0.1 s
/// half, 0.2 s nearly all. Calico's
/// default burst (4 Gi bits) and the one Kubernetes runtimes send (2^32 - 1 bits) are larger.
const BURST_SECONDS: f64 = 0.2;
/// Each iperf3 run, seconds: the burst passes at once, then the rate holds, so a run sees at
/// most rate x (1 + BURST_SECONDS / RUN), 7 % over.
const RUN: u32 = 3;

/// Bits per second delivered by `RUN` seconds of iperf3 TCP from `client` to `server` at
/// `server_ip`.
fn tcp_rate(c: &Cluster, client: &str, server: &str, server_ip: Ipv4Addr, port: u16) -> f64 {
    let out = lab::iperf::tcp(client, server, server_ip, port, RUN).expect("iperf3");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let bytes = report["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    let seconds = report["end"]["sum_received"]["seconds"]
        .as_f64()
        .filter(|s| *s > 0.0)
        .unwrap_or(f64::from(RUN));
    assert!(
        bytes > 0,
        "iperf3 {client} -> {server} moved nothing: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        c.logs()
    );
    bytes as f64 * 8.0 / seconds
}

#[test]
fn a_workloads_bandwidth_limits_hold_tcp_to_their_rates_and_others_are_not_slowed() {
    let mut c = Cluster::up("qs", "Never", 1, 0);
    let mut limited = c.netconf(1, NETWORK);
    limited["runtimeConfig"] = json!({"bandwidth": {
        "ingressRate": INGRESS as u64, "ingressBurst": (INGRESS * BURST_SECONDS) as u64,
        "egressRate": EGRESS as u64, "egressBurst": (EGRESS * BURST_SECONDS) as u64,
    }});
    let (a, ip_a, _) = c.add_container_with_conf(1, &limited.to_string());
    let (b, ip_b) = c.add_container(1, NETWORK);
    let (cc, ip_c) = c.add_container(1, NETWORK);
    // The limits are A's endpoint's, as calicoctl shows them.
    let weps = c.brindlectl(&["get", "workloadendpoints", "-o", "yaml"]);
    assert!(
        weps.contains("ingressBandwidth: 20000000") && weps.contains("egressBandwidth: 10000000"),
        "{weps}"
    );
    for (from, to) in [(&b, ip_a), (&a, ip_c), (&b, ip_c), (&cc, ip_b)] {
        assert!(
            eventually(Duration::from_secs(15), || pings(from, to)),
            "{from} -> {to}\n{}",
            c.logs()
        );
    }

    let rate_limited = |c: &Cluster| drop_count(&c.stats(1), "rate_limited");
    let before = rate_limited(&c);

    // Delivered to A: its ingress limit.
    let to_a = tcp_rate(&c, &b, &a, ip_a, 5301);
    assert!(
        to_a <= 1.15 * INGRESS && to_a > 0.3 * INGRESS,
        "B -> A at {:.1} Mbit/s through A's {:.0} Mbit/s ingress limit",
        to_a / 1e6,
        INGRESS / 1e6
    );
    let after_ingress = rate_limited(&c);
    assert!(
        after_ingress > before,
        "no frame to A was dropped as over its limit ({before} before, {after_ingress} after)"
    );
    // Sent by A: its egress limit.
    let from_a = tcp_rate(&c, &a, &cc, ip_c, 5302);
    assert!(
        from_a <= 1.15 * EGRESS && from_a > 0.3 * EGRESS,
        "A -> C at {:.1} Mbit/s through A's {:.0} Mbit/s egress limit",
        from_a / 1e6,
        EGRESS / 1e6
    );
    let after_egress = rate_limited(&c);
    assert!(
        after_egress > after_ingress,
        "no frame from A was dropped as over its limit ({after_ingress} before, {after_egress} after)"
    );
    // Between workloads without limits: far above either limit, and nothing dropped for it.
    let free = tcp_rate(&c, &b, &cc, ip_c, 5303);
    assert_eq!(
        rate_limited(&c),
        after_egress,
        "frames between unlimited workloads were dropped as over a limit"
    );
    assert!(
        free > 10.0 * INGRESS,
        "B -> C (no limits) at only {:.1} Mbit/s",
        free / 1e6
    );
}

/// Runs the reference `bandwidth` plugin (Debian's containernetworking-plugins) ADD for the
/// container in `ns`, chained after brindle-cni as Calico's conflists chain it: the runtime's
/// limits go to it, not to brindle-cni, and it puts tc qdiscs on the host veth.
fn chain_bandwidth_plugin(c: &Cluster, ns: &str, prev_result: &Value, limits: Value) {
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "type": "bandwidth",
        "capabilities": {"bandwidth": true},
        "runtimeConfig": {"bandwidth": limits},
        "prevResult": prev_result,
    });
    let plugin = lab::cni::CniPlugin {
        bin_dir: "/usr/lib/cni".into(),
        plugin: "bandwidth".into(),
        env: Vec::new(),
    };
    let out = plugin
        .invoke(
            &c.node_netns(1),
            "ADD",
            &Cluster::container_id(ns),
            &std::path::PathBuf::from(format!("/var/run/netns/{ns}")),
            "eth0",
            &conf.to_string(),
        )
        .unwrap();
    assert!(out.success, "bandwidth ADD: {}\n{}", out.stdout, out.stderr);
}

#[test]
fn a_chained_bandwidth_plugins_limits_are_enforced_by_the_vrouter() {
    let mut c = Cluster::up("qt", "Never", 1, 0);
    let (a, ip_a, result) = c.add_container_with_result(1, NETWORK);
    let (b, _) = c.add_container(1, NETWORK);
    let (cc, ip_c) = c.add_container(1, NETWORK);
    chain_bandwidth_plugin(
        &c,
        &a,
        &result,
        json!({
            "ingressRate": INGRESS as u64, "ingressBurst": (INGRESS * BURST_SECONDS) as u64,
            "egressRate": EGRESS as u64, "egressBurst": (EGRESS * BURST_SECONDS) as u64,
        }),
    );
    // The limits are the veth's qdiscs', not the endpoint's; the node reads them back.
    let weps = c.brindlectl(&["get", "workloadendpoints", "-o", "yaml"]);
    assert!(!weps.contains("qosControls"), "{weps}");
    assert!(
        eventually(Duration::from_secs(10), || c
            .log(1)
            .contains("a tc qdisc limits this workload's bandwidth")),
        "the node did not take up the bandwidth plugin's qdiscs\n{}",
        c.logs()
    );
    for (from, to) in [(&b, ip_a), (&a, ip_c)] {
        assert!(
            eventually(Duration::from_secs(15), || pings(from, to)),
            "{from} -> {to}\n{}",
            c.logs()
        );
    }
    let to_a = tcp_rate(&c, &b, &a, ip_a, 5311);
    assert!(
        to_a <= 1.15 * INGRESS && to_a > 0.3 * INGRESS,
        "B -> A at {:.1} Mbit/s through the bandwidth plugin's {:.0} Mbit/s ingress limit",
        to_a / 1e6,
        INGRESS / 1e6
    );
    let from_a = tcp_rate(&c, &a, &cc, ip_c, 5312);
    assert!(
        from_a <= 1.15 * EGRESS && from_a > 0.3 * EGRESS,
        "A -> C at {:.1} Mbit/s through the bandwidth plugin's {:.0} Mbit/s egress limit",
        from_a / 1e6,
        EGRESS / 1e6
    );
}
