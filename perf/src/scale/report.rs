//! The scale reports as Markdown, written with their JSON.

use super::*;

/// The queues report as Markdown.
pub fn queues_markdown(report: &QueuesReport) -> String {
    let mut out = String::new();
    out.push_str("# Scale: pps from outside through 1 vs 2 uplink queues\n\n");
    let queues: Vec<String> = report
        .results
        .iter()
        .map(|r| r.queues.to_string())
        .collect();
    out.push_str(&format!(
        "`brindle-perf scale --queues {}`: {}-byte UDP frames from two generators (CPUs {:?}) outside the node to one \
         workload, {:.0} s per run, {} round(s), {} workers; {} online CPUs. One worker per uplink queue: on a \
         2-core machine the two generators compete with the two workers for the same cores, so this shows the \
         cost and correctness of handing flows between workers more than the gain of a second core.\n\n",
        queues.join(","),
        report.frame_size,
        report.generator_cpus,
        report.duration_secs,
        report.rounds,
        report.mode,
        report.online_cpus
    ));
    out.push_str(
        "| uplink queues | workers | pps delivered | ratio to the first |\n|---|---|---|---|\n",
    );
    for r in &report.results {
        let workers = r.runs.first().map_or(0, |x| x.workers);
        let ratio = r.ratio_to_first.map_or("n/a".into(), |x| format!("{x:.2}"));
        out.push_str(&format!(
            "| {} | {} | {:.0} | {} |\n",
            r.queues, workers, r.pps_delivered, ratio
        ));
    }
    out.push_str("\nRuns in order (pps offered / delivered):\n\n");
    for r in &report.results {
        let runs: Vec<String> = r
            .runs
            .iter()
            .map(|x| format!("{:.0} / {:.0}", x.pps_offered, x.pps_delivered))
            .collect();
        out.push_str(&format!("- {} queue(s): {}\n", r.queues, runs.join(", ")));
    }
    out
}

/// The report as Markdown.
pub fn markdown(report: &ScaleReport) -> String {
    let mut out = String::new();
    out.push_str("# Scale: pps between two workloads with idle workloads attached\n\n");
    out.push_str(&format!(
        "`brindle-perf scale --idle {}`: {}-byte UDP frames, {:.0} s per run, {} round(s); generator on CPU {}, \
         poll-mode worker pinned to CPU {} (interrupt mode: not pinned).\n\n",
        report.idle_workloads, report.frame_size, report.duration_secs, report.rounds, report.generator_cpu, report.node_cpu
    ));
    out.push_str("| worker mode | pps, 2 workloads | pps, 2 + idle workloads | ratio (goal >= 0.8) |\n|---|---|---|---|\n");
    for m in &report.modes {
        let ratio = m
            .ratio_many_to_few
            .map_or("n/a".into(), |r| format!("{r:.2}"));
        out.push_str(&format!(
            "| {} | {:.0} | {:.0} | {} |\n",
            m.mode, m.few_pps_delivered, m.many_pps_delivered, ratio
        ));
    }
    // Each run, in the order it ran: the spread between rounds shows how noisy the machine was.
    out.push_str("\nRuns in order (pps delivered):\n\n");
    for m in &report.modes {
        let runs: Vec<String> = m
            .few
            .iter()
            .zip(&m.many)
            .map(|(f, n)| format!("{:.0} / {:.0}", f.pps_delivered, n.pps_delivered))
            .collect();
        out.push_str(&format!(
            "- {} (2 / 2 + {} idle): {}\n",
            m.mode,
            report.idle_workloads,
            runs.join(", ")
        ));
    }
    out
}

/// Writes the JSON to `out` and the Markdown next to it; returns the Markdown's path.
pub fn write_report<T: Serialize>(
    report: &T,
    markdown: &str,
    out: &Path,
) -> Result<PathBuf, BenchError> {
    crate::results::write_json_and_markdown(crate::rows::Benchmark::Scale, report, markdown, out)
        .map_err(|e| BenchError::Io {
            what: e.what,
            source: e.source,
        })
}
