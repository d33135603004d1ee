//! `"workload_interface": "tap"`: the container's interface is a persistent TAP with
//! virtio-net headers, nothing is made on the host, and the node learns where the TAP is from
//! the registration ADD writes.

use std::process::Command;

use datastore::keys;
use serde_json::{json, Value};

use super::fixture::*;

pub(crate) fn tap_workloads_are_wired_registered_checked_and_removed(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let w = Workload::new(&cluster.label);
    let mut conf = cluster.tap_netconf("net1");
    let (ok, result) = cluster.cni("ADD", &w, &conf);
    assert!(ok, "ADD failed: {result}");
    let ip = address_of(&result);

    // The container: a persistent TAP with virtio-net headers, the netconf's MTU, the /32 and
    // Calico's routes. The host: nothing.
    let link = w.in_ns(&["ip", "-d", "-o", "link", "show", "dev", "eth0"]);
    for want in ["tun type tap", "vnet_hdr on", "persist on", "mtu 1400"] {
        assert!(link.contains(want), "{want}: {link}");
    }
    let addrs = w.in_ns(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(&format!("{ip}/32")), "{addrs}");
    let routes = w.in_ns(&["ip", "-4", "route", "show"]);
    assert!(
        routes.contains("default via 169.254.1.1 dev eth0")
            && routes.contains("169.254.1.1 dev eth0 scope link"),
        "{routes}"
    );
    assert!(
        !host_if_exists(&w.host_if()),
        "a TAP workload has no host interface"
    );
    let container_mac = w
        .in_ns(&["cat", "/sys/class/net/eth0/address"])
        .trim()
        .to_owned();

    // The result lists the container's interface only, and the address on it.
    assert_eq!(
        result["interfaces"],
        json!([{"name": "eth0", "mac": container_mac, "sandbox": w.netns_path()}])
    );
    assert_eq!(result["ips"][0]["interface"], 0);
    assert_eq!(
        result["routes"][0],
        json!({"dst": "0.0.0.0/0", "gw": "169.254.1.1"})
    );

    // The registration for the node, and the endpoint under the workload's cali name.
    assert_eq!(
        cluster.tap_registration(&w),
        Some(json!({"netns": w.netns_path(), "ifname": "eth0", "container_id": w.container_id}))
    );
    let wep = cluster.endpoint(&w).expect("workload endpoint written");
    let wep = wep.as_workload_endpoint().unwrap();
    assert_eq!(wep.spec.interface_name, w.host_if());
    assert_eq!(wep.spec.mac, container_mac);
    assert_eq!(wep.spec.ip_networks, vec![format!("{ip}/32")]);

    conf["prevResult"] = result.clone();
    let (ok, out) = cluster.cni("CHECK", &w, &conf);
    assert!(ok, "CHECK after ADD: {out}");

    // DEL: the TAP, the registration, the endpoint and the address go; again is fine.
    let (ok, out) = cluster.cni("DEL", &w, &conf);
    assert!(ok, "DEL: {out}");
    assert!(
        w.in_ns(&["ip", "-o", "link", "show", "eth0"]).is_empty(),
        "the TAP is still in the container"
    );
    assert_eq!(cluster.tap_registration(&w), None);
    assert!(cluster.endpoint(&w).is_none());
    assert!(cluster.ipam_ips("net1", &w.container_id).is_empty());
    assert!(cluster.cni("DEL", &w, &conf).0, "second DEL");
    let (ok, out) = cluster.cni("CHECK", &w, &conf);
    assert!(!ok);
    assert_eq!(out["code"], 3, "CHECK of a deleted container: {out}");

    // CHECK notices a TAP gone, and a registration gone; DEL still cleans up after both.
    let w2 = Workload::new(&cluster.label);
    let (ok, result) = cluster.cni("ADD", &w2, &conf);
    assert!(ok, "{result}");
    conf["prevResult"] = result;
    std::fs::remove_file(cluster.tap_dir().join(format!("{}.json", w2.host_if()))).unwrap();
    let (ok, out) = cluster.cni("CHECK", &w2, &conf);
    assert!(!ok, "CHECK passed without the registration");
    assert_eq!(out["code"], 102, "{out}");
    assert!(
        out["msg"].as_str().unwrap().contains("TAP registration"),
        "{out}"
    );
    assert!(Command::new("ip")
        .args([
            "netns",
            "exec",
            &w2.netns_name(),
            "ip",
            "link",
            "del",
            "eth0"
        ])
        .status()
        .unwrap()
        .success());
    let (ok, out) = cluster.cni("DEL", &w2, &conf);
    assert!(ok, "DEL after the TAP went: {out}");
    assert!(cluster.endpoint(&w2).is_none());
    assert!(cluster.allocated().is_empty(), "{:?}", cluster.allocated());
}

