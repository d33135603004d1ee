//! 1 vs 2 uplink queues.
//!
//! `brindle-perf scale --queues 1,2`: UDP from outside the node, through its uplink, to a
//! workload. The uplink is a veth made with `q` queues on each side; the node serves every
//! queue with one worker each (capped by the cores). Traffic reaches both queues because two
//! generators run, pinned to CPUs 0 and 1, and XPS on the outside end maps CPU `i` to TX queue
//! `i` (a veth delivers on the RX queue of the sender's TX queue). With one queue both
//! generators land on it. The same two generators run for every queue count, one after the
//! other in one invocation, so the ratio compares like with like.

use super::*;

/// Most uplink queues measured.
pub const MAX_QUEUES: u32 = 8;
/// Outside end of the uplink (the node's end is 10.99.0.1).
pub(super) const OUTSIDE_IP: &str = "10.99.0.2";

#[derive(Clone, Debug)]
pub struct QueuesOptions {
    pub brindle_node: PathBuf,
    pub perf_exe: PathBuf,
    pub duration: Duration,
    pub frame_size: usize,
    pub batch: usize,
    pub port: u16,
    /// Uplink queue counts to measure, e.g. [1, 2].
    pub queues: Vec<u32>,
    /// Worker mode ("poll" or "interrupt").
    pub mode: String,
    pub rounds: usize,
    pub work_dir: PathBuf,
}

/// One measurement with `queues` uplink queues.
#[derive(Clone, Debug, Serialize)]
pub struct QueuesRun {
    pub queues: u32,
    /// Fastpath worker threads the node ran (counted in /proc).
    pub workers: usize,
    pub pps_offered: f64,
    pub pps_delivered: f64,
    pub sent: u64,
    pub received: u64,
}

/// Every run of one queue count, their mean and its ratio to the first queue count's.
#[derive(Clone, Debug, Serialize)]
pub struct QueueCountResult {
    pub queues: u32,
    pub runs: Vec<QueuesRun>,
    pub pps_delivered: f64,
    /// pps_delivered / the first queue count's, from the same invocation.
    pub ratio_to_first: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct QueuesReport {
    pub frame_size: usize,
    pub duration_secs: f64,
    pub rounds: usize,
    pub mode: String,
    /// CPUs the generators are pinned to (one generator each).
    pub generator_cpus: Vec<usize>,
    pub online_cpus: usize,
    pub results: Vec<QueueCountResult>,
}

/// Runs every queue count `rounds` times (interleaved) in one lab; takes everything down.
pub fn run_queues(opts: &QueuesOptions) -> Result<QueuesReport, BenchError> {
    if opts.queues.is_empty() || opts.queues.iter().any(|q| !(1..=MAX_QUEUES).contains(q)) {
        return Err(BenchError::Run(format!(
            "invalid queues {:?}: each between 1 and {MAX_QUEUES}",
            opts.queues
        )));
    }
    if opts.rounds == 0 || opts.rounds > 20 {
        return Err(BenchError::Run(format!(
            "invalid rounds {}: between 1 and 20",
            opts.rounds
        )));
    }
    if opts.mode != "poll" && opts.mode != "interrupt" {
        return Err(BenchError::Run(format!(
            "invalid mode {:?}: expected poll or interrupt",
            opts.mode
        )));
    }
    if !opts.brindle_node.is_file() {
        return Err(BenchError::Run(format!(
            "brindle-node {} is not a file",
            opts.brindle_node.display()
        )));
    }
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    let name = format!("sqq{}", std::process::id() % 100_000);
    let lab = Lab::up(&LabSpec {
        uplink: false,
        ..LabSpec::new(&name, 1)
    })?;
    let outside = Outside::up(&lab)?;
    let cpus = crate::stats::online_cpus();
    let generator_cpus: Vec<usize> = (0..2).map(|i| i % cpus.max(1)).collect();
    let mut runs: Vec<Vec<QueuesRun>> = opts.queues.iter().map(|_| Vec::new()).collect();
    for _ in 0..opts.rounds {
        for (i, &q) in opts.queues.iter().enumerate() {
            outside.uplink(&lab, q)?;
            runs[i].push(measure_queues(&lab, &outside, q, &generator_cpus, opts)?);
        }
    }
    drop(outside);
    drop(lab);
    let means: Vec<f64> = runs
        .iter()
        .map(|r| mean(r.iter().map(|x| x.pps_delivered)))
        .collect();
    let results = opts
        .queues
        .iter()
        .zip(runs)
        .zip(&means)
        .map(|((&queues, runs), &pps)| QueueCountResult {
            queues,
            runs,
            pps_delivered: pps,
            ratio_to_first: ratio(Some(pps), Some(means[0])),
        })
        .collect();
    Ok(QueuesReport {
        frame_size: opts.frame_size,
        duration_secs: opts.duration.as_secs_f64(),
        rounds: opts.rounds,
        mode: opts.mode.clone(),
        generator_cpus,
        online_cpus: cpus,
        results,
    })
}

/// The namespace outside the node, at the other end of its uplink. Dropping it deletes the
/// namespace (and with it the uplink pair).
pub(super) struct Outside {
    pub(super) netns: String,
}

impl Outside {
    pub(super) fn up(lab: &Lab) -> Result<Outside, BenchError> {
        let netns = format!("{}-out", lab.spec().name);
        if lab::netns_exists(&netns) {
            return Err(BenchError::Run(format!(
                "network namespace {netns} already exists"
            )));
        }
        cmd::run(&["ip", "netns", "add", &netns], CONFIG_TIMEOUT)?;
        let outside = Outside { netns };
        cmd::run(
            &["ip", "-n", &outside.netns, "link", "set", "lo", "up"],
            CONFIG_TIMEOUT,
        )?;
        Ok(outside)
    }

