//! The crossnode report as Markdown, written with its JSON.

use super::*;

/// The metrics of the table, in order: (name, decimals).
pub(super) const METRICS: [(&str, usize); 6] = [
    ("pps_delivered", 0),
    ("pps_offered", 0),
    ("rtt_p50_us", 1),
    ("rtt_p99_us", 1),
    ("busy_cores", 2),
    ("pps_per_busy_core", 0),
];

pub(super) fn metric(side: &SideResult, name: &str) -> Option<f64> {
    match name {
        "pps_delivered" => Some(side.pps_delivered),
        "pps_offered" => Some(side.pps_offered),
        "rtt_p50_us" => side.rtt_p50_us,
        "rtt_p99_us" => side.rtt_p99_us,
        "busy_cores" => Some(side.busy_cores),
        "pps_per_busy_core" => side.pps_per_busy_core,
        _ => None,
    }
}

pub(super) fn ratio_metric(ratios: &Ratios, name: &str) -> Option<f64> {
    match name {
        "pps_delivered" => ratios.pps_delivered,
        "pps_offered" => ratios.pps_offered,
        "rtt_p50_us" => ratios.rtt_p50_us,
        "rtt_p99_us" => ratios.rtt_p99_us,
        "busy_cores" => ratios.busy_cores,
        "pps_per_busy_core" => ratios.pps_per_busy_core,
        _ => None,
    }
}

pub(super) fn fmt(value: Option<f64>, digits: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "-".to_string(),
    }
}

/// One table row per metric: kernel, brindle, ratio for plain, then the same for IPIP.
pub fn markdown_rows(report: &CrossnodeReport) -> Vec<String> {
    let value = |side: Side, name: &str| report.side(side).and_then(|s| metric(&s.measured, name));
    METRICS
        .iter()
        .map(|&(name, digits)| {
            let mut cells = vec![name.to_string()];
            for (encap, ratios) in [
                (Encap::Plain, &report.ratios.plain),
                (Encap::Ipip, &report.ratios.ipip),
            ] {
                cells.push(fmt(
                    value(Side::new(Forwarder::Kernel, encap), name),
                    digits,
                ));
                cells.push(fmt(
                    value(Side::new(Forwarder::Brindle, encap), name),
                    digits,
                ));
                cells.push(fmt(ratios.as_ref().and_then(|r| ratio_metric(r, name)), 3));
            }
            format!("| {} |", cells.join(" | "))
        })
        .collect()
}

/// The report as Markdown: what ran, the table, the path proofs and any failures.
pub fn markdown(report: &CrossnodeReport) -> String {
    let cpus = |c: Option<usize>| c.map_or("unpinned".to_string(), |c| format!("CPU {c}"));
    let load = |l: Option<[f64; 3]>| {
        l.map_or("-".to_string(), |[a, b, c]| format!("{a:.2} {b:.2} {c:.2}"))
    };
    let method = match report.kernel_ipip_method {
        Some(KernelIpip::Device) => "tunl0 (ipip driver)",
        Some(KernelIpip::LwtBpf) => {
            "routes with BPF encapsulation (kernel without the ipip driver)"
        }
        None => "-",
    };
    let mut out = format!(
        "Workload on node 1 to workload on node 2 across one L2 segment, medians of {} \
         interleaved rounds: {}-byte UDP frames for {} s, {} pings at 2 ms; generator and ping on CPU {}; brindle workers in {} mode \
         (node 1 {}, node 2 {}); kernel IPIP: {method}; {} CPUs; load average before {} and \
         after {}.\n\n",
        report.rounds,
        report.frame_size,
        report.duration_secs,
        report.pings,
        report.generator_cpu,
        report.node_mode,
        cpus(report.node_cpus[0]),
        cpus(report.node_cpus[1]),
        report.ncpus,
        load(report.load_average_before),
        load(report.load_average_after),
    );
    out.push_str(
        "| metric | kernel plain | brindle plain | brindle/kernel | kernel IPIP | brindle IPIP \
         | brindle/kernel |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in markdown_rows(report) {
        out.push_str(&row);
        out.push('\n');
    }
    let by_round = |ratios: &[Option<f64>]| {
        let cells: Vec<String> = ratios.iter().map(|r| fmt(*r, 2)).collect();
        cells.join(", ")
    };
    out.push_str(&format!(
        "\npps_delivered brindle/kernel in each round: plain {}; IPIP {}.\n",
        by_round(&report.ratios.plain_pps_delivered_by_round),
        by_round(&report.ratios.ipip_pps_delivered_by_round),
    ));
    out.push_str("\nPath proof per side, last round (capture of the path pings on node 1's segment port; node 1 uplink frames during the UDP run):\n\n");
    for side in Side::ALL {
        if let Some(s) = report.side(side) {
            let p = &s.path;
            out.push_str(&format!(
                "- {}: ICMP inside IPIP {}, bare {}; uplink {} frames of {} bytes on average",
                s.side,
                p.capture_ipip,
                p.capture_bare,
                p.uplink_tx_packets,
                fmt(p.uplink_tx_bytes_per_packet, 1)
            ));
            if let (Some(tx), Some(rx)) = (p.tunnel_tx_packets_node1, p.tunnel_rx_packets_node2) {
                out.push_str(&format!("; tunl0 tx {tx} (node 1), rx {rx} (node 2)"));
            }
            if let (Some(f), Some(e), Some(d)) = (
                p.brindle_forwarded_node1,
                p.brindle_ipip_encapsulated_node1,
                p.brindle_ipip_decapsulated_node2,
            ) {
                out.push_str(&format!(
                    "; brindle forwarded {f} and ipip_encapsulated {e} (node 1), \
                     ipip_decapsulated {d} (node 2)"
                ));
            }
            out.push('\n');
        }
    }
    for failure in &report.failures {
        out.push_str(&format!(
            "- {}: FAILED in round {}: {}\n",
            failure.side, failure.round, failure.error
        ));
    }
    out
}

/// Writes the JSON report to `out` and the Markdown beside it (`.md`); returns the Markdown
/// path.
pub fn write_report(report: &CrossnodeReport, out: &Path) -> Result<PathBuf, BenchError> {
    crate::results::write_json_and_markdown(
        crate::rows::Benchmark::Crossnode,
        report,
        &markdown(report),
        out,
    )
    .map_err(|e| BenchError::Io {
        what: e.what,
        source: e.source,
    })
}
