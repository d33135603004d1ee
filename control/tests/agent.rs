//! brindle-node as calico-node: configured by its environment, programmed from the datastore,
//! with workloads plugged in by the real `brindle-cni` exactly as a container runtime does.
//! Root: network namespaces, XDP, a real etcd.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cli::cni::plumbing::{host_interface_name, WorkloadIdentity};
use datastore::{keys, Datastore};
use lab::cni::{netconf, CniPlugin};
use lab::etcd::EtcdMemberSpec;
use lab::node::{NodeLaunch, NodeProcess};
use lab::{Lab, LabSpec};
use resources::Resource;
use serde_json::Value;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");

/// etcd members started inside a network namespace (the node's), on its loopback.
struct Etcd {
    members: Vec<Child>,
    specs: Vec<EtcdMemberSpec>,
    dir: PathBuf,
    client_url: String,
}

impl Etcd {
    /// `size` members on 127.0.0.1:2379N (client) and :2380N (peer) of the namespace.
    fn start_cluster(netns: &str, dir: &Path, size: usize) -> Etcd {
        let data = dir.join("etcd");
        let peer = |i: usize| format!("http://127.0.0.1:2380{i}");
        let client = |i: usize| format!("http://127.0.0.1:2379{i}");
        let initial: Vec<String> = (0..size).map(|i| format!("m{i}={}", peer(i))).collect();
        let specs: Vec<EtcdMemberSpec> = (0..size)
            .map(|i| EtcdMemberSpec {
                netns: netns.to_string(),
                name: format!("m{i}"),
                data_dir: data.join(format!("m{i}")),
                client_url: client(i),
                peer_url: peer(i),
                initial_cluster: initial.join(","),
                token: None,
                fast_elections: false,
                enable_v2: false,
                tls: None,
                log: dir.join(format!("etcd-m{i}.log")),
            })
            .collect();
        let members = specs
            .iter()
            .map(|spec| spec.spawn().expect("start etcd"))
            .collect();
        let client_url = (0..size).map(client).collect::<Vec<_>>().join(",");
        Etcd {
            members,
            specs,
            dir: data,
            client_url,
        }
    }

    /// Kills member `i` (it stays dead until [`Etcd::start_member`]).
    fn kill_member(&mut self, i: usize) {
        let _ = self.members[i].kill();
        let _ = self.members[i].wait();
    }

    /// Starts member `i` again, with the data it has.
    fn start_member(&mut self, i: usize) {
        self.members[i] = self.specs[i].spawn().expect("start etcd again");
    }

    /// Kills the (single) member, deletes its data and starts it again on the same
    /// addresses: an etcd that lost everything.
    fn restart_without_data(&mut self) {
        self.kill_member(0);
        std::fs::remove_dir_all(&self.specs[0].data_dir).unwrap();
        self.start_member(0);
    }

    fn signal(&self, sig: i32) {
        self.signal_member(0, sig);
    }

