//! The node under test: a lab node namespace with its datastore and brindle-node in agent mode.

use super::*;

/// A lab node namespace with its datastore and `brindle-node` in agent mode. Dropping it stops
/// the node, deletes the container namespaces it made, stops etcd and takes the lab down.
pub(super) struct Cluster {
    pub(super) lab: Lab,
    pub(super) dir: PathBuf,
    pub(super) bin_dir: PathBuf,
    pub(super) kind: StoreKind,
    pub(super) env: Vec<(String, String)>,
    pub(super) node: Option<NodeProcess>,
    pub(super) node_log: Option<Arc<NodeLog>>,
    pub(super) node_started: Option<Instant>,
    pub(super) etcd: Option<ChildGuard>,
    pub(super) containers: Vec<String>,
    pub(super) store: Option<Arc<dyn Datastore>>,
}

impl Cluster {
    /// The lab, the work directory and the datastore; the node is started separately.
    pub(super) fn new(tag: &str, bin_dir: &Path, kind: StoreKind) -> Result<Cluster> {
        let name = lab_name(tag);
        let lab = Lab::up(&LabSpec::new(name.clone(), 0))?;
        let dir = std::env::temp_dir().join(format!("brindle-perf-{name}"));
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        let mut env: Vec<(String, String)> = vec![
            ("NODENAME".into(), name.clone()),
            ("IP_AUTODETECTION_METHOD".into(), "interface=eth0".into()),
            ("CALICO_IPV4POOL_IPIP".into(), "Never".into()),
            ("BRINDLE_MODE".into(), "interrupt".into()),
            (
                "BRINDLE_CONTROL_SOCKET".into(),
                dir.join("node.sock").display().to_string(),
            ),
            // The `datastore synced` line is at info level.
            ("RUST_LOG".into(), "info".into()),
        ];
        match kind {
            StoreKind::Etcd => {
                env.push(("DATASTORE_TYPE".into(), "etcdv3".into()));
                env.push(("ETCD_ENDPOINTS".into(), ETCD_CLIENT_URL.into()));
            }
            StoreKind::Embedded => {
                env.push(("DATASTORE_TYPE".into(), "embedded".into()));
                env.push((
                    "BRINDLE_EMBEDDED_PATH".into(),
                    dir.join("store.redb").display().to_string(),
                ));
            }
        }
        let mut cluster = Cluster {
            lab,
            dir,
            bin_dir: bin_dir.to_owned(),
            kind,
            env,
            node: None,
            node_log: None,
            node_started: None,
            etcd: None,
            containers: Vec::new(),
            store: None,
        };
        if kind == StoreKind::Etcd {
            cluster.start_etcd()?;
        }
        let store = cluster.open_store()?;
        cluster.store = Some(store);
        if kind == StoreKind::Etcd {
            cluster.wait_etcd()?;
        }
        Ok(cluster)
    }

    pub(super) fn name(&self) -> String {
        self.lab.spec().name.clone()
    }

    pub(super) fn store(&self) -> Result<Arc<dyn Datastore>> {
        self.store
            .clone()
            .ok_or_else(|| BenchError::Run("datastore not open".into()))
    }

    pub(super) fn start_etcd(&mut self) -> Result<()> {
        let child = EtcdMemberSpec::single(
            self.lab.node_netns(),
            "bench",
            self.dir.join("etcd"),
            ETCD_CLIENT_URL,
            ETCD_PEER_URL,
            self.dir.join("etcd.log"),
        )
        .spawn()?;
        self.etcd = Some(ChildGuard::new("etcd", child));
        Ok(())
    }

