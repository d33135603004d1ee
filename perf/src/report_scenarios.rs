//! The scenario suite's part of `brindle-perf report`: a table and bar plots from every
//! `scenarios*.json` (written by `brindle-perf scenarios`).
//!
//! A scenario whose side failed has no value in its row and shows as `-`.

use std::path::{Path, PathBuf};

use crate::report::{Report, ReportError};
use crate::report_plots::{draw_both, BarPair, Chart};
use crate::rows::{Benchmark, Row};
use crate::scenarios::higher_is_better;

/// The scenario rows of every run, each with its run's name.
fn rows(report: &Report) -> impl Iterator<Item = (&str, &Row)> {
    report.rows_of(&[Benchmark::Scenarios])
}

fn fmt(value: Option<f64>) -> String {
    match value {
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
        None => "-".into(),
    }
}

/// The report's section: scenario, metric, brindle, kernel, ratio.
pub fn markdown(report: &Report) -> String {
    let mut md = String::new();
    for (run, r) in rows(report) {
        if md.is_empty() {
            md.push_str(
                "## Scenarios: ping, iperf3, HTTP (brindle vs the kernel, same run)\n\n\
                 brindle wiring: `brindle-cni` is agent mode with the workloads plugged by brindle-cni, \
                 `lab` is file mode on the lab's own wiring; `-tap`: each workload's eth0 a TAP \
                 with virtio-net headers (whole 64 KiB TCP segments), the node's stack behind a TAP too; \
                 the kernel keeps Calico's kernel-style wiring.\n\n\
                 | run | scenario | brindle wiring | metric | brindle | kernel | brindle/kernel |\n|---|---|---|---|---:|---:|---:|\n",
            );
        }
        let arrow = if higher_is_better(&r.metric) {
            "↑"
        } else {
            "↓"
        };
        md.push_str(&format!(
            "| {run} | {} | {} | {} {arrow} | {} | {} | {} |\n",
            r.lab,
            if r.side.is_empty() { "-" } else { &r.side },
            r.metric,
            fmt(r.brindle),
            fmt(r.baseline),
            r.ratio.map_or("-".into(), |x| format!("{x:.2}"))
        ));
    }
    if !md.is_empty() {
        md.push('\n');
    }
    md
}

/// The plots of one run: what the chart shows, its file suffix, and which rows go in it.
const PLOTS: [(&str, &str, &str, &[&str]); 3] = [
    (
        "ping round trip (lower is better)",
        "microseconds",
        "latency",
        &["rtt_p50_us", "rtt_p99_us"],
    ),
    (
        "iperf3 throughput, TCP and UDP delivered",
        "Gbit/s",
        "gbps",
        &["gbit_per_s"],
    ),
    (
        "HTTP requests per second (ab, wrk)",
        "requests/s",
        "rps",
        &["requests_per_s"],
    ),
];

/// A bar label short enough not to run into its neighbours: `1n p2p tcp`.
pub fn short_label(scenario: &str) -> String {
    [
        ("one-node", "1n"),
        ("pod-to-pod", "p2p"),
        ("pod-to-node", "p2n"),
        ("node-to-node", "n2n"),
        ("iperf-", ""),
        ("http-", ""),
    ]
    .iter()
    .fold(scenario.to_string(), |label, (long, short)| {
        label.replace(long, short)
    })
}

