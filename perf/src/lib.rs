//! Labs in network namespaces, a UDP traffic generator and sink, and the end-to-end
//! benchmark that compares brindle with the kernel dataplane side by side.
//!
//! The labs, the brindle-node processes and the traffic tools come from the `lab` crate.
//!
//! - [`stats`]: ping output parsing, latency percentiles, CPU accounting from `/proc/stat`.
//! - [`e2e`]: the benchmark that runs both topologies one after the other ([`e2e_xdp`]: with
//!   the AF_XDP generator).

pub mod baseline;
pub mod bgp_learn;
pub mod controlplane;
pub mod crossnode;
pub mod e2e;
pub mod e2e_xdp;
pub mod error;
pub mod ipam_alloc;
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
