//! The live dataplane: the XDP program, the AF_XDP ports, the worker and slow-path threads and
//! the tables they read, changed while traffic flows.
//!
//! [`Dataplane::apply`] takes the state the node should be in ([`DesiredState`]: workloads,
//! uplink, pools, static routes), diffs it against what is running and changes only the
//! difference, in an order that never sends a packet into a hole:
//!
//! - a new port: open the AF_XDP socket (it registers itself in the XSKMAP), hand it to the
//!   worker and wait until the worker has it, publish tables that route to it, and only then
//!   attach the XDP program, from which moment the interface's packets reach the socket;
//! - a port that goes: publish tables without its routes (packets to it now get ICMP
//!   unreachable), detach the XDP program (its packets go back to the kernel), take the port
//!   out of the worker and close it;
//! - changed addresses: new tables only.
//!
//! Problems with one interface (the CNI plugin may write an endpoint before the veth exists)
//! do not fail the apply: they are reported in [`ApplyReport::failures`] and the interface is
//! tried again on the next apply. Neighbour MACs already resolved carry over into every new
//! snapshot (copied here from the current one, and re-applied by the slow path from its own
//! table), so existing workloads never fall back to ARP because a neighbour came or went.
//!
//! Port ids are stable for a port's life and double as XSKMAP slots. A freed id is reused only
//! once no snapshot that routed to it is alive any more (see [`PortIds`]), so no table, however
//! late a thread reads it, can send one workload's packets to another.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use fastpath::classifier::{Cidr, ClassifierBuilder, EndpointRules, IpSetsWriter};
use fastpath::conntrack::FlowTableConfig;
use fastpath::frame_sizes::XDP_HEADROOM;
use fastpath::handoff::{self, HandoffCounters, HandoffStats};
use fastpath::hostpath::{FailsafePort, HostEgress};
use fastpath::policy::{EndpointPolicy, HostPolicy};
use fastpath::port::{BusyPoll, Port, PortConfig};
use fastpath::punt::{punt_paths, PuntConfig};
use fastpath::tables::HostPath;
use fastpath::tables::SnatRules;
use fastpath::worker::{self, PortCommand, PortCommandError, PortCommandSender, WorkerSpec};
use fastpath::xdp::{Attachment, XdpError, XdpProgram, MAX_SOCKETS};
use fastpath::{
    MacAddr, NextHopKind, PipelineCounters, PortId, PortInfo, PortKind, RxMode, Tables,
    WorkerCounters, XdpMode,
};
use serde::Serialize;
use slowpath::{SlowpathConfig, SlowpathCounters, SlowpathCountersSnapshot};

use crate::config::{NodeConfig, RouteConfig, WorkloadConfig};
use crate::host::{InterfaceError, InterfaceFacts, Ipv4Prefix};
use crate::hostveth;
use crate::programme::{self, Routing};

/// What the node should be forwarding for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredState {
    pub workloads: Vec<WorkloadConfig>,
    pub uplink: Option<String>,
    pub pools: Vec<Ipv4Prefix>,
    /// Pools with `natOutgoing`: their workloads' traffic to destinations outside every pool
    /// leaves with the node's address.
    pub nat_pools: Vec<Ipv4Prefix>,
    /// Route through the host's own gateway routes on the uplink too (agent mode).
    pub route_underlay: bool,
    /// Static routes, and routes to other nodes' workloads: prefix, via (the other node, or a
    /// gateway on the uplink's subnet) and encapsulation (none or IPIP). The `via` of every
    /// IPIP route is a known node, whose IPIP packets are decapsulated (see
    /// `programme::tables`).
    pub routes: Vec<RouteConfig>,
    /// The node's own IPAM blocks: addresses in them that no workload has are dropped here
    /// rather than sent anywhere (Calico's blackhole routes for affine blocks).
    pub blackholes: Vec<Ipv4Prefix>,
    /// Police workloads: each gets its program from `policies`, and one without a program
    /// gets none of its traffic through (Calico: no policy and no profile, no traffic). Off in
    /// file mode, where workloads are not policed.
    pub enforce_policy: bool,
    /// Compiled policy of the workloads, by interface name.
    pub policies: BTreeMap<String, EndpointPolicyHandle>,
    /// The host endpoint on the uplink (agent mode), when one applies: the node's own traffic
    /// through the uplink then goes round the vRouter and is policed (see `hostveth`).
    pub host_endpoint: Option<HostEndpointState>,
}

/// A host endpoint's compiled policy and Felix's failsafe ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEndpointState {
    pub policy: HostPolicyHandle,
    pub failsafe_inbound: Vec<FailsafePort>,
    pub failsafe_outbound: Vec<FailsafePort>,
}

/// A host endpoint's compiled policy; equal when it is the same compilation.
#[derive(Clone, Debug)]
pub struct HostPolicyHandle(Arc<HostPolicy>);

impl HostPolicyHandle {
    pub fn new(policy: HostPolicy) -> HostPolicyHandle {
        HostPolicyHandle(Arc::new(policy))
    }
}

impl PartialEq for HostPolicyHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for HostPolicyHandle {}

/// A workload's compiled policy; equal when it is the same compilation.
#[derive(Clone, Debug)]
pub struct EndpointPolicyHandle(Arc<EndpointPolicy>);

impl EndpointPolicyHandle {
    pub fn new(policy: EndpointPolicy) -> EndpointPolicyHandle {
        EndpointPolicyHandle(Arc::new(policy))
    }
}

impl PartialEq for EndpointPolicyHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for EndpointPolicyHandle {}

impl DesiredState {
    pub fn from_config(config: &NodeConfig) -> DesiredState {
        DesiredState {
            workloads: config.workloads.clone(),
            uplink: config.uplink.clone(),
            pools: config.pools.clone(),
            nat_pools: Vec::new(),
            route_underlay: false,
            routes: config.routes.clone(),
            blackholes: Vec::new(),
            enforce_policy: false,
            policies: BTreeMap::new(),
            host_endpoint: None,
        }
    }
}

/// How the dataplane runs; fixed for its life.
#[derive(Clone, Debug)]
pub struct DataplaneSettings {
    pub mode: RxMode,
    /// Fastpath workers (at least 1): one per uplink queue served, each with its queue's
    /// socket and a share of the other ports (see `fastpath::handoff::port_owner`).
    pub workers: usize,
    /// Core each worker is pinned to, by worker; a worker beyond the list is not pinned.
    pub cores: Vec<usize>,
    /// Source of the node's ICMP errors (the uplink's address at start).
    pub node_ip: Option<Ipv4Addr>,
    pub punt: PuntConfig,
    /// The uplink's AF_XDP settings from its NIC profile; defaults when `None`.
    pub uplink: Option<UplinkTuning>,
}