/// Per run: latency, throughput and HTTP bars, kernel next to brindle; SVG and PNG each.
pub fn write_plots(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut runs: Vec<&str> = rows(report).map(|(run, _)| run).collect();
    runs.dedup();
    let mut written = Vec::new();
    for run in runs {
        for (title, y_desc, suffix, metrics) in PLOTS {
            let pairs: Vec<BarPair> = rows(report)
                .filter(|(r, row)| *r == run && metrics.contains(&row.metric.as_str()))
                .filter_map(|(_, r)| {
                    let short = short_label(&r.lab);
                    let label = match r.metric.as_str() {
                        "rtt_p50_us" => format!("{} p50", short.trim_end_matches(" ping")),
                        "rtt_p99_us" => format!("{} p99", short.trim_end_matches(" ping")),
                        _ => short,
                    };
                    Some(BarPair {
                        label,
                        kernel: r.baseline?,
                        brindle: r.brindle?,
                    })
                })
                .collect();
            if pairs.is_empty() {
                continue;
            }
            let chart = Chart::Bars {
                title: format!("{run}: {title}"),
                y_desc: y_desc.to_string(),
                pairs,
            };
            written.extend(draw_both(&chart, &dir.join(format!("{run}-{suffix}")))?);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::summarise;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::json!({
            "labs": [{"lab": "one-node", "wiring": "brindle-cni"}, {"lab": "l2", "wiring": "lab"}],
            "scenarios": [
                {"lab": "one-node", "path": "pod-to-pod", "test": "ping",
                 "kernel": {"rtt_p50_us": 20.0, "rtt_p99_us": 40.0},
                 "brindle": {"rtt_p50_us": 30.0, "rtt_p99_us": 80.0}},
                {"lab": "l2", "path": "node-to-node", "test": "iperf-tcp",
                 "kernel": {"gbit_per_s": 4.0}, "brindle": null},
                {"lab": "one-node", "path": "pod-to-pod", "test": "http-ab",
                 "kernel": {"requests_per_s": 1000.0, "p50_ms": 1.0, "p99_ms": 3.0, "failed_requests": 0.0},
                 "brindle": {"requests_per_s": 1500.0, "p50_ms": 1.0, "p99_ms": 2.0, "failed_requests": 0.0}}
            ]
        })
    }

    fn report_of(doc: &Value) -> Report {
        let mut report = Report::default();
        let summary = summarise(Benchmark::Scenarios, doc).unwrap();
        report.push("scenarios".into(), "scenarios.json", summary);
        report
    }

    #[test]
    fn rows_carry_both_sides_and_ratios_from_the_same_file() {
        let report = report_of(&doc());
        let all: Vec<&Row> = rows(&report).map(|(_, r)| r).collect();
        let p50 = all.iter().find(|r| r.metric == "rtt_p50_us").unwrap();
        assert_eq!(p50.lab, "one-node pod-to-pod ping");
        assert_eq!(p50.ratio, Some(1.5));
        let tcp = all.iter().find(|r| r.metric == "gbit_per_s").unwrap();
        assert_eq!(
            (tcp.baseline, tcp.brindle, tcp.ratio),
            (Some(4.0), None, None)
        );
        let rps = all.iter().find(|r| r.metric == "requests_per_s").unwrap();
        assert_eq!(rps.ratio, Some(1.5));
        // http-ab rows: requests_per_s, p50_ms, p99_ms, failed_requests (no wrk `errors`).
        assert_eq!(
            all.iter().filter(|r| r.lab.ends_with(" http-ab")).count(),
            4
        );
        let md = markdown(&report);
        assert!(md.contains("| scenarios | one-node pod-to-pod ping | brindle-cni | rtt_p50_us ↓ | 30.000 | 20.000 | 1.50 |"), "{md}");
        assert!(
            md.contains(
                "| scenarios | l2 node-to-node iperf-tcp | lab | gbit_per_s ↑ | - | 4.000 | - |"
            ),
            "{md}"
        );
        // A file from before `labs` existed still reads, its wiring unknown.
        let mut old = doc();
        old.as_object_mut().unwrap().remove("labs");
        let old_report = report_of(&old);
        assert!(rows(&old_report).all(|(_, r)| r.side.is_empty()));
        assert!(markdown(&old_report).contains("| one-node pod-to-pod ping | - | rtt_p50_us"));
    }

    #[test]
    fn plot_labels_are_short() {
        assert_eq!(short_label("one-node pod-to-pod iperf-tcp"), "1n p2p tcp");
        assert_eq!(short_label("l2 node-to-node http-wrk"), "l2 n2n wrk");
    }

    #[test]
    fn a_malformed_file_is_an_error_naming_the_field() {
        let bad =
            serde_json::json!({"scenarios": [{"lab": "l2", "path": "pod-to-pod", "test": "nope"}]});
        let err = summarise(Benchmark::Scenarios, &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/scenarios/0/test"), "{err}");
        let err = summarise(Benchmark::Scenarios, &serde_json::json!({}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/scenarios"), "{err}");
    }
}
