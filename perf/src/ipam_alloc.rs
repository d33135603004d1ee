//! `brindle-perf ipam`: IPAM allocations per second against etcd, N parallel clients side by
//! side with one client in the same run (ratios, because the machines are noisy).
//! Also the worker process of the IPAM concurrency tests (`brindle-perf ipam-worker`).
//!
//! ```text
//! brindle-perf ipam [--etcd URL] [--clients 4] [--allocs 400] [--rounds 3]
//! brindle-perf ipam-worker --store embedded:PATH|etcd:URL --host NODE --count N
//!                          --handle-prefix P --pool CIDR [--block-size 26] [--release-every K]
//! ```

mod etcd;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use datastore::{Datastore, EmbeddedStore, EtcdConfig, EtcdStore};
use ipam::{AutoAssignArgs, Ipam, Ipv4Prefix, PoolInfo};
use serde::Serialize;

use crate::rounds::{median, ratio};

/// What to measure.
#[derive(Clone, Debug)]
pub struct IpamAllocOptions {
    /// etcd to use; without it a private etcd is started on loopback for the run.
    pub etcd: Option<String>,
    pub clients: usize,
    /// Allocations per measurement (split between the clients).
    pub allocs: usize,
    pub rounds: usize,
}

/// Allocations/s of every round, one client and N, with their medians.
#[derive(Clone, Debug, Serialize)]
pub struct IpamAllocReport {
    pub benchmark: &'static str,
    pub allocations_per_measurement: usize,
    pub rounds: usize,
    pub clients_parallel: usize,
    pub allocs_per_s_1_client: Vec<f64>,
    pub allocs_per_s_n_clients: Vec<f64>,
    pub median_1_client: f64,
    pub median_n_clients: f64,
    pub ratio_n_over_1: Option<f64>,
}

/// What one worker process of the concurrency tests does.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    pub store: String,
    pub host: String,
    pub count: usize,
    pub handle_prefix: String,
    pub pool: String,
    pub block_size: u8,
    /// Release every K-th allocation by handle right after taking it (0: never).
    pub release_every: usize,
}

/// Allocates `count` addresses one by one (one handle each); returns what it kept and what
/// it released again, as `{"kept": [...], "released": [...]}`.
pub fn worker(opts: &WorkerOptions) -> anyhow::Result<serde_json::Value> {
    let ipam = Ipam::new(open_store(&opts.store)?);
    let pool = pool_info(&opts.pool, opts.block_size)?;
    let (mut kept, mut released) = (Vec::new(), Vec::new());
    let release_every = opts.release_every;
    for n in 0..opts.count {
        let handle_id = format!("{}-{n}", opts.handle_prefix);
        let ips = ipam
            .auto_assign(&args(&handle_id, &opts.host, &pool))
            .with_context(|| format!("allocation {n} of {}", opts.handle_prefix))?;
        if release_every > 0 && n % release_every == release_every - 1 {
            let freed = ipam.release_by_handle(&handle_id)?;
            if freed != ips {
                bail!("release of {handle_id} freed {freed:?}, it held {ips:?}");
            }
            released.extend(ips);
        } else {
            kept.extend(ips);
        }
    }
    Ok(serde_json::json!({ "kept": kept, "released": released }))
}

/// `embedded:PATH` or `etcd:URL[,URL...]`.
fn open_store(spec: &str) -> anyhow::Result<Arc<dyn Datastore>> {
    if let Some(path) = spec.strip_prefix("embedded:") {
        return Ok(Arc::new(
            EmbeddedStore::open(path).with_context(|| format!("opening {path}"))?,
        ));
    }
    if let Some(urls) = spec.strip_prefix("etcd:") {
        return Ok(Arc::new(etcd_store(urls)?));
    }
    bail!("--store must be embedded:PATH or etcd:URL, not {spec:?}")
}

fn etcd_store(urls: &str) -> anyhow::Result<EtcdStore> {
    let config = EtcdConfig {
        endpoints: urls.split(',').map(str::to_string).collect(),
        timeout: Duration::from_secs(10),
        ..EtcdConfig::default()
    };
    EtcdStore::connect(config).with_context(|| format!("connecting to etcd {urls}"))
}

fn pool_info(cidr: &str, block_size: u8) -> anyhow::Result<PoolInfo> {
    let cidr: Ipv4Prefix = cidr.parse().with_context(|| format!("--pool {cidr}"))?;
    Ok(PoolInfo {
        cidr: (cidr.addr(), cidr.len()),
        block_size,
        disabled: false,
        node_selector_matches: true,
    })
}

