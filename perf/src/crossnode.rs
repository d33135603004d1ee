//! The cross-node benchmark: a workload on node 1 sends to a workload on node 2 over the
//! segment of a two-node [`MultiLab`], four ways, one after the other in one invocation, in
//! interleaved rounds whose medians each side reports (see [`CrossnodeOptions::rounds`]):
//!
//! | side            | who forwards | between the nodes |
//! |-----------------|--------------|-------------------|
//! | `kernel_plain`  | Linux, as Calico's kernel dataplane (ip_forward, proxy ARP, /32 routes) | a route to the other block via the other node |
//! | `kernel_ipip`   | Linux | IP in IP: `tunl0` with an `onlink` route, MTU 1480 |
//! | `brindle_plain` | `brindle-node` on both nodes (file mode) | `[[route]] prefix/via` |
//! | `brindle_ipip`  | `brindle-node` on both nodes | `[[route]] ... encap = "ipip"` |
//!
//! Every side of every round gets a lab of its own (built, measured, taken down), so that no route, tunnel,
//! qdisc or XDP program of one side can carry traffic of the next; the wiring is the same
//! code each time. Per side: 64-byte UDP pps offered and delivered (`udp-send`/`udp-sink`),
//! ping RTT p50/p99, busy cores, and proof that the traffic took the intended path (a capture
//! on node 1's port of the segment during a few pings, node 1's uplink counters around the
//! UDP run, and the tunnel's or brindle's own counters). A side whose proof fails is failed.
//!
//! Kernel IPIP: a kernel with the `ipip` driver gets the real `tunl0` device, as Calico
//! programs it. Kernels built without it (CONFIG_NET_IPIP unset, as on our development
//! machine) get the same wire format from Linux routes whose encapsulation is a small BPF
//! program (`lwt_xmit` pushes the outer header, a `tc` ingress program pulls it):
//! [`KernelIpip::LwtBpf`]. The report says which one ran.
//!
//! CPU placement on two cores: the generator and ping run on CPU [`GENERATOR_CPU`]. Two
//! brindle nodes need two workers, and a busy-polling worker owns its core, so the nodes run
//! in interrupt mode (sleeping in poll(2) when idle), unpinned by default: measured against
//! both workers pinned to CPU 1 (away from the generator) it delivered as much and cut the
//! RTT about fourfold, because a worker can then run on the core whose packet woke it; see
//! [`CrossnodeOptions::node_cpus`] and BENCHMARKS.md.

mod report;

pub use report::*;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::e2e::{self, Ratios, SideResult};
use crate::runner;
use crate::stats::{self, Latencies};
use lab::cmd::{self, ChildGuard, CmdError, CONFIG_TIMEOUT};
use lab::node::{NodeError, NodeLaunch, NodeProcess};
use lab::run::{pid_tag, LoadAverage};
use lab::udp::{SendReport, SinkReport};
use lab::{LabError, MultiLab, MultiLabSpec, UPLINK_IF, WORKLOAD_GATEWAY};

/// The core the generator and ping are pinned to.
pub const GENERATOR_CPU: usize = 0;
/// Default worker cores of node 1 and node 2: unpinned (the scheduler places the workers).
pub const DEFAULT_NODE_CPUS: NodeCpus = [None, None];
/// IP in IP costs one IPv4 header.
pub const IPIP_OVERHEAD: usize = 20;
/// The tunnel MTU of a 1500-byte uplink, as Calico sets it on `tunl0`.
pub const TUNNEL_MTU: usize = 1500 - IPIP_OVERHEAD;
/// Pings of the capture that proves the path.
pub const PATH_PINGS: usize = 5;
/// Name of the kernel's IPIP device, as Calico's kernel dataplane uses it.
pub const TUNNEL_IF: &str = "tunl0";
/// How long a brindle node gets from start to forwarding.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Grace between SIGTERM and SIGKILL for brindle-node.
const NODE_STOP_GRACE: Duration = Duration::from_secs(5);
/// Ethernet FCS: part of the frame size the generator is told, not of what veth counts.
const FCS_LEN: usize = 4;
/// The BPF program of [`KernelIpip::LwtBpf`], compiled per node at run time.
const KERNEL_IPIP_BPF_SOURCE: &str = include_str!("crossnode/kernel_ipip.bpf.c");

/// Who forwards on a side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forwarder {
    Kernel,
    Brindle,
}

/// How packets cross between the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encap {
    Plain,
    Ipip,
}

/// One of the four measured topologies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Side {
    pub forwarder: Forwarder,
    pub encap: Encap,
}

impl Side {
    /// In the order they run: the kernel first, as in `e2e`.
    pub const ALL: [Side; 4] = [
        Side::new(Forwarder::Kernel, Encap::Plain),
        Side::new(Forwarder::Kernel, Encap::Ipip),
        Side::new(Forwarder::Brindle, Encap::Plain),
        Side::new(Forwarder::Brindle, Encap::Ipip),
    ];

    pub const fn new(forwarder: Forwarder, encap: Encap) -> Side {
        Side { forwarder, encap }
    }

    /// The side's field name in the report.
    pub fn name(self) -> &'static str {
        match (self.forwarder, self.encap) {
            (Forwarder::Kernel, Encap::Plain) => "kernel_plain",
            (Forwarder::Kernel, Encap::Ipip) => "kernel_ipip",
            (Forwarder::Brindle, Encap::Plain) => "brindle_plain",
            (Forwarder::Brindle, Encap::Ipip) => "brindle_ipip",
        }
    }

    /// Two letters that start the side's lab name.
    fn lab_prefix(self) -> &'static str {
        match (self.forwarder, self.encap) {
            (Forwarder::Kernel, Encap::Plain) => "kp",
            (Forwarder::Kernel, Encap::Ipip) => "ki",
            (Forwarder::Brindle, Encap::Plain) => "bp",
            (Forwarder::Brindle, Encap::Ipip) => "bi",
        }
    }
}

/// How the kernel sides encapsulate IP in IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelIpip {
    /// The `ipip` driver's `tunl0`, with `onlink` routes through it (Calico's kernel IPIP).
    Device,
    /// Routes with `encap bpf xmit` pushing the outer header, a `tc` ingress program pulling
    /// it: for kernels without the `ipip` driver.
    LwtBpf,
}

/// Worker core of node 1 and of node 2 (`None`: not pinned).
pub type NodeCpus = [Option<usize>; 2];

/// Parses `--node-cpus`: `none`, one core for both nodes (`1`), or one per node (`1,0`,
/// `1,none`).
pub fn parse_node_cpus(text: &str) -> Result<NodeCpus, String> {
    let one = |part: &str| -> Result<Option<usize>, String> {
        let part = part.trim();
        if part == "none" {
            return Ok(None);
        }
        part.parse::<usize>().map(Some).map_err(|_| {
            format!("invalid node-cpus {text:?}: {part:?} is neither a core number nor none")
        })
    };
    let parts: Vec<&str> = text.split(',').collect();
    match parts.as_slice() {
        [both] => {
            let cpu = one(both)?;
            Ok([cpu, cpu])
        }
        [first, second] => Ok([one(first)?, one(second)?]),
        _ => Err(format!(
            "invalid node-cpus {text:?}: expected one or two comma-separated cores"
        )),
    }
}

#[derive(Clone, Debug)]
pub struct CrossnodeOptions {
    pub brindle_node: PathBuf,
    /// This benchmark's own executable, which provides `udp-send` and `udp-sink`.
    pub perf_exe: PathBuf,
    pub duration: Duration,
    pub pings: u32,
    pub frame_size: usize,
    pub batch: usize,
    pub port: u16,
    /// Scratch directory for node configs, sockets, logs, captures and BPF objects.
    pub work_dir: PathBuf,
    /// brindle-node's worker mode: "interrupt" (the default here: two nodes share the cores)
    /// or "poll".
    pub node_mode: String,
    /// Worker cores of the two brindle nodes ([`DEFAULT_NODE_CPUS`]: unpinned).
    pub node_cpus: NodeCpus,
    /// The compiler of the kernel IPIP BPF program (needed only without the `ipip` driver).
    pub clang: String,
    /// Rounds of the four sides, interleaved (kernel plain, kernel IPIP, brindle plain,
    /// brindle IPIP, then again), so that a burst of other work on the machine hits one
    /// round of every side rather than all of one side; each side reports its medians.
    pub rounds: usize,
}

