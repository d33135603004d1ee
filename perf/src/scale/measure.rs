//! One measurement: brindle-node started with or without the idle workloads, UDP w1 -> w2.

use super::*;

/// brindle-node in the lab with the two workloads and `idle` of the idle ones (0: "few",
/// all: "many"), as the runner runs it: started, every port attached and w1 reaching w2,
/// UDP w1 -> w2 measured, stopped.
pub(super) struct NodeWithIdle<'a> {
    pub(super) lab: &'a Lab,
    /// Kept borrowed so that the idle veths outlive every node started on them.
    pub(super) _workloads: &'a IdleWorkloads,
    pub(super) idle: usize,
    pub(super) mode: &'a str,
    pub(super) opts: &'a ScaleOptions,
}

/// The node while it runs, and how many interfaces it attached.
pub(super) struct Running {
    node: NodeProcess,
    attached: usize,
}

impl NodeWithIdle<'_> {
    fn log_path(&self) -> PathBuf {
        let (mode, idle) = (self.mode, self.idle);
        self.opts.work_dir.join(format!("node-{mode}-{idle}.log"))
    }
}

impl runner::Side for NodeWithIdle<'_> {
    type Up = Running;
    type Measured = ScaleRun;
    type Error = BenchError;

    fn name(&self) -> String {
        format!("{} idle={}", self.mode, self.idle)
    }

    fn bring_up(&mut self) -> Result<Running, BenchError> {
        let (lab, opts) = (self.lab, self.opts);
        let config_path = opts.work_dir.join("node.toml");
        let socket = opts.work_dir.join("node.sock");
        let cores: &[usize] = if self.mode == "poll" {
            &[NODE_CPU]
        } else {
            &[]
        };
        let mut config = lab.node_config_toml_pinned(self.mode, &socket, cores);
        config.push_str(&idle_workloads_toml(self.idle));
        std::fs::write(&config_path, config)
            .map_err(io_err(format!("writing {}", config_path.display())))?;
        let node = NodeLaunch::new(lab.node_netns(), &opts.brindle_node, self.log_path())
            .config(&config_path)
            .spawn()?;
        Ok(Running { node, attached: 0 })
    }

    /// Every port attached (the two workloads, the uplink and every idle workload) and w1
    /// reaching w2.
    fn prove_path(&mut self, up: &mut Running) -> Result<(), BenchError> {
        let expected = 3 + self.idle;
        let started = Instant::now();
        loop {
            let n = attached_interfaces(&self.lab.node_netns())?;
            if n >= expected && reachable(self.lab)? {
                up.attached = n;
                return Ok(());
            }
            up.node.check_running("before forwarding")?;
            if started.elapsed() > NODE_READY_TIMEOUT || cmd::interrupted() {
                return Err(BenchError::Run(format!(
                    "brindle-node attached {n} of {expected} interfaces within {NODE_READY_TIMEOUT:?}; log: {}",
                    self.log_path().display()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn measure(&mut self, up: &mut Running) -> Result<ScaleRun, BenchError> {
        let (lab, opts) = (self.lab, self.opts);
        let (w1, w2) = match (lab.workload(1), lab.workload(2)) {
            (Some(a), Some(b)) => (a.clone(), b.clone()),
            _ => return Err(BenchError::Run("the lab needs two workloads".into())),
        };
        let ready = opts
            .work_dir
            .join(format!("sink-ready-{}", lab.spec().name));
        let params = UdpParams {
            perf_exe: opts.perf_exe.clone(),
            duration: opts.duration,
            frame_size: opts.frame_size,
            batch: opts.batch,
            port: opts.port,
        };
        let (send, sink, _) = e2e::udp_between(&w1.netns, &w2.netns, w2.ip, &ready, &params)?;
        let secs = if send.secs > 0.0 { send.secs } else { f64::NAN };
        let run = ScaleRun {
            idle_workloads: self.idle,
            pps_offered: send.sent as f64 / secs,
            pps_delivered: sink.received as f64 / secs,
            sent: send.sent,
            received: sink.received,
            attached_interfaces: up.attached,
        };
        Ok(run)
    }

    fn tear_down(&mut self, up: Running) -> Result<(), BenchError> {
        up.node.stop(NODE_STOP_GRACE);
        Ok(())
    }
}

/// Interfaces in `netns` with an XDP program attached (`ip -o link` shows `prog/xdp`).
pub(crate) fn attached_interfaces(netns: &str) -> Result<usize, BenchError> {
    let out = cmd::run(&["ip", "-o", "-n", netns, "link", "show"], CONFIG_TIMEOUT)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("prog/xdp"))
        .count())
}

pub(super) fn reachable(lab: &Lab) -> Result<bool, BenchError> {
    let (Some(w1), Some(w2)) = (lab.workload(1), lab.workload(2)) else {
        return Err(BenchError::Run("the lab needs two workloads".into()));
    };
    Ok(lab::ping::answers(&w1.netns, w2.ip)?)
}
