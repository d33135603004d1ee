//! What a side measured, the path it proved, and the report over all sides.

use super::*;

/// What shows that a side's packets took the intended path.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PathEvidence {
    /// Frames node 1's uplink sent during the UDP run.
    pub uplink_tx_packets: u64,
    /// Their mean size: the generator's frame without FCS, plus 20 bytes inside IPIP.
    pub uplink_tx_bytes_per_packet: Option<f64>,
    /// Of the path pings captured on node 1's port of the segment: ICMP between the
    /// workloads inside IPIP between the nodes, and ICMP between the workloads as it is.
    pub capture_ipip: usize,
    pub capture_bare: usize,
    /// Kernel `tunl0` counters after the UDP run (the [`KernelIpip::Device`] side only).
    pub tunnel_tx_packets_node1: Option<u64>,
    pub tunnel_rx_packets_node2: Option<u64>,
    /// brindle's counters after the UDP run (brindle sides only).
    pub brindle_forwarded_node1: Option<u64>,
    pub brindle_ipip_encapsulated_node1: Option<u64>,
    pub brindle_ipip_decapsulated_node2: Option<u64>,
}

/// One side's measurements and the proof of its path.
#[derive(Clone, Debug, Serialize)]
pub struct CrossSide {
    pub side: &'static str,
    pub encap: Encap,
    /// How the kernel encapsulated (the kernel IPIP side only).
    pub kernel_ipip_method: Option<KernelIpip>,
    /// Per metric, the median over the rounds (`sent`, `received`, pings: summed).
    #[serde(flatten)]
    pub measured: SideResult,
    /// Each round's own measurements, in order.
    pub rounds: Vec<SideResult>,
    /// The last round's proof (every round had to pass its own).
    pub path: PathEvidence,
}

/// A side that did not produce a result, and why.
#[derive(Clone, Debug, Serialize)]
pub struct SideFailure {
    pub side: &'static str,
    /// From 1; a side that failed is not run again in later rounds.
    pub round: usize,
    pub error: String,
}

/// brindle / kernel, each over the same encapsulation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CrossRatios {
    /// From the sides' medians.
    pub plain: Option<Ratios>,
    pub ipip: Option<Ratios>,
    /// pps_delivered brindle / kernel within each round, for the spread.
    pub plain_pps_delivered_by_round: Vec<Option<f64>>,
    pub ipip_pps_delivered_by_round: Vec<Option<f64>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CrossnodeReport {
    pub frame_size: usize,
    pub duration_secs: f64,
    pub pings: u32,
    pub generator_cpu: usize,
    pub node_mode: String,
    /// Worker cores of node 1 and node 2 (`null`: not pinned).
    pub node_cpus: NodeCpus,
    pub ncpus: usize,
    pub rounds: usize,
    /// The kernel IPIP side's mechanism (`null` if that side did not get that far).
    pub kernel_ipip_method: Option<KernelIpip>,
    /// `/proc/loadavg` (1, 5, 15 min) before the first and after the last side: other work
    /// on the machine counts in busy_cores and in the pps.
    pub load_average_before: Option<[f64; 3]>,
    pub load_average_after: Option<[f64; 3]>,
    pub kernel_plain: Option<CrossSide>,
    pub kernel_ipip: Option<CrossSide>,
    pub brindle_plain: Option<CrossSide>,
    pub brindle_ipip: Option<CrossSide>,
    pub ratios: CrossRatios,
    pub failures: Vec<SideFailure>,
}

impl CrossnodeReport {
    pub fn side(&self, side: Side) -> Option<&CrossSide> {
        match (side.forwarder, side.encap) {
            (Forwarder::Kernel, Encap::Plain) => self.kernel_plain.as_ref(),
            (Forwarder::Kernel, Encap::Ipip) => self.kernel_ipip.as_ref(),
            (Forwarder::Brindle, Encap::Plain) => self.brindle_plain.as_ref(),
            (Forwarder::Brindle, Encap::Ipip) => self.brindle_ipip.as_ref(),
        }
    }
}
