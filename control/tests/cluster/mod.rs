//! A multi-node cluster of brindle-nodes in agent mode for integration tests: a `MultiLab`,
//! one node process per node namespace on a shared embedded store, containers plugged in by
//! brindle-cni, brindlectl against the same store, and any daemon a test adds; all torn down
//! on drop. Root: network namespaces, XDP.
#![allow(dead_code)] // each test binary uses part of it

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lab::cni::{netconf, CniPlugin};
use lab::node::{NodeLaunch, NodeProcess};
use lab::{MultiLab, MultiLabSpec};
use serde_json::Value;

pub const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");

/// A multi-node lab, every node in agent mode on a shared embedded store, the containers
/// plugged into them and any daemon a test adds; all torn down on drop.
pub struct Cluster {
    pub lab: MultiLab,
    pub dir: PathBuf,
    pub nodes: Vec<Option<NodeProcess>>,
    pub containers: Vec<String>,
    pub ipip: &'static str,
    pub daemons: Vec<Child>,
}

impl Cluster {
    /// `nodes` nodes, the last `routed` of them behind the lab's router. `tag` is at most 2
    /// characters; the pid keeps parallel test binaries apart.
    pub fn up(tag: &str, ipip: &'static str, nodes: usize, routed: usize) -> Cluster {
        let name = format!("{tag}{}", std::process::id() % 100_000);
        let spec = MultiLabSpec {
            routed_nodes: routed,
            ..MultiLabSpec::new(name.clone(), nodes, 0)
        };
        let lab = MultiLab::up(&spec).expect("multi-node lab up");
        let dir = std::env::temp_dir().join(format!("brindle-mesh-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = Cluster {
            lab,
            dir,
            nodes: (0..nodes).map(|_| None).collect(),
            containers: Vec::new(),
            ipip,
            daemons: Vec::new(),
        };
        // Node 1 first: it creates the default pool, as the first calico-node does.
        for k in 1..=nodes {
            cluster.start_node(k);
        }
        cluster
    }

    pub fn node_ip(&self, k: usize) -> Ipv4Addr {
        self.lab.spec().node_ip(k)
    }

    /// Runs brindlectl (calicoctl's verbs) against the cluster's datastore.
    pub fn brindlectl(&self, args: &[&str]) -> String {
        let brindlectl = testkit::workspace_bin("brindlectl");
        let out = Command::new(brindlectl)
            .args(args)
            .envs(self.datastore_env())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "brindlectl {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// `brindlectl apply -f` of a YAML document.
    pub fn apply(&self, yaml: &str) {
        let file = self.dir.join("apply.yaml");
        std::fs::write(&file, yaml).unwrap();
        self.brindlectl(&["apply", "-f", &file.display().to_string()]);
    }

    pub fn node_name(&self, k: usize) -> String {
        format!("{}n{k}", self.lab.spec().name)
    }

    pub fn node_netns(&self, k: usize) -> String {
        self.lab.node(k).expect("node").node_netns()
    }

    pub fn socket(&self, k: usize) -> PathBuf {
        self.dir.join(format!("node{k}.sock"))
    }

    pub fn datastore_env(&self) -> Vec<(String, String)> {
        vec![
            ("DATASTORE_TYPE".into(), "embedded".into()),
            (
                "BRINDLE_EMBEDDED_PATH".into(),
                self.dir.join("store.redb").display().to_string(),
            ),
        ]
    }

    /// Node `k` as the cluster runs it: agent mode on the shared store, its log
    /// `node<k>.log` and its control socket `node<k>.sock` in the cluster's directory.
    pub fn node_launch(&self, k: usize) -> NodeLaunch {
        NodeLaunch::new(
            self.node_netns(k),
            NODE_BIN,
            self.dir.join(format!("node{k}.log")),
        )
        .label(format!("brindle-node {k}"))
        .env("NODENAME", self.node_name(k))
        .env("IP_AUTODETECTION_METHOD", "interface=eth0")
        .env("CALICO_IPV4POOL_IPIP", self.ipip)
        .env(
            "BRINDLE_CONTROL_SOCKET",
            self.socket(k).display().to_string(),
        )
        .envs(self.datastore_env())
        .control_socket(self.socket(k))
    }

    pub fn start_node(&mut self, k: usize) {
        self.start_launched(k, self.node_launch(k));
    }

    /// Starts node `k` from `launch` and waits (at most 20 s) until its control socket answers.
    pub fn start_launched(&mut self, k: usize, launch: NodeLaunch) {
        let node = launch
            .start(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("brindle-node {k} did not become ready: {e}"));
        self.nodes[k - 1] = Some(node);
    }

    pub fn log(&self, k: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("node{k}.log"))).unwrap_or_default()
    }

