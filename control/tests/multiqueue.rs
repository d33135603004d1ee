//! A multi-queue uplink (root: network namespaces, XDP): the node serves every RX queue its
//! NIC profile asks for, so traffic that the outside sends on queue 1 is forwarded as well as
//! traffic on queue 0; with `queue_policy = "one"` queue 1 is left to the kernel (which does
//! not forward here), proving the test can tell the difference.
//!
//! The uplink is a veth made with two queues on each side. A veth delivers on the RX queue
//! of the sender's TX queue, and the outside's TX queue is picked by XPS: queue 0 for CPU 0,
//! queue 1 for CPU 1, so a ping pinned to CPU `q` arrives on queue `q` (this kernel has no
//! tc `skbedit` to set the queue directly).
//!
//! Two queues make two workers (one per queue, capped by the cores). The second test runs a
//! node in agent mode on such an uplink and checks what several workers must keep right:
//! both directions of every flow meet one flow table (a policed workload's replies come
//! back, NATed flows' replies find their NAT entry) whichever queue they arrive on.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use lab::node::{NodeLaunch, NodeProcess};
use lab::{Lab, LabSpec, WorkloadPort};

mod cluster;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");

/// Both tests pin two workers to the machine's two cores and time their flows: run side by
/// side they starve each other's workers (a TCP connect through NAT then failed about one
/// run in six), so they take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Rig {
    lab: Lab,
    ext: String,
    dir: PathBuf,
    socket: PathBuf,
    node: Option<NodeProcess>,
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Rig {
    fn new(tag: &str) -> Rig {
        Rig::with_workload_port(tag, WorkloadPort::Veth)
    }

    fn with_workload_port(tag: &str, workload_port: WorkloadPort) -> Rig {
        let name = format!("{tag}{}", std::process::id() % 100_000);
        let lab = Lab::up(&LabSpec {
            uplink: false,
            workload_port,
            ..LabSpec::new(name.clone(), 1)
        })
        .expect("lab up");
        let ext = format!("{name}-x");
        let dir = std::env::temp_dir().join(format!("brindle-test-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("node.sock");
        let rig = Rig {
            lab,
            ext,
            dir,
            socket,
            node: None,
        };
        let node = rig.lab.node_netns();
        let ext = rig.ext.as_str();
        sh(&["ip", "netns", "add", ext]);
        sh(&[
            "ip",
            "-n",
            &node,
            "link",
            "add",
            "eth0",
            "numtxqueues",
            "2",
            "numrxqueues",
            "2",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "numtxqueues",
            "2",
            "numrxqueues",
            "2",
            "netns",
            ext,
        ]);
        for ns in [node.as_str(), ext] {
            sh(&[
                "ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off", "tso", "off",
                "gso", "off", "gro", "off",
            ]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        sh(&[
            "ip",
            "-n",
            &node,
            "addr",
            "add",
            "10.99.0.1/24",
            "dev",
            "eth0",
        ]);
        sh(&[
            "ip",
            "-n",
            ext,
            "addr",
            "add",
            "10.99.0.2/24",
            "dev",
            "eth0",
        ]);
        sh(&["ip", "-n", &node, "link", "set", "eth0", "up"]);
        sh(&["ip", "-n", ext, "link", "set", "eth0", "up"]);
        sh(&[
            "ip",
            "-n",
            ext,
            "route",
            "add",
            &rig.lab.spec().pool_cidr(),
            "via",
            "10.99.0.1",
        ]);
        sh(&["ip", "netns", "exec", ext, "sh", "-c", "echo 1 > /sys/class/net/eth0/queues/tx-0/xps_cpus && echo 2 > /sys/class/net/eth0/queues/tx-1/xps_cpus"]);
        rig
    }

    fn start_node(&mut self, hw: &str) {
        let config = format!(
            "uplink = \"eth0\"\n{}\n[[route]]\nprefix = \"10.99.0.0/24\"\nvia = \"10.99.0.2\"\n\n[hw]\n{hw}\n",
            self.lab.node_config_toml("interrupt", &self.socket)
        );
        std::fs::write(self.dir.join("node.toml"), config).unwrap();
        let node = NodeLaunch::file_mode(self.lab.node_netns(), NODE_BIN, &self.dir)
            .start(Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("brindle-node did not become ready: {e}"));
        self.node = Some(node);
    }

    fn stop_node(&mut self) {
        if let Some(node) = self.node.take() {
            stop_on_sigterm(node);
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// Pings the workload from outside on the uplink's queue `queue`; true when replies
    /// came back.
    fn outside_reaches_workload_on(&self, queue: u32) -> bool {
        let target = self.lab.workloads()[0].ip.to_string();
        let cpu = queue.to_string();
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.ext, "taskset", "-c", &cpu, "ping", "-c", "3", "-i", "0.2",
                "-W", "1", &target,
            ])
            .output()
            .expect("ping");
        out.status.success()
    }

    fn workers(&self) -> usize {
        let stats = control::stats::fetch(&self.socket).expect("stats");
        stats["workers"].as_array().map_or(0, Vec::len)
    }

    fn uplink_queues(&self) -> u64 {
        let stats = control::stats::fetch(&self.socket).expect("stats");
        let ports = stats["ports"].as_array().cloned().unwrap_or_default();
        let uplink = ports
            .iter()
            .find(|p| p["kind"] == "uplink")
            .unwrap_or_else(|| panic!("no uplink port in {stats}"));
        uplink["queues"]
            .as_u64()
            .unwrap_or_else(|| panic!("no queues in {uplink}"))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        drop(self.node.take());
        let _ = Command::new("ip")
            .args(["netns", "del", &self.ext])
            .output();
        let _ = self.lab.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn traffic_on_either_queue_of_the_uplink_is_forwarded_when_the_profile_serves_all_queues() {
    let _turn = one_at_a_time();
    let mut rig = Rig::new("sqm");
    rig.start_node("queue_policy = \"all\"");
    assert_eq!(
        rig.uplink_queues(),
        2,
        "both queues have a socket; log:\n{}",
        rig.log()
    );
    assert_eq!(
        rig.workers(),
        2,
        "one worker per queue on this 2-core machine; log:\n{}",
        rig.log()
    );
    for queue in [0, 1] {
        assert!(
            rig.outside_reaches_workload_on(queue),
            "ext -> w1 on queue {queue}; log:\n{}",
            rig.log()
        );
    }
    rig.stop_node();

    // Serving queue 0 only, queue 1 goes to the kernel, which does not forward here.
    rig.start_node("queue_policy = \"one\"");
    assert_eq!(rig.uplink_queues(), 1);
    assert_eq!(rig.workers(), 1, "one queue, one worker, as before");
    assert!(
        rig.outside_reaches_workload_on(0),
        "ext -> w1 on queue 0 with one queue served; log:\n{}",
        rig.log()
    );
    assert!(
        !rig.outside_reaches_workload_on(1),
        "queue 1 is not served, so the kernel gets it and drops it"
    );
}

#[test]
fn tcp_of_a_tap_workload_crosses_two_workers_whichever_owns_its_flows() {
    let _turn = one_at_a_time();
    let mut rig = Rig::with_workload_port("sqt", WorkloadPort::Tap);
    rig.start_node("queue_policy = \"all\"");
    assert_eq!(rig.workers(), 2, "log:\n{}", rig.log());
    let workload = rig.lab.workloads()[0].clone();
    // A connection decides at connect whether it may send whole segments, from its device's
    // features then; the TAP offers TSO once the vRouter has attached to it, and the path is
    // up once a ping gets through.
    let tso_on = || {
        Command::new("ip")
            .args(["netns", "exec", &workload.netns, "ethtool", "-k", "eth0"])
            .output()
            .is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout).contains("tcp-segmentation-offload: on")
            })
    };
    let outside: std::net::Ipv4Addr = "10.99.0.2".parse().unwrap();
    assert!(
        cluster::eventually(Duration::from_secs(10), || tso_on()
            && cluster::pings(&workload.netns, outside)),
        "the TAP offers TSO and the workload reaches outside\n{}",
        rig.log()
    );
    // Four streams each way: their flows hash to both workers, so segments the TAP's worker
    // does not own are cut into packets and handed to the owner, and the owner's packets for
    // the TAP are handed back to be written.
    let gso_received = || {
        control::stats::fetch(&rig.socket).expect("stats")["fastpath"]["gso_received"]
            .as_u64()
            .unwrap_or(0)
    };
    for (client, server, ip) in [
        (workload.netns.as_str(), rig.ext.as_str(), outside),
        (rig.ext.as_str(), workload.netns.as_str(), workload.ip),
    ] {
        // In loaded CI runs a workload's connections sometimes send no whole segments
        // although its TAP offers TSO (not understood yet; see the session notes): the
        // workload's side is run again, at most twice, until its kernel sends some.
        let attempts = if client == workload.netns { 3 } else { 1 };
        for attempt in 1..=attempts {
            let out = lab::iperf::tcp_streams(client, server, ip, 5311, 2, 4).expect("iperf3");
            let bytes = lab::iperf::received_bytes(&out);
            assert!(
                bytes > 1_000_000,
                "TCP {client} -> {ip} over two workers moved {bytes} bytes\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                rig.log()
            );
            if attempts == 1 || gso_received() > 0 {
                break;
            }
            // What the workload's kernel saw of its TAP then, for the cause still open.
            let features = Command::new("ip")
                .args(["netns", "exec", &workload.netns, "ethtool", "-k", "eth0"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            eprintln!(
                "attempt {attempt}: no whole segments from the TAP; again. eth0:\n{features}\n{}",
                rig.log()
            );
        }
    }
    let stats = control::stats::fetch(&rig.socket).expect("stats");
    let fp = &stats["fastpath"];
    assert!(
        fp["gso_received"].as_u64().unwrap_or(0) > 0 && fp["gso_cut"].as_u64().unwrap_or(0) > 0,
        "whole segments came from the TAP and were cut for the uplink: {fp}"
    );
    let handed: u64 = stats["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| w["handoff"]["handed_off"].as_u64().unwrap_or(0))
        .sum();
    assert!(
        handed > 100,
        "the workers handed frames to each other: {stats}"
    );
    rig.stop_node();
}

/// Serves TCP on an address and port, answering every connection with one line.
const PEER_SERVER: &str = "
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
while True:
    c, peer = s.accept(); c.sendall(('%s %d' % peer).encode()); c.close()
";

/// Replaces node 1's uplink with a veth of two queues on each side, plugged into the same
/// bridge with the same address. XPS on the switch side is crossed (a packet sent from CPU 0
/// arrives on queue 1 and the other way round), so that the answer to a packet a worker
/// pinned to CPU `i` sent arrives on the other worker's queue: every reply is handed off.
fn two_queue_uplink(c: &cluster::Cluster) {
    let node = c.node_netns(1);
    let sw = c.lab.spec().switch_netns();
    let port = c.lab.spec().switch_port(1);
    let out = Command::new("ip")
        .args(["-n", &node, "-o", "-4", "addr", "show", "dev", "eth0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let cidr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| panic!("no address on eth0: {text}"))
        .to_owned();
    sh(&["ip", "-n", &node, "link", "del", "eth0"]);
    sh(&[
        "ip",
        "-n",
        &node,
        "link",
        "add",
        "eth0",
        "numtxqueues",
        "2",
        "numrxqueues",
        "2",
        "type",
        "veth",
        "peer",
        "name",
        &port,
        "numtxqueues",
        "2",
        "numrxqueues",
        "2",
        "netns",
        &sw,
    ]);
    for (ns, dev) in [(node.as_str(), "eth0"), (sw.as_str(), port.as_str())] {
        cluster::run_in(
            ns,
            &[
                "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
            ],
        );
    }
    sh(&["ip", "-n", &node, "addr", "add", &cidr, "dev", "eth0"]);
    sh(&["ip", "-n", &sw, "link", "set", &port, "master", "br0", "up"]);
    sh(&["ip", "-n", &node, "link", "set", "eth0", "up"]);
    let xps = format!("echo 2 > /sys/class/net/{port}/queues/tx-0/xps_cpus && echo 1 > /sys/class/net/{port}/queues/tx-1/xps_cpus");
    cluster::run_in(&sw, &["sh", "-c", &xps]);
}

/// Starts node 1 as the cluster does, with its two workers pinned to CPUs 0 and 1.
fn start_pinned_node(c: &mut cluster::Cluster) {
    let launch = c
        .node_launch(1)
        .env("BRINDLE_CORES", "0,1")
        .env("BRINDLE_MODE", "interrupt");
    c.start_launched(1, launch);
}

fn stop_node(c: &mut cluster::Cluster) {
    if let Some(node) = c.nodes[0].take() {
        stop_on_sigterm(node);
    }
}

/// SIGTERM, and the node must exit within 10 s.
fn stop_on_sigterm(mut node: NodeProcess) {
    node.signal(libc::SIGTERM);
    let stopped = node.wait_exit(Duration::from_secs(10));
    assert!(stopped.is_some(), "node did not stop on SIGTERM");
}

#[test]
fn two_workers_keep_policed_and_nated_flows_whole_whichever_queue_their_replies_take() {
    let _turn = one_at_a_time();
    let mut c = cluster::Cluster::up("mw", "Never", 1, 0);
    stop_node(&mut c);
    two_queue_uplink(&c);
    start_pinned_node(&mut c);
    let stats = c.stats(1);
    let workers = stats["workers"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        workers.len(),
        2,
        "a worker per queue: {stats}\n{}",
        c.logs()
    );

    // Two policed workloads of one network (their ports spread over the workers) reach each
    // other: the profile allows members in, and the replies are tracked.
    let (a1, _) = c.add_container(1, "net1");
    let (_, a2_ip) = c.add_container(1, "net1");
    assert!(
        cluster::eventually(Duration::from_secs(15), || cluster::pings(&a1, a2_ip)),
        "a1 -> a2\n{}",
        c.logs()
    );

    // Outside: 203.0.113.1 behind a router on the segment with no route to the pool; the
    // default pool has natOutgoing, so only NATed flows get answers.
    let sw = c.lab.spec().switch_netns();
    let node_ns = c.node_netns(1);
    cluster::run_in(&sw, &["ip", "addr", "add", "10.98.0.250/24", "dev", "br0"]);
    cluster::run_in(&sw, &["ip", "addr", "add", "203.0.113.1/32", "dev", "lo"]);
    cluster::run_in(&sw, &["ip", "link", "set", "lo", "up"]);
    cluster::run_in(
        &node_ns,
        &["ip", "route", "add", "203.0.113.0/24", "via", "10.98.0.250"],
    );
    let server = cluster::spawn_in(&sw, &["python3", "-c", PEER_SERVER, "203.0.113.1", "7777"]);
    c.daemons.push(server);
    let outside: std::net::Ipv4Addr = "203.0.113.1".parse().unwrap();
    assert!(
        cluster::eventually(Duration::from_secs(15), || cluster::pings(&a1, outside)),
        "a1 -> outside\n{}",
        c.logs()
    );

    // Many flows (each ping a new echo identifier, each connection a new port) spread over
    // both workers; every one must get its answer back through its own worker's NAT entry
    // and flow table, whichever queue the answer arrives on. A policed workload with no
    // ingress rule for the outside sees the answers only if the flow table knows them.
    // The server is a python process just started: wait (boundedly) until it listens.
    assert!(
        cluster::eventually(Duration::from_secs(10), || cluster::connects(
            &a1, outside, 7777
        )),
        "the outside server answers through NAT\n{}",
        c.logs()
    );
    let before: Vec<u64> = workers
        .iter()
        .map(|w| w["handoff"]["received"].as_u64().unwrap_or(0))
        .collect();
    for flow in 0..12 {
        assert!(
            cluster::pings(&a1, outside),
            "ping flow {flow} through NAT\n{}",
            c.logs()
        );
        assert!(
            cluster::connects(&a1, outside, 7777),
            "TCP flow {flow} through NAT\n{}",
            c.logs()
        );
    }
    let stats = c.stats(1);
    let workers = stats["workers"].as_array().cloned().unwrap_or_default();
    for (i, w) in workers.iter().enumerate() {
        assert!(
            w["counters"]["rx_packets"].as_u64().unwrap_or(0) > 0,
            "worker {i} processed frames: {stats}"
        );
        let received = w["handoff"]["received"].as_u64().unwrap_or(0);
        assert!(
            received > before[i],
            "worker {i} took frames from the other one (replies on the other queue): {stats}"
        );
        assert_eq!(
            w["handoff"]["handoff_full"].as_u64(),
            Some(0),
            "no ring ran full: {stats}"
        );
    }
}
