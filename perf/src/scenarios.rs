//! The scenario suite (ARCHITECTURE.md scenario 7): ping latency, iperf3 TCP and UDP, and HTTP
//! load (nginx in a workload, `ab` and `wrk` from another) over the paths a cluster has,
//! each measured through brindle and through the kernel dataplane in the same run.
//!
//! | lab        | topology                                   | paths measured |
//! |------------|--------------------------------------------|----------------|
//! | `one-node` | [`Lab`]: two workloads, uplink to `ext`    | pod-to-pod, pod-to-node (workload to the node's uplink address) |
//! | `l2`       | [`MultiLab`]: two nodes on one segment     | pod-to-pod across nodes (plain), pod-to-node (node 1's workload to node 2's address), node-to-node |
//! | `ipip`     | [`MultiLab`]: node 2 behind a router       | pod-to-pod across nodes (IP in IP) |
//!
//! Each lab is built twice, kernel first. The kernel baseline is wired as Calico's kernel
//! dataplane wires it (the labs' own Calico wiring: veth `cali...`, proxy ARP, /32 routes, the
//! crossnode benchmark's routes and IPIP), and it enforces the same policy as brindle's side:
//! Felix-style iptables-legacy chains per workload interface with an ipset of the network's
//! members and conntrack ([`kernel_policy_iptables`]), proven live by their counters before
//! anything is measured and removed with the lab (`labs[].kernel_policy`). brindle's side
//! runs as a cluster does ([`Wiring::BrindleCni`], the default): the lab's namespaces without workloads, one
//! `brindle-node` per node in agent mode from calico-node's environment (`NODENAME`,
//! `IP_AUTODETECTION_METHOD=interface=eth0`, `CALICO_IPV4POOL_IPIP` Never, or CrossSubnet in
//! the routed lab) on one embedded store shared by the lab's nodes, and the workloads plugged
//! in by `brindle-cni` (CNI ADD, one network, so that its profile admits every pod-to-pod
//! scenario). [`Wiring::Lab`] keeps the older file-mode run on the lab's own wiring. Worker
//! mode is interrupt by default so that two nodes share the two cores. Every scenario of the
//! lab runs on each side; ratios are brindle/kernel of the same run; the JSON's `labs` says
//! how each lab was wired.
//!
//! Pod-to-node through brindle is workload-to-host traffic: the vRouter hands it to the
//! node's stack through the host port (`brhost0`), and the kernel routes the pools back to
//! the vRouter. Felix drops it by default (`defaultEndpointToHostAction: Drop`); the nodes
//! run with `FELIX_DEFAULTENDPOINTTOHOSTACTION=Accept`. Node-to-node stays in the kernel (the
//! XDP program passes it): it shows the cost of the attached program. A side that fails is
//! reported with its error, never left out.
//!
//! Every load is bounded: ping by count and deadline, iperf3 by `-t`, ab by `-n` and `-t`,
//! wrk by `-d` and `--timeout`; every process by a timeout of its own.

mod agent_side;
mod kernel_policy;
mod lab_side;
mod measure;
mod parse;
mod plan;
mod report;
mod results;
mod run;
mod running_lab;
mod wiring;

pub use agent_side::*;
pub use kernel_policy::*;
pub use lab_side::*;
pub use measure::*;
pub use parse::*;
pub use plan::*;
pub use report::*;
pub use results::*;
pub use run::*;
pub use running_lab::*;
pub use wiring::*;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use crate::baseline::packets_of_rule;

use crate::baseline::{self, IptablesBackend};
use crate::crossnode::{self, Encap};
use crate::e2e;
use crate::error::{io_err, quoted, BenchError};
use crate::progress::Progress;
use lab::cmd::{self, ChildGuard, CmdError};
use lab::cni::CniPlugin;
use lab::felix::{
    from_workload_chain, ipset_name, to_workload_chain, ChainEnd, Dispatch, Iptables,
};
use lab::node::{log_tail, NodeLaunch, NodeProcess};
use lab::run::LoadAverage;
use lab::{Forwarding, Lab, LabSpec, MultiLab, MultiLabSpec};

/// The lab's ports for iperf3 and nginx (inside workload namespaces: no clash with the host).
pub const IPERF_PORT: u16 = 5301;
pub const HTTP_PORT: u16 = 8080;
/// The static file nginx serves: small, so that the load measures packets and not bytes.
pub const HTTP_FILE: &str = "index.html";
pub const HTTP_FILE_BYTES: usize = 612;
/// iperf3's UDP datagram: fits the 1480-byte MTU of the IPIP lab with its headers.
pub const UDP_DATAGRAM_BYTES: usize = 1400;
/// Workload MTU in the IPIP lab, as Calico sets it for an IPIP pool (1500 - 20).
pub const IPIP_WORKLOAD_MTU: usize = baseline::TUNNEL_MTU;
/// How long a node gets from start to forwarding.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an agent-mode lab gets from its nodes' start to the first pod-to-pod reply: the
/// BGP mesh must come up and the routes arrive before pods on two nodes can talk.
const AGENT_READY_TIMEOUT: Duration = Duration::from_secs(45);
/// The one network every workload of a lab is plugged into: the profile brindle-cni creates
/// for it admits its members, so every pod-to-pod scenario is allowed by policy.
pub const SCENARIO_NETWORK: &str = "scnet";
const NODE_STOP_GRACE: Duration = Duration::from_secs(5);
/// Longest a server (iperf3, nginx) may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests;
