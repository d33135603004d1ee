//! MISSION.md scenarios 1, 5 and 6: brindle-nodes in agent mode find each other through the
//! datastore, peer over BGP, exchange their workloads' IPAM blocks and forward between their
//! workloads. Two nodes on one L2 segment in the node-to-node mesh (plainly, and with an IPIP
//! Always pool encapsulated); three nodes, one behind a router, with a CrossSubnet pool, first
//! in the mesh and then with route reflection (BGPPeer with selectors); and a node peering
//! with an external BIRD 2 over eBGP from a global BGPPeer. Root: network namespaces, XDP.
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

/// A multi-node lab, every node in agent mode on a shared embedded store, the containers
/// plugged into them and any daemon a test adds; all torn down on drop.
struct Cluster {
    lab: MultiLab,
    dir: PathBuf,
    nodes: Vec<Option<Child>>,
    containers: Vec<String>,
    ipip: &'static str,
    daemons: Vec<Child>,
}

impl Cluster {
    /// `nodes` nodes, the last `routed` of them behind the lab's router. `tag` is at most 2
    /// characters; the pid keeps parallel test binaries apart.
    fn up(tag: &str, ipip: &'static str, nodes: usize, routed: usize) -> Cluster {
        let name = format!("{tag}{}", std::process::id() % 100_000);
        let spec = MultiLabSpec { routed_nodes: routed, ..MultiLabSpec::new(name.clone(), nodes, 0) };
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

    fn node_ip(&self, k: usize) -> Ipv4Addr {
        self.lab.spec().node_ip(k)
    }

    /// Runs brindlectl (calicoctl's verbs) against the cluster's datastore.
    fn brindlectl(&self, args: &[&str]) -> String {
        let brindlectl = Path::new(NODE_BIN).with_file_name("brindlectl");
        let out = Command::new(brindlectl).args(args).envs(self.datastore_env()).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "brindlectl {args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
        text
    }

    /// `brindlectl apply -f` of a YAML document.
    fn apply(&self, yaml: &str) {
        let file = self.dir.join("apply.yaml");
        std::fs::write(&file, yaml).unwrap();
        self.brindlectl(&["apply", "-f", &file.display().to_string()]);
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
        (1..=self.nodes.len()).map(|k| format!("node {k} log:\n{}\n", self.log(k))).collect()
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

    /// Node `k`'s peers as (address, type, state), in address order.
    fn peer_table(&self, k: usize) -> Vec<(String, String, String)> {
        let stats = self.stats(k);
        let text = |p: &Value, key: &str| p[key].as_str().unwrap_or_default().to_owned();
        stats["bgp_peers"]
            .as_array()
            .map(|peers| peers.iter().map(|p| (text(p, "address"), text(p, "type"), text(p, "state"))).collect())
            .unwrap_or_default()
    }

    /// Waits until node `k` has exactly these peers, all Established with these types.
    fn wait_peers(&self, k: usize, expected: &[(Ipv4Addr, &str)], within: Duration) {
        let mut want: Vec<(String, String, String)> =
            expected.iter().map(|(a, t)| (a.to_string(), t.to_string(), "Established".to_owned())).collect();
        want.sort();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.peer_table(k) == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("node {k}: peers {:?}, expected {want:?}\n{}", self.peer_table(k), self.logs());
    }

    /// Waits until both nodes of a two-node cluster list each other as Established mesh peers.
    fn wait_established(&self, within: Duration) {
        self.wait_peers(1, &[(self.node_ip(2), "node-to-node mesh")], within);
        self.wait_peers(2, &[(self.node_ip(1), "node-to-node mesh")], within);
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

impl Drop for Cluster {
    fn drop(&mut self) {
        for daemon in &mut self.daemons {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
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
    let mut mesh = Cluster::up("ma", "Never", 2, 0);
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
    let mut mesh = Cluster::up("mb", "Always", 2, 0);
    mesh.prove_reachability();
    for k in [1, 2] {
        assert!(
            ipip_encapsulated(&mesh.stats(k)) >= 3,
            "ipipMode Always: node {k} encapsulated the pings: {}",
            mesh.stats(k)
        );
    }
}

/// Pings `to` from `from` three times and returns how many frames each node encapsulated
/// meanwhile.
fn encapsulated_during(cluster: &Cluster, from: &str, to: Ipv4Addr) -> Vec<u64> {
    let before: Vec<u64> = (1..=3).map(|k| ipip_encapsulated(&cluster.stats(k))).collect();
    assert!(cluster.ping_until_ok(from, to, Duration::from_secs(15)), "{from} -> {to}\n{}", cluster.logs());
    if let Err(out) = cluster.ping3(from, to) {
        panic!("ping {from} -> {to}:\n{out}\n{}", cluster.logs());
    }
    (1..=3).map(|k| ipip_encapsulated(&cluster.stats(k)) - before[k - 1]).collect()
}

#[test]
fn three_nodes_across_a_router_mesh_then_reflect_routes_with_crosssubnet_ipip() {
    // Nodes 1 and 2 share a segment; node 3 is behind the router, in another subnet.
    let mut cluster = Cluster::up("mc", "CrossSubnet", 3, 1);
    let workloads: Vec<(String, Ipv4Addr)> = (1..=3).map(|k| cluster.add_container(k)).collect();
    let ip = |k: usize| cluster.node_ip(k);
    let mesh = "node-to-node mesh";
    cluster.wait_peers(1, &[(ip(2), mesh), (ip(3), mesh)], Duration::from_secs(30));
    cluster.wait_peers(2, &[(ip(1), mesh), (ip(3), mesh)], Duration::from_secs(30));
    cluster.wait_peers(3, &[(ip(1), mesh), (ip(2), mesh)], Duration::from_secs(30));

    // Same subnet: plain. To and from node 3: IPIP (CrossSubnet), both ways.
    let (c1, c2, c3) = (&workloads[0].0, &workloads[1].0, &workloads[2].0);
    let (w1, w2, w3) = (workloads[0].1, workloads[1].1, workloads[2].1);
    assert_eq!(encapsulated_during(&cluster, c1, w2), [0, 0, 0], "node 1 <-> node 2 on one segment: plain");
    let tunnelled = encapsulated_during(&cluster, c1, w3);
    assert!(tunnelled[0] >= 3 && tunnelled[1] == 0 && tunnelled[2] >= 3, "node 1 <-> node 3 across the router: IPIP {tunnelled:?}");
    let tunnelled = encapsulated_during(&cluster, c3, w2);
    assert!(tunnelled[0] == 0 && tunnelled[1] >= 3 && tunnelled[2] >= 3, "node 3 <-> node 2: IPIP {tunnelled:?}");

    // Calico's route reflector recipe: node 1 reflects (label + cluster ID), every node peers
    // with the reflectors, then the mesh goes off. Nodes 2 and 3 now hear each other's routes
    // only through node 1.
    let node1 = format!("{}n1", cluster.lab.spec().name);
    cluster.brindlectl(&["label", "nodes", &node1, "route-reflector=true"]);
    cluster.brindlectl(&["patch", "node", &node1, "-p", r#"{"spec":{"bgp":{"routeReflectorClusterID":"224.0.0.1"}}}"#]);
    cluster.apply(
        "apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: peer-with-route-reflectors
spec:
  nodeSelector: all()
  peerSelector: route-reflector == 'true'
",
    );
    cluster.apply(
        "apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  nodeToNodeMeshEnabled: false
",
    );
    let specific = "node specific";
    cluster.wait_peers(1, &[(ip(2), specific), (ip(3), specific)], Duration::from_secs(30));
    cluster.wait_peers(2, &[(ip(1), specific)], Duration::from_secs(30));
    cluster.wait_peers(3, &[(ip(1), specific)], Duration::from_secs(30));
    // Reflected: node 3's block reaches node 2 with node 3 as its next hop, still IPIP.
    let tunnelled = encapsulated_during(&cluster, c2, w3);
    assert!(tunnelled[1] >= 3 && tunnelled[2] >= 3, "node 2 <-> node 3 through reflected routes: {tunnelled:?}");
    assert_eq!(encapsulated_during(&cluster, c2, w1), [0, 0, 0], "node 2 <-> node 1: plain");
    let tunnelled = encapsulated_during(&cluster, c3, w1);
    assert!(tunnelled[0] >= 3 && tunnelled[2] >= 3, "node 3 <-> node 1: {tunnelled:?}");
}

#[test]
fn a_global_bgppeer_is_an_external_bird_peered_over_ebgp_both_ways() {
    let mut cluster = Cluster::up("md", "Never", 1, 0);
    let (container, _) = cluster.add_container(1);
    // BIRD 2 as the top-of-rack router: in the switch namespace, on the segment, AS 65100. It
    // announces 203.0.113.0/24 (its loopback holds .1) and puts what it learns into the
    // switch namespace's kernel, so that replies find their way back to the workload.
    let sw = cluster.lab.spec().switch_netns();
    let run = |args: &[&str]| assert!(Command::new("ip").args(["netns", "exec", &sw]).args(args).status().unwrap().success());
    run(&["ip", "addr", "add", "10.98.0.250/24", "dev", "br0"]);
    run(&["ip", "addr", "add", "203.0.113.1/32", "dev", "lo"]);
    run(&["ip", "link", "set", "lo", "up"]);
    let conf = cluster.dir.join("bird.conf");
    let sock = cluster.dir.join("bird.ctl").display().to_string();
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
            cluster.dir.join("bird.log").display(),
            cluster.node_ip(1)
        ),
    )
    .unwrap();
    let bird = Command::new("ip")
        .args(["netns", "exec", &sw, "bird", "-f", "-c", &conf.display().to_string(), "-s", &sock])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bird");
    cluster.daemons.push(bird);
    cluster.apply(
        "apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: tor
spec:
  peerIP: 10.98.0.250
  asNumber: 65100
",
    );
    cluster.wait_peers(1, &[("10.98.0.250".parse().unwrap(), "global")], Duration::from_secs(30));
    let peer = cluster.established_peer(1, "10.98.0.250".parse().unwrap()).unwrap();
    assert_eq!(peer["asn"], 65100, "{peer}");

    // BIRD holds the node's block with AS_PATH 64512 and the node as next hop.
    let block_route = || {
        let out = Command::new("ip").args(["netns", "exec", &sw, "birdc", "-s", &sock, "show", "route", "all", "protocol", "brindle"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !block_route().contains("BGP.as_path: 64512") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let shown = block_route();
    assert!(
        shown.contains("BGP.as_path: 64512") && shown.contains(&format!("via {}", cluster.node_ip(1))),
        "BIRD's routes from brindle:\n{shown}"
    );
    // And the node learned BIRD's prefix: the workload reaches the router's address.
    assert!(
        cluster.ping_until_ok(&container, "203.0.113.1".parse().unwrap(), Duration::from_secs(15)),
        "workload -> 203.0.113.1 through the eBGP route\nBIRD log:\n{}\n{}",
        std::fs::read_to_string(cluster.dir.join("bird.log")).unwrap_or_default(),
        cluster.logs()
    );
}
