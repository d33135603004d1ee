//! The harness: a datastore with both plugins in a `CNI_PATH` directory, run as a runtime
//! runs them, and workloads in network namespaces made for the test.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cli::cni::plumbing::{host_interface_name, WorkloadIdentity};
use datastore::{keys, Datastore, EmbeddedStore, EtcdConfig, EtcdStore};
use ipam::{BlockMath, Ipam};
use resources::{IpPool, IpPoolSpec, Kind, Metadata, Resource};
use serde_json::{json, Value};
use testkit::{start_etcd, EtcdMember, TempDir};

pub(crate) const NODE: &str = "node-a";
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(120);

enum Store {
    Embedded(PathBuf),
    Etcd(EtcdMember),
}

/// One datastore plus a `CNI_PATH` directory holding both plugins.
pub(crate) struct Cluster {
    store: Store,
    dir: TempDir,
    pub(crate) label: String,
}

impl Cluster {
    pub(crate) fn embedded(label: &str) -> Cluster {
        let dir = TempDir::new(&format!("cni-{label}"));
        let path = dir.path().join("store.redb");
        Cluster::with(Store::Embedded(path), dir, label)
    }

    pub(crate) fn etcd(label: &str) -> Cluster {
        let dir = TempDir::new(&format!("cni-{label}"));
        Cluster::with(Store::Etcd(start_etcd(&format!("cni-{label}"))), dir, label)
    }

    fn with(store: Store, dir: TempDir, label: &str) -> Cluster {
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_brindle-cni"), bin.join("brindle-cni"))
            .unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_brindle-ipam"), bin.join("brindle-ipam"))
            .unwrap();
        Cluster {
            store,
            dir,
            label: label.to_owned(),
        }
    }

    fn cni_path(&self) -> String {
        // A missing directory first: the plugin must be searched for, as runtimes do.
        format!(
            "/nonexistent-{}:{}",
            std::process::id(),
            self.dir.path().join("bin").display()
        )
    }

    /// The test's own client of the same store the plugins use.
    pub(crate) fn open(&self) -> Arc<dyn Datastore> {
        match &self.store {
            Store::Embedded(path) => Arc::new(EmbeddedStore::open(path).unwrap()),
            Store::Etcd(member) => Arc::new(
                EtcdStore::connect(EtcdConfig {
                    endpoints: vec![member.client_url.clone()],
                    ..EtcdConfig::default()
                })
                .unwrap(),
            ),
        }
    }

    /// The embedded store is found through the environment (`DATASTORE_TYPE`,
    /// `BRINDLE_EMBEDDED_PATH`), etcd through the netconf (`datastore_type`, `etcd_endpoints`):
    /// both ways a deployment configures the plugins are exercised.
    fn env(&self) -> Vec<(String, String)> {
        match &self.store {
            Store::Embedded(path) => vec![
                ("DATASTORE_TYPE".into(), "embedded".into()),
                ("BRINDLE_EMBEDDED_PATH".into(), path.display().to_string()),
            ],
            Store::Etcd(_) => Vec::new(),
        }
    }

    pub(crate) fn netconf(&self, network: &str, pools: &[&str]) -> Value {
        let mut conf = json!({
            "cniVersion": "1.0.0",
            "name": network,
            "type": "brindle-cni",
            "mtu": 1400,
            "nodename": NODE,
            "ipam": {"type": "brindle-ipam"},
        });
        if !pools.is_empty() {
            conf["ipam"]["ipv4_pools"] = json!(pools);
        }
        if let Store::Etcd(member) = &self.store {
            conf["datastore_type"] = json!("etcdv3");
            conf["etcd_endpoints"] = json!(member.client_url);
        }
        conf
    }

    /// [`Cluster::netconf`] for TAP workloads, registered in [`Cluster::tap_dir`].
    pub(crate) fn tap_netconf(&self, network: &str) -> Value {
        let mut conf = self.netconf(network, &[]);
        conf["workload_interface"] = json!("tap");
        conf["tap_dir"] = json!(self.tap_dir());
        conf
    }

    /// Where this cluster's plugin registers TAP workloads (removed with the cluster).
    pub(crate) fn tap_dir(&self) -> PathBuf {
        self.dir.path().join("taps")
    }

