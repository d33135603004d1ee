//! Traffic: workload 1 of node 1 to workload 1 of node 2.

use super::*;

/// Who sends to whom.
#[derive(Clone, Debug)]
pub(super) struct WorkloadPath {
    pub(super) from_ns: String,
    pub(super) to_ns: String,
    pub(super) to_ip: Ipv4Addr,
    pub(super) switch_ns: String,
    pub(super) switch_port: String,
    pub(super) node_ips: [Ipv4Addr; 2],
    pub(super) from_ip: Ipv4Addr,
}

impl WorkloadPath {
    pub(super) fn of(lab: &MultiLab) -> Result<WorkloadPath, BenchError> {
        let workload = |k: usize| {
            lab.node(k)
                .and_then(|n| n.workload(1))
                .ok_or_else(|| BenchError::Run(format!("the lab has no workload on node {k}")))
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

pub(super) fn exec(
    ns: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<std::process::Output, CmdError> {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    cmd::run_interruptible(&full, timeout)
}

/// Pings once per attempt until a reply comes back or `timeout` passes; `still_ok` is asked
/// between attempts (to notice a dead node).
pub(super) fn wait_until_reachable(
    path: &WorkloadPath,
    timeout: Duration,
    mut still_ok: impl FnMut() -> Result<(), BenchError>,
) -> Result<(), BenchError> {
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
    Err(BenchError::Run(format!(
        "{} -> {target} not reachable within {timeout:?}",
        path.from_ns
    )))
}

/// Captures node 1's port of the segment during [`PATH_PINGS`] pings; returns the ICMP
/// packets between the workloads seen inside IPIP between the nodes and seen bare.
pub(super) fn capture_path_pings(
    path: &WorkloadPath,
    dir: &Path,
) -> Result<(usize, usize), BenchError> {
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
            return Err(BenchError::Run(format!(
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
pub(super) fn read_capture(file: &Path, filter: &str, needle: &str) -> Result<usize, BenchError> {
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
pub(super) fn link_tx(ns: &str, dev: &str) -> Result<(u64, u64), BenchError> {
    let stats = link_stats(ns, dev)?;
    let tx = &stats["tx"];
    Ok((
        tx["packets"].as_u64().unwrap_or(0),
        tx["bytes"].as_u64().unwrap_or(0),
    ))
}

pub(super) fn link_rx_packets(ns: &str, dev: &str) -> Result<u64, BenchError> {
    Ok(link_stats(ns, dev)?["rx"]["packets"].as_u64().unwrap_or(0))
}

/// The `stats64` object of `ip -j -s link show dev`.
pub(super) fn link_stats(ns: &str, dev: &str) -> Result<serde_json::Value, BenchError> {
    let args = ["ip", "-j", "-s", "-n", ns, "link", "show", "dev", dev];
    let out = cmd::run(&args, CONFIG_TIMEOUT)?;
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| BenchError::Run(format!("`{}` printed no JSON: {e}", cmd::display(&args))))?;
    parsed
        .get(0)
        .and_then(|link| link.get("stats64"))
        .cloned()
        .ok_or_else(|| BenchError::Run(format!("`{}`: no stats64", cmd::display(&args))))
}

/// Sink in node 2's workload, generator in node 1's: `e2e`'s measurement, across nodes.
pub(super) fn udp_run(
    path: &WorkloadPath,
    opts: &CrossnodeOptions,
    dir: &Path,
) -> Result<(SendReport, SinkReport, f64), BenchError> {
    let params = e2e::UdpParams {
        perf_exe: opts.perf_exe.clone(),
        duration: opts.duration,
        frame_size: opts.frame_size,
        batch: opts.batch,
        port: opts.port,
    };
    e2e::udp_between(
        &path.from_ns,
        &path.to_ns,
        path.to_ip,
        &dir.join("sink-ready"),
        &params,
    )
}

/// `e2e`'s ping measurement, from node 1's workload to node 2's.
pub(super) fn ping_run(
    path: &WorkloadPath,
    opts: &CrossnodeOptions,
) -> Result<(Latencies, u32), BenchError> {
    e2e::ping_between(&path.from_ns, path.to_ip, opts.pings)
}
