//! The brindle side: one agent-mode node on an embedded store, two workloads plugged by brindle-cni, the policy applied with brindlectl.

use super::*;

/// The brindle side: one agent-mode node on an embedded store, two workloads plugged by
/// brindle-cni, the policy applied with brindlectl. Everything is removed on drop.
pub(super) struct BrindleSide {
    pub(super) lab: MultiLab,
    pub(super) node: Option<NodeProcess>,
    pub(super) containers: Vec<String>,
    pub(super) dir: PathBuf,
    pub(super) bin_dir: PathBuf,
    pub(super) ends: Option<Ends>,
}

pub(super) const NODE_STOP_GRACE: Duration = Duration::from_secs(5);

impl BrindleSide {
    pub(super) fn up(
        name: &str,
        opts: &PolicyOptions,
        rules: &[BenchRule],
    ) -> Result<BrindleSide, BenchError> {
        for bin in ["brindle-node", "brindle-cni", "brindle-ipam", "brindlectl"] {
            if !opts.bin_dir.join(bin).is_file() {
                return Err(BenchError::Run(format!(
                    "{} is not a file",
                    opts.bin_dir.join(bin).display()
                )));
            }
        }
        let lab = MultiLab::up(&MultiLabSpec::new(name, 1, 0))?;
        let dir = opts.work_dir.join(name);
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let mut side = BrindleSide {
            lab,
            node: None,
            containers: Vec::new(),
            dir,
            bin_dir: opts.bin_dir.clone(),
            ends: None,
        };
        side.start_node(&opts.node_mode)?;
        let (source_ns, source_ip) = side.add_container(SOURCE_NETWORK)?;
        let (sink_ns, sink_ip) = side.add_container(SINK_NETWORK)?;
        side.ends = Some(Ends {
            source_ns,
            source_ip,
            sink_ns,
            sink_ip,
        });
        side.node()?
            .wait_for(Duration::from_secs(20), "both workloads attached", |n| {
                n.stats().is_ok_and(|s| {
                    s["ports"]
                        .as_array()
                        .map_or(0, |p| p.iter().filter(|p| p["kind"] == "workload").count())
                        == 2
                })
            })?;
        let file = side.dir.join("policy.yaml");
        std::fs::write(&file, policy_yaml(rules))
            .map_err(io_err(format!("writing {}", file.display())))?;
        let out = Command::new(side.bin_dir.join("brindlectl"))
            .args(["apply", "-f"])
            .arg(&file)
            .envs(side.datastore_env())
            .output()
            .map_err(io_err("running brindlectl"))?;
        if !out.status.success() {
            return Err(BenchError::Run(format!(
                "brindlectl apply: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(side)
    }

    pub(super) fn node_netns(&self) -> String {
        self.lab.node(1).map(|n| n.node_netns()).unwrap_or_default()
    }

    pub(super) fn node_name(&self) -> String {
        format!("{}n1", self.lab.spec().name)
    }

    pub(super) fn socket(&self) -> PathBuf {
        self.dir.join("node.sock")
    }

    pub(super) fn datastore_env(&self) -> Vec<(String, String)> {
        vec![
            ("DATASTORE_TYPE".into(), "embedded".into()),
            (
                "BRINDLE_EMBEDDED_PATH".into(),
                self.dir.join("store.redb").display().to_string(),
            ),
        ]
    }

    pub(super) fn start_node(&mut self, mode: &str) -> Result<(), BenchError> {
        let launch = NodeLaunch::new(
            self.node_netns(),
            self.bin_dir.join("brindle-node"),
            self.dir.join("node.log"),
        )
        .env("NODENAME", self.node_name())
        .env("IP_AUTODETECTION_METHOD", "interface=eth0")
        .env("CALICO_IPV4POOL_IPIP", "Never")
        .env(
            "BRINDLE_CONTROL_SOCKET",
            self.socket().display().to_string(),
        )
        .env("BRINDLE_MODE", mode)
        .env("BRINDLE_CORES", NODE_CPU.to_string())
        .envs(self.datastore_env())
        .control_socket(self.socket());
        self.node = Some(launch.start(Duration::from_secs(20))?);
        Ok(())
    }

    pub(super) fn node(&mut self) -> Result<&mut NodeProcess, BenchError> {
        self.node.as_mut().ok_or_else(not_running)
    }

    pub(super) fn policy_denied(&self) -> Result<u64, BenchError> {
        let stats = self.node.as_ref().ok_or_else(not_running)?.stats()?;
        stats["fastpath"]["drops"]["policy_denied"]
            .as_u64()
            .ok_or_else(|| BenchError::Run(format!("no policy_denied counter in {stats}")))
    }

    /// A container namespace plugged in with brindle-cni ADD on `network`.
    pub(super) fn add_container(
        &mut self,
        network: &str,
    ) -> Result<(String, Ipv4Addr), BenchError> {
        let ns = format!("{}-c{}", self.lab.spec().name, self.containers.len() + 1);
        cmd::run(&["ip", "netns", "add", &ns], Duration::from_secs(10))?;
        self.containers.push(ns.clone());
        let cni = CniPlugin {
            bin_dir: self.bin_dir.clone(),
            plugin: "brindle-cni".into(),
            env: self.datastore_env(),
        };
        let out = cni
            .invoke(
                &self.node_netns(),
                "ADD",
                &format!("{ns}abcdef0123"),
                &PathBuf::from(format!("/var/run/netns/{ns}")),
                "eth0",
                &netconf(network, &[], 1500, &self.node_name()),
            )
            .map_err(io_err("running brindle-cni"))?;
        let address = out.json()["ips"][0]["address"].as_str().map(str::to_owned);
        match address.and_then(|a| a.split('/').next().and_then(|a| a.parse().ok())) {
            Some(ip) if out.success => Ok((ns, ip)),
            _ => Err(BenchError::Run(format!(
                "CNI ADD for {ns} failed: {}\n{}",
                out.stdout, out.stderr
            ))),
        }
    }

    /// SIGSTOP (`pause`) or SIGCONT: a stopped node does not compete for the cores.
    pub(super) fn pause(&self, pause: bool) {
        if let Some(node) = &self.node {
            node.signal(if pause { libc::SIGSTOP } else { libc::SIGCONT });
        }
    }
}

pub(super) fn not_running() -> BenchError {
    BenchError::Run("brindle-node is not running".into())
}

impl Drop for BrindleSide {
    fn drop(&mut self) {
        self.pause(false);
        if let Some(node) = self.node.take() {
            let _ = node.stop(NODE_STOP_GRACE);
        }
        for ns in &self.containers {
            let _ = cmd::run_unchecked(&["ip", "netns", "del", ns], Duration::from_secs(10));
        }
        let _ = self.lab.down();
    }
}
