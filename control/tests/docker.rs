//! ARCHITECTURE.md scenario 9, as the source documents type it: Docker's libnetwork workflow
//! with Debian's real dockerd (docker.io 20.10) on two nodes (root: network namespaces, XDP,
//! mount namespaces, a real etcd, a real dockerd per node).
//!
//! etcd runs in node 1's namespace on node 1's address: brindle's datastore (v3) and dockerd's
//! cluster store (v2), which is what makes a `global` network created on node 1 known to node
//! 2's dockerd. Each node runs brindle-node in agent mode serving the libnetwork drivers
//! (`BRINDLE_LIBNETWORK=1`) into a private plugin directory; each dockerd runs in the node's
//! namespace, in a mount namespace of its own where that directory is /run/docker/plugins and
//! a private directory is /etc/docker, with its own data root, exec root and socket, and with
//! its hands off the host's networking (`--iptables=false --ip-masq=false
//! --ip-forward=false --bridge=none`). Containers come from a busybox rootfs imported with
//! `docker import` (no registry here).

mod cluster;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cluster::eventually;
use lab::etcd::EtcdMemberSpec;
use lab::node::{NodeLaunch, NodeProcess};
use lab::{MultiLab, MultiLabSpec};
use serde_json::Value;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");
/// Debian's docker.io client (another `docker` may be earlier on PATH).
const DOCKER: &str = "/usr/bin/docker";
const DOCKERD: &str = "/usr/sbin/dockerd";
const BUSYBOX: &str = "/bin/busybox";
const IMAGE: &str = "brindle-busybox";
const ETCD_CLIENT_PORT: u16 = 2379;
const ETCD_PEER_PORT: u16 = 2380;

/// Two nodes, etcd, brindle-node and dockerd on each; all torn down on drop.
struct DockerCluster {
    /// Directories dockerd needs at fixed places (/run/docker/plugins as a mount point,
    /// /run/containerd for containerd's shim sockets) that this test made, removed if empty.
    made_dirs: Vec<PathBuf>,
    lab: MultiLab,
    dir: PathBuf,
    etcd: Option<Child>,
    nodes: Vec<Option<NodeProcess>>,
    dockerds: Vec<Option<Child>>,
}

