//! The node service: start the dataplane for a configuration, run until told to stop, and
//! leave the host as it was.
//!
//! Order matters for the host's sake: every AF_XDP socket is registered before the XDP program
//! is attached to its interface, and the program redirects with an XDP_PASS fallback, so there
//! is never a moment where a packet is sent to a socket that does not exist. On the way out the
//! programs are detached before the sockets close. After a crash the program stays attached but
//! its sockets are gone, so traffic falls back to the kernel; the next start replaces it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use fastpath::port::{Port, PortConfig};
use fastpath::punt::{punt_path, PuntConfig};
use fastpath::worker::{self, RxMode, WorkerSpec};
use fastpath::xdp::XdpProgram;
use fastpath::{PipelineCounters, PortKind, WorkerCounters};
use serde_json::{json, Value};
use slowpath::{SlowpathConfig, SlowpathCounters};

use crate::config::{Mode, NodeConfig};
use crate::programme;
use crate::stats::{counters_json, StatsServer};

/// Runs the node until `stop` becomes true (set by the signal handler).
pub fn run(config: NodeConfig, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let plan = programme::build(&config, crate::host::interface).context("building the dataplane programme")?;
    tracing::info!(node = %config.node_name, ports = plan.ports.len(), routes = plan.tables.fib.len(), "starting");

    let program = XdpProgram::load().context("loading the XDP program")?;
    let pools: Vec<_> = config.pools.iter().map(|p| (p.addr, p.len)).collect();
    program.set_pool_cidrs(&pools).context("writing pool CIDRs to the XDP program")?;

    // Frames must hold the largest packet any port can carry: a frame that does not fit is
    // dropped by the kernel after the XDP program redirected it, a black hole for every
    // full-sized packet. Refuse to start instead.
    let mut port_config = PortConfig::default();
    for p in &plan.ports {
        let Some(size) = PortConfig::frame_size_for_mtu(p.info.mtu) else {
            anyhow::bail!(
                "interface {} has MTU {}; AF_XDP frames hold at most {} bytes of packet, so lower its MTU",
                p.info.name, p.info.mtu, 4096 - fastpath::port::XDP_HEADROOM - 14
            );
        };
        port_config.frame_size = port_config.frame_size.max(size);
    }

    // Sockets first (they register themselves in the XSKMAP), then attach.
    let mut ports = Vec::with_capacity(plan.ports.len());
    for p in &plan.ports {
        let slot = u32::from(p.id);
        let port = Port::open(p.id, &p.info, 0, &port_config, &program, slot)
            .with_context(|| format!("opening AF_XDP socket on {}", p.info.name))?;
        ports.push(port);
    }
    let mut attachments = Vec::with_capacity(plan.ports.len());
    for p in &plan.ports {
        let slot = u32::from(p.id);
        let attachment = program
            .attach(p.info.ifindex, p.info.kind, 1, slot)
            .with_context(|| format!("attaching XDP to {}", p.info.name))?;
        tracing::info!(port = %p.info.name, id = p.id, kind = ?p.info.kind, mode = ?attachment.mode(), "attached");
        attachments.push(attachment);
        if p.info.kind == PortKind::Uplink && p.queues > 1 {
            tracing::warn!(uplink = %p.info.name, queues = p.queues,
                "only queue 0 of the uplink is served; traffic on other queues goes to the kernel");
        }
    }

    let tables = Arc::new(ArcSwap::from_pointee(plan.tables));
    let (worker_end, slowpath_end) = punt_path(PuntConfig::default()).context("creating the punt path")?;

    let slowpath_counters = Arc::new(SlowpathCounters::default());
    let slowpath_config = SlowpathConfig { node_ip: plan.node_ip, ..SlowpathConfig::default() };
    let slowpath_thread = slowpath::spawn(slowpath_config, tables.clone(), slowpath_end, slowpath_counters.clone(), stop.clone())
        .context("starting the slow path")?;

    let worker_counters = Arc::new(WorkerCounters::default());
    let (mode, core) = match config.mode {
        Mode::Poll => (RxMode::Poll, Some(config.cores.first().copied().unwrap_or(crate::host::core_count() - 1))),
        Mode::Interrupt => (RxMode::Interrupt, config.cores.first().copied()),
    };
    let worker_thread = worker::spawn(WorkerSpec {
        name: "worker-0".into(),
        mode,
        core,
        ports,
        tables: tables.clone(),
        punt: worker_end,
        counters: worker_counters.clone(),
        stop: stop.clone(),
    })
    .context("starting the worker")?;

    let ports_json: Vec<Value> = plan
        .ports
        .iter()
        .zip(attachments.iter())
        .map(|(p, a)| json!({"id": p.id, "name": p.info.name, "kind": format!("{:?}", p.info.kind).to_lowercase(),
                             "ifindex": p.info.ifindex, "xdp_mode": format!("{:?}", a.mode()).to_lowercase()}))
        .collect();
    let node_name = config.node_name.clone();
    let mode_name = format!("{:?}", config.mode).to_lowercase();
    let report_workers = vec![worker_counters.clone()];
    let report_slowpath = slowpath_counters.clone();
    let stats = StatsServer::start(&config.control_socket, stop.clone(), move || {
        let mut total = PipelineCounters::default();
        let per_worker: Vec<Value> = report_workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let c = w.snapshot();
                total.add(&c);
                json!({"name": format!("worker-{i}"), "counters": counters_json(&c)})
            })
            .collect();
        json!({
            "node": node_name,
            "mode": mode_name,
            "fastpath": counters_json(&total),
            "workers": per_worker,
            "slowpath": serde_json::to_value(report_slowpath.snapshot()).unwrap_or(Value::Null),
            "ports": ports_json,
        })
    })?;
    tracing::info!(socket = %config.control_socket.display(), "ready");

    while !stop.load(Ordering::Relaxed) {
        if worker_thread.is_finished() || slowpath_thread.is_finished() {
            tracing::error!("a dataplane thread stopped unexpectedly; shutting down");
            stop.store(true, Ordering::Relaxed);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    tracing::info!("stopping");
    drop(attachments); // detach first: from here on the kernel gets the traffic
    let worker_result = worker_thread.join();
    let slowpath_result = slowpath_thread.join();
    drop(stats);
    if worker_result.is_err() || slowpath_result.is_err() {
        anyhow::bail!("a dataplane thread panicked");
    }
    tracing::info!("stopped");
    Ok(())
}
