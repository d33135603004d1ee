//! The AF_XDP generator in the end-to-end benchmark: which generator a run uses, the
//! details it keeps, the run between two workloads and its Markdown.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use lab::xdpgen::{
    loss_against, LatencySummary, XdpGenError, XdpSendReport, XdpSinkReport, MAX_BATCH,
};
use serde::{Deserialize, Serialize};

/// Which generator and sink the end-to-end UDP runs use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    /// `udp-send`/`udp-sink`: sendmmsg/recvmmsg through each workload's kernel stack.
    #[default]
    Socket,
    /// `xdp-send`/`xdp-sink`: AF_XDP on each workload's eth0, with loss and latency.
    Xdp,
}

impl std::str::FromStr for Generator {
    type Err = XdpGenError;
    fn from_str(s: &str) -> Result<Generator, XdpGenError> {
        match s {
            "socket" => Ok(Generator::Socket),
            "xdp" => Ok(Generator::Xdp),
            _ => Err(XdpGenError::Invalid {
                field: "generator",
                value: s.to_string(),
                reason: "must be socket or xdp".into(),
            }),
        }
    }
}

/// One UDP run with the AF_XDP generator, as the end-to-end report keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct XdpUdp {
    pub frame_size: usize,
    /// Frames the generator's TX path took, per second of generator time.
    pub pps_offered: f64,
    /// Frames the sink received, per second of generator time.
    pub pps_delivered: f64,
    pub sent: u64,
    pub received: u64,
    /// `sent - received`, and that over `sent`.
    pub lost: u64,
    pub loss_fraction: f64,
    pub reordered: u64,
    /// One-way latency, generator TX ring to sink RX ring.
    pub latency: Option<LatencySummary>,
    /// Frames the sink's kernel dropped for want of ring room (the sink was too slow).
    pub sink_rx_dropped: u64,
}

impl XdpUdp {
    pub fn of(send: &XdpSendReport, sink: &XdpSinkReport) -> XdpUdp {
        let (lost, loss_fraction) = loss_against(send.sent, sink.received);
        let per_sec = |n: u64| {
            if send.secs > 0.0 {
                n as f64 / send.secs
            } else {
                0.0
            }
        };
        XdpUdp {
            frame_size: send.frame_size,
            pps_offered: per_sec(send.sent),
            pps_delivered: per_sec(sink.received),
            sent: send.sent,
            received: sink.received,
            lost,
            loss_fraction,
            reordered: sink.reordered,
            latency: sink.latency.clone(),
            sink_rx_dropped: sink.rx_dropped,
        }
    }
}