    fn signal_member(&self, i: usize, sig: i32) {
        // SAFETY: kill(2) on our own child (ip netns exec execs etcd in place).
        unsafe { libc::kill(self.members[i].id() as i32, sig) };
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for m in &mut self.members {
            let _ = m.kill();
            let _ = m.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A node namespace with an uplink, brindle-node in agent mode, and containers plugged in by CNI.
struct Cluster {
    lab: Lab,
    dir: PathBuf,
    env: Vec<(String, String)>,
    node: Option<NodeProcess>,
    containers: Vec<String>,
    etcd: Option<Etcd>,
}

impl Cluster {
    fn new(tag: &str, etcd: bool, extra_env: &[(&str, &str)]) -> Cluster {
        Cluster::with_etcd_members(tag, usize::from(etcd), extra_env)
    }

    /// `etcd_members` 0: the embedded store.
    fn with_etcd_members(tag: &str, etcd_members: usize, extra_env: &[(&str, &str)]) -> Cluster {
        let name = format!("{tag}{}", std::process::id() % 100_000);
        let lab = Lab::up(&LabSpec::new(name.clone(), 0)).expect("lab up");
        let dir = std::env::temp_dir().join(format!("brindle-agent-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let etcd =
            (etcd_members > 0).then(|| Etcd::start_cluster(&lab.node_netns(), &dir, etcd_members));
        let mut env: Vec<(String, String)> = vec![
            ("NODENAME".into(), name.clone()),
            ("IP_AUTODETECTION_METHOD".into(), "interface=eth0".into()),
            ("CALICO_IPV4POOL_IPIP".into(), "Never".into()),
            (
                "BRINDLE_CONTROL_SOCKET".into(),
                dir.join("node.sock").display().to_string(),
            ),
            // Where the node reads, and `tap_netconf` has brindle-cni write, TAP registrations.
            (
                "BRINDLE_TAP_DIR".into(),
                dir.join("taps").display().to_string(),
            ),
        ];
        match &etcd {
            Some(e) => {
                env.push(("DATASTORE_TYPE".into(), "etcdv3".into()));
                env.push(("ETCD_ENDPOINTS".into(), e.client_url.clone()));
            }
            None => {
                env.push(("DATASTORE_TYPE".into(), "embedded".into()));
                env.push((
                    "BRINDLE_EMBEDDED_PATH".into(),
                    dir.join("store.redb").display().to_string(),
                ));
            }
        }
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut cluster = Cluster {
            lab,
            dir,
            env,
            node: None,
            containers: Vec::new(),
            etcd,
        };
        cluster.start_node();
        cluster
    }

    fn name(&self) -> String {
        self.lab.spec().name.clone()
    }

    fn start_node(&mut self) {
        let launch = NodeLaunch::new(self.lab.node_netns(), NODE_BIN, self.dir.join("node.log"))
            .envs(self.env.iter().cloned())
            .control_socket(self.dir.join("node.sock"));
        let node = launch
            .start(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("brindle-node (agent mode) did not become ready: {e}"));
        self.node = Some(node);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// The node's `/metrics` (Felix's default port, inside the node namespace).
    fn metrics(&self) -> String {
        let ns = self.lab.node_netns();
        std::thread::spawn(move || {
            let f = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
            // SAFETY: setns on this new thread only.
            assert_eq!(
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) },
                0
            );
            let (status, body) =
                control::health::get("127.0.0.1:9091".parse().unwrap(), "/metrics").unwrap();
            assert_eq!(status, 200, "{body}");
            body
        })
        .join()
        .unwrap()
    }

    /// Waits (at most 10 s: the counts are taken again every second) until the metric
    /// `name` (no labels) reads `want`; returns the last scrape.
    fn metric_reaches(&self, name: &str, want: u64) -> String {
        self.metric_until(name, &format!("== {want}"), |v| v == want)
    }

    /// Waits (at most 10 s) until `ok` holds for the metric `name` (no labels), which
    /// `what` describes; returns the last scrape.
    fn metric_until(&self, name: &str, what: &str, ok: impl Fn(u64) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.metrics();
            let value = text
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<u64>().ok());
            if value.is_some_and(&ok) || Instant::now() >= deadline {
                assert!(value.is_some_and(&ok), "{name} {what}: {value:?}\n{text}");
                return text;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The datastore as a client on this host sees it.
    fn store(&self) -> Arc<dyn Datastore> {
        match &self.etcd {
            Some(_) => {
                // etcd listens inside the node namespace: reach it from a thread that entered it.
                let ns = self.lab.node_netns();
                let url = self.etcd.as_ref().unwrap().client_url.clone();
                std::thread::spawn(move || {
                    let f = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
                    // SAFETY: setns on this new thread only.
                    assert_eq!(
                        unsafe {
                            libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET)
                        },
                        0
                    );
                    let config = datastore::DatastoreConfig::from_lookup(|k| match k {
                        "DATASTORE_TYPE" => Some("etcdv3".into()),
                        "ETCD_ENDPOINTS" => Some(url.clone()),
                        _ => None,
                    })
                    .unwrap();
                    datastore::open(&config).unwrap()
                })
                .join()
                .unwrap()
            }
            None => {
                let path = self.dir.join("store.redb");
                let config = datastore::DatastoreConfig::from_lookup(|k| match k {
                    "DATASTORE_TYPE" => Some("embedded".into()),
                    "BRINDLE_EMBEDDED_PATH" => Some(path.display().to_string()),
                    _ => None,
                })
                .unwrap();
                datastore::open(&config).unwrap()
            }
        }
    }

    fn cni(&self) -> CniPlugin {
        let bin_dir = testkit::workspace_bin_dir(&["brindle-cni", "brindle-ipam"]);
        let env = self
            .env
            .iter()
            .filter(|(k, _)| {
                k.starts_with("DATASTORE")
                    || k.starts_with("ETCD")
                    || k.starts_with("BRINDLE_EMBEDDED")
            })
            .cloned()
            .collect();
        CniPlugin {
            bin_dir,
            plugin: "brindle-cni".into(),
            env,
        }
    }

    /// Where this cluster's TAP workloads are registered.
    fn tap_dir(&self) -> PathBuf {
        self.dir.join("taps")
    }

    /// A network configuration for `network` whose workloads are TAPs, registered where the
    /// node reads.
    fn tap_netconf(&self, network: &str) -> String {
        let mut conf: Value = serde_json::from_str(&netconf(network, &[], 1500, &self.name()))
            .expect("lab netconf is JSON");
        conf["workload_interface"] = "tap".into();
        conf["tap_dir"] = self.tap_dir().display().to_string().into();
        conf.to_string()
    }

    /// Creates a container namespace and plugs it into `network` with brindle-cni ADD.
    fn add_container(&mut self, network: &str, pools: &[&str]) -> (String, Ipv4Addr) {
        self.add_container_with(&netconf(network, pools, 1500, &self.name()))
    }

    /// [`Cluster::add_container`] with the network configuration `conf`.
    fn add_container_with(&mut self, conf: &str) -> (String, Ipv4Addr) {
        let ns = format!("{}-c{}", self.name(), self.containers.len() + 1);
        assert!(Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .unwrap()
            .success());
        self.containers.push(ns.clone());
        let out = self
            .cni()
            .invoke(
                &self.lab.node_netns(),
                "ADD",
                &format!("{ns}abcdef0123"),
                &PathBuf::from(format!("/var/run/netns/{ns}")),
                "eth0",
                conf,
            )
            .unwrap();
        assert!(
            out.success,
            "CNI ADD failed: {}\n{}",
            out.stdout, out.stderr
        );
        let result = out.json();
        let address = result["ips"][0]["address"]
            .as_str()
            .expect("an address in the CNI result")
            .to_owned();
        let ip: Ipv4Addr = address.split('/').next().unwrap().parse().unwrap();
        (ns, ip)
    }

    fn del_container(&self, ns: &str, network: &str) {
        self.del_container_with(ns, &netconf(network, &[], 1500, &self.name()));
    }

    /// [`Cluster::del_container`] with the network configuration `conf`.
    fn del_container_with(&self, ns: &str, conf: &str) {
        let out = self
            .cni()
            .invoke(
                &self.lab.node_netns(),
                "DEL",
                &format!("{ns}abcdef0123"),
                &PathBuf::from(format!("/var/run/netns/{ns}")),
                "eth0",
                conf,
            )
            .unwrap();
        assert!(
            out.success,
            "CNI DEL failed: {}\n{}",
            out.stdout, out.stderr
        );
    }

    /// Pings until one reply comes back (the agent needs a moment to attach a new workload).
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
                .status()
                .unwrap()
                .success();
            if ok {
                return true;
            }
        }
        false
    }

    fn stats(&self) -> Value {
        lab::node::read_stats(&self.dir.join("node.sock")).expect("stats")
    }

    /// The workload name (`cali...`) brindle-cni gives container namespace `ns`'s eth0.
    fn workload_name(ns: &str) -> String {
        host_interface_name(WorkloadIdentity::Container {
            id: &format!("{ns}abcdef0123"),
            ifname: "eth0",
        })
    }

    /// The node's port of that name, if it has one.
    fn port(&self, name: &str) -> Option<Value> {
        let stats = self.stats();
        let ports = stats["ports"].as_array()?;
        ports.iter().find(|p| p["name"] == name).cloned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            node.stop(Duration::from_secs(10));
        }
        for ns in &self.containers {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        self.etcd = None;
        let _ = self.lab.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn cni_plugged_workloads_are_attached_and_detached_live_with_the_embedded_store() {
    // calico-node's default pool is IPIP Always: the node gets a tunnel address from it.
    let mut c = Cluster::new("aga", false, &[("CALICO_IPV4POOL_IPIP", "Always")]);
    let (w1, ip1) = c.add_container("net1", &[]);
    let (_w2, ip2) = c.add_container("net1", &[]);
    let pool: resources_pool::Cidr = "192.168.0.0/16".parse().unwrap();
    assert!(
        pool.contains(ip1) && pool.contains(ip2),
        "addresses {ip1} {ip2} come from the default pool"
    );
    assert!(
        c.ping_until_ok(&w1, ip2, Duration::from_secs(15)),
        "w1 -> w2 through brindle\n{}",
        c.log()
    );

    // The node registered itself as calico-node does, and created the default pool and profile data.
    let store = c.store();
    let node = store
        .get(&keys::resource("nodes", None, &c.name()))
        .unwrap()
        .expect("Node resource");
    let Ok(Resource::Node(node)) = Resource::from_kv(&node) else {
        panic!("Node does not decode")
    };
    let bgp = node.spec.bgp.unwrap();
    assert_eq!(bgp.ipv4_address, "10.99.0.1/24");
    let tunnel: Ipv4Addr = bgp
        .ipv4_ipip_tunnel_addr
        .parse()
        .expect("an IPIP tunnel address");
    assert!(
        pool.contains(tunnel) && tunnel != ip1 && tunnel != ip2,
        "tunnel {tunnel}"
    );
    assert!(store
        .get(&keys::resource("ippools", None, "default-ipv4-ippool"))
        .unwrap()
        .is_some());
    assert!(
        store
            .get(&keys::resource("profiles", None, "net1"))
            .unwrap()
            .is_some(),
        "the network's profile"
    );
    let (weps, _) = store
        .list(&keys::resource_prefix("workloadendpoints", None))
        .unwrap();
    assert_eq!(weps.len(), 2);

    // Felix's metrics under Felix's names: the two plugged-in workloads are this node's
    // active endpoints, and the cluster is this one node.
    c.metric_reaches("felix_active_local_endpoints", 2);
    c.metric_reaches("felix_cluster_num_workload_endpoints", 2);
    let text = c.metric_reaches("felix_cluster_num_hosts", 1);
    for line in [
        "felix_resync_state 3",
        "felix_resyncs_started 1",
        "felix_int_dataplane_failures 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}:\n{text}");
    }
    assert!(
        text.contains(&format!("felix_host{{host=\"{}\"}} 1", c.name())),
        "{text}"
    );

    // DEL: the workload goes, its address stops answering, the other keeps working.
    let (w3, ip3) = c.add_container("net1", &[]);
    assert!(c.ping_until_ok(&w1, ip3, Duration::from_secs(15)));
    c.del_container(&w3, "net1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.ping_until_ok(&w1, ip3, Duration::from_millis(1)) && Instant::now() < deadline {}
    assert!(
        !c.ping_until_ok(&w1, ip3, Duration::from_secs(2)),
        "a deleted workload must not answer"
    );
    assert!(c.ping_until_ok(&w1, ip2, Duration::from_secs(5)));
    c.metric_reaches("felix_active_local_endpoints", 2);
    let ports = c.stats()["ports"].as_array().unwrap().len();
    assert_eq!(
        ports,
        4,
        "two workloads, the uplink and the host port: {}",
        c.stats()
    );
}

/// `"workload_interface": "tap"` end to end: brindle-cni makes each container's eth0 a TAP and
/// registers it, the agent attaches to it when the endpoint arrives, whole TCP segments cross
/// the vRouter, and DEL takes the TAP, the registration and the port away.
#[test]
fn cni_plugged_tap_workloads_carry_whole_tcp_segments_and_go_with_del() {
    let mut c = Cluster::new("agt", false, &[]);
    let conf = c.tap_netconf("net1");
    let (w1, ip1) = c.add_container_with(&conf);
    let (w2, ip2) = c.add_container_with(&conf);
    assert!(
        c.ping_until_ok(&w1, ip2, Duration::from_secs(15)),
        "w1 -> w2 over TAPs\n{}",
        c.log()
    );
    assert!(
        c.ping_until_ok(&w2, ip1, Duration::from_secs(5)),
        "w2 -> w1\n{}",
        c.log()
    );
    for ns in [&w1, &w2] {
        let name = Cluster::workload_name(ns);
        let port = c
            .port(&name)
            .unwrap_or_else(|| panic!("no port {name}: {}", c.stats()));
        assert_eq!(port["xdp_mode"], "none", "served as a TAP: {port}");
    }

    let out = lab::iperf::tcp(&w1, &w2, ip2, 5201, 1).expect("iperf3");
    let bytes = lab::iperf::received_bytes(&out);
    assert!(
        bytes > 1_000_000,
        "TCP between TAP workloads moved {bytes} bytes: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        c.log()
    );
    let fp = c.stats()["fastpath"].clone();
    assert!(
        fp["gso_received"].as_u64().unwrap_or(0) > 0,
        "no whole segment crossed: {fp}"
    );

    let name = Cluster::workload_name(&w2);
    let registration = c.tap_dir().join(format!("{name}.json"));
    assert!(registration.exists(), "{}", registration.display());
    c.del_container_with(&w2, &conf);
    assert!(!registration.exists(), "DEL left the registration");
    let link = Command::new("ip")
        .args(["netns", "exec", &w2, "ip", "-o", "link", "show", "eth0"])
        .output()
        .unwrap();
    assert!(link.stdout.is_empty(), "DEL left the TAP in the container");
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.port(&name).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(c.port(&name), None, "the port stayed: {}", c.stats());
    assert!(
        c.port(&Cluster::workload_name(&w1)).is_some(),
        "w1's port went with w2's"
    );
}

#[test]
fn custom_pool_network_on_etcd_and_forwarding_survives_a_datastore_outage() {
    // ARCHITECTURE.md scenario 4: a custom pool 10.20.0.0/24 and a network bound to it.
    let mut c = Cluster::new("agb", true, &[("NO_DEFAULT_POOLS", "true")]);
    let store = c.store();
    let pool = resources::parse_documents(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool-10-20\nspec:\n  cidr: 10.20.0.0/24\n  ipipMode: Never\n",
    )
    .unwrap()
    .remove(0);
    let mut pool = pool;
    pool.apply_defaults();
    store.create(&pool.key(), &pool.to_stored_json()).unwrap();
    assert!(
        store
            .get(&keys::resource("ippools", None, "default-ipv4-ippool"))
            .unwrap()
            .is_none(),
        "NO_DEFAULT_POOLS"
    );

    let (w1, ip1) = c.add_container("net4", &["10.20.0.0/24"]);
    let (w2, ip2) = c.add_container("net4", &["10.20.0.0/24"]);
    let custom: resources_pool::Cidr = "10.20.0.0/24".parse().unwrap();
    assert!(
        custom.contains(ip1) && custom.contains(ip2),
        "{ip1} {ip2} from 10.20.0.0/24"
    );
    assert!(
        c.ping_until_ok(&w1, ip2, Duration::from_secs(15)),
        "w1 -> w2\n{}",
        c.log()
    );

    // The datastore goes away: forwarding goes on with the state the node has.
    c.etcd.as_ref().unwrap().signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        c.ping_until_ok(&w2, ip1, Duration::from_secs(5)),
        "forwarding while etcd is frozen"
    );
    c.etcd.as_ref().unwrap().signal(libc::SIGCONT);
    // And when it is back, new workloads are picked up again.
    let (w3, _) = c.add_container("net4", &["10.20.0.0/24"]);
    assert!(
        c.ping_until_ok(&w3, ip1, Duration::from_secs(20)),
        "w3 -> w1 after etcd came back\n{}",
        c.log()
    );
}

#[test]
fn with_one_member_of_three_etcd_down_brindlectl_and_the_agent_keep_working() {
    let mut c = Cluster::with_etcd_members("agc", 3, &[]);
    let (w1, _) = c.add_container("net1", &[]);
    let (_w2, ip2) = c.add_container("net1", &[]);
    assert!(
        c.ping_until_ok(&w1, ip2, Duration::from_secs(15)),
        "before the failure\n{}",
        c.log()
    );

    // Kill the first member (the one every client tries first).
    c.etcd.as_ref().unwrap().signal_member(0, libc::SIGKILL);

    // brindlectl, given all three endpoints, still reads and writes.
    let brindlectl = testkit::workspace_bin("brindlectl");
    let ctl = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &c.lab.node_netns()])
            .arg(&brindlectl)
            .args(args);
        cmd.env("DATASTORE_TYPE", "etcdv3")
            .env("ETCD_ENDPOINTS", &c.etcd.as_ref().unwrap().client_url);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes());
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let pool = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: extra\nspec:\n  cidr: 10.30.0.0/24\n";
    let (ok, out) = ctl(&["apply", "-f", "-"], Some(pool));
    assert!(
        ok && out.contains("Successfully applied 1 'IPPool' resource(s)"),
        "{out}"
    );
    let (ok, out) = ctl(&["get", "ippools"], None);
    assert!(
        ok && out.contains("10.30.0.0/24") && out.contains("192.168.0.0/16"),
        "{out}"
    );

