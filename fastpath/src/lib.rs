//! Brindle's fastpath: a pure packet pipeline and the AF_XDP I/O around it.
//!
//! The pipeline (`pipeline::process`) is a function of a frame, its ingress port and an
//! immutable [`Tables`] snapshot; it never locks or allocates. Workers (`worker`) move frames between
//! AF_XDP ports (`port`) and the pipeline, and hand frames the pipeline cannot finish
//! (ARP, ICMP errors, unresolved neighbours) to the slow path through [`punt`].
//!
//! At the bottom sit modules that import nothing else of the crate, so that any layer may name
//! what they hold without depending on a higher one: `ids` (port and next-hop ids),
//! `frame_sizes`, `modes` (XDP attach mode, worker rx mode) and `wire` (packet formats, with
//! [`MacAddr`]).

pub mod classifier;
pub mod conntrack;
pub mod counters;
mod eventfd;
pub mod fib;
pub mod handoff;
pub mod hostpath;
pub mod ids;
pub mod offload;
pub mod pipeline;
pub mod policy;
pub mod port;
pub mod punt;
pub mod qos;
pub mod tables;
pub mod wire;
pub mod worker;
pub mod xdp;

pub use counters::{DropReason, Fate, Marks, PipelineCounters, SocketCounters, WorkerCounters};
pub use fib::Fib;
pub use ids::{NextHopId, PortId};
pub use pipeline::{process, Outcome, PuntReason, Verdict};
pub use tables::{Encap, NextHop, NextHopKind, PortInfo, PortKind, Tables};
pub use wire::ethernet::MacAddr;
pub use xdp_settings::{frame_sizes, modes};
pub use xdp_settings::{RxMode, XdpMode};
