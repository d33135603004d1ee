//! The scenario suite's part of `brindle-perf report`: a table and bar plots from every
//! `scenarios*.json` (written by `brindle-perf scenarios`).
//!
//! Read through JSON pointers like the rest of the report, so that an older file still
//! reads; a scenario whose side failed has no value there and shows as `-`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::report::{draw_both, BarPair, Chart, ReportError};
use crate::scenarios::{headline_metrics, higher_is_better, TestKind};

/// One metric of one scenario of one run, both sides.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioRow {
    /// The results file's stem, e.g. `scenarios`.
    pub run: String,
    /// `one-node pod-to-pod iperf-tcp`.
    pub scenario: String,
    /// `ping`, `iperf-tcp`, ... (picks the plot the row goes to).
    pub test: String,
    pub metric: String,
    /// How brindle's side of the lab was wired (`brindle-cni`, `lab`); `None` in files
    /// written before the suite recorded it.
    pub wiring: Option<String>,
    pub kernel: Option<f64>,
    pub brindle: Option<f64>,
}

impl ScenarioRow {
    pub fn ratio(&self) -> Option<f64> {
        match (self.brindle, self.kernel) {
            (Some(b), Some(k)) if k != 0.0 => Some(b / k),
            _ => None,
        }
    }
}

fn field_error(path: &Path, field: String, problem: &str) -> ReportError {
    ReportError::Field {
        path: path.to_path_buf(),
        field,
        problem: problem.to_string(),
    }
}

/// The rows of one results file: the headline metrics of every scenario.
pub fn rows(path: &Path, doc: &Value, run: &str) -> Result<Vec<ScenarioRow>, ReportError> {
    let scenarios = doc
        .get("scenarios")
        .and_then(Value::as_array)
        .ok_or_else(|| field_error(path, "/scenarios".into(), "missing or not a list"))?;
    // `labs`: [{lab, wiring, ...}], one per lab of the run.
    let wiring_of = |lab: &str| {
        doc.get("labs")?
            .as_array()?
            .iter()
            .find(|l| l.get("lab").and_then(Value::as_str) == Some(lab))?
            .get("wiring")?
            .as_str()
            .map(str::to_string)
    };
    let mut out = Vec::new();
    for (i, s) in scenarios.iter().enumerate() {
        let text = |name: &str| {
            s.get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    field_error(
                        path,
                        format!("/scenarios/{i}/{name}"),
                        "missing or not a string",
                    )
                })
        };
        let (lab, route, test) = (text("lab")?, text("path")?, text("test")?);
        let Ok(kind) = TestKind::parse(&test) else {
            return Err(field_error(
                path,
                format!("/scenarios/{i}/test"),
                "not a known test",
            ));
        };
        for &metric in headline_metrics(kind) {
            let value = |side: &str| {
                s.get(side)
                    .and_then(|m| m.get(metric))
                    .and_then(Value::as_f64)
            };
            let (kernel, brindle) = (value("kernel"), value("brindle"));
            if kernel.is_none() && brindle.is_none() {
                continue;
            }
            out.push(ScenarioRow {
                run: run.to_string(),
                scenario: format!("{lab} {route} {test}"),
                test: test.clone(),
                metric: metric.to_string(),
                wiring: wiring_of(&lab),
                kernel,
                brindle,
            });
        }
    }
    Ok(out)
}

fn fmt(value: Option<f64>) -> String {
    match value {
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.3}"),
        None => "-".into(),
    }
}

/// The report's section: scenario, metric, brindle, kernel, ratio.
pub fn markdown(rows: &[ScenarioRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "## Scenarios: ping, iperf3, HTTP (brindle vs the kernel, same run)\n\n\
         brindle wiring: `brindle-cni` is agent mode with the workloads plugged by brindle-cni, \
         `lab` is file mode on the lab's own wiring; the kernel keeps Calico's kernel-style wiring.\n\n\
         | run | scenario | brindle wiring | metric | brindle | kernel | brindle/kernel |\n|---|---|---|---|---:|---:|---:|\n",
    );
    for r in rows {
        let arrow = if higher_is_better(&r.metric) {
            "↑"
        } else {
            "↓"
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} {arrow} | {} | {} | {} |\n",
            r.run,
            r.scenario,
            r.wiring.as_deref().unwrap_or("-"),
            r.metric,
            fmt(r.brindle),
            fmt(r.kernel),
            r.ratio().map_or("-".into(), |x| format!("{x:.2}"))
        ));
    }
    md.push('\n');
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
pub fn write_plots(rows: &[ScenarioRow], dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut runs: Vec<&str> = rows.iter().map(|r| r.run.as_str()).collect();
    runs.dedup();
    let mut written = Vec::new();
    for run in runs {
        for (title, y_desc, suffix, metrics) in PLOTS {
            let pairs: Vec<BarPair> = rows
                .iter()
                .filter(|r| r.run == run && metrics.contains(&r.metric.as_str()))
                .filter_map(|r| {
                    let short = short_label(&r.scenario);
                    let label = match r.metric.as_str() {
                        "rtt_p50_us" => format!("{} p50", short.trim_end_matches(" ping")),
                        "rtt_p99_us" => format!("{} p99", short.trim_end_matches(" ping")),
                        _ => short,
                    };
                    Some(BarPair {
                        label,
                        kernel: r.kernel?,
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

    #[test]
    fn rows_carry_both_sides_and_ratios_from_the_same_file() {
        let rows = rows(Path::new("scenarios.json"), &doc(), "scenarios").unwrap();
        let p50 = rows.iter().find(|r| r.metric == "rtt_p50_us").unwrap();
        assert_eq!(p50.scenario, "one-node pod-to-pod ping");
        assert_eq!(p50.ratio(), Some(1.5));
        let tcp = rows.iter().find(|r| r.metric == "gbit_per_s").unwrap();
        assert_eq!(
            (tcp.kernel, tcp.brindle, tcp.ratio()),
            (Some(4.0), None, None)
        );
        let rps = rows.iter().find(|r| r.metric == "requests_per_s").unwrap();
        assert_eq!(rps.ratio(), Some(1.5));
        // http-ab rows: requests_per_s, p50_ms, p99_ms, failed_requests (no wrk `errors`).
        assert_eq!(rows.iter().filter(|r| r.test == "http-ab").count(), 4);
        let md = markdown(&rows);
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
        let old_rows = super::rows(Path::new("scenarios.json"), &old, "scenarios").unwrap();
        assert!(old_rows.iter().all(|r| r.wiring.is_none()));
        assert!(markdown(&old_rows).contains("| one-node pod-to-pod ping | - | rtt_p50_us"));
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
        let err = rows(Path::new("scenarios.json"), &bad, "scenarios")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/scenarios/0/test"), "{err}");
        let err = rows(Path::new("s.json"), &serde_json::json!({}), "s")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/scenarios"), "{err}");
    }
}
