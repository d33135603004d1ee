//! The scenario suite (MISSION.md scenario 7): ping latency, iperf3 TCP and UDP, and HTTP
//! load (nginx in a workload, `ab` and `wrk` from another) over the paths a cluster has,
//! each measured through brindle and through the kernel dataplane in the same run.
//!
//! | lab        | topology                                   | paths measured |
//! |------------|--------------------------------------------|----------------|
//! | `one-node` | [`Lab`]: two workloads, uplink to `ext`    | pod-to-pod, pod-to-node (workload to the node's uplink address) |
//! | `l2`       | [`MultiLab`]: two nodes on one segment     | pod-to-pod across nodes (plain), pod-to-node (node 1's workload to node 2's address), node-to-node |
//! | `ipip`     | [`MultiLab`]: node 2 behind a router       | pod-to-pod across nodes (IP in IP) |
//!
//! Each lab is built twice, kernel first. The kernel baseline is wired as Calico's kernel
//! dataplane wires it (the labs' own Calico wiring: veth `cali...`, proxy ARP, /32 routes, the
//! crossnode benchmark's routes and IPIP), and it enforces the same policy as brindle's side:
//! Felix-style iptables-legacy chains per workload interface with an ipset of the network's
//! members and conntrack ([`kernel_policy_iptables`]), proven live by their counters before
//! anything is measured and removed with the lab (`labs[].kernel_policy`). brindle's side
//! runs as a cluster does ([`Wiring::BrindleCni`], the default): the lab's namespaces without workloads, one
//! `brindle-node` per node in agent mode from calico-node's environment (`NODENAME`,
//! `IP_AUTODETECTION_METHOD=interface=eth0`, `CALICO_IPV4POOL_IPIP` Never, or CrossSubnet in
//! the routed lab) on one embedded store shared by the lab's nodes, and the workloads plugged
//! in by `brindle-cni` (CNI ADD, one network, so that its profile admits every pod-to-pod
//! scenario). [`Wiring::Lab`] keeps the older file-mode run on the lab's own wiring. Worker
//! mode is interrupt by default so that two nodes share the two cores. Every scenario of the
//! lab runs on each side; ratios are brindle/kernel of the same run; the JSON's `labs` says
//! how each lab was wired.
//!
//! Pod-to-node through brindle is workload-to-host traffic: the vRouter hands it to the
//! node's stack through the host port (`brhost0`), and the kernel routes the pools back to
//! the vRouter. Felix drops it by default (`defaultEndpointToHostAction: Drop`); the nodes
//! run with `FELIX_DEFAULTENDPOINTTOHOSTACTION=Accept`. Node-to-node stays in the kernel (the
//! XDP program passes it): it shows the cost of the attached program. A side that fails is
//! reported with its error, never left out.
//!
//! Every load is bounded: ping by count and deadline, iperf3 by `-t`, ab by `-n` and `-t`,
//! wrk by `-d` and `--timeout`; every process by a timeout of its own.

mod measure;
mod parse;
mod report;

pub use measure::*;
pub use parse::*;
pub use report::*;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::crossnode::{self, Encap};
use crate::e2e;
use crate::policy_bench::IptablesBackend;
use crate::progress::Progress;
use lab::cmd::{self, ChildGuard, CmdError};
use lab::cni::CniPlugin;
use lab::felix::{
    from_workload_chain, ipset_name, to_workload_chain, ChainEnd, Dispatch, Iptables,
};
use lab::node::{log_tail, NodeError, NodeLaunch, NodeProcess};
use lab::run::LoadAverage;
use lab::{Forwarding, Lab, LabSpec, MultiLab, MultiLabSpec};

/// The lab's ports for iperf3 and nginx (inside workload namespaces: no clash with the host).
pub const IPERF_PORT: u16 = 5301;
pub const HTTP_PORT: u16 = 8080;
/// The static file nginx serves: small, so that the load measures packets and not bytes.
pub const HTTP_FILE: &str = "index.html";
pub const HTTP_FILE_BYTES: usize = 612;
/// iperf3's UDP datagram: fits the 1480-byte MTU of the IPIP lab with its headers.
pub const UDP_DATAGRAM_BYTES: usize = 1400;
/// Workload MTU in the IPIP lab, as Calico sets it for an IPIP pool (1500 - 20).
pub const IPIP_WORKLOAD_MTU: usize = crossnode::TUNNEL_MTU;
/// How long a node gets from start to forwarding.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long an agent-mode lab gets from its nodes' start to the first pod-to-pod reply: the
/// BGP mesh must come up and the routes arrive before pods on two nodes can talk.
const AGENT_READY_TIMEOUT: Duration = Duration::from_secs(45);
/// The one network every workload of a lab is plugged into: the profile brindle-cni creates
/// for it admits its members, so every pod-to-pod scenario is allowed by policy.
pub const SCENARIO_NETWORK: &str = "scnet";
const NODE_STOP_GRACE: Duration = Duration::from_secs(5);
/// Longest a server (iperf3, nginx) may take to listen.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// What runs
// ---------------------------------------------------------------------------------------

/// The three labs of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabKind {
    OneNode,
    L2,
    Ipip,
}

impl LabKind {
    pub const ALL: [LabKind; 3] = [LabKind::OneNode, LabKind::L2, LabKind::Ipip];

    pub fn name(self) -> &'static str {
        match self {
            LabKind::OneNode => "one-node",
            LabKind::L2 => "l2",
            LabKind::Ipip => "ipip",
        }
    }

    /// Parses `one-node`, `l2` or `ipip`.
    pub fn parse(text: &str) -> Result<LabKind, String> {
        LabKind::ALL
            .into_iter()
            .find(|k| k.name() == text.trim())
            .ok_or_else(|| format!("invalid lab {text:?}: expected one-node, l2 or ipip"))
    }

    /// The paths measured in this lab, with the tests run over each.
    pub fn scenarios(self) -> Vec<Scenario> {
        use TestKind::*;
        let all = [Ping, IperfTcp, IperfUdp];
        let mut out = Vec::new();
        let mut add = |path: PathKind, tests: &[TestKind]| {
            out.extend(tests.iter().map(|&test| Scenario {
                lab: self,
                path,
                test,
            }))
        };
        match self {
            LabKind::OneNode => {
                add(
                    PathKind::PodToPod,
                    &[Ping, IperfTcp, IperfUdp, HttpAb, HttpWrk],
                );
                add(PathKind::PodToNode, &all);
            }
            LabKind::L2 => {
                add(
                    PathKind::PodToPod,
                    &[Ping, IperfTcp, IperfUdp, HttpAb, HttpWrk],
                );
                // Across nodes: a workload on node 1 to node 2's address.
                add(PathKind::PodToNode, &all);
                add(PathKind::NodeToNode, &all);
            }
            LabKind::Ipip => add(PathKind::PodToPod, &all),
        }
        out
    }
}

/// Who talks to whom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    PodToPod,
    PodToNode,
    NodeToNode,
}

impl PathKind {
    pub fn name(self) -> &'static str {
        match self {
            PathKind::PodToPod => "pod-to-pod",
            PathKind::PodToNode => "pod-to-node",
            PathKind::NodeToNode => "node-to-node",
        }
    }
}

/// What is measured over a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestKind {
    Ping,
    IperfTcp,
    IperfUdp,
    HttpAb,
    HttpWrk,
}

impl TestKind {
    pub fn name(self) -> &'static str {
        match self {
            TestKind::Ping => "ping",
            TestKind::IperfTcp => "iperf-tcp",
            TestKind::IperfUdp => "iperf-udp",
            TestKind::HttpAb => "http-ab",
            TestKind::HttpWrk => "http-wrk",
        }
    }

    pub fn parse(text: &str) -> Result<TestKind, String> {
        use TestKind::*;
        [Ping, IperfTcp, IperfUdp, HttpAb, HttpWrk]
            .into_iter()
            .find(|t| t.name() == text.trim())
            .ok_or_else(|| {
                format!(
                    "invalid test {text:?}: expected ping, iperf-tcp, iperf-udp, http-ab or http-wrk"
                )
            })
    }
}

/// One measurement: a test over a path of a lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Scenario {
    pub lab: LabKind,
    pub path: PathKind,
    pub test: TestKind,
}

impl Scenario {
    /// `one-node pod-to-pod ping`.
    pub fn label(&self) -> String {
        format!(
            "{} {} {}",
            self.lab.name(),
            self.path.name(),
            self.test.name()
        )
    }
}