    /// (Re)makes the uplink `eth0` with `queues` queues on each side, addresses, the route
    /// to the pool through the node, and XPS: CPU `i` sends on queue `i % queues`.
    pub(super) fn uplink(&self, lab: &Lab, queues: u32) -> Result<(), BenchError> {
        let node = lab.node_netns();
        let _ = cmd::run(&["ip", "-n", &node, "link", "del", "eth0"], CONFIG_TIMEOUT);
        let q = queues.to_string();
        cmd::run(
            &[
                "ip",
                "-n",
                &node,
                "link",
                "add",
                "eth0",
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "netns",
                &self.netns,
            ],
            CONFIG_TIMEOUT,
        )?;
        for (ns, addr) in [
            (node.as_str(), "10.99.0.1/24"),
            (self.netns.as_str(), "10.99.0.2/24"),
        ] {
            cmd::run(
                &[
                    "ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off", "tso", "off",
                    "gso", "off", "gro", "off",
                ],
                CONFIG_TIMEOUT,
            )?;
            cmd::run(
                &["ip", "-n", ns, "addr", "add", addr, "dev", "eth0"],
                CONFIG_TIMEOUT,
            )?;
            cmd::run(
                &["ip", "-n", ns, "link", "set", "eth0", "up"],
                CONFIG_TIMEOUT,
            )?;
        }
        cmd::run(
            &[
                "ip",
                "-n",
                &self.netns,
                "route",
                "add",
                &lab.spec().pool_cidr(),
                "via",
                "10.99.0.1",
            ],
            CONFIG_TIMEOUT,
        )?;
        if queues == 1 {
            return Ok(()); // one queue takes everything; a single-queue veth refuses XPS
        }
        let cpus = crate::stats::online_cpus().max(1);
        let mut xps = String::new();
        for queue in 0..queues as usize {
            let mask: u64 = (0..cpus.min(64))
                .filter(|c| c % queues as usize == queue)
                .fold(0, |m, c| m | 1 << c);
            xps.push_str(&format!(
                "echo {mask:x} > /sys/class/net/eth0/queues/tx-{queue}/xps_cpus; "
            ));
        }
        cmd::run(
            &["ip", "netns", "exec", &self.netns, "sh", "-c", &xps],
            CONFIG_TIMEOUT,
        )?;
        Ok(())
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        if let Err(e) = cmd::run(&["ip", "netns", "del", &self.netns], CONFIG_TIMEOUT) {
            eprintln!("deleting {}: {e}", self.netns);
        }
    }
}

/// Fastpath worker threads of process `pid`.
pub(super) fn worker_threads(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("worker-"))
        })
        .count()
}