    // The agent follows: a workload plugged in now is attached and forwarded to.
    let (w3, _) = c.add_container("net1", &[]);
    assert!(
        c.ping_until_ok(&w3, ip2, Duration::from_secs(30)),
        "new workload after the member died\n{}",
        c.log()
    );
    assert!(
        c.ping_until_ok(&w1, ip2, Duration::from_secs(5)),
        "old workloads keep working"
    );
}

#[test]
fn etcd_back_without_its_data_gets_the_nodes_own_records_back_and_forwarding_goes_on() {
    let mut c = Cluster::new("agw", true, &[]);
    let (w1, ip1) = c.add_container("net5", &[]);
    let (w2, ip2) = c.add_container("net5", &[]);
    assert!(
        c.ping_until_ok(&w1, ip2, Duration::from_secs(15)),
        "before the loss\n{}",
        c.log()
    );
    let node = c.name();
    let own = |store: &dyn Datastore| -> std::collections::BTreeSet<String> {
        let mut keys = std::collections::BTreeSet::new();
        for prefix in [
            keys::resource("nodes", None, &node),
            keys::resource_prefix("workloadendpoints", None),
            keys::resource("profiles", None, "net5"),
            keys::resource_prefix("ippools", None),
            keys::ipam_affinity_prefix(&node),
            "/calico/ipam/v2/assignment/".to_string(),
            keys::IPAM_HANDLES.to_string(),
        ] {
            if let Ok((kvs, _)) = store.list(&prefix) {
                keys.extend(kvs.into_iter().map(|kv| kv.key));
            }
        }
        keys
    };
    let before = own(c.store().as_ref());
    assert!(
        before.len() >= 8,
        "node, 2 endpoints, profile, pool, affinity, block, 2 handles: {before:?}"
    );

    let text = c.metric_reaches("felix_resync_state", 3);
    let resyncs: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("felix_resyncs_started ")?.parse().ok())
        .expect("felix_resyncs_started");
    c.etcd.as_mut().unwrap().restart_without_data();
    assert!(
        c.ping_until_ok(&w2, ip1, Duration::from_secs(5)),
        "forwarding right after etcd lost its data\n{}",
        c.log()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut now = std::collections::BTreeSet::new();
    while Instant::now() < deadline {
        now = own(c.store().as_ref());
        if now.is_superset(&before) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        now.is_superset(&before),
        "missing after the loss: {:?}\n{}",
        before.difference(&now).collect::<Vec<_>>(),
        c.log()
    );
    assert!(
        c.ping_until_ok(&w1, ip2, Duration::from_secs(5)),
        "forwarding after the records came back\n{}",
        c.log()
    );
    // Felix's resync metrics saw it: another resync, and in sync again.
    c.metric_until("felix_resyncs_started", &format!("> {resyncs}"), |n| {
        n > resyncs
    });
    c.metric_reaches("felix_resync_state", 3);

    // The addresses are still held: a new workload gets another one, reaches the others, and
    // the old ones are released by their own DEL.
    let (w3, ip3) = c.add_container("net5", &[]);
    assert!(ip3 != ip1 && ip3 != ip2, "{ip3} handed out again");
    assert!(
        c.ping_until_ok(&w3, ip1, Duration::from_secs(20)),
        "new workload after the loss\n{}",
        c.log()
    );
    c.del_container(&w1, "net5");
    let ipam = ipam::Ipam::new(c.store());
    assert_eq!(
        ipam.get_assignment_attrs(ip1).unwrap(),
        None,
        "{ip1} kept after DEL"
    );
    assert!(ipam.get_assignment_attrs(ip2).unwrap().is_some());
}

