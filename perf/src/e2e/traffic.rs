//! The traffic between two workloads: the UDP generator and sink, and ping.

use super::*;

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
pub(super) fn exec_in(
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
) -> Result<(SendReport, SinkReport, f64), BenchError> {
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
        return Err(BenchError::Run("interrupted by a signal".into()));
    }
    if !out.status.success() {
        return Err(BenchError::Run(format!(
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
) -> Result<ChildGuard, BenchError> {
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
            return Err(BenchError::Run(
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
) -> Result<SinkReport, BenchError> {
    let out = sink
        .wait_output(Duration::from_secs(15) + duration)
        .ok_or_else(|| BenchError::Run("udp-sink did not finish".into()))?;
    let _ = std::fs::remove_file(ready);
    if !out.status.success() {
        return Err(BenchError::Run(format!(
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
) -> Result<(Latencies, u32), BenchError> {
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

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(
    what: &str,
    bytes: &[u8],
) -> Result<T, BenchError> {
    serde_json::from_slice(bytes).map_err(|e| {
        BenchError::Run(format!(
            "{what} printed unexpected output ({e}): {}",
            String::from_utf8_lossy(bytes).trim()
        ))
    })
}
