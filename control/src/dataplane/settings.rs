//! How the dataplane runs, fixed for its life, and what a NIC profile tunes on the uplink.

use std::net::Ipv4Addr;

use fastpath::port::BusyPoll;
use fastpath::punt::PuntConfig;
use fastpath::xdp::MAX_SOCKETS;
use fastpath::{RxMode, XdpMode};

/// How the dataplane runs; fixed for its life.
#[derive(Clone, Debug)]
pub struct DataplaneSettings {
    pub mode: RxMode,
    /// Fastpath workers (at least 1): one per uplink queue served, each with its queue's
    /// socket and a share of the other ports (see `fastpath::handoff::port_owner`).
    pub workers: usize,
    /// Core each worker is pinned to, by worker; a worker beyond the list is not pinned.
    pub cores: Vec<usize>,
    /// Source of the node's ICMP errors (the uplink's address at start).
    pub node_ip: Option<Ipv4Addr>,
    pub punt: PuntConfig,
    /// The uplink's AF_XDP settings from its NIC profile; defaults when `None`.
    pub uplink: Option<UplinkTuning>,
    /// The directory where each worker keeps its flows (`worker-N.flows`, see
    /// `fastpath::conntrack::persist`), so that a restarted node keeps the connections and
    /// NAT bindings of the one before; `None`: flows are kept in memory only.
    pub flow_state: Option<std::path::PathBuf>,
}

/// What a NIC profile sets on the uplink: its AF_XDP socket, the XDP attach mode, and the
/// NAPI settings in sysfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UplinkTuning {
    pub ring_size: u32,
    pub batch_size: usize,
    pub force_copy: bool,
    /// At least this frame size (the MTU may ask for more).
    pub frame_size: u32,
    /// How the XDP program is attached to the uplink (generic: never natively).
    pub xdp_mode: XdpMode,
    /// Busy polling on the uplink's sockets; `None`: off.
    pub busy_poll: Option<BusyPoll>,
    /// Written to `/sys/class/net/<uplink>/napi_defer_hard_irqs` while the node runs (the
    /// old value is put back on stop); 0 leaves the file alone.
    pub napi_defer_hard_irqs: u32,
    /// Likewise `gro_flush_timeout` (nanoseconds); 0 leaves it alone.
    pub gro_flush_timeout_ns: u32,
    /// How many of the uplink's RX queues get a socket (capped at [`MAX_UPLINK_QUEUES`]).
    pub queue_policy: crate::hwprofile::QueuePolicy,
}

/// Most uplink queues served. Their sockets sit in the last XSKMAP slots, which port ids
/// therefore never use: the XDP program redirects queue `q` of the uplink to slot
/// `UPLINK_FIRST_SLOT + q`.
pub const MAX_UPLINK_QUEUES: u32 = 64;
pub(super) const UPLINK_FIRST_SLOT: u32 = MAX_SOCKETS - MAX_UPLINK_QUEUES;

/// Values written to an interface's sysfs files, put back when dropped (the node leaves the
/// host as it found it).
#[derive(Debug)]
pub(super) struct SysfsTuning {
    /// Each file written and the value it had before.
    restore: Vec<(std::path::PathBuf, String)>,
}

impl SysfsTuning {
    /// Writes each non-zero `(file, value)` under `/sys/class/net/<interface>/`; a file that
    /// cannot be written is logged and skipped (an old kernel has no napi_defer_hard_irqs).
    pub(super) fn apply(interface: &str, values: &[(&str, u32)]) -> SysfsTuning {
        let mut restore = Vec::new();
        for &(file, value) in values.iter().filter(|(_, v)| *v != 0) {
            let path = std::path::Path::new("/sys/class/net")
                .join(interface)
                .join(file);
            let old = match std::fs::read_to_string(&path) {
                Ok(old) => old.trim().to_owned(),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "NIC profile: cannot read; not tuned");
                    continue;
                }
            };
            match std::fs::write(&path, value.to_string()) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), value, was = %old, "NIC profile applied");
                    restore.push((path, old));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), value, error = %e, "NIC profile: cannot write; not tuned")
                }
            }
        }
        SysfsTuning { restore }
    }
}

impl Drop for SysfsTuning {
    fn drop(&mut self) {
        for (path, old) in &self.restore {
            match std::fs::write(path, old) {
                Ok(()) => tracing::info!(path = %path.display(), value = %old, "restored"),
                Err(e) => {
                    tracing::warn!(path = %path.display(), value = %old, error = %e, "cannot restore")
                }
            }
        }
    }
}
