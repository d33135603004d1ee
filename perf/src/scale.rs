//! `brindle-perf scale`: does forwarding slow down when many idle workloads are attached?
//!
//! One lab with two real workloads (w1 sends UDP to w2 through brindle-node) and, next to
//! them, `idle` more workload interfaces that carry no traffic. The same node binary runs
//! twice per round in the same lab: once programmed with the two workloads only ("few"), once
//! with the idle ones attached as well ("many"); the ratio many/few is the figure (goal >= 0.8).
//! Both runs happen in one invocation, one after the other, because only ratios measured side
//! by side mean anything on a noisy machine.
//!
//! Plugging 500 workloads with brindle-cni (a namespace, a veth, addresses and routes each,
//! ~15 commands) would take minutes; what the node's worker sees of an idle workload is only
//! its host-side veth with an AF_XDP socket and the XDP program. So the idle workloads are veth
//! pairs made with two `ip -batch` calls: the `cali…` end in the node namespace (listed in
//! node.toml like any workload, with an address of the pool), the other end in one shared
//! namespace `<lab>-idle`. The two real workloads are full Calico-style workloads (`lab`).
//!
//! Placement: the generator runs on CPU 0 (`e2e::GENERATOR_CPU`); in poll mode the node's
//! worker is pinned to CPU 1; in interrupt mode it is not pinned and shares the cores.

mod idle_workloads;
mod measure;
mod plan;
mod queues;
mod report;
mod run;

pub use idle_workloads::*;
pub use plan::*;
pub use queues::*;
pub use report::*;
pub use run::*;

use measure::*;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::e2e::{self, UdpParams, NODE_CPU};
use crate::error::{io_err, BenchError};
use crate::rounds::{mean, ratio};
use crate::runner;
use lab::cmd::{self, ChildGuard};
use lab::node::{NodeLaunch, NodeProcess};
use lab::{Lab, LabSpec};

/// Most idle workloads a run attaches (each costs the node a socket and an 8 MiB UMEM).
pub const MAX_IDLE: usize = 2000;
/// How long brindle-node gets to attach every port and start forwarding.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(120);
const NODE_STOP_GRACE: Duration = Duration::from_secs(10);
const CONFIG_TIMEOUT: Duration = Duration::from_secs(120);

#[cfg(test)]
mod tests;