/// Starts the node on a `queues`-queue uplink, waits until the outside reaches the workload,
/// runs the two generators against the workload's sink, stops the node.
pub(super) fn measure_queues(
    lab: &Lab,
    outside: &Outside,
    queues: u32,
    cpus: &[usize],
    opts: &QueuesOptions,
) -> Result<QueuesRun, BenchError> {
    let config_path = opts.work_dir.join("node.toml");
    let socket = opts.work_dir.join("node.sock");
    let log_path = opts
        .work_dir
        .join(format!("node-{}-q{queues}.log", opts.mode));
    // Top-level keys before the lab's tables; polling workers get the cores from the last
    // down, as the node picks them itself.
    let config = format!(
        "uplink = \"eth0\"\n{}\n[[route]]\nprefix = \"10.99.0.0/24\"\nvia = \"{OUTSIDE_IP}\"\n\n[hw]\nqueue_policy = \"all\"\n",
        lab.node_config_toml(&opts.mode, &socket)
    );
    std::fs::write(&config_path, config)
        .map_err(io_err(format!("writing {}", config_path.display())))?;
    let mut node = NodeLaunch::new(lab.node_netns(), &opts.brindle_node, &log_path)
        .config(&config_path)
        .spawn()?;
    let w1 = lab
        .workload(1)
        .cloned()
        .ok_or_else(|| BenchError::Run("the lab needs a workload".into()))?;
    let started = Instant::now();
    loop {
        if lab::ping::answers(&outside.netns, w1.ip)? {
            break;
        }
        node.check_running("before forwarding")?;
        if started.elapsed() > NODE_READY_TIMEOUT || cmd::interrupted() {
            return Err(BenchError::Run(format!(
                "the outside did not reach the workload; log: {}",
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let workers = node.pid().map_or(0, worker_threads);
    let ready = opts
        .work_dir
        .join(format!("sink-ready-{}", lab.spec().name));
    let result = udp_from_outside(&outside.netns, &w1.netns, w1.ip, &ready, cpus, opts);
    node.stop(NODE_STOP_GRACE);
    let (sent, secs, received) = result?;
    let secs = if secs > 0.0 { secs } else { f64::NAN };
    let run = QueuesRun {
        queues,
        workers,
        pps_offered: sent as f64 / secs,
        pps_delivered: received as f64 / secs,
        sent,
        received,
    };
    eprintln!(
        "scale: {} queues={queues} workers={workers}: {:.0} pps delivered",
        opts.mode, run.pps_delivered
    );
    Ok(run)
}

/// One sink in `to_ns`, one generator per CPU of `cpus` in `from_ns`, all at once; returns
/// (datagrams sent, the longest generator's seconds, datagrams received).
pub(super) fn udp_from_outside(
    from_ns: &str,
    to_ns: &str,
    to_ip: Ipv4Addr,
    ready: &Path,
    cpus: &[usize],
    opts: &QueuesOptions,
) -> Result<(u64, f64, u64), BenchError> {
    let exe = opts.perf_exe.to_string_lossy().to_string();
    let port = opts.port.to_string();
    let sink = e2e::start_udp_sink(&exe, to_ns, opts.port, opts.duration, ready)?;
    let (size, batch, duration, dst) = (
        opts.frame_size.to_string(),
        opts.batch.to_string(),
        format!("{}", opts.duration.as_secs_f64()),
        to_ip.to_string(),
    );
    let mut generators = Vec::new();
    for cpu in cpus {
        let cpu = cpu.to_string();
        let child = Command::new("ip")
            .args([
                "netns", "exec", from_ns, "taskset", "-c", &cpu, &exe, "udp-send", "--dst", &dst,
                "--port", &port,
            ])
            .args(["--size", &size, "--duration", &duration, "--batch", &batch])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_err("starting udp-send"))?;
        generators.push(ChildGuard::new("udp-send", child));
    }
    let (mut sent, mut secs) = (0u64, 0f64);
    for g in generators {
        let out = g
            .wait_output(opts.duration + Duration::from_secs(10))
            .ok_or_else(|| BenchError::Run("udp-send did not finish".into()))?;
        if !out.status.success() {
            return Err(BenchError::Run(format!(
                "udp-send failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let report: lab::udp::SendReport = serde_json::from_slice(&out.stdout)
            .map_err(|e| BenchError::Run(format!("udp-send printed no report: {e}")))?;
        sent += report.sent;
        secs = secs.max(report.secs);
    }
    let sink = e2e::finish_udp_sink(sink, opts.duration, ready)?;
    Ok((sent, secs, sink.received))
}