pub(crate) fn tap_adds_that_fail_leak_nothing_and_registrations_stay_their_containers(
    cluster: Cluster,
) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let conf = cluster.tap_netconf("net1");
    let nothing_recorded = |what: &str| {
        assert!(
            cluster.allocated().is_empty(),
            "{what}: {:?}",
            cluster.allocated()
        );
        let (weps, _) = cluster
            .open()
            .list(&keys::resource_prefix("workloadendpoints", None))
            .unwrap();
        assert!(weps.is_empty(), "{what}: {weps:?}");
    };

    // Wiring fails (no such namespace) after the address was taken: nothing is left.
    let (container_id, ok, out) = cluster.add_into_missing_netns('t', &conf);
    assert!(!ok, "{out}");
    assert_eq!(out["code"], 102, "{out}");
    let leftover = cluster
        .tap_dir()
        .join(format!("{}.json", container_host_if(&container_id)));
    assert!(!leftover.exists(), "a failed ADD left its registration");
    nothing_recorded("ADD into a missing namespace");

    // The container's interface name is taken in its namespace: refused before anything is
    // allocated, and what was there stays.
    let taken = Workload::new(&cluster.label);
    assert!(Command::new("ip")
        .args([
            "netns",
            "exec",
            &taken.netns_name(),
            "ip",
            "link",
            "add",
            "eth0"
        ])
        .args(["type", "veth", "peer", "name", "eth1"])
        .status()
        .unwrap()
        .success());
    let (ok, out) = cluster.cni("ADD", &taken, &conf);
    assert!(!ok, "{out}");
    assert_eq!(out["code"], 102, "{out}");
    assert!(out["msg"].as_str().unwrap().contains("eth0"), "{out}");
    assert!(
        !taken
            .in_ns(&["ip", "-o", "link", "show", "eth0"])
            .is_empty(),
        "a refused ADD removed an interface it did not make"
    );
    nothing_recorded("ADD onto an existing eth0");

    // Another container's live registration under the name: ADD names it, DEL leaves it.
    let a = Workload::new(&cluster.label);
    assert!(cluster.cni("ADD", &a, &conf).0);
    let b = Workload::new(&cluster.label);
    let foreign = json!({"netns": a.netns_path(), "ifname": "eth0", "container_id": "the-owner"});
    let b_file = cluster.tap_dir().join(format!("{}.json", b.host_if()));
    std::fs::write(&b_file, foreign.to_string()).unwrap();
    let (ok, out) = cluster.cni("ADD", &b, &conf);
    assert!(!ok, "ADD onto another container's TAP registration: {out}");
    assert!(
        out["msg"]
            .as_str()
            .unwrap_or_default()
            .contains("the-owner"),
        "the error names the owner: {out}"
    );
    assert!(cluster.cni("DEL", &b, &conf).0);
    assert_eq!(
        cluster.tap_registration(&b),
        Some(foreign),
        "DEL removed another container's registration"
    );
    assert!(
        !a.in_ns(&["ip", "-o", "link", "show", "eth0"]).is_empty(),
        "DEL of b took a's TAP"
    );

    // One whose namespace is gone is stale: ADD takes the name over.
    let gone = json!({"netns": "/var/run/netns/cni-gone-for-good", "ifname": "eth0", "container_id": "the-owner"});
    std::fs::write(&b_file, gone.to_string()).unwrap();
    let (ok, out) = cluster.cni("ADD", &b, &conf);
    assert!(ok, "a stale registration blocked ADD: {out}");
    assert_eq!(
        cluster.tap_registration(&b).unwrap()["container_id"],
        Value::from(b.container_id.clone())
    );

    assert!(cluster.cni("DEL", &b, &conf).0);
    assert!(cluster.cni("DEL", &a, &conf).0);
    assert_eq!(cluster.tap_registration(&a), None);
    assert_eq!(cluster.tap_registration(&b), None);
    nothing_recorded("after DEL");
}
