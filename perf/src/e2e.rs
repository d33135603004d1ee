//! The end-to-end benchmark: the same generator, sink and ping across (a) a Kernel-mode lab,
//! where Linux forwards like Calico's kernel dataplane, and (b) a Brindle-mode lab, where
//! only `brindle-node` forwards. Both run one after the other in one invocation, because
//! these machines are noisy and only ratios measured side by side mean anything.
//!
//! Placement on the two cores: the UDP generator and the ping run under `taskset -c 0`; in
//! the Brindle run the node's poll-mode worker is pinned to core 1 by its config. The sink is
//! not pinned. Busy cores are measured for the whole machine from `/proc/stat`, so anything
//! else running at the same time (a build) counts too: run on a quiet machine.

mod report;

pub use report::*;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::e2e_xdp::{Generator, XdpUdp};
use crate::rounds::ratio;
use crate::stats::{self, CpuTimes, Latencies};
use lab::cmd::{self, ChildGuard};
use lab::node::{NodeError, NodeLaunch};
use lab::udp::{SendReport, SinkReport};
use lab::{Forwarding, Lab, LabSpec};

/// The core the generator and ping are pinned to.
pub const GENERATOR_CPU: usize = 0;
/// The core brindle-node's worker is pinned to in poll mode.
pub const NODE_CPU: usize = 1;
/// How long brindle-node gets to start forwarding before the run is declared failed.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Grace between SIGTERM and SIGKILL for brindle-node.
const NODE_STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct E2eOptions {
    /// `None` runs the kernel side only (until brindle-node exists).
    pub brindle_node: Option<PathBuf>,
    /// This benchmark's own executable, which provides `udp-send` and `udp-sink`.
    pub perf_exe: PathBuf,
    pub duration: Duration,
    pub pings: u32,
    pub frame_size: usize,
    pub batch: usize,
    pub port: u16,
    /// Scratch directory for node.toml, the control socket and logs.
    pub work_dir: PathBuf,
    /// brindle-node's worker mode: "poll" (busy, pinned to [`NODE_CPU`]; the default, lowest
    /// latency, burns its core by design) or "interrupt" (sleeps in poll(2) when idle).
    pub node_mode: String,
    /// Kernel sockets (`udp-send`/`udp-sink`) or AF_XDP (`xdp-send`/`xdp-sink`, with loss
    /// and one-way latency) for the UDP runs.
    pub generator: Generator,
}

/// Measurements of one topology.
#[derive(Clone, Debug, Serialize)]
pub struct SideResult {
    pub forwarding: &'static str,
    /// Name of the lab the side ran in (its namespaces are `<lab>-node`, `<lab>-w1`, ...).
    pub lab: String,
    /// Datagrams the generator got into the kernel per second.
    pub pps_offered: f64,
    /// Datagrams the sink received per second of generator time.
    pub pps_delivered: f64,
    pub rtt_p50_us: Option<f64>,
    pub rtt_p99_us: Option<f64>,
    /// Busy cores of the whole machine during the UDP run.
    pub busy_cores: f64,
    pub pps_per_busy_core: Option<f64>,
    pub sent: u64,
    pub received: u64,
    pub generator_secs: f64,
    pub pings_sent: u32,
    pub ping_replies: u64,
}

/// brindle / kernel for each metric (`None` where the kernel value is zero or missing).
#[derive(Clone, Debug, Serialize)]
pub struct Ratios {
    pub pps_delivered: Option<f64>,
    pub pps_offered: Option<f64>,
    pub rtt_p50_us: Option<f64>,
    pub rtt_p99_us: Option<f64>,
    pub busy_cores: Option<f64>,
    pub pps_per_busy_core: Option<f64>,
}

/// One point of a latency CDF: `fraction` of the pings came back within `rtt_us`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CdfPoint {
    pub fraction: f64,
    pub rtt_us: f64,
}

/// UDP rates of one side at one frame size.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SizeSide {
    pub pps_offered: f64,
    pub pps_delivered: f64,
    pub sent: u64,
    pub received: u64,
    /// Loss, reordering and one-way latency (AF_XDP generator only).
    pub xdp: Option<XdpUdp>,
}

/// Both sides at one frame size (`--sizes`), measured in the same labs as the main run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SizeResult {
    pub frame_size: usize,
    pub kernel: SizeSide,
    pub brindle: Option<SizeSide>,
    /// brindle/kernel pps_delivered.
    pub ratio_pps_delivered: Option<f64>,
}