/// What shows that a side's packets took the intended path.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PathEvidence {
    /// Frames node 1's uplink sent during the UDP run.
    pub uplink_tx_packets: u64,
    /// Their mean size: the generator's frame without FCS, plus 20 bytes inside IPIP.
    pub uplink_tx_bytes_per_packet: Option<f64>,
    /// Of the path pings captured on node 1's port of the segment: ICMP between the
    /// workloads inside IPIP between the nodes, and ICMP between the workloads as it is.
    pub capture_ipip: usize,
    pub capture_bare: usize,
    /// Kernel `tunl0` counters after the UDP run (the [`KernelIpip::Device`] side only).
    pub tunnel_tx_packets_node1: Option<u64>,
    pub tunnel_rx_packets_node2: Option<u64>,
    /// brindle's counters after the UDP run (brindle sides only).
    pub brindle_forwarded_node1: Option<u64>,
    pub brindle_ipip_encapsulated_node1: Option<u64>,
    pub brindle_ipip_decapsulated_node2: Option<u64>,
}

/// One side's measurements and the proof of its path.
#[derive(Clone, Debug, Serialize)]
pub struct CrossSide {
    pub side: &'static str,
    pub encap: Encap,
    /// How the kernel encapsulated (the kernel IPIP side only).
    pub kernel_ipip_method: Option<KernelIpip>,
    /// Per metric, the median over the rounds (`sent`, `received`, pings: summed).
    #[serde(flatten)]
    pub measured: SideResult,
    /// Each round's own measurements, in order.
    pub rounds: Vec<SideResult>,
    /// The last round's proof (every round had to pass its own).
    pub path: PathEvidence,
}

/// A side that did not produce a result, and why.
#[derive(Clone, Debug, Serialize)]
pub struct SideFailure {
    pub side: &'static str,
    /// From 1; a side that failed is not run again in later rounds.
    pub round: usize,
    pub error: String,
}

/// brindle / kernel, each over the same encapsulation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CrossRatios {
    /// From the sides' medians.
    pub plain: Option<Ratios>,
    pub ipip: Option<Ratios>,
    /// pps_delivered brindle / kernel within each round, for the spread.
    pub plain_pps_delivered_by_round: Vec<Option<f64>>,
    pub ipip_pps_delivered_by_round: Vec<Option<f64>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CrossnodeReport {
    pub frame_size: usize,
    pub duration_secs: f64,
    pub pings: u32,
    pub generator_cpu: usize,
    pub node_mode: String,
    /// Worker cores of node 1 and node 2 (`null`: not pinned).
    pub node_cpus: NodeCpus,
    pub ncpus: usize,
    pub rounds: usize,
    /// The kernel IPIP side's mechanism (`null` if that side did not get that far).
    pub kernel_ipip_method: Option<KernelIpip>,
    /// `/proc/loadavg` (1, 5, 15 min) before the first and after the last side: other work
    /// on the machine counts in busy_cores and in the pps.
    pub load_average_before: Option<[f64; 3]>,
    pub load_average_after: Option<[f64; 3]>,
    pub kernel_plain: Option<CrossSide>,
    pub kernel_ipip: Option<CrossSide>,
    pub brindle_plain: Option<CrossSide>,
    pub brindle_ipip: Option<CrossSide>,
    pub ratios: CrossRatios,
    pub failures: Vec<SideFailure>,
}

