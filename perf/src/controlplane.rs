//! Control-plane benchmarks: how fast a workload plugged in by CNI starts forwarding, and how
//! fast a node lists and programs a large datastore.
//!
//! Both run `brindle-node` in agent mode (as calico-node: configured by its environment,
//! programmed from the datastore) inside a lab's node namespace, with etcd started on that
//! namespace's loopback (or the embedded store), and drive it exactly as a cluster does:
//!
//! - [`run_cni_latency`]: a container runtime's view. For each of N workloads: create a network
//!   namespace, run `brindle-cni ADD` (timed), then probe the new address from a "prober"
//!   container plugged in beforehand until it answers (ADD-to-forwarding: from the start of ADD
//!   to the first echo reply). At the end every workload is removed with `brindle-cni DEL`
//!   (timed).
//! - [`run_resync`]: N WorkloadEndpoints of this node whose interfaces do not exist are written
//!   to the datastore, then the node is started and timed from process start to (a) its
//!   `datastore synced endpoints=N` log line (list done, view built) and (b) its stats socket
//!   listing N `missing` items (the first dataplane apply over all N endpoints is done). On etcd
//!   the bench then cuts the node's etcd connections and times its resync.
//!
//! Everything is bounded in count and time, and every namespace and process is removed on
//! every exit path (guards).

mod report;

pub use report::*;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datastore::Datastore;
use serde::Serialize;

use lab::cmd::{self, ChildGuard, CONFIG_TIMEOUT};
use lab::cni::{netconf, CniPlugin};
use lab::etcd::EtcdMemberSpec;
use lab::node::{self as brindle_node, NodeError, NodeLaunch, NodeProcess};
use lab::{Lab, LabError, LabSpec};

/// Bounds that keep a typo from starting a run of hours.
pub const MAX_WORKLOADS: usize = 1000;
pub const MAX_ENDPOINTS: usize = 60_000;
/// How long the node may take to open its control socket.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a new workload may take to answer once ADD has started.
const FORWARDING_TIMEOUT: Duration = Duration::from_secs(20);
/// How long etcd may take to answer after it was started.
const ETCD_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound of `ResyncOptions::timeout`.
pub const MAX_RESYNC_TIMEOUT: Duration = Duration::from_secs(600);
/// Lines of the node's log kept for error messages.
const LOG_TAIL_LINES: usize = 40;
const NETWORK: &str = "bench";
/// Container index of the warm-up workload (timed workloads count from 1, the prober is 0).
const WARM_UP_INDEX: usize = 0xf_ffff;
/// etcd's ports inside the node namespace (its own loopback: no clash with other runs).
const ETCD_CLIENT_URL: &str = "http://127.0.0.1:2379";
const ETCD_PEER_URL: &str = "http://127.0.0.1:2380";

#[derive(Debug, thiserror::Error)]
pub enum ControlplaneError {
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error(transparent)]
    Command(#[from] cmd::CmdError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("datastore: {0}")]
    Datastore(#[from] datastore::DatastoreError),
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Run(String),
}

type Result<T> = std::result::Result<T, ControlplaneError>;

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ControlplaneError {
    let what = what.into();
    move |source| ControlplaneError::Io { what, source }
}

/// Which datastore the node and the CNI plugin use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// etcd v3 started by the bench on the node namespace's loopback.
    Etcd,
    /// The embedded store in a file of the bench's work directory.
    Embedded,
}

impl std::str::FromStr for StoreKind {
    type Err = ControlplaneError;
    fn from_str(s: &str) -> Result<StoreKind> {
        match s {
            "etcd" | "etcdv3" => Ok(StoreKind::Etcd),
            "embedded" => Ok(StoreKind::Embedded),
            other => Err(ControlplaneError::Invalid {
                field: "datastore",
                value: other.into(),
                reason: "expected etcdv3 or embedded".into(),
            }),
        }
    }
}

