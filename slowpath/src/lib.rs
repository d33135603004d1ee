//! Slow path: the control thread beside the fastpath workers.
//!
//! It answers what the pipeline punts: proxy ARP for workloads, neighbour learning and
//! resolution (ARP on workload ports, the kernel's table on the uplink) with a bounded hold
//! queue, ICMP errors (time exceeded, unreachable) under a rate limit, and echo replies for the
//! node's own addresses. [`Slowpath`] is the socket-free state machine; [`spawn`] runs it on a
//! thread fed by a `fastpath::punt::SlowpathEnd`.

pub mod arp;
pub mod config;
pub mod counters;
pub mod hold_queue;
pub mod icmp;
pub mod kernel_neighbors;
pub mod neighbors;
pub mod rate_limit;
pub mod slowpath;
pub mod thread;

pub use config::{SlowpathConfig, ARP_ATTEMPTS};
pub use counters::{SlowpathCounters, SlowpathCountersSnapshot};
pub use kernel_neighbors::{KernelNeighbors, ProcNetArp};
pub use neighbors::{Neighbor, NeighborTable};
pub use slowpath::{FrameSink, Slowpath};
pub use thread::{spawn, spawn_with_kernel};