    pub fn logs(&self) -> String {
        (1..=self.nodes.len())
            .map(|k| format!("node {k} log:\n{}\n", self.log(k)))
            .collect()
    }

    pub fn stats(&self, k: usize) -> Value {
        lab::node::read_stats(&self.socket(k)).expect("stats")
    }

    /// Creates a container namespace and plugs it into node `k` with brindle-cni ADD.
    pub fn add_container(&mut self, k: usize, network: &str) -> (String, Ipv4Addr) {
        let (ns, ip, _) = self.add_container_with_result(k, network);
        (ns, ip)
    }

    /// The container id `add_container` gives the container in namespace `ns`.
    pub fn container_id(ns: &str) -> String {
        format!("{ns}abcdef0123")
    }

    /// [`Cluster::add_container`], and the CNI result (a chained plugin's `prevResult`).
    pub fn add_container_with_result(
        &mut self,
        k: usize,
        network: &str,
    ) -> (String, Ipv4Addr, Value) {
        let conf = netconf(network, &[], 1500, &self.node_name(k));
        self.add_container_with_conf(k, &conf)
    }

    /// [`Cluster::add_container_with_result`] with the network configuration `conf` (made
    /// from [`Cluster::netconf`], with what a runtime adds, such as `runtimeConfig`).
    pub fn add_container_with_conf(&mut self, k: usize, conf: &str) -> (String, Ipv4Addr, Value) {
        let ns = format!("{}-c{}", self.lab.spec().name, self.containers.len() + 1);
        assert!(Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .unwrap()
            .success());
        self.containers.push(ns.clone());
        let bin_dir = testkit::workspace_bin_dir(&["brindle-cni", "brindle-ipam"]);
        let cni = CniPlugin {
            bin_dir,
            plugin: "brindle-cni".into(),
            env: self.datastore_env(),
        };
        let out = cni
            .invoke(
                &self.node_netns(k),
                "ADD",
                &Cluster::container_id(&ns),
                &PathBuf::from(format!("/var/run/netns/{ns}")),
                "eth0",
                conf,
            )
            .unwrap();
        assert!(
            out.success,
            "CNI ADD on node {k} failed: {}\n{}",
            out.stdout, out.stderr
        );
        let result = out.json();
        let address = result["ips"][0]["address"]
            .as_str()
            .expect("an address in the CNI result")
            .to_owned();
        let ip = address.split('/').next().unwrap().parse().unwrap();
        (ns, ip, result)
    }

    /// The network configuration `add_container` plugs node `k`'s containers in with.
    pub fn netconf(&self, k: usize, network: &str) -> Value {
        serde_json::from_str(&netconf(network, &[], 1500, &self.node_name(k)))
            .expect("lab netconf is JSON")
    }

    /// Node `k`'s BGP peer with `address`, once its session is Established.
    pub fn established_peer(&self, k: usize, address: Ipv4Addr) -> Option<Value> {
        let stats = self.stats(k);
        let peers = stats["bgp_peers"].as_array()?;
        peers
            .iter()
            .find(|p| p["address"] == address.to_string() && p["state"] == "Established")
            .cloned()
    }

