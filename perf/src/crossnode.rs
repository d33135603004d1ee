//! The cross-node benchmark: a workload on node 1 sends to a workload on node 2 over the
//! segment of a two-node [`MultiLab`], four ways, one after the other in one invocation, in
//! interleaved rounds whose medians each side reports (see [`CrossnodeOptions::rounds`]):
//!
//! | side            | who forwards | between the nodes |
//! |-----------------|--------------|-------------------|
//! | `kernel_plain`  | Linux, as Calico's kernel dataplane (ip_forward, proxy ARP, /32 routes) | a route to the other block via the other node |
//! | `kernel_ipip`   | Linux | IP in IP: `tunl0` with an `onlink` route, MTU 1480 |
//! | `brindle_plain` | `brindle-node` on both nodes (file mode) | `[[route]] prefix/via` |
//! | `brindle_ipip`  | `brindle-node` on both nodes | `[[route]] ... encap = "ipip"` |
//!
//! Every side of every round gets a lab of its own (built, measured, taken down), so that no route, tunnel,
//! qdisc or XDP program of one side can carry traffic of the next; the wiring is the same
//! code each time. Per side: 64-byte UDP pps offered and delivered (`udp-send`/`udp-sink`),
//! ping RTT p50/p99, busy cores, and proof that the traffic took the intended path (a capture
//! on node 1's port of the segment during a few pings, node 1's uplink counters around the
//! UDP run, and the tunnel's or brindle's own counters). A side whose proof fails is failed.
//!
//! Kernel IPIP: a kernel with the `ipip` driver gets the real `tunl0` device, as Calico
//! programs it. Kernels built without it (CONFIG_NET_IPIP unset, as on our development
//! machine) get the same wire format from Linux routes whose encapsulation is a small BPF
//! program (`lwt_xmit` pushes the outer header, a `tc` ingress program pulls it):
//! [`KernelIpip::LwtBpf`]. The report says which one ran.
//!
//! CPU placement on two cores: the generator and ping run on CPU [`GENERATOR_CPU`]. Two
//! brindle nodes need two workers, and a busy-polling worker owns its core, so the nodes run
//! in interrupt mode (sleeping in poll(2) when idle), unpinned by default: measured against
//! both workers pinned to CPU 1 (away from the generator) it delivered as much and cut the
//! RTT about fourfold, because a worker can then run on the core whose packet woke it; see
//! [`CrossnodeOptions::node_cpus`] and BENCHMARKS.md.

mod brindle_side;
mod combine;
mod path_check;
mod plan;
mod report;
mod results;
mod run;
mod side;
mod traffic;

pub use brindle_side::*;
pub use combine::*;
pub use path_check::*;
pub use plan::*;
pub use report::*;
pub use results::*;
pub use run::*;
pub use side::*;

use traffic::*;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use crate::baseline::{
    kernel_forwarding_commands, kernel_ipip_bpf_commands, kernel_ipip_bpf_compile_command,
    kernel_ipip_device_commands, setup_kernel_ipip, KernelIpip, IPIP_OVERHEAD, TUNNEL_IF,
    TUNNEL_MTU,
};
use crate::e2e::{self, Ratios, SideResult};

use crate::baseline::run_all;
use crate::error::{io_err, BenchError};
use crate::runner;
use crate::stats::{self, Latencies};
use lab::cmd::{self, ChildGuard, CmdError, CONFIG_TIMEOUT};
use lab::node::{NodeLaunch, NodeProcess};
use lab::run::{pid_tag, LoadAverage};
use lab::udp::{SendReport, SinkReport};
use lab::{MultiLab, MultiLabSpec, UPLINK_IF};

/// The core the generator and ping are pinned to.
pub const GENERATOR_CPU: usize = 0;
/// Default worker cores of node 1 and node 2: unpinned (the scheduler places the workers).
pub const DEFAULT_NODE_CPUS: NodeCpus = [None, None];
/// Pings of the capture that proves the path.
pub const PATH_PINGS: usize = 5;
/// How long a brindle node gets from start to forwarding.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Grace between SIGTERM and SIGKILL for brindle-node.
const NODE_STOP_GRACE: Duration = Duration::from_secs(5);
/// Ethernet FCS: part of the frame size the generator is told, not of what veth counts.
const FCS_LEN: usize = 4;

#[cfg(test)]
mod tests;
