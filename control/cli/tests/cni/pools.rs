//! Pool selection and the errors a bad configuration or an exhausted pool returns.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::fixture::*;

/// ARCHITECTURE.md scenario 4: a pool 10.20.0.0/24 and a network bound to it.
pub(crate) fn a_network_bound_to_a_custom_pool_hands_out_its_addresses(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    cluster.add_pool("pool-10-20", "10.20.0.0/24", 26);
    let by_cidr = cluster.netconf("net20", &["10.20.0.0/24"]);
    let by_name = cluster.netconf("net20", &["pool-10-20"]);
    let (a, b) = (Workload::new(&cluster.label), Workload::new(&cluster.label));
    let (ok, ra) = cluster.cni("ADD", &a, &by_cidr);
    assert!(ok, "{ra}");
    let (ok, rb) = cluster.cni("ADD", &b, &by_name);
    assert!(ok, "{rb}");
    let (ia, ib) = (address_of(&ra), address_of(&rb));
    assert!(
        in_cidr(ia, "10.20.0.0/24") && in_cidr(ib, "10.20.0.0/24"),
        "{ia} {ib}"
    );
    assert_ne!(ia, ib);
    let addrs = b.in_ns(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(&format!("{ib}/32")), "{addrs}");

    // Without ipv4_pools every pool is eligible; a pool that does not exist is refused.
    let (ok, out) = cluster.run(
        "brindle-ipam",
        "ADD",
        "nopool0001",
        "/x",
        cluster
            .netconf("net20", &["10.99.0.0/24"])
            .to_string()
            .as_bytes(),
    );
    assert!(!ok);
    assert_eq!(out["code"], 7, "{out}");
    assert!(
        out["msg"].as_str().unwrap().contains("10.99.0.0/24"),
        "{out}"
    );

    assert!(cluster.cni("DEL", &a, &by_cidr).0);
    assert!(cluster.cni("DEL", &b, &by_name).0);
    assert!(cluster.allocated().is_empty(), "{:?}", cluster.allocated());
}

pub(crate) fn bad_netconf_and_exhausted_pools_are_cni_error_objects(cluster: Cluster) {
    let w = Workload::new(&cluster.label);
    let error = |(ok, out): (bool, Value)| -> Value {
        assert!(!ok, "expected a failure, got {out}");
        assert_eq!(out["cniVersion"], "1.0.0", "{out}");
        assert!(out["msg"].as_str().is_some_and(|m| !m.is_empty()), "{out}");
        out
    };
    let run = |stdin: &[u8]| {
        cluster.run(
            "brindle-cni",
            "ADD",
            &w.container_id,
            &w.netns_path(),
            stdin,
        )
    };
    assert_eq!(error(run(b"{\"cniVersion\":"))["code"], 6);
    let mut conf = cluster.netconf("Bad Name", &[]);
    assert_eq!(error(run(conf.to_string().as_bytes()))["code"], 7);
    conf = cluster.netconf("net1", &[]);
    conf.as_object_mut().unwrap().remove("ipam");
    assert_eq!(error(run(conf.to_string().as_bytes()))["code"], 7);
    conf = cluster.netconf("net1", &[]);
    conf["ipam"]["type"] = json!("../../bin/sh");
    assert_eq!(error(run(conf.to_string().as_bytes()))["code"], 7);
    // A bandwidth limit out of Calico's range: refused, naming it, before anything is taken
    // (bandwidth.rs has the capability's other cases).
    conf = cluster.netconf("net1", &[]);
    conf["runtimeConfig"] = json!({"bandwidth": {"ingressRate": 100, "ingressBurst": 100000}});
    let refused = error(run(conf.to_string().as_bytes()));
    assert_eq!(refused["code"], 7, "{refused}");
    let msg = refused["msg"].as_str().unwrap();
    assert!(
        msg.contains("runtimeConfig.bandwidth.ingressRate 100"),
        "{msg}"
    );
    assert!(!host_if_exists(&w.host_if()));

    // A /30 pool in one /30 block: four addresses (Calico reserves none in a block).
    cluster.add_pool("tiny", "10.30.0.0/30", 30);
    let tiny = cluster.netconf("tiny", &["10.30.0.0/30"]);
    let mut got = BTreeSet::new();
    for n in 0..4 {
        let (ok, out) = cluster.run(
            "brindle-ipam",
            "ADD",
            &format!("fill{n}"),
            "/x",
            tiny.to_string().as_bytes(),
        );
        assert!(ok, "{out}");
        got.insert(address_of(&out));
    }
    assert_eq!(got.len(), 4);
    let out = error(cluster.cni("ADD", &w, &tiny));
    assert_eq!(out["code"], 101, "{out}");
    assert!(
        out["msg"]
            .as_str()
            .unwrap()
            .contains("no more free addresses"),
        "{out}"
    );
    assert!(
        !host_if_exists(&w.host_if()),
        "a failed ADD left {}",
        w.host_if()
    );
    assert!(cluster.endpoint(&w).is_none());
    assert_eq!(cluster.allocated().len(), 4);

    // VERSION needs nothing but the command.
    for plugin in ["brindle-cni", "brindle-ipam"] {
        let (ok, out) = cluster.run(plugin, "VERSION", "", "", b"{\"cniVersion\":\"1.0.0\"}");
        assert!(ok);
        assert_eq!(out["cniVersion"], "1.0.0");
        assert!(
            out["supportedVersions"]
                .as_array()
                .unwrap()
                .contains(&json!("1.0.0")),
            "{out}"
        );
    }
}

/// `IP=` in CNI_ARGS (podman's `--ip`) gets exactly that address; one outside every pool, one
/// already taken and one that is not an address fail naming it, and leave nothing behind.
pub(crate) fn an_address_asked_for_in_cni_args_is_assigned_or_refused_by_name(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let conf = cluster.netconf("net1", &[]);
    let w = Workload::new(&cluster.label);
    let (ok, out) = cluster.cni_with_args("ADD", &w, &conf, "IgnoreUnknown=1;IP=192.168.77.9");
    assert!(ok, "{out}");
    assert_eq!(address_of(&out), Ipv4Addr::new(192, 168, 77, 9));
    assert_eq!(
        cluster.ipam_ips("net1", &w.container_id),
        [Ipv4Addr::new(192, 168, 77, 9)]
    );

    for (args, named) in [
        ("IP=192.168.77.9", "192.168.77.9"),
        ("IP=10.1.2.3", "10.1.2.3"),
        ("IP=not-an-address", "not-an-address"),
    ] {
        let other = Workload::new(&cluster.label);
        let (ok, out) = cluster.cni_with_args("ADD", &other, &conf, args);
        assert!(!ok, "{args}: {out}");
        let msg = out["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains(named) && msg.contains("CNI_ARGS IP"),
            "{args}: {out}"
        );
        assert!(
            cluster.ipam_ips("net1", &other.container_id).is_empty(),
            "{args}"
        );
        assert!(!host_if_exists(&other.host_if()), "{args}");
    }
    assert!(cluster.cni("DEL", &w, &conf).0);
    assert!(cluster.allocated().is_empty(), "{:?}", cluster.allocated());
}