/// At most this many extra frame sizes per run: each costs a UDP run per side.
pub const MAX_SIZES: usize = 16;

#[derive(Clone, Debug, Serialize)]
pub struct E2eReport {
    pub frame_size: usize,
    /// "socket" or "xdp": which generator and sink measured UDP.
    pub generator: Generator,
    pub duration_secs: f64,
    pub pings: u32,
    pub generator_cpu: usize,
    pub node_cpu: usize,
    pub node_mode: String,
    pub ncpus: usize,
    pub kernel: SideResult,
    pub brindle: Option<SideResult>,
    pub ratios: Option<Ratios>,
    /// UDP pps per frame size, in the order asked for; empty without `--sizes`.
    pub by_size: Vec<SizeResult>,
    /// Ping RTT CDF of each side, read from the same histogram as the percentiles.
    pub rtt_cdf_kernel: Vec<CdfPoint>,
    pub rtt_cdf_brindle: Vec<CdfPoint>,
    /// Loss, reordering and one-way latency of each side's main UDP run (AF_XDP generator
    /// only; the kernel side's sink is AF_XDP too, so both sides are measured alike).
    pub udp_xdp_kernel: Option<XdpUdp>,
    pub udp_xdp_brindle: Option<XdpUdp>,
}

/// What a side measures beyond [`SideResult`] (kept apart because other benchmarks build
/// `SideResult`s of their own).
#[derive(Default)]
struct SideExtras {
    by_size: Vec<SizeSide>,
    rtt_cdf: Vec<CdfPoint>,
    udp_xdp: Option<XdpUdp>,
}

#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    #[error(transparent)]
    Lab(#[from] lab::LabError),
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
    #[error("{0}")]
    Run(String),
}

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> E2eError {
    let what = what.into();
    move |source| E2eError::Io { what, source }
}

/// Runs both sides and returns the report (written nowhere; see [`write_report`]).
pub fn run(opts: &E2eOptions) -> Result<E2eReport, E2eError> {
    run_with_sizes(opts, &[])
}

/// [`run`], then in each side's lab one more UDP run per frame size in `sizes` (pps vs
/// packet size; no pings or CPU figures for those).
pub fn run_with_sizes(opts: &E2eOptions, sizes: &[usize]) -> Result<E2eReport, E2eError> {
    if sizes.len() > MAX_SIZES {
        return Err(E2eError::Run(format!(
            "invalid sizes: {} given, at most {MAX_SIZES}",
            sizes.len()
        )));
    }
    for &size in sizes {
        lab::udp::payload_len(size)
            .map_err(|e| E2eError::Run(format!("invalid sizes: {size}: {e}")))?;
        if opts.generator == Generator::Xdp && size < lab::xdpgen::MIN_FRAME {
            return Err(E2eError::Run(format!(
                "invalid sizes: {size}: the xdp generator needs frames of at least {} bytes",
                lab::xdpgen::MIN_FRAME
            )));
        }
    }
    // Fail before the kernel side, not after it.
    if let Some(node) = &opts.brindle_node {
        if !node.is_file() {
            return Err(E2eError::Run(format!(
                "brindle-node {} is not a file",
                node.display()
            )));
        }
    }
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    let tag = lab::run::run_tag(5);
    let sides = if opts.brindle_node.is_some() { 2 } else { 1 };
    let mut progress = crate::progress::Progress::new("e2e", sides);
    progress.step("kernel side");
    let (kernel, kernel_extras) = run_kernel_side(opts, sizes, &format!("ek{tag}"))?;
    let (brindle, brindle_extras) = match &opts.brindle_node {
        Some(node) => {
            progress.step("brindle side");
            let (side, extras) = run_brindle_side(opts, sizes, node, &format!("eb{tag}"))?;
            (Some(side), extras)
        }
        None => (None, SideExtras::default()),
    };
    let ratios = brindle.as_ref().map(|b| ratios(&kernel, b));
    let by_size = sizes
        .iter()
        .zip(&kernel_extras.by_size)
        .enumerate()
        .map(|(i, (&frame_size, k))| {
            let b = brindle_extras.by_size.get(i).cloned();
            SizeResult {
                frame_size,
                ratio_pps_delivered: ratio(
                    b.as_ref().map(|b| b.pps_delivered),
                    Some(k.pps_delivered),
                ),
                kernel: k.clone(),
                brindle: b,
            }
        })
        .collect();
    Ok(E2eReport {
        frame_size: opts.frame_size,
        generator: opts.generator,
        duration_secs: opts.duration.as_secs_f64(),
        pings: opts.pings,
        generator_cpu: GENERATOR_CPU,
        node_cpu: NODE_CPU,
        node_mode: opts.node_mode.clone(),
        ncpus: stats::online_cpus(),
        kernel,
        brindle,
        ratios,
        by_size,
        rtt_cdf_kernel: kernel_extras.rtt_cdf,
        rtt_cdf_brindle: brindle_extras.rtt_cdf,
        udp_xdp_kernel: kernel_extras.udp_xdp,
        udp_xdp_brindle: brindle_extras.udp_xdp,
    })
}

