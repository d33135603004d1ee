//! MISSION.md scenario 1: two brindle-nodes in agent mode on one L2 segment find each other
//! through the datastore, peer over BGP (the node-to-node mesh), exchange their workloads'
//! IPAM blocks and forward between their workloads; with an IPIP Always pool the traffic
//! crosses the segment encapsulated. Root: network namespaces, XDP.
//!
//! The datastore is the embedded store: one file both nodes' processes open (network
//! namespaces do not separate the filesystem).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use perf::cni::{netconf, CniPlugin};
use perf::lab::{MultiLab, MultiLabSpec};
use serde_json::Value;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");
const NETWORK: &str = "meshnet";

/// A two-node lab, both nodes in agent mode on a shared embedded store, and the containers
/// plugged into them; all torn down on drop.
struct Mesh {
    lab: MultiLab,
    dir: PathBuf,
    nodes: Vec<Option<Child>>,
    containers: Vec<String>,
    ipip: &'static str,
}

impl Mesh {
    /// `tag` is at most 2 characters; the pid keeps parallel test binaries apart.
    fn up(tag: &str, ipip: &'static str) -> Mesh {
        let name = format!("{tag}{}", std::process::id() % 100_000);
        let lab = MultiLab::up(&MultiLabSpec::new(name.clone(), 2, 0)).expect("multi-node lab up");
        let dir = std::env::temp_dir().join(format!("brindle-mesh-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut mesh = Mesh {
            lab,
            dir,
            nodes: vec![None, None],
            containers: Vec::new(),
            ipip,
        };
        // Node 1 first: it creates the default pool, as the first calico-node does.
        for k in [1, 2] {
            mesh.start_node(k);
        }
        mesh
    }

    fn node_name(&self, k: usize) -> String {
        format!("{}n{k}", self.lab.spec().name)
    }

    fn node_netns(&self, k: usize) -> String {
        self.lab.node(k).expect("node").node_netns()
    }

    fn socket(&self, k: usize) -> PathBuf {
        self.dir.join(format!("node{k}.sock"))
    }

    fn datastore_env(&self) -> Vec<(String, String)> {
        vec![
            ("DATASTORE_TYPE".into(), "embedded".into()),
            (
                "BRINDLE_EMBEDDED_PATH".into(),
                self.dir.join("store.redb").display().to_string(),
            ),
        ]
    }

    fn start_node(&mut self, k: usize) {
        let log = std::fs::File::create(self.dir.join(format!("node{k}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.node_netns(k), NODE_BIN])
            .env("NODENAME", self.node_name(k))
            .env("IP_AUTODETECTION_METHOD", "interface=eth0")
            .env("CALICO_IPV4POOL_IPIP", self.ipip)
            .env("BRINDLE_CONTROL_SOCKET", self.socket(k))
            .envs(self.datastore_env())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn brindle-node");
        self.nodes[k - 1] = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if control::stats::fetch(&self.socket(k)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "brindle-node {k} did not become ready; log:\n{}",
            self.log(k)
        );
    }

    fn log(&self, k: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("node{k}.log"))).unwrap_or_default()
    }

    fn logs(&self) -> String {
        format!("node 1 log:\n{}\nnode 2 log:\n{}", self.log(1), self.log(2))
    }

    fn stats(&self, k: usize) -> Value {
        control::stats::fetch(&self.socket(k)).expect("stats")
    }

    /// Creates a container namespace and plugs it into node `k` with brindle-cni ADD.
    fn add_container(&mut self, k: usize) -> (String, Ipv4Addr) {
        let ns = format!("{}-c{}", self.lab.spec().name, self.containers.len() + 1);
        assert!(Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .unwrap()
            .success());
        self.containers.push(ns.clone());
        let bin_dir = Path::new(NODE_BIN).parent().unwrap().to_path_buf();
        let cni = CniPlugin {
            bin_dir,
            plugin: "brindle-cni".into(),
            env: self.datastore_env(),
        };
        let out = cni
            .invoke(
                &self.node_netns(k),
                "ADD",
                &format!("{ns}abcdef0123"),
                &PathBuf::from(format!("/var/run/netns/{ns}")),
                "eth0",
                &netconf(NETWORK, &[], 1500, &self.node_name(k)),
            )
            .unwrap();
        assert!(
            out.success,
            "CNI ADD on node {k} failed: {}\n{}",
            out.stdout, out.stderr
        );
        let address = out.json()["ips"][0]["address"]
            .as_str()
            .expect("an address in the CNI result")
            .to_owned();
        (ns, address.split('/').next().unwrap().parse().unwrap())
    }

    /// Node `k`'s BGP peer with `address`, once its session is Established.
    fn established_peer(&self, k: usize, address: Ipv4Addr) -> Option<Value> {
        let stats = self.stats(k);
        let peers = stats["bgp_peers"].as_array()?;
        peers
            .iter()
            .find(|p| p["address"] == address.to_string() && p["state"] == "Established")
            .cloned()
    }

    /// Waits until both nodes list each other as Established mesh peers.
    fn wait_established(&self, within: Duration) {
        let (ip1, ip2) = (self.lab.spec().node_ip(1), self.lab.spec().node_ip(2));
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.established_peer(1, ip2).is_some() && self.established_peer(2, ip1).is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the mesh did not establish: node 1 peers {}, node 2 peers {}\n{}",
            self.stats(1)["bgp_peers"],
            self.stats(2)["bgp_peers"],
            self.logs()
        );
    }

    /// Pings until one reply comes back (routes arrive a moment after the session).
    fn ping_until_ok(&self, from: &str, to: Ipv4Addr, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let ok = Command::new("ip")
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
                .success();
            if ok {
                return true;
            }
        }
        false
    }