    /// The registration of `w`'s TAP, as the file holds it.
    pub(crate) fn tap_registration(&self, w: &Workload) -> Option<Value> {
        let text = std::fs::read_to_string(self.tap_dir().join(format!("{}.json", w.host_if())));
        text.ok().map(|t| serde_json::from_str(&t).unwrap())
    }

    pub(crate) fn add_pool(&self, name: &str, cidr: &str, block_size: u32) {
        let mut pool = Resource::from(IpPool::new(
            Metadata::named(name),
            IpPoolSpec {
                cidr: cidr.into(),
                block_size: Some(block_size),
                ..IpPoolSpec::default()
            },
        ));
        pool.apply_defaults();
        pool.validate().unwrap();
        self.open()
            .create(&pool.key(), &pool.to_stored_json())
            .unwrap();
    }

    /// brindle-cni ADD of a new container (id from `tag`) into a namespace that does not
    /// exist, so that wiring fails after the address was taken: the container id, and what
    /// [`Cluster::run`] returns.
    pub(crate) fn add_into_missing_netns(&self, tag: char, conf: &Value) -> (String, bool, Value) {
        let container_id = format!("{tag}{:07x}leak", std::process::id());
        let missing_ns = format!("/var/run/netns/cni-missing-{}", std::process::id());
        let (ok, out) = self.run(
            "brindle-cni",
            "ADD",
            &container_id,
            &missing_ns,
            conf.to_string().as_bytes(),
        );
        (container_id, ok, out)
    }

    /// Runs `plugin` as a runtime would; returns (exit status 0, parsed stdout or Null).
    pub(crate) fn run(
        &self,
        plugin: &str,
        command: &str,
        container_id: &str,
        netns: &str,
        stdin: &[u8],
    ) -> (bool, Value) {
        self.run_with_args(plugin, command, container_id, netns, stdin, "")
    }

    /// [`Cluster::run`] with `CNI_ARGS` (`K=V;K=V`; empty: unset).
    pub(crate) fn run_with_args(
        &self,
        plugin: &str,
        command: &str,
        container_id: &str,
        netns: &str,
        stdin: &[u8],
        cni_args: &str,
    ) -> (bool, Value) {
        self.run_under(&[], plugin, command, container_id, netns, stdin, cni_args)
    }

