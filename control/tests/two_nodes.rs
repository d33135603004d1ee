//! Two nodes on one L2 segment, a workload each, wired to each other with static routes
//! (before BGP exists): plain, then IP in IP (root: network namespaces, XDP, tcpdump).
//!
//! Each test builds its own multi-node lab (namespaces named after the test and this
//! process), starts the real `brindle-node` in both node namespaces, drives traffic with the
//! real ping/iperf3 and proves what crossed the segment with a capture on node 1's bridge
//! port, plus the nodes' counters.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab::node::{NodeLaunch, NodeProcess};
use lab::{MultiLab, MultiLabSpec};
use serde_json::Value;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");

/// A two-node lab and its running nodes; all torn down on drop.
struct TwoNodes {
    lab: MultiLab,
    dir: PathBuf,
    nodes: Vec<Option<NodeProcess>>,
}

impl TwoNodes {
    /// `tag` is at most 2 characters; the lab name adds digits of our pid so parallel test
    /// binaries never share namespaces. `encap` is the routes' `encap` value.
    fn up(tag: &str, encap: &str) -> TwoNodes {
        TwoNodes::build(tag, 0, |spec, _, other| {
            format!(
                "\n[[route]]\nprefix = \"{}\"\nvia = \"{}\"\nencap = \"{encap}\"\n",
                spec.node_block(other),
                spec.node_ip(other)
            )
        })
    }

