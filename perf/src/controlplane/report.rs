//! The control-plane benchmarks' reports as Markdown, and writing them with their JSON.

use super::*;

pub fn cni_latency_markdown(r: &CniLatencyReport) -> String {
    let mut md = format!(
        "## CNI ADD-to-forwarding ({} workloads, {} datastore, node in {} mode)\n\n\
         | measure | count | p50 ms | p99 ms | max ms | mean ms |\n|---|---:|---:|---:|---:|---:|\n",
        r.workloads,
        serde_json::to_value(r.datastore).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        r.node_mode
    );
    for (name, s) in [
        ("CNI ADD", &r.add),
        ("ADD to forwarding", &r.add_to_forwarding),
        ("CNI DEL", &r.del),
    ] {
        md.push_str(&format!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            s.count, s.p50_ms, s.p99_ms, s.max_ms, s.mean_ms
        ));
    }
    let reached: Vec<f64> = r
        .samples
        .add_to_forwarding_ms
        .iter()
        .flatten()
        .copied()
        .collect();
    if reached.len() >= 40 {
        let p50 = |xs: &[f64]| {
            Summary::of(
                &xs.iter()
                    .map(|ms| Duration::from_secs_f64(ms / 1e3))
                    .collect::<Vec<_>>(),
            )
            .p50_ms
        };
        md.push_str(&format!(
            "\nADD to forwarding, p50 of the first 20 workloads: {:.1} ms; of the last 20: {:.1} ms.\n",
            p50(&reached[..20]),
            p50(&reached[reached.len() - 20..])
        ));
    }
    md.push_str(&format!(
        "\nUnreachable within {FORWARDING_TIMEOUT:?}: {}. Probe: {}. Total {:.1} s.\n",
        r.unreachable, r.probe, r.total_secs
    ));
    md
}

pub fn resync_markdown(r: &ResyncReport) -> String {
    let opt = |x: Option<f64>| x.map_or("—".to_owned(), |v| format!("{v:.2}"));
    let kind = serde_json::to_value(r.datastore)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    format!(
        "## Node resync of {} WorkloadEndpoints ({kind} datastore)\n\n\
         | measure | value |\n|---|---:|\n\
         | write {} endpoints (bench, not the node) | {:.2} s ({:.0}/s) |\n\
         | start to `datastore synced` (list + view) | {} s |\n\
         | start to all endpoints applied (stats: {} missing interfaces) | {} s |\n\
         | endpoints/s (applied) | {} |\n\
         | resync after its etcd connection was cut (`ss -K`) | {} s |\n\
         | node log lines / warnings | {} / {} |\n\n\
         {}Total {:.1} s.\n",
        r.endpoints,
        r.endpoints,
        r.write_secs,
        r.writes_per_sec,
        opt(r.synced_secs),
        r.missing_reported,
        opt(r.programmed_secs),
        r.endpoints_per_sec
            .map_or("—".to_owned(), |v| format!("{v:.0}")),
        opt(r.reconnect_resync_secs),
        r.node_log_lines,
        r.node_log_warnings,
        r.node_error.as_ref().map_or(String::new(), |e| format!(
            "**The node did not sync:** `{e}`\n\n"
        )),
        r.total_secs,
    )
}

/// Writes `json` (with its summary as `benchmark`) to `out` and `markdown` next to it
/// (`.md`); returns the Markdown's path.
pub fn write_report(
    benchmark: crate::rows::Benchmark,
    json: &impl Serialize,
    markdown: &str,
    out: &Path,
) -> Result<PathBuf> {
    crate::results::write_json_and_markdown(benchmark, json, markdown, out).map_err(|e| {
        BenchError::Io {
            what: e.what,
            source: e.source,
        }
    })
}
