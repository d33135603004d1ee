//! The `bandwidth` capability: limits the runtime hands brindle-cni (`runtimeConfig.bandwidth`)
//! become the WorkloadEndpoint's `qosControls`, which CHECK verifies; limits that cannot be
//! honoured fail ADD, naming the field and the value, before anything is allocated.

use resources::{QosControls, Resource};
use serde_json::{json, Value};

use super::fixture::*;

fn with_bandwidth(mut conf: Value, bandwidth: Value) -> Value {
    conf["runtimeConfig"] = json!({ "bandwidth": bandwidth });
    conf
}

fn qos_of(cluster: &Cluster, w: &Workload) -> Option<QosControls> {
    match cluster.endpoint(w) {
        Some(Resource::WorkloadEndpoint(wep)) => wep.spec.qos_controls.map(|q| *q),
        other => panic!("no workload endpoint: {other:?}"),
    }
}

pub(crate) fn bandwidth_limits_land_in_the_endpoint_and_check_verifies_them(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "10.40.0.0/24", 26);
    let plain = cluster.netconf("net1", &[]);
    let limited = with_bandwidth(
        plain.clone(),
        json!({"ingressRate": 20_000_000, "ingressBurst": 1_000_000,
               "egressRate": 10_000_000, "egressBurst": 4_294_967_295u64}),
    );
    let (a, b) = (Workload::new(&cluster.label), Workload::new(&cluster.label));
    let (ok, out) = cluster.cni("ADD", &a, &limited);
    assert!(ok, "{out}");
    let qos = qos_of(&cluster, &a).expect("qosControls on the endpoint");
    assert_eq!(
        (qos.ingress_bandwidth, qos.ingress_burst),
        (20_000_000, 1_000_000)
    );
    assert_eq!(
        (qos.egress_bandwidth, qos.egress_burst),
        (10_000_000, 4_294_967_295)
    );
    assert_eq!(qos.ingress_packet_rate, 0, "nothing else is set");
    let (ok, out) = cluster.cni("CHECK", &a, &limited);
    assert!(ok, "{out}");
    // CHECK with other limits than the endpoint has: a mismatch that names both.
    let other = with_bandwidth(
        plain.clone(),
        json!({"ingressRate": 5_000_000, "ingressBurst": 1_000_000}),
    );
    let (ok, out) = cluster.cni("CHECK", &a, &other);
    assert!(!ok, "{out}");
    let msg = out["msg"].as_str().unwrap();
    assert!(msg.contains("20000000") && msg.contains("5000000"), "{msg}");

    // Without the capability's limits: no qosControls at all.
    let (ok, out) = cluster.cni("ADD", &b, &plain);
    assert!(ok, "{out}");
    assert_eq!(qos_of(&cluster, &b), None);

    assert!(cluster.cni("DEL", &a, &limited).0);
    assert!(cluster.cni("DEL", &b, &plain).0);
    assert!(cluster.allocated().is_empty(), "{:?}", cluster.allocated());
}

pub(crate) fn bad_bandwidth_limits_are_refused_before_anything_is_allocated(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "10.41.0.0/24", 26);
    let w = Workload::new(&cluster.label);
    for (bandwidth, needle) in [
        // The reference plugin's rule: a rate needs its burst, a burst its rate.
        (
            json!({"ingressRate": 1_000_000}),
            "runtimeConfig.bandwidth.ingressRate 1000000",
        ),
        (
            json!({"egressBurst": 100_000}),
            "runtimeConfig.bandwidth.egressBurst 100000",
        ),
        // Calico's ranges.
        (
            json!({"ingressRate": 500, "ingressBurst": 100_000}),
            "runtimeConfig.bandwidth.ingressRate 500",
        ),
        (
            json!({"egressRate": 1_000_000, "egressBurst": 40_000_000_000u64}),
            "runtimeConfig.bandwidth.egressBurst 40000000000",
        ),
        (
            json!({"ingressRate": "1M", "ingressBurst": 1000}),
            "runtimeConfig.bandwidth.ingressRate \"1M\"",
        ),
    ] {
        let conf = with_bandwidth(cluster.netconf("net1", &[]), bandwidth.clone());
        let (ok, out) = cluster.cni("ADD", &w, &conf);
        assert!(!ok, "{bandwidth}: {out}");
        assert_eq!(out["code"], 7, "{out}");
        let msg = out["msg"].as_str().unwrap();
        assert!(msg.contains(needle), "{bandwidth}: {msg}");
        assert!(
            !host_if_exists(&w.host_if()),
            "{bandwidth}: an interface was made"
        );
        assert!(
            cluster.endpoint(&w).is_none(),
            "{bandwidth}: an endpoint was written"
        );
        assert!(
            cluster.allocated().is_empty(),
            "{bandwidth}: allocated {:?}",
            cluster.allocated()
        );
    }
}
