//! Labs in network namespaces, a UDP traffic generator and sink, and the end-to-end
//! benchmark that compares brindle with the kernel dataplane side by side.
//!
//! - [`lab`]: namespaces and veths wired the way Calico's CNI wires workloads.
//! - [`udp`]: `sendmmsg`/`recvmmsg` generator and sink, bounded by duration.
//! - [`xdpgen`]: AF_XDP generator and sink with sequence numbers and one-way latency.
//! - [`stats`]: ping output parsing, latency percentiles, CPU accounting from `/proc/stat`.
//! - [`e2e`]: the benchmark that runs both topologies one after the other.
//! - [`cmd`]: bounded execution of the external tools all of the above use.

pub mod bgp_learn;
pub mod cmd;
pub mod cni;
pub mod controlplane;
pub mod crossnode;
pub mod e2e;
pub mod ipam_alloc;
pub mod lab;
pub mod options;
pub mod policy_bench;
pub mod progress;
pub mod report;
pub mod report_markdown;
pub mod report_plots;
pub mod report_rules;
pub mod report_scenarios;
pub mod results;
pub mod rounds;
pub mod rows;
pub mod runner;
pub mod scale;
pub mod scenarios;
pub mod stats;
pub mod udp;
pub mod xdpgen;