/// What a NIC profile sets on the uplink: its AF_XDP socket, the XDP attach mode, and the
/// NAPI settings in sysfs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UplinkTuning {
    pub ring_size: u32,
    pub batch_size: usize,
    pub force_copy: bool,
    /// At least this frame size (the MTU may ask for more).
    pub frame_size: u32,
    /// How the XDP program is attached to the uplink (generic: never natively).
    pub xdp_mode: XdpMode,
    /// Busy polling on the uplink's sockets; `None`: off.
    pub busy_poll: Option<BusyPoll>,
    /// Written to `/sys/class/net/<uplink>/napi_defer_hard_irqs` while the node runs (the
    /// old value is put back on stop); 0 leaves the file alone.
    pub napi_defer_hard_irqs: u32,
    /// Likewise `gro_flush_timeout` (nanoseconds); 0 leaves it alone.
    pub gro_flush_timeout_ns: u32,
    /// How many of the uplink's RX queues get a socket (capped at [`MAX_UPLINK_QUEUES`]).
    pub queue_policy: crate::hwprofile::QueuePolicy,
}

/// Most uplink queues served. Their sockets sit in the last XSKMAP slots, which port ids
/// therefore never use: the XDP program redirects queue `q` of the uplink to slot
/// `UPLINK_FIRST_SLOT + q`.
pub const MAX_UPLINK_QUEUES: u32 = 64;
const UPLINK_FIRST_SLOT: u32 = MAX_SOCKETS - MAX_UPLINK_QUEUES;

/// Values written to an interface's sysfs files, put back when dropped (the node leaves the
/// host as it found it).
#[derive(Debug)]
struct SysfsTuning {
    /// Each file written and the value it had before.
    restore: Vec<(std::path::PathBuf, String)>,
}

impl SysfsTuning {
    /// Writes each non-zero `(file, value)` under `/sys/class/net/<interface>/`; a file that
    /// cannot be written is logged and skipped (an old kernel has no napi_defer_hard_irqs).
    fn apply(interface: &str, values: &[(&str, u32)]) -> SysfsTuning {
        let mut restore = Vec::new();
        for &(file, value) in values.iter().filter(|(_, v)| *v != 0) {
            let path = std::path::Path::new("/sys/class/net")
                .join(interface)
                .join(file);
            let old = match std::fs::read_to_string(&path) {
                Ok(old) => old.trim().to_owned(),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "NIC profile: cannot read; not tuned");
                    continue;
                }
            };
            match std::fs::write(&path, value.to_string()) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), value, was = %old, "NIC profile applied");
                    restore.push((path, old));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), value, error = %e, "NIC profile: cannot write; not tuned")
                }
            }
        }
        SysfsTuning { restore }
    }
}

impl Drop for SysfsTuning {
    fn drop(&mut self) {
        for (path, old) in &self.restore {
            match std::fs::write(path, old) {
                Ok(()) => tracing::info!(path = %path.display(), value = %old, "restored"),
                Err(e) => {
                    tracing::warn!(path = %path.display(), value = %old, error = %e, "cannot restore")
                }
            }
        }
    }
}

/// Why one item of the desired state is not in the dataplane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The interface does not exist (yet): normal while a workload is being plugged in.
    Missing,
    /// The item exists but cannot be used as asked (MTU too large, off-link gateway, ...).
    Refused,
}

/// One item the last apply could not program; it is tried again on the next apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApplyFailure {
    /// The interface, route or address concerned.
    pub item: String,
    pub kind: FailureKind,
    pub error: String,
}

/// What one apply changed, and what it could not do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// Interfaces attached.
    pub added: Vec<String>,
    /// Interfaces detached.
    pub removed: Vec<String>,
    /// Interfaces whose addresses changed.
    pub updated: Vec<String>,
    pub failures: Vec<ApplyFailure>,
}