    /// Two nodes, the last `routed_nodes` of them behind the router; `routes(spec, k, other)`
    /// is the `[[route]]` text of node `k`, whose peer is `other`.
    fn build(
        tag: &str,
        routed_nodes: usize,
        routes: impl Fn(&MultiLabSpec, usize, usize) -> String,
    ) -> TwoNodes {
        let name = format!("{tag}{}", std::process::id() % 100_000);
        let spec = MultiLabSpec {
            routed_nodes,
            ..MultiLabSpec::new(name.clone(), 2, 1)
        };
        let lab = MultiLab::up(&spec).expect("multi-node lab up");
        let dir = std::env::temp_dir().join(format!("brindle-test-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut rig = TwoNodes {
            lab,
            dir,
            nodes: vec![None, None],
        };
        for (k, other) in [(1, 2), (2, 1)] {
            let route = routes(rig.lab.spec(), k, other);
            let config = rig
                .lab
                .node_config_toml(k, "interrupt", &rig.socket(k))
                .unwrap()
                + &route;
            std::fs::write(rig.dir.join(format!("node{k}.toml")), config).unwrap();
            rig.start_node(k);
        }
        rig
    }

    fn socket(&self, k: usize) -> PathBuf {
        self.dir.join(format!("node{k}.sock"))
    }

    fn node_netns(&self, k: usize) -> String {
        self.lab.node(k).expect("node").node_netns()
    }

    fn start_node(&mut self, k: usize) {
        let launch = NodeLaunch::new(
            self.node_netns(k),
            NODE_BIN,
            self.dir.join(format!("node{k}.log")),
        )
        .label(format!("brindle-node {k}"))
        .config(&self.dir.join(format!("node{k}.toml")))
        .control_socket(self.socket(k));
        let node = launch
            .start(Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("brindle-node {k} did not become ready: {e}"));
        self.nodes[k - 1] = Some(node);
    }

    fn log(&self, k: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("node{k}.log"))).unwrap_or_default()
    }

    fn logs(&self) -> String {
        format!("node 1 log:\n{}\nnode 2 log:\n{}", self.log(1), self.log(2))
    }

    fn stats(&self, k: usize) -> Value {
        lab::node::read_stats(&self.socket(k)).expect("stats")
    }

    /// Workload 1 of node `k`.
    fn workload_ns(&self, k: usize) -> String {
        self.lab
            .node(k)
            .and_then(|n| n.workload(1))
            .expect("workload")
            .netns
            .clone()
    }

    fn workload_ip(&self, k: usize) -> Ipv4Addr {
        self.lab
            .node(k)
            .and_then(|n| n.workload(1))
            .expect("workload")
            .ip
    }

    fn run(&self, ns: &str, args: &[&str]) -> std::process::Output {
        self.lab
            .node(1)
            .unwrap()
            .exec_timeout(ns, args, Duration::from_secs(30))
            .expect("exec")
    }

    /// Pings from node `from`'s workload to node `to`'s, 3 times.
    fn ping(&self, from: usize, to: usize, extra: &[&str]) -> (bool, String) {
        let mut args = vec!["ping", "-c", "3", "-i", "0.2", "-W", "2"];
        args.extend_from_slice(extra);
        let target = self.workload_ip(to).to_string();
        args.push(&target);
        let out = self.run(&self.workload_ns(from), &args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// A one-second iperf3 TCP transfer from node `client`'s workload to node `server`'s;
    /// returns the bytes received.
    fn iperf(&self, server: usize, client: usize) -> u64 {
        let port = "5201";
        let mut srv = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.workload_ns(server),
                "iperf3",
                "-s",
                "-1",
                "-p",
                port,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let target = self.workload_ip(server).to_string();
        let out = self.run(
            &self.workload_ns(client),
            &[
                "iperf3",
                "-c",
                &target,
                "-p",
                port,
                "-t",
                "1",
                "-J",
                "--connect-timeout",
                "3000",
            ],
        );
        let _ = srv.kill();
        let _ = srv.wait();
        assert!(
            out.status.success(),
            "iperf3 node {client} -> node {server}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            self.logs()
        );
        let report: Value = serde_json::from_slice(&out.stdout).expect("iperf3 json");
        report["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0)
    }
}

impl Drop for TwoNodes {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = self.lab.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// tcpdump on node 1's port of the segment's bridge, writing to a file until stopped.
struct Capture {
    child: Option<Child>,
    file: PathBuf,
}

impl Capture {
    fn start(rig: &TwoNodes) -> Capture {
        let sw = rig.lab.spec().switch_netns();
        let port = rig.lab.spec().switch_port(1);
        let file = rig.dir.join("segment.pcap");
        let errors = rig.dir.join("tcpdump.err");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &sw,
                "tcpdump",
                "-i",
                &port,
                "-nn",
                "-U",
                "--immediate-mode",
                "-s",
                "128",
                "-w",
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&errors).unwrap())
            .spawn()
            .expect("spawn tcpdump (scripts/deps.sh installs it)");
        let capture = Capture {
            child: Some(child),
            file,
        };
        // tcpdump says so on stderr once the socket is open. Immediate mode: packets still in
        // the ring when SIGINT arrives would otherwise never reach the file.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(&errors)
            .unwrap_or_default()
            .contains("listening on")
        {
            assert!(
                Instant::now() < deadline,
                "tcpdump did not start: {}",
                std::fs::read_to_string(&errors).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        capture
    }

    /// Stops the capture (SIGINT, so the file is complete) and returns the lines tcpdump
    /// prints for the packets matching `filter`.
    fn stop_and_read(mut self, filter: &str) -> Vec<String> {
        self.stop();
        read_capture(&self.file, filter)
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: plain kill(2) on our own child's pid (ip netns exec execs tcpdump in place).
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_capture(file: &Path, filter: &str) -> Vec<String> {
    let out = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(file)
        .arg(filter)
        .output()
        .expect("tcpdump -r");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn counter(stats: &Value, path: &[&str]) -> u64 {
    let mut v = stats;
    for p in path {
        v = &v[*p];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("no counter {path:?} in {stats}"))
}

#[test]
fn plain_routes_carry_ping_and_tcp_between_nodes_unencapsulated() {
    let rig = TwoNodes::up("tp", "none");
    let capture = Capture::start(&rig);
    for (from, to) in [(1, 2), (2, 1)] {
        let (ok, out) = rig.ping(from, to, &[]);
        assert!(ok, "ping node {from} -> node {to}:\n{out}\n{}", rig.logs());
        assert!(out.contains("3 received"), "{out}");
    }
    let (w1, w2) = (rig.workload_ip(1), rig.workload_ip(2));
    let ipip = capture.stop_and_read("ip proto 4");
    assert!(
        ipip.is_empty(),
        "no IPIP on the segment without encap: {ipip:?}"
    );
    let plain = read_capture(
        &rig.dir.join("segment.pcap"),
        &format!("icmp and host {w1} and host {w2}"),
    );
    assert!(
        plain.len() >= 12,
        "6 requests and 6 replies crossed the segment as they are: {plain:?}"
    );

    for (server, client) in [(2, 1), (1, 2)] {
        let bytes = rig.iperf(server, client);
        assert!(
            bytes > 1_000_000,
            "iperf3 node {client} -> node {server} moved only {bytes} bytes"
        );
    }
    for k in [1, 2] {
        let stats = rig.stats(k);
        let fp = &stats["fastpath"];
        assert!(
            counter(fp, &["forwarded"]) > 1000,
            "node {k} forwarded the TCP transfers: {fp}"
        );
        assert_eq!(counter(fp, &["drops", "ipip_unknown_source"]), 0, "{fp}");
        // Plain routes: nothing was wrapped or unwrapped.
        assert_eq!(
            counter(fp, &["ipip_encapsulated"]) + counter(fp, &["ipip_decapsulated"]),
            0,
            "{fp}"
        );
        let accounted =
            counter(fp, &["forwarded"]) + counter(fp, &["punted"]) + counter(fp, &["dropped"]);
        assert_eq!(
            counter(fp, &["rx_packets"]),
            accounted,
            "rx != forwarded + punted + dropped: {fp}"
        );
    }
}

#[test]
fn ipip_routes_carry_ping_and_tcp_between_nodes_inside_ipip_with_path_mtu() {
    let rig = TwoNodes::up("ti", "ipip");
    let capture = Capture::start(&rig);
    for (from, to) in [(1, 2), (2, 1)] {
        let (ok, out) = rig.ping(from, to, &[]);
        assert!(
            ok,
            "ping node {from} -> node {to} through IPIP:\n{out}\n{}",
            rig.logs()
        );
        assert!(out.contains("3 received"), "{out}");
    }
    let (w1, w2) = (rig.workload_ip(1), rig.workload_ip(2));
    let (n1, n2) = (rig.lab.spec().node_ip(1), rig.lab.spec().node_ip(2));
    let ipip = capture.stop_and_read(&format!("ip proto 4 and host {n1} and host {n2}"));
    let wrapped_echoes = ipip
        .iter()
        .filter(|l| l.contains("ICMP echo") && l.contains(&w1.to_string()))
        .count();
    assert!(
        wrapped_echoes >= 12,
        "6 requests and 6 replies crossed between the nodes inside IPIP: {ipip:?}"
    );
    let bare = read_capture(
        &rig.dir.join("segment.pcap"),
        &format!("icmp and host {w1} and host {w2}"),
    );
    assert!(
        bare.is_empty(),
        "no workload ICMP crossed unencapsulated: {bare:?}"
    );

    // TCP inside the tunnel, both ways. Workload 1 has not learned any path MTU yet, so its
    // first full-sized segments (1500 bytes, DF) are refused with fragmentation needed, it
    // lowers its path MTU to 1480 and the transfer goes on.
    for (server, client) in [(2, 1), (1, 2)] {
        let bytes = rig.iperf(server, client);
        assert!(
            bytes > 1_000_000,
            "iperf3 node {client} -> node {server} through IPIP moved only {bytes} bytes"
        );
    }
    let node1 = rig.stats(1);
    assert!(
        counter(&node1, &["fastpath", "drops", "fragmentation_needed"]) >= 1,
        "TCP met the tunnel MTU: {node1}"
    );

    // 1452 bytes of data + 28 of headers = 1480: exactly what fits the tunnel of a 1500 uplink.
    let (ok, out) = rig.ping(1, 2, &["-M", "do", "-s", "1452"]);
    assert!(
        ok,
        "a 1480-byte DF packet fits the tunnel:\n{out}\n{}",
        rig.logs()
    );
    // 1500 bytes with DF: refused with the tunnel's MTU, which the workload's kernel learned
    // from the node's fragmentation needed (ping reports "Frag needed ... mtu = 1480" when the
    // ICMP error answers it, "message too long, mtu=1480" once the route remembers it).
    let (ok, out) = rig.ping(1, 2, &["-M", "do", "-s", "1472"]);
    assert!(
        !ok,
        "a 1500-byte DF packet cannot cross IPIP on a 1500-byte uplink:\n{out}"
    );
    assert!(
        out.contains("mtu = 1480") || out.contains("mtu=1480"),
        "fragmentation needed with MTU 1480:\n{out}"
    );
    // Workload 2 never sent anything too big (workload 1 advertised an MSS that fits), so its
    // first 1500-byte DF ping is answered by node 2 itself.
    let (ok, out) = rig.ping(2, 1, &["-M", "do", "-s", "1472"]);
    assert!(
        !ok,
        "a 1500-byte DF packet cannot cross IPIP on a 1500-byte uplink:\n{out}"
    );
    let from_node2 = format!("From {n2}");
    assert!(
        out.contains(&from_node2) && out.contains("Frag needed") && out.contains("mtu = 1480"),
        "node 2 answers fragmentation needed with MTU 1480:\n{out}"
    );
    let node2 = rig.stats(2);
    assert!(
        counter(&node2, &["fastpath", "drops", "fragmentation_needed"]) >= 1,
        "{node2}"
    );

    for k in [1, 2] {
        let stats = rig.stats(k);
        let fp = &stats["fastpath"];
        assert!(
            counter(fp, &["forwarded"]) > 1000,
            "node {k} forwarded the TCP transfers: {fp}"
        );
        assert_eq!(counter(fp, &["drops", "ipip_unknown_source"]), 0, "{fp}");
        // Both directions crossed the tunnel: each node wrapped and unwrapped the transfers.
        assert!(
            counter(fp, &["ipip_encapsulated"]) > 1000,
            "node {k} encapsulated: {fp}"
        );
        assert!(
            counter(fp, &["ipip_decapsulated"]) > 1000,
            "node {k} decapsulated: {fp}"
        );
        let accounted =
            counter(fp, &["forwarded"]) + counter(fp, &["punted"]) + counter(fp, &["dropped"]);
        assert_eq!(
            counter(fp, &["rx_packets"]),
            accounted,
            "rx != forwarded + punted + dropped: {fp}"
        );
    }
    let node1 = rig.stats(1);
    assert!(
        counter(&node1, &["slowpath", "icmp_unreachable_sent"]) >= 1,
        "fragmentation needed was sent: {node1}"
    );
}

#[test]
fn ipip_reaches_a_node_in_another_subnet_through_the_router() {
    // Node 2 is behind the router: each node reaches the other's subnet through the router
    // (a plain static route) and the other's workloads through a tunnel to the node itself.
    let rig = TwoNodes::build("tx", 1, |spec, k, other| {
        let other_subnet = spec.node_ip(other).octets();
        format!(
            "\n[[route]]\nprefix = \"{}.{}.{}.0/24\"\nvia = \"{}\"\n\
             \n[[route]]\nprefix = \"{}\"\nvia = \"{}\"\nencap = \"ipip\"\n",
            other_subnet[0],
            other_subnet[1],
            other_subnet[2],
            spec.gateway_for(k),
            spec.node_block(other),
            spec.node_ip(other)
        )
    });
    assert!(rig.lab.spec().is_routed(2) && !rig.lab.spec().is_routed(1));
    let capture = Capture::start(&rig);
    for (from, to) in [(1, 2), (2, 1)] {
        let (ok, out) = rig.ping(from, to, &[]);
        assert!(
            ok,
            "ping node {from} -> node {to} across subnets:\n{out}\n{}",
            rig.logs()
        );
    }
    let (n1, n2) = (rig.lab.spec().node_ip(1), rig.lab.spec().node_ip(2));
    // On node 1's segment the tunnel runs between the nodes, with the router's MAC as the
    // next hop; the router forwards it like any IPv4 packet.
    let ipip = capture.stop_and_read(&format!("ip proto 4 and host {n1} and host {n2}"));
    assert!(
        ipip.len() >= 6,
        "3 requests and 3 replies in IPIP between the nodes: {ipip:?}"
    );
    let bytes = rig.iperf(2, 1);
    assert!(
        bytes > 1_000_000,
        "iperf3 across subnets moved only {bytes} bytes"
    );
}