impl CrossnodeReport {
    pub fn side(&self, side: Side) -> Option<&CrossSide> {
        match (side.forwarder, side.encap) {
            (Forwarder::Kernel, Encap::Plain) => self.kernel_plain.as_ref(),
            (Forwarder::Kernel, Encap::Ipip) => self.kernel_ipip.as_ref(),
            (Forwarder::Brindle, Encap::Plain) => self.brindle_plain.as_ref(),
            (Forwarder::Brindle, Encap::Ipip) => self.brindle_ipip.as_ref(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CrossnodeError {
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error(transparent)]
    Command(#[from] CmdError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Run(String),
    #[error("the {side} side did not take its path: {reason}")]
    WrongPath { side: &'static str, reason: String },
    #[error(transparent)]
    Measure(#[from] e2e::E2eError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> CrossnodeError {
    let what = what.into();
    move |source| CrossnodeError::Io { what, source }
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

/// Runs the four sides and returns the report (written nowhere; see [`write_report`]). A
/// side that fails is listed in `failures` and the others still run; only a setup error
/// before any side (or an interruption) is an `Err`.
pub fn run(opts: &CrossnodeOptions) -> Result<CrossnodeReport, CrossnodeError> {
    if !opts.brindle_node.is_file() {
        return Err(CrossnodeError::Run(format!(
            "brindle-node {} is not a file",
            opts.brindle_node.display()
        )));
    }
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    let tag = pid_tag(5);
    let mut report = CrossnodeReport {
        frame_size: opts.frame_size,
        duration_secs: opts.duration.as_secs_f64(),
        pings: opts.pings,
        generator_cpu: GENERATOR_CPU,
        node_mode: opts.node_mode.clone(),
        node_cpus: opts.node_cpus,
        ncpus: stats::online_cpus(),
        rounds: opts.rounds,
        kernel_ipip_method: None,
        load_average_before: LoadAverage::read().and_then(|l| l.averages()),
        load_average_after: None,
        kernel_plain: None,
        kernel_ipip: None,
        brindle_plain: None,
        brindle_ipip: None,
        ratios: CrossRatios::default(),
        failures: Vec::new(),
    };
    let mut sides: Vec<SideRun> = Side::ALL
        .into_iter()
        .map(|side| SideRun {
            opts,
            side,
            tag: &tag,
            kernel_ipip_method: None,
        })
        .collect();
    let run = runner::interleave(
        "crossnode",
        &mut sides,
        opts.rounds,
        || match cmd::interrupted() {
            true => Err(CrossnodeError::Run("interrupted by a signal".into())),
            false => Ok(()),
        },
    )?;
    report.kernel_ipip_method = sides
        .iter()
        .find(|s| s.side == Side::new(Forwarder::Kernel, Encap::Ipip))
        .and_then(|s| s.kernel_ipip_method);
    report.failures = (run.failures.into_iter())
        .map(|f| SideFailure {
            side: Side::ALL
                .into_iter()
                .find(|s| s.name() == f.side)
                .map_or("?", |s| s.name()),
            round: f.round,
            error: f.error,
        })
        .collect();
    let passed = run.passed;
    for (side, rounds) in Side::ALL.into_iter().zip(passed) {
        let combined = rounds.and_then(combine_rounds);
        match (side.forwarder, side.encap) {
            (Forwarder::Kernel, Encap::Plain) => report.kernel_plain = combined,
            (Forwarder::Kernel, Encap::Ipip) => report.kernel_ipip = combined,
            (Forwarder::Brindle, Encap::Plain) => report.brindle_plain = combined,
            (Forwarder::Brindle, Encap::Ipip) => report.brindle_ipip = combined,
        }
    }
    report.load_average_after = LoadAverage::read().and_then(|l| l.averages());
    report.ratios = cross_ratios(&report);
    Ok(report)
}

/// One side as the runner runs it, round after round. Its lab and nodes are brought up, its
/// path proven and everything torn down within [`run_side_in`].
struct SideRun<'a> {
    opts: &'a CrossnodeOptions,
    side: Side,
    tag: &'a str,
    /// How the kernel's IPIP side encapsulated, as its last round found.
    kernel_ipip_method: Option<KernelIpip>,
}

impl runner::Side for SideRun<'_> {
    type Up = ();
    type Measured = CrossSide;
    type Error = CrossnodeError;

    fn name(&self) -> String {
        self.side.name().to_string()
    }

    fn bring_up(&mut self) -> Result<(), CrossnodeError> {
        Ok(())
    }

    fn measure(&mut self, _: &mut ()) -> Result<CrossSide, CrossnodeError> {
        let mut method = None;
        let outcome = run_side_in(self.opts, self.side, self.tag, &mut method);
        if method.is_some() {
            self.kernel_ipip_method = method;
        }
        outcome
    }
}

/// One side over its rounds: medians of each metric, every round kept, the last proof.
pub fn combine_rounds(rounds: Vec<CrossSide>) -> Option<CrossSide> {
    let measured: Vec<SideResult> = rounds.iter().map(|r| r.measured.clone()).collect();
    let last = rounds.into_iter().last()?;
    Some(CrossSide {
        measured: median_side(&measured)?,
        rounds: measured,
        ..last
    })
}

/// Per metric, the median over `rounds`; counts are summed.
pub fn median_side(rounds: &[SideResult]) -> Option<SideResult> {
    let first = rounds.first()?;
    let of = |metric: fn(&SideResult) -> Option<f64>| median(rounds.iter().filter_map(metric));
    Some(SideResult {
        forwarding: first.forwarding,
        lab: first.lab.clone(),
        pps_offered: of(|r| Some(r.pps_offered)).unwrap_or(f64::NAN),
        pps_delivered: of(|r| Some(r.pps_delivered)).unwrap_or(f64::NAN),
        rtt_p50_us: of(|r| r.rtt_p50_us),
        rtt_p99_us: of(|r| r.rtt_p99_us),
        busy_cores: of(|r| Some(r.busy_cores)).unwrap_or(f64::NAN),
        pps_per_busy_core: of(|r| r.pps_per_busy_core),
        sent: rounds.iter().map(|r| r.sent).sum(),
        received: rounds.iter().map(|r| r.received).sum(),
        generator_secs: rounds.iter().map(|r| r.generator_secs).sum(),
        pings_sent: rounds.iter().map(|r| r.pings_sent).sum(),
        ping_replies: rounds.iter().map(|r| r.ping_replies).sum(),
    })
}

pub use crate::rounds::median;

/// brindle over kernel for each encapsulation where both sides produced a result.
pub fn cross_ratios(report: &CrossnodeReport) -> CrossRatios {
    let pair = |encap| {
        let kernel = report.side(Side::new(Forwarder::Kernel, encap))?;
        let brindle = report.side(Side::new(Forwarder::Brindle, encap))?;
        Some(e2e::ratios(&kernel.measured, &brindle.measured))
    };
    let by_round = |encap| -> Vec<Option<f64>> {
        let rounds = |forwarder| {
            report
                .side(Side::new(forwarder, encap))
                .map_or(&[][..], |s| s.rounds.as_slice())
        };
        let (kernel, brindle) = (rounds(Forwarder::Kernel), rounds(Forwarder::Brindle));
        kernel
            .iter()
            .zip(brindle)
            .map(|(k, b)| e2e::ratios(k, b).pps_delivered)
            .collect()
    };
    CrossRatios {
        plain: pair(Encap::Plain),
        ipip: pair(Encap::Ipip),
        plain_pps_delivered_by_round: by_round(Encap::Plain),
        ipip_pps_delivered_by_round: by_round(Encap::Ipip),
    }
}

/// Runs one side alone ([`run`] runs all four): builds its lab, makes it forward, proves the
/// path, measures, takes the lab down.
pub fn run_side(opts: &CrossnodeOptions, side: Side) -> Result<CrossSide, CrossnodeError> {
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    run_side_in(opts, side, &pid_tag(5), &mut None)
}

/// [`run_side`] with the lab name's tag; `method` is set as soon as the kernel IPIP side has
/// chosen its mechanism, so that a failure later still reports it.
fn run_side_in(
    opts: &CrossnodeOptions,
    side: Side,
    tag: &str,
    method: &mut Option<KernelIpip>,
) -> Result<CrossSide, CrossnodeError> {
    let spec = MultiLabSpec::new(format!("{}{tag}", side.lab_prefix()), 2, 1);
    let lab = MultiLab::up(&spec)?;
    let path = WorkloadPath::of(&lab)?;
    let dir = opts.work_dir.join(side.name());
    std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    // Declared after `lab`, so dropped (stopped) before the lab goes down.
    let mut nodes: Vec<NodeProcess> = Vec::new();
    match side.forwarder {
        Forwarder::Kernel => {
            for (k, other) in [(1, 2), (2, 1)] {
                run_all(&kernel_forwarding_commands(&spec, k, other, side.encap))?;
            }
            if side.encap == Encap::Ipip {
                *method = Some(setup_kernel_ipip(&spec, &dir, &opts.clang)?);
            }
        }
        Forwarder::Brindle => {
            for (k, other) in [(1, 2), (2, 1)] {
                nodes.push(start_brindle_node(opts, &lab, &dir, k, other, side.encap)?);
            }
        }
    }
    let timeout = match side.forwarder {
        Forwarder::Kernel => Duration::from_secs(5),
        Forwarder::Brindle => NODE_READY_TIMEOUT,
    };
    wait_until_reachable(&path, timeout, || {
        for node in nodes.iter_mut() {
            node.check_running("before forwarding")?;
        }
        Ok(())
    })?;

    let (capture_ipip, capture_bare) = capture_path_pings(&path, &dir)?;
    let node1 = spec.node_spec(1).node_netns();
    let node2 = spec.node_spec(2).node_netns();
    let uplink_before = link_tx(&node1, UPLINK_IF)?;
    let (send, sink, busy_cores) = udp_run(&path, opts, &dir)?;
    let uplink_after = link_tx(&node1, UPLINK_IF)?;
    let mut evidence = PathEvidence {
        uplink_tx_packets: uplink_after.0.saturating_sub(uplink_before.0),
        capture_ipip,
        capture_bare,
        ..PathEvidence::default()
    };
    evidence.uplink_tx_bytes_per_packet = (evidence.uplink_tx_packets > 0).then(|| {
        uplink_after.1.saturating_sub(uplink_before.1) as f64 / evidence.uplink_tx_packets as f64
    });
    if *method == Some(KernelIpip::Device) {
        evidence.tunnel_tx_packets_node1 = Some(link_tx(&node1, TUNNEL_IF)?.0);
        evidence.tunnel_rx_packets_node2 = Some(link_rx_packets(&node2, TUNNEL_IF)?);
    }
    if side.forwarder == Forwarder::Brindle {
        let node1_stats = nodes[0].stats()?;
        let node2_stats = nodes[1].stats()?;
        evidence.brindle_forwarded_node1 = fastpath_counter(&node1_stats, "forwarded");
        evidence.brindle_ipip_encapsulated_node1 =
            fastpath_counter(&node1_stats, "ipip_encapsulated");
        evidence.brindle_ipip_decapsulated_node2 =
            fastpath_counter(&node2_stats, "ipip_decapsulated");
    }
    check_path(side, opts.frame_size, sink.received, &evidence).map_err(|reason| {
        CrossnodeError::WrongPath {
            side: side.name(),
            reason,
        }
    })?;

    let (latencies, pings_sent) = ping_run(&path, opts)?;
    for (i, node) in nodes.into_iter().enumerate() {
        if let Some(status) = node.stop(NODE_STOP_GRACE) {
            if !status.success() {
                eprintln!(
                    "brindle-node {} exited with {status} after SIGTERM; log in {}",
                    i + 1,
                    dir.display()
                );
            }
        }
    }
    let secs = if send.secs > 0.0 { send.secs } else { f64::NAN };
    let pps_delivered = sink.received as f64 / secs;
    let forwarding = match side.forwarder {
        Forwarder::Kernel => "kernel",
        Forwarder::Brindle => "brindle",
    };
    let measured = SideResult {
        forwarding,
        lab: spec.name.clone(),
        pps_offered: send.sent as f64 / secs,
        pps_delivered,
        rtt_p50_us: latencies.p50_us(),
        rtt_p99_us: latencies.p99_us(),
        busy_cores,
        pps_per_busy_core: (busy_cores > 0.0).then(|| pps_delivered / busy_cores),
        sent: send.sent,
        received: sink.received,
        generator_secs: send.secs,
        pings_sent,
        ping_replies: latencies.len(),
    };
    Ok(CrossSide {
        side: side.name(),
        encap: side.encap,
        kernel_ipip_method: *method,
        rounds: vec![measured.clone()],
        measured,
        path: evidence,
    })
    // `lab` drops here and on every early return: its namespaces (and with them routes,
    // tunnels, qdiscs and XDP programs) are removed.
}

/// Whether `evidence` shows the side's packets on its intended path; the reason if not.
pub fn check_path(
    side: Side,
    frame_size: usize,
    received: u64,
    evidence: &PathEvidence,
) -> Result<(), String> {
    let ipip = side.encap == Encap::Ipip;
    let (wanted, unwanted, wanted_name, unwanted_name) = if ipip {
        (
            evidence.capture_ipip,
            evidence.capture_bare,
            "inside IPIP",
            "bare",
        )
    } else {
        (
            evidence.capture_bare,
            evidence.capture_ipip,
            "bare",
            "inside IPIP",
        )
    };
    if wanted < PATH_PINGS || unwanted > 0 {
        return Err(format!(
            "of {PATH_PINGS} pings, the capture on node 1's segment port saw {wanted} ICMP \
             packets {wanted_name} (want at least {PATH_PINGS}) and {unwanted} {unwanted_name} \
             (want 0)"
        ));
    }
    if received == 0 {
        return Err("the sink received nothing".into());
    }
    if evidence.uplink_tx_packets < received {
        return Err(format!(
            "node 1's uplink sent {} frames during the UDP run, fewer than the {received} \
             the sink received",
            evidence.uplink_tx_packets
        ));
    }
    let expected = expected_uplink_frame_len(frame_size, side.encap) as f64;
    match evidence.uplink_tx_bytes_per_packet {
        // ARP and the odd IPv6 frame may move the mean a little; a missing or extra
        // 20-byte header moves it by 20.
        Some(mean) if (mean - expected).abs() <= 4.0 => {}
        other => {
            return Err(format!(
                "node 1's uplink frames averaged {other:?} bytes, want {expected} for {} \
                 {frame_size}-byte frames",
                if ipip { "IPIP-wrapped" } else { "bare" }
            ))
        }
    }
    let at_least = |name: &str, value: Option<u64>| match value {
        Some(v) if v >= received => Ok(()),
        other => Err(format!(
            "{name} is {other:?}, want at least the {received} datagrams received"
        )),
    };
    if evidence.tunnel_tx_packets_node1.is_some() || evidence.tunnel_rx_packets_node2.is_some() {
        at_least(
            "tunl0 tx_packets on node 1",
            evidence.tunnel_tx_packets_node1,
        )?;
        at_least(
            "tunl0 rx_packets on node 2",
            evidence.tunnel_rx_packets_node2,
        )?;
    }
    if side.forwarder == Forwarder::Brindle {
        at_least(
            "brindle forwarded on node 1",
            evidence.brindle_forwarded_node1,
        )?;
        let encapsulated = evidence.brindle_ipip_encapsulated_node1;
        let decapsulated = evidence.brindle_ipip_decapsulated_node2;
        if ipip {
            at_least("brindle ipip_encapsulated on node 1", encapsulated)?;
            at_least("brindle ipip_decapsulated on node 2", decapsulated)?;
        } else if encapsulated != Some(0) || decapsulated != Some(0) {
            return Err(format!(
                "plain routes, yet ipip_encapsulated on node 1 is {encapsulated:?} and \
                 ipip_decapsulated on node 2 is {decapsulated:?}"
            ));
        }
    }
    Ok(())
}

/// The size veth counts for one generator frame on node 1's uplink.
pub fn expected_uplink_frame_len(frame_size: usize, encap: Encap) -> usize {
    let bare = frame_size.saturating_sub(FCS_LEN);
    match encap {
        Encap::Plain => bare,
        Encap::Ipip => bare + IPIP_OVERHEAD,
    }
}

// ---------------------------------------------------------------------------------------
// Kernel forwarding, as Felix programs it
// ---------------------------------------------------------------------------------------

/// Node `k`'s kernel as Calico's kernel dataplane sets it up, plus (plain only) the route to
/// node `other`'s block via node `other`, which BIRD would install. Argument vectors, run in
/// order.
pub fn kernel_forwarding_commands(
    spec: &MultiLabSpec,
    k: usize,
    other: usize,
    encap: Encap,
) -> Vec<Vec<String>> {
    let node = spec.node_spec(k);
    let ns = node.node_netns();
    let cali = node.host_interface(1);
    let workload = format!("{}/32", node.workload_ip(1));
    let sysctl = |setting: String| -> Vec<String> {
        strings(&["ip", "netns", "exec", &ns, "sysctl", "-q", "-w", &setting])
    };
    let mut commands = vec![
        sysctl("net.ipv4.ip_forward=1".into()),
        sysctl(format!("net.ipv4.conf.{cali}.proxy_arp=1")),
        sysctl(format!("net.ipv4.neigh.{cali}.proxy_delay=0")),
        strings(&[
            "ip", "-n", &ns, "route", "add", &workload, "dev", &cali, "scope", "link",
        ]),
        // Proxy ARP answers only for addresses routed out of another interface; the nodes
        // have no default route, so the gateway gets one (as the one-node lab does).
        strings(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            &WORKLOAD_GATEWAY.to_string(),
            "dev",
            "lo",
        ]),
    ];
    if encap == Encap::Plain {
        commands.push(strings(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            &spec.node_block(other),
            "via",
            &spec.node_ip(other).to_string(),
            "dev",
            UPLINK_IF,
        ]));
    }
    commands
}

/// Node `k`'s `tunl0` as Felix sets it for IPIP (MTU 1480, the block's first address) and
/// the route BIRD installs for node `other`'s block: via the other node, `onlink`, through
/// the tunnel, so that the next hop becomes the outer destination.
pub fn kernel_ipip_device_commands(
    spec: &MultiLabSpec,
    k: usize,
    other: usize,
) -> Vec<Vec<String>> {
    let ns = spec.node_spec(k).node_netns();
    let tunnel_address = format!("{}/32", block_first_address(spec, k));
    vec![
        strings(&[
            "ip",
            "-n",
            &ns,
            "link",
            "set",
            TUNNEL_IF,
            "mtu",
            &TUNNEL_MTU.to_string(),
            "up",
        ]),
        strings(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            &tunnel_address,
            "dev",
            TUNNEL_IF,
        ]),
        strings(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            &spec.node_block(other),
            "via",
            &spec.node_ip(other).to_string(),
            "dev",
            TUNNEL_IF,
            "onlink",
        ]),
    ]
}

/// The same tunnel without the `ipip` driver: the route to node `other`'s block carries the
/// BPF encapsulation (`object`, built for node `k`) and the tunnel's MTU; eth0's ingress
/// unwraps IPIP from node `other`.
pub fn kernel_ipip_bpf_commands(
    spec: &MultiLabSpec,
    k: usize,
    other: usize,
    object: &Path,
) -> Vec<Vec<String>> {
    let ns = spec.node_spec(k).node_netns();
    let object = object.to_string_lossy();
    // The outer destination is compiled into the program; the route's next hop is the other
    // node on a shared subnet, the router otherwise (CrossSubnet).
    let next_hop = if spec.is_routed(k) == spec.is_routed(other) {
        spec.node_ip(other)
    } else {
        spec.gateway_for(k)
    };
    vec![
        strings(&[
            "ip",
            "-n",
            &ns,
            "route",
            "add",
            &spec.node_block(other),
            "via",
            &next_hop.to_string(),
            "dev",
            UPLINK_IF,
            "mtu",
            &TUNNEL_MTU.to_string(),
            "encap",
            "bpf",
            "xmit",
            "obj",
            &object,
            "section",
            "lwt_xmit",
            "headroom",
            &IPIP_OVERHEAD.to_string(),
        ]),
        strings(&[
            "ip", "netns", "exec", &ns, "tc", "qdisc", "add", "dev", UPLINK_IF, "clsact",
        ]),
        strings(&[
            "ip", "netns", "exec", &ns, "tc", "filter", "add", "dev", UPLINK_IF, "ingress", "bpf",
            "da", "obj", &object, "sec", "tc",
        ]),
    ]
}

/// The `clang` command that builds node `k`'s encapsulation program.
pub fn kernel_ipip_bpf_compile_command(
    clang: &str,
    spec: &MultiLabSpec,
    k: usize,
    other: usize,
    source: &Path,
    object: &Path,
) -> Vec<String> {
    let local = u32::from(spec.node_ip(k));
    let remote = u32::from(spec.node_ip(other));
    vec![
        clang.to_owned(),
        "-O2".into(),
        "-target".into(),
        "bpf".into(),
        "-Wall".into(),
        "-Werror".into(),
        // <linux/bpf.h> needs <asm/types.h> from the multiarch directory (see fastpath's
        // build.rs).
        format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH),
        format!("-DLOCAL_IP={local:#010x}"),
        format!("-DREMOTE_IP={remote:#010x}"),
        "-c".into(),
        source.to_string_lossy().into_owned(),
        "-o".into(),
        object.to_string_lossy().into_owned(),
    ]
}