    /// [`Cluster::run_with_args`] with the plugin run by `wrapper` (a command and its
    /// arguments, such as `nsenter --net=...`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_under(
        &self,
        wrapper: &[&str],
        plugin: &str,
        command: &str,
        container_id: &str,
        netns: &str,
        stdin: &[u8],
        cni_args: &str,
    ) -> (bool, Value) {
        let mut child = self
            .command(wrapper, plugin, command, container_id, netns, cni_args)
            .spawn()
            .unwrap();
        // A plugin may stop reading once it has seen too much (the oversized-netconf case) and
        // exit: the rest of the write then meets a closed pipe, which is its answer, not ours.
        if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe,
                "writing the netconf: {e}"
            );
        }
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + PLUGIN_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{plugin} {command} ran over {PLUGIN_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let out = out_reader.join().unwrap();
        let err = err_reader.join().unwrap();
        let value = if out.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&out).unwrap_or_else(|e| {
                panic!("{plugin} {command} printed non-JSON ({e}): {out:?}; stderr: {err}")
            })
        };
        if !status.success() {
            eprintln!("{plugin} {command} {container_id}: {value}; stderr: {err}");
        }
        (status.success(), value)
    }

    /// The plugin's process as a runtime starts it, stdin, stdout and stderr piped.
    fn command(
        &self,
        wrapper: &[&str],
        plugin: &str,
        command: &str,
        container_id: &str,
        netns: &str,
        cni_args: &str,
    ) -> Command {
        let binary = self.dir.path().join("bin").join(plugin);
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&binary);
                cmd
            }
            None => Command::new(&binary),
        };
        cmd.env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            )
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", self.cni_path())
            .envs(self.env())
            .envs((!cni_args.is_empty()).then_some(("CNI_ARGS", cni_args)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Starts `brindle-cni` `command` for `w` and SIGKILLs it `after` in (if it is still
    /// running then); true if it was killed.
    pub(crate) fn cni_killed_after(
        &self,
        command: &str,
        w: &Workload,
        conf: &Value,
        after: Duration,
    ) -> bool {
        let mut child = self
            .command(
                &[],
                "brindle-cni",
                command,
                &w.container_id,
                &w.netns_path(),
                "",
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _ = child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.to_string().as_bytes());
        std::thread::sleep(after);
        let killed = child.try_wait().unwrap().is_none() && child.kill().is_ok();
        child.wait().unwrap();
        killed
    }

    pub(crate) fn cni(&self, command: &str, w: &Workload, conf: &Value) -> (bool, Value) {
        self.cni_with_args(command, w, conf, "")
    }

    pub(crate) fn cni_with_args(
        &self,
        command: &str,
        w: &Workload,
        conf: &Value,
        cni_args: &str,
    ) -> (bool, Value) {
        self.run_with_args(
            "brindle-cni",
            command,
            &w.container_id,
            &w.netns_path(),
            conf.to_string().as_bytes(),
            cni_args,
        )
    }

    pub(crate) fn ipam_ips(&self, network: &str, container_id: &str) -> Vec<Ipv4Addr> {
        Ipam::new(self.open())
            .ips_by_handle(&format!("{network}.{container_id}"))
            .unwrap()
    }

    pub(crate) fn endpoint(&self, w: &Workload) -> Option<Resource> {
        let name = format!("{}-cni-{}-eth0", NODE.replace('-', "--"), w.container_id);
        let key = keys::resource(Kind::WorkloadEndpoint.plural(), Some("default"), &name);
        self.open()
            .get(&key)
            .unwrap()
            .map(|kv| Resource::from_kv(&kv).unwrap())
    }

    /// Every address allocated in any block, with its handle.
    pub(crate) fn allocated(&self) -> Vec<(Ipv4Addr, Option<String>)> {
        let ipam = Ipam::new(self.open());
        let (blocks, _) = self.open().list(keys::IPAM_BLOCKS).unwrap();
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
}

/// A container: a network namespace made for the test and the container id it runs under.
/// Dropping it removes the host end of its veth (if a failed test left it) and the namespace.
pub(crate) struct Workload {
    netns: String,
    pub(crate) container_id: String,
}

impl Workload {
    pub(crate) fn new(label: &str) -> Workload {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        Workload::with_id(
            label,
            n,
            format!("c{:07x}{:03x}deadbeef", std::process::id(), n),
        )
    }

    /// A workload running under `container_id`; `n` tells its namespace from the others.
    pub(crate) fn with_id(label: &str, n: usize, container_id: String) -> Workload {
        let netns = format!("cni-{label}-{}-{n}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &netns])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip netns add {netns}");
        Workload {
            netns,
            container_id,
        }
    }

    pub(crate) fn netns_name(&self) -> String {
        self.netns.clone()
    }

    pub(crate) fn netns_path(&self) -> String {
        format!("/var/run/netns/{}", self.netns)
    }

    pub(crate) fn host_if(&self) -> String {
        container_host_if(&self.container_id)
    }

    pub(crate) fn in_ns(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        if Path::new("/sys/class/net").join(self.host_if()).exists() {
            let _ = Command::new("ip")
                .args(["link", "del", "dev", &self.host_if()])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

/// The host interface brindle-cni names for `container_id`'s eth0 (no pod arguments).
pub(crate) fn container_host_if(container_id: &str) -> String {
    host_interface_name(WorkloadIdentity::Container {
        id: container_id,
        ifname: "eth0",
    })
}

pub(crate) fn host_if_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

pub(crate) fn address_of(result: &Value) -> Ipv4Addr {
    let addr = result["ips"][0]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("no ips in {result}"));
    let (ip, len) = addr.split_once('/').unwrap();
    assert_eq!(len, "32", "{result}");
    ip.parse().unwrap()
}

pub(crate) fn in_cidr(ip: Ipv4Addr, cidr: &str) -> bool {
    cidr.parse::<ipam::Ipv4Prefix>().unwrap().contains(ip)
}
