//! `brindle-cni` and `brindle-ipam` run exactly as a container runtime runs them: the real
//! binaries in a `CNI_PATH` directory, `CNI_COMMAND`/`CNI_CONTAINERID`/`CNI_NETNS`/`CNI_IFNAME`
//! in the environment, the network configuration on stdin, against the embedded store (a temp
//! file) and a real etcd started by the test. Every scenario runs against both backends.
//! Root: the tests create network namespaces (named with the test and the process id) and
//! remove them, and the veths in them, when they end.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datastore::{keys, Datastore, EmbeddedStore, EtcdConfig, EtcdStore};
use ipam::{BlockMath, Ipam};
use resources::{IpPool, IpPoolSpec, Kind, Metadata, Resource};
use serde_json::{json, Value};
use testkit::{start_etcd, EtcdMember, TempDir};

const NODE: &str = "node-a";
const PLUGIN_TIMEOUT: Duration = Duration::from_secs(120);

// ---- harness -----------------------------------------------------------------------------

enum Store {
    Embedded(PathBuf),
    Etcd(EtcdMember),
}

/// One datastore plus a `CNI_PATH` directory holding both plugins.
struct Cluster {
    store: Store,
    dir: TempDir,
    label: String,
}

impl Cluster {
    fn embedded(label: &str) -> Cluster {
        let dir = TempDir::new(&format!("cni-{label}"));
        let path = dir.path().join("store.redb");
        Cluster::with(Store::Embedded(path), dir, label)
    }