#[derive(Clone, Debug)]
pub struct ScenarioOptions {
    /// Directory holding `brindle-node`.
    pub bin_dir: PathBuf,
    /// Scratch: node configs, sockets and logs, nginx's config and pid file.
    pub work_dir: PathBuf,
    pub labs: Vec<LabKind>,
    /// Only these tests (empty: all).
    pub tests: Vec<TestKind>,
    pub pings: u32,
    /// Seconds of each iperf3 run.
    pub iperf_secs: u32,
    /// The UDP test's offered rate, in Mbit/s.
    pub udp_mbit: u32,
    /// ab: requests and concurrency; ab stops at `http_secs` too.
    pub http_requests: u32,
    pub http_concurrency: u32,
    /// wrk's duration (and ab's time limit).
    pub http_secs: u32,
    /// brindle-node's worker mode: interrupt (default) or poll.
    pub node_mode: String,
    /// How brindle's side of every lab is wired (default: agent mode, brindle-cni).
    pub wiring: Wiring,
    /// Compiler of the kernel IPIP BPF program (kernels without the `ipip` driver).
    pub clang: String,
    pub quick: bool,
}

impl ScenarioOptions {
    /// The full run's defaults, or the short ones of `--quick`.
    pub fn defaults(bin_dir: PathBuf, work_dir: PathBuf, quick: bool) -> ScenarioOptions {
        ScenarioOptions {
            bin_dir,
            work_dir,
            labs: LabKind::ALL.to_vec(),
            tests: Vec::new(),
            pings: if quick { 50 } else { 500 },
            iperf_secs: if quick { 1 } else { 5 },
            udp_mbit: 1000,
            http_requests: if quick { 500 } else { 20_000 },
            http_concurrency: 8,
            http_secs: if quick { 1 } else { 5 },
            node_mode: "interrupt".into(),
            wiring: Wiring::BrindleCni,
            clang: "clang".into(),
            quick,
        }
    }

    /// Bounds on every count and time, so that a typo cannot start a run of days.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let check = |field: &'static str, value: u64, max: u64| {
            if value == 0 || value > max {
                Err(ScenarioError::Invalid {
                    field,
                    value: value.to_string(),
                    reason: format!("between 1 and {max}"),
                })
            } else {
                Ok(())
            }
        };
        check("pings", self.pings.into(), 100_000)?;
        check("iperf_secs", self.iperf_secs.into(), 600)?;
        check("udp_mbit", self.udp_mbit.into(), 100_000)?;
        check("http_requests", self.http_requests.into(), 10_000_000)?;
        check("http_concurrency", self.http_concurrency.into(), 1000)?;
        check("http_secs", self.http_secs.into(), 600)?;
        if self.http_concurrency > self.http_requests {
            return Err(ScenarioError::Invalid {
                field: "http_concurrency",
                value: self.http_concurrency.to_string(),
                reason: "more than http_requests".into(),
            });
        }
        if self.node_mode != "interrupt" && self.node_mode != "poll" {
            return Err(ScenarioError::Invalid {
                field: "node_mode",
                value: self.node_mode.clone(),
                reason: "expected interrupt or poll".into(),
            });
        }
        if self.labs.is_empty() {
            return Err(ScenarioError::Invalid {
                field: "labs",
                value: String::new(),
                reason: "at least one lab".into(),
            });
        }
        Ok(())
    }

    /// The scenarios this run measures, in order.
    pub fn scenarios(&self) -> Vec<Scenario> {
        self.labs
            .iter()
            .flat_map(|lab| lab.scenarios())
            .filter(|s| self.tests.is_empty() || self.tests.contains(&s.test))
            .collect()
    }

    fn brindle_node(&self) -> PathBuf {
        self.bin_dir.join("brindle-node")
    }
}

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
}

