//! The policy benchmark: end-to-end 64-byte UDP between two workloads on one node whose sink
//! is guarded by 1,000 ingress rules, through (a) the kernel with Calico's iptables structure
//! and (b) brindle-node in agent mode with the same rules as a GlobalNetworkPolicy. Both
//! topologies are up at once and measured in interleaved rounds (each side reports medians),
//! because these machines are noisy and only ratios measured side by side mean anything.
//!
//! Conntrack lets every packet after a flow's first skip the rules on both sides, so two kinds
//! of traffic are measured: a few flows (the established fast path) and a new flow per packet
//! (source and destination ports walk a 66-million-pair space: the rule-evaluation path).
//!
//! The generator is this process's own: a thread enters the source workload's namespace, pins
//! itself to [`GENERATOR_CPU`] and sends hand-built IPv4/UDP packets on a raw socket with
//! `sendmmsg`, rewriting the ports per packet (a UDP socket cannot vary its source port).
//! Delivery is counted at the sink workload's `eth0` (packets that reached it, whatever port),
//! so no sink process is needed for a port range. While the kernel side runs, brindle-node is
//! stopped with SIGSTOP so that its worker does not compete for the cores.

mod brindle_side;
mod flood;
mod kernel_side;
mod measure;
mod plan;
mod report;
mod rules;
mod run;
mod sweep;

pub use flood::*;
pub use plan::*;
pub use report::*;
pub use rules::*;
pub use run::*;
pub use sweep::*;

use brindle_side::*;
use kernel_side::*;
use measure::*;

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use crate::baseline::IptablesBackend;

use crate::baseline;
use crate::error::{io_err, BenchError};
use crate::rounds::{median, ratio};
use crate::stats::{self, CpuTimes};
use lab::cmd;
use lab::cni::{netconf, CniPlugin};
use lab::felix::{self, ipset_name, ChainEnd, Dispatch, Iptables};
use lab::node::{NodeLaunch, NodeProcess};
use lab::run::LoadAverage;
use lab::{Forwarding, Lab, LabSpec, MultiLab, MultiLabSpec};

/// The core the generator thread is pinned to.
pub const GENERATOR_CPU: usize = 0;
/// The core brindle-node's worker is pinned to.
pub const NODE_CPU: usize = 1;
/// Destination ports the allowing rule admits, from the base port on.
pub const PORT_SPAN: u16 = 1024;
/// Source ports the generator walks (1024..=65535).
pub const SOURCE_PORTS: u32 = 65535 - 1024 + 1;
/// Flows of the "established" traffic kind.
pub const FEW_FLOWS: u64 = 16;
/// Network (and profile label) of the generating workload, matched by the allowing rule.
pub const SOURCE_NETWORK: &str = "polsrc";
/// Network (and profile label) of the sink workload, selected by the policy.
pub const SINK_NETWORK: &str = "polsink";
/// A label nobody carries: the selector of a third of the non-matching rules.
pub const OTHER_LABEL: &str = "polother";
/// Comment on the kernel side's end-of-tier drop, whose counter proves denials.
const END_OF_TIER: &str = "polbench-end-of-tier-drop";
const POLICY_NAME: &str = "polbench-1000";
/// Probes sent to prove the policy in force (allowed and denied).
const PROBE_PACKETS: u64 = 200;

#[cfg(test)]
pub(crate) mod tests;
