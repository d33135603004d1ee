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
use fastpath::RxMode;
use serde_json::{json, Value};

use crate::agent::env::{NodeAddress, NodeEnv};
use crate::agent::{Agent, Identity};
use crate::config::NodeConfig;
use crate::dataplane::{
    ApplyReport, Dataplane, DataplaneObserver, DataplaneSettings, DesiredState, FailureKind,
    UplinkTuning,
};
use crate::health::{EndpointConfig, Health, HttpServer, Response};
use crate::hwprofile::{ChosenProfile, HwProfile};
use crate::metrics::felix::FelixSource;
use crate::stats::{counters_json, StatsServer};

/// How often items the last apply could not program (an interface not there yet) are retried.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Reads node.toml: the endpoint keys (`health_*`, `metrics_*`) and the node configuration.
pub fn load_config(path: &Path) -> anyhow::Result<(NodeConfig, EndpointConfig)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (endpoints, rest) = EndpointConfig::split_from(&text).map_err(|e| anyhow!(e))?;
    let config = NodeConfig::parse(&rest)?;
    Ok((config, endpoints))
}

/// Where the desired state comes from: node.toml (re-read on SIGHUP) or the datastore.
#[allow(clippy::large_enum_variant)] // one value per node process, never moved in a loop
enum Source {
    File {
        path: std::path::PathBuf,
        reload: Arc<AtomicBool>,
        running: NodeConfig,
        endpoints: EndpointConfig,
    },
    Datastore(Box<Agent>),
}

impl Source {
    /// Why the node must restart to take a change up, when one comes that it cannot apply
    /// live (its own address, in agent mode).
    fn restart_needed(&mut self) -> Option<String> {
        match self {
            Source::File { .. } => None,
            Source::Datastore(agent) => agent.address_changed(),
        }
    }

    /// A new desired state, when there is one.
    fn poll(&mut self) -> Option<DesiredState> {
        match self {
            Source::File {
                path,
                reload,
                running,
                endpoints,
            } => {
                if !reload.swap(false, Ordering::Relaxed) {
                    return None;
                }
                match load_config(path) {
                    Ok((config, new_endpoints)) => {
                        warn_about_restart_only_changes(
                            running,
                            &config,
                            endpoints,
                            &new_endpoints,
                        );
                        let desired = DesiredState::from_config(&config);
                        tracing::info!(
                            workloads = desired.workloads.len(),
                            "SIGHUP: applying {}",
                            path.display()
                        );
                        *running = config;
                        Some(desired)
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "SIGHUP: keeping the running state");
                        None
                    }
                }
            }
            Source::Datastore(agent) => agent.poll().then(|| agent.desired()),
        }
    }
}

/// Runs the node from the file at `path` until `stop` becomes true (set by the signal handler).
pub fn run(path: &Path, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let (config, endpoints) =
        load_config(path).with_context(|| format!("config {}", path.display()))?;
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .context("installing the SIGHUP handler")?;
    let node_ip = config
        .uplink
        .as_deref()
        .and_then(|u| crate::host::interface(u).ok())
        .and_then(|f| f.addrs.first().map(|(ip, _)| *ip));
    let desired = DesiredState::from_config(&config);
    let source = Source::File {
        path: path.to_owned(),
        reload,
        running: config.clone(),
        endpoints: endpoints.clone(),
    };
    drive(&config, &endpoints, node_ip, desired, source, None, stop)
}

