//! Resync of N endpoints: how long the node takes to sync a datastore that holds them.

use super::*;

#[derive(Clone, Debug)]
pub struct ResyncOptions {
    pub bin_dir: PathBuf,
    pub endpoints: usize,
    pub datastore: StoreKind,
    /// Parallel writers while populating the datastore.
    pub writers: usize,
    /// On etcd: cut the node's etcd connections afterwards and time its resync.
    pub reconnect: bool,
    /// How long the node may take from start to every endpoint applied.
    pub timeout: Duration,
}

#[derive(Clone, Debug, Serialize)]
pub struct ResyncReport {
    pub benchmark: &'static str,
    pub datastore: StoreKind,
    pub endpoints: usize,
    /// Populating the datastore (not the node's work).
    pub write_secs: f64,
    pub writes_per_sec: f64,
    /// Process start to the `datastore synced` log line: registration, list of pools,
    /// endpoints and blocks, and the view built (the dataplane not yet programmed).
    pub synced_secs: Option<f64>,
    /// `endpoints=` of that line.
    pub synced_endpoints: usize,
    /// Process start to the stats socket listing every endpoint as a missing interface: the
    /// first dataplane apply over all of them is done. The honest "node is in sync" figure.
    pub programmed_secs: Option<f64>,
    pub missing_reported: usize,
    /// `endpoints / programmed_secs`.
    pub endpoints_per_sec: Option<f64>,
    /// On etcd with reconnect: from cutting the node's etcd connections (`ss -K`) to its next
    /// `datastore synced` line (reconnect, list, view rebuilt).
    pub reconnect_resync_secs: Option<f64>,
    /// Log lines the node wrote during the run (warnings are one per missing interface per
    /// apply, retried every second).
    pub node_log_lines: u64,
    pub node_log_warnings: u64,
    /// When the node did not get there within the timeout: the last warning it logged.
    pub node_error: Option<String>,
    pub total_secs: f64,
}

/// Writes `endpoints` WorkloadEndpoints of the node (interfaces that do not exist), starts the
/// node and times its sync.
pub fn run_resync(opts: &ResyncOptions) -> Result<ResyncReport> {
    if opts.endpoints == 0 || opts.endpoints > MAX_ENDPOINTS {
        return Err(BenchError::Invalid {
            field: "endpoints",
            value: quoted(opts.endpoints.to_string()),
            reason: format!("between 1 and {MAX_ENDPOINTS}"),
        });
    }
    if opts.writers == 0 || opts.writers > 64 {
        return Err(BenchError::Invalid {
            field: "writers",
            value: quoted(opts.writers.to_string()),
            reason: "between 1 and 64".into(),
        });
    }
    if opts.timeout.is_zero() || opts.timeout > MAX_RESYNC_TIMEOUT {
        return Err(BenchError::Invalid {
            field: "timeout",
            value: quoted(format!("{:?}", opts.timeout)),
            reason: format!("between 1 s and {MAX_RESYNC_TIMEOUT:?}"),
        });
    }
    check_binaries(&opts.bin_dir, &["brindle-node"])?;
    let started = Instant::now();
    let mut cluster = Cluster::new("rs", &opts.bin_dir, opts.datastore)?;
    let store = cluster.store()?;
    let node = cluster.name();

    let t_write = Instant::now();
    write_endpoints(&store, &node, opts.endpoints, opts.writers)?;
    let write_secs = t_write.elapsed().as_secs_f64();

    // Not `start_node`: the control socket opens only after the first sync, and a node that
    // cannot sync is a result to report, not a setup failure.
    cluster.spawn_node()?;
    let t0 = cluster.node_started.unwrap_or(started);
    let log = cluster.node_log.clone().unwrap_or_default();
    let deadline = t0 + opts.timeout;
    let mut programmed = None;
    let mut missing = 0;
    while Instant::now() < deadline && !cmd::interrupted() {
        if let Ok(stats) = fetch_stats(&cluster.socket()) {
            missing = missing_count(&stats);
            if missing >= opts.endpoints {
                programmed = Some(t0.elapsed());
                break;
            }
        }
        cluster.check_node_alive()?;
        // The resolution of `programmed_secs`.
        std::thread::sleep(Duration::from_millis(20));
    }
    let first_sync = log.synced().first().copied();
    let mut node_error = None;
    if programmed.is_none() {
        note(&format!(
            "the node did not report {} missing interfaces within {:?} (saw {missing})",
            opts.endpoints, opts.timeout
        ));
        node_error = Some(
            log.last_warning()
                .unwrap_or_else(|| "no warning logged".into()),
        );
    }

    let mut reconnect_resync_secs = None;
    if opts.reconnect && opts.datastore == StoreKind::Etcd && programmed.is_some() {
        reconnect_resync_secs = reconnect_resync(&mut cluster, &log)?;
    }

    let programmed_secs = programmed.map(|d| round3(d.as_secs_f64()));
    Ok(ResyncReport {
        benchmark: "resync",
        datastore: opts.datastore,
        endpoints: opts.endpoints,
        write_secs: round3(write_secs),
        writes_per_sec: round3(opts.endpoints as f64 / write_secs.max(1e-9)),
        synced_secs: first_sync
            .map(|(at, _)| round3(at.saturating_duration_since(t0).as_secs_f64())),
        synced_endpoints: first_sync.map_or(0, |(_, n)| n),
        programmed_secs,
        missing_reported: missing,
        endpoints_per_sec: programmed_secs.map(|s| round3(opts.endpoints as f64 / s.max(1e-9))),
        reconnect_resync_secs,
        node_log_lines: log.lines.load(Ordering::Relaxed),
        node_log_warnings: log.warnings.load(Ordering::Relaxed),
        node_error,
        total_secs: round3(started.elapsed().as_secs_f64()),
    })
}

