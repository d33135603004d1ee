//! `ipam-bench`: IPAM allocations per second against etcd, N parallel clients side by side
//! with one client in the same run (ratios, because the machines are noisy), printed as JSON.
//! Also the worker process of the IPAM concurrency tests (`ipam-bench worker`).
//!
//! ```text
//! ipam-bench bench [--etcd URL] [--clients 4] [--allocs 400] [--rounds 3]
//! ipam-bench worker --store embedded:PATH|etcd:URL --host NODE --count N --handle-prefix P
//!                   --pool CIDR [--block-size 26] [--release-every K]
//! ```

mod etcd;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use datastore::{Datastore, EmbeddedStore, EtcdConfig, EtcdStore};
use ipam::{AutoAssignArgs, Ipam, Ipv4Cidr, PoolInfo};

#[derive(Parser)]
#[command(about = "IPAM benchmark and concurrency-test worker")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Allocations/s with 1 client and with N clients (threads, each with its own etcd client
    /// and its own node name), alternating, against one etcd.
    Bench {
        /// etcd to use; without it a private etcd is started on loopback for the run.
        #[arg(long)]
        etcd: Option<String>,
        #[arg(long, default_value_t = 4)]
        clients: usize,
        /// Allocations per measurement (split between the clients).
        #[arg(long, default_value_t = 400)]
        allocs: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Allocates `count` addresses one by one (one handle each) and prints them as JSON.
    Worker {
        #[arg(long)]
        store: String,
        #[arg(long)]
        host: String,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        handle_prefix: String,
        #[arg(long)]
        pool: String,
        #[arg(long, default_value_t = 26)]
        block_size: u8,
        /// Release every K-th allocation by handle right after taking it (0: never).
        #[arg(long, default_value_t = 0)]
        release_every: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Bench {
            etcd,
            clients,
            allocs,
            rounds,
        } => bench(etcd, clients, allocs, rounds),
        Cmd::Worker {
            store,
            host,
            count,
            handle_prefix,
            pool,
            block_size,
            release_every,
        } => {
            let ipam = Ipam::new(open_store(&store)?);
            let pool = pool_info(&pool, block_size)?;
            let (mut kept, mut released) = (Vec::new(), Vec::new());
            for n in 0..count {
                let handle_id = format!("{handle_prefix}-{n}");
                let ips = ipam
                    .auto_assign(&args(&handle_id, &host, &pool))
                    .with_context(|| format!("allocation {n} of {handle_prefix}"))?;
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
            println!(
                "{}",
                serde_json::json!({ "kept": kept, "released": released })
            );
            Ok(())
        }
    }
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
    let cidr: Ipv4Cidr = cidr.parse().with_context(|| format!("--pool {cidr}"))?;
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

fn bench(
    endpoint: Option<String>,
    clients: usize,
    allocs: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    if clients == 0 || allocs < clients || rounds == 0 {
        bail!("need clients >= 1, allocs >= clients, rounds >= 1");
    }
    let private = match endpoint {
        Some(_) => None,
        None => Some(etcd::Etcd::start()?),
    };
    let endpoint = endpoint.unwrap_or_else(|| {
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
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (m1, mn) = (median(&mut single.clone()), median(&mut parallel.clone()));
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "benchmark": "ipam_allocations_per_second_etcd",
            "allocations_per_measurement": allocs,
            "rounds": rounds,
            "clients_parallel": clients,
            "allocs_per_s_1_client": single,
            "allocs_per_s_n_clients": parallel,
            "median_1_client": m1,
            "median_n_clients": mn,
            "ratio_n_over_1": mn / m1,
        }))?
    );
    Ok(())
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