    fn etcd(label: &str) -> Cluster {
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
    fn open(&self) -> Arc<dyn Datastore> {
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

    fn netconf(&self, network: &str, pools: &[&str]) -> Value {
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

    fn add_pool(&self, name: &str, cidr: &str, block_size: u32) {
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

    /// Runs `plugin` as a runtime would; returns (exit status 0, parsed stdout or Null).
    fn run(
        &self,
        plugin: &str,
        command: &str,
        container_id: &str,
        netns: &str,
        stdin: &[u8],
    ) -> (bool, Value) {
        let mut cmd = Command::new(self.dir.path().join("bin").join(plugin));
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
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
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

    fn cni(&self, command: &str, w: &Workload, conf: &Value) -> (bool, Value) {
        self.run(
            "brindle-cni",
            command,
            &w.container_id,
            &w.netns_path(),
            conf.to_string().as_bytes(),
        )
    }

    fn ipam_ips(&self, network: &str, container_id: &str) -> Vec<Ipv4Addr> {
        Ipam::new(self.open())
            .ips_by_handle(&format!("{network}.{container_id}"))
            .unwrap()
    }

    fn endpoint(&self, w: &Workload) -> Option<Resource> {
        let name = format!("{}-cni-{}-eth0", NODE.replace('-', "--"), w.container_id);
        let key = keys::resource(Kind::WorkloadEndpoint.plural(), Some("default"), &name);
        self.open()
            .get(&key)
            .unwrap()
            .map(|kv| Resource::from_kv(&kv).unwrap())
    }

    /// Every address allocated in any block, with its handle.
    fn allocated(&self) -> Vec<(Ipv4Addr, Option<String>)> {
        let ipam = Ipam::new(self.open());
        let (blocks, _) = self.open().list(keys::IPAM_BLOCKS).unwrap();
        let mut out = Vec::new();
        for kv in blocks {
            let block: Value = serde_json::from_slice(&kv.value).unwrap();
            let cidr: ipam::Ipv4Cidr = block["cidr"].as_str().unwrap().parse().unwrap();
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
struct Workload {
    netns: String,
    container_id: String,
}

impl Workload {
    fn new(label: &str) -> Workload {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        // The first 11 characters name the host interface, so they are unique per process.
        let container_id = format!("c{:07x}{:03x}deadbeef", std::process::id(), n);
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

    fn netns_path(&self) -> String {
        format!("/var/run/netns/{}", self.netns)
    }

    fn host_if(&self) -> String {
        format!("cali{}", &self.container_id[..11])
    }

    fn in_ns(&self, args: &[&str]) -> String {
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

fn host_if_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn address_of(result: &Value) -> Ipv4Addr {
    let addr = result["ips"][0]["address"]
        .as_str()
        .unwrap_or_else(|| panic!("no ips in {result}"));
    let (ip, len) = addr.split_once('/').unwrap();
    assert_eq!(len, "32", "{result}");
    ip.parse().unwrap()
}

fn in_cidr(ip: Ipv4Addr, cidr: &str) -> bool {
    cidr.parse::<ipam::Ipv4Cidr>().unwrap().contains(ip)
}

/// Runs each scenario once per backend.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $( #[test] fn $scenario() { super::$scenario(super::Cluster::embedded(&format!("e-{}", &stringify!($scenario)[..8]))) } )*
        }
        mod etcd {
            $( #[test] fn $scenario() { super::$scenario(super::Cluster::etcd(&format!("d-{}", &stringify!($scenario)[..8]))) } )*
        }
    };
}

on_both_backends!(
    add_wires_the_workload_and_records_its_endpoint_and_profile,
    del_twice_releases_everything_and_del_of_an_unknown_container_succeeds,
    check_passes_after_add_and_fails_once_the_veth_is_gone,
    a_network_bound_to_a_custom_pool_hands_out_its_addresses,
    bad_netconf_and_exhausted_pools_are_cni_error_objects,
    a_failed_add_leaks_nothing,
    twenty_parallel_adds_get_twenty_distinct_addresses,
);

// ---- scenarios ---------------------------------------------------------------------------

fn add_wires_the_workload_and_records_its_endpoint_and_profile(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let w = Workload::new(&cluster.label);
    let conf = cluster.netconf("net1", &[]);
    let (ok, result) = cluster.cni("ADD", &w, &conf);
    assert!(ok, "ADD failed: {result}");
    let ip = address_of(&result);
    assert!(in_cidr(ip, "192.168.0.0/16"), "{ip}");

    // The result: host interface, container interface in the sandbox, the address on it.
    assert_eq!(result["cniVersion"], "1.0.0");
    assert_eq!(result["interfaces"][0]["name"], w.host_if());
    assert_eq!(result["interfaces"][0]["mac"], "ee:ee:ee:ee:ee:ee");
    assert_eq!(result["interfaces"][1]["name"], "eth0");
    assert_eq!(result["interfaces"][1]["sandbox"], w.netns_path());
    assert_eq!(result["ips"][0]["interface"], 1);
    assert_eq!(
        result["routes"][0],
        json!({"dst": "0.0.0.0/0", "gw": "169.254.1.1"})
    );

    // The container: eth0 with the /32 and the routes through 169.254.1.1.
    let addrs = w.in_ns(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(&format!("{ip}/32")), "{addrs}");
    let routes = w.in_ns(&["ip", "-4", "route", "show"]);
    assert!(
        routes.contains("default via 169.254.1.1 dev eth0"),
        "{routes}"
    );
    assert!(
        routes.contains("169.254.1.1 dev eth0 scope link"),
        "{routes}"
    );
    let container_mac = w
        .in_ns(&["cat", "/sys/class/net/eth0/address"])
        .trim()
        .to_owned();
    assert_eq!(result["interfaces"][1]["mac"], container_mac.as_str());

    // The host: cali<11 characters of the id> with Calico's MAC and the netconf's MTU.
    let host_mac =
        std::fs::read_to_string(format!("/sys/class/net/{}/address", w.host_if())).unwrap();
    assert_eq!(host_mac.trim(), "ee:ee:ee:ee:ee:ee");
    let host_mtu = std::fs::read_to_string(format!("/sys/class/net/{}/mtu", w.host_if())).unwrap();
    assert_eq!(host_mtu.trim(), "1400");

    // The WorkloadEndpoint, as Calico's plugin writes it for the cni orchestrator.
    let wep = cluster.endpoint(&w).expect("workload endpoint written");
    let wep = wep.as_workload_endpoint().unwrap();
    assert_eq!(
        wep.metadata.name,
        format!("node--a-cni-{}-eth0", w.container_id)
    );
    assert_eq!(wep.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(
        wep.metadata.labels["projectcalico.org/namespace"],
        "default"
    );
    assert_eq!(wep.metadata.labels["projectcalico.org/orchestrator"], "cni");
    assert_eq!(wep.spec.orchestrator, "cni");
    assert_eq!(wep.spec.node, NODE);
    assert_eq!(wep.spec.container_id, w.container_id);
    assert_eq!(wep.spec.endpoint, "eth0");
    assert_eq!(wep.spec.interface_name, w.host_if());
    assert_eq!(wep.spec.mac, container_mac);
    assert_eq!(wep.spec.ip_networks, vec![format!("{ip}/32")]);
    assert_eq!(wep.spec.profiles, vec!["net1"]);

    // The network's profile, as Calico creates it.
    let kv = cluster
        .open()
        .get(&keys::resource("profiles", None, "net1"))
        .unwrap()
        .expect("profile net1 created");
    let profile: Value = serde_json::from_slice(&kv.value).unwrap();
    assert_eq!(profile["kind"], "Profile");
    assert_eq!(profile["spec"]["labelsToApply"], json!({"net1": ""}));
    assert_eq!(
        profile["spec"]["ingress"],
        json!([{"action": "Allow", "source": {"selector": "has(net1)"}}])
    );
    assert_eq!(profile["spec"]["egress"], json!([{"action": "Allow"}]));

    // IPAM: the handle calico-ipam would use holds exactly this address, for this node.
    assert_eq!(cluster.ipam_ips("net1", &w.container_id), vec![ip]);
    let attrs = Ipam::new(cluster.open())
        .get_assignment_attrs(ip)
        .unwrap()
        .unwrap();
    assert_eq!(attrs.attrs["node"], NODE);
    assert_eq!(attrs.attrs["containerID"], w.container_id);

    // A second workload on the same network gets another address and leaves the profile be.
    let w2 = Workload::new(&cluster.label);
    let (ok, result2) = cluster.cni("ADD", &w2, &conf);
    assert!(ok, "{result2}");
    assert_ne!(address_of(&result2), ip);
    let kv2 = cluster
        .open()
        .get(&keys::resource("profiles", None, "net1"))
        .unwrap()
        .unwrap();
    assert_eq!(
        kv2.mod_revision, kv.mod_revision,
        "the existing profile was rewritten"
    );
    assert!(cluster.cni("DEL", &w2, &conf).0);
    assert!(cluster.cni("DEL", &w, &conf).0);
}

fn del_twice_releases_everything_and_del_of_an_unknown_container_succeeds(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let w = Workload::new(&cluster.label);
    let conf = cluster.netconf("net1", &[]);
    let (ok, result) = cluster.cni("ADD", &w, &conf);
    assert!(ok, "{result}");
    let ip = address_of(&result);
    assert!(host_if_exists(&w.host_if()));

    let (ok, out) = cluster.cni("DEL", &w, &conf);
    assert!(ok, "first DEL: {out}");
    assert_eq!(out, Value::Null, "DEL prints nothing on success");
    assert!(!host_if_exists(&w.host_if()), "veth removed");
    assert!(cluster.endpoint(&w).is_none(), "endpoint removed");
    assert!(
        cluster.ipam_ips("net1", &w.container_id).is_empty(),
        "handle released"
    );
    assert!(
        Ipam::new(cluster.open())
            .get_assignment_attrs(ip)
            .unwrap()
            .is_none(),
        "{ip} still allocated"
    );
    assert!(
        w.in_ns(&["ip", "-o", "link", "show", "eth0"]).is_empty(),
        "eth0 still in the container"
    );

    let (ok, out) = cluster.cni("DEL", &w, &conf);
    assert!(ok, "second DEL: {out}");

    // Never added, and without a netns (DEL tolerates a missing CNI_NETNS).
    let (ok, out) = cluster.run(
        "brindle-cni",
        "DEL",
        "neveradded0001",
        "",
        conf.to_string().as_bytes(),
    );
    assert!(ok, "DEL of an unknown container: {out}");
    assert!(cluster.allocated().is_empty(), "{:?}", cluster.allocated());
}

fn check_passes_after_add_and_fails_once_the_veth_is_gone(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let w = Workload::new(&cluster.label);
    let mut conf = cluster.netconf("net1", &[]);
    let (ok, result) = cluster.cni("ADD", &w, &conf);
    assert!(ok, "{result}");
    conf["prevResult"] = result.clone();

    let (ok, out) = cluster.cni("CHECK", &w, &conf);
    assert!(ok, "CHECK after ADD: {out}");
    assert_eq!(out, Value::Null);

    // A prevResult naming another address does not agree with what is wired.
    let mut wrong = conf.clone();
    wrong["prevResult"]["ips"][0]["address"] = json!("192.168.250.250/32");
    let (ok, out) = cluster.cni("CHECK", &w, &wrong);
    assert!(!ok);
    assert!(
        out["msg"].as_str().unwrap().contains("192.168.250.250"),
        "{out}"
    );

    assert!(Command::new("ip")
        .args(["link", "del", "dev", &w.host_if()])
        .status()
        .unwrap()
        .success());
    let (ok, out) = cluster.cni("CHECK", &w, &conf);
    assert!(!ok, "CHECK passed without the veth");
    assert_eq!(out["code"], 102, "{out}");
    assert!(out["msg"].as_str().unwrap().contains(&w.host_if()), "{out}");

    // DEL still cleans up what is left (endpoint, address).
    assert!(cluster.cni("DEL", &w, &conf).0);
    assert!(cluster.endpoint(&w).is_none());
    let (ok, out) = cluster.cni("CHECK", &w, &conf);
    assert!(!ok);
    assert_eq!(out["code"], 3, "CHECK of a deleted container: {out}");
}

/// ARCHITECTURE.md scenario 4: a pool 10.20.0.0/24 and a network bound to it.
fn a_network_bound_to_a_custom_pool_hands_out_its_addresses(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    cluster.add_pool("pool-10-20", "10.20.0.0/24", 26);
    let by_cidr = cluster.netconf("net20", &["10.20.0.0/24"]);
    let by_name = cluster.netconf("net20", &["pool-10-20"]);
    let (a, b) = (Workload::new(&cluster.label), Workload::new(&cluster.label));
    let (ok, ra) = cluster.cni("ADD", &a, &by_cidr);
    assert!(ok, "{ra}");
    let (ok, rb) = cluster.cni("ADD", &b, &by_name);
    assert!(ok, "{rb}");
    let (ia, ib) = (address_of(&ra), address_of(&rb));
    assert!(
        in_cidr(ia, "10.20.0.0/24") && in_cidr(ib, "10.20.0.0/24"),
        "{ia} {ib}"
    );
    assert_ne!(ia, ib);
    let addrs = b.in_ns(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addrs.contains(&format!("{ib}/32")), "{addrs}");

    // Without ipv4_pools every pool is eligible; a pool that does not exist is refused.
    let (ok, out) = cluster.run(
        "brindle-ipam",
        "ADD",
        "nopool0001",
        "/x",
        cluster
            .netconf("net20", &["10.99.0.0/24"])
            .to_string()
            .as_bytes(),
    );
    assert!(!ok);
    assert_eq!(out["code"], 7, "{out}");
    assert!(
        out["msg"].as_str().unwrap().contains("10.99.0.0/24"),
        "{out}"
    );

    assert!(cluster.cni("DEL", &a, &by_cidr).0);
    assert!(cluster.cni("DEL", &b, &by_name).0);
    assert!(cluster.allocated().is_empty(), "{:?}", cluster.allocated());
}

fn bad_netconf_and_exhausted_pools_are_cni_error_objects(cluster: Cluster) {
    let w = Workload::new(&cluster.label);
    let error = |(ok, out): (bool, Value)| -> Value {
        assert!(!ok, "expected a failure, got {out}");
        assert_eq!(out["cniVersion"], "1.0.0", "{out}");
        assert!(out["msg"].as_str().is_some_and(|m| !m.is_empty()), "{out}");
        out
    };
    let run = |stdin: &[u8]| {
        cluster.run(
            "brindle-cni",
            "ADD",
            &w.container_id,
            &w.netns_path(),
            stdin,
        )
    };
    assert_eq!(error(run(b"{\"cniVersion\":"))["code"], 6);
    let mut conf = cluster.netconf("Bad Name", &[]);
    assert_eq!(error(run(conf.to_string().as_bytes()))["code"], 7);
    conf = cluster.netconf("net1", &[]);
    conf.as_object_mut().unwrap().remove("ipam");
    assert_eq!(error(run(conf.to_string().as_bytes()))["code"], 7);
    conf = cluster.netconf("net1", &[]);
    conf["ipam"]["type"] = json!("../../bin/sh");
    assert_eq!(error(run(conf.to_string().as_bytes()))["code"], 7);
    assert!(!host_if_exists(&w.host_if()));

    // A /30 pool in one /30 block: four addresses (Calico reserves none in a block).
    cluster.add_pool("tiny", "10.30.0.0/30", 30);
    let tiny = cluster.netconf("tiny", &["10.30.0.0/30"]);
    let mut got = BTreeSet::new();
    for n in 0..4 {
        let (ok, out) = cluster.run(
            "brindle-ipam",
            "ADD",
            &format!("fill{n}"),
            "/x",
            tiny.to_string().as_bytes(),
        );
        assert!(ok, "{out}");
        got.insert(address_of(&out));
    }
    assert_eq!(got.len(), 4);
    let out = error(cluster.cni("ADD", &w, &tiny));
    assert_eq!(out["code"], 101, "{out}");
    assert!(
        out["msg"]
            .as_str()
            .unwrap()
            .contains("no more free addresses"),
        "{out}"
    );
    assert!(
        !host_if_exists(&w.host_if()),
        "a failed ADD left {}",
        w.host_if()
    );
    assert!(cluster.endpoint(&w).is_none());
    assert_eq!(cluster.allocated().len(), 4);

    // VERSION needs nothing but the command.
    for plugin in ["brindle-cni", "brindle-ipam"] {
        let (ok, out) = cluster.run(plugin, "VERSION", "", "", b"{\"cniVersion\":\"1.0.0\"}");
        assert!(ok);
        assert_eq!(out["cniVersion"], "1.0.0");
        assert!(
            out["supportedVersions"]
                .as_array()
                .unwrap()
                .contains(&json!("1.0.0")),
            "{out}"
        );
    }
}

fn a_failed_add_leaks_nothing(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let conf = cluster.netconf("net1", &[]);
    // The address is allocated, then wiring fails: the namespace does not exist.
    let container_id = format!("g{:07x}leak", std::process::id());
    let missing_ns = format!("/var/run/netns/cni-missing-{}", std::process::id());
    let (ok, out) = cluster.run(
        "brindle-cni",
        "ADD",
        &container_id,
        &missing_ns,
        conf.to_string().as_bytes(),
    );
    assert!(!ok, "{out}");
    assert_eq!(out["code"], 102, "{out}");
    assert!(!host_if_exists(&format!("cali{}", &container_id[..11])));
    assert!(cluster.ipam_ips("net1", &container_id).is_empty());
    assert!(cluster.allocated().is_empty(), "{:?}", cluster.allocated());
    let (weps, _) = cluster
        .open()
        .list(&keys::resource_prefix("workloadendpoints", None))
        .unwrap();
    assert!(weps.is_empty());

    // An interface that already exists is never torn down by an ADD that fails on it.
    let w = Workload::new(&cluster.label);
    assert!(cluster.cni("ADD", &w, &conf).0);
    let ip = cluster.ipam_ips("net1", &w.container_id);
    let (ok, out) = cluster.cni("ADD", &w, &conf);
    assert!(!ok);
    assert_eq!(out["code"], 102, "{out}");
    assert!(host_if_exists(&w.host_if()));
    assert_eq!(cluster.ipam_ips("net1", &w.container_id), ip);
    assert!(cluster.endpoint(&w).is_some());
    assert!(cluster.cni("DEL", &w, &conf).0);
}

fn twenty_parallel_adds_get_twenty_distinct_addresses(cluster: Cluster) {
    cluster.add_pool("default-ipv4-ippool", "192.168.0.0/16", 26);
    let conf = cluster.netconf("net1", &[]);
    let workloads: Vec<Workload> = (0..20).map(|_| Workload::new(&cluster.label)).collect();
    let results: Vec<(bool, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = workloads
            .iter()
            .map(|w| s.spawn(|| cluster.cni("ADD", w, &conf)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut addresses = BTreeSet::new();
    for (ok, out) in &results {
        assert!(ok, "{out}");
        addresses.insert(address_of(out));
    }
    assert_eq!(addresses.len(), 20, "{addresses:?}");
    let allocated: BTreeSet<Ipv4Addr> = cluster.allocated().into_iter().map(|(ip, _)| ip).collect();
    assert_eq!(allocated, addresses);
    for w in &workloads {
        let wep = cluster.endpoint(w).expect("endpoint");
        let ip = address_of(
            &json!({"ips": [{"address": wep.as_workload_endpoint().unwrap().spec.ip_networks[0]}]}),
        );
        assert!(addresses.contains(&ip));
        assert!(cluster.cni("DEL", w, &conf).0);
    }
    assert!(cluster.allocated().is_empty());
}