impl LabRun {
    pub fn new(lab: LabKind, wiring: Wiring) -> LabRun {
        LabRun {
            lab,
            wiring,
            ipip_mode: (wiring == Wiring::BrindleCni).then(|| pool_ipip_mode(lab).to_owned()),
            workload_mtu: workload_mtu(lab),
            kernel_policy: KernelPolicy::for_wiring(wiring),
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

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Lab(#[from] lab::LabError),
    #[error(transparent)]
    Command(#[from] CmdError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Crossnode(#[from] crossnode::CrossnodeError),
    #[error(transparent)]
    Measure(#[from] e2e::E2eError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Run(String),
    #[error("{tool} printed unexpected output: {reason}")]
    Parse { tool: &'static str, reason: String },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ScenarioError {
    let what = what.into();
    move |source| ScenarioError::Io { what, source }
}

// ---------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------

/// A metric's name (unit included, e.g. `rtt_p50_us`, `gbit_per_s`) and value.
pub type Metrics = BTreeMap<String, f64>;

/// Whether more of a metric is better: the report's arrows and the plots' titles.
pub fn higher_is_better(metric: &str) -> bool {
    !(metric.starts_with("rtt_")
        || metric.ends_with("_ms")
        || metric.ends_with("_us")
        || metric.contains("lost")
        || metric.contains("failed")
        || metric.contains("errors")
        || metric.contains("retransmits"))
}

/// Both sides of one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    pub lab: LabKind,
    pub path: PathKind,
    pub test: TestKind,
    /// `None` when the side failed (see `kernel_error`/`brindle_error`).
    pub kernel: Option<Metrics>,
    pub brindle: Option<Metrics>,
    pub kernel_error: Option<String>,
    pub brindle_error: Option<String>,
    /// brindle/kernel for every metric both sides have, where the kernel's is not zero.
    pub ratios: Metrics,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScenariosReport {
    pub quick: bool,
    pub ncpus: usize,
    pub node_mode: String,
    pub pings: u32,
    pub iperf_secs: u32,
    pub udp_offered_mbit: u32,
    pub udp_datagram_bytes: usize,
    pub http_requests: u32,
    pub http_concurrency: u32,
    pub http_secs: u32,
    pub http_file_bytes: usize,
    pub kernel_ipip_method: Option<crossnode::KernelIpip>,
    /// How each lab's brindle side was wired.
    pub labs: Vec<LabRun>,
    pub load_average_before: Option<String>,
    pub load_average_after: Option<String>,
    pub elapsed_secs: f64,
    pub scenarios: Vec<ScenarioResult>,
}

/// brindle/kernel per metric both sides measured (none where the kernel measured zero).
pub fn ratios(kernel: &Metrics, brindle: &Metrics) -> Metrics {
    kernel
        .iter()
        .filter_map(|(name, &k)| {
            let b = *brindle.get(name)?;
            (k != 0.0 && k.is_finite() && b.is_finite()).then(|| (name.clone(), b / k))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// A lab that is up, with whatever forwards in it
// ---------------------------------------------------------------------------------------

/// An endpoint of a path: the namespace traffic starts from or goes to, and its address.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub netns: String,
    pub ip: Ipv4Addr,
}

enum Built {
    One(Lab),
    Multi(MultiLab),
}

/// Container namespaces the suite created (agent-mode wiring); deleted on drop, by name.
#[derive(Default)]
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = cmd::run_unchecked(&["ip", "netns", "del", ns], cmd::CONFIG_TIMEOUT);
        }
    }
}

/// A lab of one kind, wired for one forwarder; nodes are stopped before the lab goes down.
struct RunningLab {
    // Field order is drop order: nodes first, then the containers, then the namespaces.
    nodes: Vec<NodeProcess>,
    containers: Containers,
    /// Agent-mode wiring: node `k`'s workloads (plugged by brindle-cni) are `pods[k - 1]`.
    /// Empty with the lab's own wiring (its workloads are the lab's).
    pods: Vec<Vec<Endpoint>>,
    /// The kernel side's iptables and ipsets (removed before the namespaces go).
    kernel_policy: Option<KernelPolicyRules>,
    built: Built,
    kind: LabKind,
}

impl RunningLab {
    /// The two ends of `path` in this lab.
    fn ends(&self, path: PathKind) -> Result<(Endpoint, Endpoint), ScenarioError> {
        let missing =
            || ScenarioError::Run(format!("{} has no {} path", self.kind.name(), path.name()));
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
    fn nodes_alive(&mut self) -> Result<(), ScenarioError> {
        for node in self.nodes.iter_mut() {
            node.check_running("while the lab runs")?;
        }
        Ok(())
    }

    fn stop(self) {
        for node in self.nodes {
            node.stop(NODE_STOP_GRACE);
        }
    }
}

/// `sc` + `o`/`l`/`i` + `k`/`b` + tag: namespaces of this suite start with `sc`.
fn lab_name(kind: LabKind, forwarding: Forwarding, tag: &str) -> String {
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

fn multi_spec(kind: LabKind, name: String) -> MultiLabSpec {
    MultiLabSpec {
        routed_nodes: usize::from(kind == LabKind::Ipip),
        ..MultiLabSpec::new(name, 2, 1)
    }
}

/// Builds `kind` for `forwarding`, starts what forwards, and waits for the first pod-to-pod
/// reply.
fn bring_up(
    opts: &ScenarioOptions,
    kind: LabKind,
    forwarding: Forwarding,
    dir: &Path,
    ipip_method: &mut Option<crossnode::KernelIpip>,
) -> Result<RunningLab, ScenarioError> {
    std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let name = lab_name(kind, forwarding, &lab::run::run_tag(2));
    let agent = forwarding == Forwarding::Brindle && opts.wiring == Wiring::BrindleCni;
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
            return Err(ScenarioError::Run(format!(
                "{} -> {} not reachable within {timeout:?}; node 1 log: {}",
                from.netns,
                to.ip,
                log_tail(&dir.join("node1.log"))
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// brindle's side wired as a cluster is: agent-mode nodes sharing one embedded store, the
/// workloads plugged in by brindle-cni (two on the one node, or one per node). Node 1 starts
/// first: it creates the default pool, as the first calico-node does.
fn bring_up_agent(
    opts: &ScenarioOptions,
    kind: LabKind,
    name: String,
    dir: &Path,
) -> Result<RunningLab, ScenarioError> {
    let store = dir.join("store.redb");
    // A store left by an earlier run in this directory would bring its pools and endpoints.
    let _ = std::fs::remove_file(&store);
    let (built, node_count, pods_per_node) = match kind {
        LabKind::OneNode => {
            let spec = LabSpec {
                forwarding: Forwarding::Brindle,
                ..LabSpec::new(name.clone(), 0)
            };
            (Built::One(Lab::up(&spec)?), 1, 2)
        }
        LabKind::L2 | LabKind::Ipip => {
            let spec = MultiLabSpec {
                workloads: 0,
                ..multi_spec(kind, name.clone())
            };
            (Built::Multi(MultiLab::up(&spec)?), 2, 1)
        }
    };
    let node_netns = |built: &Built, k: usize| match built {
        Built::One(lab) => lab.node_netns(),
        Built::Multi(lab) => lab.spec().node_spec(k).node_netns(),
    };
    let mut running = RunningLab {
        nodes: Vec::new(),
        containers: Containers::default(),
        pods: Vec::new(),
        kernel_policy: None,
        built,
        kind,
    };
    let node_name = |k: usize| format!("{name}n{k}");
    for k in 1..=node_count {
        let paths = AgentPaths {
            store: store.clone(),
            control_socket: dir.join(format!("node{k}.sock")),
        };
        let env = agent_env(kind, &node_name(k), &opts.node_mode, &paths);
        let ns = node_netns(&running.built, k);
        running.nodes.push(
            node_launch(opts, &ns, dir, k)
                .envs(env)
                .start(NODE_READY_TIMEOUT)?,
        );
    }
    let cni = CniPlugin {
        bin_dir: opts.bin_dir.clone(),
        plugin: "brindle-cni".into(),
        env: datastore_env(&store),
    };
    for k in 1..=node_count {
        let ns = node_netns(&running.built, k);
        let mut pods = Vec::new();
        for _ in 0..pods_per_node {
            pods.push(plug_pod(
                &cni,
                &mut running.containers,
                &name,
                &ns,
                &node_name(k),
                kind,
            )?);
        }
        running.pods.push(pods);
    }
    Ok(running)
}

/// A container namespace `<lab>-c<n>` plugged into node `node_name` by brindle-cni ADD, run
/// in the node's namespace as a runtime runs it.
fn plug_pod(
    cni: &CniPlugin,
    containers: &mut Containers,
    lab_name: &str,
    node_ns: &str,
    node_name: &str,
    kind: LabKind,
) -> Result<Endpoint, ScenarioError> {
    let ns = format!("{lab_name}-c{}", containers.0.len() + 1);
    cmd::run(&["ip", "netns", "add", &ns], cmd::CONFIG_TIMEOUT)?;
    containers.0.push(ns.clone());
    cmd::run(
        &["ip", "-n", &ns, "link", "set", "lo", "up"],
        cmd::CONFIG_TIMEOUT,
    )?;
    let netns_path = Path::new("/var/run/netns").join(&ns);
    let netconf = scenario_netconf(kind, node_name);
    let out = cni
        .invoke(
            node_ns,
            "ADD",
            &format!("{ns}-0123456789ab"),
            &netns_path,
            "eth0",
            &netconf,
        )
        .map_err(io_err(format!("running brindle-cni ADD for {ns}")))?;
    if !out.success {
        return Err(ScenarioError::Run(format!(
            "brindle-cni ADD of {ns} on {node_name} failed: {}{}",
            out.stdout.trim(),
            out.stderr.trim()
        )));
    }
    Ok(Endpoint {
        ip: cni_result_address(&out.stdout)?,
        netns: ns,
    })
}

/// The workload's address in a CNI ADD result (`ips[0].address`, `a.b.c.d/32`).
pub fn cni_result_address(result: &str) -> Result<Ipv4Addr, ScenarioError> {
    let doc: serde_json::Value = serde_json::from_str(result)
        .map_err(|e| parse_err("brindle-cni", format!("result is not JSON: {e}")))?;
    let address = doc
        .pointer("/ips/0/address")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| parse_err("brindle-cni", "no ips[0].address in the result"))?;
    let ip = address.split('/').next().unwrap_or_default();
    ip.parse().map_err(|_| {
        parse_err(
            "brindle-cni",
            format!("ips[0].address {address:?} is not an IPv4 address"),
        )
    })
}

/// brindle's side in file mode on the lab's own wiring, or the kernel baseline.
fn bring_up_lab(
    opts: &ScenarioOptions,
    kind: LabKind,
    forwarding: Forwarding,
    name: String,
    dir: &Path,
    ipip_method: &mut Option<crossnode::KernelIpip>,
) -> Result<RunningLab, ScenarioError> {
    let mut running = match kind {
        LabKind::OneNode => {
            let spec = LabSpec {
                forwarding,
                ..LabSpec::new(name, 2)
            };
            let lab = Lab::up(&spec)?;
            let mut nodes = Vec::new();
            if forwarding == Forwarding::Brindle {
                let socket = dir.join("node1.sock");
                let config = lab.node_config_toml(&opts.node_mode, &socket);
                nodes.push(start_node(opts, &lab.node_netns(), &config, dir, 1)?);
            }
            RunningLab {
                nodes,
                containers: Containers::default(),
                pods: Vec::new(),
                kernel_policy: None,
                built: Built::One(lab),
                kind,
            }
        }
        LabKind::L2 | LabKind::Ipip => {
            let spec = multi_spec(kind, name);
            let lab = MultiLab::up(&spec)?;
            let encap = if kind == LabKind::Ipip {
                Encap::Ipip
            } else {
                Encap::Plain
            };
            if kind == LabKind::Ipip {
                set_ipip_workload_mtu(&spec)?;
            }
            let mut running = RunningLab {
                nodes: Vec::new(),
                containers: Containers::default(),
                pods: Vec::new(),
                kernel_policy: None,
                built: Built::Multi(lab),
                kind,
            };
            let Built::Multi(lab) = &running.built else {
                unreachable!("just built as a multi-node lab")
            };
            match forwarding {
                Forwarding::Kernel => {
                    for (k, other) in [(1, 2), (2, 1)] {
                        run_all(&crossnode::kernel_forwarding_commands(
                            &spec, k, other, encap,
                        ))?;
                    }
                    if encap == Encap::Ipip {
                        *ipip_method = Some(crossnode::setup_kernel_ipip(&spec, dir, &opts.clang)?);
                    }
                }
                Forwarding::Brindle => {
                    for (k, other) in [(1, 2), (2, 1)] {
                        let socket = dir.join(format!("node{k}.sock"));
                        let base = lab
                            .node_config_toml(k, &opts.node_mode, &socket)
                            .ok_or_else(|| {
                                ScenarioError::Run(format!("the lab has no node {k}"))
                            })?;
                        let config = format!(
                            "{base}{}{}",
                            crossnode::brindle_route_toml(&spec, other, encap),
                            subnet_route_toml(&spec, k, other)
                        );
                        let ns = spec.node_spec(k).node_netns();
                        running.nodes.push(start_node(opts, &ns, &config, dir, k)?);
                    }
                }
            }
            running
        }
    };
    if forwarding == Forwarding::Kernel
        && KernelPolicy::for_wiring(opts.wiring) == KernelPolicy::Iptables
    {
        running.kernel_policy = Some(KernelPolicyRules::install(
            policed_nodes(&running.built),
            dir,
        )?);
    }
    Ok(running)
}

/// Every node of a lab with its workloads (the lab's own wiring), for the kernel's rules.
fn policed_nodes(built: &Built) -> Vec<PolicedNode> {
    let node = |lab: &Lab| PolicedNode {
        netns: lab.node_netns(),
        workloads: lab
            .workloads()
            .iter()
            .map(|w| (w.host_interface.clone(), w.ip))
            .collect(),
    };
    match built {
        Built::One(lab) => vec![node(lab)],
        Built::Multi(multi) => (1..=multi.spec().nodes)
            .filter_map(|k| multi.node(k))
            .map(node)
            .collect(),
    }
}

/// Calico gives the workload veth the pool's MTU: 1480 for IPIP, so that a full-size packet
/// still fits the 1500-byte uplink once wrapped.
fn set_ipip_workload_mtu(spec: &MultiLabSpec) -> Result<(), ScenarioError> {
    let mtu = IPIP_WORKLOAD_MTU.to_string();
    for k in 1..=spec.nodes {
        let node = spec.node_spec(k);
        for i in 1..=spec.workloads {
            let cali = node.host_interface(i);
            cmd::run(
                &[
                    "ip",
                    "-n",
                    &node.node_netns(),
                    "link",
                    "set",
                    &cali,
                    "mtu",
                    &mtu,
                ],
                cmd::CONFIG_TIMEOUT,
            )?;
            cmd::run(
                &[
                    "ip",
                    "-n",
                    &node.workload_netns(i),
                    "link",
                    "set",
                    "eth0",
                    "mtu",
                    &mtu,
                ],
                cmd::CONFIG_TIMEOUT,
            )?;
        }
    }
    Ok(())
}

/// Node `k`'s route to node `other`'s subnet through the router, when they are in different
/// subnets: the IPIP route's `via` must be reachable (see control's RouteConfig).
pub fn subnet_route_toml(spec: &MultiLabSpec, k: usize, other: usize) -> String {
    if spec.is_routed(k) == spec.is_routed(other) {
        return String::new();
    }
    let other_ip = u32::from(spec.node_ip(other));
    let mask = u32::MAX << (32 - lab::MULTI_PREFIX_LEN);
    let subnet = Ipv4Addr::from(other_ip & mask);
    format!(
        "\n[[route]]\nprefix = \"{subnet}/{}\"\nvia = \"{}\"\nencap = \"none\"\n",
        lab::MULTI_PREFIX_LEN,
        spec.gateway_for(k)
    )
}

/// Starts brindle-node `k` in `ns` with `config`; ready once its control socket answers.
fn start_node(
    opts: &ScenarioOptions,
    ns: &str,
    config: &str,
    dir: &Path,
    k: usize,
) -> Result<NodeProcess, ScenarioError> {
    let config_path = dir.join(format!("node{k}.toml"));
    std::fs::write(&config_path, config)
        .map_err(io_err(format!("writing {}", config_path.display())))?;
    Ok(node_launch(opts, ns, dir, k)
        .config(&config_path)
        .start(NODE_READY_TIMEOUT)?)
}

/// brindle-node `k` in `ns`, its output to `node<k>.log` and its control socket
/// `node<k>.sock` in `dir`.
fn node_launch(opts: &ScenarioOptions, ns: &str, dir: &Path, k: usize) -> NodeLaunch {
    NodeLaunch::new(ns, opts.brindle_node(), dir.join(format!("node{k}.log")))
        .label(format!("brindle-node {k}"))
        .control_socket(dir.join(format!("node{k}.sock")))
}

fn run_all(commands: &[Vec<String>]) -> Result<(), ScenarioError> {
    for command in commands {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        cmd::run(&args, cmd::CONFIG_TIMEOUT)?;
    }
    Ok(())
}

fn exec(ns: &str, args: &[&str], timeout: Duration) -> Result<std::process::Output, CmdError> {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    cmd::run_interruptible(&full, timeout)
}

// ---------------------------------------------------------------------------------------
// The kernel baseline's policy: Felix-style iptables equal to what brindle enforces
// ---------------------------------------------------------------------------------------

/// What enforces policy on a lab's kernel side (the JSON's `labs[].kernel_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelPolicy {
    /// Felix's iptables layout with an ipset for `has(scnet)` (see [`kernel_policy_iptables`]).
    Iptables,
    /// No rules: brindle's file-mode side ([`Wiring::Lab`]) enforces no policy either.
    None,
}

impl KernelPolicy {
    /// The kernel side enforces what brindle's side of `wiring` enforces.
    pub fn for_wiring(wiring: Wiring) -> KernelPolicy {
        match wiring {
            Wiring::BrindleCni => KernelPolicy::Iptables,
            Wiring::Lab => KernelPolicy::None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KernelPolicy::Iptables => "iptables",
            KernelPolicy::None => "none",
        }
    }
}

/// The kernel side programs iptables-legacy, as the policy benchmark's default does.
const KERNEL_IPTABLES: IptablesBackend = IptablesBackend::Legacy;
/// Comment on the profile rule admitting the network's members: its counter proves the rules
/// carry the lab's traffic.
pub const MEMBER_ALLOW_COMMENT: &str = "scnet-ingress-from-members";
/// Comment on the to-workload chains' final drop (Felix: "Drop if no profiles matched").
pub const NO_PROFILE_DROP_COMMENT: &str = "drop-if-no-profile-matched";
/// Felix's `defaultEndpointToHostAction: Accept`, the nodes' setting (see [`agent_env`]).
const TO_HOST_ACCEPT_COMMENT: &str = "default-endpoint-to-host-action-accept";

/// The chains of the network's profile: `cali-pri-<profile>` (ingress), `cali-pro-` (egress).
fn profile_chain(direction: &str) -> String {
    lab::felix::profile_chain(direction, SCENARIO_NETWORK)
}

/// Every chain [`kernel_policy_iptables`] creates for `interfaces`, top-level ones first.
pub fn kernel_policy_chains(interfaces: &[String]) -> Vec<String> {
    let mut chains: Vec<String> = [
        "cali-FORWARD",
        "cali-INPUT",
        "cali-OUTPUT",
        "cali-wl-to-host",
    ]
    .map(String::from)
    .into();
    chains.extend(
        interfaces
            .iter()
            .flat_map(|i| [from_workload_chain(i), to_workload_chain(i)]),
    );
    chains.extend([profile_chain("pri"), profile_chain("pro")]);
    chains
}

/// Felix-style iptables for one node with workload interfaces `interfaces`, equivalent to the
/// policy brindle's side enforces: the `scnet` profile brindle-cni creates (ingress from
/// `has(scnet)`, rendered as the ipset [`ipset_name`]`(scnet)` of every workload address of
/// the lab; egress allowed) and `defaultEndpointToHostAction: Accept`.
///
/// - FORWARD -> `cali-FORWARD`: clears the accept mark, sends traffic from a workload through
///   its `cali-fw-<if>` and to a workload through its `cali-tw-<if>`, accepts on the mark.
/// - `cali-tw-<if>`: conntrack RELATED,ESTABLISHED accept, INVALID drop, the ingress profile
///   `cali-pri-scnet` (source in the ipset: mark), return on the mark, else drop.
/// - `cali-fw-<if>`: the same with the egress profile `cali-pro-scnet`, which allows all.
/// - INPUT -> `cali-INPUT`: workload-to-host traffic through its `cali-fw-<if>`, then
///   accepted (defaultEndpointToHostAction Accept).
/// - OUTPUT -> `cali-OUTPUT`: the node's own traffic to a workload returns without policy, as
///   Felix renders it ("Return if to workload"); brindle lets the node reach its workloads the
///   same way.
pub fn kernel_policy_iptables(interfaces: &[String]) -> String {
    let (pri, pro) = (profile_chain("pri"), profile_chain("pro"));
    let mut t = Iptables::new(kernel_policy_chains(interfaces));
    for builtin in ["FORWARD", "INPUT", "OUTPUT"] {
        t.hook(builtin);
    }
    let dispatch: Vec<Dispatch> = interfaces
        .iter()
        .flat_map(|i| [Dispatch::From(i), Dispatch::To(i)])
        .collect();
    t.forward(&dispatch);
    t.rule("cali-INPUT", "-i cali+ -j cali-wl-to-host");
    t.clear_mark("cali-wl-to-host");
    for i in interfaces {
        t.rule(
            "cali-wl-to-host",
            &format!("-i {i} -j {}", from_workload_chain(i)),
        );
    }
    t.rule(
        "cali-wl-to-host",
        &format!("-m comment --comment {TO_HOST_ACCEPT_COMMENT} -j ACCEPT"),
    );
    t.rule("cali-OUTPUT", "-o cali+ -j RETURN");
    let no_profile = ChainEnd {
        clear_mark: true,
        drop_comment: Some(NO_PROFILE_DROP_COMMENT),
    };
    for i in interfaces {
        t.endpoint_chain(&to_workload_chain(i), &pri, no_profile);
        t.endpoint_chain(&from_workload_chain(i), &pro, no_profile);
    }
    let members = ipset_name(SCENARIO_NETWORK);
    t.allow(
        &pri,
        &format!("-m set --match-set {members} src -m comment --comment {MEMBER_ALLOW_COMMENT}"),
    );
    t.allow(&pro, "");
    t.render()
}

/// One node's workloads as the rules see them.
struct PolicedNode {
    netns: String,
    /// Host-side interface and address of each workload on this node.
    workloads: Vec<(String, Ipv4Addr)>,
}

/// The kernel side's rules and ipsets on every node of a lab; removed on drop (the lab's
/// namespaces, which would take them along, go after).
struct KernelPolicyRules {
    nodes: Vec<PolicedNode>,
}

impl KernelPolicyRules {
    /// Installs the rules on every node, the ipset holding every workload of the lab (a pod
    /// on the other node is a member of the network as much as a local one).
    fn install(nodes: Vec<PolicedNode>, dir: &Path) -> Result<KernelPolicyRules, ScenarioError> {
        let rules = KernelPolicyRules { nodes };
        let members: Vec<String> = rules
            .nodes
            .iter()
            .flat_map(|n| n.workloads.iter().map(|(_, ip)| ip.to_string()))
            .collect();
        let set = ipset_name(SCENARIO_NETWORK);
        for node in &rules.nodes {
            let ns = node.netns.as_str();
            cmd::run(
                &[
                    "ip", "netns", "exec", ns, "ipset", "create", &set, "hash:net",
                ],
                cmd::CONFIG_TIMEOUT,
            )?;
            for ip in &members {
                cmd::run(
                    &["ip", "netns", "exec", ns, "ipset", "add", &set, ip],
                    cmd::CONFIG_TIMEOUT,
                )?;
            }
            let interfaces: Vec<String> = node.workloads.iter().map(|(i, _)| i.clone()).collect();
            let file = dir.join(format!("{ns}.iptables"));
            std::fs::write(&file, kernel_policy_iptables(&interfaces))
                .map_err(io_err(format!("writing {}", file.display())))?;
            let path = file.display().to_string();
            cmd::run(
                &[
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    KERNEL_IPTABLES.restore(),
                    "--noflush",
                    &path,
                ],
                cmd::CONFIG_TIMEOUT,
            )?;
        }
        Ok(rules)
    }

    /// Proves the rules carry `from -> to` before anything is measured: a ping between the
    /// two workloads is answered and counted by the member rule of `to`'s node.
    fn prove(&self, from: &Endpoint, to: &Endpoint) -> Result<(), ScenarioError> {
        let not_live = |what: String| ScenarioError::Run(format!("kernel policy not live: {what}"));
        let node = self
            .nodes
            .iter()
            .find(|n| n.workloads.iter().any(|(_, ip)| *ip == to.ip))
            .ok_or_else(|| not_live(format!("no policed workload has address {}", to.ip)))?;
        let allowed = || rule_packets(&node.netns, &profile_chain("pri"), MEMBER_ALLOW_COMMENT);
        let before = allowed()?;
        if !lab::ping::answers(&from.netns, to.ip)? {
            return Err(not_live(format!("{} -> {} unanswered", from.netns, to.ip)));
        }
        let after = allowed()?;
        if after <= before {
            return Err(not_live(format!(
                "{MEMBER_ALLOW_COMMENT} counted {before} before a member's ping and {after} after"
            )));
        }
        Ok(())
    }
}

impl Drop for KernelPolicyRules {
    fn drop(&mut self) {
        let ipt = KERNEL_IPTABLES.iptables();
        let set = ipset_name(SCENARIO_NETWORK);
        for node in &self.nodes {
            let ns = node.netns.as_str();
            let run = |args: &[&str]| {
                let mut full = vec!["ip", "netns", "exec", ns];
                full.extend_from_slice(args);
                let _ = cmd::run_unchecked(&full, cmd::CONFIG_TIMEOUT);
            };
            for builtin in ["FORWARD", "INPUT", "OUTPUT"] {
                run(&[ipt, "-D", builtin, "-j", &format!("cali-{builtin}")]);
            }
            let interfaces: Vec<String> = node.workloads.iter().map(|(i, _)| i.clone()).collect();
            let chains = kernel_policy_chains(&interfaces);
            for chain in &chains {
                run(&[ipt, "-F", chain]);
            }
            for chain in &chains {
                run(&[ipt, "-X", chain]);
            }
            run(&["ipset", "destroy", &set]);
        }
    }
}

/// Packets counted by the rule of `chain` in `ns` whose comment is `comment`.
fn rule_packets(ns: &str, chain: &str, comment: &str) -> Result<u64, ScenarioError> {
    let out = cmd::run(
        &[
            "ip",
            "netns",
            "exec",
            ns,
            KERNEL_IPTABLES.iptables(),
            "-L",
            chain,
            "-v",
            "-x",
            "-n",
        ],
        cmd::CONFIG_TIMEOUT,
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    packets_of_rule(&text, comment).ok_or_else(|| {
        ScenarioError::Run(format!(
            "no rule commented {comment} in {chain} of {ns}:\n{text}"
        ))
    })
}

/// The packet count (first column of `iptables -L -v -x -n`) of the rule commented `comment`.
pub fn packets_of_rule(listing: &str, comment: &str) -> Option<u64> {
    let marker = format!("/* {comment} */");
    listing
        .lines()
        .find(|l| l.contains(&marker))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

// ---------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------

/// Runs every scenario of every lab, kernel then brindle per lab. A scenario that fails on
/// one side is reported with the error and the run goes on; only invalid options and an
/// interruption are an `Err`.
pub fn run(opts: &ScenarioOptions) -> Result<ScenariosReport, ScenarioError> {
    opts.validate()?;
    if !opts.brindle_node().is_file() {
        return Err(ScenarioError::Run(format!(
            "brindle-node {} is not a file",
            opts.brindle_node().display()
        )));
    }
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    let started = Instant::now();
    let scenarios = opts.scenarios();
    let mut results: Vec<ScenarioResult> = scenarios
        .iter()
        .map(|s| ScenarioResult {
            lab: s.lab,
            path: s.path,
            test: s.test,
            kernel: None,
            brindle: None,
            kernel_error: None,
            brindle_error: None,
            ratios: Metrics::new(),
        })
        .collect();
    let mut progress = Progress::new("scenarios", scenarios.len() * 2);
    let mut ipip_method = None;
    let load_average_before = LoadAverage::read().map(|l| l.minutes());
    let mut labs = Vec::new();
    for &kind in &opts.labs {
        let indices: Vec<usize> = (0..scenarios.len())
            .filter(|&i| scenarios[i].lab == kind)
            .collect();
        if indices.is_empty() {
            continue;
        }
        labs.push(LabRun::new(kind, opts.wiring));
        for forwarding in [Forwarding::Kernel, Forwarding::Brindle] {
            let side = side_name(forwarding);
            let dir = opts.work_dir.join(format!("{}-{side}", kind.name()));
            let lab = bring_up(opts, kind, forwarding, &dir, &mut ipip_method);
            let mut lab = match lab {
                Ok(lab) => Some(lab),
                Err(e) => {
                    eprintln!("scenarios: {} {side} lab failed: {e}", kind.name());
                    for &i in &indices {
                        progress.step(&format!("{} {side} (lab failed)", scenarios[i].label()));
                        *error_slot(&mut results[i], forwarding) = Some(format!("lab: {e}"));
                    }
                    None
                }
            };
            let Some(running) = lab.as_mut() else {
                continue;
            };
            for &i in &indices {
                if cmd::interrupted() {
                    return Err(ScenarioError::Run("interrupted by a signal".into()));
                }
                let scenario = scenarios[i];
                progress.step(&format!("{} {side}", scenario.label()));
                let outcome = running
                    .ends(scenario.path)
                    .and_then(|(from, to)| measure(opts, scenario.test, &from, &to, &dir))
                    .and_then(|m| running.nodes_alive().map(|()| m));
                match outcome {
                    Ok(m) => match forwarding {
                        Forwarding::Kernel => results[i].kernel = Some(m),
                        Forwarding::Brindle => results[i].brindle = Some(m),
                    },
                    Err(e) => {
                        eprintln!("scenarios: {} {side} failed: {e}", scenario.label());
                        *error_slot(&mut results[i], forwarding) = Some(e.to_string());
                    }
                }
            }
            if let Some(running) = lab {
                running.stop();
            }
        }
    }
    progress.finish();
    for r in &mut results {
        if let (Some(k), Some(b)) = (&r.kernel, &r.brindle) {
            r.ratios = ratios(k, b);
        }
    }
    Ok(ScenariosReport {
        quick: opts.quick,
        ncpus: crate::stats::online_cpus(),
        node_mode: opts.node_mode.clone(),
        pings: opts.pings,
        iperf_secs: opts.iperf_secs,
        udp_offered_mbit: opts.udp_mbit,
        udp_datagram_bytes: UDP_DATAGRAM_BYTES,
        http_requests: opts.http_requests,
        http_concurrency: opts.http_concurrency,
        http_secs: opts.http_secs,
        http_file_bytes: HTTP_FILE_BYTES,
        kernel_ipip_method: ipip_method,
        labs,
        load_average_before,
        load_average_after: LoadAverage::read().map(|l| l.minutes()),
        elapsed_secs: started.elapsed().as_secs_f64(),
        scenarios: results,
    })
}

fn side_name(forwarding: Forwarding) -> &'static str {
    match forwarding {
        Forwarding::Kernel => "kernel",
        Forwarding::Brindle => "brindle",
    }
}

fn error_slot(result: &mut ScenarioResult, forwarding: Forwarding) -> &mut Option<String> {
    match forwarding {
        Forwarding::Kernel => &mut result.kernel_error,
        Forwarding::Brindle => &mut result.brindle_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab::felix::ACCEPT_MARK;

    const AB: &str = "This is ApacheBench, Version 2.3 <$Revision: 1903618 $>\n\
Server Software:        nginx/1.22.1\nDocument Length:        612 bytes\n\n\
Concurrency Level:      8\nTime taken for tests:   0.123 seconds\n\
Complete requests:      1000\nFailed requests:        2\n   (Connect: 0, Receive: 0, Length: 2, Exceptions: 0)\n\
Non-2xx responses:      3\nTotal transferred:      845000 bytes\n\
Requests per second:    8130.08 [#/sec] (mean)\nTime per request:       0.984 [ms] (mean)\n\n\
Percentage of the requests served within a certain time (ms)\n  50%      1\n  66%      1\n  \
90%      2\n  95%      2\n  98%      3\n  99%      4\n 100%      9 (longest request)\n";

    const WRK: &str = "Running 1s test @ http://192.168.0.2:8080/index.html\n  1 threads and 8 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   150.00us  300.00us   5.00ms   95.00%\n\
    Req/Sec    40.00k     1.00k   42.00k    80.00%\n  Latency Distribution\n     50%  119.00us\n     75%  150.00us\n\
     90%  200.00us\n     99%    3.88ms\n  40333 requests in 1.00s, 32.00MB read\n\
  Socket errors: connect 0, read 1, write 0, timeout 2\n  Non-2xx or 3xx responses: 4\n\
Requests/sec:  40333.12\nTransfer/sec:     32.00MB\n";

    #[test]
    fn ab_output_gives_rate_counts_and_percentiles() {
        let m = parse_ab(AB).unwrap();
        assert_eq!(m["requests_per_s"], 8130.08);
        assert_eq!(m["complete_requests"], 1000.0);
        assert_eq!(m["failed_requests"], 5.0, "failed + non-2xx");
        assert_eq!(m["p50_ms"], 1.0);
        assert_eq!(m["p99_ms"], 4.0);
        let err = parse_ab("ab: invalid URL").unwrap_err().to_string();
        assert!(
            err.contains("ab") && err.contains("Requests per second"),
            "{err}"
        );
    }

    #[test]
    fn wrk_output_gives_rate_requests_errors_and_percentiles_in_ms() {
        let m = parse_wrk(WRK).unwrap();
        assert_eq!(m["requests_per_s"], 40333.12);
        assert_eq!(m["requests"], 40333.0);
        assert_eq!(m["errors"], 7.0, "socket errors + non-2xx/3xx");
        assert!((m["p50_ms"] - 0.119).abs() < 1e-9, "{m:?}");
        assert!((m["p99_ms"] - 3.88).abs() < 1e-9, "{m:?}");
        assert!((wrk_duration_ms("2.01s").unwrap() - 2010.0).abs() < 1e-9);
        assert_eq!(wrk_duration_ms("1.00m"), Some(60_000.0));
        assert_eq!(wrk_duration_ms("3parsecs"), None);
        assert_eq!(wrk_duration_ms(""), None);
        assert!(parse_wrk("unable to connect to 192.168.0.2:8080").is_err());
    }

    #[test]
    fn iperf_tcp_json_gives_received_gbits_and_retransmits() {
        let json = r#"{"start":{},"end":{"sum_sent":{"bits_per_second":5.1e9,"retransmits":3},
            "sum_received":{"bits_per_second":5.0e9}}}"#;
        let m = parse_iperf_tcp(json).unwrap();
        assert_eq!(m["gbit_per_s"], 5.0);
        assert_eq!(m["retransmits"], 3.0);
        let err = parse_iperf_tcp(r#"{"start":{},"end":{},"error":"unable to connect to server"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unable to connect"), "{err}");
        assert!(parse_iperf_tcp("iperf3: error").is_err());
    }

    #[test]
    fn iperf_udp_json_gives_delivered_rate_and_loss() {
        // iperf3 3.12: end.sum holds the sender's rate and the server's loss figures.
        let json = r#"{"end":{"sum":{"bits_per_second":1.0e9,"packets":1000,"lost_packets":100,
            "lost_percent":10.0,"jitter_ms":0.01}}}"#;
        let m = parse_iperf_udp(json).unwrap();
        assert!((m["gbit_per_s"] - 0.9).abs() < 1e-9, "{m:?}");
        assert_eq!(m["lost_percent"], 10.0);
        assert_eq!(m["offered_gbit_per_s"], 1.0);
        assert_eq!(m["jitter_ms"], 0.01);
        // Newer iperf3: the receiver's own sum.
        let json = r#"{"end":{"sum_sent":{"bits_per_second":1.0e9},"sum_received":
            {"bits_per_second":0.8e9,"packets":500,"lost_packets":0}}}"#;
        let m = parse_iperf_udp(json).unwrap();
        assert_eq!(m["gbit_per_s"], 0.8);
        assert_eq!(m["lost_percent"], 0.0);
        assert!(parse_iperf_udp(r#"{"end":{"sum":{"bits_per_second":1.0}}}"#).is_err());
    }

    #[test]
    fn ping_metrics_need_replies() {
        let mut l = crate::stats::Latencies::new();
        assert!(ping_metrics(&l, 10).is_err());
        for us in [10u64, 20, 30, 40] {
            l.record(Duration::from_micros(us));
        }
        let m = ping_metrics(&l, 10).unwrap();
        assert!((m["rtt_p50_us"] - 20.0).abs() < 0.1, "{m:?}");
        assert!((m["rtt_p99_us"] - 40.0).abs() < 0.1, "{m:?}");
        assert_eq!(m["replies"], 4.0);
    }

    #[test]
    fn ratios_are_brindle_over_kernel_where_both_measured() {
        let kernel = Metrics::from([("a".into(), 2.0), ("b".into(), 0.0), ("c".into(), 1.0)]);
        let brindle = Metrics::from([("a".into(), 3.0), ("b".into(), 1.0)]);
        assert_eq!(
            ratios(&kernel, &brindle),
            Metrics::from([("a".into(), 1.5)])
        );
    }

    fn report() -> ScenariosReport {
        let kernel = Metrics::from([("gbit_per_s".into(), 4.0)]);
        let brindle = Metrics::from([("gbit_per_s".into(), 5.0)]);
        ScenariosReport {
            quick: true,
            ncpus: 2,
            node_mode: "interrupt".into(),
            pings: 50,
            iperf_secs: 1,
            udp_offered_mbit: 1000,
            udp_datagram_bytes: UDP_DATAGRAM_BYTES,
            http_requests: 500,
            http_concurrency: 8,
            http_secs: 1,
            http_file_bytes: HTTP_FILE_BYTES,
            kernel_ipip_method: None,
            labs: vec![
                LabRun::new(LabKind::L2, Wiring::BrindleCni),
                LabRun::new(LabKind::Ipip, Wiring::Lab),
            ],
            load_average_before: None,
            load_average_after: None,
            elapsed_secs: 1.0,
            scenarios: vec![
                ScenarioResult {
                    lab: LabKind::L2,
                    path: PathKind::NodeToNode,
                    test: TestKind::IperfTcp,
                    ratios: ratios(&kernel, &brindle),
                    kernel: Some(kernel),
                    brindle: Some(brindle),
                    kernel_error: None,
                    brindle_error: None,
                },
                ScenarioResult {
                    lab: LabKind::Ipip,
                    path: PathKind::PodToPod,
                    test: TestKind::Ping,
                    ratios: Metrics::new(),
                    kernel: None,
                    brindle: None,
                    kernel_error: Some("lab: boom".into()),
                    brindle_error: None,
                },
            ],
        }
    }

    #[test]
    fn json_field_names_are_stable() {
        let json = serde_json::to_value(report()).unwrap();
        let s = &json["scenarios"][0];
        assert_eq!(s["lab"], "l2");
        assert_eq!(s["path"], "node-to-node");
        assert_eq!(s["test"], "iperf-tcp");
        assert_eq!(s["kernel"]["gbit_per_s"], 4.0);
        assert_eq!(s["brindle"]["gbit_per_s"], 5.0);
        assert_eq!(s["ratios"]["gbit_per_s"], 1.25);
        assert_eq!(json["scenarios"][1]["kernel_error"], "lab: boom");
        assert_eq!(json["labs"][0]["lab"], "l2");
        assert_eq!(json["labs"][0]["wiring"], "brindle-cni");
        assert_eq!(json["labs"][0]["ipip_mode"], "Never");
        assert_eq!(json["labs"][1]["wiring"], "lab");
        assert_eq!(json["labs"][1]["ipip_mode"], serde_json::Value::Null);
        assert_eq!(json["labs"][1]["workload_mtu"], 1480);
        for field in [
            "quick",
            "ncpus",
            "node_mode",
            "pings",
            "iperf_secs",
            "udp_offered_mbit",
            "http_requests",
            "http_concurrency",
            "http_secs",
        ] {
            assert!(json.get(field).is_some(), "{field}");
        }
    }

    #[test]
    fn markdown_rows_are_scenario_metric_brindle_kernel_ratio() {
        let md = markdown(&report());
        assert!(
            md.contains("| l2 node-to-node iperf-tcp | gbit_per_s ↑ | 5.000 | 4.000 | 1.25 |"),
            "{md}"
        );
        assert!(
            md.contains("| ipip pod-to-pod ping | rtt_p50_us ↓ | - | - | - |"),
            "{md}"
        );
        assert!(
            md.contains("- ipip pod-to-pod ping (kernel): lab: boom"),
            "{md}"
        );
        assert!(
            md.contains("- l2 (wiring `brindle-cni`): brindle-node in agent mode"),
            "{md}"
        );
        assert!(
            md.contains("- ipip (wiring `lab`): brindle-node in file mode"),
            "{md}"
        );
    }

    #[test]
    fn suites_and_options_are_bounded_and_parsed() {
        let opts = ScenarioOptions::defaults("b".into(), "w".into(), true);
        assert!(opts.validate().is_ok());
        let all = opts.scenarios();
        // one-node: 5 pod-to-pod tests and 3 pod-to-node; l2: 5 pod-to-pod, 3 pod-to-node
        // (to the other node) and 3 node-to-node; ipip: 3.
        assert_eq!(all.len(), 8 + 11 + 3);
        assert_eq!(
            opts.wiring,
            Wiring::BrindleCni,
            "agent mode and brindle-cni by default"
        );
        assert!(all.contains(&Scenario {
            lab: LabKind::L2,
            path: PathKind::NodeToNode,
            test: TestKind::IperfUdp
        }));
        let bad = ScenarioOptions {
            pings: 0,
            ..opts.clone()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("pings"));
        let bad = ScenarioOptions {
            node_mode: "busy".into(),
            ..opts.clone()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("node_mode"));
        assert_eq!(LabKind::parse("ipip"), Ok(LabKind::Ipip));
        assert!(LabKind::parse("l3").unwrap_err().contains("l3"));
        assert_eq!(TestKind::parse("http-wrk"), Ok(TestKind::HttpWrk));
        let only_ping = ScenarioOptions {
            tests: vec![TestKind::Ping],
            ..opts
        };
        assert!(only_ping
            .scenarios()
            .iter()
            .all(|s| s.test == TestKind::Ping));
    }

    #[test]
    fn agent_nodes_run_as_calico_node_on_the_labs_shared_store() {
        let paths = AgentPaths {
            store: "/w/l2-brindle/store.redb".into(),
            control_socket: "/w/l2-brindle/node2.sock".into(),
        };
        let env: BTreeMap<String, String> =
            agent_env(LabKind::Ipip, "sciba1n2", "interrupt", &paths)
                .into_iter()
                .collect();
        for (key, value) in [
            ("NODENAME", "sciba1n2"),
            ("IP_AUTODETECTION_METHOD", "interface=eth0"),
            ("CALICO_IPV4POOL_IPIP", "CrossSubnet"),
            ("FELIX_DEFAULTENDPOINTTOHOSTACTION", "Accept"),
            ("BRINDLE_MODE", "interrupt"),
            ("BRINDLE_CONTROL_SOCKET", "/w/l2-brindle/node2.sock"),
            ("DATASTORE_TYPE", "embedded"),
            ("BRINDLE_EMBEDDED_PATH", "/w/l2-brindle/store.redb"),
        ] {
            assert_eq!(
                env.get(key).map(String::as_str),
                Some(value),
                "{key}: {env:?}"
            );
        }
        let l2: BTreeMap<String, String> = agent_env(LabKind::L2, "n", "poll", &paths)
            .into_iter()
            .collect();
        assert_eq!(l2["CALICO_IPV4POOL_IPIP"], "Never");
        assert_eq!(l2["BRINDLE_MODE"], "poll");
        // brindle-cni reads the same store.
        let cni: Vec<(String, String)> = datastore_env(&paths.store);
        assert!(
            cni.iter().all(|kv| env.get(&kv.0) == Some(&kv.1)),
            "{cni:?}"
        );
    }

    #[test]
    fn every_workload_joins_one_network_with_the_pools_mtu() {
        for (lab, mtu) in [
            (LabKind::OneNode, 1500),
            (LabKind::L2, 1500),
            (LabKind::Ipip, 1480),
        ] {
            let conf: serde_json::Value =
                serde_json::from_str(&scenario_netconf(lab, "scoba1n1")).unwrap();
            assert_eq!(conf["name"], SCENARIO_NETWORK, "{conf}");
            assert_eq!(conf["type"], "brindle-cni", "{conf}");
            assert_eq!(conf["nodename"], "scoba1n1", "{conf}");
            assert_eq!(conf["mtu"], mtu, "{lab:?}: {conf}");
            assert_eq!(conf["ipam"]["type"], "brindle-ipam", "{conf}");
            assert_eq!(
                conf["ipam"]["ipv4_pools"],
                serde_json::json!([]),
                "any pool: {conf}"
            );
        }
        assert_eq!(
            scenario_netconf(LabKind::L2, "a"),
            scenario_netconf(LabKind::OneNode, "a")
        );
        assert_eq!(Wiring::parse("brindle-cni"), Ok(Wiring::BrindleCni));
        assert_eq!(Wiring::parse("lab"), Ok(Wiring::Lab));
        assert!(Wiring::parse("file").unwrap_err().contains("\"file\""));
    }

    #[test]
    fn cni_results_give_the_workload_address() {
        let result = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/x"}],
            "ips":[{"address":"192.168.12.65/32","interface":0}]}"#;
        assert_eq!(
            cni_result_address(result).unwrap(),
            Ipv4Addr::new(192, 168, 12, 65)
        );
        assert!(cni_result_address(r#"{"ips":[]}"#)
            .unwrap_err()
            .to_string()
            .contains("ips[0].address"));
        let err = cni_result_address(r#"{"ips":[{"address":"fd00::1/128"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("fd00::1/128"), "{err}");
        assert!(cni_result_address("CNI error").is_err());
    }

    #[test]
    fn lab_names_fit_and_start_with_sc() {
        let name = lab_name(LabKind::Ipip, Forwarding::Brindle, &lab::run::run_tag(2));
        assert!(name.starts_with("scib"), "{name}");
        assert!(multi_spec(LabKind::Ipip, name).validate().is_ok());
        assert_eq!(multi_spec(LabKind::Ipip, "x".into()).routed_nodes, 1);
    }

    #[test]
    fn routed_nodes_get_a_route_to_the_other_subnet() {
        let spec = multi_spec(LabKind::Ipip, "t".into());
        let toml = subnet_route_toml(&spec, 1, 2);
        assert!(
            toml.contains("prefix = \"10.97.0.0/24\"") && toml.contains("via = \"10.98.0.254\""),
            "{toml}"
        );
        let toml = subnet_route_toml(&spec, 2, 1);
        assert!(
            toml.contains("prefix = \"10.98.0.0/24\"") && toml.contains("via = \"10.97.0.254\""),
            "{toml}"
        );
        assert_eq!(
            subnet_route_toml(&multi_spec(LabKind::L2, "t".into()), 1, 2),
            ""
        );
    }

    #[test]
    fn nginx_runs_in_the_foreground_with_everything_in_its_dir() {
        let conf = nginx_config(Path::new("/tmp/x"), Ipv4Addr::new(192, 168, 0, 2));
        for needle in [
            "daemon off;",
            "pid /tmp/x/nginx.pid;",
            "access_log off;",
            "listen 192.168.0.2:8080;",
            "root /tmp/x/www;",
        ] {
            assert!(conf.contains(needle), "{needle}: {conf}");
        }
    }

    fn interfaces() -> Vec<String> {
        vec!["cali0123456789a".into(), "calib0c1d2e3f40".into()]
    }

    /// The rules of `chain`, in order, as `-A <chain> ...` lines.
    fn chain_rules(rules: &str, chain: &str) -> Vec<String> {
        let prefix = format!("-A {chain} ");
        rules
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }

    #[test]
    fn to_workload_chains_track_then_admit_the_networks_members_else_drop() {
        let rules = kernel_policy_iptables(&interfaces());
        let mark = format!("{ACCEPT_MARK}/{ACCEPT_MARK}");
        for i in interfaces() {
            let tw = chain_rules(&rules, &to_workload_chain(&i));
            assert_eq!(
                tw,
                vec![
                    "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".to_string(),
                    "-m conntrack --ctstate INVALID -j DROP".into(),
                    format!("-j MARK --set-xmark 0x0/{ACCEPT_MARK}"),
                    "-j cali-pri-scnet".into(),
                    format!("-m mark --mark {mark} -j RETURN"),
                    format!("-m comment --comment {NO_PROFILE_DROP_COMMENT} -j DROP"),
                ]
            );
            // Egress is allowed: the same shape through the egress profile.
            let fw = chain_rules(&rules, &from_workload_chain(&i));
            assert_eq!(fw[3], "-j cali-pro-scnet");
            assert!(
                rules.contains(&format!("-A cali-FORWARD -o {i} -j cali-tw-{i}\n")),
                "{rules}"
            );
            assert!(
                rules.contains(&format!("-A cali-FORWARD -i {i} -j cali-fw-{i}\n")),
                "{rules}"
            );
        }
        let pri = chain_rules(&rules, "cali-pri-scnet");
        assert_eq!(pri.len(), 2, "{pri:?}");
        assert!(
            pri[0].starts_with("-m set --match-set cali40s:scnet src "),
            "{pri:?}"
        );
        assert!(
            pri[0].ends_with(&format!("-j MARK --set-xmark {mark}")),
            "{pri:?}"
        );
        assert_eq!(
            chain_rules(&rules, "cali-pro-scnet")[0],
            format!("-j MARK --set-xmark {mark}")
        );
        // Every chain is declared once, and the restore file is one committed table.
        for chain in kernel_policy_chains(&interfaces()) {
            assert_eq!(
                rules.matches(&format!(":{chain} - [0:0]\n")).count(),
                1,
                "{chain}"
            );
        }
        assert!(rules.starts_with("*filter\n") && rules.ends_with("COMMIT\n"));
    }

    #[test]
    fn workload_to_host_is_accepted_after_egress_and_host_to_workload_returns_as_in_felix() {
        let rules = kernel_policy_iptables(&interfaces());
        for builtin in ["FORWARD", "INPUT", "OUTPUT"] {
            assert_eq!(
                chain_rules(&rules, builtin),
                vec![format!("-j cali-{builtin}")]
            );
        }
        assert_eq!(
            chain_rules(&rules, "cali-INPUT"),
            vec!["-i cali+ -j cali-wl-to-host".to_string()]
        );
        let to_host = chain_rules(&rules, "cali-wl-to-host");
        let [i1, i2] = [&interfaces()[0], &interfaces()[1]];
        assert_eq!(to_host[1], format!("-i {i1} -j cali-fw-{i1}"));
        assert_eq!(to_host[2], format!("-i {i2} -j cali-fw-{i2}"));
        assert_eq!(
            to_host.last().map(String::as_str),
            Some(format!("-m comment --comment {TO_HOST_ACCEPT_COMMENT} -j ACCEPT").as_str())
        );
        assert_eq!(
            chain_rules(&rules, "cali-OUTPUT"),
            vec!["-o cali+ -j RETURN".to_string()]
        );
    }

    #[test]
    fn rule_counters_are_read_by_comment() {
        let listing = "Chain cali-pri-scnet (2 references)\n    pkts      bytes target     prot opt in     out     source               destination\n       \
                       7      588 MARK       all  --  *      *       0.0.0.0/0            0.0.0.0/0            match-set cali40s:scnet src /* scnet-ingress-from-members */ MARK or 0x10000\n       \
                       7      588 RETURN     all  --  *      *       0.0.0.0/0            0.0.0.0/0            mark match 0x10000/0x10000\n";
        assert_eq!(packets_of_rule(listing, MEMBER_ALLOW_COMMENT), Some(7));
        assert_eq!(packets_of_rule(listing, NO_PROFILE_DROP_COMMENT), None);
        assert_eq!(
            packets_of_rule(
                "garbage /* scnet-ingress-from-members */",
                MEMBER_ALLOW_COMMENT
            ),
            None
        );
    }

    #[test]
    fn the_kernel_enforces_what_brindles_side_enforces() {
        assert_eq!(
            KernelPolicy::for_wiring(Wiring::BrindleCni),
            KernelPolicy::Iptables
        );
        assert_eq!(KernelPolicy::for_wiring(Wiring::Lab), KernelPolicy::None);
        let run =
            serde_json::to_value(LabRun::new(LabKind::L2, Wiring::BrindleCni)).unwrap_or_default();
        assert_eq!(run["kernel_policy"], "iptables");
    }

    /// Root: installs the rules into a namespace of its own, sees them and the ipset there,
    /// then sees both gone once they are dropped.
    #[test]
    fn kernel_rules_install_into_the_node_and_leave_with_it() {
        let ns = format!("sct{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("{ns}-rules"));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        cmd::run(&["ip", "netns", "add", &ns], cmd::CONFIG_TIMEOUT).expect("netns add");
        let listing = |args: &[&str]| {
            let mut full = vec!["ip", "netns", "exec", ns.as_str()];
            full.extend_from_slice(args);
            String::from_utf8_lossy(
                &cmd::run_unchecked(&full, cmd::CONFIG_TIMEOUT)
                    .expect("runs")
                    .stdout,
            )
            .into_owned()
        };
        let nodes = vec![PolicedNode {
            netns: ns.clone(),
            workloads: vec![
                ("calitest0001".into(), Ipv4Addr::new(192, 168, 7, 1)),
                ("calitest0002".into(), Ipv4Addr::new(192, 168, 7, 2)),
            ],
        }];
        let installed = KernelPolicyRules::install(nodes, &dir);
        let rules = listing(&[KERNEL_IPTABLES.iptables(), "-S"]);
        let members = listing(&["ipset", "list", &ipset_name(SCENARIO_NETWORK)]);
        drop(installed);
        let rules_after = listing(&[KERNEL_IPTABLES.iptables(), "-S"]);
        let sets_after = listing(&["ipset", "list", "-n"]);
        let _ = cmd::run_unchecked(&["ip", "netns", "del", &ns], cmd::CONFIG_TIMEOUT);
        let _ = std::fs::remove_dir_all(&dir);

        for line in [
            "-A FORWARD -j cali-FORWARD",
            "-A cali-OUTPUT -o cali+ -j RETURN",
            "-A cali-tw-calitest0002 -j cali-pri-scnet",
            "-N cali-pri-scnet",
        ] {
            assert!(rules.contains(line), "{line} not in:\n{rules}");
        }
        assert!(
            members.contains("192.168.7.1") && members.contains("192.168.7.2"),
            "{members}"
        );
        assert!(
            !rules_after.contains("cali-"),
            "left behind:\n{rules_after}"
        );
        assert!(!sets_after.contains("cali40s"), "left behind: {sets_after}");
    }
}