fn run_kernel_side(
    opts: &E2eOptions,
    sizes: &[usize],
    name: &str,
) -> Result<(SideResult, SideExtras), E2eError> {
    let mut spec = LabSpec::new(name, 2);
    spec.forwarding = Forwarding::Kernel;
    let lab = Lab::up(&spec)?;
    wait_until_reachable(&lab, Duration::from_secs(5), || Ok(()))?;
    measure_all(&lab, opts, sizes, "kernel")
    // `lab` is dropped here, and on every early return above: namespaces removed.
}

fn run_brindle_side(
    opts: &E2eOptions,
    sizes: &[usize],
    brindle_node: &Path,
    name: &str,
) -> Result<(SideResult, SideExtras), E2eError> {
    let spec = LabSpec::new(name, 2);
    let lab = Lab::up(&spec)?;
    let config_path = opts.work_dir.join("node.toml");
    let socket = opts.work_dir.join("node.sock");
    let log_path = opts.work_dir.join("node.log");
    let config = lab.node_config_toml_pinned(&opts.node_mode, &socket, &[NODE_CPU]);
    std::fs::write(&config_path, config)
        .map_err(io_err(format!("writing {}", config_path.display())))?;
    let mut node = NodeLaunch::new(lab.node_netns(), brindle_node, &log_path)
        .config(&config_path)
        .spawn()?;

    wait_until_reachable(&lab, NODE_READY_TIMEOUT, || {
        Ok(node.check_running("before forwarding")?)
    })?;
    let result = measure_all(&lab, opts, sizes, "brindle");
    let status = node.stop(NODE_STOP_GRACE);
    let result = result?;
    if let Some(status) = status {
        if !status.success() {
            eprintln!(
                "brindle-node exited with {status} after SIGTERM; log: {}",
                log_path.display()
            );
        }
    }
    Ok(result)
}

