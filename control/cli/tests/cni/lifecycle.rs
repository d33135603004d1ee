//! ADD, DEL and CHECK of one workload: what is wired, recorded and released.

use std::process::Command;

use datastore::keys;
use ipam::Ipam;
use serde_json::{json, Value};

use super::fixture::*;

pub(crate) fn add_wires_the_workload_and_records_its_endpoint_and_profile(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let w = Workload::new(&cluster.label);
    let conf = cluster.netconf("net1", &[]);
    let (ok, result) = cluster.cni("ADD", &w, &conf);
    assert!(ok, "ADD failed: {result}");
    let ip = address_of(&result);
    assert!(in_cidr(ip, "192.168.0.0/16"), "{ip}");

    // The result: host interface, container interface in the sandbox, the address on it.
    assert_eq!(result["cniVersion"], "1.0.0");
    assert_eq!(result["interfaces"][0]["name"], w.host_if());
    assert_eq!(result["interfaces"][0]["mac"], "ee:ee:ee:ee:ee:ee");
    assert_eq!(result["interfaces"][1]["name"], "eth0");
    assert_eq!(result["interfaces"][1]["sandbox"], w.netns_path());
    assert_eq!(result["ips"][0]["interface"], 1);
    assert_eq!(
        result["routes"][0],
        json!({"dst": "0.0.0.0/0", "gw": "169.254.1.1"})
    );

    // The container: eth0 with the /32 and the routes through 169.254.1.1.
    let addrs = w.in_ns(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(&format!("{ip}/32")), "{addrs}");
    let routes = w.in_ns(&["ip", "-4", "route", "show"]);
    assert!(
        routes.contains("default via 169.254.1.1 dev eth0"),
        "{routes}"
    );
    assert!(
        routes.contains("169.254.1.1 dev eth0 scope link"),
        "{routes}"
    );
    let container_mac = w
        .in_ns(&["cat", "/sys/class/net/eth0/address"])
        .trim()
        .to_owned();
    assert_eq!(result["interfaces"][1]["mac"], container_mac.as_str());

    // The host: cali<11 characters of the id> with Calico's MAC and the netconf's MTU.
    let host_mac =
        std::fs::read_to_string(format!("/sys/class/net/{}/address", w.host_if())).unwrap();
    assert_eq!(host_mac.trim(), "ee:ee:ee:ee:ee:ee");
    let host_mtu = std::fs::read_to_string(format!("/sys/class/net/{}/mtu", w.host_if())).unwrap();
    assert_eq!(host_mtu.trim(), "1400");

    // The WorkloadEndpoint, as Calico's plugin writes it for the cni orchestrator.
    let wep = cluster.endpoint(&w).expect("workload endpoint written");
    let wep = wep.as_workload_endpoint().unwrap();
    assert_eq!(
        wep.metadata.name,
        format!("node--a-cni-{}-eth0", w.container_id)
    );
    assert_eq!(wep.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(
        wep.metadata.labels["projectcalico.org/namespace"],
        "default"
    );
    assert_eq!(wep.metadata.labels["projectcalico.org/orchestrator"], "cni");
    assert_eq!(wep.spec.orchestrator, "cni");
    assert_eq!(wep.spec.node, NODE);
    assert_eq!(wep.spec.container_id, w.container_id);
    assert_eq!(wep.spec.endpoint, "eth0");
    assert_eq!(wep.spec.interface_name, w.host_if());
    assert_eq!(wep.spec.mac, container_mac);
    assert_eq!(wep.spec.ip_networks, vec![format!("{ip}/32")]);
    assert_eq!(wep.spec.profiles, vec!["net1"]);

    // The network's profile, as Calico creates it.
    let kv = cluster
        .open()
        .get(&keys::resource("profiles", None, "net1"))
        .unwrap()
        .expect("profile net1 created");
    let profile: Value = serde_json::from_slice(&kv.value).unwrap();
    assert_eq!(profile["kind"], "Profile");
    assert_eq!(profile["spec"]["labelsToApply"], json!({"net1": ""}));
    assert_eq!(
        profile["spec"]["ingress"],
        json!([{"action": "Allow", "source": {"selector": "has(net1)"}}])
    );
    assert_eq!(profile["spec"]["egress"], json!([{"action": "Allow"}]));

    // IPAM: the handle calico-ipam would use holds exactly this address, for this node.
    assert_eq!(cluster.ipam_ips("net1", &w.container_id), vec![ip]);
    let attrs = Ipam::new(cluster.open())
        .get_assignment_attrs(ip)
        .unwrap()
        .unwrap();
    assert_eq!(attrs.attrs["node"], NODE);
    assert_eq!(attrs.attrs["containerID"], w.container_id);

    // A second workload on the same network gets another address and leaves the profile be.
    let w2 = Workload::new(&cluster.label);
    let (ok, result2) = cluster.cni("ADD", &w2, &conf);
    assert!(ok, "{result2}");
    assert_ne!(address_of(&result2), ip);
    let kv2 = cluster
        .open()
        .get(&keys::resource("profiles", None, "net1"))
        .unwrap()
        .unwrap();
    assert_eq!(
        kv2.mod_revision, kv.mod_revision,
        "the existing profile was rewritten"
    );
    assert!(cluster.cni("DEL", &w2, &conf).0);
    assert!(cluster.cni("DEL", &w, &conf).0);
}

pub(crate) fn del_twice_releases_everything_and_del_of_an_unknown_container_succeeds(
    cluster: Cluster,
) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let w = Workload::new(&cluster.label);
    let conf = cluster.netconf("net1", &[]);
    let (ok, result) = cluster.cni("ADD", &w, &conf);
    assert!(ok, "{result}");
    let ip = address_of(&result);
    assert!(host_if_exists(&w.host_if()));

    let (ok, out) = cluster.cni("DEL", &w, &conf);
    assert!(ok, "first DEL: {out}");
    assert_eq!(out, Value::Null, "DEL prints nothing on success");
    assert!(!host_if_exists(&w.host_if()), "veth removed");
    assert!(cluster.endpoint(&w).is_none(), "endpoint removed");
    assert!(
        cluster.ipam_ips("net1", &w.container_id).is_empty(),
        "handle released"
    );
    assert!(
        Ipam::new(cluster.open())
            .get_assignment_attrs(ip)
            .unwrap()
            .is_none(),
        "{ip} still allocated"
    );
    assert!(
        w.in_ns(&["ip", "-o", "link", "show", "eth0"]).is_empty(),
        "eth0 still in the container"
    );

    let (ok, out) = cluster.cni("DEL", &w, &conf);
    assert!(ok, "second DEL: {out}");

    // Never added, and without a netns (DEL tolerates a missing CNI_NETNS).
    let (ok, out) = cluster.run(
        "brindle-cni",
        "DEL",
        "neveradded0001",
        "",
        conf.to_string().as_bytes(),
    );
    assert!(ok, "DEL of an unknown container: {out}");
    assert!(cluster.allocated().is_empty(), "{:?}", cluster.allocated());
}

