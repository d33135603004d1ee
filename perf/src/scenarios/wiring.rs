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
    /// As [`Wiring::BrindleCni`], with `"workload_interface": "tap"` in the network
    /// configuration: each pod's `eth0` a TAP the node attaches to, and the node's stack
    /// behind a TAP too (`BRINDLE_HOST_PORT=tap`).
    BrindleCniTap,
    /// brindle-node in file mode (`node.toml` with static workloads and routes), workloads
    /// wired by the lab itself.
    Lab,
    /// As [`Wiring::Lab`], each workload's `eth0` a TAP with virtio-net headers that the node
    /// attaches to (whole 64 KiB TCP segments cross it) instead of a veth.
    LabTap,
}

impl Wiring {
    pub fn name(self) -> &'static str {
        match self {
            Wiring::BrindleCni => "brindle-cni",
            Wiring::BrindleCniTap => "brindle-cni-tap",
            Wiring::Lab => "lab",
            Wiring::LabTap => "lab-tap",
        }
    }

    pub fn parse(text: &str) -> Result<Wiring, String> {
        Wiring::ALL
            .into_iter()
            .find(|w| w.name() == text.trim())
            .ok_or_else(|| {
                format!(
                    "invalid wiring {text:?}: expected brindle-cni, brindle-cni-tap, lab or lab-tap"
                )
            })
    }

    pub const ALL: [Wiring; 4] = [
        Wiring::BrindleCni,
        Wiring::BrindleCniTap,
        Wiring::Lab,
        Wiring::LabTap,
    ];

    /// brindle's side runs as a cluster (agent mode, brindle-cni).
    pub fn is_agent(self) -> bool {
        matches!(self, Wiring::BrindleCni | Wiring::BrindleCniTap)
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

/// What brindle's workloads' `eth0` is with `wiring` (the kernel's is always a veth).
pub fn workload_port(wiring: Wiring, forwarding: Forwarding) -> lab::WorkloadPort {
    match (wiring, forwarding) {
        (Wiring::LabTap, Forwarding::Brindle) => lab::WorkloadPort::Tap,
        _ => lab::WorkloadPort::Veth,
    }
}

impl LabRun {
    pub fn new(lab: LabKind, wiring: Wiring) -> LabRun {
        LabRun {
            lab,
            wiring,
            ipip_mode: wiring.is_agent().then(|| pool_ipip_mode(lab).to_owned()),
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
pub fn scenario_netconf(lab: LabKind, node: &str, tap_dir: Option<&Path>) -> String {
    let netconf = lab::cni::netconf(SCENARIO_NETWORK, &[], workload_mtu(lab) as u32, node);
    let Some(dir) = tap_dir else {
        return netconf;
    };
    let mut doc: serde_json::Value =
        serde_json::from_str(&netconf).expect("lab::cni::netconf writes JSON");
    doc["workload_interface"] = "tap".into();
    doc["tap_dir"] = dir.display().to_string().into();
    doc.to_string()
}

/// Where an agent-mode node keeps its state: the shared store and its control socket.
#[derive(Clone, Debug)]
pub struct AgentPaths {
    /// The embedded store shared by every node of the lab (and brindle-cni).
    pub store: PathBuf,
    pub control_socket: PathBuf,
    /// Where brindle-cni registers the pods' TAPs for the node ([`Wiring::BrindleCniTap`]).
    pub tap_dir: Option<PathBuf>,
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
    if let Some(dir) = &paths.tap_dir {
        env.push(("BRINDLE_TAP_DIR".into(), dir.display().to_string()));
        env.push(("BRINDLE_HOST_PORT".into(), "tap".into()));
    }
    env
}
