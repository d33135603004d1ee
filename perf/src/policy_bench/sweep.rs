//! pps vs number of rules: the policy benchmark run once per rule count, and its report.

use super::*;

/// Most rule counts in one sweep: each costs a full set-up of both sides.
pub const MAX_SWEEP_POINTS: usize = 8;

/// Both sides at one rule count of a sweep.
#[derive(Clone, Debug, Serialize)]
pub struct RulesSweepPoint {
    pub rules: usize,
    /// "established" and "new_flows", as in [`PolicyReport::kinds`].
    pub kinds: Vec<KindResult>,
    pub kernel_proof: EnforcementProof,
    pub brindle_proof: EnforcementProof,
}

/// `policy --rules a,b,c`: the policy benchmark at each rule count, one after the other in
/// one invocation, so that the brindle and iptables lines come from the same run.
#[derive(Clone, Debug, Serialize)]
pub struct RulesSweepReport {
    pub rule_counts: Vec<usize>,
    pub frame_size: usize,
    pub duration_secs: f64,
    pub rounds: usize,
    pub node_mode: String,
    pub iptables: IptablesBackend,
    pub generator_cpu: usize,
    pub node_cpu: usize,
    pub ncpus: usize,
    pub loadavg_before: String,
    pub loadavg_after: String,
    pub points: Vec<RulesSweepPoint>,
}

/// Rule counts of a sweep: 1 to [`MAX_SWEEP_POINTS`] of them, each valid for
/// [`bench_rules`], no repeats; returned in ascending order.
pub fn sweep_counts(counts: &[usize]) -> Result<Vec<usize>, BenchError> {
    if counts.is_empty() || counts.len() > MAX_SWEEP_POINTS {
        return Err(BenchError::Invalid {
            field: "rules",
            value: format!("{counts:?}"),
            reason: format!("give 1 to {MAX_SWEEP_POINTS} rule counts"),
        });
    }
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(BenchError::Invalid {
            field: "rules",
            value: w[0].to_string(),
            reason: "given twice".into(),
        });
    }
    for &count in &sorted {
        if !(1..=10_000).contains(&count) {
            return Err(BenchError::Invalid {
                field: "rules",
                value: count.to_string(),
                reason: "must be between 1 and 10000".into(),
            });
        }
    }
    Ok(sorted)
}

/// [`run`] at every count of `counts` (ascending); the full report of each count is passed
/// to `each` as it completes (e.g. to keep `policy.json` for the usual count).
pub fn run_sweep(
    opts: &PolicyOptions,
    counts: &[usize],
    mut each: impl FnMut(&PolicyReport),
) -> Result<RulesSweepReport, BenchError> {
    let counts = sweep_counts(counts)?;
    for &rules in &counts {
        validate(&PolicyOptions {
            rules,
            ..opts.clone()
        })?;
    }
    let loadavg_before = LoadAverage::read().map(|l| l.line).unwrap_or_default();
    let mut points = Vec::with_capacity(counts.len());
    for (i, &rules) in counts.iter().enumerate() {
        eprintln!("rules sweep [{}/{}]: {rules} rules", i + 1, counts.len());
        let report = run(&PolicyOptions {
            rules,
            ..opts.clone()
        })?;
        each(&report);
        points.push(sweep_point(report));
    }
    Ok(RulesSweepReport {
        rule_counts: counts,
        frame_size: opts.frame_size,
        duration_secs: opts.duration.as_secs_f64(),
        rounds: opts.rounds,
        node_mode: opts.node_mode.clone(),
        iptables: opts.iptables,
        generator_cpu: GENERATOR_CPU,
        node_cpu: NODE_CPU,
        ncpus: stats::online_cpus(),
        loadavg_before,
        loadavg_after: LoadAverage::read().map(|l| l.line).unwrap_or_default(),
        points,
    })
}

pub fn sweep_point(report: PolicyReport) -> RulesSweepPoint {
    RulesSweepPoint {
        rules: report.rules,
        kinds: report.kinds,
        kernel_proof: report.kernel_proof,
        brindle_proof: report.brindle_proof,
    }
}

/// The sweep as a Markdown table: delivered pps per rule count and traffic kind.
pub fn sweep_markdown(report: &RulesSweepReport) -> String {
    let f = |v: Option<f64>, digits: usize| match v {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "-".to_string(),
    };
    let mut out = format!(
        "pps vs number of rules: one node, two workloads, N ingress rules on the sink (the \
         allowing one last); {}-byte UDP for {} s per side, kind and round, {} round(s) per \
         count (medians); brindle worker in {} mode, kernel rules in iptables-{}; {} CPUs; \
         load average {} -> {}.\n\n\
         | rules | traffic | kernel delivered | brindle delivered | brindle/kernel |\n\
         |---:|---|---:|---:|---:|\n",
        report.frame_size,
        report.duration_secs,
        report.rounds,
        report.node_mode,
        match report.iptables {
            IptablesBackend::Legacy => "legacy",
            IptablesBackend::Nft => "nft",
        },
        report.ncpus,
        report.loadavg_before.trim(),
        report.loadavg_after.trim()
    );
    for p in &report.points {
        for k in &p.kinds {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                p.rules,
                k.kind,
                f(k.kernel.pps_delivered, 0),
                f(k.brindle.pps_delivered, 0),
                f(k.ratio_delivered, 2)
            );
        }
    }
    out
}

/// Writes the sweep's JSON to `out` and its Markdown beside it; returns the Markdown path.
pub fn write_sweep(report: &RulesSweepReport, out: &Path) -> Result<PathBuf, BenchError> {
    crate::results::write_json_and_markdown(
        crate::rows::Benchmark::RulesSweep,
        report,
        &sweep_markdown(report),
        out,
    )
    .map_err(written)
}

pub(super) fn written(e: crate::results::WriteError) -> BenchError {
    BenchError::Io {
        what: e.what,
        source: e.source,
    }
}
