//! The report's Markdown: one table per kind of figure, every one built from rows.

use std::path::PathBuf;

use crate::report::Report;
use crate::rows::{Benchmark, Row};

/// `-` for a missing value, else `format`.
fn or_dash(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map_or("-".to_string(), format)
}

fn ratio_cell(row: &Row) -> String {
    or_dash(row.ratio, |r| format!("{r:.2}"))
}

/// pps without decimals, latencies with one.
fn format_value(metric: &str, value: Option<f64>) -> String {
    or_dash(value, |v| {
        if metric.starts_with("pps") {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    })
}

/// The value of `metric` among `rows`.
fn value_of<'a>(rows: impl IntoIterator<Item = &'a Row>, metric: &str) -> Option<f64> {
    rows.into_iter()
        .find(|r| r.metric == metric)
        .and_then(|r| r.brindle)
}

/// The distinct values of `key` over `items`, in first-seen order.
fn distinct<T, K: PartialEq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<K> {
    let mut seen = Vec::new();
    for item in items {
        let k = key(item);
        if !seen.contains(&k) {
            seen.push(k);
        }
    }
    seen
}

/// The report: comparison table, plots (linked under `plots_link`), control-plane tables.
pub fn markdown(report: &Report, plots: &[PathBuf], plots_link: &str) -> String {
    let mut md = String::from("# Brindle benchmark report\n\n");
    md.push_str(&format!(
        "Produced by `brindle-perf report` from {}. Every ratio is brindle/kernel from the same \
         file, that is from one run in which both sides were measured one after the other on \
         the same machine. pps: higher is better; latencies (`rtt_*_us`, ping round trip in \
         microseconds): lower is better.\n\n",
        report
            .sources
            .iter()
            .map(|s| format!("`{s}.json`"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    md.push_str(&comparisons(report));
    md.push_str(&cni_latency(report));
    md.push_str(&resync(report));
    md.push_str(&scale(report));
    md.push_str(&other(report));
    md.push_str(&plot_links(plots, plots_link));
    md.push_str(&crate::report_scenarios::markdown(report));
    md.push_str(&crate::report_rules::markdown(report, plots_link));
    if !report.skipped.is_empty() {
        md.push_str("## Left out\n\n");
        for s in &report.skipped {
            md.push_str(&format!("- {s}\n"));
        }
        md.push('\n');
    }
    if !report.derived.is_empty() {
        md.push_str(&format!(
            "Written before results files carried a summary, and summarised from their fields: \
             {} (`brindle-perf summarise FILE...` adds it).\n\n",
            report
                .derived
                .iter()
                .map(|s| format!("`{s}.json`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    md.push_str(
        "pps vs packet size and the ping RTT CDF come from `brindle-perf e2e --sizes ...` \
         (e2e files written before that option have neither); pps vs number of rules from \
         `brindle-perf policy --rules a,b,c` (`rules-sweep.json`).\n",
    );
    md
}

fn comparisons(report: &Report) -> String {
    let mut md = String::new();
    for (run, row) in report.comparisons() {
        if md.is_empty() {
            md.push_str("## Brindle vs the kernel dataplane\n\n");
            md.push_str("| run | traffic | metric | kernel | brindle | brindle/kernel |\n");
            md.push_str("|---|---|---|---:|---:|---:|\n");
        }
        md.push_str(&format!(
            "| {run} | {} | {} | {} | {} | {} |\n",
            if row.lab.is_empty() { "-" } else { &row.lab },
            row.metric,
            format_value(&row.metric, row.baseline),
            format_value(&row.metric, row.brindle),
            ratio_cell(row)
        ));
    }
    if !md.is_empty() {
        md.push('\n');
    }
    md
}

/// One line per run and operation, the operation's figures as columns.
fn cni_latency(report: &Report) -> String {
    let mut md = String::new();
    for run in report
        .runs
        .iter()
        .filter(|r| r.summary.benchmark == Benchmark::CniLatency)
    {
        for operation in distinct(&run.summary.rows, |r| r.lab.clone()) {
            if md.is_empty() {
                md.push_str("## CNI latency (no kernel baseline)\n\n");
                md.push_str("| run | operation | count | p50 ms | p99 ms | max ms |\n");
                md.push_str("|---|---|---:|---:|---:|---:|\n");
            }
            let rows = || run.summary.rows.iter().filter(|r| r.lab == operation);
            let cell = |metric: &str, digits: usize| {
                or_dash(value_of(rows(), metric), |v| format!("{v:.digits$}"))
            };
            md.push_str(&format!(
                "| {} | {operation} | {} | {} | {} | {} |\n",
                run.name,
                cell("count", 0),
                cell("p50_ms", 1),
                cell("p99_ms", 1),
                cell("max_ms", 1)
            ));
        }
    }
    if !md.is_empty() {
        md.push('\n');
    }
    md
}

fn resync(report: &Report) -> String {
    let mut md = String::new();
    for run in report
        .runs
        .iter()
        .filter(|r| r.summary.benchmark == Benchmark::Resync && !r.summary.rows.is_empty())
    {
        if md.is_empty() {
            md.push_str("## Datastore resync (no kernel baseline)\n\n");
            md.push_str(
                "| run | endpoints | synced s | programmed s | endpoints/s | reconnect resync s |\n",
            );
            md.push_str("|---|---:|---:|---:|---:|---:|\n");
        }
        let cell = |metric: &str, digits: usize| {
            or_dash(value_of(&run.summary.rows, metric), |v| {
                format!("{v:.digits$}")
            })
        };
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            run.name,
            cell("endpoints", 0),
            cell("synced_secs", 3),
            cell("programmed_secs", 3),
            cell("endpoints_per_sec", 0),
            cell("reconnect_resync_secs", 3)
        ));
    }
    if !md.is_empty() {
        md.push('\n');
    }
    md
}

fn scale(report: &Report) -> String {
    let mut md = String::new();
    for (run, r) in report.rows_of(&[Benchmark::Scale]) {
        if md.is_empty() {
            md.push_str("## Scaling (no kernel baseline)\n\n");
            md.push_str("Both sides of each ratio come from one `brindle-perf scale` run. Idle workloads: goal >= 0.8.\n\n");
            md.push_str("| run | scaled | base | pps | scaled to | pps | ratio |\n");
            md.push_str("|---|---|---|---:|---|---:|---:|\n");
        }
        md.push_str(&format!(
            "| {run} | {} | {} | {} | {} | {} | {} |\n",
            r.lab,
            r.baseline_side,
            format_value("pps", r.baseline),
            r.side,
            format_value("pps", r.brindle),
            ratio_cell(r)
        ));
    }
    if !md.is_empty() {
        md.push('\n');
    }
    md
}

/// The benchmarks of the other crates (IPAM, BGP): brindle against its own baseline.
fn other(report: &Report) -> String {
    let mut md = String::new();
    for (run, r) in report.rows_of(&[Benchmark::IpamAlloc, Benchmark::BgpLearn]) {
        if md.is_empty() {
            md.push_str("## IPAM and BGP\n\n");
            md.push_str(
                "| run | lab | metric | baseline | value | brindle | value | ratio | rounds |\n",
            );
            md.push_str("|---|---|---|---|---:|---|---:|---:|---:|\n");
        }
        md.push_str(&format!(
            "| {run} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.lab,
            r.metric,
            r.baseline_side,
            or_dash(r.baseline, |v| format!("{v:.3}")),
            if r.side.is_empty() {
                "brindle"
            } else {
                &r.side
            },
            or_dash(r.brindle, |v| format!("{v:.3}")),
            ratio_cell(r),
            r.rounds
        ));
    }
    if !md.is_empty() {
        md.push('\n');
    }
    md
}

fn plot_links(plots: &[PathBuf], plots_link: &str) -> String {
    let svgs: Vec<&PathBuf> = plots
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    let mut md = String::new();
    if svgs.is_empty() {
        return md;
    }
    md.push_str("## Plots\n\nEach plot also exists as PNG next to the SVG.\n\n");
    for svg in svgs {
        let name = svg.file_name().unwrap_or_default().to_string_lossy();
        let stem = svg.file_stem().unwrap_or_default().to_string_lossy();
        let link = if plots_link.is_empty() {
            name.to_string()
        } else {
            format!("{plots_link}/{name}")
        };
        md.push_str(&format!("![{stem}]({link})\n\n"));
    }
    md
}
