//! What the benchmark takes.

use super::*;

#[derive(Clone, Debug)]
pub struct E2eOptions {
    /// `None` runs the kernel side only (until brindle-node exists).
    pub brindle_node: Option<PathBuf>,
    /// This benchmark's own executable, which provides `udp-send` and `udp-sink`.
    pub perf_exe: PathBuf,
    pub duration: Duration,
    pub pings: u32,
    pub frame_size: usize,
    pub batch: usize,
    pub port: u16,
    /// Scratch directory for node.toml, the control socket and logs.
    pub work_dir: PathBuf,
    /// brindle-node's worker mode: "poll" (busy, pinned to [`NODE_CPU`]; the default, lowest
    /// latency, burns its core by design) or "interrupt" (sleeps in poll(2) when idle).
    pub node_mode: String,
    /// Kernel sockets (`udp-send`/`udp-sink`) or AF_XDP (`xdp-send`/`xdp-sink`, with loss
    /// and one-way latency) for the UDP runs.
    pub generator: Generator,
    /// `dpdk-testpmd`: with it a third side measures the raw AF_XDP ceiling on the same
    /// topology (see `raw_side`).
    pub testpmd: Option<PathBuf>,
    /// What brindle's workloads' `eth0` is (a veth served by AF_XDP, or a TAP).
    pub workload_port: lab::WorkloadPort,
}