/// [`crate::e2e::udp_between`] with the AF_XDP generator and sink: the sink on `to_ns`'s
/// eth0 (ready when `ready` exists), the generator flat out on `from_ns`'s eth0 pinned to
/// [`crate::e2e::GENERATOR_CPU`], busy cores sampled around it. Returns the socket-style
/// reports (for the shared pps columns), the busy cores and the AF_XDP details.
pub fn xdp_between(
    from_ns: &str,
    to_ns: &str,
    to_ip: Ipv4Addr,
    ready: &Path,
    p: &crate::e2e::UdpParams,
) -> Result<(lab::udp::SendReport, lab::udp::SinkReport, f64, XdpUdp), crate::error::BenchError> {
    use crate::error::BenchError;
    use lab::cmd::{self, ChildGuard};
    let run_err = |what: String| BenchError::Run(what);
    let exe = p.perf_exe.to_string_lossy().to_string();
    let _ = std::fs::remove_file(ready);
    let sink_secs = (p.duration + Duration::from_secs(5)).as_secs().to_string();
    let port = p.port.to_string();
    let sink_child = std::process::Command::new("ip")
        .args([
            "netns", "exec", to_ns, &exe, "xdp-sink", "--dev", "eth0", "--port", &port,
        ])
        .args([
            "--duration",
            &sink_secs,
            "--idle-ms",
            "1000",
            "--ready-file",
        ])
        .arg(ready)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| run_err(format!("starting xdp-sink: {e}")))?;
    let mut sink = ChildGuard::new("xdp-sink", sink_child);
    let ready_by = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        if let Some(status) = sink.try_wait() {
            let out = sink.wait_output(Duration::from_secs(1));
            let stderr = out
                .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
                .unwrap_or_default();
            return Err(run_err(format!(
                "xdp-sink exited ({status}) before it was ready: {stderr}"
            )));
        }
        if Instant::now() >= ready_by || cmd::interrupted() {
            return Err(run_err("xdp-sink did not become ready within 10 s".into()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    let cpu = crate::e2e::GENERATOR_CPU.to_string();
    let size = p.frame_size.to_string();
    let batch = p.batch.min(MAX_BATCH).to_string();
    let duration = format!("{}", p.duration.as_secs_f64());
    let dst = to_ip.to_string();
    let before =
        crate::stats::CpuTimes::read().map_err(|e| run_err(format!("reading /proc/stat: {e}")))?;
    let out = cmd::run_interruptible(
        &[
            "ip",
            "netns",
            "exec",
            from_ns,
            "taskset",
            "-c",
            &cpu,
            &exe,
            "xdp-send",
            "--dev",
            "eth0",
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
        p.duration + Duration::from_secs(15),
    )?;
    let after =
        crate::stats::CpuTimes::read().map_err(|e| run_err(format!("reading /proc/stat: {e}")))?;
    if cmd::interrupted() {
        return Err(run_err("interrupted by a signal".into()));
    }
    if !out.status.success() {
        return Err(run_err(format!(
            "xdp-send failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let send: XdpSendReport = serde_json::from_slice(&out.stdout).map_err(|e| {
        run_err(format!(
            "xdp-send printed unexpected output ({e}): {}",
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    })?;
    let busy = before.busy_cores_until(&after, crate::stats::online_cpus());
    let sink_out = sink
        .wait_output(Duration::from_secs(15) + p.duration)
        .ok_or_else(|| run_err("xdp-sink did not finish".into()))?;
    let _ = std::fs::remove_file(ready);
    if !sink_out.status.success() {
        return Err(run_err(format!(
            "xdp-sink failed: {}",
            String::from_utf8_lossy(&sink_out.stderr).trim()
        )));
    }
    let sink: XdpSinkReport = serde_json::from_slice(&sink_out.stdout).map_err(|e| {
        run_err(format!(
            "xdp-sink printed unexpected output ({e}): {}",
            String::from_utf8_lossy(&sink_out.stdout).trim()
        ))
    })?;
    let details = XdpUdp::of(&send, &sink);
    let send_report = lab::udp::SendReport {
        sent: send.sent,
        secs: send.secs,
        refused_batches: 0,
    };
    let sink_report = lab::udp::SinkReport {
        received: sink.received,
        bytes: sink.bytes,
        secs: sink.secs,
    };
    Ok((send_report, sink_report, busy, details))
}

/// The AF_XDP generator's details of an end-to-end report as Markdown (empty for the
/// socket generator): loss, reordering and one-way latency per side and frame size.
pub fn markdown_details(report: &crate::e2e::E2eReport) -> String {
    let mut rows: Vec<(String, &str, &XdpUdp)> = Vec::new();
    for (name, side) in [
        ("kernel", &report.udp_xdp_kernel),
        ("brindle", &report.udp_xdp_brindle),
    ] {
        if let Some(x) = side {
            rows.push((x.frame_size.to_string(), name, x));
        }
    }
    for size in &report.by_size {
        for (name, side) in [
            ("kernel", Some(&size.kernel)),
            ("brindle", size.brindle.as_ref()),
        ] {
            if let Some(x) = side.and_then(|s| s.xdp.as_ref()) {
                rows.push((size.frame_size.to_string(), name, x));
            }
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nAF_XDP generator (flat out) and sink: loss and one-way latency (generator TX ring to sink RX ring):\n\n\
         | frame bytes | side | pps offered | pps delivered | loss % | reordered | p50 us | p90 us | p99 us | p99.9 us | max us |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (size, side, x) in rows {
        let lat = |f: fn(&LatencySummary) -> f64| {
            x.latency
                .as_ref()
                .map_or("-".to_string(), |l| format!("{:.1}", f(l)))
        };
        out.push_str(&format!(
            "| {size} | {side} | {:.0} | {:.0} | {:.2} | {} | {} | {} | {} | {} | {} |\n",
            x.pps_offered,
            x.pps_delivered,
            x.loss_fraction * 100.0,
            x.reordered,
            lat(|l| l.p50_us),
            lat(|l| l.p90_us),
            lat(|l| l.p99_us),
            lat(|l| l.p999_us),
            lat(|l| l.max_us),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_to_end_details_count_loss_against_what_was_sent() {
        let send = XdpSendReport {
            sent: 1000,
            secs: 2.0,
            frame_size: 64,
            ..XdpSendReport::default()
        };
        let sink = XdpSinkReport {
            received: 900,
            reordered: 3,
            ..XdpSinkReport::default()
        };
        let d = XdpUdp::of(&send, &sink);
        assert_eq!((d.pps_offered, d.pps_delivered), (500.0, 450.0));
        assert_eq!((d.lost, d.loss_fraction, d.reordered), (100, 0.1, 3));
        assert_eq!("xdp".parse::<Generator>().unwrap(), Generator::Xdp);
        assert_eq!("socket".parse::<Generator>().unwrap(), Generator::Socket);
        let err = "dpdk".parse::<Generator>().unwrap_err().to_string();
        assert!(err.contains("generator dpdk"), "{err}");
    }
}
