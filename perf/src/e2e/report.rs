//! The e2e report: brindle over the kernel per metric, as Markdown, written with its JSON.

use super::*;

pub fn ratios(kernel: &SideResult, brindle: &SideResult) -> Ratios {
    Ratios {
        pps_delivered: ratio(Some(brindle.pps_delivered), Some(kernel.pps_delivered)),
        pps_offered: ratio(Some(brindle.pps_offered), Some(kernel.pps_offered)),
        rtt_p50_us: ratio(brindle.rtt_p50_us, kernel.rtt_p50_us),
        rtt_p99_us: ratio(brindle.rtt_p99_us, kernel.rtt_p99_us),
        busy_cores: ratio(Some(brindle.busy_cores), Some(kernel.busy_cores)),
        pps_per_busy_core: ratio(brindle.pps_per_busy_core, kernel.pps_per_busy_core),
    }
}

/// The report as a Markdown table.
pub fn markdown(report: &E2eReport) -> String {
    let fmt = |v: Option<f64>, digits: usize| match v {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "-".to_string(),
    };
    let b = report.brindle.as_ref();
    let r = report.ratios.as_ref();
    type Row<'a> = (&'a str, Option<f64>, Option<f64>, Option<f64>, usize);
    let k = &report.kernel;
    let rows: [Row; 6] = [
        (
            "pps_delivered",
            Some(k.pps_delivered),
            b.map(|b| b.pps_delivered),
            r.and_then(|r| r.pps_delivered),
            0,
        ),
        (
            "pps_offered",
            Some(k.pps_offered),
            b.map(|b| b.pps_offered),
            r.and_then(|r| r.pps_offered),
            0,
        ),
        (
            "rtt_p50_us",
            k.rtt_p50_us,
            b.and_then(|b| b.rtt_p50_us),
            r.and_then(|r| r.rtt_p50_us),
            1,
        ),
        (
            "rtt_p99_us",
            k.rtt_p99_us,
            b.and_then(|b| b.rtt_p99_us),
            r.and_then(|r| r.rtt_p99_us),
            1,
        ),
        (
            "busy_cores",
            Some(k.busy_cores),
            b.map(|b| b.busy_cores),
            r.and_then(|r| r.busy_cores),
            2,
        ),
        (
            "pps_per_busy_core",
            k.pps_per_busy_core,
            b.and_then(|b| b.pps_per_busy_core),
            r.and_then(|r| r.pps_per_busy_core),
            0,
        ),
    ];
    let mut out = format!(
        "Pod-to-pod on one node: {}-byte UDP frames for {} s, {} pings at 2 ms; generator and \
         ping on CPU {}, brindle worker on CPU {} ({} mode), {} CPUs.\n\n",
        report.frame_size,
        report.duration_secs,
        report.pings,
        report.generator_cpu,
        report.node_cpu,
        report.node_mode,
        report.ncpus
    );
    out.push_str("| metric | kernel | brindle | brindle/kernel |\n|---|---:|---:|---:|\n");
    for (name, kv, bv, rv, digits) in rows {
        out.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            fmt(kv, digits),
            fmt(bv, digits),
            fmt(rv, 3)
        ));
    }
    if !report.by_size.is_empty() {
        out.push_str(
            "\nUDP pps by frame size (same labs, right after the run above):\n\n\
             | frame bytes | kernel pps_delivered | brindle pps_delivered | brindle/kernel |\n\
             |---:|---:|---:|---:|\n",
        );
        for s in &report.by_size {
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                s.frame_size,
                fmt(Some(s.kernel.pps_delivered), 0),
                fmt(s.brindle.as_ref().map(|b| b.pps_delivered), 0),
                fmt(s.ratio_pps_delivered, 3)
            ));
        }
    }
    if let Some(node) = &report.brindle_node {
        out.push_str(&node_account_markdown(node));
    }
    out.push_str(&crate::e2e_xdp::markdown_details(report));
    out
}

/// Where the brindle side's frames went, by brindle-node's own counters.
fn node_account_markdown(n: &NodeAccount) -> String {
    let listed = |m: &std::collections::BTreeMap<String, u64>| {
        let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    };
    format!(
        "\nbrindle-node's account of its side (every UDP run and the pings): the generators \
         sent {} datagrams and the sinks received {}; the node's workers received {} frames: \
         {} forwarded, {} punted, {} dropped (by reason: {}); the kernel lost {} in the \
         node's AF_XDP rings before a worker saw them (socket counts: {}).\n",
        n.generator_sent,
        n.sink_received,
        n.received,
        n.forwarded,
        n.punted,
        n.dropped,
        listed(&n.drops),
        n.socket_lost,
        listed(&n.socket),
    )
}

/// Writes the JSON report to `out` and the Markdown table beside it (`.md`); returns the
/// Markdown path.
pub fn write_report(report: &E2eReport, out: &Path) -> Result<PathBuf, BenchError> {
    crate::results::write_json_and_markdown(
        crate::rows::Benchmark::E2e,
        report,
        &markdown(report),
        out,
    )
    .map_err(|e| BenchError::Io {
        what: e.what,
        source: e.source,
    })
}
