//! What the idle-workload run takes and what it reports.

use super::*;

#[derive(Clone, Debug)]
pub struct ScaleOptions {
    pub brindle_node: PathBuf,
    /// This benchmark's own executable (`udp-send`, `udp-sink`).
    pub perf_exe: PathBuf,
    pub duration: Duration,
    pub frame_size: usize,
    pub batch: usize,
    pub port: u16,
    /// Idle workloads attached in the "many" runs.
    pub idle: usize,
    /// Worker modes to measure ("poll", "interrupt").
    pub modes: Vec<String>,
    /// few/many pairs per mode; the report keeps the mean of each.
    pub rounds: usize,
    /// Scratch directory for node.toml, the control socket and logs.
    pub work_dir: PathBuf,
}

/// One measurement: the node with `idle` idle workloads attached.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleRun {
    pub idle_workloads: usize,
    pub pps_offered: f64,
    pub pps_delivered: f64,
    pub sent: u64,
    pub received: u64,
    /// XDP programs attached in the node namespace when the run started (ports served).
    pub attached_interfaces: usize,
}

/// One worker mode: every run of both kinds, their means, and the ratio many/few.
#[derive(Clone, Debug, Serialize)]
pub struct ModeResult {
    pub mode: String,
    pub few: Vec<ScaleRun>,
    pub many: Vec<ScaleRun>,
    pub few_pps_delivered: f64,
    pub many_pps_delivered: f64,
    /// many / few delivered pps, from the same run of this command.
    pub ratio_many_to_few: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScaleReport {
    pub frame_size: usize,
    pub duration_secs: f64,
    pub idle_workloads: usize,
    pub rounds: usize,
    pub generator_cpu: usize,
    pub node_cpu: usize,
    pub modes: Vec<ModeResult>,
}