/// Sets up IPIP between the two nodes' kernels with `tunl0` where the kernel has the `ipip`
/// driver, and with the BPF encapsulation where it does not.
pub fn setup_kernel_ipip(
    spec: &MultiLabSpec,
    dir: &Path,
    clang: &str,
) -> Result<KernelIpip, CrossnodeError> {
    if (1..=2).all(|k| has_tunnel_device(&spec.node_spec(k).node_netns())) {
        for (k, other) in [(1, 2), (2, 1)] {
            run_all(&kernel_ipip_device_commands(spec, k, other))?;
        }
        return Ok(KernelIpip::Device);
    }
    let source = dir.join("kernel_ipip.bpf.c");
    std::fs::write(&source, KERNEL_IPIP_BPF_SOURCE)
        .map_err(io_err(format!("writing {}", source.display())))?;
    for (k, other) in [(1, 2), (2, 1)] {
        let object = dir.join(format!("kernel_ipip_node{k}.o"));
        let compile = kernel_ipip_bpf_compile_command(clang, spec, k, other, &source, &object);
        run_all(std::slice::from_ref(&compile))?;
        run_all(&kernel_ipip_bpf_commands(spec, k, other, &object))?;
    }
    Ok(KernelIpip::LwtBpf)
}

/// Whether `ns` has (or can create) the `ipip` driver's fallback device `tunl0`. With the
/// driver loaded, every namespace is born with it; otherwise creating it tells.
fn has_tunnel_device(ns: &str) -> bool {
    let show = ["ip", "-n", ns, "link", "show", TUNNEL_IF];
    if cmd::run(&show, CONFIG_TIMEOUT).is_ok() {
        return true;
    }
    let add = [
        "ip", "-n", ns, "link", "add", "name", TUNNEL_IF, "type", "ipip",
    ];
    // Adding may load the driver as a module, which creates the fallback device itself and
    // makes our own add fail with "exists": look again.
    cmd::run(&add, CONFIG_TIMEOUT).is_ok() || cmd::run(&show, CONFIG_TIMEOUT).is_ok()
}

