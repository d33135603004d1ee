//! `brindle-perf scale`: does forwarding slow down when many idle workloads are attached?
//!
//! One lab with two real workloads (w1 sends UDP to w2 through brindle-node) and, next to
//! them, `idle` more workload interfaces that carry no traffic. The same node binary runs
//! twice per round in the same lab: once programmed with the two workloads only ("few"), once
//! with the idle ones attached as well ("many"); the ratio many/few is the figure (goal >= 0.8).
//! Both runs happen in one invocation, one after the other, because only ratios measured side
//! by side mean anything on a noisy machine.
//!
//! Plugging 500 workloads with brindle-cni (a namespace, a veth, addresses and routes each,
//! ~15 commands) would take minutes; what the node's worker sees of an idle workload is only
//! its host-side veth with an AF_XDP socket and the XDP program. So the idle workloads are veth
//! pairs made with two `ip -batch` calls: the `cali…` end in the node namespace (listed in
//! node.toml like any workload, with an address of the pool), the other end in one shared
//! namespace `<lab>-idle`. The two real workloads are full Calico-style workloads (`lab`).
//!
//! Placement: the generator runs on CPU 0 (`e2e::GENERATOR_CPU`); in poll mode the node's
//! worker is pinned to CPU 1; in interrupt mode it is not pinned and shares the cores.

mod report;

pub use report::*;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::e2e::{self, io_err, E2eError, UdpParams, NODE_CPU};
use crate::rounds::{mean, ratio};
use lab::cmd::{self, ChildGuard};
use lab::node::NodeLaunch;
use lab::{Lab, LabSpec};

/// Most idle workloads a run attaches (each costs the node a socket and an 8 MiB UMEM).
pub const MAX_IDLE: usize = 2000;
/// How long brindle-node gets to attach every port and start forwarding.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(120);
const NODE_STOP_GRACE: Duration = Duration::from_secs(10);
const CONFIG_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Debug)]
pub struct ScaleOptions {
    pub brindle_node: PathBuf,
    /// This benchmark's own executable (`udp-send`, `udp-sink`).
    pub perf_exe: PathBuf,
    pub duration: Duration,
    pub frame_size: usize,
    pub batch: usize,
    pub port: u16,
    /// Idle workloads attached in the "many" runs.
    pub idle: usize,
    /// Worker modes to measure ("poll", "interrupt").
    pub modes: Vec<String>,
    /// few/many pairs per mode; the report keeps the mean of each.
    pub rounds: usize,
    /// Scratch directory for node.toml, the control socket and logs.
    pub work_dir: PathBuf,
}

/// One measurement: the node with `idle` idle workloads attached.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleRun {
    pub idle_workloads: usize,
    pub pps_offered: f64,
    pub pps_delivered: f64,
    pub sent: u64,
    pub received: u64,
    /// XDP programs attached in the node namespace when the run started (ports served).
    pub attached_interfaces: usize,
}

