//! Fastpath workers: threads that move frames between AF_XDP ports and the pipeline.
//!
//! A worker owns its ports (each a socket on one interface queue). Per port and batch it loads
//! the current table snapshot once (`service`), runs every frame through `pipeline::process`
//! and acts on the verdict (`dispatch`): copy to the egress port's TX ring (`transmit`),
//! copy to the slow path, or drop; then counts what became of the frame, once. It also sends
//! the frames the slow path injects. Nothing is allocated or locked per packet.
//!
//! Ports come and go while the worker runs (`commands`). A frame the tables send to an
//! empty slot (a port being removed, whose route is already gone from the newest snapshot but
//! not from the one this batch loaded) is dropped and counted as `DropReason::TxFull`: there
//! was nowhere to transmit it.
//!
//! Hundreds of ports, most of them idle, must not make every packet slower: hot ports are
//! polled every loop, the others swept a few per loop (`schedule`); after a batch only the
//! ports that were transmitted on are flushed. A sleeping worker waits in epoll(7)
//! (`sleep`). The loop itself is `run`.
//!
//! Several workers ([`spawn_in_group`]) each serve one queue of the uplink and a share of the
//! other ports, and keep connection tracking right by handing frames to each other
//! (`crate::handoff`): a received frame whose flow another worker owns ([`flow_owner`]) goes to
//! that worker before the pipeline sees it, and a processed frame for a port another worker
//! owns goes to that worker to be transmitted. A lone worker has no handoff links and pays
//! nothing for them.

mod coalesce;
mod commands;
mod dispatch;
mod flow_owner;
mod gso;
mod run;
mod schedule;
mod service;
mod sleep;
mod socket_stats;
mod transmit;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::classifier::IpSetsReader;
use crate::conntrack::persist::{FlowFile, SavedFlow};
use crate::conntrack::FlowTableConfig;
use crate::counters::WorkerCounters;
use crate::handoff::HandoffLinks;
use crate::modes::RxMode;
use crate::port::Port;
use crate::punt::WorkerEnd;
use crate::tables::Tables;

pub use commands::{
    port_commands, PortCommand, PortCommandError, PortCommandReceiver, PortCommandSender,
};
pub use flow_owner::{flow_owner, nat_slice};

/// How long an adaptive worker keeps polling after its last frame before it sleeps.
pub const ADAPTIVE_SPIN: Duration = Duration::from_micros(200);

/// Everything a worker thread owns.
pub struct WorkerSpec {
    pub name: String,
    pub mode: RxMode,
    /// Core to pin the thread to.
    pub core: Option<usize>,
    /// The worker's ports at start; each is installed at its own `Port::id`.
    pub ports: Vec<Port>,
    pub tables: Arc<ArcSwap<Tables>>,
    /// Policy's address sets, updated in place by control.
    pub ip_sets: IpSetsReader,
    /// The worker's connection tracking table (allocated when the worker starts).
    pub flows: FlowTableConfig,
    /// Where the table keeps its flows for the next process, and the flows the previous one
    /// kept there (`conntrack::persist`), restored when the worker starts; `None`: flows live
    /// in memory only.
    pub flow_file: Option<(FlowFile, Vec<SavedFlow>)>,
    pub punt: WorkerEnd,
    pub counters: Arc<WorkerCounters>,
    pub stop: Arc<AtomicBool>,
}

/// Flows each worker tracks at most, unless configured otherwise (about 100 bytes each).
pub const DEFAULT_FLOW_CAPACITY: usize = 65_536;

/// Starts the worker thread with a fixed set of ports.
pub fn spawn(spec: WorkerSpec) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(spec.name.clone())
        .spawn(move || run::run(spec, None, None))
}

/// Starts the worker thread; `commands` adds and removes ports while it runs.
pub fn spawn_with_commands(
    spec: WorkerSpec,
    commands: PortCommandReceiver,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(spec.name.clone())
        .spawn(move || run::run(spec, Some(commands), None))
}

/// Starts worker `links.out.worker` of a group of `links.out.workers`, which hand frames to
/// each other through `links` (see the module comment). The worker source-NATs from its own
/// [`nat_slice`], so that replies find their way back to its flow table. A group of one is
/// [`spawn_with_commands`].
pub fn spawn_in_group(
    spec: WorkerSpec,
    commands: PortCommandReceiver,
    links: HandoffLinks,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let links = (links.out.workers > 1).then_some(links);
    std::thread::Builder::new()
        .name(spec.name.clone())
        .spawn(move || run::run(spec, Some(commands), links))
}
