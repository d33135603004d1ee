//! A lab that is up, with whatever forwards in it, and bringing one up for a side.

use super::*;

/// An endpoint of a path: the namespace traffic starts from or goes to, and its address.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub netns: String,
    pub ip: Ipv4Addr,
}

pub(super) enum Built {
    One(Lab),
    Multi(MultiLab),
}

/// Container namespaces the suite created (agent-mode wiring); deleted on drop, by name.
#[derive(Default)]
pub(super) struct Containers(pub(super) Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = cmd::run_unchecked(&["ip", "netns", "del", ns], cmd::CONFIG_TIMEOUT);
        }
    }
}

/// A lab of one kind, wired for one forwarder; nodes are stopped before the lab goes down.
pub(super) struct RunningLab {
    // Field order is drop order: nodes first, then the containers, then the namespaces.
    pub(super) nodes: Vec<NodeProcess>,
    pub(super) containers: Containers,
    /// Agent-mode wiring: node `k`'s workloads (plugged by brindle-cni) are `pods[k - 1]`.
    /// Empty with the lab's own wiring (its workloads are the lab's).
    pub(super) pods: Vec<Vec<Endpoint>>,
    /// The kernel side's iptables and ipsets (removed before the namespaces go).
    pub(super) kernel_policy: Option<KernelPolicyRules>,
    pub(super) built: Built,
    pub(super) kind: LabKind,
}

impl RunningLab {
    /// The two ends of `path` in this lab.
    pub(super) fn ends(&self, path: PathKind) -> Result<(Endpoint, Endpoint), BenchError> {
        let missing =
            || BenchError::Run(format!("{} has no {} path", self.kind.name(), path.name()));
        // Workload `i` of node `k` (both from 1): plugged by brindle-cni, or the lab's own.
        let workload = |k: usize, i: usize| -> Option<Endpoint> {
            if !self.pods.is_empty() {
                return self
                    .pods
                    .get(k.checked_sub(1)?)?
                    .get(i.checked_sub(1)?)
                    .cloned();
            }
            let lab = match &self.built {
                Built::One(lab) => (k == 1).then_some(lab)?,
                Built::Multi(multi) => multi.node(k)?,
            };
            lab.workload(i).map(|w| Endpoint {
                netns: w.netns.clone(),
                ip: w.ip,
            })
        };
        match (&self.built, path) {
            (Built::One(_), PathKind::PodToPod) => Ok((
                workload(1, 1).ok_or_else(missing)?,
                workload(1, 2).ok_or_else(missing)?,
            )),
            (Built::One(lab), PathKind::PodToNode) => {
                let uplink = lab.uplink().ok_or_else(missing)?;
                let node = Endpoint {
                    netns: lab.node_netns(),
                    ip: uplink.node_ip,
                };
                Ok((workload(1, 1).ok_or_else(missing)?, node))
            }
            (Built::Multi(_), PathKind::PodToPod) => Ok((
                workload(1, 1).ok_or_else(missing)?,
                workload(2, 1).ok_or_else(missing)?,
            )),
            (Built::Multi(lab), PathKind::PodToNode | PathKind::NodeToNode) => {
                let spec = lab.spec();
                let node = |k: usize| Endpoint {
                    netns: spec.node_spec(k).node_netns(),
                    ip: spec.node_ip(k),
                };
                let from = if path == PathKind::PodToNode {
                    workload(1, 1).ok_or_else(missing)?
                } else {
                    node(1)
                };
                Ok((from, node(2)))
            }
            (Built::One(_), PathKind::NodeToNode) => Err(missing()),
        }
    }

    /// Whether every brindle node is still running.
    pub(super) fn nodes_alive(&mut self) -> Result<(), BenchError> {
        for node in self.nodes.iter_mut() {
            node.check_running("while the lab runs")?;
        }
        Ok(())
    }

    pub(super) fn stop(self) {
        for node in self.nodes {
            node.stop(NODE_STOP_GRACE);
        }
    }
}

/// `sc` + `o`/`l`/`i` + `k`/`b` + tag: namespaces of this suite start with `sc`.
pub(super) fn lab_name(kind: LabKind, forwarding: Forwarding, tag: &str) -> String {
    let k = match kind {
        LabKind::OneNode => 'o',
        LabKind::L2 => 'l',
        LabKind::Ipip => 'i',
    };
    let f = match forwarding {
        Forwarding::Kernel => 'k',
        Forwarding::Brindle => 'b',
    };
    format!("sc{k}{f}{tag}")
}

pub(super) fn multi_spec(kind: LabKind, name: String) -> MultiLabSpec {
    MultiLabSpec {
        routed_nodes: usize::from(kind == LabKind::Ipip),
        ..MultiLabSpec::new(name, 2, 1)
    }
}

/// Builds `kind` for `forwarding`, starts what forwards, and waits for the first pod-to-pod
/// reply.
pub(super) fn bring_up(
    opts: &ScenarioOptions,
    kind: LabKind,
    forwarding: Forwarding,
    dir: &Path,
    ipip_method: &mut Option<baseline::KernelIpip>,
) -> Result<RunningLab, BenchError> {
    std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let name = lab_name(kind, forwarding, &lab::run::run_tag(2));
    let agent = forwarding == Forwarding::Brindle && opts.wiring.is_agent();
    let mut running = if agent {
        bring_up_agent(opts, kind, name, dir)?
    } else {
        bring_up_lab(opts, kind, forwarding, name, dir, ipip_method)?
    };
    let (from, to) = running.ends(PathKind::PodToPod)?;
    let timeout = if agent {
        AGENT_READY_TIMEOUT
    } else {
        NODE_READY_TIMEOUT
    };
    let deadline = Instant::now() + timeout;
    loop {
        if lab::ping::answers(&from.netns, to.ip)? {
            if let Some(rules) = &running.kernel_policy {
                rules.prove(&from, &to)?;
            }
            return Ok(running);
        }
        running.nodes_alive()?;
        if Instant::now() >= deadline || cmd::interrupted() {
            return Err(BenchError::Run(format!(
                "{} -> {} not reachable within {timeout:?}; node 1 log: {}",
                from.netns,
                to.ip,
                log_tail(&dir.join("node1.log"))
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
