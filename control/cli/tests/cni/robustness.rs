//! Failure and concurrency: a failed ADD leaks nothing; parallel ADDs never share an address.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use datastore::keys;
use resources::Resource;
use serde_json::{json, Value};

use super::fixture::*;

pub(crate) fn a_failed_add_leaks_nothing(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let conf = cluster.netconf("net1", &[]);
    // The address is allocated, then wiring fails: the namespace does not exist.
    let (container_id, ok, out) = cluster.add_into_missing_netns('g', &conf);
    assert!(!ok, "{out}");
    assert_eq!(out["code"], 102, "{out}");
    assert!(!host_if_exists(&container_host_if(&container_id)));
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

/// Two containers whose ids share their first 11 characters (which once named the host
/// interface) are attached side by side; and a DEL never removes an interface that another
/// container's endpoint claims, while an ADD onto it fails naming that container.
pub(crate) fn containers_never_share_or_remove_each_others_interfaces(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let conf = cluster.netconf("net1", &[]);
    // 11 characters shared by the three ids, distinct per backend (both run at once).
    let backend = &cluster.label[..1];
    let prefix = format!("s{backend}{:06x}abc", std::process::id() % 0x100_0000);
    let a = Workload::with_id(&cluster.label, 900, format!("{prefix}first"));
    let b = Workload::with_id(&cluster.label, 901, format!("{prefix}second"));
    assert!(cluster.cni("ADD", &a, &conf).0);
    let (ok, out) = cluster.cni("ADD", &b, &conf);
    assert!(ok, "the second container is refused: {out}");
    assert_ne!(a.host_if(), b.host_if());
    assert!(host_if_exists(&a.host_if()) && host_if_exists(&b.host_if()));
    assert!(cluster.cni("DEL", &b, &conf).0);
    assert!(host_if_exists(&a.host_if()), "DEL of b took a's interface");

    // A container whose interface name another container's endpoint claims (as with the old
    // naming): its ADD names the owner, its DEL leaves the interface alone.
    let c = Workload::with_id(&cluster.label, 902, format!("{prefix}third"));
    let claimed = c.host_if();
    let peer = format!("p{backend}{:06x}cl", std::process::id() % 0x100_0000);
    let made = std::process::Command::new("ip")
        .args([
            "link", "add", &claimed, "type", "veth", "peer", "name", &peer,
        ])
        .status()
        .unwrap();
    assert!(made.success(), "ip link add {claimed}");
    let mut owner = cluster.endpoint(&a).expect("a's endpoint");
    let Resource::WorkloadEndpoint(wep) = &mut owner else {
        panic!("not an endpoint: {owner:?}")
    };
    wep.metadata.name = format!("{}-other", wep.metadata.name);
    wep.spec.interface_name = claimed.clone();
    wep.spec.container_id = "the-owner".into();
    cluster
        .open()
        .put(&owner.key(), &owner.to_stored_json())
        .unwrap();
    let (ok, out) = cluster.cni("ADD", &c, &conf);
    let added_anyway = ok;
    let del_ok = cluster.cni("DEL", &c, &conf).0;
    let still_there = host_if_exists(&claimed);
    let _ = std::process::Command::new("ip")
        .args(["link", "del", &claimed])
        .status();
    assert!(
        !added_anyway,
        "ADD onto another container's interface: {out}"
    );
    assert!(
        out["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("the-owner"),
        "the error names the owner: {out}"
    );
    assert!(del_ok);
    assert!(
        still_there,
        "DEL removed an interface another container owns"
    );
    assert!(cluster.cni("DEL", &a, &conf).0);
    assert!(!host_if_exists(&a.host_if()));
}

/// Names and paths from the runtime that could reach outside what they name (issue 14, item
/// 7) are refused before anything is allocated or created, naming the variable: a
/// `CNI_NETNS` that is a regular file or a mount namespace, a container id that looks like
/// an option or a path, an interface name `..`, a pod namespace with a '/'.
pub(crate) fn names_and_paths_from_the_runtime_are_checked_before_use(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let conf = cluster.netconf("net1", &[]).to_string();
    let regular_file = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    for (container_id, netns, args, variable) in [
        ("c1hostile", regular_file, "", "CNI_NETNS"),
        ("c1hostile", "/proc/self/ns/mnt", "", "CNI_NETNS"),
        ("c1hostile", "run/netns/relative", "", "CNI_NETNS"),
        ("-rf", "/proc/self/ns/net", "", "CNI_CONTAINERID"),
        ("..", "/proc/self/ns/net", "", "CNI_CONTAINERID"),
        (
            "c1hostile",
            "/proc/self/ns/net",
            "K8S_POD_NAMESPACE=../ippools;K8S_POD_NAME=p",
            "CNI_ARGS",
        ),
    ] {
        let (ok, out) = cluster.run_with_args(
            "brindle-cni",
            "ADD",
            container_id,
            netns,
            conf.as_bytes(),
            args,
        );
        assert!(!ok, "{container_id} {netns} {args}: {out}");
        assert_eq!(out["code"], 4, "{out}");
        let msg = out["msg"].as_str().unwrap_or_default();
        assert!(msg.starts_with(variable), "{variable}: {out}");
    }
    assert!(cluster.allocated().is_empty(), "{:?}", cluster.allocated());
    let (weps, _) = cluster
        .open()
        .list(&keys::resource_prefix("workloadendpoints", None))
        .unwrap();
    assert!(weps.is_empty(), "{weps:?}");
}