    /// Three pings; the output when not all came back.
    fn ping3(&self, from: &str, to: Ipv4Addr) -> Result<(), String> {
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

    /// Both nodes peer, each workload reaches the other; returns the workloads.
    fn prove_reachability(&mut self) -> ((String, Ipv4Addr), (String, Ipv4Addr)) {
        let (c1, ip1) = self.add_container(1);
        let (c2, ip2) = self.add_container(2);
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
            // MISSION.md scenario 5: `node status` prints the peer table as calicoctl does.
            let brindlectl = std::path::Path::new(NODE_BIN).with_file_name("brindlectl");
            let out = Command::new("ip")
                .args(["netns", "exec", &self.node_netns(k)])
                .arg(&brindlectl)
                .args(["node", "status", "--control-socket"])
                .arg(self.socket(k))
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let other_ip = self.lab.spec().node_ip(other).to_string();
            let row = text.lines().find(|l| l.contains(&other_ip)).unwrap_or_default();
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

impl Drop for Mesh {
    fn drop(&mut self) {
        for child in self.nodes.iter_mut().flatten() {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
        for child in self.nodes.iter_mut().flatten() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.containers {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = self.lab.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ipip_encapsulated(stats: &Value) -> u64 {
    stats["fastpath"]["ipip_encapsulated"]
        .as_u64()
        .unwrap_or_else(|| panic!("no ipip_encapsulated counter in {stats}"))
}

#[test]
fn two_agent_nodes_peer_in_the_mesh_and_route_between_their_workloads_plainly() {
    let mut mesh = Mesh::up("ma", "Never");
    mesh.prove_reachability();
    for k in [1, 2] {
        assert_eq!(
            ipip_encapsulated(&mesh.stats(k)),
            0,
            "ipipMode Never: nothing encapsulated on node {k}"
        );
    }
}

#[test]
fn two_agent_nodes_peer_in_the_mesh_and_tunnel_between_their_workloads_with_ipip_always() {
    let mut mesh = Mesh::up("mb", "Always");
    mesh.prove_reachability();
    for k in [1, 2] {
        assert!(
            ipip_encapsulated(&mesh.stats(k)) >= 3,
            "ipipMode Always: node {k} encapsulated the pings: {}",
            mesh.stats(k)
        );
    }
}