pub(crate) fn check_passes_after_add_and_fails_once_the_veth_is_gone(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let w = Workload::new(&cluster.label);
    let mut conf = cluster.netconf("net1", &[]);
    let (ok, result) = cluster.cni("ADD", &w, &conf);
    assert!(ok, "{result}");
    conf["prevResult"] = result.clone();

    let (ok, out) = cluster.cni("CHECK", &w, &conf);
    assert!(ok, "CHECK after ADD: {out}");
    assert_eq!(out, Value::Null);

    // A prevResult naming another address does not agree with what is wired.
    let mut wrong = conf.clone();
    wrong["prevResult"]["ips"][0]["address"] = json!("192.168.250.250/32");
    let (ok, out) = cluster.cni("CHECK", &w, &wrong);
    assert!(!ok);
    assert!(
        out["msg"].as_str().unwrap().contains("192.168.250.250"),
        "{out}"
    );

    assert!(Command::new("ip")
        .args(["link", "del", "dev", &w.host_if()])
        .status()
        .unwrap()
        .success());
    let (ok, out) = cluster.cni("CHECK", &w, &conf);
    assert!(!ok, "CHECK passed without the veth");
    assert_eq!(out["code"], 102, "{out}");
    assert!(out["msg"].as_str().unwrap().contains(&w.host_if()), "{out}");

    // DEL still cleans up what is left (endpoint, address).
    assert!(cluster.cni("DEL", &w, &conf).0);
    assert!(cluster.endpoint(&w).is_none());
    let (ok, out) = cluster.cni("CHECK", &w, &conf);
    assert!(!ok);
    assert_eq!(out["code"], 3, "CHECK of a deleted container: {out}");
}

/// `brindlectl datastore migrate lock` (ClusterInformation `datastoreReady: false`) stops ADD
/// and DEL as it stops Calico's plugin: "try again later", nothing taken or removed; unlocked,
/// both go on.
pub(crate) fn a_locked_datastore_makes_add_and_del_try_again_later(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let store = cluster.open();
    cli::ctl::cluster_info::ensure(store.as_ref()).unwrap();
    let conf = cluster.netconf("net1", &[]);
    let plugged = Workload::new(&cluster.label);
    let (ok, result) = cluster.cni("ADD", &plugged, &conf);
    assert!(ok, "ADD before the lock: {result}");

    cli::ctl::cluster_info::set_ready(store.as_ref(), false).unwrap();
    let locked_out = |(ok, out): (bool, Value)| {
        assert!(!ok, "went ahead on a locked datastore: {out}");
        assert_eq!(out["code"], 11, "{out}");
        assert_eq!(
            out["msg"], "Calico is currently not ready to process requests",
            "{out}"
        );
    };
    let newcomer = Workload::new(&cluster.label);
    locked_out(cluster.cni("ADD", &newcomer, &conf));
    assert!(!host_if_exists(&newcomer.host_if()));
    assert!(cluster.endpoint(&newcomer).is_none());
    assert_eq!(
        cluster.allocated().len(),
        1,
        "an address taken while locked"
    );
    locked_out(cluster.cni("DEL", &plugged, &conf));
    assert!(
        host_if_exists(&plugged.host_if()),
        "DEL removed the veth while locked"
    );
    assert!(cluster.endpoint(&plugged).is_some());

    cli::ctl::cluster_info::set_ready(store.as_ref(), true).unwrap();
    let (ok, out) = cluster.cni("ADD", &newcomer, &conf);
    assert!(ok, "ADD once unlocked: {out}");
    let (ok, out) = cluster.cni("DEL", &plugged, &conf);
    assert!(ok, "DEL once unlocked: {out}");
    assert!(!host_if_exists(&plugged.host_if()));
}