    /// Waits until etcd answers a read; returns when it did.
    pub(super) fn wait_etcd(&mut self) -> Result<Instant> {
        let store = self.store()?;
        let deadline = Instant::now() + ETCD_READY_TIMEOUT;
        loop {
            match store.get("/calico/resources/v3/projectcalico.org/clusterinformations/default") {
                Ok(_) => return Ok(Instant::now()),
                Err(e) if Instant::now() >= deadline || cmd::interrupted() => {
                    return Err(BenchError::Run(format!(
                        "etcd did not answer within {ETCD_READY_TIMEOUT:?}: {e}"
                    )))
                }
                Err(_) => {}
            }
            if let Some(etcd) = self.etcd.as_mut() {
                if let Some(status) = etcd.try_wait() {
                    return Err(BenchError::Run(format!(
                        "etcd exited ({status}); see {}",
                        self.dir.join("etcd.log").display()
                    )));
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The datastore as a client on the node sees it. etcd listens on the node namespace's
    /// loopback, so the client is created on a thread that entered that namespace (the
    /// client's runtime threads are spawned from it and inherit it).
    pub(super) fn open_store(&self) -> Result<Arc<dyn Datastore>> {
        let pairs: Vec<(String, String)> = self.env.clone();
        let lookup = move |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let config = datastore::DatastoreConfig::from_lookup(lookup)
            .map_err(|e| BenchError::Run(format!("datastore configuration: {e}")))?;
        match self.kind {
            StoreKind::Embedded => Ok(datastore::open(&config)?),
            StoreKind::Etcd => {
                let netns = format!("/var/run/netns/{}", self.lab.node_netns());
                std::thread::spawn(move || -> Result<Arc<dyn Datastore>> {
                    let f =
                        std::fs::File::open(&netns).map_err(io_err(format!("opening {netns}")))?;
                    // SAFETY: setns(2) on this short-lived thread only, with a valid fd.
                    let rc = unsafe {
                        libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET)
                    };
                    if rc != 0 {
                        return Err(io_err(format!("entering {netns}"))(
                            std::io::Error::last_os_error(),
                        ));
                    }
                    Ok(datastore::open(&config)?)
                })
                .join()
                .map_err(|_| BenchError::Run("the datastore client thread panicked".into()))?
            }
        }
    }

    /// Starts `brindle-node` in agent mode and waits until its control socket answers.
    pub(super) fn start_node(&mut self) -> Result<()> {
        self.spawn_node()?;
        let started = self.node_started.unwrap_or_else(Instant::now);
        let deadline = started + NODE_READY_TIMEOUT;
        while Instant::now() < deadline && !cmd::interrupted() {
            if fetch_stats(&self.socket()).is_ok() {
                return Ok(());
            }
            self.check_node_alive()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(BenchError::Run(format!(
            "brindle-node did not open its control socket within {NODE_READY_TIMEOUT:?}; log:\n{}",
            self.log_tail()
        )))
    }

    /// Starts `brindle-node` in agent mode, its stderr followed by a [`NodeLog`].
    pub(super) fn spawn_node(&mut self) -> Result<()> {
        let started = Instant::now();
        let mut node = NodeLaunch::new(
            self.lab.node_netns(),
            self.bin_dir.join("brindle-node"),
            self.dir.join("node.log"),
        )
        .envs(self.env.iter().cloned())
        .piped_stderr()
        .spawn()?;
        self.node_log = node.take_stderr().map(NodeLog::follow);
        self.node = Some(node);
        self.node_started = Some(started);
        Ok(())
    }

    pub(super) fn check_node_alive(&mut self) -> Result<()> {
        if let Some(status) = self.node.as_mut().and_then(NodeProcess::try_wait) {
            return Err(BenchError::Run(format!(
                "brindle-node exited ({status}); log:\n{}",
                self.log_tail()
            )));
        }
        Ok(())
    }

    pub(super) fn socket(&self) -> PathBuf {
        self.dir.join("node.sock")
    }

    pub(super) fn log_tail(&self) -> String {
        self.node_log.as_ref().map(|l| l.tail()).unwrap_or_default()
    }

    pub(super) fn cni(&self) -> CniPlugin {
        let env = self
            .env
            .iter()
            .filter(|(k, _)| {
                k.starts_with("DATASTORE")
                    || k.starts_with("ETCD")
                    || k.starts_with("BRINDLE_EMBEDDED")
            })
            .cloned()
            .collect();
        CniPlugin {
            bin_dir: self.bin_dir.clone(),
            plugin: "brindle-cni".into(),
            env,
        }
    }

    /// A container id whose first 11 characters (the host veth's name) are unique in this run.
    /// 24 characters, not a runtime's 64: brindle-cni refuses WorkloadEndpoint names longer
    /// than 63 characters (`<node>-cni-<id>-eth0`).
    pub(super) fn container_id(&self, index: usize) -> String {
        let lab = fnv1a32(self.name().as_bytes()) & 0xff_ffff;
        format!("{lab:06x}{index:05x}0123456789abc")
    }

    /// Creates namespace `<lab>-<suffix>` (deleted on drop) and returns its name.
    pub(super) fn add_netns(&mut self, suffix: &str) -> Result<String> {
        let ns = format!("{}-{suffix}", self.name());
        cmd::run(&["ip", "netns", "add", &ns], CONFIG_TIMEOUT)?;
        self.containers.push(ns.clone());
        Ok(ns)
    }

    /// `brindle-cni ADD` for the container in `ns`; its address and how long ADD took.
    pub(super) fn cni_add(&self, ns: &str, index: usize) -> Result<(Ipv4Addr, Duration)> {
        let out = self
            .cni()
            .invoke(
                &self.lab.node_netns(),
                "ADD",
                &self.container_id(index),
                &PathBuf::from(format!("/var/run/netns/{ns}")),
                "eth0",
                &netconf(NETWORK, &[], 1500, &self.name()),
            )
            .map_err(io_err("running brindle-cni ADD"))?;
        if !out.success {
            return Err(BenchError::Run(format!(
                "CNI ADD for {ns} failed: {}\n{}",
                out.stdout, out.stderr
            )));
        }
        let result = out.json();
        let ip = result["ips"][0]["address"]
            .as_str()
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| {
                BenchError::Run(format!(
                    "CNI ADD for {ns}: no IPv4 address in {}",
                    out.stdout
                ))
            })?;
        Ok((ip, out.elapsed))
    }

    pub(super) fn cni_del(&self, ns: &str, index: usize) -> Result<Duration> {
        let out = self
            .cni()
            .invoke(
                &self.lab.node_netns(),
                "DEL",
                &self.container_id(index),
                &PathBuf::from(format!("/var/run/netns/{ns}")),
                "eth0",
                &netconf(NETWORK, &[], 1500, &self.name()),
            )
            .map_err(io_err("running brindle-cni DEL"))?;
        if !out.success {
            return Err(BenchError::Run(format!(
                "CNI DEL for {ns} failed: {}\n{}",
                out.stdout, out.stderr
            )));
        }
        Ok(out.elapsed)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            node.stop(brindle_node::STOP_GRACE);
        }
        for ns in self.containers.drain(..).rev() {
            let _ = cmd::run_unchecked(&["ip", "netns", "del", &ns], CONFIG_TIMEOUT);
        }
        self.store = None;
        if let Some(etcd) = self.etcd.take() {
            etcd.terminate(Duration::from_secs(5));
        }
        let _ = self.lab.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `<tag><pid in base 36><run>`: unique across processes and across runs of one process,
/// at most 8 characters (the lab's limit).
pub(super) fn lab_name(tag: &str) -> String {
    let name = format!("{tag}{}", lab::run::run_tag(5));
    name.chars().take(lab::MAX_NAME_LEN).collect()
}

pub(super) fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The node's stats document (see control's `stats` module: one JSON document per connection).
pub(super) fn fetch_stats(socket: &Path) -> Result<serde_json::Value> {
    brindle_node::read_stats(socket)
        .map_err(|e| BenchError::Run(format!("stats from {}: {e}", socket.display())))
}

/// Items the node's last apply reported as `missing` interfaces.
pub(super) fn missing_count(stats: &serde_json::Value) -> usize {
    stats["failures"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter(|x| {
                    x["kind"]
                        .as_str()
                        .is_some_and(|k| k.eq_ignore_ascii_case("missing"))
                })
                .count()
        })
        .unwrap_or(0)
}
