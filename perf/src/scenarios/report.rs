//! The scenario suite's results as Markdown, written with its JSON.

use super::*;

/// The metrics a table row is made of, per test, in order: the headline figures.
pub fn headline_metrics(test: TestKind) -> &'static [&'static str] {
    match test {
        TestKind::Ping => &["rtt_p50_us", "rtt_p99_us"],
        TestKind::IperfTcp | TestKind::IperfTcp4 => &["gbit_per_s"],
        TestKind::IperfUdp | TestKind::IperfUdpHog => &["gbit_per_s", "lost_percent"],
        TestKind::HttpAb | TestKind::HttpWrk => &[
            "requests_per_s",
            "p50_ms",
            "p99_ms",
            "failed_requests",
            "errors",
        ],
    }
}

pub(super) fn fmt(value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() && v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.is_finite() => format!("{v:.3}"),
        _ => "-".into(),
    }
}

/// The Markdown table: scenario, metric, brindle, kernel, ratio; failures below it.
pub fn markdown(report: &ScenariosReport) -> String {
    let mut md = format!(
        "Scenario suite ({}): {} pings at 2 ms; iperf3 {} s, UDP offered at {} Mbit/s in {}-byte \
         datagrams; HTTP: nginx serving {} bytes, ab -n {} -c {} (at most {} s), wrk -c {} -d {} s; \
         brindle-node in {} mode; {} CPUs; load average {} before, {} after. Ratios are \
         brindle/kernel from this run.\n\n",
        if report.quick { "quick" } else { "full" },
        report.pings,
        report.iperf_secs,
        report.udp_offered_mbit,
        report.udp_datagram_bytes,
        report.http_file_bytes,
        report.http_requests,
        report.http_concurrency,
        report.http_secs,
        report.http_concurrency,
        report.http_secs,
        report.node_mode,
        report.ncpus,
        report.load_average_before.as_deref().unwrap_or("-"),
        report.load_average_after.as_deref().unwrap_or("-"),
    );
    md.push_str(&wiring_lines(report));
    md.push_str(
        "| scenario | metric | brindle | kernel | brindle/kernel |\n|---|---|---:|---:|---:|\n",
    );
    for r in &report.scenarios {
        let scenario = format!("{} {} {}", r.lab.name(), r.path.name(), r.test.name());
        for &metric in headline_metrics(r.test) {
            let k = r.kernel.as_ref().and_then(|m| m.get(metric).copied());
            let b = r.brindle.as_ref().and_then(|m| m.get(metric).copied());
            if k.is_none() && b.is_none() && (r.kernel.is_some() || r.brindle.is_some()) {
                continue;
            }
            let arrow = if higher_is_better(metric) {
                "↑"
            } else {
                "↓"
            };
            md.push_str(&format!(
                "| {scenario} | {metric} {arrow} | {} | {} | {} |\n",
                fmt(b),
                fmt(k),
                r.ratios
                    .get(metric)
                    .map_or("-".into(), |x| format!("{x:.2}"))
            ));
        }
    }
    let failures: Vec<String> = report
        .scenarios
        .iter()
        .flat_map(|r| {
            let label = format!("{} {} {}", r.lab.name(), r.path.name(), r.test.name());
            [("kernel", &r.kernel_error), ("brindle", &r.brindle_error)]
                .into_iter()
                .filter_map(move |(side, e)| {
                    e.as_ref().map(|e| format!("- {label} ({side}): {e}\n"))
                })
        })
        .collect();
    if !failures.is_empty() {
        md.push_str("\nFailed:\n\n");
        md.extend(failures);
    }
    md
}

/// One line per lab: how brindle's side was wired (the kernel's is always the lab's).
pub(super) fn wiring_lines(report: &ScenariosReport) -> String {
    let mut out = String::new();
    for run in &report.labs {
        let how = match run.wiring {
            Wiring::BrindleCni | Wiring::BrindleCniTap => format!(
                "brindle-node in agent mode (embedded store shared by the lab's nodes, default pool \
                 ipipMode {}), workloads plugged by brindle-cni into one network{}, MTU {}",
                run.ipip_mode.as_deref().unwrap_or("-"),
                if run.wiring == Wiring::BrindleCniTap {
                    " with a TAP eth0 each (virtio-net headers, TSO) and a TAP to the node's stack"
                } else {
                    ""
                },
                run.workload_mtu
            ),
            Wiring::Lab => format!("brindle-node in file mode, workloads wired by the lab, MTU {}", run.workload_mtu),
            Wiring::LabTap => format!("brindle-node in file mode, workloads wired by the lab with a TAP eth0 (virtio-net headers, TSO), MTU {}", run.workload_mtu),
        };
        let rules = match run.kernel_policy {
            KernelPolicy::Iptables => "with the network's profile as Felix-style iptables (ipset of the members, conntrack), proven live before measuring",
            KernelPolicy::None => "without policy rules",
        };
        let offloads = match run.kernel_offloads {
            lab::Offloads::AsCreated => "veth offloads on, as Calico leaves them",
            lab::Offloads::Off => {
                "veth offloads off (the BPF stand-in for tunl0 of a kernel without the ipip \
                 driver carries no TCP with them on)"
            }
        };
        out.push_str(&format!(
            "- {} (wiring `{}`): {how}; kernel: the lab's Calico kernel-style wiring {rules}, \
             {offloads}\n",
            run.lab.name(),
            run.wiring.name()
        ));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Writes the JSON report to `out` and the Markdown beside it (`.md`); returns the latter.
pub fn write_report(report: &ScenariosReport, out: &Path) -> Result<PathBuf, BenchError> {
    crate::results::write_json_and_markdown(
        crate::rows::Benchmark::Scenarios,
        report,
        &markdown(report),
        out,
    )
    .map_err(|e| BenchError::Io {
        what: e.what,
        source: e.source,
    })
}