fn args(handle_id: &str, host: &str, pool: &PoolInfo) -> AutoAssignArgs {
    AutoAssignArgs {
        num: 1,
        handle_id: handle_id.to_string(),
        attrs: BTreeMap::from([("node".to_string(), host.to_string())]),
        host: host.to_string(),
        pools: vec![pool.clone()],
    }
}

/// Allocations/s with 1 client and with N clients (threads, each with its own etcd client
/// and its own node name), alternating, against one etcd.
pub fn run(opts: &IpamAllocOptions) -> anyhow::Result<IpamAllocReport> {
    let IpamAllocOptions {
        clients,
        allocs,
        rounds,
        ..
    } = *opts;
    if clients == 0 || allocs < clients || rounds == 0 {
        bail!("need clients >= 1, allocs >= clients, rounds >= 1");
    }
    let private = match opts.etcd {
        Some(_) => None,
        None => Some(etcd::Etcd::start()?),
    };
    let endpoint = opts.etcd.clone().unwrap_or_else(|| {
        private
            .as_ref()
            .map(|e| e.endpoint.clone())
            .unwrap_or_default()
    });
    let mut single = Vec::new();
    let mut parallel = Vec::new();
    // Alternate the two configurations so drift on the machine hits both alike. Every
    // measurement gets a pool of its own, so each starts from empty blocks.
    for round in 0..rounds {
        let pool_a = pool_info(&format!("10.{}.0.0/16", 2 * round), 26)?;
        let pool_b = pool_info(&format!("10.{}.0.0/16", 2 * round + 1), 26)?;
        single.push(measure(&endpoint, 1, allocs, &pool_a, round)?);
        parallel.push(measure(&endpoint, clients, allocs, &pool_b, round)?);
    }
    let m1 = median(single.iter().copied()).unwrap_or(f64::NAN);
    let mn = median(parallel.iter().copied()).unwrap_or(f64::NAN);
    Ok(IpamAllocReport {
        benchmark: "ipam_allocations_per_second_etcd",
        allocations_per_measurement: allocs,
        rounds,
        clients_parallel: clients,
        allocs_per_s_1_client: single,
        allocs_per_s_n_clients: parallel,
        median_1_client: m1,
        median_n_clients: mn,
        ratio_n_over_1: ratio(Some(mn), Some(m1)),
    })
}

/// The report as a Markdown table.
pub fn markdown(report: &IpamAllocReport) -> String {
    format!(
        "# IPAM allocations per second against etcd\n\n\
         {} allocations per measurement, {} alternating rounds (medians).\n\n\
         | clients | allocations/s (median) | ratio to 1 client |\n|---:|---:|---:|\n\
         | 1 | {:.0} | 1.00 |\n| {} | {:.0} | {} |\n",
        report.allocations_per_measurement,
        report.rounds,
        report.median_1_client,
        report.clients_parallel,
        report.median_n_clients,
        report
            .ratio_n_over_1
            .map_or("-".to_string(), |r| format!("{r:.2}"))
    )
}

/// Allocations/s of `clients` threads, each with its own etcd connection and node name,
/// doing `allocs` single-address allocations between them.
fn measure(
    endpoint: &str,
    clients: usize,
    allocs: usize,
    pool: &PoolInfo,
    round: usize,
) -> anyhow::Result<f64> {
    let start = Arc::new(Barrier::new(clients + 1));
    let mut workers = Vec::new();
    for c in 0..clients {
        let ipam = Ipam::new(Arc::new(etcd_store(endpoint)?));
        let (start, pool) = (start.clone(), pool.clone());
        let share = allocs / clients + usize::from(c < allocs % clients);
        workers.push(std::thread::spawn(
            move || -> anyhow::Result<Vec<Ipv4Addr>> {
                let host = format!("bench-r{round}-c{clients}-n{c}");
                // Warm the connection outside the timed part.
                ipam.config()?;
                start.wait();
                let mut got = Vec::with_capacity(share);
                for n in 0..share {
                    got.extend(ipam.auto_assign(&args(&format!("{host}-{n}"), &host, &pool))?);
                }
                Ok(got)
            },
        ));
    }
    start.wait();
    let t0 = Instant::now();
    let mut all = Vec::new();
    for w in workers {
        all.extend(
            w.join()
                .map_err(|_| anyhow::anyhow!("bench client panicked"))??,
        );
    }
    let elapsed = t0.elapsed().as_secs_f64();
    all.sort();
    all.dedup();
    if all.len() != allocs {
        bail!("{} distinct addresses for {allocs} allocations", all.len());
    }
    Ok(allocs as f64 / elapsed)
}