/// Pings w1 -> w2 once per second-bounded attempt until a reply comes back or `timeout`
/// passes; `still_ok` is consulted between attempts (e.g. to notice a dead node).
fn wait_until_reachable(
    lab: &Lab,
    timeout: Duration,
    mut still_ok: impl FnMut() -> Result<(), E2eError>,
) -> Result<(), E2eError> {
    let (w1, w2) = two_workloads(lab)?;
    let target = w2.1.to_string();
    let started = Instant::now();
    let max_attempts = timeout.as_secs().max(1) * 4;
    for _ in 0..max_attempts {
        if lab::ping::answers(&w1.0, w2.1)? {
            return Ok(());
        }
        still_ok()?;
        if started.elapsed() >= timeout || cmd::interrupted() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(E2eError::Run(format!(
        "{} -> {target} not reachable within {timeout:?}",
        w1.0
    )))
}

type NsAndIp = (String, Ipv4Addr);

fn two_workloads(lab: &Lab) -> Result<(NsAndIp, NsAndIp), E2eError> {
    match (lab.workload(1), lab.workload(2)) {
        (Some(a), Some(b)) => Ok(((a.netns.clone(), a.ip), (b.netns.clone(), b.ip))),
        _ => Err(E2eError::Run("the lab needs two workloads".into())),
    }
}

/// One side's measurements: UDP throughput with CPU accounting, then ping RTTs.
pub fn measure(lab: &Lab, opts: &E2eOptions, side: &'static str) -> Result<SideResult, E2eError> {
    Ok(measure_all(lab, opts, &[], side)?.0)
}

/// Quantiles the CDF is drawn through: every percent, and the tail at 99.9%.
fn cdf_quantiles() -> impl Iterator<Item = f64> {
    (0..100).map(|p| f64::from(p) / 100.0).chain([0.999, 1.0])
}

/// [`measure`], then the RTT CDF and one UDP run per extra frame size.
fn measure_all(
    lab: &Lab,
    opts: &E2eOptions,
    sizes: &[usize],
    side: &'static str,
) -> Result<(SideResult, SideExtras), E2eError> {
    let (send, sink, busy_cores, udp_xdp) = udp_run_with_generator(lab, opts)?;
    let (latencies, pings_sent) = ping_run(lab, opts)?;
    let rtt_cdf = cdf_quantiles()
        .filter_map(|fraction| {
            let rtt_us = latencies.quantile_us(fraction)?;
            Some(CdfPoint { fraction, rtt_us })
        })
        .collect();
    let mut by_size = Vec::with_capacity(sizes.len());
    for &frame_size in sizes {
        let sized = E2eOptions {
            frame_size,
            ..opts.clone()
        };
        let (send, sink, _, xdp) = udp_run_with_generator(lab, &sized)?;
        let secs = if send.secs > 0.0 { send.secs } else { f64::NAN };
        by_size.push(SizeSide {
            pps_offered: send.sent as f64 / secs,
            pps_delivered: sink.received as f64 / secs,
            sent: send.sent,
            received: sink.received,
            xdp,
        });
    }
    let secs = if send.secs > 0.0 { send.secs } else { f64::NAN };
    let pps_delivered = sink.received as f64 / secs;
    let result = SideResult {
        forwarding: side,
        lab: lab.spec().name.clone(),
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
    Ok((
        result,
        SideExtras {
            by_size,
            rtt_cdf,
            udp_xdp,
        },
    ))
}

/// [`udp_run`] with the generator `opts` asks for; the AF_XDP one adds its details.
pub fn udp_run_with_generator(
    lab: &Lab,
    opts: &E2eOptions,
) -> Result<(SendReport, SinkReport, f64, Option<XdpUdp>), E2eError> {
    if opts.generator == Generator::Socket {
        let (send, sink, busy) = udp_run(lab, opts)?;
        return Ok((send, sink, busy, None));
    }
    let ((w1_ns, _), (w2_ns, w2_ip)) = two_workloads(lab)?;
    let ready = opts
        .work_dir
        .join(format!("sink-ready-{}", lab.spec().name));
    let (send, sink, busy, details) =
        crate::e2e_xdp::xdp_between(&w1_ns, &w2_ns, w2_ip, &ready, &UdpParams::of(opts))?;
    Ok((send, sink, busy, Some(details)))
}

/// Sink in w2, generator in w1 pinned to [`GENERATOR_CPU`]; CPU sampled around the generator.
pub fn udp_run(lab: &Lab, opts: &E2eOptions) -> Result<(SendReport, SinkReport, f64), E2eError> {
    let ((w1_ns, _), (w2_ns, w2_ip)) = two_workloads(lab)?;
    let ready = opts
        .work_dir
        .join(format!("sink-ready-{}", lab.spec().name));
    udp_between(&w1_ns, &w2_ns, w2_ip, &ready, &UdpParams::of(opts))
}

/// `ping -c N -i 0.002` from w1 to w2, pinned like the generator; RTTs from each reply line.
pub fn ping_run(lab: &Lab, opts: &E2eOptions) -> Result<(Latencies, u32), E2eError> {
    let ((w1_ns, _), (_, w2_ip)) = two_workloads(lab)?;
    ping_between(&w1_ns, w2_ip, opts.pings)
}

/// What one UDP measurement sends: the generator and sink (this benchmark's own executable),
/// for how long, in what frames.
#[derive(Clone, Debug)]
pub struct UdpParams {
    pub perf_exe: PathBuf,
    pub duration: Duration,
    pub frame_size: usize,
    pub batch: usize,
    pub port: u16,
}

impl UdpParams {
    pub fn of(opts: &E2eOptions) -> UdpParams {
        UdpParams {
            perf_exe: opts.perf_exe.clone(),
            duration: opts.duration,
            frame_size: opts.frame_size,
            batch: opts.batch,
            port: opts.port,
        }
    }
}

/// Runs `args` in namespace `ns`, bounded by `timeout` and cut short by a signal.
fn exec_in(
    ns: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<std::process::Output, cmd::CmdError> {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    cmd::run_interruptible(&full, timeout)
}

/// The UDP measurement between two namespaces: the sink in `to_ns` (it signals readiness by
/// creating `ready`), the generator in `from_ns` pinned to [`GENERATOR_CPU`], sending to
/// `to_ip`; busy cores sampled around the generator.
pub fn udp_between(
    from_ns: &str,
    to_ns: &str,
    to_ip: Ipv4Addr,
    ready: &Path,
    p: &UdpParams,
) -> Result<(SendReport, SinkReport, f64), E2eError> {
    let exe = p.perf_exe.to_string_lossy().to_string();
    let port = p.port.to_string();
    let sink = start_udp_sink(&exe, to_ns, p.port, p.duration, ready)?;
    let cpu = GENERATOR_CPU.to_string();
    let size = p.frame_size.to_string();
    let batch = p.batch.to_string();
    let duration = format!("{}", p.duration.as_secs_f64());
    let dst = to_ip.to_string();
    let before = CpuTimes::read().map_err(io_err("reading /proc/stat"))?;
    let out = exec_in(
        from_ns,
        &[
            "taskset",
            "-c",
            &cpu,
            &exe,
            "udp-send",
            "--dst",
            &dst,
            "--port",
            &port,
            "--size",
            &size,
            "--duration",
            &duration,
            "--batch",
            &batch,
        ],
        p.duration + Duration::from_secs(10),
    )?;
    let after = CpuTimes::read().map_err(io_err("reading /proc/stat"))?;
    if cmd::interrupted() {
        return Err(E2eError::Run("interrupted by a signal".into()));
    }
    if !out.status.success() {
        return Err(E2eError::Run(format!(
            "udp-send failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let send: SendReport = parse_json("udp-send", &out.stdout)?;
    let busy = before.busy_cores_until(&after, stats::online_cpus());

    let sink = finish_udp_sink(sink, p.duration, ready)?;
    Ok((send, sink, busy))
}

/// Starts `udp-sink` on `port` in `to_ns` (the `brindle-perf` at `exe`) and waits until it is
/// ready. It outlives a generator running for `duration` by a margin and leaves once traffic
/// has stopped for 1 s.
pub(crate) fn start_udp_sink(
    exe: &str,
    to_ns: &str,
    port: u16,
    duration: Duration,
    ready: &Path,
) -> Result<ChildGuard, E2eError> {
    let _ = std::fs::remove_file(ready);
    let sink_secs = (duration + Duration::from_secs(5)).as_secs().to_string();
    let port = port.to_string();
    let sink_child = Command::new("ip")
        .args(["netns", "exec", to_ns, exe, "udp-sink", "--port", &port])
        .args([
            "--duration",
            &sink_secs,
            "--idle-ms",
            "1000",
            "--ready-file",
        ])
        .arg(ready)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err("starting udp-sink"))?;
    let mut sink = ChildGuard::new("udp-sink", sink_child);
    let ready_by = Instant::now() + Duration::from_secs(5);
    while !ready.exists() {
        if Instant::now() >= ready_by || sink.try_wait().is_some() || cmd::interrupted() {
            return Err(E2eError::Run(
                "udp-sink did not become ready within 5 s".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(sink)
}

/// Waits for a sink [`start_udp_sink`] started (its generator ran for `duration`) and reads
/// its report.
pub(crate) fn finish_udp_sink(
    sink: ChildGuard,
    duration: Duration,
    ready: &Path,
) -> Result<SinkReport, E2eError> {
    let out = sink
        .wait_output(Duration::from_secs(15) + duration)
        .ok_or_else(|| E2eError::Run("udp-sink did not finish".into()))?;
    let _ = std::fs::remove_file(ready);
    if !out.status.success() {
        return Err(E2eError::Run(format!(
            "udp-sink failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_json("udp-sink", &out.stdout)
}

/// `ping -c pings -i 0.002` from `from_ns` to `to_ip`, pinned like the generator; RTTs from
/// each reply line.
pub fn ping_between(
    from_ns: &str,
    to_ip: Ipv4Addr,
    pings: u32,
) -> Result<(Latencies, u32), E2eError> {
    let count = pings.to_string();
    // Deadline: the pings at 2 ms apart plus a margin for the last reply.
    let deadline_secs = (u64::from(pings) * 2 / 1000 + 5).to_string();
    let timeout = Duration::from_secs(u64::from(pings) * 2 / 1000 + 15);
    let cpu = GENERATOR_CPU.to_string();
    let target = to_ip.to_string();
    let out = exec_in(
        from_ns,
        &[
            "taskset",
            "-c",
            &cpu,
            "ping",
            "-n",
            "-c",
            &count,
            "-i",
            "0.002",
            "-W",
            "1",
            "-w",
            &deadline_secs,
            &target,
        ],
        timeout,
    )?;
    let mut latencies = Latencies::new();
    for rtt in lab::ping::parse_ping_output(&String::from_utf8_lossy(&out.stdout)) {
        latencies.record(rtt);
    }
    Ok((latencies, pings))
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, E2eError> {
    serde_json::from_slice(bytes).map_err(|e| {
        E2eError::Run(format!(
            "{what} printed unexpected output ({e}): {}",
            String::from_utf8_lossy(bytes).trim()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(pps: f64, p50: Option<f64>, busy: f64) -> SideResult {
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

    #[test]
    fn ratios_are_brindle_over_kernel() {
        let r = ratios(&side(100.0, Some(50.0), 1.0), &side(300.0, Some(25.0), 2.0));
        assert_eq!(r.pps_delivered, Some(3.0));
        assert_eq!(r.rtt_p50_us, Some(0.5));
        assert_eq!(r.busy_cores, Some(2.0));
        assert_eq!(r.pps_per_busy_core, Some(1.5));
        let r = ratios(&side(0.0, None, 0.0), &side(300.0, Some(25.0), 2.0));
        assert_eq!(r.pps_delivered, None);
        assert_eq!(r.rtt_p50_us, None);
        assert_eq!(r.pps_per_busy_core, None);
    }

    #[test]
    fn markdown_has_a_row_per_metric_with_stable_names() {
        let kernel = side(100.0, Some(50.0), 1.0);
        let brindle = side(300.0, Some(25.0), 2.0);
        let report = E2eReport {
            frame_size: 64,
            generator: Generator::Socket,
            duration_secs: 5.0,
            pings: 500,
            generator_cpu: 0,
            node_cpu: 1,
            node_mode: "poll".into(),
            ncpus: 2,
            ratios: Some(ratios(&kernel, &brindle)),
            kernel,
            brindle: Some(brindle),
            by_size: vec![SizeResult {
                frame_size: 1500,
                kernel: SizeSide {
                    pps_offered: 80.0,
                    pps_delivered: 80.0,
                    sent: 400,
                    received: 400,
                    xdp: None,
                },
                brindle: Some(SizeSide {
                    pps_offered: 120.0,
                    pps_delivered: 100.0,
                    sent: 600,
                    received: 500,
                    xdp: None,
                }),
                ratio_pps_delivered: Some(1.25),
            }],
            rtt_cdf_kernel: vec![CdfPoint {
                fraction: 0.5,
                rtt_us: 50.0,
            }],
            rtt_cdf_brindle: vec![],
            udp_xdp_kernel: None,
            udp_xdp_brindle: None,
        };
        let md = markdown(&report);
        assert!(md.contains("| 1500 | 80 | 100 | 1.250 |"), "{md}");
        assert!(md.contains("| pps_delivered | 100 | 300 | 3.000 |"), "{md}");
        assert!(md.contains("| rtt_p50_us | 50.0 | 25.0 | 0.500 |"), "{md}");
        let json = serde_json::to_value(&report).unwrap();
        for field in [
            "pps_delivered",
            "pps_offered",
            "rtt_p50_us",
            "rtt_p99_us",
            "busy_cores",
            "pps_per_busy_core",
        ] {
            assert!(json["kernel"].get(field).is_some(), "kernel.{field}");
            assert!(json["brindle"].get(field).is_some(), "brindle.{field}");
            assert!(json["ratios"].get(field).is_some(), "ratios.{field}");
        }
        assert_eq!(json["by_size"][0]["frame_size"], 1500);
        assert_eq!(json["by_size"][0]["brindle"]["pps_delivered"], 100.0);
        assert_eq!(json["rtt_cdf_kernel"][0]["rtt_us"], 50.0);
    }
}