/// One worker mode: every run of both kinds, their means, and the ratio many/few.
#[derive(Clone, Debug, Serialize)]
pub struct ModeResult {
    pub mode: String,
    pub few: Vec<ScaleRun>,
    pub many: Vec<ScaleRun>,
    pub few_pps_delivered: f64,
    pub many_pps_delivered: f64,
    /// many / few delivered pps, from the same run of this command.
    pub ratio_many_to_few: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScaleReport {
    pub frame_size: usize,
    pub duration_secs: f64,
    pub idle_workloads: usize,
    pub rounds: usize,
    pub generator_cpu: usize,
    pub node_cpu: usize,
    pub modes: Vec<ModeResult>,
}

/// Builds the lab and the idle veths, runs every mode, takes everything down.
pub fn run(opts: &ScaleOptions) -> Result<ScaleReport, E2eError> {
    if opts.idle == 0 || opts.idle > MAX_IDLE {
        return Err(E2eError::Run(format!(
            "invalid idle {}: between 1 and {MAX_IDLE}",
            opts.idle
        )));
    }
    if opts.rounds == 0 || opts.rounds > 20 {
        return Err(E2eError::Run(format!(
            "invalid rounds {}: between 1 and 20",
            opts.rounds
        )));
    }
    for mode in &opts.modes {
        if mode != "poll" && mode != "interrupt" {
            return Err(E2eError::Run(format!(
                "invalid mode {mode:?}: expected poll or interrupt"
            )));
        }
    }
    if !opts.brindle_node.is_file() {
        return Err(E2eError::Run(format!(
            "brindle-node {} is not a file",
            opts.brindle_node.display()
        )));
    }
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    let name = format!("sq{}", std::process::id() % 100_000);
    let lab = Lab::up(&LabSpec::new(&name, 2))?;
    let idle = IdleWorkloads::up(&lab, opts.idle)?;
    let mut modes = Vec::new();
    for mode in &opts.modes {
        let mut few = Vec::new();
        let mut many = Vec::new();
        for _ in 0..opts.rounds {
            few.push(measure(&lab, &idle, 0, mode, opts)?);
            many.push(measure(&lab, &idle, opts.idle, mode, opts)?);
        }
        let few_pps = mean(few.iter().map(|r| r.pps_delivered));
        let many_pps = mean(many.iter().map(|r| r.pps_delivered));
        modes.push(ModeResult {
            mode: mode.clone(),
            few,
            many,
            few_pps_delivered: few_pps,
            many_pps_delivered: many_pps,
            ratio_many_to_few: ratio(Some(many_pps), Some(few_pps)),
        });
    }
    drop(idle);
    drop(lab);
    Ok(ScaleReport {
        frame_size: opts.frame_size,
        duration_secs: opts.duration.as_secs_f64(),
        idle_workloads: opts.idle,
        rounds: opts.rounds,
        generator_cpu: e2e::GENERATOR_CPU,
        node_cpu: NODE_CPU,
        modes,
    })
}

/// Host-side name of idle workload `k` (from 1): `cali` + 11 characters, like Calico's.
pub fn idle_interface(k: usize) -> String {
    format!("calisq{:09x}", k)
}

/// Address of idle workload `k` (from 1): from 192.168.16.1 on, inside the lab's /16 pool
/// and clear of the real workloads (192.168.0.1, .2).
pub fn idle_ip(k: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 16, 0)) + k as u32)
}

/// The `[[workload]]` entries of `count` idle workloads, for node.toml.
pub fn idle_workloads_toml(count: usize) -> String {
    let mut out = String::new();
    for k in 1..=count {
        out.push_str(&format!(
            "\n[[workload]]\ninterface = \"{}\"\nips = [\"{}\"]\n",
            idle_interface(k),
            idle_ip(k)
        ));
    }
    out
}

/// The idle veths: `cali…` ends in the node namespace, peers in `<lab>-idle`. Dropping it
/// deletes that namespace, which destroys the pairs.
struct IdleWorkloads {
    netns: String,
}

impl IdleWorkloads {
    fn up(lab: &Lab, count: usize) -> Result<IdleWorkloads, E2eError> {
        let netns = format!("{}-idle", lab.spec().name);
        if lab::netns_exists(&netns) {
            return Err(E2eError::Run(format!(
                "network namespace {netns} already exists"
            )));
        }
        cmd::run(&["ip", "netns", "add", &netns], CONFIG_TIMEOUT)?;
        let idle = IdleWorkloads { netns };
        let node = lab.node_netns();
        let mut node_batch = String::new();
        let mut peer_batch = String::new();
        for k in 1..=count {
            let cali = idle_interface(k);
            node_batch.push_str(&format!(
                "link add {cali} type veth peer name i{k} netns {}\n",
                idle.netns
            ));
            node_batch.push_str(&format!("link set {cali} up\n"));
            peer_batch.push_str(&format!("link set i{k} up\n"));
        }
        run_batch(&node, &node_batch, &lab_file(lab, "idle-node.batch"))?;
        run_batch(&idle.netns, &peer_batch, &lab_file(lab, "idle-peer.batch"))?;
        Ok(idle)
    }
}