/// `a.b.k.0`: the first address of node `k`'s block, which Calico gives `tunl0`.
fn block_first_address(spec: &MultiLabSpec, k: usize) -> Ipv4Addr {
    let block = spec.node_block(k);
    let network = block.split('/').next().unwrap_or_default();
    network.parse().unwrap_or(Ipv4Addr::UNSPECIFIED)
}

fn run_all(commands: &[Vec<String>]) -> Result<(), CrossnodeError> {
    for command in commands {
        if cmd::interrupted() {
            return Err(CrossnodeError::Run("interrupted by a signal".into()));
        }
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        cmd::run(&args, CONFIG_TIMEOUT)?;
    }
    Ok(())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

// ---------------------------------------------------------------------------------------
// brindle-node on both nodes
// ---------------------------------------------------------------------------------------

/// Node `k`'s `[[route]]` to node `other`'s block via node `other`.
pub fn brindle_route_toml(spec: &MultiLabSpec, other: usize, encap: Encap) -> String {
    let encap = match encap {
        Encap::Plain => "none",
        Encap::Ipip => "ipip",
    };
    format!(
        "\n[[route]]\nprefix = \"{}\"\nvia = \"{}\"\nencap = \"{encap}\"\n",
        spec.node_block(other),
        spec.node_ip(other)
    )
}

/// A node config with the worker pinned to `cpu`: the `cores` key goes first, before the
/// `[[workload]]` tables of `lab_config`, and the routes last.
pub fn brindle_node_toml(lab_config: &str, cpu: Option<usize>, routes: &str) -> String {
    let cores = cpu.map(|c| format!("cores = [{c}]\n")).unwrap_or_default();
    format!("{cores}{lab_config}{routes}")
}

fn start_brindle_node(
    opts: &CrossnodeOptions,
    lab: &MultiLab,
    dir: &Path,
    k: usize,
    other: usize,
    encap: Encap,
) -> Result<NodeProcess, CrossnodeError> {
    let socket = dir.join(format!("node{k}.sock"));
    let lab_config = lab
        .node_config_toml(k, &opts.node_mode, &socket)
        .ok_or_else(|| CrossnodeError::Run(format!("the lab has no node {k}")))?;
    let config = brindle_node_toml(
        &lab_config,
        opts.node_cpus[k - 1],
        &brindle_route_toml(lab.spec(), other, encap),
    );
    let config_path = dir.join(format!("node{k}.toml"));
    std::fs::write(&config_path, config)
        .map_err(io_err(format!("writing {}", config_path.display())))?;
    let log_path = dir.join(format!("node{k}.log"));
    let ns = lab.spec().node_spec(k).node_netns();
    Ok(NodeLaunch::new(ns, &opts.brindle_node, log_path)
        .label(format!("brindle-node {k}"))
        .config(&config_path)
        .control_socket(socket)
        .start(NODE_READY_TIMEOUT)?)
}

fn fastpath_counter(stats: &serde_json::Value, name: &str) -> Option<u64> {
    stats.get("fastpath")?.get(name)?.as_u64()
}

// ---------------------------------------------------------------------------------------
// Traffic: workload 1 of node 1 to workload 1 of node 2
// ---------------------------------------------------------------------------------------

/// Who sends to whom.
#[derive(Clone, Debug)]
struct WorkloadPath {
    from_ns: String,
    to_ns: String,
    to_ip: Ipv4Addr,
    switch_ns: String,
    switch_port: String,
    node_ips: [Ipv4Addr; 2],
    from_ip: Ipv4Addr,
}

impl WorkloadPath {
    fn of(lab: &MultiLab) -> Result<WorkloadPath, CrossnodeError> {
        let workload = |k: usize| {
            lab.node(k)
                .and_then(|n| n.workload(1))
                .ok_or_else(|| CrossnodeError::Run(format!("the lab has no workload on node {k}")))
        };
        let (from, to) = (workload(1)?, workload(2)?);
        let spec = lab.spec();
        Ok(WorkloadPath {
            from_ns: from.netns.clone(),
            from_ip: from.ip,
            to_ns: to.netns.clone(),
            to_ip: to.ip,
            switch_ns: spec.switch_netns(),
            switch_port: spec.switch_port(1),
            node_ips: [spec.node_ip(1), spec.node_ip(2)],
        })
    }
}

fn exec(ns: &str, args: &[&str], timeout: Duration) -> Result<std::process::Output, CmdError> {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    cmd::run_interruptible(&full, timeout)
}

/// Pings once per attempt until a reply comes back or `timeout` passes; `still_ok` is asked
/// between attempts (to notice a dead node).
fn wait_until_reachable(
    path: &WorkloadPath,
    timeout: Duration,
    mut still_ok: impl FnMut() -> Result<(), CrossnodeError>,
) -> Result<(), CrossnodeError> {
    let target = path.to_ip.to_string();
    let started = Instant::now();
    let max_attempts = timeout.as_secs().max(1) * 4;
    for _ in 0..max_attempts {
        if lab::ping::answers(&path.from_ns, path.to_ip)? {
            return Ok(());
        }
        still_ok()?;
        if started.elapsed() >= timeout || cmd::interrupted() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(CrossnodeError::Run(format!(
        "{} -> {target} not reachable within {timeout:?}",
        path.from_ns
    )))
}

/// Captures node 1's port of the segment during [`PATH_PINGS`] pings; returns the ICMP
/// packets between the workloads seen inside IPIP between the nodes and seen bare.
fn capture_path_pings(path: &WorkloadPath, dir: &Path) -> Result<(usize, usize), CrossnodeError> {
    let file = dir.join("path.pcap");
    let errors = dir.join("tcpdump.err");
    let stderr =
        std::fs::File::create(&errors).map_err(io_err(format!("creating {}", errors.display())))?;
    // Immediate and packet-buffered, so that every packet is in the file when it stops.
    let child = Command::new("ip")
        .args(["netns", "exec", &path.switch_ns, "tcpdump", "-i"])
        .arg(&path.switch_port)
        .args(["-nn", "-U", "--immediate-mode", "-s", "128", "-w"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(io_err("starting tcpdump (scripts/deps.sh installs it)"))?;
    let mut tcpdump = ChildGuard::new("tcpdump", child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&errors)
        .unwrap_or_default()
        .contains("listening on")
    {
        if Instant::now() >= deadline || tcpdump.try_wait().is_some() || cmd::interrupted() {
            return Err(CrossnodeError::Run(format!(
                "tcpdump did not start: {}",
                std::fs::read_to_string(&errors).unwrap_or_default().trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let count = PATH_PINGS.to_string();
    exec(
        &path.from_ns,
        &[
            "ping",
            "-n",
            "-c",
            &count,
            "-i",
            "0.05",
            "-W",
            "1",
            &path.to_ip.to_string(),
        ],
        Duration::from_secs(10),
    )?;
    tcpdump.terminate(Duration::from_secs(5));
    let (w1, w2) = (path.from_ip, path.to_ip);
    let [n1, n2] = path.node_ips;
    // Requests and replies both cross node 1's port: 2 x PATH_PINGS packets either way.
    let ipip = read_capture(
        &file,
        &format!("ip proto 4 and host {n1} and host {n2}"),
        "ICMP echo",
    )?;
    let bare = read_capture(
        &file,
        &format!("icmp and host {w1} and host {w2}"),
        "ICMP echo",
    )?;
    Ok((ipip, bare))
}

/// Lines of `tcpdump -r file filter` that contain `needle`.
fn read_capture(file: &Path, filter: &str, needle: &str) -> Result<usize, CrossnodeError> {
    let file_text = file.to_string_lossy();
    let out = cmd::run(
        &["tcpdump", "-nn", "-r", &file_text, filter],
        CONFIG_TIMEOUT,
    )?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .count())
}

/// `(tx_packets, tx_bytes)` of `dev` in `ns`.
fn link_tx(ns: &str, dev: &str) -> Result<(u64, u64), CrossnodeError> {
    let stats = link_stats(ns, dev)?;
    let tx = &stats["tx"];
    Ok((
        tx["packets"].as_u64().unwrap_or(0),
        tx["bytes"].as_u64().unwrap_or(0),
    ))
}

fn link_rx_packets(ns: &str, dev: &str) -> Result<u64, CrossnodeError> {
    Ok(link_stats(ns, dev)?["rx"]["packets"].as_u64().unwrap_or(0))
}

/// The `stats64` object of `ip -j -s link show dev`.
fn link_stats(ns: &str, dev: &str) -> Result<serde_json::Value, CrossnodeError> {
    let args = ["ip", "-j", "-s", "-n", ns, "link", "show", "dev", dev];
    let out = cmd::run(&args, CONFIG_TIMEOUT)?;
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        CrossnodeError::Run(format!("`{}` printed no JSON: {e}", cmd::display(&args)))
    })?;
    parsed
        .get(0)
        .and_then(|link| link.get("stats64"))
        .cloned()
        .ok_or_else(|| CrossnodeError::Run(format!("`{}`: no stats64", cmd::display(&args))))
}

/// Sink in node 2's workload, generator in node 1's: `e2e`'s measurement, across nodes.
fn udp_run(
    path: &WorkloadPath,
    opts: &CrossnodeOptions,
    dir: &Path,
) -> Result<(SendReport, SinkReport, f64), CrossnodeError> {
    let params = e2e::UdpParams {
        perf_exe: opts.perf_exe.clone(),
        duration: opts.duration,
        frame_size: opts.frame_size,
        batch: opts.batch,
        port: opts.port,
    };
    Ok(e2e::udp_between(
        &path.from_ns,
        &path.to_ns,
        path.to_ip,
        &dir.join("sink-ready"),
        &params,
    )?)
}

/// `e2e`'s ping measurement, from node 1's workload to node 2's.
fn ping_run(
    path: &WorkloadPath,
    opts: &CrossnodeOptions,
) -> Result<(Latencies, u32), CrossnodeError> {
    Ok(e2e::ping_between(&path.from_ns, path.to_ip, opts.pings)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(pps: f64, p50: Option<f64>, busy: f64) -> SideResult {
        SideResult {
            forwarding: "x",
            lab: "t".into(),
            pps_offered: pps * 2.0,
            pps_delivered: pps,
            rtt_p50_us: p50,
            rtt_p99_us: p50.map(|v| v * 2.0),
            busy_cores: busy,
            pps_per_busy_core: (busy > 0.0).then(|| pps / busy),
            sent: 0,
            received: 0,
            generator_secs: 1.0,
            pings_sent: 0,
            ping_replies: 0,
        }
    }

    fn cross_side(side: Side, pps: f64, p50: Option<f64>, busy: f64) -> CrossSide {
        CrossSide {
            side: side.name(),
            encap: side.encap,
            kernel_ipip_method: None,
            rounds: vec![measured(pps, p50, busy)],
            measured: measured(pps, p50, busy),
            path: PathEvidence::default(),
        }
    }

    fn report(sides: [Option<CrossSide>; 4]) -> CrossnodeReport {
        let [kernel_plain, kernel_ipip, brindle_plain, brindle_ipip] = sides;
        let mut report = CrossnodeReport {
            frame_size: 64,
            duration_secs: 3.0,
            pings: 500,
            generator_cpu: 0,
            node_mode: "interrupt".into(),
            node_cpus: [Some(1), Some(1)],
            ncpus: 2,
            rounds: 1,
            kernel_ipip_method: Some(KernelIpip::LwtBpf),
            load_average_before: Some([1.0, 2.0, 3.0]),
            load_average_after: None,
            kernel_plain,
            kernel_ipip,
            brindle_plain,
            brindle_ipip,
            ratios: CrossRatios::default(),
            failures: Vec::new(),
        };
        report.ratios = cross_ratios(&report);
        report
    }

    const KP: Side = Side::new(Forwarder::Kernel, Encap::Plain);
    const KI: Side = Side::new(Forwarder::Kernel, Encap::Ipip);
    const BP: Side = Side::new(Forwarder::Brindle, Encap::Plain);
    const BI: Side = Side::new(Forwarder::Brindle, Encap::Ipip);

    #[test]
    fn ratios_pair_brindle_with_the_kernel_of_the_same_encapsulation() {
        let r = report([
            Some(cross_side(KP, 100.0, Some(50.0), 1.0)),
            Some(cross_side(KI, 80.0, Some(40.0), 1.0)),
            Some(cross_side(BP, 300.0, Some(25.0), 2.0)),
            Some(cross_side(BI, 200.0, Some(80.0), 2.0)),
        ]);
        let plain = r.ratios.plain.as_ref().expect("plain ratios");
        assert_eq!(plain.pps_delivered, Some(3.0));
        assert_eq!(plain.rtt_p50_us, Some(0.5));
        assert_eq!(plain.pps_per_busy_core, Some(1.5));
        let ipip = r.ratios.ipip.as_ref().expect("ipip ratios");
        assert_eq!(ipip.pps_delivered, Some(2.5));
        assert_eq!(ipip.rtt_p50_us, Some(2.0));
        assert_eq!(ipip.busy_cores, Some(2.0));
    }

    #[test]
    fn rounds_combine_into_medians_with_every_round_kept() {
        let rounds = vec![
            cross_side(KP, 100.0, Some(10.0), 1.0),
            cross_side(KP, 300.0, None, 2.0),
            cross_side(KP, 200.0, Some(30.0), 1.5),
        ];
        let combined = combine_rounds(rounds).unwrap();
        assert_eq!(combined.measured.pps_delivered, 200.0);
        assert_eq!(combined.measured.pps_offered, 400.0);
        assert_eq!(combined.measured.busy_cores, 1.5);
        assert_eq!(
            combined.measured.rtt_p50_us,
            Some(20.0),
            "a round without RTT is skipped"
        );
        assert_eq!(combined.rounds.len(), 3);
        assert_eq!(combined.rounds[1].pps_delivered, 300.0, "rounds in order");
        assert!(combine_rounds(Vec::new()).is_none());
    }

    #[test]
    fn per_round_ratios_pair_the_same_round() {
        let kernel = combine_rounds(vec![
            cross_side(KP, 100.0, None, 1.0),
            cross_side(KP, 200.0, None, 1.0),
        ])
        .unwrap();
        let brindle = combine_rounds(vec![
            cross_side(BP, 300.0, None, 1.0),
            cross_side(BP, 100.0, None, 1.0),
        ])
        .unwrap();
        let r = report([Some(kernel), None, Some(brindle), None]);
        assert_eq!(
            r.ratios.plain_pps_delivered_by_round,
            vec![Some(3.0), Some(0.5)]
        );
        assert!(r.ratios.ipip_pps_delivered_by_round.is_empty());
        // The headline ratio is of the medians (150 vs 200), not the median of the ratios.
        assert_eq!(
            r.ratios.plain.as_ref().unwrap().pps_delivered,
            Some(200.0 / 150.0)
        );
        assert!(
            markdown(&r).contains("plain 3.00, 0.50; IPIP ."),
            "{}",
            markdown(&r)
        );
    }

    #[test]
    fn a_missing_side_leaves_only_its_ratio_empty() {
        let r = report([
            Some(cross_side(KP, 100.0, Some(50.0), 1.0)),
            None,
            Some(cross_side(BP, 300.0, None, 2.0)),
            Some(cross_side(BI, 200.0, Some(80.0), 2.0)),
        ]);
        assert!(r.ratios.ipip.is_none());
        let plain = r.ratios.plain.as_ref().unwrap();
        assert_eq!(plain.pps_delivered, Some(3.0));
        assert_eq!(plain.rtt_p50_us, None, "no RTT on one side, no RTT ratio");
    }

    #[test]
    fn markdown_rows_put_plain_then_ipip_with_their_ratios() {
        let r = report([
            Some(cross_side(KP, 100.0, Some(50.0), 1.0)),
            Some(cross_side(KI, 80.0, Some(40.0), 1.0)),
            Some(cross_side(BP, 300.0, Some(25.0), 2.0)),
            None,
        ]);
        let rows = markdown_rows(&r);
        assert_eq!(rows.len(), METRICS.len());
        assert_eq!(
            rows[0],
            "| pps_delivered | 100 | 300 | 3.000 | 80 | - | - |"
        );
        assert_eq!(
            rows[2],
            "| rtt_p50_us | 50.0 | 25.0 | 0.500 | 40.0 | - | - |"
        );
        assert_eq!(
            rows[4],
            "| busy_cores | 1.00 | 2.00 | 2.000 | 1.00 | - | - |"
        );
        let md = markdown(&r);
        assert!(
            md.contains("| metric | kernel plain | brindle plain |"),
            "{md}"
        );
        assert!(md.contains("load average before 1.00 2.00 3.00"), "{md}");
    }

    #[test]
    fn json_field_names_are_stable() {
        let mut r = report([
            Some(cross_side(KP, 100.0, Some(50.0), 1.0)),
            Some(cross_side(KI, 80.0, Some(40.0), 1.0)),
            Some(cross_side(BP, 300.0, Some(25.0), 2.0)),
            Some(cross_side(BI, 200.0, Some(80.0), 2.0)),
        ]);
        r.failures.push(SideFailure {
            side: "brindle_ipip",
            round: 2,
            error: "boom".into(),
        });
        let json = serde_json::to_value(&r).unwrap();
        for side in [
            "kernel_plain",
            "kernel_ipip",
            "brindle_plain",
            "brindle_ipip",
        ] {
            for field in [
                "side",
                "encap",
                "pps_delivered",
                "pps_offered",
                "rtt_p50_us",
                "rtt_p99_us",
                "busy_cores",
                "pps_per_busy_core",
                "path",
            ] {
                assert!(json[side].get(field).is_some(), "{side}.{field}");
            }
            assert_eq!(json[side]["side"], side);
        }
        for encap in ["plain", "ipip"] {
            assert!(
                json["ratios"][encap].get("pps_delivered").is_some(),
                "{encap}"
            );
        }
        assert_eq!(json["kernel_ipip_method"], "lwt-bpf");
        assert_eq!(json["failures"][0]["side"], "brindle_ipip");
        assert_eq!(json["kernel_ipip"]["encap"], "ipip");
    }

    #[test]
    fn node_cpus_take_one_core_for_both_or_one_each() {
        assert_eq!(parse_node_cpus("1"), Ok([Some(1), Some(1)]));
        assert_eq!(parse_node_cpus("1,0"), Ok([Some(1), Some(0)]));
        assert_eq!(parse_node_cpus("none"), Ok([None, None]));
        assert_eq!(parse_node_cpus("1, none"), Ok([Some(1), None]));
        for bad in ["", "x", "1,2,3", "-1"] {
            let err = parse_node_cpus(bad).unwrap_err();
            assert!(err.contains("node-cpus"), "{bad}: {err}");
        }
    }

    #[test]
    fn brindle_config_pins_first_and_routes_last() {
        let spec = MultiLabSpec::new("xn", 2, 1);
        let route = brindle_route_toml(&spec, 2, Encap::Ipip);
        assert_eq!(
            route,
            "\n[[route]]\nprefix = \"192.168.2.0/24\"\nvia = \"10.98.0.2\"\nencap = \"ipip\"\n"
        );
        assert!(brindle_route_toml(&spec, 1, Encap::Plain)
            .contains("prefix = \"192.168.1.0/24\"\nvia = \"10.98.0.1\"\nencap = \"none\""));
        let lab = "uplink = \"eth0\"\nmode = \"interrupt\"\n\n[[workload]]\ninterface = \"c\"\n";
        let config = brindle_node_toml(lab, Some(1), &route);
        assert!(
            config.starts_with("cores = [1]\nuplink = \"eth0\"\n"),
            "{config}"
        );
        assert!(config.ends_with(&route), "{config}");
        assert_eq!(
            brindle_node_toml(lab, None, ""),
            lab,
            "unpinned: no cores key"
        );
    }

    #[test]
    fn kernel_plain_commands_wire_calico_and_route_via_the_other_node() {
        let spec = MultiLabSpec::new("xn", 2, 1);
        let cali = spec.node_spec(1).host_interface(1);
        let commands: Vec<String> = kernel_forwarding_commands(&spec, 1, 2, Encap::Plain)
            .iter()
            .map(|c| c.join(" "))
            .collect();
        let expected = [
            "ip netns exec xn1-node sysctl -q -w net.ipv4.ip_forward=1".to_string(),
            format!("ip netns exec xn1-node sysctl -q -w net.ipv4.conf.{cali}.proxy_arp=1"),
            format!("ip netns exec xn1-node sysctl -q -w net.ipv4.neigh.{cali}.proxy_delay=0"),
            format!("ip -n xn1-node route add 192.168.1.1/32 dev {cali} scope link"),
            "ip -n xn1-node route add 169.254.1.1 dev lo".to_string(),
            "ip -n xn1-node route add 192.168.2.0/24 via 10.98.0.2 dev eth0".to_string(),
        ];
        assert_eq!(commands, expected);
        // With IPIP the route to the other block belongs to the tunnel set-up instead.
        let ipip = kernel_forwarding_commands(&spec, 2, 1, Encap::Ipip);
        assert_eq!(ipip.len(), expected.len() - 1);
        assert!(ipip
            .iter()
            .all(|c| !c.contains(&"192.168.1.0/24".to_string())));
    }

    #[test]
    fn kernel_ipip_commands_route_onlink_through_the_tunnel_or_the_bpf_encap() {
        let spec = MultiLabSpec::new("xn", 2, 1);
        let device: Vec<String> = kernel_ipip_device_commands(&spec, 2, 1)
            .iter()
            .map(|c| c.join(" "))
            .collect();
        assert_eq!(
            device,
            [
                "ip -n xn2-node link set tunl0 mtu 1480 up",
                "ip -n xn2-node addr add 192.168.2.0/32 dev tunl0",
                "ip -n xn2-node route add 192.168.1.0/24 via 10.98.0.1 dev tunl0 onlink",
            ]
        );
        let bpf: Vec<String> = kernel_ipip_bpf_commands(&spec, 1, 2, Path::new("/w/n1.o"))
            .iter()
            .map(|c| c.join(" "))
            .collect();
        assert_eq!(
            bpf[0],
            "ip -n xn1-node route add 192.168.2.0/24 via 10.98.0.2 dev eth0 mtu 1480 \
             encap bpf xmit obj /w/n1.o section lwt_xmit headroom 20"
        );
        assert_eq!(
            bpf[2],
            "ip netns exec xn1-node tc filter add dev eth0 ingress bpf da obj /w/n1.o sec tc"
        );
        let compile = kernel_ipip_bpf_compile_command(
            "clang",
            &spec,
            1,
            2,
            Path::new("/w/k.c"),
            Path::new("/w/n1.o"),
        );
        assert!(
            compile.contains(&"-DLOCAL_IP=0x0a620001".to_string()),
            "{compile:?}"
        );
        assert!(
            compile.contains(&"-DREMOTE_IP=0x0a620002".to_string()),
            "{compile:?}"
        );
    }

    fn evidence(ipip: usize, bare: usize, tx: u64, mean: f64) -> PathEvidence {
        PathEvidence {
            uplink_tx_packets: tx,
            uplink_tx_bytes_per_packet: Some(mean),
            capture_ipip: ipip,
            capture_bare: bare,
            ..PathEvidence::default()
        }
    }

    #[test]
    fn path_check_wants_bare_frames_on_plain_sides() {
        assert_eq!(
            check_path(KP, 64, 1000, &evidence(0, 10, 1005, 60.1)),
            Ok(())
        );
        let err = check_path(KP, 64, 1000, &evidence(10, 0, 1005, 80.0)).unwrap_err();
        assert!(err.contains("inside IPIP"), "{err}");
        let err = check_path(KP, 64, 1000, &evidence(0, 10, 1005, 80.0)).unwrap_err();
        assert!(err.contains("averaged"), "{err}");
        let err = check_path(KP, 64, 1000, &evidence(0, 10, 10, 60.0)).unwrap_err();
        assert!(err.contains("fewer than"), "{err}");
        let err = check_path(KP, 64, 0, &evidence(0, 10, 10, 60.0)).unwrap_err();
        assert!(err.contains("received nothing"), "{err}");
    }

    #[test]
    fn path_check_wants_wrapped_frames_and_tunnel_counters_on_ipip_sides() {
        let wrapped = evidence(10, 0, 1005, 80.0);
        assert_eq!(check_path(KI, 64, 1000, &wrapped), Ok(()));
        assert!(
            check_path(KI, 64, 1000, &evidence(5, 1, 1005, 80.0)).is_err(),
            "a bare ping"
        );
        let device = PathEvidence {
            tunnel_tx_packets_node1: Some(1003),
            tunnel_rx_packets_node2: Some(999),
            ..wrapped.clone()
        };
        let err = check_path(KI, 64, 1000, &device).unwrap_err();
        assert!(err.contains("tunl0 rx_packets on node 2"), "{err}");
    }

    #[test]
    fn path_check_reads_brindle_counters() {
        let plain = PathEvidence {
            brindle_forwarded_node1: Some(1010),
            brindle_ipip_encapsulated_node1: Some(0),
            brindle_ipip_decapsulated_node2: Some(0),
            ..evidence(0, 10, 1005, 60.0)
        };
        assert_eq!(check_path(BP, 64, 1000, &plain), Ok(()));
        let leaked = PathEvidence {
            brindle_ipip_encapsulated_node1: Some(3),
            ..plain.clone()
        };
        assert!(check_path(BP, 64, 1000, &leaked).is_err());
        let ipip = PathEvidence {
            brindle_forwarded_node1: Some(1010),
            brindle_ipip_encapsulated_node1: Some(1010),
            brindle_ipip_decapsulated_node2: Some(1000),
            ..evidence(10, 0, 1005, 80.0)
        };
        assert_eq!(check_path(BI, 64, 1000, &ipip), Ok(()));
        let unwrapped_none = PathEvidence {
            brindle_ipip_decapsulated_node2: Some(0),
            ..ipip
        };
        let err = check_path(BI, 64, 1000, &unwrapped_none).unwrap_err();
        assert!(err.contains("ipip_decapsulated on node 2"), "{err}");
    }

    #[test]
    fn the_kernel_ipip_program_compiles_for_each_node() {
        let dir = std::env::temp_dir().join(format!("crossnode-bpf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join("kernel_ipip.bpf.c");
        std::fs::write(&source, KERNEL_IPIP_BPF_SOURCE).unwrap();
        let spec = MultiLabSpec::new("xn", 2, 1);
        for (k, other) in [(1, 2), (2, 1)] {
            let object = dir.join(format!("n{k}.o"));
            let compile =
                kernel_ipip_bpf_compile_command("clang", &spec, k, other, &source, &object);
            let args: Vec<&str> = compile.iter().map(String::as_str).collect();
            let result = cmd::run(&args, Duration::from_secs(60));
            let size = std::fs::metadata(&object).map(|m| m.len()).unwrap_or(0);
            let _ = std::fs::remove_file(&object);
            result.unwrap();
            assert!(size > 0, "node {k}: empty object");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn uplink_frames_grow_by_one_ipv4_header_inside_ipip() {
        assert_eq!(expected_uplink_frame_len(64, Encap::Plain), 60);
        assert_eq!(expected_uplink_frame_len(64, Encap::Ipip), 80);
        assert_eq!(TUNNEL_MTU, 1480);
    }

    #[test]
    fn lab_names_fit_a_multi_node_lab() {
        let tag = pid_tag(5);
        assert!(!tag.is_empty() && tag.len() <= 5, "{tag}");
        for side in Side::ALL {
            let spec = MultiLabSpec::new(format!("{}{tag}", side.lab_prefix()), 2, 1);
            spec.validate().unwrap();
        }
    }
}
