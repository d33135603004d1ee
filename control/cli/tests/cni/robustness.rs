//! Failure and concurrency: a failed ADD leaks nothing; parallel ADDs never share an address.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use datastore::keys;
use serde_json::{json, Value};

use super::fixture::*;

pub(crate) fn a_failed_add_leaks_nothing(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let conf = cluster.netconf("net1", &[]);
    // The address is allocated, then wiring fails: the namespace does not exist.
    let container_id = format!("g{:07x}leak", std::process::id());
    let missing_ns = format!("/var/run/netns/cni-missing-{}", std::process::id());
    let (ok, out) = cluster.run(
        "brindle-cni",
        "ADD",
        &container_id,
        &missing_ns,
        conf.to_string().as_bytes(),
    );
    assert!(!ok, "{out}");
    assert_eq!(out["code"], 102, "{out}");
    assert!(!host_if_exists(&format!("cali{}", &container_id[..11])));
    assert!(cluster.ipam_ips("net1", &container_id).is_empty());
    assert!(cluster.allocated().is_empty(), "{:?}", cluster.allocated());
    let (weps, _) = cluster
        .open()
        .list(&keys::resource_prefix("workloadendpoints", None))
        .unwrap();
    assert!(weps.is_empty());

    // An interface that already exists is never torn down by an ADD that fails on it.
    let w = Workload::new(&cluster.label);
    assert!(cluster.cni("ADD", &w, &conf).0);
    let ip = cluster.ipam_ips("net1", &w.container_id);
    let (ok, out) = cluster.cni("ADD", &w, &conf);
    assert!(!ok);
    assert_eq!(out["code"], 102, "{out}");
    assert!(host_if_exists(&w.host_if()));
    assert_eq!(cluster.ipam_ips("net1", &w.container_id), ip);
    assert!(cluster.endpoint(&w).is_some());
    assert!(cluster.cni("DEL", &w, &conf).0);
}

pub(crate) fn twenty_parallel_adds_get_twenty_distinct_addresses(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let conf = cluster.netconf("net1", &[]);
    let workloads: Vec<Workload> = (0..20).map(|_| Workload::new(&cluster.label)).collect();
    let results: Vec<(bool, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = workloads
            .iter()
            .map(|w| s.spawn(|| cluster.cni("ADD", w, &conf)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut addresses = BTreeSet::new();
    for (ok, out) in &results {
        assert!(ok, "{out}");
        addresses.insert(address_of(out));
    }
    assert_eq!(addresses.len(), 20, "{addresses:?}");
    let allocated: BTreeSet<Ipv4Addr> = cluster.allocated().into_iter().map(|(ip, _)| ip).collect();
    assert_eq!(allocated, addresses);
    for w in &workloads {
        let wep = cluster.endpoint(w).expect("endpoint");
        let ip = address_of(
            &json!({"ips": [{"address": wep.as_workload_endpoint().unwrap().spec.ip_networks[0]}]}),
        );
        assert!(addresses.contains(&ip));
        assert!(cluster.cni("DEL", w, &conf).0);
    }
    assert!(cluster.allocated().is_empty());
}
