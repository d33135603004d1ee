//! The bed every runtime test stands on: a node namespace (the `lab` crate) running
//! brindle-node in agent mode on the embedded store, and a sandbox in it where a runtime runs
//! as it would on that node (RUNTIMES.md, "Running a runtime inside a node namespace").

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datastore::{keys, Datastore};
use ipam::BlockMath;
use lab::node::{NodeLaunch, NodeProcess};
use lab::{Lab, LabSpec};
use resources::Resource;
use serde_json::{json, Value};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");
/// How long one runtime command may take (a first `podman run` sets up its storage).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// One runtime test at a time: containerd's shims all use /run/containerd/s, and two podman
/// stores side by side only cost time on two cores.
pub static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A node namespace with brindle-node (agent mode, embedded store) and a work directory.
pub struct Node {
    pub lab: Lab,
    pub dir: PathBuf,
    node: Option<NodeProcess>,
}

impl Node {
    pub fn start(tag: &str) -> Node {
        let name = format!("{tag}{}", std::process::id() % 100_000);
        let lab = Lab::up(&LabSpec::new(name.clone(), 0)).expect("lab up");
        let dir = std::env::temp_dir().join(format!("brindle-rt-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let bin = testkit::workspace_bin_dir(&["brindle-cni", "brindle-ipam"]);
        for plugin in ["brindle-cni", "brindle-ipam"] {
            std::os::unix::fs::symlink(bin.join(plugin), dir.join("bin").join(plugin)).unwrap();
        }
        let env = [
            ("NODENAME", name.clone()),
            ("IP_AUTODETECTION_METHOD", "interface=eth0".into()),
            ("CALICO_IPV4POOL_IPIP", "Never".into()),
            ("DATASTORE_TYPE", "embedded".into()),
            (
                "BRINDLE_EMBEDDED_PATH",
                dir.join("store.redb").display().to_string(),
            ),
            (
                "BRINDLE_CONTROL_SOCKET",
                dir.join("node.sock").display().to_string(),
            ),
        ];
        let node = NodeLaunch::new(lab.node_netns(), NODE_BIN, dir.join("node.log"))
            .envs(env)
            .control_socket(dir.join("node.sock"))
            .start(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("brindle-node did not become ready: {e}"));
        Node {
            lab,
            dir,
            node: Some(node),
        }
    }

    pub fn name(&self) -> String {
        self.lab.spec().name.clone()
    }

    /// Where brindle-cni and brindle-ipam are, for a runtime's plugin path.
    pub fn plugin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// brindle-cni's entry of a conflist for `network` on this node's store.
    pub fn brindle_plugin(&self) -> Value {
        json!({
            "type": "brindle-cni",
            "nodename": self.name(),
            "datastore_type": "embedded",
            "embedded_path": self.dir.join("store.redb").display().to_string(),
            "mtu": 1500,
            "ipam": {"type": "brindle-ipam"},
        })
    }

    /// A conflist of brindle-cni followed by `chained` plugins.
    pub fn conflist(&self, network: &str, chained: &[Value]) -> Value {
        let mut plugins = vec![self.brindle_plugin()];
        plugins.extend_from_slice(chained);
        json!({"cniVersion": "1.0.0", "name": network, "plugins": plugins})
    }

    pub fn store(&self) -> Arc<dyn Datastore> {
        let path = self.dir.join("store.redb");
        let config = datastore::DatastoreConfig::from_lookup(|k| match k {
            "DATASTORE_TYPE" => Some("embedded".into()),
            "BRINDLE_EMBEDDED_PATH" => Some(path.display().to_string()),
            _ => None,
        })
        .unwrap();
        datastore::open(&config).unwrap()
    }

    /// The WorkloadEndpoints on this node: (container id, host interface, address).
    pub fn endpoints(&self) -> Vec<(String, String, Ipv4Addr)> {
        let (weps, _) = self
            .store()
            .list(&keys::resource_prefix("workloadendpoints", None))
            .unwrap();
        weps.iter()
            .filter_map(|kv| match Resource::from_kv(kv) {
                Ok(Resource::WorkloadEndpoint(w)) => Some(w.spec),
                _ => None,
            })
            .map(|spec| {
                let ip = spec.ip_networks[0]
                    .split('/')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                (spec.container_id, spec.interface_name, ip)
            })
            .collect()
    }

    /// Every allocated address with its handle, from the IPAM blocks.
    pub fn allocations(&self) -> Vec<(Ipv4Addr, Option<String>)> {
        let store = self.store();
        let ipam = ipam::Ipam::new(store.clone());
        let (blocks, _) = store.list(keys::IPAM_BLOCKS).unwrap();
        let mut out = Vec::new();
        for kv in blocks {
            let block: Value = serde_json::from_slice(&kv.value).unwrap();
            let cidr: ipam::Ipv4Prefix = block["cidr"].as_str().unwrap().parse().unwrap();
            for n in 0..cidr.size() {
                let ip = cidr.addr_at(n).unwrap();
                if let Some(a) = ipam.get_assignment_attrs(ip).unwrap() {
                    out.push((ip, a.handle_id));
                }
            }
        }
        out
    }

    /// Whether the node's namespace has interface `name`.
    pub fn has_interface(&self, name: &str) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.lab.node_netns(),
                "ip",
                "link",
                "show",
                "dev",
                name,
            ])
            .output()
            .unwrap()
            .status
            .success()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            node.stop(Duration::from_secs(10));
        }
        let _ = self.lab.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process holding a private mount namespace inside the node's network namespace, with a
