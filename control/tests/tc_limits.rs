//! The limits the real CNI `bandwidth` plugin (Debian's containernetworking-plugins) puts on a
//! workload's veth are read back by the agent (`agent::tc_limits`), so that the vRouter can
//! enforce what the qdiscs it bypasses would have. Needs root (network namespaces).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

use control::agent::tc_limits;
use fastpath::qos::Rate;
use lab::{Lab, LabSpec};

const BANDWIDTH_PLUGIN: &str = "/usr/lib/cni/bandwidth";

/// Runs the bandwidth plugin's ADD in the node's namespace for the lab's workload 1, as a
/// conflist chaining it after brindle-cni would (its prevResult names the host veth).
fn chain_bandwidth(lab: &Lab, runtime_bandwidth: serde_json::Value) {
    let w = lab.workload(1).unwrap();
    let netns_path = format!("/run/netns/{}", w.netns);
    let conf = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "brindle-net",
        "type": "bandwidth",
        "capabilities": {"bandwidth": true},
        "runtimeConfig": {"bandwidth": runtime_bandwidth},
        "prevResult": {
            "cniVersion": "0.4.0",
            "interfaces": [
                {"name": w.host_interface, "mac": "ee:ee:ee:ee:ee:ee"},
                {"name": "eth0", "sandbox": netns_path},
            ],
            "ips": [{"version": "4", "address": format!("{}/32", w.ip), "interface": 1}],
        },
    });
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.node_netns(), BANDWIDTH_PLUGIN])
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", "tclimits0123456789")
        .env("CNI_NETNS", &netns_path)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the bandwidth plugin");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "bandwidth plugin ADD: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `tc_limits::read` for the lab's workload 1, from a thread inside the node's namespace.
fn read_in_node(lab: &Lab) -> Option<fastpath::qos::QosLimits> {
    let ns = std::fs::File::open(format!("/run/netns/{}", lab.node_netns())).unwrap();
    let name = lab.workload(1).unwrap().host_interface.clone();
    std::thread::spawn(move || {
        // SAFETY: setns on a descriptor this closure owns; only this thread moves.
        assert_eq!(
            unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
            0,
            "setns"
        );
        tc_limits::read(&[name.as_str()]).expect("read the qdiscs")
    })
    .join()
    .unwrap()
    .into_values()
    .next()
}

/// Within 1% (tc keeps the rate in bytes and the burst in 64 ns ticks).
fn close(found: Rate, per_second: u64, burst: u64) -> bool {
    let near = |a: u64, b: u64| a.abs_diff(b) * 100 <= b;
    near(found.per_second, per_second) && near(found.burst, burst)
}

#[test]
fn the_bandwidth_plugins_limits_are_read_back_from_the_veth_and_its_ifb() {
    let lab = Lab::up(&LabSpec::new("tcl", 1)).expect("lab");
    assert_eq!(read_in_node(&lab), None, "no qdisc yet, no limit");
    chain_bandwidth(
        &lab,
        serde_json::json!({
            "ingressRate": 20_000_000, "ingressBurst": 1_000_000,
            "egressRate": 10_000_000, "egressBurst": 500_000,
        }),
    );
    let limits = read_in_node(&lab).expect("limits found after the plugin ran");
    let ingress = limits.ingress.bandwidth.expect("ingress (to the workload)");
    let egress = limits.egress.bandwidth.expect("egress (from the workload)");
    assert!(close(ingress, 20_000_000, 1_000_000), "ingress {ingress:?}");
    assert!(close(egress, 10_000_000, 500_000), "egress {egress:?}");
    assert_eq!(limits.ingress.packets, None);
    lab.down().unwrap();
}

#[test]
fn an_ingress_only_limit_leaves_egress_unlimited() {
    let lab = Lab::up(&LabSpec::new("tcm", 1)).expect("lab");
    chain_bandwidth(
        &lab,
        serde_json::json!({"ingressRate": 8_000_000, "ingressBurst": 80_000}),
    );
    let limits = read_in_node(&lab).expect("limits found after the plugin ran");
    assert!(close(limits.ingress.bandwidth.unwrap(), 8_000_000, 80_000));
    assert_eq!(limits.egress.bandwidth, None);
    lab.down().unwrap();
}
