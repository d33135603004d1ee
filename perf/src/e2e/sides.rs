//! The two sides as the runner runs them: the kernel lab, or brindle-node in a brindle lab;
//! each brought up, its path proven (w1 answers w2), measured and taken down.

use super::*;

/// The kernel side: a Kernel-mode lab, where Linux forwards like Calico's kernel dataplane.
pub(super) struct KernelSide<'a> {
    pub(super) opts: &'a E2eOptions,
    pub(super) sizes: &'a [usize],
    pub(super) lab_name: String,
}

impl runner::Side for KernelSide<'_> {
    type Up = Lab;
    type Measured = (SideResult, SideExtras);
    type Error = BenchError;

    fn name(&self) -> String {
        "kernel".into()
    }

    fn bring_up(&mut self) -> Result<Lab, BenchError> {
        let mut spec = LabSpec::new(&self.lab_name, 2);
        spec.forwarding = Forwarding::Kernel;
        spec.offloads = crate::baseline::offloads_for(Forwarding::Kernel);
        Ok(Lab::up(&spec)?)
    }

    fn prove_path(&mut self, lab: &mut Lab) -> Result<(), BenchError> {
        wait_until_reachable(lab, Duration::from_secs(5), || Ok(()))
    }

    fn measure(&mut self, lab: &mut Lab) -> Result<Self::Measured, BenchError> {
        measure_all(lab, self.opts, self.sizes, "kernel")
    }
    // Dropping the lab removes its namespaces.
}

/// brindle's side: a Brindle-mode lab where only `brindle-node` forwards.
pub(super) struct BrindleSide<'a> {
    pub(super) opts: &'a E2eOptions,
    pub(super) sizes: &'a [usize],
    pub(super) brindle_node: &'a Path,
    pub(super) lab_name: String,
}

/// brindle's side while it is up. Field order is drop order: the node before its lab.
pub(super) struct BrindleUp {
    node: NodeProcess,
    lab: Lab,
}

impl BrindleSide<'_> {
    fn log_path(&self) -> PathBuf {
        self.opts.work_dir.join("node.log")
    }
}

impl runner::Side for BrindleSide<'_> {
    type Up = BrindleUp;
    type Measured = (SideResult, SideExtras);
    type Error = BenchError;

    fn name(&self) -> String {
        "brindle".into()
    }

    fn bring_up(&mut self) -> Result<BrindleUp, BenchError> {
        let opts = self.opts;
        let lab = Lab::up(&LabSpec {
            workload_port: opts.workload_port,
            ..LabSpec::new(&self.lab_name, 2)
        })?;
        let config_path = opts.work_dir.join("node.toml");
        let socket = opts.work_dir.join("node.sock");
        let config = lab.node_config_toml_pinned(&opts.node_mode, &socket, &[NODE_CPU]);
        std::fs::write(&config_path, config)
            .map_err(io_err(format!("writing {}", config_path.display())))?;
        let node = NodeLaunch::new(lab.node_netns(), self.brindle_node, self.log_path())
            .config(&config_path)
            .control_socket(&socket)
            .spawn()?;
        Ok(BrindleUp { node, lab })
    }

    fn prove_path(&mut self, up: &mut BrindleUp) -> Result<(), BenchError> {
        let BrindleUp { node, lab } = up;
        wait_until_reachable(lab, NODE_READY_TIMEOUT, || {
            Ok(node.check_running("before forwarding")?)
        })
    }

    fn measure(&mut self, up: &mut BrindleUp) -> Result<Self::Measured, BenchError> {
        // The account is the node's own view, beside the measurement: a node that does not
        // answer on its control socket leaves it out, not the measurement.
        let stats = |up: &BrindleUp| {
            up.node
                .stats()
                .map_err(|e| eprintln!("e2e: no node account: {e}"))
                .ok()
        };
        let before = stats(up);
        let (side, mut extras) = measure_all(&up.lab, self.opts, self.sizes, "brindle")?;
        if let (Some(before), Some(after)) = (before, stats(up)) {
            extras.node = Some(NodeAccount {
                generator_sent: side.sent + extras.by_size.iter().map(|s| s.sent).sum::<u64>(),
                sink_received: side.received
                    + extras.by_size.iter().map(|s| s.received).sum::<u64>(),
                ..NodeAccount::between(&before, &after)
            });
        }
        Ok((side, extras))
    }

    fn tear_down(&mut self, up: BrindleUp) -> Result<(), BenchError> {
        if let Some(status) = up.node.stop(NODE_STOP_GRACE) {
            if !status.success() {
                eprintln!(
                    "brindle-node exited with {status} after SIGTERM; log: {}",
                    self.log_path().display()
                );
            }
        }
        Ok(())
    }
}

/// Pings w1 -> w2 once per second-bounded attempt until a reply comes back or `timeout`
/// passes; `still_ok` is consulted between attempts (e.g. to notice a dead node).
pub(super) fn wait_until_reachable(
    lab: &Lab,
    timeout: Duration,
    mut still_ok: impl FnMut() -> Result<(), BenchError>,
) -> Result<(), BenchError> {
    let (w1, w2) = two_workloads(lab)?;
    let target = w2.1.to_string();
    let started = Instant::now();
    let max_attempts = timeout.as_secs().max(1) * 4;
    for _ in 0..max_attempts {
        if lab::ping::answers(&w1.0, w2.1)? {
            return Ok(());
        }
        still_ok()?;
        if started.elapsed() >= timeout || cmd::interrupted() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(BenchError::Run(format!(
        "{} -> {target} not reachable within {timeout:?}",
        w1.0
    )))
}

pub(super) type NsAndIp = (String, Ipv4Addr);

pub(super) fn two_workloads(lab: &Lab) -> Result<(NsAndIp, NsAndIp), BenchError> {
    match (lab.workload(1), lab.workload(2)) {
        (Some(a), Some(b)) => Ok(((a.netns.clone(), a.ip), (b.netns.clone(), b.ip))),
        _ => Err(BenchError::Run("the lab needs two workloads".into())),
    }
}