/// Percentiles of a set of durations, in milliseconds (nearest-rank, exact: the sets are small).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    pub fn of(samples: &[Duration]) -> Summary {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |q: f64| -> f64 {
            if ms.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest sample with at least q of the samples at or below it.
            let idx = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
            ms[idx]
        };
        let mean = if ms.is_empty() {
            0.0
        } else {
            ms.iter().sum::<f64>() / ms.len() as f64
        };
        Summary {
            count: ms.len(),
            p50_ms: round3(rank(0.50)),
            p99_ms: round3(rank(0.99)),
            max_ms: round3(ms.last().copied().unwrap_or(0.0)),
            mean_ms: round3(mean),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// ---- the node under test -------------------------------------------------------------------

/// What the node's stderr said, collected by a reader thread.
#[derive(Default)]
struct NodeLog {
    /// Arrival time and `endpoints=` of every `datastore synced` line.
    synced: Mutex<Vec<(Instant, usize)>>,
    tail: Mutex<VecDeque<String>>,
    lines: AtomicU64,
    warnings: AtomicU64,
}

impl NodeLog {
    fn follow(pipe: impl Read + Send + 'static) -> Arc<NodeLog> {
        let log = Arc::new(NodeLog::default());
        let writer = log.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => writer.take_line(&String::from_utf8_lossy(&raw)),
                }
            }
        });
        log
    }

    fn take_line(&self, raw: &str) {
        let now = Instant::now();
        let line = strip_ansi(raw.trim_end());
        self.lines.fetch_add(1, Ordering::Relaxed);
        if line.contains(" WARN ") {
            self.warnings.fetch_add(1, Ordering::Relaxed);
        }
        if line.contains("datastore synced") {
            let endpoints = field_value(&line, "endpoints").unwrap_or(0);
            if let Ok(mut s) = self.synced.lock() {
                s.push((now, endpoints));
            }
        }
        if let Ok(mut tail) = self.tail.lock() {
            if tail.len() == LOG_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line.chars().take(400).collect());
        }
    }

    fn synced(&self) -> Vec<(Instant, usize)> {
        self.synced.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The last WARN or ERROR line, without its timestamp.
    fn last_warning(&self) -> Option<String> {
        let tail = self.tail.lock().ok()?;
        let line = tail
            .iter()
            .rev()
            .find(|l| l.contains(" WARN ") || l.contains(" ERROR "))?;
        Some(
            line.split_once(' ')
                .map_or(line.as_str(), |(_, rest)| rest)
                .trim()
                .to_owned(),
        )
    }

    fn tail(&self) -> String {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}

/// Removes ANSI colour sequences (`ESC [ ... letter`) that tracing writes even into pipes.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The number in `name=123` of a tracing line.
fn field_value(line: &str, name: &str) -> Option<usize> {
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A lab node namespace with its datastore and `brindle-node` in agent mode. Dropping it stops
/// the node, deletes the container namespaces it made, stops etcd and takes the lab down.
struct Cluster {
    lab: Lab,
    dir: PathBuf,
    bin_dir: PathBuf,
    kind: StoreKind,
    env: Vec<(String, String)>,
    node: Option<NodeProcess>,
    node_log: Option<Arc<NodeLog>>,
    node_started: Option<Instant>,
    etcd: Option<ChildGuard>,
    containers: Vec<String>,
    store: Option<Arc<dyn Datastore>>,
}

impl Cluster {
    /// The lab, the work directory and the datastore; the node is started separately.
    fn new(tag: &str, bin_dir: &Path, kind: StoreKind) -> Result<Cluster> {
        let name = lab_name(tag);
        let lab = Lab::up(&LabSpec::new(name.clone(), 0))?;
        let dir = std::env::temp_dir().join(format!("brindle-perf-{name}"));
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let mut env: Vec<(String, String)> = vec![
            ("NODENAME".into(), name.clone()),
            ("IP_AUTODETECTION_METHOD".into(), "interface=eth0".into()),
            ("CALICO_IPV4POOL_IPIP".into(), "Never".into()),
            ("BRINDLE_MODE".into(), "interrupt".into()),
            (
                "BRINDLE_CONTROL_SOCKET".into(),
                dir.join("node.sock").display().to_string(),
            ),
            // The `datastore synced` line is at info level.
            ("RUST_LOG".into(), "info".into()),
        ];
        match kind {
            StoreKind::Etcd => {
                env.push(("DATASTORE_TYPE".into(), "etcdv3".into()));
                env.push(("ETCD_ENDPOINTS".into(), ETCD_CLIENT_URL.into()));
            }
            StoreKind::Embedded => {
                env.push(("DATASTORE_TYPE".into(), "embedded".into()));
                env.push((
                    "BRINDLE_EMBEDDED_PATH".into(),
                    dir.join("store.redb").display().to_string(),
                ));
            }
        }
        let mut cluster = Cluster {
            lab,
            dir,
            bin_dir: bin_dir.to_owned(),
            kind,
            env,
            node: None,
            node_log: None,
            node_started: None,
            etcd: None,
            containers: Vec::new(),
            store: None,
        };
        if kind == StoreKind::Etcd {
            cluster.start_etcd()?;
        }
        let store = cluster.open_store()?;
        cluster.store = Some(store);
        if kind == StoreKind::Etcd {
            cluster.wait_etcd()?;
        }
        Ok(cluster)
    }

    fn name(&self) -> String {
        self.lab.spec().name.clone()
    }

    fn store(&self) -> Result<Arc<dyn Datastore>> {
        self.store
            .clone()
            .ok_or_else(|| ControlplaneError::Run("datastore not open".into()))
    }

    fn start_etcd(&mut self) -> Result<()> {
        let child = EtcdMemberSpec::single(
            self.lab.node_netns(),
            "bench",
            self.dir.join("etcd"),
            ETCD_CLIENT_URL,
            ETCD_PEER_URL,
            self.dir.join("etcd.log"),
        )
        .spawn()?;
        self.etcd = Some(ChildGuard::new("etcd", child));
        Ok(())
    }

    /// Waits until etcd answers a read; returns when it did.
    fn wait_etcd(&mut self) -> Result<Instant> {
        let store = self.store()?;
        let deadline = Instant::now() + ETCD_READY_TIMEOUT;
        loop {
            match store.get("/calico/resources/v3/projectcalico.org/clusterinformations/default") {
                Ok(_) => return Ok(Instant::now()),
                Err(e) if Instant::now() >= deadline || cmd::interrupted() => {
                    return Err(ControlplaneError::Run(format!(
                        "etcd did not answer within {ETCD_READY_TIMEOUT:?}: {e}"
                    )))
                }
                Err(_) => {}
            }
            if let Some(etcd) = self.etcd.as_mut() {
                if let Some(status) = etcd.try_wait() {
                    return Err(ControlplaneError::Run(format!(
                        "etcd exited ({status}); see {}",
                        self.dir.join("etcd.log").display()
                    )));
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The datastore as a client on the node sees it. etcd listens on the node namespace's
    /// loopback, so the client is created on a thread that entered that namespace (the
    /// client's runtime threads are spawned from it and inherit it).
    fn open_store(&self) -> Result<Arc<dyn Datastore>> {
        let pairs: Vec<(String, String)> = self.env.clone();
        let lookup = move |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let config = datastore::DatastoreConfig::from_lookup(lookup)
            .map_err(|e| ControlplaneError::Run(format!("datastore configuration: {e}")))?;
        match self.kind {
            StoreKind::Embedded => Ok(datastore::open(&config)?),
            StoreKind::Etcd => {
                let netns = format!("/var/run/netns/{}", self.lab.node_netns());
                std::thread::spawn(move || -> Result<Arc<dyn Datastore>> {
                    let f =
                        std::fs::File::open(&netns).map_err(io_err(format!("opening {netns}")))?;
                    // SAFETY: setns(2) on this short-lived thread only, with a valid fd.
                    let rc = unsafe {
                        libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET)
                    };
                    if rc != 0 {
                        return Err(io_err(format!("entering {netns}"))(
                            std::io::Error::last_os_error(),
                        ));
                    }
                    Ok(datastore::open(&config)?)
                })
                .join()
                .map_err(|_| {
                    ControlplaneError::Run("the datastore client thread panicked".into())
                })?
            }
        }
    }

    /// Starts `brindle-node` in agent mode and waits until its control socket answers.
    fn start_node(&mut self) -> Result<()> {
        self.spawn_node()?;
        let started = self.node_started.unwrap_or_else(Instant::now);
        let deadline = started + NODE_READY_TIMEOUT;
        while Instant::now() < deadline && !cmd::interrupted() {
            if fetch_stats(&self.socket()).is_ok() {
                return Ok(());
            }
            self.check_node_alive()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(ControlplaneError::Run(format!(
            "brindle-node did not open its control socket within {NODE_READY_TIMEOUT:?}; log:\n{}",
            self.log_tail()
        )))
    }

    /// Starts `brindle-node` in agent mode, its stderr followed by a [`NodeLog`].
    fn spawn_node(&mut self) -> Result<()> {
        let started = Instant::now();
        let mut node = NodeLaunch::new(
            self.lab.node_netns(),
            self.bin_dir.join("brindle-node"),
            self.dir.join("node.log"),
        )
        .envs(self.env.iter().cloned())
        .piped_stderr()
        .spawn()?;
        self.node_log = node.take_stderr().map(NodeLog::follow);
        self.node = Some(node);
        self.node_started = Some(started);
        Ok(())
    }

    fn check_node_alive(&mut self) -> Result<()> {
        if let Some(status) = self.node.as_mut().and_then(NodeProcess::try_wait) {
            return Err(ControlplaneError::Run(format!(
                "brindle-node exited ({status}); log:\n{}",
                self.log_tail()
            )));
        }
        Ok(())
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("node.sock")
    }

    fn log_tail(&self) -> String {
        self.node_log.as_ref().map(|l| l.tail()).unwrap_or_default()
    }

    fn cni(&self) -> CniPlugin {
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
            bin_dir: self.bin_dir.clone(),
            plugin: "brindle-cni".into(),
            env,
        }
    }

    /// A container id whose first 11 characters (the host veth's name) are unique in this run.
    /// 24 characters, not a runtime's 64: brindle-cni refuses WorkloadEndpoint names longer
    /// than 63 characters (`<node>-cni-<id>-eth0`).
    fn container_id(&self, index: usize) -> String {
        let lab = fnv1a32(self.name().as_bytes()) & 0xff_ffff;
        format!("{lab:06x}{index:05x}0123456789abc")
    }

    /// Creates namespace `<lab>-<suffix>` (deleted on drop) and returns its name.
    fn add_netns(&mut self, suffix: &str) -> Result<String> {
        let ns = format!("{}-{suffix}", self.name());
        cmd::run(&["ip", "netns", "add", &ns], CONFIG_TIMEOUT)?;
        self.containers.push(ns.clone());
        Ok(ns)
    }

    /// `brindle-cni ADD` for the container in `ns`; its address and how long ADD took.
    fn cni_add(&self, ns: &str, index: usize) -> Result<(Ipv4Addr, Duration)> {
        let out = self
            .cni()
            .invoke(
                &self.lab.node_netns(),
                "ADD",
                &self.container_id(index),
                &PathBuf::from(format!("/var/run/netns/{ns}")),
                "eth0",
                &netconf(NETWORK, &[], 1500, &self.name()),
            )
            .map_err(io_err("running brindle-cni ADD"))?;
        if !out.success {
            return Err(ControlplaneError::Run(format!(
                "CNI ADD for {ns} failed: {}\n{}",
                out.stdout, out.stderr
            )));
        }
        let result = out.json();
        let ip = result["ips"][0]["address"]
            .as_str()
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| {
                ControlplaneError::Run(format!(
                    "CNI ADD for {ns}: no IPv4 address in {}",
                    out.stdout
                ))
            })?;
        Ok((ip, out.elapsed))
    }

    fn cni_del(&self, ns: &str, index: usize) -> Result<Duration> {
        let out = self
            .cni()
            .invoke(
                &self.lab.node_netns(),
                "DEL",
                &self.container_id(index),
                &PathBuf::from(format!("/var/run/netns/{ns}")),
                "eth0",
                &netconf(NETWORK, &[], 1500, &self.name()),
            )
            .map_err(io_err("running brindle-cni DEL"))?;
        if !out.success {
            return Err(ControlplaneError::Run(format!(
                "CNI DEL for {ns} failed: {}\n{}",
                out.stdout, out.stderr
            )));
        }
        Ok(out.elapsed)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            node.stop(brindle_node::STOP_GRACE);
        }
        for ns in self.containers.drain(..).rev() {
            let _ = cmd::run_unchecked(&["ip", "netns", "del", &ns], CONFIG_TIMEOUT);
        }
        self.store = None;
        if let Some(etcd) = self.etcd.take() {
            etcd.terminate(Duration::from_secs(5));
        }
        let _ = self.lab.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `<tag><pid in base 36><run>`: unique across processes and across runs of one process,
/// at most 8 characters (the lab's limit).
fn lab_name(tag: &str) -> String {
    let name = format!("{tag}{}", lab::run::run_tag(5));
    name.chars().take(lab::MAX_NAME_LEN).collect()
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The node's stats document (see control's `stats` module: one JSON document per connection).
fn fetch_stats(socket: &Path) -> Result<serde_json::Value> {
    brindle_node::read_stats(socket)
        .map_err(|e| ControlplaneError::Run(format!("stats from {}: {e}", socket.display())))
}

/// Items the node's last apply reported as `missing` interfaces.
fn missing_count(stats: &serde_json::Value) -> usize {
    stats["failures"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter(|x| {
                    x["kind"]
                        .as_str()
                        .is_some_and(|k| k.eq_ignore_ascii_case("missing"))
                })
                .count()
        })
        .unwrap_or(0)
}

// ---- CNI ADD-to-forwarding -------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct CniLatencyOptions {
    /// Where `brindle-node`, `brindle-cni` and `brindle-ipam` are.
    pub bin_dir: PathBuf,
    pub workloads: usize,
    pub datastore: StoreKind,
}

#[derive(Clone, Debug, Serialize)]
pub struct CniLatencyReport {
    pub benchmark: &'static str,
    pub datastore: StoreKind,
    pub node_mode: &'static str,
    pub workloads: usize,
    /// Duration of `brindle-cni ADD` (process start to exit, IPAM included).
    pub add: Summary,
    /// From the start of ADD to the first echo reply from the new workload.
    pub add_to_forwarding: Summary,
    /// Duration of `brindle-cni DEL`.
    pub del: Summary,
    /// Workloads that did not answer within the forwarding timeout (not in `add_to_forwarding`).
    pub unreachable: usize,
    /// How the reply was detected.
    pub probe: String,
    /// Every sample in workload order (ms), to see whether the cost grows with the number of
    /// workloads already attached.
    pub samples: CniSamples,
    pub total_secs: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CniSamples {
    pub add_ms: Vec<f64>,
    /// `None` for a workload that did not answer in time.
    pub add_to_forwarding_ms: Vec<Option<f64>>,
    pub del_ms: Vec<f64>,
}

fn millis(d: &Duration) -> f64 {
    round3(d.as_secs_f64() * 1e3)
}

/// Plugs in `workloads` containers one after the other and times ADD, ADD-to-forwarding and DEL.
pub fn run_cni_latency(opts: &CniLatencyOptions) -> Result<CniLatencyReport> {
    if opts.workloads == 0 || opts.workloads > MAX_WORKLOADS {
        return Err(ControlplaneError::Invalid {
            field: "workloads",
            value: opts.workloads.to_string(),
            reason: format!("between 1 and {MAX_WORKLOADS}"),
        });
    }
    check_binaries(
        &opts.bin_dir,
        &["brindle-node", "brindle-cni", "brindle-ipam"],
    )?;
    let started = Instant::now();
    let mut cluster = Cluster::new("cl", &opts.bin_dir, opts.datastore)?;
    cluster.start_node()?;

    // The prober, and one warm-up workload that proves the prober itself is attached, so that
    // the first timed workload does not pay for it.
    let prober = cluster.add_netns("p")?;
    cluster.cni_add(&prober, 0)?;
    let warm = cluster.add_netns("c0")?;
    let (warm_ip, _) = cluster.cni_add(&warm, WARM_UP_INDEX)?;
    let warm_deadline = Instant::now() + NODE_READY_TIMEOUT;
    if !probe_until_reply(&prober, warm_ip, warm_deadline)? {
        return Err(ControlplaneError::Run(format!(
            "warm-up workload {warm_ip} not reachable from the prober within {NODE_READY_TIMEOUT:?}; log:\n{}",
            cluster.log_tail()
        )));
    }

    let mut adds = Vec::with_capacity(opts.workloads);
    let mut forwarding = Vec::with_capacity(opts.workloads);
    let mut forwarding_in_order = Vec::with_capacity(opts.workloads);
    let mut unreachable = 0;
    let mut plugged = Vec::with_capacity(opts.workloads);
    for i in 1..=opts.workloads {
        if cmd::interrupted() {
            return Err(ControlplaneError::Run("interrupted".into()));
        }
        let ns = cluster.add_netns(&format!("c{i}"))?;
        let t0 = Instant::now();
        let (ip, add) = cluster.cni_add(&ns, i)?;
        adds.push(add);
        plugged.push((ns, i));
        if probe_until_reply(&prober, ip, t0 + FORWARDING_TIMEOUT)? {
            let elapsed = t0.elapsed();
            forwarding.push(elapsed);
            forwarding_in_order.push(Some(millis(&elapsed)));
        } else {
            forwarding_in_order.push(None);
            unreachable += 1;
            cluster.check_node_alive()?;
            note(&format!(
                "workload {i} ({ip}) did not answer within {FORWARDING_TIMEOUT:?}"
            ));
        }
    }
    let mut dels = Vec::with_capacity(plugged.len());
    for (ns, i) in &plugged {
        dels.push(cluster.cni_del(ns, *i)?);
    }
    Ok(CniLatencyReport {
        benchmark: "cni-latency",
        datastore: opts.datastore,
        node_mode: "interrupt",
        workloads: opts.workloads,
        add: Summary::of(&adds),
        add_to_forwarding: Summary::of(&forwarding),
        del: Summary::of(&dels),
        unreachable,
        samples: CniSamples {
            add_ms: adds.iter().map(millis).collect(),
            add_to_forwarding_ms: forwarding_in_order,
            del_ms: dels.iter().map(millis).collect(),
        },
        probe: "ping -c 1 -i 0.01 from an already attached container (10 ms between echo requests)"
            .into(),
        total_secs: round3(started.elapsed().as_secs_f64()),
    })
}

/// Progress notes go to stderr: the report itself is on stdout.
fn note(msg: &str) {
    eprintln!("brindle-perf: {msg}");
}

/// Pings `to` from namespace `from` every 10 ms until a reply or `deadline`. `ping -c 1 -w T`
/// exits at the first reply (or at the first ICMP error, after which we start it again).
fn probe_until_reply(from: &str, to: Ipv4Addr, deadline: Instant) -> Result<bool> {
    let target = to.to_string();
    // At most one attempt per 10 ms even if ping keeps failing fast.
    let max_attempts = (FORWARDING_TIMEOUT.max(NODE_READY_TIMEOUT).as_millis() / 10) as usize;
    for _ in 0..max_attempts {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || cmd::interrupted() {
            return Ok(false);
        }
        let secs = format!("{}", left.as_secs().max(1));
        let out = cmd::run_unchecked(
            &[
                "ip", "netns", "exec", from, "ping", "-n", "-q", "-c", "1", "-i", "0.01", "-w",
                &secs, &target,
            ],
            left + Duration::from_secs(2),
        );
        match out {
            Ok(o) if o.status.success() => return Ok(true),
            Ok(_) | Err(cmd::CmdError::Timeout { .. }) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

fn check_binaries(dir: &Path, names: &[&str]) -> Result<()> {
    for name in names {
        if !dir.join(name).is_file() {
            return Err(ControlplaneError::Invalid {
                field: "brindle-bin-dir",
                value: dir.display().to_string(),
                reason: format!("no {name} there (cargo build --release -p control)"),
            });
        }
    }
    Ok(())
}

// ---- resync of N endpoints -------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct ResyncOptions {
    pub bin_dir: PathBuf,
    pub endpoints: usize,
    pub datastore: StoreKind,
    /// Parallel writers while populating the datastore.
    pub writers: usize,
    /// On etcd: cut the node's etcd connections afterwards and time its resync.
    pub reconnect: bool,
    /// How long the node may take from start to every endpoint applied.
    pub timeout: Duration,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResyncReport {
    pub benchmark: &'static str,
    pub datastore: StoreKind,
    pub endpoints: usize,
    /// Populating the datastore (not the node's work).
    pub write_secs: f64,
    pub writes_per_sec: f64,
    /// Process start to the `datastore synced` log line: registration, list of pools,
    /// endpoints and blocks, and the view built (the dataplane not yet programmed).
    pub synced_secs: Option<f64>,
    /// `endpoints=` of that line.
    pub synced_endpoints: usize,
    /// Process start to the stats socket listing every endpoint as a missing interface: the
    /// first dataplane apply over all of them is done. The honest "node is in sync" figure.
    pub programmed_secs: Option<f64>,
    pub missing_reported: usize,
    /// `endpoints / programmed_secs`.
    pub endpoints_per_sec: Option<f64>,
    /// On etcd with reconnect: from cutting the node's etcd connections (`ss -K`) to its next
    /// `datastore synced` line (reconnect, list, view rebuilt).
    pub reconnect_resync_secs: Option<f64>,
    /// Log lines the node wrote during the run (warnings are one per missing interface per
    /// apply, retried every second).
    pub node_log_lines: u64,
    pub node_log_warnings: u64,
    /// When the node did not get there within the timeout: the last warning it logged.
    pub node_error: Option<String>,
    pub total_secs: f64,
}

/// Writes `endpoints` WorkloadEndpoints of the node (interfaces that do not exist), starts the
/// node and times its sync.
pub fn run_resync(opts: &ResyncOptions) -> Result<ResyncReport> {
    if opts.endpoints == 0 || opts.endpoints > MAX_ENDPOINTS {
        return Err(ControlplaneError::Invalid {
            field: "endpoints",
            value: opts.endpoints.to_string(),
            reason: format!("between 1 and {MAX_ENDPOINTS}"),
        });
    }
    if opts.writers == 0 || opts.writers > 64 {
        return Err(ControlplaneError::Invalid {
            field: "writers",
            value: opts.writers.to_string(),
            reason: "between 1 and 64".into(),
        });
    }
    if opts.timeout.is_zero() || opts.timeout > MAX_RESYNC_TIMEOUT {
        return Err(ControlplaneError::Invalid {
            field: "timeout",
            value: format!("{:?}", opts.timeout),
            reason: format!("between 1 s and {MAX_RESYNC_TIMEOUT:?}"),
        });
    }
    check_binaries(&opts.bin_dir, &["brindle-node"])?;
    let started = Instant::now();
    let mut cluster = Cluster::new("rs", &opts.bin_dir, opts.datastore)?;
    let store = cluster.store()?;
    let node = cluster.name();

    let t_write = Instant::now();
    write_endpoints(&store, &node, opts.endpoints, opts.writers)?;
    let write_secs = t_write.elapsed().as_secs_f64();

    // Not `start_node`: the control socket opens only after the first sync, and a node that
    // cannot sync is a result to report, not a setup failure.
    cluster.spawn_node()?;
    let t0 = cluster.node_started.unwrap_or(started);
    let log = cluster.node_log.clone().unwrap_or_default();
    let deadline = t0 + opts.timeout;
    let mut programmed = None;
    let mut missing = 0;
    while Instant::now() < deadline && !cmd::interrupted() {
        if let Ok(stats) = fetch_stats(&cluster.socket()) {
            missing = missing_count(&stats);
            if missing >= opts.endpoints {
                programmed = Some(t0.elapsed());
                break;
            }
        }
        cluster.check_node_alive()?;
        // The resolution of `programmed_secs`.
        std::thread::sleep(Duration::from_millis(20));
    }
    let first_sync = log.synced().first().copied();
    let mut node_error = None;
    if programmed.is_none() {
        note(&format!(
            "the node did not report {} missing interfaces within {:?} (saw {missing})",
            opts.endpoints, opts.timeout
        ));
        node_error = Some(
            log.last_warning()
                .unwrap_or_else(|| "no warning logged".into()),
        );
    }

    let mut reconnect_resync_secs = None;
    if opts.reconnect && opts.datastore == StoreKind::Etcd && programmed.is_some() {
        reconnect_resync_secs = reconnect_resync(&mut cluster, &log)?;
    }

    let programmed_secs = programmed.map(|d| round3(d.as_secs_f64()));
    Ok(ResyncReport {
        benchmark: "resync",
        datastore: opts.datastore,
        endpoints: opts.endpoints,
        write_secs: round3(write_secs),
        writes_per_sec: round3(opts.endpoints as f64 / write_secs.max(1e-9)),
        synced_secs: first_sync
            .map(|(at, _)| round3(at.saturating_duration_since(t0).as_secs_f64())),
        synced_endpoints: first_sync.map_or(0, |(_, n)| n),
        programmed_secs,
        missing_reported: missing,
        endpoints_per_sec: programmed_secs.map(|s| round3(opts.endpoints as f64 / s.max(1e-9))),
        reconnect_resync_secs,
        node_log_lines: log.lines.load(Ordering::Relaxed),
        node_log_warnings: log.warnings.load(Ordering::Relaxed),
        node_error,
        total_secs: round3(started.elapsed().as_secs_f64()),
    })
}

/// Cuts every client connection to etcd in the node namespace (`ss -K`, the node's and this
/// bench's; etcd itself stays up) and times the node's full resync: from the cut to its next
/// `datastore synced` line. The agent lists everything again after a lost connection exactly
/// as after a compacted watch, so this is also the cost of a resync after a compaction.
fn reconnect_resync(cluster: &mut Cluster, log: &NodeLog) -> Result<Option<f64>> {
    // The agent waits 1 s between resync attempts; start clear of the first sync's attempt.
    std::thread::sleep(Duration::from_millis(1500));
    let syncs_before = log.synced().len();
    let cut = Instant::now();
    cmd::run(
        &[
            "ip",
            "netns",
            "exec",
            &cluster.lab.node_netns(),
            "ss",
            "-K",
            "-t",
            "dport",
            "=",
            ":2379",
        ],
        CONFIG_TIMEOUT,
    )?;
    let deadline = cut + Duration::from_secs(60);
    while Instant::now() < deadline && !cmd::interrupted() {
        if let Some((at, _)) = log.synced().get(syncs_before) {
            return Ok(Some(round3(
                at.saturating_duration_since(cut).as_secs_f64(),
            )));
        }
        cluster.check_node_alive()?;
        std::thread::sleep(Duration::from_millis(5));
    }
    note("the node did not resync within 60 s of losing its etcd connection");
    Ok(None)
}

/// The WorkloadEndpoint a CNI ADD would have written for container `index` of `node`, with a
/// host interface that does not exist.
fn phantom_endpoint(node: &str, index: usize) -> resources::Resource {
    let container_id = format!("resync{index:010x}");
    let name = resources::workload_endpoint_name(node, "cni", &container_id, "eth0");
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 0, 0)) + 1 + index as u32);
    let spec = resources::WorkloadEndpointSpec {
        orchestrator: "cni".into(),
        workload: container_id.clone(),
        node: node.into(),
        container_id,
        endpoint: "eth0".into(),
        interface_name: format!("calr{index:011x}"),
        mac: "02:00:00:00:00:01".into(),
        ip_networks: vec![format!("{ip}/32")],
        profiles: vec![NETWORK.into()],
        ..resources::WorkloadEndpointSpec::default()
    };
    let metadata = resources::Metadata::namespaced(resources::DEFAULT_NAMESPACE, &name);
    resources::Resource::from(resources::Object::new(metadata, spec))
}

fn write_endpoints(
    store: &Arc<dyn Datastore>,
    node: &str,
    count: usize,
    writers: usize,
) -> Result<()> {
    let errors: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let store = store.clone();
                s.spawn(move || -> std::result::Result<(), String> {
                    for i in (w..count).step_by(writers) {
                        let wep = phantom_endpoint(node, i);
                        store
                            .put(&wep.key(), &wep.to_stored_json())
                            .map_err(|e| format!("endpoint {i}: {e}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("writer panicked".into()))
                    .err()
            })
            .collect()
    });
    match errors.first() {
        None => Ok(()),
        Some(e) => Err(ControlplaneError::Run(format!("writing endpoints: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_uses_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Summary::of(&samples);
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(Summary::of(&[]).count, 0);
    }

    #[test]
    fn synced_lines_are_found_through_colour_codes() {
        let log = NodeLog::default();
        log.take_line("2026-11-22T04:00:00Z \u{1b}[32m INFO\u{1b}[0m control::agent: datastore synced \u{1b}[3mendpoints\u{1b}[0m\u{1b}[2m=\u{1b}[0m10000 \u{1b}[3mrevision\u{1b}[0m\u{1b}[2m=\u{1b}[0m7\n");
        let synced = log.synced();
        assert_eq!(synced.len(), 1);
        assert_eq!(synced[0].1, 10000);
    }

    #[test]
    fn lab_names_fit_the_lab_limit_and_differ_per_run() {
        let a = lab_name("cl");
        let b = lab_name("cl");
        assert!(a.len() <= lab::MAX_NAME_LEN && a != b, "{a} {b}");
    }
}
