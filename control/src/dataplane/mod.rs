//! The live dataplane: the XDP program, the AF_XDP ports, the worker and slow-path threads and
//! the tables they read, changed while traffic flows.
//!
//! [`Dataplane::apply`] takes the state the node should be in ([`DesiredState`]: workloads,
//! uplink, pools, static routes), diffs it against what is running and changes only the
//! difference, in an order that never sends a packet into a hole:
//!
//! - a new port: open the AF_XDP socket (it registers itself in the XSKMAP), hand it to the
//!   worker and wait until the worker has it, publish tables that route to it, and only then
//!   attach the XDP program, from which moment the interface's packets reach the socket;
//! - a port that goes: publish tables without its routes (packets to it now get ICMP
//!   unreachable), detach the XDP program (its packets go back to the kernel), take the port
//!   out of the worker and close it;
//! - changed addresses: new tables only.
//!
//! The diff is a pure plan (`plan`, where every ordering rule is written down and tested
//! without root); `execute` reads the interfaces and performs the plan's steps.
//!
//! Problems with one interface (the CNI plugin may write an endpoint before the veth exists)
//! do not fail the apply: they are reported in [`ApplyReport::failures`] and the interface is
//! tried again on the next apply. Neighbour MACs already resolved carry over into every new
//! snapshot (copied here from the current one, and re-applied by the slow path from its own
//! table), so existing workloads never fall back to ARP because a neighbour came or went.
//!
//! Port ids are stable for a port's life and double as XSKMAP slots. A freed id is reused only
//! once no snapshot that routed to it is alive any more (see [`PortIds`]), so no table, however
//! late a thread reads it, can send one workload's packets to another.
//!
//! Module map: `desired` (what an apply is asked for), `settings` (fixed at start, and the
//! uplink's NIC tuning), `live` (the threads: start, stop, what they show), `plan` and
//! `execute` (an apply), `ports` (open, attach, take out), `publish` (the tables), `qos` (the
//! workloads' rate limiters, kept across publishes), `host_path` (the way to and from the
//! node's own stack), `ids` (port ids), `observer` (stats, metrics).

mod desired;
mod execute;
mod host_path;
mod ids;
mod live;
mod observer;
mod plan;
mod ports;
mod publish;
mod qos;
mod settings;

use fastpath::worker::PortCommandError;
use fastpath::xdp::XdpError;
use serde::Serialize;

pub use desired::{
    DesiredState, EndpointPolicyHandle, HostEndpointState, HostPolicyHandle, PolicyHandle,
};
pub use ids::PortIds;
pub use live::Dataplane;
pub use observer::{DataplaneObserver, PortStatus};
pub use settings::{DataplaneSettings, UplinkTuning, MAX_UPLINK_QUEUES};

/// Why one item of the desired state is not in the dataplane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The interface does not exist (yet): normal while a workload is being plugged in.
    Missing,
    /// The item exists but cannot be used as asked (MTU too large, off-link gateway, ...).
    Refused,
}

/// One item the last apply could not program; it is tried again on the next apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApplyFailure {
    /// The interface, route or address concerned.
    pub item: String,
    pub kind: FailureKind,
    pub error: String,
}

/// What one apply changed, and what it could not do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// Interfaces attached.
    pub added: Vec<String>,
    /// Interfaces detached.
    pub removed: Vec<String>,
    /// Interfaces whose addresses changed.
    pub updated: Vec<String>,
    pub failures: Vec<ApplyFailure>,
}

impl ApplyReport {
    /// Everything desired is programmed.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Failures of the dataplane as a whole (per-item problems go in [`ApplyReport`]).
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("loading the XDP program: {0}")]
    Load(#[source] XdpError),
    #[error("writing pool CIDRs to the XDP program: {0}")]
    Pools(#[source] XdpError),
    #[error("starting the {what}: {source}")]
    Thread {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("the fastpath worker: {0}")]
    Worker(#[from] PortCommandError),
}

fn refused(item: &str, error: String) -> ApplyFailure {
    ApplyFailure {
        item: item.to_owned(),
        kind: FailureKind::Refused,
        error,
    }
}
