//! CNI ADD-to-forwarding: how long a new workload waits until traffic flows.

use super::*;

#[derive(Clone, Debug)]
pub struct CniLatencyOptions {
    /// Where `brindle-node`, `brindle-cni` and `brindle-ipam` are.
    pub bin_dir: PathBuf,
    pub workloads: usize,
    pub datastore: StoreKind,
}

#[derive(Clone, Debug, Serialize)]
pub struct CniLatencyReport {
    pub benchmark: &'static str,
    pub datastore: StoreKind,
    pub node_mode: &'static str,
    pub workloads: usize,
    /// Duration of `brindle-cni ADD` (process start to exit, IPAM included).
    pub add: Summary,
    /// From the start of ADD to the first echo reply from the new workload.
    pub add_to_forwarding: Summary,
    /// Duration of `brindle-cni DEL`.
    pub del: Summary,
    /// Workloads that did not answer within the forwarding timeout (not in `add_to_forwarding`).
    pub unreachable: usize,
    /// How the reply was detected.
    pub probe: String,
    /// Every sample in workload order (ms), to see whether the cost grows with the number of
    /// workloads already attached.
    pub samples: CniSamples,
    pub total_secs: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CniSamples {
    pub add_ms: Vec<f64>,
    /// `None` for a workload that did not answer in time.
    pub add_to_forwarding_ms: Vec<Option<f64>>,
    pub del_ms: Vec<f64>,
}

pub(super) fn millis(d: &Duration) -> f64 {
    round3(d.as_secs_f64() * 1e3)
}

/// Plugs in `workloads` containers one after the other and times ADD, ADD-to-forwarding and DEL.
pub fn run_cni_latency(opts: &CniLatencyOptions) -> Result<CniLatencyReport> {
    if opts.workloads == 0 || opts.workloads > MAX_WORKLOADS {
        return Err(BenchError::Invalid {
            field: "workloads",
            value: quoted(opts.workloads.to_string()),
            reason: format!("between 1 and {MAX_WORKLOADS}"),
        });
    }
    check_binaries(
        &opts.bin_dir,
        &["brindle-node", "brindle-cni", "brindle-ipam"],
    )?;
    let started = Instant::now();
    let mut cluster = Cluster::new("cl", &opts.bin_dir, opts.datastore)?;
    cluster.start_node()?;

    // The prober, and one warm-up workload that proves the prober itself is attached, so that
    // the first timed workload does not pay for it.
    let prober = cluster.add_netns("p")?;
    cluster.cni_add(&prober, 0)?;
    let warm = cluster.add_netns("c0")?;
    let (warm_ip, _) = cluster.cni_add(&warm, WARM_UP_INDEX)?;
    let warm_deadline = Instant::now() + NODE_READY_TIMEOUT;
    if !probe_until_reply(&prober, warm_ip, warm_deadline)? {
        return Err(BenchError::Run(format!(
            "warm-up workload {warm_ip} not reachable from the prober within {NODE_READY_TIMEOUT:?}; log:\n{}",
            cluster.log_tail()
        )));
    }

    let mut adds = Vec::with_capacity(opts.workloads);
    let mut forwarding = Vec::with_capacity(opts.workloads);
    let mut forwarding_in_order = Vec::with_capacity(opts.workloads);
    let mut unreachable = 0;
    let mut plugged = Vec::with_capacity(opts.workloads);
    for i in 1..=opts.workloads {
        if cmd::interrupted() {
            return Err(BenchError::Run("interrupted".into()));
        }
        let ns = cluster.add_netns(&format!("c{i}"))?;
        let t0 = Instant::now();
        let (ip, add) = cluster.cni_add(&ns, i)?;
        adds.push(add);
        plugged.push((ns, i));
        if probe_until_reply(&prober, ip, t0 + FORWARDING_TIMEOUT)? {
            let elapsed = t0.elapsed();
            forwarding.push(elapsed);
            forwarding_in_order.push(Some(millis(&elapsed)));
        } else {
            forwarding_in_order.push(None);
            unreachable += 1;
            cluster.check_node_alive()?;
            note(&format!(
                "workload {i} ({ip}) did not answer within {FORWARDING_TIMEOUT:?}"
            ));
        }
    }
    let mut dels = Vec::with_capacity(plugged.len());
    for (ns, i) in &plugged {
        dels.push(cluster.cni_del(ns, *i)?);
    }
    Ok(CniLatencyReport {
        benchmark: "cni-latency",
        datastore: opts.datastore,
        node_mode: "interrupt",
        workloads: opts.workloads,
        add: Summary::of(&adds),
        add_to_forwarding: Summary::of(&forwarding),
        del: Summary::of(&dels),
        unreachable,
        samples: CniSamples {
            add_ms: adds.iter().map(millis).collect(),
            add_to_forwarding_ms: forwarding_in_order,
            del_ms: dels.iter().map(millis).collect(),
        },
        probe: "ping -c 1 -i 0.01 from an already attached container (10 ms between echo requests)"
            .into(),
        total_secs: round3(started.elapsed().as_secs_f64()),
    })
}

/// Progress notes go to stderr: the report itself is on stdout.
pub(super) fn note(msg: &str) {
    eprintln!("brindle-perf: {msg}");
}

/// Pings `to` from namespace `from` every 10 ms until a reply or `deadline`. `ping -c 1 -w T`
/// exits at the first reply (or at the first ICMP error, after which we start it again).
pub(super) fn probe_until_reply(from: &str, to: Ipv4Addr, deadline: Instant) -> Result<bool> {
    let target = to.to_string();
    // At most one attempt per 10 ms even if ping keeps failing fast.
    let max_attempts = (FORWARDING_TIMEOUT.max(NODE_READY_TIMEOUT).as_millis() / 10) as usize;
    for _ in 0..max_attempts {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || cmd::interrupted() {
            return Ok(false);
        }
        let secs = format!("{}", left.as_secs().max(1));
        let out = cmd::run_unchecked(
            &[
                "ip", "netns", "exec", from, "ping", "-n", "-q", "-c", "1", "-i", "0.01", "-w",
                &secs, &target,
            ],
            left + Duration::from_secs(2),
        );
        match out {
            Ok(o) if o.status.success() => return Ok(true),
            Ok(_) | Err(cmd::CmdError::Timeout { .. }) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

pub(super) fn check_binaries(dir: &Path, names: &[&str]) -> Result<()> {
    for name in names {
        if !dir.join(name).is_file() {
            return Err(BenchError::Invalid {
                field: "brindle-bin-dir",
                value: quoted(dir.display().to_string()),
                reason: format!("no {name} there (cargo build --release --workspace --bins)"),
            });
        }
    }
    Ok(())
}
