//! The policy benchmark's results: medians per side and traffic kind, the enforcement proofs, and their Markdown.

use super::*;

/// One measurement: a side, a traffic kind, a round.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Measured {
    pub pps_offered: f64,
    pub pps_delivered: f64,
    pub busy_cores: f64,
    pub sent: u64,
    pub delivered: u64,
    pub secs: f64,
    pub refused_batches: u64,
}

/// One side of one traffic kind: medians over the rounds, and every round.
#[derive(Clone, Debug, Serialize)]
pub struct SideSummary {
    pub pps_offered: Option<f64>,
    pub pps_delivered: Option<f64>,
    pub busy_cores: Option<f64>,
    pub rounds: Vec<Measured>,
}

impl SideSummary {
    pub fn of(rounds: Vec<Measured>) -> Self {
        SideSummary {
            pps_offered: median(rounds.iter().map(|m| m.pps_offered)),
            pps_delivered: median(rounds.iter().map(|m| m.pps_delivered)),
            busy_cores: median(rounds.iter().map(|m| m.busy_cores)),
            rounds,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct KindResult {
    /// "established" (a few flows) or "new_flows" (a new flow per packet).
    pub kind: &'static str,
    pub flows: u64,
    pub kernel: SideSummary,
    pub brindle: SideSummary,
    pub ratio_delivered: Option<f64>,
    pub ratio_offered: Option<f64>,
}

impl KindResult {
    pub fn new(
        kind: &'static str,
        flows: u64,
        kernel: Vec<Measured>,
        brindle: Vec<Measured>,
    ) -> Self {
        let (kernel, brindle) = (SideSummary::of(kernel), SideSummary::of(brindle));
        KindResult {
            kind,
            flows,
            ratio_delivered: ratio(brindle.pps_delivered, kernel.pps_delivered),
            ratio_offered: ratio(brindle.pps_offered, kernel.pps_offered),
            kernel,
            brindle,
        }
    }
}

/// Proof that a side enforces the policy: allowed probes arrive, denied ones are counted as
/// denied (kernel: the end-of-tier drop rule; brindle: `policy_denied`) and do not arrive.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EnforcementProof {
    pub allowed_sent: u64,
    pub allowed_delivered: u64,
    pub denied_sent: u64,
    pub denied_delivered: u64,
    pub denied_counted: u64,
}

impl EnforcementProof {
    /// Most allowed probes arrived, the denied ones were counted and (nearly) none arrived
    /// (the sink's eth0 also sees the odd ARP or ICMP error).
    pub fn holds(&self) -> bool {
        self.allowed_sent > 0
            && self.allowed_delivered * 10 >= self.allowed_sent * 9
            && self.denied_counted >= self.denied_sent
            && self.denied_delivered * 10 < self.denied_sent
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PolicyReport {
    pub rules: usize,
    pub frame_size: usize,
    pub duration_secs: f64,
    pub rounds: usize,
    pub node_mode: String,
    pub iptables: IptablesBackend,
    pub generator_cpu: usize,
    pub node_cpu: usize,
    pub ncpus: usize,
    /// `/proc/loadavg` before and after the run.
    pub loadavg_before: String,
    pub loadavg_after: String,
    /// The kernel's conntrack table limit (`nf_conntrack_max`) in the kernel side's node.
    pub kernel_conntrack_max: Option<u64>,
    pub kernel_proof: EnforcementProof,
    pub brindle_proof: EnforcementProof,
    pub kinds: Vec<KindResult>,
}

/// The report as Markdown.
pub fn markdown(report: &PolicyReport) -> String {
    let f = |v: Option<f64>, digits: usize| match v {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "-".to_string(),
    };
    let mut out = format!(
        "One node, two workloads, {} ingress rules on the sink (the allowing one last); {}-byte \
         UDP for {} s per side, kind and round, {} interleaved rounds (medians); generator on \
         CPU {}, brindle worker on CPU {} ({} mode), {} CPUs, kernel rules in iptables-{}; load \
         average {} -> {}.\n\n",
        report.rules,
        report.frame_size,
        report.duration_secs,
        report.rounds,
        report.generator_cpu,
        report.node_cpu,
        report.node_mode,
        report.ncpus,
        match report.iptables {
            IptablesBackend::Legacy => "legacy",
            IptablesBackend::Nft => "nft",
        },
        report.loadavg_before.trim(),
        report.loadavg_after.trim()
    );
    out.push_str(
        "| traffic | flows | kernel offered | kernel delivered | brindle offered | brindle delivered | brindle/kernel delivered |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for k in &report.kinds {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            k.kind,
            k.flows,
            f(k.kernel.pps_offered, 0),
            f(k.kernel.pps_delivered, 0),
            f(k.brindle.pps_offered, 0),
            f(k.brindle.pps_delivered, 0),
            f(k.ratio_delivered, 2)
        );
    }
    let proof =
        |name: &str, p: &EnforcementProof| {
            format!(
            "{name}: allowed {}/{} delivered; denied {} sent, {} counted as denied, {} delivered\n",
            p.allowed_delivered, p.allowed_sent, p.denied_sent, p.denied_counted, p.denied_delivered
        )
        };
    out.push('\n');
    out.push_str(&proof("kernel proof", &report.kernel_proof));
    out.push('\n');
    out.push_str(&proof("brindle proof", &report.brindle_proof));
    out
}

/// Writes the JSON report to `out` and the Markdown beside it; returns the Markdown path.
pub fn write_report(report: &PolicyReport, out: &Path) -> Result<PathBuf, BenchError> {
    crate::results::write_json_and_markdown(
        crate::rows::Benchmark::Policy,
        report,
        &markdown(report),
        out,
    )
    .map_err(written)
}
