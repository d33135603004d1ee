//! GC and STATUS (CNI spec 1.1.0) as a runtime sends them: only `CNI_COMMAND` and `CNI_PATH`
//! name the call, the network configuration (with `cni.dev/valid-attachments` for GC) is on
//! stdin.

use serde_json::{json, Value};

use super::fixture::*;

fn network_wide(cluster: &Cluster, command: &str, conf: &Value) -> (bool, Value) {
    cluster.run("brindle-cni", command, "", "", conf.to_string().as_bytes())
}

fn v1_1(mut conf: Value) -> Value {
    conf["cniVersion"] = json!("1.1.0");
    conf
}

pub(crate) fn gc_releases_what_the_runtime_no_longer_lists_and_nothing_else(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let conf = v1_1(cluster.netconf("net1", &[]));
    let other_net = v1_1(cluster.netconf("net2", &[]));
    let kept = Workload::new(&cluster.label);
    let gone = Workload::new(&cluster.label);
    let other = Workload::new(&cluster.label);
    for (w, conf) in [(&kept, &conf), (&gone, &conf), (&other, &other_net)] {
        let (ok, out) = cluster.cni("ADD", w, conf);
        assert!(ok, "ADD: {out}");
    }
    // An address the IPAM plugin holds for a container whose endpoint never got written.
    let leaked_id = format!("leak{:08x}", std::process::id());
    let (ok, out) = cluster.run(
        "brindle-ipam",
        "ADD",
        &leaked_id,
        "/x",
        conf.to_string().as_bytes(),
    );
    assert!(ok, "IPAM ADD: {out}");
    assert_eq!(cluster.ipam_ips("net1", &leaked_id).len(), 1);

    // Without the list, GC is refused: it would otherwise detach every container.
    let (ok, out) = network_wide(&cluster, "GC", &conf);
    assert!(!ok);
    assert_eq!(out["code"], 7, "{out}");
    assert!(host_if_exists(&gone.host_if()));

    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([
        {"containerID": kept.container_id, "ifname": "eth0"},
        // A container this plugin never attached: nothing to keep, nothing to fail.
        {"containerID": "someone-else", "ifname": "eth0"},
    ]);
    for _ in 0..2 {
        let (ok, out) = network_wide(&cluster, "GC", &gc);
        assert!(ok, "GC: {out}");
        assert_eq!(out, Value::Null, "GC prints nothing");
    }
    assert!(cluster.endpoint(&gone).is_none(), "stale endpoint kept");
    assert!(cluster.ipam_ips("net1", &gone.container_id).is_empty());
    assert!(!host_if_exists(&gone.host_if()), "stale veth kept");
    assert!(
        cluster.ipam_ips("net1", &leaked_id).is_empty(),
        "leaked address kept"
    );
    // The listed container and the other network's are untouched.
    assert!(cluster.endpoint(&kept).is_some());
    assert_eq!(cluster.ipam_ips("net1", &kept.container_id).len(), 1);
    assert!(host_if_exists(&kept.host_if()));
    assert!(cluster.endpoint(&other).is_some());
    assert_eq!(cluster.ipam_ips("net2", &other.container_id).len(), 1);
    let (ok, out) = cluster.cni("CHECK", &kept, &conf);
    assert!(ok, "CHECK after GC: {out}");

    // GC is for 1.1.0 configurations.
    let (ok, out) = network_wide(&cluster, "GC", &cluster.netconf("net1", &[]));
    assert!(!ok);
    assert_eq!(out["code"], 1, "{out}");
    for (w, conf) in [(&kept, &conf), (&other, &other_net)] {
        assert!(cluster.cni("DEL", w, conf).0);
    }
}

pub(crate) fn status_is_ready_with_a_pool_and_error_50_without_one_or_a_datastore(
    cluster: Cluster,
) {
    let conf = v1_1(cluster.netconf("net1", &[]));
    let (ok, out) = network_wide(&cluster, "STATUS", &conf);
    assert!(!ok, "STATUS without a pool: {out}");
    assert_eq!(out["code"], 50, "{out}");
    assert!(out["msg"].as_str().unwrap().contains("pool"), "{out}");

    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let (ok, out) = network_wide(&cluster, "STATUS", &conf);
    assert!(ok, "STATUS: {out}");
    assert_eq!(out, Value::Null, "STATUS prints nothing");
    let (ok, out) = cluster.run(
        "brindle-ipam",
        "STATUS",
        "",
        "",
        conf.to_string().as_bytes(),
    );
    assert!(ok, "brindle-ipam STATUS: {out}");

    // A datastore nobody answers at.
    let mut gone = conf.clone();
    gone["datastore_type"] = json!("etcdv3");
    gone["etcd_endpoints"] = json!("http://127.0.0.1:9");
    let (ok, out) = network_wide(&cluster, "STATUS", &gone);
    assert!(!ok);
    assert_eq!(out["code"], 50, "{out}");
    assert!(out["msg"].as_str().unwrap().contains("datastore"), "{out}");
}