impl DockerCluster {
    fn up(tag: &str) -> DockerCluster {
        let name = format!("{tag}{}", std::process::id() % 100_000);
        let lab = MultiLab::up(&MultiLabSpec::new(name.clone(), 2, 0)).expect("multi-node lab up");
        let dir = std::env::temp_dir().join(format!("brindle-docker-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let made_dirs = ["/run/docker", "/run/containerd"]
            .into_iter()
            .map(PathBuf::from)
            .filter(|d| !d.exists())
            .collect();
        let mut c = DockerCluster {
            made_dirs,
            lab,
            dir,
            etcd: None,
            nodes: vec![None, None],
            dockerds: vec![None, None],
        };
        c.start_etcd();
        for k in 1..=2 {
            c.start_node(k);
        }
        for k in 1..=2 {
            c.start_dockerd(k);
        }
        c
    }

    fn node_netns(&self, k: usize) -> String {
        self.lab.node(k).expect("node").node_netns()
    }

    fn node_ip(&self, k: usize) -> Ipv4Addr {
        self.lab.spec().node_ip(k)
    }

    fn etcd_url(&self) -> String {
        format!("http://{}:{ETCD_CLIENT_PORT}", self.node_ip(1))
    }

    fn start_etcd(&mut self) {
        let peer = format!("http://{}:{ETCD_PEER_PORT}", self.node_ip(1));
        let mut spec = EtcdMemberSpec::single(
            self.node_netns(1),
            "m0",
            self.dir.join("etcd"),
            self.etcd_url(),
            peer,
            self.dir.join("etcd.log"),
        );
        spec.enable_v2 = true;
        self.etcd = Some(spec.spawn().expect("start etcd"));
        let (ns, url) = (self.node_netns(1), self.etcd_url());
        let healthy = eventually(Duration::from_secs(20), || {
            Command::new("ip")
                .args(["netns", "exec", &ns, "etcdctl", "--endpoints", &url])
                .args(["endpoint", "health"])
                .env("ETCDCTL_API", "3")
                .output()
                .is_ok_and(|o| o.status.success())
        });
        assert!(healthy, "etcd not healthy:\n{}", self.read("etcd.log"));
    }

    fn node_name(&self, k: usize) -> String {
        format!("{}n{k}", self.lab.spec().name)
    }

    fn plugin_dir(&self, k: usize) -> PathBuf {
        self.dir.join(format!("plugins{k}"))
    }

    fn docker_socket(&self, k: usize) -> PathBuf {
        self.dir.join(format!("docker{k}.sock"))
    }

    fn control_socket(&self, k: usize) -> PathBuf {
        self.dir.join(format!("node{k}.sock"))
    }

    fn datastore_env(&self) -> Vec<(String, String)> {
        vec![
            ("DATASTORE_TYPE".into(), "etcdv3".into()),
            ("ETCD_ENDPOINTS".into(), self.etcd_url()),
        ]
    }

    fn start_node(&mut self, k: usize) {
        let launch = NodeLaunch::new(
            self.node_netns(k),
            NODE_BIN,
            self.dir.join(format!("node{k}.log")),
        )
        .label(format!("brindle-node {k}"))
        .env("NODENAME", self.node_name(k))
        .env("IP_AUTODETECTION_METHOD", "interface=eth0")
        .env("CALICO_IPV4POOL_IPIP", "Never")
        .env(
            "BRINDLE_CONTROL_SOCKET",
            self.control_socket(k).display().to_string(),
        )
        .env("BRINDLE_LIBNETWORK", "1")
        .env(
            "BRINDLE_LIBNETWORK_PLUGIN_DIR",
            self.plugin_dir(k).display().to_string(),
        )
        .env(
            "DOCKER_HOST",
            format!("unix://{}", self.docker_socket(k).display()),
        )
        .envs(self.datastore_env())
        .control_socket(self.control_socket(k));
        let node = launch
            .start(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("brindle-node {k} did not become ready: {e}"));
        self.nodes[k - 1] = Some(node);
        for name in ["calico", "calico-ipam", "brindle", "brindle-ipam"] {
            let socket = self.plugin_dir(k).join(format!("{name}.sock"));
            assert!(socket.exists(), "node {k} serves no {}", socket.display());
        }
    }

    /// dockerd in node `k`'s namespace and a mount namespace of its own (RUNTIMES.md).
    fn start_dockerd(&mut self, k: usize) {
        let root = self.dir.join(format!("docker{k}"));
        let etc = root.join("etc");
        let cgroups = root.join("cgroup-aside");
        for d in [&etc, &cgroups] {
            std::fs::create_dir_all(d).unwrap();
        }
        // `ip netns exec` would remount /sys and hide the cgroups runc needs; `nsenter --net`
        // keeps the host's sysfs, which shows the host's interfaces. So: a fresh sysfs of the
        // node's namespace, with the cgroup hierarchy bound back under it.
        let script = format!(
            "set -e
hostname {hostname}
mkdir -p /run/docker/plugins
mount --bind {plugins} /run/docker/plugins
mount --bind {etc} /etc/docker
mount --rbind /sys/fs/cgroup {cgroups}
mount -t sysfs sysfs /sys
mount --rbind {cgroups} /sys/fs/cgroup
exec {DOCKERD} --data-root {root}/data --exec-root {root}/exec -H unix://{socket} \
  --pidfile {root}/dockerd.pid --storage-driver overlay2 \
  --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false --bridge=none \
  --cluster-store etcd://{etcd}:{ETCD_CLIENT_PORT} --cluster-advertise eth0:2376",
            hostname = self.node_name(k),
            plugins = self.plugin_dir(k).display(),
            etc = etc.display(),
            cgroups = cgroups.display(),
            root = root.display(),
            socket = self.docker_socket(k).display(),
            etcd = self.node_ip(1),
        );
        let log = std::fs::File::create(root.join("dockerd.log")).unwrap();
        // nsenter and unshare exec in place and sh execs dockerd: the child's pid is dockerd's.
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.node_netns(k)))
            .args([
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "slave",
                "sh",
                "-c",
                &script,
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        self.dockerds[k - 1] = Some(child);
        let up = eventually(Duration::from_secs(60), || {
            self.docker_output(k, &["version", "--format", "{{.Server.Version}}"])
                .status
                .success()
        });
        assert!(up, "dockerd {k} did not answer:\n{}", self.dockerd_log(k));
    }

    fn dockerd_log(&self, k: usize) -> String {
        self.read(&format!("docker{k}/dockerd.log"))
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap_or_default()
    }

    fn logs(&self) -> String {
        let tail = |text: String| {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        };
        (1..=2)
            .map(|k| {
                format!(
                    "--- node {k} log:\n{}\n--- dockerd {k} log:\n{}\n",
                    tail(self.read(&format!("node{k}.log"))),
                    tail(self.dockerd_log(k))
                )
            })
            .collect()
    }

    fn docker_output(&self, k: usize, args: &[&str]) -> Output {
        let host = format!("unix://{}", self.docker_socket(k).display());
        Command::new("timeout")
            .args(["60", DOCKER, "-H", &host])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }

    /// `docker` on node `k`; its stdout, or a panic with its stderr and the logs.
    fn docker(&self, k: usize, args: &[&str]) -> String {
        let out = self.docker_output(k, args);
        assert!(
            out.status.success(),
            "docker {args:?} on node {k}: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The busybox image, imported on node `k` from a rootfs of busybox's applets.
    fn import_busybox(&self, k: usize) {
        let rootfs = self.dir.join("rootfs");
        let tar = self.dir.join("rootfs.tar");
        if !tar.exists() {
            std::fs::create_dir_all(rootfs.join("bin")).unwrap();
            std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
            run(&[
                "chroot",
                &rootfs.display().to_string(),
                "/bin/busybox",
                "--install",
                "-s",
                "/bin",
            ]);
            run(&[
                "tar",
                "-C",
                &rootfs.display().to_string(),
                "-cf",
                &tar.display().to_string(),
                ".",
            ]);
        }
        self.docker(k, &["import", &tar.display().to_string(), IMAGE]);
    }

    /// A container on `network` of node `k`, sleeping; its address.
    fn run_container(&self, k: usize, name: &str, network: &str) -> Ipv4Addr {
        self.docker(
            k,
            &[
                "run",
                "-d",
                "--name",
                name,
                "--net",
                network,
                IMAGE,
                "/bin/sleep",
                "3600",
            ],
        );
        let ip = self.docker(
            k,
            &[
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                name,
            ],
        );
        ip.parse()
            .unwrap_or_else(|_| panic!("container {name}: address {ip:?}\n{}", self.logs()))
    }

    /// One ping from container `from` on node `k` to `to`, answered within a second.
    fn pings(&self, k: usize, from: &str, to: Ipv4Addr) -> bool {
        self.docker_output(
            k,
            &[
                "exec",
                from,
                "/bin/ping",
                "-c",
                "1",
                "-W",
                "1",
                &to.to_string(),
            ],
        )
        .status
        .success()
    }

    /// brindlectl on node 1 (the datastore is reached from inside the lab).
    fn brindlectl(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.node_netns(1)])
            .arg(testkit::workspace_bin("brindlectl"))
            .args(args)
            .envs(self.datastore_env())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "brindlectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn resources(&self, kind: &str) -> Vec<Value> {
        // Only namespaced kinds take --all-namespaces (calicoctl refuses it for the others).
        let all = if kind == "workloadendpoints" {
            &["--all-namespaces"][..]
        } else {
            &[]
        };
        let mut args = vec!["get", kind, "-o", "json"];
        args.extend_from_slice(all);
        let text = self.brindlectl(&args);
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match v.get("items") {
            Some(Value::Array(items)) => items.clone(),
            _ => match v {
                Value::Array(items) => items,
                Value::Null => Vec::new(),
                one => vec![one],
            },
        }
    }

    /// The workload endpoints holding `ip`.
    fn endpoints_with(&self, ip: Ipv4Addr) -> Vec<Value> {
        let want = format!("{ip}/32");
        self.resources("workloadendpoints")
            .into_iter()
            .filter(|w| {
                w["spec"]["ipNetworks"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|a| a == &want))
            })
            .collect()
    }

    fn ip_in_use(&self, ip: Ipv4Addr) -> bool {
        let text = self.brindlectl(&["ipam", "show", &format!("--ip={ip}")]);
        text.contains("in use")
    }

    /// Node `k`'s BGP peer `address` is Established.
    fn peered(&self, k: usize, address: Ipv4Addr) -> bool {
        lab::node::read_stats(&self.control_socket(k)).is_ok_and(|s| {
            s["bgp_peers"].as_array().is_some_and(|peers| {
                peers
                    .iter()
                    .any(|p| p["address"] == address.to_string() && p["state"] == "Established")
            })
        })
    }

    fn stop_dockerd(&mut self, k: usize) {
        let Some(mut child) = self.dockerds[k - 1].take() else {
            return;
        };
        // SAFETY: kill(2) on our own child, which is dockerd itself (see start_dockerd).
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for DockerCluster {
    fn drop(&mut self) {
        for k in 1..=2 {
            if self.dockerds[k - 1].is_some() {
                let ids = self.docker_output(k, &["ps", "-aq"]);
                for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
                    let _ = self.docker_output(k, &["rm", "-f", id]);
                }
            }
        }
        for k in 1..=2 {
            self.stop_dockerd(k);
        }
        for node in self.nodes.iter().flatten() {
            node.signal(libc::SIGTERM);
        }
        for node in self.nodes.iter_mut().filter_map(Option::take) {
            node.stop(Duration::from_secs(10));
        }
        if let Some(mut etcd) = self.etcd.take() {
            let _ = etcd.kill();
            let _ = etcd.wait();
        }
        let _ = self.lab.down();
        // dockerd's overlay mounts went with its mount namespace.
        let _ = std::fs::remove_dir_all(&self.dir);
        for dir in &self.made_dirs {
            for sub in ["plugins", "s"] {
                let _ = std::fs::remove_dir(dir.join(sub));
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn run(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(status.success(), "{args:?}");
}

fn in_subnet(ip: Ipv4Addr, net: [u8; 3]) -> bool {
    ip.octets()[..3] == net
}

/// The documents' workflow end to end: networks created on node 1 exist on node 2, same
/// network pings across nodes, the other network is isolated, `docker rm` gives the address
/// and the endpoint back.
#[test]
fn docker_networks_span_nodes_isolate_and_release_on_rm() {
    let c = DockerCluster::up("dk");
    for k in 1..=2 {
        c.import_busybox(k);
    }
    c.docker(
        1,
        &[
            "network",
            "create",
            "--driver",
            "calico",
            "--ipam-driver",
            "calico-ipam",
            "--subnet",
            "10.1.1.0/24",
            "calico-net1",
        ],
    );
    c.docker(
        1,
        &[
            "network",
            "create",
            "--driver",
            "calico",
            "--ipam-driver",
            "calico-ipam",
            "--subnet",
            "10.1.2.0/24",
            "calico-net2",
        ],
    );
    // Global scope: node 2's dockerd learns the networks from the cluster store.
    let listed = eventually(Duration::from_secs(20), || {
        let out = c.docker_output(
            2,
            &[
                "network",
                "ls",
                "--format",
                "{{.Name}} {{.Driver}} {{.Scope}}",
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("calico-net1 calico global") && text.contains("calico-net2 calico global")
    });
    assert!(listed, "node 2 does not list the networks\n{}", c.logs());
    // --subnet made the pools.
    let pools = c.resources("ippools");
    for cidr in ["10.1.1.0/24", "10.1.2.0/24"] {
        assert!(
            pools.iter().any(|p| p["spec"]["cidr"] == cidr),
            "no pool {cidr}: {pools:?}"
        );
    }

    let a1 = c.run_container(1, "a1", "calico-net1");
    let b1 = c.run_container(1, "b1", "calico-net2");
    let a2 = c.run_container(2, "a2", "calico-net1");
    assert!(
        in_subnet(a1, [10, 1, 1]) && in_subnet(a2, [10, 1, 1]),
        "{a1} {a2}"
    );
    assert!(in_subnet(b1, [10, 1, 2]), "{b1}");

    // Each container has its endpoint, Calico's way, with the network's profile.
    for (ip, k, network) in [
        (a1, 1, "calico-net1"),
        (b1, 1, "calico-net2"),
        (a2, 2, "calico-net1"),
    ] {
        let weps = c.endpoints_with(ip);
        assert_eq!(weps.len(), 1, "endpoints with {ip}: {weps:?}");
        let spec = &weps[0]["spec"];
        assert_eq!(spec["orchestrator"], "libnetwork", "{spec}");
        assert_eq!(spec["node"], c.node_name(k), "{spec}");
        assert_eq!(spec["profiles"][0], network, "{spec}");
        assert!(c.ip_in_use(ip), "{ip} not assigned in IPAM");
    }
    let profiles = c.resources("profiles");
    for network in ["calico-net1", "calico-net2"] {
        assert!(
            profiles.iter().any(|p| p["metadata"]["name"] == network),
            "no profile {network}: {profiles:?}"
        );
    }
    // Inside, the container is wired as Calico wires it.
    let routes = c.docker(1, &["exec", "a1", "/bin/ip", "route"]);
    assert!(
        routes.contains("default via 169.254.1.1 dev cali0")
            && routes.contains("169.254.1.1 dev cali0"),
        "routes in a1:\n{routes}"
    );

    assert!(
        eventually(Duration::from_secs(30), || c.peered(1, c.node_ip(2))
            && c.peered(2, c.node_ip(1))),
        "the nodes do not peer\n{}",
        c.logs()
    );
    assert!(
        eventually(Duration::from_secs(30), || c.pings(1, "a1", a2)),
        "a1 ({a1}) on node 1 cannot ping a2 ({a2}) on node 2\n{}",
        c.logs()
    );
    assert!(c.pings(2, "a2", a1), "a2 -> a1\n{}", c.logs());

    // calico-net2 is another network: nothing passes, on the same node or across, either way.
    // (b1 -> a2 and then a2 -> b1: busybox ping uses its pid as the echo identifier, small and
    // alike in every container, and a request is never taken for the reply of a tracked ping.)
    for (k, from, to) in [(1, "b1", a2), (2, "a2", b1), (1, "b1", a1), (1, "a1", b1)] {
        assert!(!c.pings(k, from, to), "{from} reached {to} across networks");
    }

    // docker rm: the address goes back to IPAM, the endpoint and the veth go.
    let host_if = c.endpoints_with(a2)[0]["spec"]["interfaceName"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(Path::new(&format!("/run/netns/{}", c.node_netns(2))).exists());
    let has_interface = |name: &str| {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &c.node_netns(2),
                "ip",
                "link",
                "show",
                "dev",
                name,
            ])
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(has_interface(&host_if), "{host_if} missing on node 2");
    c.docker(2, &["rm", "-f", "a2"]);
    assert!(
        c.endpoints_with(a2).is_empty(),
        "a2's endpoint is still there"
    );
    assert!(!c.ip_in_use(a2), "{a2} still assigned after docker rm");
    assert!(!has_interface(&host_if), "{host_if} still on node 2");
    // The address can be handed out again.
    let again = c.run_container(2, "a3", "calico-net1");
    assert!(in_subnet(again, [10, 1, 1]), "{again}");
    assert!(
        eventually(Duration::from_secs(20), || c.pings(2, "a3", a1)),
        "a3 ({again}) -> a1\n{}",
        c.logs()
    );

    // Brindle's own driver names, and a network without --subnet: any pool (the default one).
    c.docker(
        2,
        &[
            "network",
            "create",
            "--driver",
            "brindle",
            "--ipam-driver",
            "brindle-ipam",
            "net3",
        ],
    );
    // Its address comes from any enabled pool, the node's affine blocks first (Calico's
    // auto-assignment): perhaps calico-net1's pool, which makes isolation by profile the only
    // thing keeping it from calico-net1's containers.
    let c2 = c.run_container(2, "c2", "net3");
    assert_eq!(c.endpoints_with(c2)[0]["spec"]["profiles"][0], "net3");
    assert!(!c.pings(2, "c2", a1), "c2 (net3) reached a1 (calico-net1)");

    // docker network rm: the network's profile and the pool made for it go.
    c.docker(1, &["rm", "-f", "b1"]);
    c.docker(1, &["network", "rm", "calico-net2"]);
    let profiles = c.resources("profiles");
    assert!(
        !profiles
            .iter()
            .any(|p| p["metadata"]["name"] == "calico-net2"),
        "{profiles:?}"
    );
    assert!(profiles
        .iter()
        .any(|p| p["metadata"]["name"] == "calico-net1"));
    let pools = c.resources("ippools");
    assert!(
        !pools.iter().any(|p| p["spec"]["cidr"] == "10.1.2.0/24"),
        "{pools:?}"
    );
}
