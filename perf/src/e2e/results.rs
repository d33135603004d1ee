//! What each side measured, and the run's report.

use std::collections::BTreeMap;

use super::*;

/// Measurements of one topology.
#[derive(Clone, Debug, Serialize)]
pub struct SideResult {
    pub forwarding: &'static str,
    /// Name of the lab the side ran in (its namespaces are `<lab>-node`, `<lab>-w1`, ...).
    pub lab: String,
    /// Datagrams the generator got into the kernel per second.
    pub pps_offered: f64,
    /// Datagrams the sink received per second of generator time.
    pub pps_delivered: f64,
    pub rtt_p50_us: Option<f64>,
    pub rtt_p99_us: Option<f64>,
    /// Busy cores of the whole machine during the UDP run.
    pub busy_cores: f64,
    pub pps_per_busy_core: Option<f64>,
    pub sent: u64,
    pub received: u64,
    pub generator_secs: f64,
    pub pings_sent: u32,
    pub ping_replies: u64,
}

/// brindle / kernel for each metric (`None` where the kernel value is zero or missing).
#[derive(Clone, Debug, Serialize)]
pub struct Ratios {
    pub pps_delivered: Option<f64>,
    pub pps_offered: Option<f64>,
    pub rtt_p50_us: Option<f64>,
    pub rtt_p99_us: Option<f64>,
    pub busy_cores: Option<f64>,
    pub pps_per_busy_core: Option<f64>,
}

/// One point of a latency CDF: `fraction` of the pings came back within `rtt_us`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CdfPoint {
    pub fraction: f64,
    pub rtt_us: f64,
}

/// UDP rates of one side at one frame size.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SizeSide {
    pub pps_offered: f64,
    pub pps_delivered: f64,
    pub sent: u64,
    pub received: u64,
    /// Loss, reordering and one-way latency (AF_XDP generator only).
    pub xdp: Option<XdpUdp>,
}

/// Both sides at one frame size (`--sizes`), measured in the same labs as the main run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SizeResult {
    pub frame_size: usize,
    pub kernel: SizeSide,
    pub brindle: Option<SizeSide>,
    /// brindle/kernel pps_delivered.
    pub ratio_pps_delivered: Option<f64>,
}

/// At most this many extra frame sizes per run: each costs a UDP run per side.
pub const MAX_SIZES: usize = 16;

#[derive(Clone, Debug, Serialize)]
pub struct E2eReport {
    pub frame_size: usize,
    /// "socket" or "xdp": which generator and sink measured UDP.
    pub generator: Generator,
    pub duration_secs: f64,
    pub pings: u32,
    pub generator_cpu: usize,
    pub node_cpu: usize,
    pub node_mode: String,
    pub ncpus: usize,
    pub kernel: SideResult,
    pub brindle: Option<SideResult>,
    pub ratios: Option<Ratios>,
    /// UDP pps per frame size, in the order asked for; empty without `--sizes`.
    pub by_size: Vec<SizeResult>,
    /// Ping RTT CDF of each side, read from the same histogram as the percentiles.
    pub rtt_cdf_kernel: Vec<CdfPoint>,
    pub rtt_cdf_brindle: Vec<CdfPoint>,
    /// Loss, reordering and one-way latency of each side's main UDP run (AF_XDP generator
    /// only; the kernel side's sink is AF_XDP too, so both sides are measured alike).
    pub udp_xdp_kernel: Option<XdpUdp>,
    pub udp_xdp_brindle: Option<XdpUdp>,
    /// brindle-node's own counters over the brindle side's measurement: where the frames
    /// the generators offered went.
    pub brindle_node: Option<NodeAccount>,
    /// The raw AF_XDP ceiling (dpdk-testpmd on the same veths and core), when it ran, and
    /// brindle over it.
    pub raw_afxdp: Option<SideResult>,
    pub raw_ratios: Option<Ratios>,
}

/// Differences of brindle-node's counters over a measurement (every UDP run and the pings),
/// beside what the generators sent and the sinks received in it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NodeAccount {
    /// Datagrams the UDP generators got into the kernel, and the sinks received.
    pub generator_sent: u64,
    pub sink_received: u64,
    /// Frames the node's workers received: forwarded + punted + dropped.
    pub received: u64,
    pub forwarded: u64,
    pub punted: u64,
    pub dropped: u64,
    /// The drop reasons that counted anything.
    pub drops: BTreeMap<String, u64>,
    /// Frames the kernel lost in the node's AF_XDP rings or TAP queues before a worker saw
    /// them.
    pub socket_lost: u64,
    /// The kernel's socket counts that counted anything (XDP_STATISTICS).
    pub socket: BTreeMap<String, u64>,
}

impl NodeAccount {
    /// The counters' growth from `before` to `after` (`brindle-node stats` documents).
    pub fn between(before: &serde_json::Value, after: &serde_json::Value) -> NodeAccount {
        let grown = |path: &[&str]| {
            let read = |doc: &serde_json::Value| {
                path.iter()
                    .fold(&doc["fastpath"], |v, key| &v[*key])
                    .as_u64()
                    .unwrap_or(0)
            };
            read(after).saturating_sub(read(before))
        };
        let named = |section: &str| -> BTreeMap<String, u64> {
            after["fastpath"][section]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, _)| (name.clone(), grown(&[section, name])))
                .filter(|(_, n)| *n > 0)
                .collect()
        };
        NodeAccount {
            received: grown(&["rx_packets"]),
            forwarded: grown(&["forwarded"]),
            punted: grown(&["punted"]),
            dropped: grown(&["dropped"]),
            drops: named("drops"),
            socket_lost: grown(&["socket_lost"]),
            socket: named("socket"),
            ..NodeAccount::default()
        }
    }
}

/// What a side measures beyond [`SideResult`] (kept apart because other benchmarks build
/// `SideResult`s of their own).
#[derive(Default)]
pub(super) struct SideExtras {
    pub(super) by_size: Vec<SizeSide>,
    pub(super) rtt_cdf: Vec<CdfPoint>,
    pub(super) udp_xdp: Option<XdpUdp>,
    pub(super) node: Option<NodeAccount>,
}