    /// Node `k`'s peers as (address, type, state), in address order.
    pub fn peer_table(&self, k: usize) -> Vec<(String, String, String)> {
        let stats = self.stats(k);
        let text = |p: &Value, key: &str| p[key].as_str().unwrap_or_default().to_owned();
        stats["bgp_peers"]
            .as_array()
            .map(|peers| {
                peers
                    .iter()
                    .map(|p| (text(p, "address"), text(p, "type"), text(p, "state")))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until node `k` has exactly these peers, all Established with these types.
    pub fn wait_peers(&self, k: usize, expected: &[(Ipv4Addr, &str)], within: Duration) {
        let mut want: Vec<(String, String, String)> = expected
            .iter()
            .map(|(a, t)| (a.to_string(), t.to_string(), "Established".to_owned()))
            .collect();
        want.sort();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.peer_table(k) == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "node {k}: peers {:?}, expected {want:?}\n{}",
            self.peer_table(k),
            self.logs()
        );
    }

    /// Waits until both nodes of a two-node cluster list each other as Established mesh peers.
    pub fn wait_established(&self, within: Duration) {
        self.wait_peers(1, &[(self.node_ip(2), "node-to-node mesh")], within);
        self.wait_peers(2, &[(self.node_ip(1), "node-to-node mesh")], within);
    }

    /// Pings until one reply comes back (routes arrive a moment after the session).
    pub fn ping_until_ok(&self, from: &str, to: Ipv4Addr, within: Duration) -> bool {
        eventually(within, || pings(from, to))
    }

    /// Three pings; the output when not all came back.
    pub fn ping3(&self, from: &str, to: Ipv4Addr) -> Result<(), String> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                from,
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "1",
                &to.to_string(),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.contains("3 received") {
            Ok(())
        } else {
            Err(text)
        }
    }

    /// BIRD 2 as a top-of-rack router peered with node 1 over eBGP (a global BGPPeer):
    /// in the switch namespace at 10.98.0.250 on the segment, AS 65100; it announces
    /// 203.0.113.0/24 (its loopback holds .1) and puts what it learns into the switch
    /// namespace's kernel, so that the switch namespace is a host outside the cluster that
    /// routes by BGP. Returns birdc's socket once the session is Established.
    pub fn start_tor(&mut self) -> String {
        let sw = self.lab.spec().switch_netns();
        let run = |args: &[&str]| {
            assert!(Command::new("ip")
                .args(["netns", "exec", &sw])
                .args(args)
                .status()
                .unwrap()
                .success())
        };
        run(&["ip", "addr", "add", "10.98.0.250/24", "dev", "br0"]);
        run(&["ip", "addr", "add", "203.0.113.1/32", "dev", "lo"]);
        run(&["ip", "link", "set", "lo", "up"]);
        let conf = self.dir.join("bird.conf");
        let sock = self.dir.join("bird.ctl").display().to_string();
        std::fs::write(
            &conf,
            format!(
                "log \"{}\" all;
router id 10.98.0.250;
protocol device {{ }}
protocol kernel {{ ipv4 {{ import none; export where source = RTS_BGP; }}; }}
protocol static tor {{ ipv4; route 203.0.113.0/24 blackhole; }}
protocol bgp brindle {{
    local 10.98.0.250 as 65100;
    neighbor {} as 64512;
    connect retry time 2;
    error wait time 1, 2;
    ipv4 {{ import all; export where source = RTS_STATIC; }};
}}
",
                self.dir.join("bird.log").display(),
                self.node_ip(1)
            ),
        )
        .unwrap();
        let bird = Command::new("ip")
            .args([
                "netns",
                "exec",
                &sw,
                "bird",
                "-f",
                "-c",
                &conf.display().to_string(),
                "-s",
                &sock,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bird");
        self.daemons.push(bird);
        self.apply(
            "apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: tor
spec:
  peerIP: 10.98.0.250
  asNumber: 65100
",
        );
        self.wait_peers(
            1,
            &[("10.98.0.250".parse().unwrap(), "global")],
            Duration::from_secs(30),
        );
        sock
    }

    /// Both nodes peer, each workload reaches the other; returns the workloads.
    pub fn prove_reachability(&mut self) -> ((String, Ipv4Addr), (String, Ipv4Addr)) {
        let (c1, ip1) = self.add_container(1, NETWORK);
        let (c2, ip2) = self.add_container(2, NETWORK);
        assert_ne!(ip1, ip2);
        self.wait_established(Duration::from_secs(20));
        assert!(
            self.ping_until_ok(&c1, ip2, Duration::from_secs(15)),
            "node 1's workload -> node 2's ({ip2})\n{}",
            self.logs()
        );
        for (from, to) in [(&c1, ip2), (&c2, ip1)] {
            if let Err(out) = self.ping3(from, to) {
                panic!("ping {from} -> {to}:\n{out}\n{}", self.logs());
            }
        }
        // Each node lists the other as a mesh peer, Established, with its AS.
        for (k, other) in [(1, 2), (2, 1)] {
            let peer = self
                .established_peer(k, self.lab.spec().node_ip(other))
                .expect("peer still Established");
            assert_eq!(peer["type"], "node-to-node mesh", "{peer}");
            assert_eq!(
                peer["asn"], 64512,
                "the default BGPConfiguration's AS: {peer}"
            );
            assert_eq!(peer["info"], "Established", "{peer}");
            assert!(peer["since"].as_u64().is_some_and(|s| s > 0), "{peer}");
            assert!(
                peer["routes_received"].as_u64().is_some_and(|n| n >= 1),
                "the peer's block: {peer}"
            );
            // ARCHITECTURE.md scenario 5: `node status` prints the peer table as calicoctl does.
            let brindlectl = testkit::workspace_bin("brindlectl");
            let out = Command::new("ip")
                .args(["netns", "exec", &self.node_netns(k)])
                .arg(&brindlectl)
                .args(["node", "status", "--control-socket"])
                .arg(self.socket(k))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let other_ip = self.lab.spec().node_ip(other).to_string();
            let row = text
                .lines()
                .find(|l| l.contains(&other_ip))
                .unwrap_or_default();
            assert!(
                out.status.success()
                    && text.contains("IPv4 BGP status")
                    && text.contains("PEER ADDRESS")
                    && row.contains("node-to-node mesh")
                    && row.contains("| up ")
                    && row.contains("Established"),
                "node status on node {k}:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ((c1, ip1), (c2, ip2))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for daemon in &mut self.daemons {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        // Every node told first, so that they stop in parallel.
        for node in self.nodes.iter().flatten() {
            node.signal(libc::SIGTERM);
        }
        for node in self.nodes.iter_mut().filter_map(Option::take) {
            node.stop(Duration::from_secs(10));
        }
        for ns in &self.containers {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = self.lab.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn ipip_encapsulated(stats: &Value) -> u64 {
    stats["fastpath"]["ipip_encapsulated"]
        .as_u64()
        .unwrap_or_else(|| panic!("no ipip_encapsulated counter in {stats}"))
}

/// The network the two-node proofs plug their containers into.
pub const NETWORK: &str = "meshnet";

/// A TCP echo server: `python3 -c ECHO_SERVER <port>`.
pub const ECHO_SERVER: &str = "
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(16)
def serve(c):
    while True:
        d = c.recv(64)
        if not d: break
        c.sendall(d)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
";

/// Prints the peer address of every connection, then closes it.
pub const PEER_SERVER: &str = "
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(16)
while True:
    c, peer = s.accept(); c.sendall(('%s %d' % peer).encode()); c.close()
";
/// Connects to `argv[1]:argv[2]` and prints what the server sent (with [`PEER_SERVER`]: the
/// address and port it saw).
pub const PEER_CLIENT: &str = "
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
print(s.recv(64).decode())
";

/// A fastpath drop counter from `stats`.
pub fn drop_count(stats: &Value, reason: &str) -> u64 {
    stats["fastpath"]["drops"][reason]
        .as_u64()
        .unwrap_or_else(|| panic!("no {reason} drop counter in {stats}"))
}

/// Whether a TCP connection from namespace `from` to `to:port` opens within 2 seconds.
pub fn connects(from: &str, to: Ipv4Addr, port: u16) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            from,
            "timeout",
            "2",
            "bash",
            "-c",
            &format!("exec 3<>/dev/tcp/{to}/{port}"),
        ])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Whether one ping from namespace `from` to `to` is answered within a second.
pub fn pings(from: &str, to: Ipv4Addr) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            from,
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            &to.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Polls `cond` every 100 ms until it holds or `within` passes.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `args` in namespace `ns`, which must succeed; its stdout.
pub fn run_in(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?} in {ns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts `args` in namespace `ns`, stdout piped.
pub fn spawn_in(ns: &str, args: &[&str]) -> Child {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn in namespace")
}