/// Cuts every client connection to etcd in the node namespace (`ss -K`, the node's and this
/// bench's; etcd itself stays up) and times the node's full resync: from the cut to its next
/// `datastore synced` line. The agent lists everything again after a lost connection exactly
/// as after a compacted watch, so this is also the cost of a resync after a compaction.
pub(super) fn reconnect_resync(cluster: &mut Cluster, log: &NodeLog) -> Result<Option<f64>> {
    // The agent waits 1 s between resync attempts; start clear of the first sync's attempt.
    std::thread::sleep(Duration::from_millis(1500));
    let syncs_before = log.synced().len();
    let cut = Instant::now();
    cmd::run(
        &[
            "ip",
            "netns",
            "exec",
            &cluster.lab.node_netns(),
            "ss",
            "-K",
            "-t",
            "dport",
            "=",
            ":2379",
        ],
        CONFIG_TIMEOUT,
    )?;
    let deadline = cut + Duration::from_secs(60);
    while Instant::now() < deadline && !cmd::interrupted() {
        if let Some((at, _)) = log.synced().get(syncs_before) {
            return Ok(Some(round3(
                at.saturating_duration_since(cut).as_secs_f64(),
            )));
        }
        cluster.check_node_alive()?;
        std::thread::sleep(Duration::from_millis(5));
    }
    note("the node did not resync within 60 s of losing its etcd connection");
    Ok(None)
}

/// The WorkloadEndpoint a CNI ADD would have written for container `index` of `node`, with a
/// host interface that does not exist.
pub(super) fn phantom_endpoint(node: &str, index: usize) -> resources::Resource {
    let container_id = format!("resync{index:010x}");
    let name = resources::workload_endpoint_name(node, "cni", &container_id, "eth0");
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 0, 0)) + 1 + index as u32);
    let spec = resources::WorkloadEndpointSpec {
        orchestrator: "cni".into(),
        workload: container_id.clone(),
        node: node.into(),
        container_id,
        endpoint: "eth0".into(),
        interface_name: format!("calr{index:011x}"),
        mac: "02:00:00:00:00:01".into(),
        ip_networks: vec![format!("{ip}/32")],
        profiles: vec![NETWORK.into()],
        ..resources::WorkloadEndpointSpec::default()
    };
    let metadata = resources::Metadata::namespaced(resources::DEFAULT_NAMESPACE, &name);
    resources::Resource::from(resources::Object::new(metadata, spec))
}

pub(super) fn write_endpoints(
    store: &Arc<dyn Datastore>,
    node: &str,
    count: usize,
    writers: usize,
) -> Result<()> {
    let errors: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let store = store.clone();
                s.spawn(move || -> std::result::Result<(), String> {
                    for i in (w..count).step_by(writers) {
                        let wep = phantom_endpoint(node, i);
                        store
                            .put(&wep.key(), &wep.to_stored_json())
                            .map_err(|e| format!("endpoint {i}: {e}"))?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("writer panicked".into()))
                    .err()
            })
            .collect()
    });
    match errors.first() {
        None => Ok(()),
        Some(e) => Err(BenchError::Run(format!("writing endpoints: {e}"))),
    }
}
