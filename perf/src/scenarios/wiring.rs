//! How brindle's side is wired, and the environment its agent-mode nodes run with.

use super::*;

/// How brindle's side of a lab is wired (the kernel baseline always keeps the lab's own
/// Calico kernel-style wiring).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Wiring {
    /// As a cluster runs: brindle-node in agent mode from calico-node's environment, one
    /// embedded store shared by the lab's nodes, workloads plugged in by `brindle-cni` (CNI
    /// ADD with a network configuration, run in the node's namespace).
    BrindleCni,
    /// brindle-node in file mode (`node.toml` with static workloads and routes), workloads
    /// wired by the lab itself.
    Lab,
}

impl Wiring {
    pub fn name(self) -> &'static str {
        match self {
            Wiring::BrindleCni => "brindle-cni",
            Wiring::Lab => "lab",
        }
    }

    pub fn parse(text: &str) -> Result<Wiring, String> {
        [Wiring::BrindleCni, Wiring::Lab]
            .into_iter()
            .find(|w| w.name() == text.trim())
            .ok_or_else(|| format!("invalid wiring {text:?}: expected brindle-cni or lab"))
    }
}

/// How one lab's brindle side ran (the JSON's `labs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LabRun {
    pub lab: LabKind,
    pub wiring: Wiring,
    /// `CALICO_IPV4POOL_IPIP` of the default pool (agent mode only).
    pub ipip_mode: Option<String>,
    /// The workloads' MTU (the CNI network configuration's `mtu`, or the lab's veths).
    pub workload_mtu: usize,
    /// What enforces the network's profile on the kernel side.
    pub kernel_policy: KernelPolicy,
    /// The kernel side's veth offloads ([`lab_offloads`]).
    pub kernel_offloads: lab::Offloads,
}

/// A side's veth offloads in `lab`: [`baseline::offloads_for`] the side; except the kernel
/// side of the IPIP lab on a kernel without the `ipip` driver, whose BPF stand-in for tunl0
/// carries no TCP with them on (0 Gbit/s measured) and so keeps them off until it handles GSO.
pub fn lab_offloads(lab: LabKind, forwarding: Forwarding) -> lab::Offloads {
    if lab == LabKind::Ipip && forwarding == Forwarding::Kernel && !baseline::has_ipip_driver() {
        return lab::Offloads::Off;
    }
    baseline::offloads_for(forwarding)
}

impl LabRun {
    pub fn new(lab: LabKind, wiring: Wiring) -> LabRun {
        LabRun {
            lab,
            wiring,
            ipip_mode: (wiring == Wiring::BrindleCni).then(|| pool_ipip_mode(lab).to_owned()),
            workload_mtu: workload_mtu(lab),
            kernel_policy: KernelPolicy::for_wiring(wiring),
            kernel_offloads: lab_offloads(lab, Forwarding::Kernel),
        }
    }
}

/// The default pool's IPIP mode per lab, as an operator would set it: none on one segment,
/// `CrossSubnet` when a node sits behind a router (so that only that traffic is wrapped).
pub fn pool_ipip_mode(lab: LabKind) -> &'static str {
    match lab {
        LabKind::OneNode | LabKind::L2 => "Never",
        LabKind::Ipip => "CrossSubnet",
    }
}

/// Calico gives workloads the pool's MTU: 1500 - 20 where packets may be wrapped in IPIP.
pub fn workload_mtu(lab: LabKind) -> usize {
    match lab {
        LabKind::OneNode | LabKind::L2 => 1500,
        LabKind::Ipip => IPIP_WORKLOAD_MTU,
    }
}

/// The CNI network configuration the suite plugs every workload of `lab` on node `node` with.
pub fn scenario_netconf(lab: LabKind, node: &str) -> String {
    lab::cni::netconf(SCENARIO_NETWORK, &[], workload_mtu(lab) as u32, node)
}

/// Where an agent-mode node keeps its state: the shared store and its control socket.
#[derive(Clone, Debug)]
pub struct AgentPaths {
    /// The embedded store shared by every node of the lab (and brindle-cni).
    pub store: PathBuf,
    pub control_socket: PathBuf,
}

/// The datastore environment brindle-node and brindle-cni share.
pub fn datastore_env(store: &Path) -> Vec<(String, String)> {
    vec![
        ("DATASTORE_TYPE".into(), "embedded".into()),
        ("BRINDLE_EMBEDDED_PATH".into(), store.display().to_string()),
    ]
}

/// calico-node's environment for node `node_name` of `lab`: address from `eth0`, the default
/// pool's IPIP mode, Felix's `defaultEndpointToHostAction` Accept (its default, Drop, would
/// refuse the pod-to-node scenarios), and brindle's worker mode and control socket.
pub fn agent_env(
    lab: LabKind,
    node_name: &str,
    node_mode: &str,
    paths: &AgentPaths,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("NODENAME", node_name.to_owned()),
        ("IP", "autodetect".to_owned()),
        ("IP_AUTODETECTION_METHOD", "interface=eth0".to_owned()),
        ("CALICO_IPV4POOL_IPIP", pool_ipip_mode(lab).to_owned()),
        ("FELIX_DEFAULTENDPOINTTOHOSTACTION", "Accept".to_owned()),
        ("BRINDLE_MODE", node_mode.to_owned()),
        (
            "BRINDLE_CONTROL_SOCKET",
            paths.control_socket.display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(datastore_env(&paths.store));
    env
}
