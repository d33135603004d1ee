//! Control-plane benchmarks: how fast a workload plugged in by CNI starts forwarding, and how
//! fast a node lists and programs a large datastore.
//!
//! Both run `brindle-node` in agent mode (as calico-node: configured by its environment,
//! programmed from the datastore) inside a lab's node namespace, with etcd started on that
//! namespace's loopback (or the embedded store), and drive it exactly as a cluster does:
//!
//! - [`run_cni_latency`]: a container runtime's view. For each of N workloads: create a network
//!   namespace, run `brindle-cni ADD` (timed), then probe the new address from a "prober"
//!   container plugged in beforehand until it answers (ADD-to-forwarding: from the start of ADD
//!   to the first echo reply). At the end every workload is removed with `brindle-cni DEL`
//!   (timed).
//! - [`run_resync`]: N WorkloadEndpoints of this node whose interfaces do not exist are written
//!   to the datastore, then the node is started and timed from process start to (a) its
//!   `datastore synced endpoints=N` log line (list done, view built) and (b) its stats socket
//!   listing N `missing` items (the first dataplane apply over all N endpoints is done). On etcd
//!   the bench then cuts the node's etcd connections and times its resync.
//!
//! Everything is bounded in count and time, and every namespace and process is removed on
//! every exit path (guards).

mod cluster;
mod cni_latency;
mod node_log;
mod report;
mod resync;
mod summary;

pub use cni_latency::*;
pub use report::*;
pub use resync::*;
pub use summary::*;

use cluster::*;
use node_log::*;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datastore::Datastore;
use serde::Serialize;

use crate::error::{io_err, quoted, BenchError};
use lab::cmd::{self, ChildGuard, CONFIG_TIMEOUT};
use lab::cni::{netconf, CniPlugin};
use lab::etcd::EtcdMemberSpec;
use lab::node::{self as brindle_node, NodeLaunch, NodeProcess};
use lab::{Lab, LabSpec};

/// Bounds that keep a typo from starting a run of hours.
pub const MAX_WORKLOADS: usize = 1000;
pub const MAX_ENDPOINTS: usize = 60_000;
/// How long the node may take to open its control socket.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a new workload may take to answer once ADD has started.
const FORWARDING_TIMEOUT: Duration = Duration::from_secs(20);
/// How long etcd may take to answer after it was started.
const ETCD_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound of `ResyncOptions::timeout`.
pub const MAX_RESYNC_TIMEOUT: Duration = Duration::from_secs(600);
/// Lines of the node's log kept for error messages.
const LOG_TAIL_LINES: usize = 40;
const NETWORK: &str = "bench";
/// Container index of the warm-up workload (timed workloads count from 1, the prober is 0).
const WARM_UP_INDEX: usize = 0xf_ffff;
/// etcd's ports inside the node namespace (its own loopback: no clash with other runs).
const ETCD_CLIENT_URL: &str = "http://127.0.0.1:2379";
const ETCD_PEER_URL: &str = "http://127.0.0.1:2380";

type Result<T> = std::result::Result<T, BenchError>;

#[cfg(test)]
mod tests;
