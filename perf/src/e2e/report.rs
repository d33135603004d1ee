//! The e2e report: brindle over the kernel per metric, as Markdown, written with its JSON.

use super::*;

/// `brindle` over `base` (the kernel, or the raw AF_XDP ceiling), metric by metric.
pub fn ratios(base: &SideResult, brindle: &SideResult) -> Ratios {
    Ratios {
        pps_delivered: ratio(Some(brindle.pps_delivered), Some(base.pps_delivered)),
        pps_offered: ratio(Some(brindle.pps_offered), Some(base.pps_offered)),
        rtt_p50_us: ratio(brindle.rtt_p50_us, base.rtt_p50_us),
        rtt_p99_us: ratio(brindle.rtt_p99_us, base.rtt_p99_us),
        busy_cores: ratio(Some(brindle.busy_cores), Some(base.busy_cores)),
        pps_per_busy_core: ratio(brindle.pps_per_busy_core, base.pps_per_busy_core),
    }
}

/// A value of the report as the table shows it.
fn fmt(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "-".to_string(),
    }
}

/// One row of a side-by-side table: metric, baseline, brindle, ratio, digits.
type Row = (&'static str, Option<f64>, Option<f64>, Option<f64>, usize);

/// The UDP and ping metrics of `base` (the kernel, or the raw AF_XDP ceiling) beside brindle's
/// and their ratios.
fn side_rows(base: &SideResult, b: Option<&SideResult>, r: Option<&Ratios>) -> [Row; 6] {
    [
        (
            "pps_delivered",
            Some(base.pps_delivered),
            b.map(|b| b.pps_delivered),
            r.and_then(|r| r.pps_delivered),
            0,
        ),
        (
            "pps_offered",
            Some(base.pps_offered),
            b.map(|b| b.pps_offered),
            r.and_then(|r| r.pps_offered),
            0,
        ),
        (
            "rtt_p50_us",
            base.rtt_p50_us,
            b.and_then(|b| b.rtt_p50_us),
            r.and_then(|r| r.rtt_p50_us),
            1,
        ),
        (
            "rtt_p99_us",
            base.rtt_p99_us,
            b.and_then(|b| b.rtt_p99_us),
            r.and_then(|r| r.rtt_p99_us),
            1,
        ),
        (
            "busy_cores",
            Some(base.busy_cores),
            b.map(|b| b.busy_cores),
            r.and_then(|r| r.busy_cores),
            2,
        ),
        (
            "pps_per_busy_core",
            base.pps_per_busy_core,
            b.and_then(|b| b.pps_per_busy_core),
            r.and_then(|r| r.pps_per_busy_core),
            0,
        ),
    ]
}

/// `rows` as a Markdown table whose baseline column is called `base`.
fn table(base: &str, rows: &[Row]) -> String {
    let mut out = format!("| metric | {base} | brindle | brindle/{base} |\n|---|---:|---:|---:|\n");
    for (name, base, brindle, ratio, digits) in rows {
        out.push_str(&format!(
            "| {name} | {} | {} | {} |\n",
            fmt(*base, *digits),
            fmt(*brindle, *digits),
            fmt(*ratio, 3)
        ));
    }
    out
}

/// The report as a Markdown table.
pub fn markdown(report: &E2eReport) -> String {
    let b = report.brindle.as_ref();
    let rows = side_rows(&report.kernel, b, report.ratios.as_ref());
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
    out.push_str(&table("kernel", &rows));
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
    if let (Some(raw), Some(b)) = (&report.raw_afxdp, b) {
        out.push_str(
            "\nThe raw AF_XDP ceiling: dpdk-testpmd (af_xdp driver, `mac` forwarding, no routing, \
             policy or connection tracking) on the same veths, core and offloads:\n\n",
        );
        out.push_str(&table(
            "testpmd",
            &side_rows(raw, Some(b), report.raw_ratios.as_ref()),
        ));
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
         node's AF_XDP rings or TAP queues before a worker saw them (socket counts: {}).\n",
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