impl ApplyReport {
    /// Everything desired is programmed.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Failures of the dataplane as a whole (per-item problems go in [`ApplyReport`]).
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("loading the XDP program: {0}")]
    Load(#[source] XdpError),
    #[error("writing pool CIDRs to the XDP program: {0}")]
    Pools(#[source] XdpError),
    #[error("starting the {what}: {source}")]
    Thread {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("the fastpath worker: {0}")]
    Worker(#[from] PortCommandError),
}

/// A port as it appears in stats and metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortStatus {
    pub id: PortId,
    pub name: String,
    pub kind: String,
    pub ifindex: u32,
    pub xdp_mode: String,
    /// RX queues with a socket (the uplink may serve several).
    pub queues: u32,
}

/// A read-only view of the running dataplane for stats and metrics, cheap to clone and safe
/// to read from any thread.
#[derive(Clone)]
pub struct DataplaneObserver {
    inner: Arc<Observed>,
}

struct Observed {
    workers: Vec<(String, Arc<WorkerCounters>)>,
    /// Each worker's handoff counters (empty with one worker, which hands nothing off).
    handoff: Vec<Arc<HandoffCounters>>,
    slowpath: Arc<SlowpathCounters>,
    ports: ArcSwap<Vec<PortStatus>>,
    failures: ArcSwap<Vec<ApplyFailure>>,
    applies: AtomicU64,
}

impl DataplaneObserver {
    /// An observer of counters alone, with no ports (for rendering tests and tools).
    pub fn for_counters(
        workers: Vec<(String, Arc<WorkerCounters>)>,
        slowpath: Arc<SlowpathCounters>,
    ) -> DataplaneObserver {
        DataplaneObserver {
            inner: Arc::new(Observed {
                workers,
                handoff: Vec::new(),
                slowpath,
                ports: ArcSwap::from_pointee(Vec::new()),
                failures: ArcSwap::from_pointee(Vec::new()),
                applies: AtomicU64::new(0),
            }),
        }
    }

    /// Fastpath counters summed over workers.
    pub fn fastpath(&self) -> PipelineCounters {
        let mut total = PipelineCounters::default();
        for (_, w) in &self.inner.workers {
            total.add(&w.snapshot());
        }
        total
    }

    /// Each worker's name and counters.
    pub fn workers(&self) -> Vec<(String, PipelineCounters)> {
        self.inner
            .workers
            .iter()
            .map(|(n, w)| (n.clone(), w.snapshot()))
            .collect()
    }

    /// Each worker's handoff counters, by worker; all zero for a lone worker.
    pub fn handoff(&self) -> Vec<HandoffStats> {
        (0..self.inner.workers.len())
            .map(|i| {
                self.inner
                    .handoff
                    .get(i)
                    .map(|h| h.snapshot())
                    .unwrap_or_default()
            })
            .collect()
    }

    pub fn slowpath(&self) -> SlowpathCountersSnapshot {
        self.inner.slowpath.snapshot()
    }

    pub fn ports(&self) -> Arc<Vec<PortStatus>> {
        self.inner.ports.load_full()
    }

    /// What the last apply could not program.
    pub fn failures(&self) -> Arc<Vec<ApplyFailure>> {
        self.inner.failures.load_full()
    }

    /// Applies completed so far.
    pub fn applies(&self) -> u64 {
        self.inner.applies.load(Ordering::Relaxed)
    }
}

/// Port ids, which are also XSKMAP slots (one queue per port), so at most `MAX_SOCKETS`.
///
/// Never-used ids go first. A freed id waits with a weak reference to the last snapshot that
/// routed to it and is handed out again only when that snapshot is gone: every thread has
/// moved on to tables without the old port, so nothing still maps an address to the id. (The
/// slow path's neighbour memory is keyed by (port, address) and may outlive it; a workload
/// that reuses both id and address is re-learned from its first ARP request, which it must
/// send before any traffic.)
#[derive(Debug)]
pub struct PortIds {
    next: u32,
    limit: u32,
    freed: VecDeque<(PortId, Weak<Tables>)>,
}

impl PortIds {
    pub fn new(limit: u32) -> PortIds {
        PortIds {
            next: 0,
            limit: limit.min(u32::from(PortId::MAX) + 1),
            freed: VecDeque::new(),
        }
    }

    pub fn allocate(&mut self) -> Option<PortId> {
        if self.next < self.limit {
            self.next += 1;
            return Some((self.next - 1) as PortId);
        }
        let at = self
            .freed
            .iter()
            .position(|(_, last)| last.strong_count() == 0)?;
        self.freed.remove(at).map(|(id, _)| id)
    }

    /// Returns `id`; `last_tables` is the newest snapshot that still routed to it.
    pub fn release(&mut self, id: PortId, last_tables: &Arc<Tables>) {
        self.freed.push_back((id, Arc::downgrade(last_tables)));
    }

    /// Returns an id no published snapshot ever referred to.
    pub fn release_unused(&mut self, id: PortId) {
        self.freed.push_front((id, Weak::new()));
    }
}

/// A port that is open, in the worker and attached.
struct LivePort {
    id: PortId,
    info: PortInfo,
    /// Workload addresses (empty for the uplink).
    ips: Vec<Ipv4Addr>,
    /// The interface's IPv4 addresses (used for the uplink).
    addrs: Vec<(Ipv4Addr, u8)>,
    attachment: Option<Attachment>,
    /// The port's XSKMAP slots: `first_slot + queue` for each of `queues` queues. Queue 0's
    /// socket sits at the port's id in the worker, the others at their XSKMAP slot.
    first_slot: u32,
    queues: u32,
    /// The uplink's NAPI settings from its profile, restored when the port goes (held only
    /// for its Drop).
    #[allow(dead_code)]
    sysfs: Option<SysfsTuning>,
}

impl LivePort {
    /// The worker slots of the port's sockets: its id (queue 0), then the other queues'.
    fn worker_slots(&self) -> Vec<PortId> {
        std::iter::once(self.id)
            .chain((1..self.queues).map(|q| (self.first_slot + q) as PortId))
            .collect()
    }
}

/// A wanted port: its kind and the workload's addresses.
struct Wanted {
    kind: PortKind,
    ips: Vec<Ipv4Addr>,
}

/// How long control waits for the worker to take a command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The running dataplane.
/// New failures logged one by one per apply; the rest are counted in one line.
const MAX_LOGGED_FAILURES: usize = 20;

pub struct Dataplane {
    program: XdpProgram,
    tables: Arc<ArcSwap<Tables>>,
    /// Each worker's command channel, by worker.
    commands: Vec<PortCommandSender>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    slowpath: Option<JoinHandle<()>>,
    ports: BTreeMap<String, LivePort>,
    ids: PortIds,
    pools: Option<Vec<Ipv4Prefix>>,
    /// The host's gateway routes on the uplink the tables were last built with.
    underlay: Vec<crate::host::GatewayRoute>,
    /// The uplink's AF_XDP settings from its NIC profile.
    uplink_tuning: Option<UplinkTuning>,
    /// What the XDP program's NAT entry says now.
    snat: Option<Option<(Ipv4Addr, std::ops::RangeInclusive<u16>)>>,
    observed: Arc<Observed>,
    /// The workers' address sets, until the policy owner takes them.
    ip_sets: Option<IpSetsWriter>,
    /// For policed workloads without a program.
    deny_all: Arc<EndpointPolicy>,
    /// The host endpoint's TC egress program on the uplink, while it is enforced.
    host_egress: Option<HostEgress>,
    /// What the BPF maps say of the host endpoint now: (node, kernel end's ifindex) and the
    /// failsafe ports.
    host_bpf: Option<(Ipv4Addr, u32)>,
    failsafe: Option<(Vec<FailsafePort>, Vec<FailsafePort>)>,
    /// The pools the node's stack routes to the vRouter now, and from which address.
    host_routes: Option<(Vec<Ipv4Prefix>, Option<Ipv4Addr>)>,
    /// The kernel's end of the pair to the node's stack, as it was made.
    host_kernel_end: Option<InterfaceFacts>,
}

impl Dataplane {
    /// Loads the XDP program and starts the worker and slow-path threads with no ports.
    pub fn start(settings: DataplaneSettings) -> Result<Dataplane, DataplaneError> {
        let program = XdpProgram::load().map_err(DataplaneError::Load)?;
        let tables = Arc::new(ArcSwap::from_pointee(Tables::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread_error = |what| move |source| DataplaneError::Thread { what, source };
        let count = settings.workers.max(1);
        let (worker_ends, slowpath_end) =
            punt_paths(settings.punt, count).map_err(thread_error("punt path"))?;
        let slowpath_counters = Arc::new(SlowpathCounters::default());
        let slowpath_config = SlowpathConfig {
            node_ip: settings.node_ip,
            ..SlowpathConfig::default()
        };
        let slowpath = slowpath::spawn(
            slowpath_config,
            tables.clone(),
            slowpath_end,
            slowpath_counters.clone(),
            stop.clone(),
        )
        .map_err(thread_error("slow path"))?;
        let ip_sets = IpSetsWriter::new();
        let links = handoff::mesh(count, handoff::DEFAULT_SLOTS)
            .map_err(thread_error("worker handoff rings"))?;
        let mut commands = Vec::with_capacity(count);
        let mut workers = Vec::with_capacity(count);
        let mut counters = Vec::with_capacity(count);
        let mut handoff_counters = Vec::with_capacity(count);
        for (i, (punt, links)) in worker_ends.into_iter().zip(links).enumerate() {
            let name = format!("worker-{i}");
            let started = worker::port_commands(64)
                .map_err(thread_error("worker command channel"))
                .and_then(|(tx, rx)| {
                    let worker_counters = Arc::new(WorkerCounters::default());
                    let spec = WorkerSpec {
                        name: name.clone(),
                        mode: settings.mode,
                        core: settings.cores.get(i).copied(),
                        ports: Vec::new(),
                        tables: tables.clone(),
                        ip_sets: ip_sets.reader(),
                        flows: FlowTableConfig::with_capacity(worker::DEFAULT_FLOW_CAPACITY),
                        punt,
                        counters: worker_counters.clone(),
                        stop: stop.clone(),
                    };
                    handoff_counters.push(links.counters());
                    let thread = worker::spawn_in_group(spec, rx, links).map_err(|source| {
                        DataplaneError::Thread {
                            what: "worker",
                            source,
                        }
                    })?;
                    Ok((tx, thread, worker_counters))
                });
            match started {
                Ok((tx, thread, worker_counters)) => {
                    commands.push(tx);
                    workers.push(thread);
                    counters.push((name, worker_counters));
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    for w in workers {
                        let _ = w.join();
                    }
                    let _ = slowpath.join();
                    return Err(e);
                }
            }
        }
        if count > 1 {
            tracing::info!(workers = count, cores = ?settings.cores, "several fastpath workers, handing flows to their owners");
        }
        let observed = Arc::new(Observed {
            workers: counters,
            handoff: if count > 1 {
                handoff_counters
            } else {
                Vec::new()
            },
            slowpath: slowpath_counters,
            ports: ArcSwap::from_pointee(Vec::new()),
            failures: ArcSwap::from_pointee(Vec::new()),
            applies: AtomicU64::new(0),
        });
        Ok(Dataplane {
            program,
            tables,
            commands,
            stop,
            workers,
            slowpath: Some(slowpath),
            ports: BTreeMap::new(),
            ids: PortIds::new(UPLINK_FIRST_SLOT),
            pools: None,
            underlay: Vec::new(),
            uplink_tuning: settings.uplink,
            snat: None,
            observed,
            ip_sets: Some(ip_sets),
            deny_all: Arc::new(deny_all_policy()),
            host_egress: None,
            host_bpf: None,
            failsafe: None,
            host_routes: None,
            host_kernel_end: None,
        })
    }

    /// Whether the host's gateway routes on the uplink differ from those the tables were
    /// built with (the node routes through them: see `programme::Routing::underlay`).
    pub fn underlay_changed(&self) -> bool {
        let uplink = self
            .ports
            .values()
            .find(|p| p.info.kind == PortKind::Uplink);
        let now = uplink
            .map(|p| crate::host::gateway_routes(&p.info.name))
            .unwrap_or_default();
        now != self.underlay
    }

    /// The workers' policy address sets, for whoever keeps them (once).
    pub fn take_ip_sets(&mut self) -> Option<IpSetsWriter> {
        self.ip_sets.take()
    }

    pub fn observer(&self) -> DataplaneObserver {
        DataplaneObserver {
            inner: self.observed.clone(),
        }
    }

    /// Both dataplane threads are running.
    pub fn threads_alive(&self) -> bool {
        let alive = |t: &Option<JoinHandle<()>>| t.as_ref().is_some_and(|t| !t.is_finished());
        self.workers.iter().all(|w| !w.is_finished()) && alive(&self.slowpath)
    }

    /// The tables the workers read now.
    pub fn tables(&self) -> Arc<Tables> {
        self.tables.load_full()
    }

    /// Brings the dataplane to `desired`, changing only what differs (see the module comment).
    pub fn apply(&mut self, desired: &DesiredState) -> Result<ApplyReport, DataplaneError> {
        let mut report = ApplyReport::default();
        if self.pools.as_ref() != Some(&desired.pools) {
            let cidrs: Vec<_> = desired.pools.iter().map(|p| (p.addr(), p.len())).collect();
            self.program
                .set_pool_cidrs(&cidrs)
                .map_err(DataplaneError::Pools)?;
            self.pools = Some(desired.pools.clone());
        }

        // The pair to the node's stack is there with an uplink; the node's own traffic through
        // the uplink takes it only with a host endpoint. A host endpoint going: that traffic
        // back to the kernel alone first, before anything else changes.
        let pair_wanted = desired.uplink.is_some();
        let host_endpoint = pair_wanted && desired.host_endpoint.is_some();
        if !host_endpoint {
            self.stop_host_path(&mut report);
        }

        let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
        for w in &desired.workloads {
            wanted.insert(
                w.interface.clone(),
                Wanted {
                    kind: PortKind::Workload,
                    ips: w.ips.clone(),
                },
            );
        }
        if let (true, Some(uplink)) = (pair_wanted, &desired.uplink) {
            match self.ensure_host_pair(uplink) {
                Ok(()) => {
                    wanted.insert(
                        hostveth::VROUTER_END.to_string(),
                        Wanted {
                            kind: PortKind::Host,
                            ips: Vec::new(),
                        },
                    );
                }
                Err(e) => report.failures.push(refused(
                    "host endpoint",
                    format!("creating the host veth pair: {e}"),
                )),
            }
        }
        if let Some(uplink) = &desired.uplink {
            if wanted.contains_key(uplink) {
                report.failures.push(refused(
                    uplink,
                    "named both as the uplink and as a workload".into(),
                ));
                wanted.remove(uplink);
            } else {
                wanted.insert(
                    uplink.clone(),
                    Wanted {
                        kind: PortKind::Uplink,
                        ips: Vec::new(),
                    },
                );
            }
        }

        // What each wanted interface is now; a failure keeps it out of this apply.
        let mut facts: BTreeMap<String, InterfaceFacts> = BTreeMap::new();
        // One address dump for all interfaces: asking per interface made an apply cost grow
        // with the square of the number of workloads.
        let addresses = crate::host::ipv4_addresses_by_interface();
        for name in wanted.keys() {
            match crate::host::interface_with_addresses(name, &addresses) {
                Ok(f) => {
                    facts.insert(name.clone(), f);
                }
                Err(e) => {
                    let kind = if matches!(e, InterfaceError::Missing(_)) {
                        FailureKind::Missing
                    } else {
                        FailureKind::Refused
                    };
                    report.failures.push(ApplyFailure {
                        item: name.clone(),
                        kind,
                        error: e.to_string(),
                    });
                }
            }
        }

        // Ports to take out: no longer wanted, gone, or replaced by a different interface of the
        // same name (a recreated veth) or kind.
        let going: Vec<String> = self
            .ports
            .iter()
            .filter(|(name, live)| match (wanted.get(*name), facts.get(*name)) {
                (Some(w), Some(f)) => {
                    w.kind != live.info.kind
                        || f.ifindex != live.info.ifindex
                        || f.mtu != live.info.mtu
                }
                _ => true,
            })
            .map(|(name, _)| name.clone())
            .collect();
        for (name, live) in self.ports.iter_mut() {
            if going.contains(name) {
                continue;
            }
            if let Some(w) = wanted.get(name) {
                if live.ips != w.ips {
                    live.ips = w.ips.clone();
                    report.updated.push(name.clone());
                }
            }
            if let Some(f) = facts.get(name) {
                live.addrs = f.addrs.clone();
            }
        }
        let mut removed: Vec<LivePort> =
            going.iter().filter_map(|n| self.ports.remove(n)).collect();
        let before_removal = self.tables.load_full();
        // Entries rejected by this interim snapshot may only lack a port added below (a route
        // through an uplink not yet attached): only the last snapshot's rejections count.
        let mut interim = ApplyReport::default();
        self.publish(desired, &[], &mut interim);
        for live in removed.iter_mut() {
            // Detach first: from here on the kernel gets the interface's packets.
            drop(live.attachment.take());
            for slot in live.worker_slots() {
                // Dropping the port closes the socket, which takes it out of the XSKMAP.
                self.remove_everywhere(slot)?;
            }
            self.ids.release(live.id, &before_removal);
            tracing::info!(interface = %live.info.name, id = live.id, "port removed");
            if wanted.contains_key(&live.info.name) && facts.contains_key(&live.info.name) {
                // Replaced: reported as added below.
            } else {
                report.removed.push(live.info.name.clone());
            }
        }

        // New ports: open and hand to the worker, then one barrier for all of them.
        let mut fresh: Vec<LivePort> = Vec::new();
        for (name, w) in &wanted {
            let Some(f) = facts.get(name) else { continue };
            if self.ports.contains_key(name) {
                continue;
            }
            match self.open_port(f, w) {
                Ok(live) => fresh.push(live),
                Err(failure) => report.failures.push(failure),
            }
        }
        if fresh.is_empty() {
            report.failures.extend(interim.failures);
        } else {
            for worker in &self.commands {
                worker.sync(COMMAND_TIMEOUT)?;
            }
            self.publish(desired, &fresh, &mut report);
        }
        // Attach last: the socket is in the XSKMAP, the worker serves it, the tables route to it.
        let mut unattached = Vec::new();
        for mut live in fresh {
            // The uplink is attached as its NIC profile says; workloads (veths) natively.
            let mode = match (live.info.kind, self.uplink_tuning) {
                (PortKind::Uplink, Some(t)) => t.xdp_mode,
                _ => XdpMode::Native,
            };
            let attach = self.program.attach_in_mode(
                live.info.ifindex,
                live.info.kind,
                live.queues,
                live.first_slot,
                mode,
            );
            match attach {
                Ok(a) => {
                    tracing::info!(interface = %live.info.name, id = live.id, kind = ?live.info.kind, mode = ?a.mode(), "attached");
                    live.attachment = Some(a);
                    report.added.push(live.info.name.clone());
                    self.ports.insert(live.info.name.clone(), live);
                }
                Err(e) => {
                    report
                        .failures
                        .push(refused(&live.info.name, format!("attaching XDP: {e}")));
                    unattached.push(live);
                }
            }
        }
        if !unattached.is_empty() {
            let before = self.tables.load_full();
            self.publish(desired, &[], &mut ApplyReport::default());
            for live in unattached {
                for slot in live.worker_slots() {
                    self.remove_everywhere(slot)?;
                }
                self.ids.release(live.id, &before);
            }
        }
        // Replaced interfaces were counted as removed and added; report them once, as added.
        report.removed.retain(|n| !report.added.contains(n));
        if host_endpoint {
            self.start_host_path(desired, &mut report);
        }
        if pair_wanted {
            self.route_pools_to_vrouter(desired, &mut report);
        } else if hostveth::exists(hostveth::KERNEL_END) {
            hostveth::remove();
            self.host_kernel_end = None;
            self.host_routes = None;
        }

        self.observed.ports.store(Arc::new(self.port_status()));
        // Each failure is logged when it first appears, not on every retry: with thousands of
        // endpoints whose interfaces are not there yet, a line each per second drowns the log.
        let previous = self
            .observed
            .failures
            .swap(Arc::new(report.failures.clone()));
        self.observed.applies.fetch_add(1, Ordering::Relaxed);
        let seen: std::collections::HashSet<(&str, &str)> = previous
            .iter()
            .map(|f| (f.item.as_str(), f.error.as_str()))
            .collect();
        let new_failures: Vec<&ApplyFailure> = report
            .failures
            .iter()
            .filter(|f| !seen.contains(&(f.item.as_str(), f.error.as_str())))
            .collect();
        for f in new_failures.iter().take(MAX_LOGGED_FAILURES) {
            tracing::warn!(item = %f.item, kind = ?f.kind, error = %f.error, "not programmed; will retry on the next apply");
        }
        if new_failures.len() > MAX_LOGGED_FAILURES {
            tracing::warn!(
                more = new_failures.len() - MAX_LOGGED_FAILURES,
                total = report.failures.len(),
                "more items not programmed (see `brindle-node stats`)"
            );
        }
        if !(report.added.is_empty() && report.removed.is_empty() && report.updated.is_empty()) {
            tracing::info!(added = ?report.added, removed = ?report.removed, updated = ?report.updated, "dataplane changed");
        }
        Ok(report)
    }

    /// Opens the AF_XDP socket for a wanted interface and hands it to the worker.
    fn open_port(&mut self, f: &InterfaceFacts, w: &Wanted) -> Result<LivePort, ApplyFailure> {
        // A frame that does not hold the interface's largest packet is dropped by the kernel
        // after XDP redirected it: a black hole for every full-sized packet. Refuse instead.
        let Some(frame_size) = PortConfig::frame_size_for_mtu(f.mtu) else {
            return Err(refused(
                &f.name,
                format!(
                    "interface {} has MTU {}; AF_XDP frames hold at most {} bytes of packet, so lower its MTU",
                    f.name,
                    f.mtu,
                    4096 - XDP_HEADROOM - 14
                ),
            ));
        };
        let Some(id) = self.ids.allocate() else {
            return Err(refused(
                &f.name,
                format!("no free port id: at most {UPLINK_FIRST_SLOT} ports"),
            ));
        };
        let info = programme::port_info(f, w.kind);
        let mut config = PortConfig {
            frame_size,
            ..PortConfig::default()
        };
        // Workloads (veths with one queue) use the slot of their id; the uplink one socket per
        // queue its profile asks for, in the slots reserved for it.
        let (first_slot, queues) = match (w.kind, self.uplink_tuning) {
            (PortKind::Uplink, Some(t)) => (
                UPLINK_FIRST_SLOT,
                t.queue_policy.queues(f.queues).min(MAX_UPLINK_QUEUES),
            ),
            (PortKind::Uplink, None) => (UPLINK_FIRST_SLOT, 1),
            (PortKind::Workload | PortKind::Host, _) => (u32::from(id), 1),
        };
        if let (PortKind::Uplink, Some(t)) = (w.kind, self.uplink_tuning) {
            config = PortConfig {
                frame_size: frame_size.max(t.frame_size),
                ring_size: t.ring_size,
                batch_size: t.batch_size,
                force_copy: t.force_copy,
                // Half the frames feed the fill ring, which takes them all at once only when
                // it has room for them: as many as its size.
                frames: 2 * t.ring_size,
                busy_poll: t.busy_poll,
            };
        }
        if w.kind == PortKind::Uplink {
            tracing::info!(uplink = %f.name, queues, available = f.queues, "serving the uplink's queues");
        }
        // Every socket is opened before any goes to the worker, so that a failure leaves
        // nothing half-installed (dropping the opened ones closes them).
        let mut sockets = Vec::with_capacity(queues as usize);
        for queue in 0..queues {
            match Port::open(id, &info, queue, &config, &self.program, first_slot + queue) {
                Ok(p) => sockets.push(p),
                Err(e) => {
                    self.ids.release_unused(id);
                    return Err(refused(
                        &f.name,
                        format!("opening the AF_XDP socket of queue {queue}: {e}"),
                    ));
                }
            }
        }
        // The uplink's queue q goes to worker q (at the port's id: each worker transmits on
        // the uplink through its own queue's socket), queues beyond the workers to worker
        // q % workers in a slot of their own; any other port to its owner.
        let workers = self.commands.len();
        for (queue, port) in sockets.into_iter().enumerate() {
            let (worker, command) = match (w.kind, queue) {
                (PortKind::Uplink, q) if q < workers => (q, PortCommand::AddPort(port)),
                (PortKind::Uplink, q) => (
                    q % workers,
                    PortCommand::AddQueue {
                        slot: (first_slot + q as u32) as PortId,
                        port,
                    },
                ),
                (_, 0) => (handoff::port_owner(id, workers), PortCommand::AddPort(port)),
                (_, q) => (
                    handoff::port_owner(id, workers),
                    PortCommand::AddQueue {
                        slot: (first_slot + q as u32) as PortId,
                        port,
                    },
                ),
            };
            if let Err(e) = self.commands[worker].send(command, COMMAND_TIMEOUT) {
                self.ids.release_unused(id);
                return Err(refused(&f.name, e.to_string()));
            }
        }
        let sysfs = match (w.kind, self.uplink_tuning) {
            (PortKind::Uplink, Some(t)) => Some(SysfsTuning::apply(
                &f.name,
                &[
                    ("napi_defer_hard_irqs", t.napi_defer_hard_irqs),
                    ("gro_flush_timeout", t.gro_flush_timeout_ns),
                ],
            )),
            _ => None,
        };
        Ok(LivePort {
            id,
            info,
            ips: w.ips.clone(),
            addrs: f.addrs.clone(),
            attachment: None,
            first_slot,
            queues,
            sysfs,
        })
    }

    /// Builds and publishes tables for the live ports plus `fresh`, with the MACs already
    /// resolved carried over; rejected entries go into `report`.
    fn publish(&mut self, desired: &DesiredState, fresh: &[LivePort], report: &mut ApplyReport) {
        let all: Vec<&LivePort> = self.ports.values().chain(fresh.iter()).collect();
        let slots = all.iter().map(|p| usize::from(p.id) + 1).max().unwrap_or(0);
        let mut infos: Vec<Option<PortInfo>> = vec![None; slots];
        for p in &all {
            let mut info = p.info.clone();
            if info.kind == PortKind::Workload && desired.enforce_policy {
                let program = desired.policies.get(&info.name).map(|h| h.0.clone());
                info.policy = Some(program.unwrap_or_else(|| self.deny_all.clone()));
            }
            infos[usize::from(p.id)] = Some(info);
        }
        let uplink = all.iter().find(|p| p.info.kind == PortKind::Uplink);
        // Workloads in the desired order, so that a duplicated address stays with the first.
        let by_name: HashMap<&str, &LivePort> =
            all.iter().map(|p| (p.info.name.as_str(), *p)).collect();
        let workloads = desired
            .workloads
            .iter()
            .filter_map(|w| by_name.get(w.interface.as_str()))
            .filter(|p| p.info.kind == PortKind::Workload)
            .map(|p| (p.id, p.ips.as_slice()))
            .collect();
        // Read at every publish: cheap, and the host's routes may change under us.
        let underlay = uplink
            .map(|p| crate::host::gateway_routes(&p.info.name))
            .unwrap_or_default();
        self.underlay = underlay.clone();
        let mut built = programme::tables(&Routing {
            ports: &infos,
            workloads,
            uplink: uplink.map(|p| (p.id, p.addrs.as_slice())),
            routes: &desired.routes,
            underlay: &underlay,
            route_underlay: desired.route_underlay,
            blackholes: &desired.blackholes,
        });
        built.tables.snat = snat_rules(
            desired,
            uplink.and_then(|p| p.addrs.first()).map(|(ip, _)| *ip),
        );
        built.tables.host = self
            .host_kernel_end
            .as_ref()
            .and_then(|kernel| host_path(desired, &all, kernel.mac));
        for e in built.rejected {
            let item = match &e {
                programme::ProgrammeError::Route { prefix, .. } => prefix.clone(),
                programme::ProgrammeError::DuplicateAddress { ip, .. } => ip.to_string(),
                programme::ProgrammeError::Fib { prefix, .. } => prefix.clone(),
                other => other.to_string(),
            };
            let failure = refused(&item, e.to_string());
            if !report.failures.contains(&failure) {
                report.failures.push(failure);
            }
        }
        carry_over_macs(&self.tables.load(), &built.tables);
        let snat = built
            .tables
            .snat
            .as_ref()
            .map(|r| (r.node, fastpath::policy::NAT_PORTS));
        self.tables.store(Arc::new(built.tables));
        if self.snat.as_ref() != Some(&snat) {
            match self.program.set_snat(snat.clone()) {
                Ok(()) => self.snat = Some(snat),
                Err(e) => report.failures.push(refused("natOutgoing", e.to_string())),
            }
        }
    }

    /// Creates the pair to the node's stack with the uplink's MTU, unless the one there already
    /// has it (setting it up runs several commands: not on every apply); keeps its kernel end's
    /// facts for the tables and the BPF maps.
    fn ensure_host_pair(&mut self, uplink: &str) -> Result<(), String> {
        let mtu = crate::host::interface(uplink).map_or(1500, |f| f.mtu);
        let current = crate::host::interface(hostveth::KERNEL_END).ok();
        let kept = self
            .host_kernel_end
            .as_ref()
            .zip(current.as_ref())
            .is_some_and(|(kept, now)| kept.ifindex == now.ifindex && now.mtu == mtu);
        if !kept {
            hostveth::ensure(mtu)?;
            self.host_kernel_end =
                Some(crate::host::interface(hostveth::KERNEL_END).map_err(|e| e.to_string())?);
        }
        Ok(())
    }

    /// Sends the node's own traffic round the vRouter, once the host port and the uplink are
    /// served and the tables police it: failsafe ports first, then the XDP program's host
    /// entry (to the node), then the TC program (from it).
    fn start_host_path(&mut self, desired: &DesiredState, report: &mut ApplyReport) {
        let Some(host) = &desired.host_endpoint else {
            return;
        };
        let tables = self.tables.load();
        let (Some(path), Some(uplink)) = (
            tables.host.as_ref(),
            tables
                .ports
                .get(usize::from(tables.host.as_ref().map_or(0, |h| h.uplink))),
        ) else {
            return; // a port is missing: reported where it failed; retried on the next apply
        };
        let attached = |id| {
            self.ports
                .values()
                .any(|p| p.id == id && p.attachment.is_some())
        };
        if !attached(path.port) || !attached(path.uplink) {
            return;
        }
        let node = uplink.ip;
        let failsafe = (
            host.failsafe_inbound.clone(),
            host.failsafe_outbound.clone(),
        );
        if self.failsafe.as_ref() != Some(&failsafe) {
            match self.program.set_failsafe_ports(&failsafe.0, &failsafe.1) {
                Ok(()) => self.failsafe = Some(failsafe),
                Err(e) => {
                    return report
                        .failures
                        .push(refused("host endpoint", format!("failsafe ports: {e}")))
                }
            }
        }
        let Some(kernel_ifindex) = self.host_kernel_end.as_ref().map(|f| f.ifindex) else {
            return report.failures.push(refused(
                "host endpoint",
                format!("{} has gone", hostveth::KERNEL_END),
            ));
        };
        if self.host_bpf != Some((node, kernel_ifindex)) {
            match self.program.set_host(Some((node, kernel_ifindex))) {
                Ok(()) => self.host_bpf = Some((node, kernel_ifindex)),
                Err(e) => {
                    return report
                        .failures
                        .push(refused("host endpoint", e.to_string()))
                }
            }
        }
        if self
            .host_egress
            .as_ref()
            .is_some_and(|l| l.ifindex() != uplink.ifindex)
        {
            self.host_egress = None;
        }
        if self.host_egress.is_none() {
            match self.program.attach_host_egress(uplink.ifindex) {
                Ok(link) => {
                    tracing::info!(uplink = %uplink.name, %node, "host endpoint enforced: the node's own traffic passes the vRouter");
                    self.host_egress = Some(link);
                }
                Err(e) => report
                    .failures
                    .push(refused("host endpoint", e.to_string())),
            }
        }
    }

    /// Routes the pools from the node's stack to the vRouter through the pair, once its port
    /// is served (until then the kernel keeps whatever it had).
    fn route_pools_to_vrouter(&mut self, desired: &DesiredState, report: &mut ApplyReport) {
        let Some(port) = self
            .ports
            .values()
            .find(|p| p.info.kind == PortKind::Host && p.attachment.is_some())
        else {
            return;
        };
        let mac = port.info.mac;
        let src = self
            .ports
            .values()
            .find(|p| p.info.kind == PortKind::Uplink)
            .and_then(|p| p.addrs.first())
            .map(|(ip, _)| *ip);
        let wanted = (desired.pools.clone(), src);
        if self.host_routes.as_ref() == Some(&wanted) {
            return;
        }
        let previous = self
            .host_routes
            .take()
            .map(|(pools, _)| pools)
            .unwrap_or_default();
        match hostveth::route_pools(&wanted.0, &previous, src, mac) {
            Ok(()) => self.host_routes = Some(wanted),
            Err(e) => report.failures.push(refused(
                "host routes",
                format!("routing the pools to the vRouter: {e}"),
            )),
        }
    }

    /// Leaves the node's own traffic to the kernel again: the TC program first, then the XDP
    /// program's host entry.
    fn stop_host_path(&mut self, report: &mut ApplyReport) {
        if self.host_egress.take().is_some() {
            tracing::info!(
                "host endpoint no longer enforced: the node's own traffic stays with the kernel"
            );
        }
        if self.host_bpf.is_some() {
            match self.program.set_host(None) {
                Ok(()) => self.host_bpf = None,
                Err(e) => report
                    .failures
                    .push(refused("host endpoint", e.to_string())),
            }
        }
    }

    /// Takes whatever sits at worker slot `slot` out of every worker and closes it.
    fn remove_everywhere(&self, slot: PortId) -> Result<(), DataplaneError> {
        for worker in &self.commands {
            drop(worker.remove_port(slot, COMMAND_TIMEOUT)?);
        }
        Ok(())
    }

    fn port_status(&self) -> Vec<PortStatus> {
        let mut out: Vec<PortStatus> = self
            .ports
            .values()
            .map(|p| PortStatus {
                id: p.id,
                name: p.info.name.clone(),
                kind: format!("{:?}", p.info.kind).to_lowercase(),
                ifindex: p.info.ifindex,
                xdp_mode: p
                    .attachment
                    .as_ref()
                    .map_or("none".into(), |a| format!("{:?}", a.mode()).to_lowercase()),
                queues: p.queues,
            })
            .collect();
        out.sort_by_key(|p| p.id);
        out
    }

    /// Detaches from every interface, then stops the threads (which close the sockets).
    pub fn shutdown(mut self) -> Result<(), DataplaneError> {
        self.stop_all()
    }

    fn stop_all(&mut self) -> Result<(), DataplaneError> {
        self.stop_host_path(&mut ApplyReport::default());
        for live in self.ports.values_mut() {
            drop(live.attachment.take()); // from here on the kernel gets the traffic
        }
        self.stop.store(true, Ordering::Relaxed);
        let worker_failed = self
            .workers
            .drain(..)
            .map(JoinHandle::join)
            .fold(false, |failed, r| failed | r.is_err());
        let slowpath = self.slowpath.take().map(JoinHandle::join);
        self.ports.clear();
        // The pair (and the pool routes through it) go with the vRouter: the node's stack has
        // nothing to send workloads through any more.
        if self.host_routes.take().is_some() || hostveth::exists(hostveth::KERNEL_END) {
            hostveth::remove();
            self.host_kernel_end = None;
        }
        if worker_failed || matches!(slowpath, Some(Err(_))) {
            return Err(DataplaneError::Worker(PortCommandError::WorkerGone));
        }
        Ok(())
    }
}

impl Drop for Dataplane {
    fn drop(&mut self) {
        let _ = self.stop_all();
    }
}

fn refused(item: &str, error: String) -> ApplyFailure {
    ApplyFailure {
        item: item.to_owned(),
        kind: FailureKind::Refused,
        error,
    }
}

/// Copies every resolved neighbour MAC of `old` into the next hops of `new` that deliver to
/// the same address out of the same port.
fn carry_over_macs(old: &Tables, new: &Tables) {
    let known: HashMap<(PortId, Ipv4Addr), MacAddr> = old
        .next_hops
        .iter()
        .filter(|nh| nh.kind == NextHopKind::Neighbor)
        .filter_map(|nh| nh.mac().map(|m| ((nh.port, nh.ip), m)))
        .collect();
    for nh in new
        .next_hops
        .iter()
        .filter(|nh| nh.kind == NextHopKind::Neighbor)
    {
        if let Some(mac) = known.get(&(nh.port, nh.ip)) {
            nh.set_mac(Some(*mac));
        }
    }
}

/// NAT outgoing for the tables: from the NAT pools, to outside every pool, as `node` (the
/// uplink's address); none without NAT pools or an address.
fn snat_rules(desired: &DesiredState, node: Option<Ipv4Addr>) -> Option<SnatRules> {
    let node = node?;
    if desired.nat_pools.is_empty() {
        return None;
    }
    let cidr = |p: &Ipv4Prefix| Cidr::from(*p);
    Some(SnatRules {
        node,
        nat_pools: desired.nat_pools.iter().map(cidr).collect(),
        pools: desired.pools.iter().map(cidr).collect(),
    })
}

/// The program of a policed workload nobody compiled one for: nothing in, nothing out.
/// The way to the node's stack when both its ports are in `ports`, with the host endpoint's
/// programs when one is wanted.
fn host_path(desired: &DesiredState, ports: &[&LivePort], kernel_mac: MacAddr) -> Option<HostPath> {
    let port = ports.iter().find(|p| p.info.kind == PortKind::Host)?;
    let uplink = ports.iter().find(|p| p.info.kind == PortKind::Uplink)?;
    let policy = desired.host_endpoint.as_ref().map(|h| h.policy.0.clone());
    Some(HostPath {
        port: port.id,
        uplink: uplink.id,
        kernel_mac,
        policy,
    })
}

fn deny_all_policy() -> EndpointPolicy {
    let builder = ClassifierBuilder::default();
    let deny = || {
        builder
            .compile(&EndpointRules::default())
            .expect("an empty rule set always compiles")
    };
    EndpointPolicy {
        ingress: deny(),
        egress: deny(),
        generation: 0,
        to_host: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastpath::NextHop;

    #[test]
    fn fresh_ids_go_first_and_a_freed_id_waits_for_its_last_tables() {
        let mut ids = PortIds::new(2);
        assert_eq!(ids.allocate(), Some(0));
        assert_eq!(ids.allocate(), Some(1));
        assert_eq!(ids.allocate(), None, "limit reached, nothing freed");
        let last = Arc::new(Tables::default());
        ids.release(0, &last);
        assert_eq!(
            ids.allocate(),
            None,
            "a snapshot that routed to 0 is still alive"
        );
        drop(last);
        assert_eq!(ids.allocate(), Some(0));
        ids.release_unused(1);
        assert_eq!(
            ids.allocate(),
            Some(1),
            "an id no table saw is free at once"
        );
    }

    #[test]
    fn resolved_macs_carry_over_to_the_same_port_and_address_only() {
        let ip = Ipv4Addr::new(192, 168, 0, 5);
        let mac: MacAddr = "02:00:00:00:00:05".parse().unwrap();
        let old = Tables {
            next_hops: vec![NextHop::new(NextHopKind::Neighbor, 3, ip)],
            ..Tables::default()
        };
        old.next_hops[0].set_mac(Some(mac));
        let new = Tables {
            next_hops: vec![
                NextHop::new(NextHopKind::Neighbor, 4, ip),
                NextHop::new(NextHopKind::Neighbor, 3, ip),
                NextHop::new(NextHopKind::Neighbor, 3, Ipv4Addr::new(192, 168, 0, 6)),
            ],
            ..Tables::default()
        };
        carry_over_macs(&old, &new);
        assert_eq!(new.next_hops[0].mac(), None, "another port");
        assert_eq!(new.next_hops[1].mac(), Some(mac));
        assert_eq!(new.next_hops[2].mac(), None, "another address");
    }
}
