//! The suite's results: metrics per scenario and side, and brindle/kernel ratios.

use super::*;

/// A metric's name (unit included, e.g. `rtt_p50_us`, `gbit_per_s`) and value.
pub type Metrics = BTreeMap<String, f64>;

/// Whether more of a metric is better: the report's arrows and the plots' titles.
pub fn higher_is_better(metric: &str) -> bool {
    !(metric.starts_with("rtt_")
        || metric.ends_with("_ms")
        || metric.ends_with("_us")
        || metric.contains("lost")
        || metric.contains("failed")
        || metric.contains("errors")
        || metric.contains("retransmits"))
}

/// Both sides of one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    pub lab: LabKind,
    pub path: PathKind,
    pub test: TestKind,
    /// `None` when the side failed (see `kernel_error`/`brindle_error`).
    pub kernel: Option<Metrics>,
    pub brindle: Option<Metrics>,
    pub kernel_error: Option<String>,
    pub brindle_error: Option<String>,
    /// brindle/kernel for every metric both sides have, where the kernel's is not zero.
    pub ratios: Metrics,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScenariosReport {
    pub quick: bool,
    pub ncpus: usize,
    pub node_mode: String,
    pub pings: u32,
    pub iperf_secs: u32,
    pub udp_offered_mbit: u32,
    pub udp_datagram_bytes: usize,
    pub http_requests: u32,
    pub http_concurrency: u32,
    pub http_secs: u32,
    pub http_file_bytes: usize,
    pub kernel_ipip_method: Option<baseline::KernelIpip>,
    /// How each lab's brindle side was wired.
    pub labs: Vec<LabRun>,
    pub load_average_before: Option<String>,
    pub load_average_after: Option<String>,
    pub elapsed_secs: f64,
    pub scenarios: Vec<ScenarioResult>,
}

/// brindle/kernel per metric both sides measured (none where the kernel measured zero).
pub fn ratios(kernel: &Metrics, brindle: &Metrics) -> Metrics {
    kernel
        .iter()
        .filter_map(|(name, &k)| {
            let b = *brindle.get(name)?;
            (k != 0.0 && k.is_finite() && b.is_finite()).then(|| (name.clone(), b / k))
        })
        .collect()
}