#[test]
fn a_workload_veth_deleted_behind_the_nodes_back_harms_no_other_and_del_then_add_restores_it() {
    let mut c = Cluster::new("agv", false, &[]);
    let (w1, ip1) = c.add_container("net6", &[]);
    let (w2, ip2) = c.add_container("net6", &[]);
    assert!(
        c.ping_until_ok(&w1, ip2, Duration::from_secs(15)),
        "before\n{}",
        c.log()
    );
    let name = Cluster::workload_name(&w1);
    let deleted = Command::new("ip")
        .args(["-n", &c.lab.node_netns(), "link", "del", &name])
        .status()
        .unwrap();
    assert!(deleted.success());

    // The node goes on: the other workloads, and one plugged in now, reach each other.
    let (w3, ip3) = c.add_container("net6", &[]);
    assert!(
        c.ping_until_ok(&w3, ip2, Duration::from_secs(20))
            && c.ping_until_ok(&w2, ip3, Duration::from_secs(5)),
        "the others after {name} went\n{}",
        c.log()
    );
    // Its port is gone and the node says why.
    let stats = c.stats();
    let reported = stats["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["item"] == name.as_str() && f["kind"] == "missing");
    assert!(
        c.port(&name).is_none() && reported,
        "{name} deleted: {stats}"
    );

    // The runtime's repair, DEL then ADD, gives it back its network.
    c.del_container(&w1, "net6");
    let out = c
        .cni()
        .invoke(
            &c.lab.node_netns(),
            "ADD",
            &format!("{w1}abcdef0123"),
            &PathBuf::from(format!("/var/run/netns/{w1}")),
            "eth0",
            &netconf("net6", &[], 1500, &c.name()),
        )
        .unwrap();
    assert!(out.success, "ADD again: {}\n{}", out.stdout, out.stderr);
    assert!(
        c.ping_until_ok(&w1, ip2, Duration::from_secs(20)),
        "{w1} ({ip1} before) after DEL and ADD\n{}\n{}",
        c.stats(),
        c.log()
    );
}

#[test]
fn the_uplink_down_then_up_again_and_workloads_reach_outside_again() {
    let mut c = Cluster::new("agu", false, &[]);
    let (w1, _) = c.add_container("net7", &[]);
    let ext = c.lab.uplink().expect("the lab has an uplink").ext_ip;
    assert!(
        c.ping_until_ok(&w1, ext, Duration::from_secs(15)),
        "before\n{}",
        c.log()
    );
    let set = |state: &str| {
        let ok = Command::new("ip")
            .args(["-n", &c.lab.node_netns(), "link", "set", "eth0", state])
            .status()
            .unwrap()
            .success();
        assert!(ok, "eth0 {state}");
    };
    set("down");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !c.ping_until_ok(&w1, ext, Duration::from_secs(2)),
        "a reply through a downed uplink"
    );
    std::thread::sleep(Duration::from_secs(2));
    set("up");
    assert!(
        c.ping_until_ok(&w1, ext, Duration::from_secs(15)),
        "after the uplink came back\n{}\n{}",
        c.stats(),
        c.log()
    );
}