/// sysfs of that network namespace and the host's cgroups: runtimes run under
/// `nsenter --target` into it, all commands of one container in the same mount namespace.
///
/// What the runtimes write whatever their configuration says (/var/lib/cni, /var/lib/containers,
/// /run/containerd) goes to tmpfs mounts private to the sandbox: nothing of it reaches the host,
/// and it all goes with the sandbox.
pub struct Sandbox {
    holder: Child,
    /// Directories made on the host as mount points, removed again (if still empty).
    made: Vec<&'static str>,
}

const PRIVATE_DIRS: [&str; 3] = ["/var/lib/cni", "/var/lib/containers", "/run/containerd"];

impl Sandbox {
    /// `setup` runs (sh) in the new mount namespace after sysfs, before the sandbox is ready.
    pub fn new(node: &Node, setup: &str) -> Sandbox {
        let aside = node.dir.join("cgroup-aside");
        let ready = node.dir.join("sandbox-ready");
        let _ = std::fs::remove_file(&ready);
        std::fs::create_dir_all(&aside).unwrap();
        let made = PRIVATE_DIRS
            .into_iter()
            .filter(|d| !Path::new(d).exists())
            .collect();
        let private: Vec<String> = PRIVATE_DIRS
            .iter()
            .map(|d| format!("mkdir -p {d}; mount -t tmpfs tmpfs {d}"))
            .collect();
        let script = format!(
            "set -e
            mount --rbind /sys/fs/cgroup {aside}
            mount -t sysfs sysfs /sys
            mount --rbind {aside} /sys/fs/cgroup
            umount -l {aside}
            {private}
            {setup}
            touch {ready}
            exec sleep 900",
            aside = aside.display(),
            ready = ready.display(),
            private = private.join("\n"),
        );
        let netns = format!("--net=/var/run/netns/{}", node.lab.node_netns());
        let holder = Command::new("nsenter")
            .args([
                &netns,
                "unshare",
                "--mount",
                "--propagation",
                "slave",
                "sh",
                "-c",
            ])
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(node.dir.join("sandbox.log")).unwrap())
            .spawn()
            .unwrap();
        let mut sandbox = Sandbox { holder, made };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready.exists() {
            if let Ok(Some(status)) = sandbox.holder.try_wait() {
                panic!(
                    "sandbox setup failed ({status}): {}",
                    std::fs::read_to_string(node.dir.join("sandbox.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "sandbox not ready in 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        sandbox
    }

    /// `program` inside the sandbox's network and mount namespaces.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--target={}", self.holder.id()))
            .args(["--mount", "--net", "--"])
            .arg(program);
        command
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        for dir in &self.made {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Runs `command` to its end within [`COMMAND_TIMEOUT`].
pub fn run(mut command: Command) -> Output {
    let described = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{described}: {e}"));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{described} ran over {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// [`run`], which must succeed; its stdout.
pub fn run_ok(command: Command) -> String {
    let described = format!("{command:?}");
    let out = run(command);
    assert!(
        out.status.success(),
        "{described}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A busybox root filesystem in `dir`: busybox-static as /bin/busybox and its applets as
/// relative links to it (`busybox --install` would link to the host's own path).
pub fn busybox_rootfs(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    for sub in ["proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    let mut list = Command::new("/bin/busybox");
    list.arg("--list");
    for applet in run_ok(list)
        .lines()
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        let _ = std::os::unix::fs::symlink("busybox", dir.join("bin").join(applet));
    }
}

/// Retries `attempt` until it succeeds or `within` passes (a new workload needs a moment
/// until the node attaches it).
pub fn eventually(within: Duration, mut attempt: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if attempt() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