/// Runs the node as calico-node does: configured by its environment, programmed from the
/// datastore, with no configuration file.
pub fn run_agent(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let get = |k: &str| std::env::var(k).ok();
    let env = NodeEnv::from_env(get).context("calico-node environment")?;
    let settings = AgentSettings::from_env(get)?;
    let libnetwork = crate::libnetwork::Settings::from_env(get)?;
    let (uplink, ip, len) = match &env.address {
        NodeAddress::Static(ip, len) => {
            let holder = crate::host::interface_names()
                .into_iter()
                .find(|n| {
                    crate::host::interface(n).is_ok_and(|f| f.addrs.iter().any(|(a, _)| a == ip))
                })
                .with_context(|| {
                    format!("IP={ip}/{len}: no interface in this network namespace has {ip}")
                })?;
            (holder, *ip, *len)
        }
        NodeAddress::Autodetect(method) => crate::agent::env::autodetect(method)
            .map_err(|e| anyhow!("IP_AUTODETECTION_METHOD: {e}"))?,
    };
    tracing::info!(node = %env.node_name, %ip, len, %uplink, "node address");
    let ds_config = datastore::DatastoreConfig::from_env().map_err(|e| anyhow!("{e}"))?;
    let identity = Identity {
        node_name: env.node_name.clone(),
        address: (ip, len),
        uplink: uplink.clone(),
    };
    // The datastore may not be up yet when the node starts (a host booting): keep trying.
    let (store, agent) = loop {
        let attempt = datastore::open(&ds_config)
            .map_err(anyhow::Error::from)
            .and_then(|store| {
                Agent::start(
                    store.clone(),
                    &env,
                    identity.clone(),
                    settings.tap_dir.clone(),
                )
                .map(|agent| (store, agent.with_host_port(settings.host_port)))
                .map_err(anyhow::Error::from)
            });
        match attempt {
            Ok(started) => break started,
            Err(e) if stop.load(Ordering::Relaxed) => return Err(e.context("datastore")),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "datastore not ready; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    };
    // Docker's drivers write to the datastore the agent reads, like brindle-cni; the sockets
    // go when the node stops.
    let _libnetwork = match &libnetwork {
        Some(plugin) => Some(crate::libnetwork::start(plugin, store, &env.node_name)?),
        None => None,
    };
    let hw = crate::hwprofile::env_overrides(std::env::vars()).map_err(|e| anyhow!(e))?;
    let config = NodeConfig {
        mode: settings.mode.unwrap_or(RxMode::Interrupt),
        mode_explicit: settings.mode.is_some(),
        node_name: env.node_name.clone(),
        uplink: Some(uplink),
        pools: Vec::new(),
        control_socket: settings.control_socket.clone(),
        cores: settings.cores.clone(),
        workloads: Vec::new(),
        routes: Vec::new(),
        hw,
        host_port: settings.host_port,
    };
    let mut agent = agent;
    // BGP as calico-node runs it (CALICO_NETWORKING_BACKEND=bird, the default); `none` (policy
    // only) runs without. A speaker that cannot start (port 179 taken) is reported and the
    // node carries on with its local workloads.
    let bgp = if get("CALICO_NETWORKING_BACKEND").as_deref() == Some("none") {
        None
    } else {
        match agent.start_bgp() {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::error!(error = %e, "BGP speaker not started: no routes to other nodes");
                None
            }
        }
    };
    let desired = agent.desired();
    drive(
        &config,
        &settings.endpoints,
        Some(ip),
        desired,
        Source::Datastore(Box::new(agent)),
        bgp,
        stop,
    )
}

/// brindle-node's own settings in agent mode, from the environment.
struct AgentSettings {
    /// `None`: not set, the uplink's NIC profile decides.
    mode: Option<RxMode>,
    cores: Vec<usize>,
    control_socket: std::path::PathBuf,
    endpoints: EndpointConfig,
    /// Where brindle-cni registers TAP workloads (`cli::tap_registry`).
    tap_dir: std::path::PathBuf,
    /// What the way to the node's own stack is made of.
    host_port: crate::hostveth::HostPort,
}

impl AgentSettings {
    /// `BRINDLE_MODE` (poll|interrupt|adaptive; unset: the NIC profile's rx_mode), `BRINDLE_CORES`
    /// (comma list), `BRINDLE_CONTROL_SOCKET`, `BRINDLE_TAP_DIR` (an absolute path; unset:
    /// brindle-cni's default), `BRINDLE_HOST_PORT` (veth|tap, node.toml's `host_port`), and
    /// Felix's `FELIX_HEALTHHOST`, `FELIX_HEALTHPORT`,
    /// `FELIX_PROMETHEUSMETRICSENABLED`, `FELIX_PROMETHEUSMETRICSHOST`,
    /// `FELIX_PROMETHEUSMETRICSPORT`.
    fn from_env(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<AgentSettings> {
        let mode = match get("BRINDLE_MODE").as_deref() {
            None => None,
            Some("interrupt") => Some(RxMode::Interrupt),
            Some("poll") => Some(RxMode::Poll),
            Some("adaptive") => Some(RxMode::Adaptive),
            Some(other) => {
                anyhow::bail!("BRINDLE_MODE={other:?}: expected poll, interrupt or adaptive")
            }
        };
        let host_port = match get("BRINDLE_HOST_PORT").as_deref() {
            None | Some("veth") => crate::hostveth::HostPort::Veth,
            Some("tap") => crate::hostveth::HostPort::Tap,
            Some(other) => anyhow::bail!("BRINDLE_HOST_PORT={other:?}: expected veth or tap"),
        };
        let cores = match get("BRINDLE_CORES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|c| c.trim().parse::<usize>().map_err(|_| anyhow!("BRINDLE_CORES={list:?}: expected a comma-separated list of core numbers")))
                .collect::<anyhow::Result<_>>()?,
        };
        let control_socket = get("BRINDLE_CONTROL_SOCKET")
            .map_or_else(|| crate::config::DEFAULT_CONTROL_SOCKET.into(), Into::into);
        let tap_dir = match get(cli::tap_registry::DIR_ENV).filter(|d| !d.is_empty()) {
            None => cli::tap_registry::DEFAULT_DIR.into(),
            Some(dir) if std::path::Path::new(&dir).is_absolute() => dir.into(),
            Some(dir) => anyhow::bail!(
                "{}={dir:?}: must be an absolute directory path",
                cli::tap_registry::DIR_ENV
            ),
        };
        // The same keys node.toml takes, spelled as Felix's environment spells them.
        let mut toml = String::new();
        for (var, key, quoted) in [
            ("FELIX_HEALTHHOST", "health_host", true),
            ("FELIX_HEALTHPORT", "health_port", false),
            ("FELIX_PROMETHEUSMETRICSENABLED", "metrics_enabled", false),
            ("FELIX_PROMETHEUSMETRICSHOST", "metrics_host", true),
            ("FELIX_PROMETHEUSMETRICSPORT", "metrics_port", false),
        ] {
            if let Some(v) = get(var) {
                let v = if quoted {
                    format!("{v:?}")
                } else {
                    v.to_lowercase()
                };
                toml.push_str(&format!("{key} = {v}\n"));
            }
        }
        let (endpoints, _) = EndpointConfig::split_from(&toml)
            .map_err(|e| anyhow!("Felix endpoint variables: {e}"))?;
        Ok(AgentSettings {
            mode,
            cores,
            control_socket,
            endpoints,
            tap_dir,
            host_port,
        })
    }
}

/// SO_BUSY_POLL when a profile asks for busy polling: the 20 us the kernel's busy-poll
/// documentation and its AF_XDP sample use (profiles have no field for it).
pub const BUSY_POLL_USECS: u32 = 20;

/// The uplink's NIC profile (`hw-profiles/`, chosen by the detected driver, with node.toml's
/// `[hw]` or agent mode's `BRINDLE_HW_*` overrides); none without an uplink.
fn uplink_profile(config: &NodeConfig) -> anyhow::Result<Option<ChosenProfile>> {
    let Some(uplink) = &config.uplink else {
        return Ok(None);
    };
    let profiles = crate::hwprofile::ProfileSet::load().context("loading the NIC profiles")?;
    let driver = crate::hwprofile::detect_driver(uplink).map(|(d, _)| d);
    let source = if config.mode_explicit {
        "node.toml [hw]"
    } else {
        "environment BRINDLE_HW_*"
    };
    let chosen = profiles
        .resolve(driver.as_deref(), config.hw.as_ref(), source)
        .context("choosing the uplink's NIC profile")?;
    let p = &chosen.profile;
    tracing::info!(%uplink, driver = driver.as_deref().unwrap_or("unknown"), profile = %p.driver, reason = %chosen.reason,
        overridden = ?chosen.overridden, xdp_mode = %p.xdp_mode, rx_mode = %p.rx_mode, ring = p.rx_ring_size,
        batch = p.batch_size, zero_copy = p.zero_copy, prefer_busy_poll = p.prefer_busy_poll,
        napi_defer_hard_irqs = p.napi_defer_hard_irqs, gro_flush_timeout_ns = p.gro_flush_timeout_ns, "uplink NIC profile");
    Ok(Some(chosen))
}

/// What of a NIC profile the dataplane applies to the uplink.
pub fn uplink_tuning(p: &HwProfile) -> UplinkTuning {
    UplinkTuning {
        ring_size: p.rx_ring_size,
        batch_size: p.batch_size as usize,
        force_copy: !p.zero_copy,
        frame_size: p.frame_size,
        xdp_mode: p.xdp_mode,
        busy_poll: p.prefer_busy_poll.then_some(fastpath::port::BusyPoll {
            prefer: true,
            usecs: BUSY_POLL_USECS,
            budget: p.busy_poll_budget,
        }),
        napi_defer_hard_irqs: p.napi_defer_hard_irqs,
        gro_flush_timeout_ns: p.gro_flush_timeout_ns,
        queue_policy: p.queue_policy,
    }
}

/// The worker's rx mode: an explicit `rx_mode` override of the profile wins, then the node's
/// own `mode` when the user set it, then the profile's `rx_mode`.
pub fn worker_rx_mode(mode: RxMode, mode_explicit: bool, chosen: Option<&ChosenProfile>) -> RxMode {
    let from_profile = |c: &ChosenProfile| c.profile.rx_mode;
    let from_node = mode;
    match chosen {
        Some(c) if c.overridden.iter().any(|f| f == "rx_mode") => from_profile(c),
        Some(c) if !mode_explicit => from_profile(c),
        _ => from_node,
    }
}

/// How many fastpath workers run and the core each is pinned to: one per uplink queue
/// served (`queues`), at most one per core available (`BRINDLE_CORES` when set, else every
/// core). A polling worker gets a core to itself, counted from the last core down unless
/// `BRINDLE_CORES` names them; the other modes are pinned only when asked.
pub fn worker_plan(
    mode: RxMode,
    queues: u32,
    configured: &[usize],
    core_count: usize,
) -> (usize, Vec<usize>) {
    let available = if configured.is_empty() {
        core_count
    } else {
        configured.len()
    };
    let workers = (queues.max(1) as usize)
        .min(available.max(1))
        .min(crate::dataplane::MAX_UPLINK_QUEUES as usize);
    let cores = match mode {
        RxMode::Poll if configured.is_empty() => (0..workers)
            .map(|i| core_count.max(1) - 1 - i.min(core_count.max(1) - 1))
            .collect(),
        _ => configured.iter().copied().take(workers).collect(),
    };
    (workers, cores)
}

/// Where the workers keep their flows across restarts: next to the control socket, which is
/// one per node (`/run/brindle/brindle-node.sock` keeps them in `/run/brindle/brindle-node.flows/`).
pub fn flow_state_dir(control_socket: &Path) -> std::path::PathBuf {
    control_socket.with_extension("flows")
}

/// Starts the dataplane and its servers, applies `desired`, then follows `source` until
/// `stop`.
fn drive(
    config: &NodeConfig,
    endpoints: &EndpointConfig,
    node_ip: Option<std::net::Ipv4Addr>,
    mut desired: DesiredState,
    mut source: Source,
    bgp: Option<crate::agent::bgp::BgpStatus>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let profile = uplink_profile(config)?;
    let mode = worker_rx_mode(config.mode, config.mode_explicit, profile.as_ref());
    let uplink = profile.as_ref().map(|c| uplink_tuning(&c.profile));
    // One worker per uplink queue the profile serves, as far as the cores go.
    let queues = match (&config.uplink, &uplink) {
        (Some(name), Some(t)) => {
            crate::host::interface(name).map_or(1, |f| t.queue_policy.queues(f.queues))
        }
        _ => 1,
    };
    let (workers, cores) = worker_plan(mode, queues, &config.cores, crate::host::core_count());
    tracing::info!(node = %config.node_name, workloads = desired.workloads.len(), rx_mode = ?mode, workers, ?cores, "starting");
    let mut dataplane = Dataplane::start(DataplaneSettings {
        mode,
        workers,
        cores,
        node_ip,
        punt: PuntConfig::default(),
        uplink,
        flow_state: Some(flow_state_dir(&config.control_socket)),
    })
    .context("starting the dataplane")?;
    let observer = dataplane.observer();
    let felix = FelixSource::new(&config.node_name);
    // The agent keeps the policy address sets the workers read; the first desired state was
    // computed before they existed, so it is computed again with them.
    if let (Source::Datastore(agent), Some(sets)) = (&mut source, dataplane.take_ip_sets()) {
        agent.attach_ip_sets(sets);
        desired = agent.desired();
    }

    let health = Arc::new(Health::default());
    health.set_live(true);
    let servers_stop = Arc::new(AtomicBool::new(false));
    let h = health.clone();
    let health_server =
        HttpServer::start("health", endpoints.health, servers_stop.clone(), move |p| {
            h.respond(p)
        })
        .with_context(|| {
            format!(
                "binding the health endpoint {} (health_host, health_port)",
                endpoints.health
            )
        })?;
    let metrics_server = match endpoints.metrics {
        Some(addr) => {
            let dp = observer.clone();
            let felix = felix.clone();
            let server =
                HttpServer::start(
                    "metrics",
                    addr,
                    servers_stop.clone(),
                    move |path| match path {
                        "/metrics" => Response {
                            status: 200,
                            content_type: crate::metrics::CONTENT_TYPE,
                            body: crate::metrics::render_node(&dp, &felix),
                        },
                        _ => Response::text(404, "not found\n".into()),
                    },
                )
                .with_context(|| {
                    format!("binding the metrics endpoint {addr} (metrics_host, metrics_port)")
                })?;
            Some(server)
        }
        None => None,
    };
    // The first apply: with a file, items that exist but cannot be used are configuration
    // errors, so the node refuses to start; missing interfaces are expected (plugged in
    // later) and retried. From the datastore, a bad endpoint is reported, not fatal.
    let report = apply(&mut dataplane, &desired, &felix)?;
    refresh_felix(&felix, &source, &desired);
    let refused: Vec<String> = report
        .failures
        .iter()
        .filter(|f| f.kind == FailureKind::Refused)
        .map(|f| f.error.clone())
        .collect();
    if !refused.is_empty() && matches!(source, Source::File { .. }) {
        servers_stop.store(true, Ordering::Relaxed);
        anyhow::bail!("{}", refused.join("; "));
    }
    // The control socket answers once the first apply is done, so that a client that sees it
    // answer (the tests, `brindle-node stats` in a script) sees the dataplane programmed and
    // the XDP programs attached.
    let stats = start_stats(config, mode, observer.clone(), bgp, servers_stop.clone())?;
    health.set_ready(true);
    tracing::info!(socket = %config.control_socket.display(), health = %health_server.addr(),
        metrics = ?metrics_server.as_ref().map(HttpServer::addr), "ready");

    let mut last = report;
    let mut last_apply = Instant::now();
    let mut last_felix = Instant::now();
    let mut restart = None;
    while !stop.load(Ordering::Relaxed) {
        if let Some(why) = source.restart_needed() {
            tracing::warn!(reason = %why, "restarting in place to take it up");
            restart = Some(why);
            break;
        }
        if !dataplane.threads_alive() {
            health.set_live(false);
            tracing::error!("a dataplane thread stopped unexpectedly; shutting down");
            stop.store(true, Ordering::Relaxed);
            break;
        }
        // Also when the host's own routes changed under a node that routes through them.
        let retry = last_apply.elapsed() >= RETRY_EVERY
            && (!last.is_complete() || (desired.route_underlay && dataplane.underlay_changed()));
        if let Some(next) = source.poll() {
            desired = next;
            last = apply(&mut dataplane, &desired, &felix)?;
            last_apply = Instant::now();
        } else if retry {
            last = apply(&mut dataplane, &desired, &felix)?;
            last_apply = Instant::now();
        }
        // Not with every poll: the counts walk the policy model.
        if last_apply > last_felix || last_felix.elapsed() >= FELIX_REFRESH {
            refresh_felix(&felix, &source, &desired);
            last_felix = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(
            if matches!(source, Source::Datastore(_)) {
                20
            } else {
                100
            },
        ));
    }

    tracing::info!("stopping");
    let result = dataplane.shutdown();
    servers_stop.store(true, Ordering::Relaxed);
    drop((health_server, metrics_server, stats));
    result.context("stopping the dataplane")?;
    tracing::info!("stopped");
    match restart {
        Some(why) => Err(restart_in_place().context(why)),
        None => Ok(()),
    }
}

/// Runs this program again in this process (execve of `/proc/self/exe`, same arguments and
/// environment): a restart that keeps the pid, so it needs no supervisor. Returns only if the
/// exec failed.
fn restart_in_place() -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new("/proc/self/exe")
        .args(std::env::args_os().skip(1))
        .exec();
    anyhow!("restarting in place: {error}")
}

/// Applies `desired`, recording for Felix's metrics how long it took and whether it left
/// something to retry.
fn apply(
    dataplane: &mut Dataplane,
    desired: &DesiredState,
    felix: &FelixSource,
) -> anyhow::Result<ApplyReport> {
    let started = Instant::now();
    let report = dataplane
        .apply(desired)
        .context("programming the dataplane")?;
    felix.record_apply(started.elapsed(), !report.is_complete());
    Ok(report)
}

/// How often Felix's counts are taken again when nothing was applied (resync state, policy
/// resources that change no program).
const FELIX_REFRESH: Duration = Duration::from_secs(1);

/// Takes again what Felix's metrics report of the agent (agent mode) or the desired state.
fn refresh_felix(felix: &FelixSource, source: &Source, desired: &DesiredState) {
    let cluster = match source {
        Source::Datastore(agent) => Some(agent.felix_counts()),
        Source::File { .. } => None,
    };
    let from_file = desired.workloads.len() + usize::from(desired.host_endpoint.is_some());
    felix.update(|s| {
        s.local_endpoints = cluster.as_ref().map_or(from_file, |c| c.local_endpoints);
        s.cluster = cluster;
    });
}

/// Settings read once at start: a changed value is reported, not silently ignored.
fn warn_about_restart_only_changes(
    old: &NodeConfig,
    new: &NodeConfig,
    old_e: &EndpointConfig,
    new_e: &EndpointConfig,
) {
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
/// In agent mode it also holds `bgp_peers`, the BGP peer table.
fn start_stats(
    config: &NodeConfig,
    rx_mode: RxMode,
    dp: DataplaneObserver,
    bgp: Option<crate::agent::bgp::BgpStatus>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<StatsServer> {
    let node_name = config.node_name.clone();
    // What the worker runs in, after the NIC profile had its say (not just node.toml's mode).
    let mode_name = format!("{rx_mode:?}").to_lowercase();
    StatsServer::start(&config.control_socket, stop, move || {
        let handoff = dp.handoff();
        let per_worker: Vec<Value> = dp
            .workers()
            .iter()
            .zip(handoff)
            .map(|((name, c), h)| {
                json!({
                    "name": name,
                    "counters": counters_json(c),
                    "handoff": {"handed_off": h.handed_off, "received": h.received, "handoff_full": h.full, "transmit_failed": h.transmit_failed},
                })
            })
            .collect();
        let mut doc = json!({
            "node": node_name,
            "mode": mode_name,
            "fastpath": counters_json(&dp.fastpath()),
            "workers": per_worker,
            "slowpath": serde_json::to_value(dp.slowpath()).unwrap_or(Value::Null),
            "ports": serde_json::to_value(&*dp.ports()).unwrap_or(Value::Null),
            "failures": serde_json::to_value(&*dp.failures()).unwrap_or(Value::Null),
        });
        if let (Some(bgp), Some(map)) = (&bgp, doc.as_object_mut()) {
            map.insert("bgp_peers".into(), bgp.json());
        }
        doc
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_per_uplink_queue_capped_by_the_cores_and_polling_workers_get_their_own() {
        // One queue: one worker, pinned as before (the last core when polling).
        assert_eq!(worker_plan(RxMode::Poll, 1, &[], 2), (1, vec![1]));
        assert_eq!(worker_plan(RxMode::Interrupt, 1, &[], 2), (1, vec![]));
        assert_eq!(worker_plan(RxMode::Interrupt, 1, &[3, 4], 8), (1, vec![3]));
        // Two queues on two cores: two workers on cores 1 and 0.
        assert_eq!(worker_plan(RxMode::Poll, 2, &[], 2), (2, vec![1, 0]));
        // More queues than cores: capped; BRINDLE_CORES caps and places them.
        assert_eq!(worker_plan(RxMode::Poll, 8, &[], 2), (2, vec![1, 0]));
        assert_eq!(worker_plan(RxMode::Poll, 8, &[5], 16), (1, vec![5]));
        assert_eq!(
            worker_plan(RxMode::Adaptive, 4, &[2, 3], 16),
            (2, vec![2, 3])
        );
        // Degenerate inputs never give zero workers or an underflow.
        assert_eq!(worker_plan(RxMode::Poll, 0, &[], 0), (1, vec![0]));
    }
    use crate::hwprofile::ProfileSet;

    fn chosen(driver: &str, hw: Option<&str>) -> ChosenProfile {
        let hw: Option<toml::Value> = hw.map(|t| toml::Value::Table(t.parse().unwrap()));
        ProfileSet::embedded()
            .unwrap()
            .resolve(Some(driver), hw.as_ref(), "test")
            .unwrap()
    }

    #[test]
    fn the_host_port_is_a_veth_unless_a_tap_is_asked_for() {
        let host_port = |value: &str| {
            AgentSettings::from_env(|k| (k == "BRINDLE_HOST_PORT").then(|| value.to_owned()))
        };
        use crate::hostveth::HostPort;
        assert_eq!(host_port("tap").unwrap().host_port, HostPort::Tap);
        assert_eq!(host_port("veth").unwrap().host_port, HostPort::Veth);
        let none = AgentSettings::from_env(|_| None).unwrap();
        assert_eq!(none.host_port, HostPort::Veth);
        let e = host_port("macvlan").err().unwrap().to_string();
        assert!(
            e.contains("BRINDLE_HOST_PORT") && e.contains("macvlan"),
            "{e}"
        );
    }

    #[test]
    fn the_tap_registry_is_brindle_cnis_default_unless_an_absolute_path_is_given() {
        let settings = |value: Option<&str>| {
            AgentSettings::from_env(|k| match k {
                "BRINDLE_TAP_DIR" => value.map(str::to_owned),
                _ => None,
            })
        };
        let dir = |value| settings(value).unwrap().tap_dir;
        assert_eq!(dir(None), std::path::Path::new("/var/run/brindle/taps"));
        assert_eq!(dir(Some("")), std::path::Path::new("/var/run/brindle/taps"));
        assert_eq!(dir(Some("/tmp/t")), std::path::Path::new("/tmp/t"));
        let e = settings(Some("taps")).err().unwrap().to_string();
        assert!(
            e.contains("BRINDLE_TAP_DIR") && e.contains("\"taps\""),
            "{e}"
        );
    }

    #[test]
    fn rx_mode_comes_from_an_override_then_the_node_then_the_profile() {
        let veth = chosen("veth", None); // rx_mode = "adaptive"
        assert_eq!(
            worker_rx_mode(RxMode::Poll, true, Some(&veth)),
            RxMode::Poll,
            "node.toml's mode beats the profile's default"
        );
        assert_eq!(
            worker_rx_mode(RxMode::Interrupt, false, Some(&veth)),
            RxMode::Adaptive,
            "unset mode: the profile decides"
        );
        let forced = chosen("veth", Some("rx_mode = \"interrupt\""));
        assert_eq!(
            worker_rx_mode(RxMode::Poll, true, Some(&forced)),
            RxMode::Interrupt,
            "an explicit override wins"
        );
        assert_eq!(
            worker_rx_mode(RxMode::Poll, false, None),
            RxMode::Poll,
            "no uplink, no profile"
        );
    }

    #[test]
    fn tuning_maps_xdp_mode_copy_busy_poll_and_napi_fields() {
        let t = uplink_tuning(
            &chosen(
                "veth",
                Some("xdp_mode = \"generic\"\nrx_ring_size = 1024\nbatch_size = 32"),
            )
            .profile,
        );
        assert_eq!(t.xdp_mode, fastpath::XdpMode::Generic);
        assert_eq!((t.ring_size, t.batch_size, t.force_copy), (1024, 32, true));
        assert_eq!(t.busy_poll, None, "veth does not busy-poll");
        let mlx = chosen("mlx5_core", Some("prefer_busy_poll = true\nbusy_poll_budget = 16\nnapi_defer_hard_irqs = 2\ngro_flush_timeout_ns = 200000"));
        let t = uplink_tuning(&mlx.profile);
        assert_eq!(t.xdp_mode, fastpath::XdpMode::Native);
        assert_eq!(t.force_copy, !mlx.profile.zero_copy);
        assert_eq!(
            t.busy_poll,
            Some(fastpath::port::BusyPoll {
                prefer: true,
                usecs: BUSY_POLL_USECS,
                budget: 16
            })
        );
        assert_eq!(
            (t.napi_defer_hard_irqs, t.gro_flush_timeout_ns),
            (2, 200_000)
        );
    }
}