impl Drop for IdleWorkloads {
    fn drop(&mut self) {
        if let Err(e) = cmd::run(&["ip", "netns", "del", &self.netns], CONFIG_TIMEOUT) {
            eprintln!("deleting {}: {e}", self.netns);
        }
    }
}

fn lab_file(lab: &Lab, what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}-{what}", lab.spec().name))
}

/// `ip -n ns -batch file` with `commands` written to `file` (removed afterwards).
fn run_batch(ns: &str, commands: &str, file: &Path) -> Result<(), E2eError> {
    std::fs::write(file, commands).map_err(io_err(format!("writing {}", file.display())))?;
    let path = file.to_string_lossy().to_string();
    let result = cmd::run(&["ip", "-n", ns, "-batch", &path], CONFIG_TIMEOUT);
    let _ = std::fs::remove_file(file);
    result?;
    Ok(())
}

/// Starts brindle-node with the two workloads and `idle` idle ones, waits until every port is
/// attached and w1 reaches w2, measures UDP w1 -> w2, stops the node.
fn measure(
    lab: &Lab,
    _idle: &IdleWorkloads,
    idle: usize,
    mode: &str,
    opts: &ScaleOptions,
) -> Result<ScaleRun, E2eError> {
    let config_path = opts.work_dir.join("node.toml");
    let socket = opts.work_dir.join("node.sock");
    let log_path = opts.work_dir.join(format!("node-{mode}-{idle}.log"));
    let cores: &[usize] = if mode == "poll" { &[NODE_CPU] } else { &[] };
    let mut config = lab.node_config_toml_pinned(mode, &socket, cores);
    config.push_str(&idle_workloads_toml(idle));
    std::fs::write(&config_path, config)
        .map_err(io_err(format!("writing {}", config_path.display())))?;
    let mut node = NodeLaunch::new(lab.node_netns(), &opts.brindle_node, &log_path)
        .config(&config_path)
        .spawn()?;
    // The two workloads, the uplink and every idle workload.
    let expected = 3 + idle;
    let started = Instant::now();
    let attached = loop {
        let n = attached_interfaces(&lab.node_netns())?;
        if n >= expected && reachable(lab)? {
            break n;
        }
        node.check_running("before forwarding")?;
        if started.elapsed() > NODE_READY_TIMEOUT || cmd::interrupted() {
            return Err(E2eError::Run(format!(
                "brindle-node attached {n} of {expected} interfaces within {NODE_READY_TIMEOUT:?}; log: {}",
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (w1, w2) = match (lab.workload(1), lab.workload(2)) {
        (Some(a), Some(b)) => (a.clone(), b.clone()),
        _ => return Err(E2eError::Run("the lab needs two workloads".into())),
    };
    let ready = opts
        .work_dir
        .join(format!("sink-ready-{}", lab.spec().name));
    let params = UdpParams {
        perf_exe: opts.perf_exe.clone(),
        duration: opts.duration,
        frame_size: opts.frame_size,
        batch: opts.batch,
        port: opts.port,
    };
    let result = e2e::udp_between(&w1.netns, &w2.netns, w2.ip, &ready, &params);
    node.stop(NODE_STOP_GRACE);
    let (send, sink, _) = result?;
    let secs = if send.secs > 0.0 { send.secs } else { f64::NAN };
    let run = ScaleRun {
        idle_workloads: idle,
        pps_offered: send.sent as f64 / secs,
        pps_delivered: sink.received as f64 / secs,
        sent: send.sent,
        received: sink.received,
        attached_interfaces: attached,
    };
    eprintln!(
        "scale: {mode} idle={idle}: {:.0} pps delivered ({} interfaces attached)",
        run.pps_delivered, attached
    );
    Ok(run)
}

/// Interfaces in `netns` with an XDP program attached (`ip -o link` shows `prog/xdp`).
pub(crate) fn attached_interfaces(netns: &str) -> Result<usize, E2eError> {
    let out = cmd::run(&["ip", "-o", "-n", netns, "link", "show"], CONFIG_TIMEOUT)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("prog/xdp"))
        .count())
}

fn reachable(lab: &Lab) -> Result<bool, E2eError> {
    let (Some(w1), Some(w2)) = (lab.workload(1), lab.workload(2)) else {
        return Err(E2eError::Run("the lab needs two workloads".into()));
    };
    Ok(lab::ping::answers(&w1.netns, w2.ip)?)
}

// ---------------------------------------------------------------------------------------------
// 1 vs 2 uplink queues
// ---------------------------------------------------------------------------------------------
//
// `brindle-perf scale --queues 1,2`: UDP from outside the node, through its uplink, to a
// workload. The uplink is a veth made with `q` queues on each side; the node serves every
// queue with one worker each (capped by the cores). Traffic reaches both queues because two
// generators run, pinned to CPUs 0 and 1, and XPS on the outside end maps CPU `i` to TX queue
// `i` (a veth delivers on the RX queue of the sender's TX queue). With one queue both
// generators land on it. The same two generators run for every queue count, one after the
// other in one invocation, so the ratio compares like with like.

/// Most uplink queues measured.
pub const MAX_QUEUES: u32 = 8;
/// Outside end of the uplink (the node's end is 10.99.0.1).
const OUTSIDE_IP: &str = "10.99.0.2";

#[derive(Clone, Debug)]
pub struct QueuesOptions {
    pub brindle_node: PathBuf,
    pub perf_exe: PathBuf,
    pub duration: Duration,
    pub frame_size: usize,
    pub batch: usize,
    pub port: u16,
    /// Uplink queue counts to measure, e.g. [1, 2].
    pub queues: Vec<u32>,
    /// Worker mode ("poll" or "interrupt").
    pub mode: String,
    pub rounds: usize,
    pub work_dir: PathBuf,
}

/// One measurement with `queues` uplink queues.
#[derive(Clone, Debug, Serialize)]
pub struct QueuesRun {
    pub queues: u32,
    /// Fastpath worker threads the node ran (counted in /proc).
    pub workers: usize,
    pub pps_offered: f64,
    pub pps_delivered: f64,
    pub sent: u64,
    pub received: u64,
}

/// Every run of one queue count, their mean and its ratio to the first queue count's.
#[derive(Clone, Debug, Serialize)]
pub struct QueueCountResult {
    pub queues: u32,
    pub runs: Vec<QueuesRun>,
    pub pps_delivered: f64,
    /// pps_delivered / the first queue count's, from the same invocation.
    pub ratio_to_first: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct QueuesReport {
    pub frame_size: usize,
    pub duration_secs: f64,
    pub rounds: usize,
    pub mode: String,
    /// CPUs the generators are pinned to (one generator each).
    pub generator_cpus: Vec<usize>,
    pub online_cpus: usize,
    pub results: Vec<QueueCountResult>,
}

/// Runs every queue count `rounds` times (interleaved) in one lab; takes everything down.
pub fn run_queues(opts: &QueuesOptions) -> Result<QueuesReport, E2eError> {
    if opts.queues.is_empty() || opts.queues.iter().any(|q| !(1..=MAX_QUEUES).contains(q)) {
        return Err(E2eError::Run(format!(
            "invalid queues {:?}: each between 1 and {MAX_QUEUES}",
            opts.queues
        )));
    }
    if opts.rounds == 0 || opts.rounds > 20 {
        return Err(E2eError::Run(format!(
            "invalid rounds {}: between 1 and 20",
            opts.rounds
        )));
    }
    if opts.mode != "poll" && opts.mode != "interrupt" {
        return Err(E2eError::Run(format!(
            "invalid mode {:?}: expected poll or interrupt",
            opts.mode
        )));
    }
    if !opts.brindle_node.is_file() {
        return Err(E2eError::Run(format!(
            "brindle-node {} is not a file",
            opts.brindle_node.display()
        )));
    }
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    let name = format!("sqq{}", std::process::id() % 100_000);
    let lab = Lab::up(&LabSpec {
        uplink: false,
        ..LabSpec::new(&name, 1)
    })?;
    let outside = Outside::up(&lab)?;
    let cpus = crate::stats::online_cpus();
    let generator_cpus: Vec<usize> = (0..2).map(|i| i % cpus.max(1)).collect();
    let mut runs: Vec<Vec<QueuesRun>> = opts.queues.iter().map(|_| Vec::new()).collect();
    for _ in 0..opts.rounds {
        for (i, &q) in opts.queues.iter().enumerate() {
            outside.uplink(&lab, q)?;
            runs[i].push(measure_queues(&lab, &outside, q, &generator_cpus, opts)?);
        }
    }
    drop(outside);
    drop(lab);
    let means: Vec<f64> = runs
        .iter()
        .map(|r| mean(r.iter().map(|x| x.pps_delivered)))
        .collect();
    let results = opts
        .queues
        .iter()
        .zip(runs)
        .zip(&means)
        .map(|((&queues, runs), &pps)| QueueCountResult {
            queues,
            runs,
            pps_delivered: pps,
            ratio_to_first: ratio(Some(pps), Some(means[0])),
        })
        .collect();
    Ok(QueuesReport {
        frame_size: opts.frame_size,
        duration_secs: opts.duration.as_secs_f64(),
        rounds: opts.rounds,
        mode: opts.mode.clone(),
        generator_cpus,
        online_cpus: cpus,
        results,
    })
}

/// The namespace outside the node, at the other end of its uplink. Dropping it deletes the
/// namespace (and with it the uplink pair).
struct Outside {
    netns: String,
}

impl Outside {
    fn up(lab: &Lab) -> Result<Outside, E2eError> {
        let netns = format!("{}-out", lab.spec().name);
        if lab::netns_exists(&netns) {
            return Err(E2eError::Run(format!(
                "network namespace {netns} already exists"
            )));
        }
        cmd::run(&["ip", "netns", "add", &netns], CONFIG_TIMEOUT)?;
        let outside = Outside { netns };
        cmd::run(
            &["ip", "-n", &outside.netns, "link", "set", "lo", "up"],
            CONFIG_TIMEOUT,
        )?;
        Ok(outside)
    }

    /// (Re)makes the uplink `eth0` with `queues` queues on each side, addresses, the route
    /// to the pool through the node, and XPS: CPU `i` sends on queue `i % queues`.
    fn uplink(&self, lab: &Lab, queues: u32) -> Result<(), E2eError> {
        let node = lab.node_netns();
        let _ = cmd::run(&["ip", "-n", &node, "link", "del", "eth0"], CONFIG_TIMEOUT);
        let q = queues.to_string();
        cmd::run(
            &[
                "ip",
                "-n",
                &node,
                "link",
                "add",
                "eth0",
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "netns",
                &self.netns,
            ],
            CONFIG_TIMEOUT,
        )?;
        for (ns, addr) in [
            (node.as_str(), "10.99.0.1/24"),
            (self.netns.as_str(), "10.99.0.2/24"),
        ] {
            cmd::run(
                &[
                    "ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off", "tso", "off",
                    "gso", "off", "gro", "off",
                ],
                CONFIG_TIMEOUT,
            )?;
            cmd::run(
                &["ip", "-n", ns, "addr", "add", addr, "dev", "eth0"],
                CONFIG_TIMEOUT,
            )?;
            cmd::run(
                &["ip", "-n", ns, "link", "set", "eth0", "up"],
                CONFIG_TIMEOUT,
            )?;
        }
        cmd::run(
            &[
                "ip",
                "-n",
                &self.netns,
                "route",
                "add",
                &lab.spec().pool_cidr(),
                "via",
                "10.99.0.1",
            ],
            CONFIG_TIMEOUT,
        )?;
        if queues == 1 {
            return Ok(()); // one queue takes everything; a single-queue veth refuses XPS
        }
        let cpus = crate::stats::online_cpus().max(1);
        let mut xps = String::new();
        for queue in 0..queues as usize {
            let mask: u64 = (0..cpus.min(64))
                .filter(|c| c % queues as usize == queue)
                .fold(0, |m, c| m | 1 << c);
            xps.push_str(&format!(
                "echo {mask:x} > /sys/class/net/eth0/queues/tx-{queue}/xps_cpus; "
            ));
        }
        cmd::run(
            &["ip", "netns", "exec", &self.netns, "sh", "-c", &xps],
            CONFIG_TIMEOUT,
        )?;
        Ok(())
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        if let Err(e) = cmd::run(&["ip", "netns", "del", &self.netns], CONFIG_TIMEOUT) {
            eprintln!("deleting {}: {e}", self.netns);
        }
    }
}

/// Fastpath worker threads of process `pid`.
fn worker_threads(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("worker-"))
        })
        .count()
}

/// Starts the node on a `queues`-queue uplink, waits until the outside reaches the workload,
/// runs the two generators against the workload's sink, stops the node.
fn measure_queues(
    lab: &Lab,
    outside: &Outside,
    queues: u32,
    cpus: &[usize],
    opts: &QueuesOptions,
) -> Result<QueuesRun, E2eError> {
    let config_path = opts.work_dir.join("node.toml");
    let socket = opts.work_dir.join("node.sock");
    let log_path = opts
        .work_dir
        .join(format!("node-{}-q{queues}.log", opts.mode));
    // Top-level keys before the lab's tables; polling workers get the cores from the last
    // down, as the node picks them itself.
    let config = format!(
        "uplink = \"eth0\"\n{}\n[[route]]\nprefix = \"10.99.0.0/24\"\nvia = \"{OUTSIDE_IP}\"\n\n[hw]\nqueue_policy = \"all\"\n",
        lab.node_config_toml(&opts.mode, &socket)
    );
    std::fs::write(&config_path, config)
        .map_err(io_err(format!("writing {}", config_path.display())))?;
    let mut node = NodeLaunch::new(lab.node_netns(), &opts.brindle_node, &log_path)
        .config(&config_path)
        .spawn()?;
    let w1 = lab
        .workload(1)
        .cloned()
        .ok_or_else(|| E2eError::Run("the lab needs a workload".into()))?;
    let started = Instant::now();
    loop {
        if lab::ping::answers(&outside.netns, w1.ip)? {
            break;
        }
        node.check_running("before forwarding")?;
        if started.elapsed() > NODE_READY_TIMEOUT || cmd::interrupted() {
            return Err(E2eError::Run(format!(
                "the outside did not reach the workload; log: {}",
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let workers = node.pid().map_or(0, worker_threads);
    let ready = opts
        .work_dir
        .join(format!("sink-ready-{}", lab.spec().name));
    let result = udp_from_outside(&outside.netns, &w1.netns, w1.ip, &ready, cpus, opts);
    node.stop(NODE_STOP_GRACE);
    let (sent, secs, received) = result?;
    let secs = if secs > 0.0 { secs } else { f64::NAN };
    let run = QueuesRun {
        queues,
        workers,
        pps_offered: sent as f64 / secs,
        pps_delivered: received as f64 / secs,
        sent,
        received,
    };
    eprintln!(
        "scale: {} queues={queues} workers={workers}: {:.0} pps delivered",
        opts.mode, run.pps_delivered
    );
    Ok(run)
}

/// One sink in `to_ns`, one generator per CPU of `cpus` in `from_ns`, all at once; returns
/// (datagrams sent, the longest generator's seconds, datagrams received).
fn udp_from_outside(
    from_ns: &str,
    to_ns: &str,
    to_ip: Ipv4Addr,
    ready: &Path,
    cpus: &[usize],
    opts: &QueuesOptions,
) -> Result<(u64, f64, u64), E2eError> {
    let exe = opts.perf_exe.to_string_lossy().to_string();
    let port = opts.port.to_string();
    let sink = e2e::start_udp_sink(&exe, to_ns, opts.port, opts.duration, ready)?;
    let (size, batch, duration, dst) = (
        opts.frame_size.to_string(),
        opts.batch.to_string(),
        format!("{}", opts.duration.as_secs_f64()),
        to_ip.to_string(),
    );
    let mut generators = Vec::new();
    for cpu in cpus {
        let cpu = cpu.to_string();
        let child = Command::new("ip")
            .args([
                "netns", "exec", from_ns, "taskset", "-c", &cpu, &exe, "udp-send", "--dst", &dst,
                "--port", &port,
            ])
            .args(["--size", &size, "--duration", &duration, "--batch", &batch])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_err("starting udp-send"))?;
        generators.push(ChildGuard::new("udp-send", child));
    }
    let (mut sent, mut secs) = (0u64, 0f64);
    for g in generators {
        let out = g
            .wait_output(opts.duration + Duration::from_secs(10))
            .ok_or_else(|| E2eError::Run("udp-send did not finish".into()))?;
        if !out.status.success() {
            return Err(E2eError::Run(format!(
                "udp-send failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let report: lab::udp::SendReport = serde_json::from_slice(&out.stdout)
            .map_err(|e| E2eError::Run(format!("udp-send printed no report: {e}")))?;
        sent += report.sent;
        secs = secs.max(report.secs);
    }
    let sink = e2e::finish_udp_sink(sink, opts.duration, ready)?;
    Ok((sent, secs, sink.received))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_names_are_calico_length_and_unique() {
        assert_eq!(idle_interface(1), "calisq000000001");
        assert_eq!(idle_interface(MAX_IDLE).len(), 15);
        assert_ne!(idle_interface(10), idle_interface(16));
    }

    #[test]
    fn idle_addresses_stay_in_the_pool_and_clear_of_the_real_workloads() {
        assert_eq!(idle_ip(1), Ipv4Addr::new(192, 168, 16, 1));
        assert_eq!(idle_ip(MAX_IDLE), Ipv4Addr::new(192, 168, 23, 208));
        let toml = idle_workloads_toml(2);
        assert!(
            toml.contains("calisq000000002") && toml.contains("192.168.16.2"),
            "{toml}"
        );
        assert_eq!(toml.matches("[[workload]]").count(), 2);
    }

    #[test]
    fn the_queues_markdown_lists_every_queue_count_with_its_ratio() {
        let run = |queues, pps| QueuesRun {
            queues,
            workers: queues as usize,
            pps_offered: pps,
            pps_delivered: pps,
            sent: 1,
            received: 1,
        };
        let report = QueuesReport {
            frame_size: 64,
            duration_secs: 5.0,
            rounds: 1,
            mode: "interrupt".into(),
            generator_cpus: vec![0, 1],
            online_cpus: 2,
            results: vec![
                QueueCountResult {
                    queues: 1,
                    runs: vec![run(1, 100.0)],
                    pps_delivered: 100.0,
                    ratio_to_first: Some(1.0),
                },
                QueueCountResult {
                    queues: 2,
                    runs: vec![run(2, 150.0)],
                    pps_delivered: 150.0,
                    ratio_to_first: Some(1.5),
                },
            ],
        };
        let md = queues_markdown(&report);
        assert!(md.contains("| 1 | 1 | 100 | 1.00 |"), "{md}");
        assert!(md.contains("| 2 | 2 | 150 | 1.50 |"), "{md}");
    }
}
