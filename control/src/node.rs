//! The node service: start the dataplane, program it from node.toml, re-read the file and
//! apply it again on SIGHUP, serve health, metrics and stats, and leave the host as it was.
//!
//! Order matters for the host's sake: every AF_XDP socket is registered before the XDP program
//! is attached to its interface, and the program redirects with an XDP_PASS fallback, so there
//! is never a moment where a packet is sent to a socket that does not exist (`dataplane` keeps
//! that order for ports added and removed while running). On the way out the programs are
//! detached before the sockets close. After a crash the program stays attached but its sockets
//! are gone, so traffic falls back to the kernel; the next start replaces it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use fastpath::punt::PuntConfig;
use fastpath::worker::RxMode;
use serde_json::{json, Value};

use crate::config::{Mode, NodeConfig};
use crate::dataplane::{ApplyReport, Dataplane, DataplaneObserver, DataplaneSettings, DesiredState, FailureKind};
use crate::health::{EndpointConfig, Health, HttpServer, Response};
use crate::stats::{counters_json, StatsServer};

/// How often items the last apply could not program (an interface not there yet) are retried.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Reads node.toml: the endpoint keys (`health_*`, `metrics_*`) and the node configuration.
pub fn load_config(path: &Path) -> anyhow::Result<(NodeConfig, EndpointConfig)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (endpoints, rest) = EndpointConfig::split_from(&text).map_err(|e| anyhow!(e))?;
    let config = NodeConfig::parse(&rest)?;
    Ok((config, endpoints))
}

/// Runs the node from the file at `path` until `stop` becomes true (set by the signal handler).
pub fn run(path: &Path, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let (config, endpoints) = load_config(path).with_context(|| format!("config {}", path.display()))?;
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone()).context("installing the SIGHUP handler")?;

    let node_ip = config
        .uplink
        .as_deref()
        .and_then(|u| crate::host::interface(u).ok())
        .and_then(|f| f.addrs.first().map(|(ip, _)| *ip));
    let (mode, core) = match config.mode {
        Mode::Poll => (RxMode::Poll, Some(config.cores.first().copied().unwrap_or(crate::host::core_count() - 1))),
        Mode::Interrupt => (RxMode::Interrupt, config.cores.first().copied()),
    };
    tracing::info!(node = %config.node_name, workloads = config.workloads.len(), "starting");
    let mut dataplane = Dataplane::start(DataplaneSettings { mode, core, node_ip, punt: PuntConfig::default() })
        .context("starting the dataplane")?;
    let observer = dataplane.observer();

    let health = Arc::new(Health::default());
    health.set_live(true);
    let servers_stop = Arc::new(AtomicBool::new(false));
    let h = health.clone();
    let health_server = HttpServer::start("health", endpoints.health, servers_stop.clone(), move |p| h.respond(p))
        .with_context(|| format!("binding the health endpoint {} (health_host, health_port)", endpoints.health))?;
    let metrics_server = match endpoints.metrics {
        Some(addr) => {
            let dp = observer.clone();
            let server = HttpServer::start("metrics", addr, servers_stop.clone(), move |path| match path {
                "/metrics" => Response { status: 200, content_type: crate::metrics::CONTENT_TYPE, body: crate::metrics::render(&dp) },
                _ => Response::text(404, "not found\n".into()),
            })
            .with_context(|| format!("binding the metrics endpoint {addr} (metrics_host, metrics_port)"))?;
            Some(server)
        }
        None => None,
    };
    let stats = start_stats(&config, observer.clone(), servers_stop.clone())?;

    // The first apply: items that exist but cannot be used are configuration errors, so the
    // node refuses to start; missing interfaces are expected (plugged in later) and retried.
    let report = dataplane.apply(&DesiredState::from_config(&config)).context("programming the dataplane")?;
    let refused: Vec<String> =
        report.failures.iter().filter(|f| f.kind == FailureKind::Refused).map(|f| f.error.clone()).collect();
    if !refused.is_empty() {
        servers_stop.store(true, Ordering::Relaxed);
        anyhow::bail!("{}", refused.join("; "));
    }
    health.set_ready(true);
    tracing::info!(socket = %config.control_socket.display(), health = %health_server.addr(),
        metrics = ?metrics_server.as_ref().map(HttpServer::addr), "ready");

    let mut desired = DesiredState::from_config(&config);
    let mut running = config;
    let mut last = report;
    let mut last_apply = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if !dataplane.threads_alive() {
            health.set_live(false);
            tracing::error!("a dataplane thread stopped unexpectedly; shutting down");
            stop.store(true, Ordering::Relaxed);
            break;
        }
        let retry = !last.is_complete() && last_apply.elapsed() >= RETRY_EVERY;
        if reload.swap(false, Ordering::Relaxed) {
            match load_config(path) {
                Ok((config, new_endpoints)) => {
                    warn_about_restart_only_changes(&running, &config, &endpoints, &new_endpoints);
                    desired = DesiredState::from_config(&config);
                    running = config;
                    tracing::info!(workloads = desired.workloads.len(), "SIGHUP: applying {}", path.display());
                    last = apply(&mut dataplane, &desired)?;
                    last_apply = Instant::now();
                }
                Err(e) => tracing::error!(error = %format!("{e:#}"), "SIGHUP: keeping the running state"),
            }
        } else if retry {
            last = apply(&mut dataplane, &desired)?;
            last_apply = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    tracing::info!("stopping");
    let result = dataplane.shutdown();
    servers_stop.store(true, Ordering::Relaxed);
    drop((health_server, metrics_server, stats));
    result.context("stopping the dataplane")?;
    tracing::info!("stopped");
    Ok(())
}

fn apply(dataplane: &mut Dataplane, desired: &DesiredState) -> anyhow::Result<ApplyReport> {
    dataplane.apply(desired).context("programming the dataplane")
}

/// Settings read once at start: a changed value is reported, not silently ignored.
fn warn_about_restart_only_changes(old: &NodeConfig, new: &NodeConfig, old_e: &EndpointConfig, new_e: &EndpointConfig) {
    let mut changed = Vec::new();
    if old.mode != new.mode {
        changed.push("mode");
    }
    if old.cores != new.cores {
        changed.push("cores");
    }
    if old.node_name != new.node_name {
        changed.push("node_name");
    }
    if old.control_socket != new.control_socket {
        changed.push("control_socket");
    }
    if old_e != new_e {
        changed.push("health/metrics endpoints");
    }
    if !changed.is_empty() {
        tracing::warn!(?changed, "these settings take effect only after a restart");
    }
}

/// The JSON document `brindle-node stats` prints.
fn start_stats(config: &NodeConfig, dp: DataplaneObserver, stop: Arc<AtomicBool>) -> anyhow::Result<StatsServer> {
    let node_name = config.node_name.clone();
    let mode_name = format!("{:?}", config.mode).to_lowercase();
    StatsServer::start(&config.control_socket, stop, move || {
        let per_worker: Vec<Value> =
            dp.workers().iter().map(|(name, c)| json!({"name": name, "counters": counters_json(c)})).collect();
        json!({
            "node": node_name,
            "mode": mode_name,
            "fastpath": counters_json(&dp.fastpath()),
            "workers": per_worker,
            "slowpath": serde_json::to_value(dp.slowpath()).unwrap_or(Value::Null),
            "ports": serde_json::to_value(&*dp.ports()).unwrap_or(Value::Null),
            "failures": serde_json::to_value(&*dp.failures()).unwrap_or(Value::Null),
        })
    })
}
