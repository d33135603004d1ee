//! The running dataplane: the XDP program, the worker and slow-path threads and what they
//! serve; starting it, what it shows, and stopping it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use fastpath::classifier::IpSetsWriter;
use fastpath::conntrack::persist::{FlowFile, SavedFlow};
use fastpath::conntrack::FlowTableConfig;
use fastpath::handoff;
use fastpath::hostpath::{FailsafePort, HostEgress};
use fastpath::policy::EndpointPolicy;
use fastpath::punt::punt_paths;
use fastpath::worker::{self, PortCommandError, PortCommandSender, WorkerSpec};
use fastpath::xdp::XdpProgram;
use fastpath::{PortKind, Tables, WorkerCounters};
use slowpath::{SlowpathConfig, SlowpathCounters};

use super::ids::PortIds;
use super::observer::{DataplaneObserver, Observed, PortStatus};
use super::ports::LivePort;
use super::publish::deny_all_policy;
use super::qos::PortLimiters;
use super::settings::{DataplaneSettings, UplinkTuning, UPLINK_FIRST_SLOT};
use super::{ApplyReport, DataplaneError};
use crate::host::{InterfaceFacts, Ipv4Prefix};
use crate::hostveth;

/// The running dataplane (see the module docs of `dataplane`).
pub struct Dataplane {
    pub(super) program: XdpProgram,
    pub(super) tables: Arc<ArcSwap<Tables>>,
    /// Each worker's command channel, by worker.
    pub(super) commands: Vec<PortCommandSender>,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) workers: Vec<JoinHandle<()>>,
    pub(super) slowpath: Option<JoinHandle<()>>,
    pub(super) ports: BTreeMap<String, LivePort>,
    pub(super) ids: PortIds,
    pub(super) pools: Option<Vec<Ipv4Prefix>>,
    /// The host's gateway routes on the uplink the tables were last built with.
    pub(super) underlay: Vec<crate::host::GatewayRoute>,
    /// The uplink's AF_XDP settings from its NIC profile.
    pub(super) uplink_tuning: Option<UplinkTuning>,
    /// What the XDP program's NAT entry says now.
    pub(super) snat: Option<Option<(Ipv4Addr, std::ops::RangeInclusive<u16>)>>,
    pub(super) observed: Arc<Observed>,
    /// The workers' address sets, until the policy owner takes them.
    pub(super) ip_sets: Option<IpSetsWriter>,
    /// For policed workloads without a program.
    pub(super) deny_all: Arc<EndpointPolicy>,
    /// The host endpoint's TC egress program on the uplink, while it is enforced.
    pub(super) host_egress: Option<HostEgress>,
    /// What the BPF maps say of the host endpoint now: (node, kernel end's ifindex) and the
    /// failsafe ports.
    pub(super) host_bpf: Option<(Ipv4Addr, u32)>,
    pub(super) failsafe: Option<(Vec<FailsafePort>, Vec<FailsafePort>)>,
    /// The pools the node's stack routes to the vRouter now, and from which address.
    pub(super) host_routes: Option<(Vec<Ipv4Prefix>, Option<Ipv4Addr>)>,
    /// The kernel's end of the pair to the node's stack, as it was made.
    pub(super) host_kernel_end: Option<InterfaceFacts>,
    /// The workloads' rate limiters, kept across publishes.
    pub(super) limiters: PortLimiters,
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
            let flow_file = settings
                .flow_state
                .as_deref()
                .and_then(|dir| open_flow_file(dir, i, count));
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
                        flow_file,
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
            limiters: PortLimiters::default(),
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

    pub(super) fn port_status(&self) -> Vec<PortStatus> {
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
        if self.host_routes.is_some() || hostveth::exists(hostveth::KERNEL_END) {
            self.remove_host_pair();
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

/// Worker `worker`'s flow file in `dir` (made root-only), and the flows the previous process
/// left in it. A node that cannot keep its flows still forwards: the failure is logged and the
/// worker's flows live in memory only.
fn open_flow_file(
    dir: &std::path::Path,
    worker: usize,
    workers: usize,
) -> Option<(FlowFile, Vec<SavedFlow>)> {
    use std::os::unix::fs::DirBuilderExt;
    let path = dir.join(format!("worker-{worker}.flows"));
    let opened = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| {
            FlowFile::open(
                &path,
                worker::DEFAULT_FLOW_CAPACITY,
                worker as u32,
                workers as u32,
            )
        });
    match opened {
        Ok((file, previous)) => {
            if let Some(why) = &previous.refused {
                tracing::warn!(file = %path.display(), why, "flows of the previous process not restored");
            }
            if previous.invalid > 0 {
                tracing::warn!(file = %path.display(), invalid = previous.invalid, "flow records that do not decode skipped");
            }
            Some((file, previous.flows))
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot keep flows across restarts");
            None
        }
    }
}
