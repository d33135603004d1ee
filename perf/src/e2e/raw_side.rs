//! The raw AF_XDP ceiling: DPDK's testpmd with its af_xdp driver on the same two veths, core
//! and offloads as brindle's side, forwarding in `mac` mode (each frame out of the other port
//! with the destination MAC of the workload behind it). No routing, no policy, no connection
//! tracking, no ARP (the workloads get a static neighbour for their gateway): what any
//! AF_XDP forwarder can reach on this topology, so brindle's figure over it is what the
//! vRouter's own work costs.

use super::*;

/// testpmd's side.
pub(super) struct RawAfXdpSide<'a> {
    pub(super) opts: &'a E2eOptions,
    pub(super) sizes: &'a [usize],
    pub(super) testpmd: &'a Path,
    pub(super) lab_name: String,
}

/// The side while it is up. Field order is drop order: testpmd before its lab.
pub(super) struct RawUp {
    testpmd: ChildGuard,
    lab: Lab,
}

impl RawAfXdpSide<'_> {
    fn log_path(&self) -> PathBuf {
        self.opts.work_dir.join("testpmd.log")
    }
}

impl runner::Side for RawAfXdpSide<'_> {
    type Up = RawUp;
    type Measured = (SideResult, SideExtras);
    type Error = BenchError;

    fn name(&self) -> String {
        "testpmd".into()
    }

    fn bring_up(&mut self) -> Result<RawUp, BenchError> {
        let lab = Lab::up(&LabSpec::new(&self.lab_name, 2))?;
        let workloads = lab.workloads();
        let [w1, w2] = workloads else {
            return Err(BenchError::Run("the lab has no two workloads".into()));
        };
        // Nobody answers ARP for the gateway here.
        for w in [w1, w2] {
            cmd::run(
                &[
                    "ip",
                    "-n",
                    &w.netns,
                    "neigh",
                    "replace",
                    "169.254.1.1",
                    "lladdr",
                    "ee:ee:ee:ee:ee:ee",
                    "dev",
                    "eth0",
                    "nud",
                    "permanent",
                ],
                cmd::CONFIG_TIMEOUT,
            )?;
        }
        let log = std::fs::File::create(self.log_path())
            .map_err(io_err(format!("creating {}", self.log_path().display())))?;
        let err = log
            .try_clone()
            .map_err(io_err("duplicating the testpmd log".to_string()))?;
        let args = testpmd_args(&self.lab_name, w1, w2);
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.node_netns()])
            .arg(self.testpmd)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(io_err(format!("starting {}", self.testpmd.display())))?;
        Ok(RawUp {
            testpmd: ChildGuard::new("dpdk-testpmd", child),
            lab,
        })
    }

    fn prove_path(&mut self, up: &mut RawUp) -> Result<(), BenchError> {
        let log = self.log_path();
        let RawUp { testpmd, lab } = up;
        wait_until_reachable(lab, NODE_READY_TIMEOUT, || match testpmd.try_wait() {
            Some(status) => Err(BenchError::Run(format!(
                "dpdk-testpmd exited with {status}; log: {}",
                log.display()
            ))),
            None => Ok(()),
        })
    }

    fn measure(&mut self, up: &mut RawUp) -> Result<Self::Measured, BenchError> {
        measure_all(&up.lab, self.opts, self.sizes, "testpmd")
    }
    // Dropping the guard stops testpmd (SIGTERM, then SIGKILL), then the lab goes.
}

/// testpmd's command line: both veths' host ends as af_xdp ports, the forwarding lcore on
/// [`NODE_CPU`] (where brindle's worker runs), memory without hugepages, `mac` forwarding to
/// the workloads' MACs, started at once.
fn testpmd_args(lab: &str, w1: &lab::Workload, w2: &lab::Workload) -> Vec<String> {
    let main_lcore = GENERATOR_CPU;
    vec![
        "--no-huge".into(),
        "-m".into(),
        "1024".into(),
        "--no-pci".into(),
        format!("--file-prefix={lab}"),
        format!("--vdev=net_af_xdp0,iface={}", w1.host_interface),
        format!("--vdev=net_af_xdp1,iface={}", w2.host_interface),
        format!("-l{main_lcore},{NODE_CPU}"),
        format!("--main-lcore={main_lcore}"),
        "--".into(),
        "--forward-mode=mac".into(),
        format!("--eth-peer=0,{}", w1.mac),
        format!("--eth-peer=1,{}", w2.mac),
        "--total-num-mbufs=8192".into(),
        "--auto-start".into(),
        // Without a stats period testpmd waits for a key on stdin, which is /dev/null.
        "--stats-period=60".into(),
    ]
}
