//! The end-to-end benchmark: the same generator, sink and ping across (a) a Kernel-mode lab,
//! where Linux forwards like Calico's kernel dataplane, and (b) a Brindle-mode lab, where
//! only `brindle-node` forwards. Both run one after the other in one invocation, because
//! these machines are noisy and only ratios measured side by side mean anything.
//!
//! Placement on the two cores: the UDP generator and the ping run under `taskset -c 0`; in
//! the Brindle run the node's poll-mode worker is pinned to core 1 by its config. The sink is
//! not pinned. Busy cores are measured for the whole machine from `/proc/stat`, so anything
//! else running at the same time (a build) counts too: run on a quiet machine.

mod measure;
mod plan;
mod raw_side;
mod report;
mod results;
mod run;
mod sides;
mod traffic;

pub use measure::*;
pub use plan::*;
pub use report::*;
pub use results::*;
pub use run::*;
pub use traffic::*;

use raw_side::*;
use sides::*;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::e2e_xdp::{Generator, XdpUdp};
use crate::error::{io_err, BenchError};
use crate::rounds::ratio;
use crate::runner;
use crate::stats::{self, CpuTimes, Latencies};
use lab::cmd::{self, ChildGuard};
use lab::node::{NodeLaunch, NodeProcess};
use lab::udp::{SendReport, SinkReport};
use lab::{Forwarding, Lab, LabSpec};

/// The core the generator and ping are pinned to.
pub const GENERATOR_CPU: usize = 0;
/// The core brindle-node's worker is pinned to in poll mode.
pub const NODE_CPU: usize = 1;
/// How long brindle-node gets to start forwarding before the run is declared failed.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Grace between SIGTERM and SIGKILL for brindle-node.
const NODE_STOP_GRACE: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests;
