//! Brindle's fastpath: a pure packet pipeline and the AF_XDP I/O around it.
//!
//! The pipeline (`pipeline::process`) is a function of a frame, its ingress port and an
//! immutable [`Tables`] snapshot; it never locks or allocates. Workers (`worker`) move frames between
//! AF_XDP ports (`port`) and the pipeline, and hand frames the pipeline cannot finish
//! (ARP, ICMP errors, unresolved neighbours) to the slow path through [`punt`].

pub mod classifier;
pub mod conntrack;
pub mod counters;
mod eventfd;
pub mod fib;
pub mod handoff;
pub mod hostpath;
pub mod pipeline;
pub mod policy;
pub mod port;
pub mod punt;
pub mod tables;
pub mod wire;
pub mod worker;
pub mod xdp;

pub use counters::{DropReason, Fate, PipelineCounters, WorkerCounters};
pub use fib::Fib;
pub use pipeline::{process, Outcome, PuntReason, Verdict};
pub use tables::{
    Encap, MacAddr, NextHop, NextHopId, NextHopKind, PortId, PortInfo, PortKind, Tables,
};