#[test]
fn etcd_losing_quorum_keeps_forwarding_fails_clients_in_bounded_time_and_recovers() {
    let mut c = Cluster::with_etcd_members("agq", 3, &[]);
    let (w1, ip1) = c.add_container("net8", &[]);
    let (w2, ip2) = c.add_container("net8", &[]);
    assert!(
        c.ping_until_ok(&w1, ip2, Duration::from_secs(15)),
        "before\n{}",
        c.log()
    );
    let etcd = c.etcd.as_mut().unwrap();
    etcd.kill_member(0);
    etcd.kill_member(1);

    // No quorum: forwarding goes on, and a client gets an error, not a hang.
    assert!(
        c.ping_until_ok(&w2, ip1, Duration::from_secs(5))
            && c.ping_until_ok(&w1, ip2, Duration::from_secs(5)),
        "forwarding without quorum\n{}",
        c.log()
    );
    let brindlectl = testkit::workspace_bin("brindlectl");
    let started = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &c.lab.node_netns()])
        .arg(&brindlectl)
        .args(["get", "ippools"])
        .env("DATASTORE_TYPE", "etcdv3")
        .env("ETCD_ENDPOINTS", &c.etcd.as_ref().unwrap().client_url)
        .output()
        .unwrap();
    assert!(
        !out.status.success() && started.elapsed() < Duration::from_secs(30),
        "brindlectl without quorum: {:?} after {:?}",
        out,
        started.elapsed()
    );

    // Quorum back: the node follows the datastore again.
    let etcd = c.etcd.as_mut().unwrap();
    etcd.start_member(0);
    etcd.start_member(1);
    // A client answered again: the members have elected a leader (under load this takes a
    // few seconds, longer than the plugin waits).
    let deadline = Instant::now() + Duration::from_secs(30);
    let answered = || {
        Command::new("ip")
            .args(["netns", "exec", &c.lab.node_netns()])
            .arg(&brindlectl)
            .args(["get", "ippools"])
            .env("DATASTORE_TYPE", "etcdv3")
            .env("ETCD_ENDPOINTS", &c.etcd.as_ref().unwrap().client_url)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    while !answered() {
        assert!(
            Instant::now() < deadline,
            "etcd without quorum for 30 s after its members came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (w3, _) = c.add_container("net8", &[]);
    assert!(
        c.ping_until_ok(&w3, ip2, Duration::from_secs(30)),
        "a workload plugged in once quorum is back\n{}",
        c.log()
    );
}

#[test]
fn a_node_partitioned_from_etcd_keeps_forwarding_and_answering_and_catches_up_after() {
    let mut c = Cluster::new("agp", true, &[]);
    let (w1, ip1) = c.add_container("net9", &[]);
    let (w2, ip2) = c.add_container("net9", &[]);
    assert!(
        c.ping_until_ok(&w1, ip2, Duration::from_secs(15)),
        "before\n{}",
        c.log()
    );
    // Every packet to etcd's client port dropped (no reset: the node's connections and new
    // ones time out), in the node's namespace the test made.
    let port = c
        .etcd
        .as_ref()
        .unwrap()
        .client_url
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let rule = ["INPUT", "-p", "tcp", "--dport", &port, "-j", "DROP"];
    let iptables = |op: &str| {
        let ok = Command::new("ip")
            .args(["netns", "exec", &c.lab.node_netns(), "iptables", op])
            .args(rule)
            .status()
            .unwrap()
            .success();
        assert!(ok, "iptables {op}");
    };
    iptables("-I");
    let partitioned = Instant::now();
    while partitioned.elapsed() < Duration::from_secs(8) {
        assert!(
            c.ping_until_ok(&w1, ip2, Duration::from_secs(2))
                && c.ping_until_ok(&w2, ip1, Duration::from_secs(2)),
            "forwarding while partitioned\n{}",
            c.log()
        );
        let asked = Instant::now();
        let stats = c.stats();
        assert!(
            asked.elapsed() < Duration::from_secs(2) && stats["node"].is_string(),
            "stats while partitioned took {:?}: {stats}",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    iptables("-D");
    let (w3, _) = c.add_container("net9", &[]);
    assert!(
        c.ping_until_ok(&w3, ip1, Duration::from_secs(30)),
        "a workload plugged in after the partition\n{}",
        c.log()
    );
}

#[test]
fn a_new_address_on_the_uplink_is_taken_up_by_a_restart_in_place() {
    let mut c = Cluster::new("agr", false, &[("AUTODETECT_POLL_INTERVAL", "1s")]);
    let (w1, _) = c.add_container("net10", &[]);
    let uplink = c.lab.uplink().expect("the lab has an uplink").clone();
    assert!(
        c.ping_until_ok(&w1, uplink.ext_ip, Duration::from_secs(15)),
        "before\n{}",
        c.log()
    );
    let pid = c.node.as_ref().unwrap().pid();
    let new_ip = Ipv4Addr::new(10, 99, 0, 77);
    let node_ns = c.lab.node_netns();
    for (op, ip) in [("del", uplink.node_ip), ("add", new_ip)] {
        let ok = Command::new("ip")
            .args([
                "-n",
                &node_ns,
                "addr",
                op,
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "addr {op} {ip}");
    }

    // The Node record says the new address once the node has restarted and registered.
    let store = c.store();
    let key = keys::resource("nodes", None, &c.name());
    let address = || -> Option<String> {
        let kv = store.get(&key).ok()??;
        let Ok(Resource::Node(node)) = Resource::from_kv(&kv) else {
            return None;
        };
        Some(node.spec.bgp?.ipv4_address)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && address().as_deref() != Some("10.99.0.77/24") {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(address().as_deref(), Some("10.99.0.77/24"), "{}", c.log());
    // In place: the same process, serving again, and its workloads reach outside from the
    // new address (their source NAT).
    let node = c.node.as_mut().unwrap();
    assert_eq!(node.pid(), pid);
    assert!(node.try_wait().is_none(), "the node exited\n{}", c.log());
    assert!(
        c.ping_until_ok(&w1, uplink.ext_ip, Duration::from_secs(20)),
        "after the new address\n{}",
        c.log()
    );
    assert!(c.log().contains("restarting in place"), "{}", c.log());
}

/// A tiny CIDR helper so the assertions read naturally.
mod resources_pool {
    use std::net::Ipv4Addr;

    pub struct Cidr(u32, u32);

    impl std::str::FromStr for Cidr {
        type Err = String;
        fn from_str(s: &str) -> Result<Cidr, String> {
            let (a, l) = s.split_once('/').ok_or("no /")?;
            let a: Ipv4Addr = a.parse().map_err(|_| "bad address")?;
            let l: u32 = l.parse().map_err(|_| "bad length")?;
            Ok(Cidr(
                u32::from(a),
                if l == 0 { 0 } else { u32::MAX << (32 - l) },
            ))
        }
    }

    impl Cidr {
        pub fn contains(&self, ip: Ipv4Addr) -> bool {
            u32::from(ip) & self.1 == self.0
        }
    }
}
