//! The policy benchmark: end-to-end 64-byte UDP between two workloads on one node whose sink
//! is guarded by 1,000 ingress rules, through (a) the kernel with Calico's iptables structure
//! and (b) brindle-node in agent mode with the same rules as a GlobalNetworkPolicy. Both
//! topologies are up at once and measured in interleaved rounds (each side reports medians),
//! because these machines are noisy and only ratios measured side by side mean anything.
//!
//! Conntrack lets every packet after a flow's first skip the rules on both sides, so two kinds
//! of traffic are measured: a few flows (the established fast path) and a new flow per packet
//! (source and destination ports walk a 66-million-pair space: the rule-evaluation path).
//!
//! The generator is this process's own: a thread enters the source workload's namespace, pins
//! itself to [`GENERATOR_CPU`] and sends hand-built IPv4/UDP packets on a raw socket with
//! `sendmmsg`, rewriting the ports per packet (a UDP socket cannot vary its source port).
//! Delivery is counted at the sink workload's `eth0` (packets that reached it, whatever port),
//! so no sink process is needed for a port range. While the kernel side runs, brindle-node is
//! stopped with SIGSTOP so that its worker does not compete for the cores.

mod flood;
mod report;
mod sweep;

pub use flood::*;
pub use report::*;
pub use sweep::*;

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::rounds::{median, ratio};
use crate::stats::{self, CpuTimes};
use lab::cmd;
use lab::cni::{netconf, CniPlugin};
use lab::felix::{self, ipset_name, ChainEnd, Dispatch, Iptables};
use lab::node::{NodeError, NodeLaunch, NodeProcess};
use lab::run::LoadAverage;
use lab::{Forwarding, Lab, LabSpec, MultiLab, MultiLabSpec};

/// The core the generator thread is pinned to.
pub const GENERATOR_CPU: usize = 0;
/// The core brindle-node's worker is pinned to.
pub const NODE_CPU: usize = 1;
/// Destination ports the allowing rule admits, from the base port on.
pub const PORT_SPAN: u16 = 1024;
/// Source ports the generator walks (1024..=65535).
pub const SOURCE_PORTS: u32 = 65535 - 1024 + 1;
/// Flows of the "established" traffic kind.
pub const FEW_FLOWS: u64 = 16;
/// Network (and profile label) of the generating workload, matched by the allowing rule.
pub const SOURCE_NETWORK: &str = "polsrc";
/// Network (and profile label) of the sink workload, selected by the policy.
pub const SINK_NETWORK: &str = "polsink";
/// A label nobody carries: the selector of a third of the non-matching rules.
pub const OTHER_LABEL: &str = "polother";
/// Comment on the kernel side's end-of-tier drop, whose counter proves denials.
const END_OF_TIER: &str = "polbench-end-of-tier-drop";
const POLICY_NAME: &str = "polbench-1000";
/// Probes sent to prove the policy in force (allowed and denied).
const PROBE_PACKETS: u64 = 200;

/// What to run.
#[derive(Clone, Debug)]
pub struct PolicyOptions {
    /// Directory holding brindle-node, brindle-cni, brindle-ipam and brindlectl.
    pub bin_dir: PathBuf,
    /// Seconds of traffic per side, kind and round.
    pub duration: Duration,
    pub rounds: usize,
    pub frame_size: usize,
    pub batch: usize,
    /// First destination port the policy allows; the allowed range is `port..port+1024`.
    pub port: u16,
    /// Rules in the policy, the allowing one last.
    pub rules: usize,
    /// brindle-node's worker mode: poll (busy, pinned to [`NODE_CPU`]) or interrupt.
    pub node_mode: String,
    /// Scratch directory: datastore, node log, iptables and policy files.
    pub work_dir: PathBuf,
    /// The kernel side's iptables backend.
    pub iptables: IptablesBackend,
}

/// Which iptables the kernel side programs (Felix's `iptablesBackend`: Legacy or NFT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IptablesBackend {
    Legacy,
    Nft,
}

impl IptablesBackend {
    pub fn iptables(self) -> &'static str {
        match self {
            IptablesBackend::Legacy => "iptables-legacy",
            IptablesBackend::Nft => "iptables-nft",
        }
    }

    pub fn restore(self) -> &'static str {
        match self {
            IptablesBackend::Legacy => "iptables-legacy-restore",
            IptablesBackend::Nft => "iptables-nft-restore",
        }
    }
}

impl std::str::FromStr for IptablesBackend {
    type Err = PolicyBenchError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "legacy" => Ok(IptablesBackend::Legacy),
            "nft" => Ok(IptablesBackend::Nft),
            _ => Err(PolicyBenchError::Invalid {
                field: "iptables",
                value: s.into(),
                reason: "expected legacy or nft".into(),
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyBenchError {
    #[error(transparent)]
    Lab(#[from] lab::LabError),
    #[error(transparent)]
    Command(#[from] cmd::CmdError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {field} {value}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Run(String),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PolicyBenchError {
    let what = what.into();
    move |source| PolicyBenchError::Io { what, source }
}

// ---------------------------------------------------------------------------------------------
// The rules, as data, as a Calico GlobalNetworkPolicy and as Calico-style iptables.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RuleProtocol {
    Tcp,
    Udp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum RuleSource {
    Any,
    Net {
        addr: Ipv4Addr,
        prefix_len: u8,
    },
    /// `has(<label>)`; Calico renders it as an ipset of the matching endpoints' addresses.
    HasLabel(&'static str),
}

/// One ingress Allow rule: protocol, source, destination port range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BenchRule {
    pub protocol: RuleProtocol,
    pub source: RuleSource,
    pub ports: (u16, u16),
}

/// A packet as the rules see it.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub protocol: RuleProtocol,
    pub src: Ipv4Addr,
    /// Whether the source carries [`SOURCE_NETWORK`]'s label.
    pub src_in_source_network: bool,
    pub dst_port: u16,
}

impl BenchRule {
    /// Whether this rule admits `probe` (the semantics both renderings implement).
    pub fn admits(&self, probe: &Probe) -> bool {
        let source = match &self.source {
            RuleSource::Any => true,
            RuleSource::Net { addr, prefix_len } => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(*prefix_len))
                    .unwrap_or(0);
                u32::from(probe.src) & mask == u32::from(*addr) & mask
            }
            RuleSource::HasLabel(label) => *label == SOURCE_NETWORK && probe.src_in_source_network,
        };
        self.protocol == probe.protocol
            && source
            && (self.ports.0..=self.ports.1).contains(&probe.dst_port)
    }
}

/// The destination ports the benchmark uses: the allowed range, then one denied port.
pub fn reserved_ports(base_port: u16) -> Result<(u16, u16), PolicyBenchError> {
    if base_port < 1024 || u32::from(base_port) + u32::from(PORT_SPAN) > 65535 {
        return Err(PolicyBenchError::Invalid {
            field: "port",
            value: base_port.to_string(),
            reason: format!("must be between 1024 and {}", 65535 - PORT_SPAN),
        });
    }
    Ok((base_port, base_port + PORT_SPAN))
}

/// The denied probe's port: just past the allowed range.
pub fn denied_port(base_port: u16) -> u16 {
    base_port.saturating_add(PORT_SPAN)
}

/// `count` rules: `count - 1` that admit none of the benchmark's packets (TCP and UDP, single
/// ports and ranges, from /24s of 10.0.0.0/8, from a selector nobody matches, or from anyone),
/// then the allowing one: UDP from [`SOURCE_NETWORK`] to `base_port..base_port+1024`.
pub fn bench_rules(count: usize, base_port: u16) -> Result<Vec<BenchRule>, PolicyBenchError> {
    if !(1..=10_000).contains(&count) {
        return Err(PolicyBenchError::Invalid {
            field: "rules",
            value: count.to_string(),
            reason: "must be between 1 and 10000".into(),
        });
    }
    let (low, high) = reserved_ports(base_port)?;
    let mut rules = Vec::with_capacity(count);
    for i in 0..count - 1 {
        let protocol = if i % 2 == 0 {
            RuleProtocol::Tcp
        } else {
            RuleProtocol::Udp
        };
        let source = match i % 3 {
            0 => RuleSource::Net {
                addr: Ipv4Addr::new(10, (i / 256) as u8, (i % 256) as u8, 0),
                prefix_len: 24,
            },
            1 => RuleSource::HasLabel(OTHER_LABEL),
            _ => RuleSource::Any,
        };
        // Ports 1024.. (singles) and 30000.. (ranges of 8 every fifth rule), moved past the
        // reserved window when they would touch it.
        let width: u16 = if i % 5 == 4 { 7 } else { 0 };
        let mut start = if width > 0 {
            30_000 + ((i as u32 * 16) % 30_000) as u16
        } else {
            1024 + (i as u32 % 20_000) as u16
        };
        if start <= high && start + width >= low {
            start = if u32::from(high) + 1 + u32::from(width) <= 65535 {
                high + 1
            } else {
                low - 1 - width
            };
        }
        rules.push(BenchRule {
            protocol,
            source,
            ports: (start, start + width),
        });
    }
    rules.push(BenchRule {
        protocol: RuleProtocol::Udp,
        source: RuleSource::HasLabel(SOURCE_NETWORK),
        ports: (low, high - 1),
    });
    Ok(rules)
}

fn protocol_name(p: RuleProtocol) -> &'static str {
    match p {
        RuleProtocol::Tcp => "TCP",
        RuleProtocol::Udp => "UDP",
    }
}

/// The rules as a GlobalNetworkPolicy on the sink (`has(polsink)`), for `brindlectl apply`.
pub fn policy_yaml(rules: &[BenchRule]) -> String {
    let mut y = format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: \
         {POLICY_NAME}\nspec:\n  selector: has({SINK_NETWORK})\n  types: [Ingress]\n  ingress:\n"
    );
    for rule in rules {
        let _ = writeln!(
            y,
            "  - action: Allow\n    protocol: {}",
            protocol_name(rule.protocol)
        );
        match &rule.source {
            RuleSource::Any => {}
            RuleSource::Net { addr, prefix_len } => {
                let _ = writeln!(y, "    source:\n      nets: [{addr}/{prefix_len}]");
            }
            RuleSource::HasLabel(label) => {
                let _ = writeln!(y, "    source:\n      selector: has({label})");
            }
        }
        let ports = if rule.ports.0 == rule.ports.1 {
            rule.ports.0.to_string()
        } else {
            format!("\"{}:{}\"", rule.ports.0, rule.ports.1)
        };
        let _ = writeln!(y, "    destination:\n      ports: [{ports}]");
    }
    y
}

/// Calico-style iptables for `iptables-restore --noflush`: FORWARD -> cali-FORWARD, which
/// clears the accept mark and dispatches by interface to the from-workload chain of the source
/// (conntrack first, then its profile: egress allowed) and the to-workload chain of the sink
/// (conntrack ESTABLISHED,RELATED accept first, INVALID drop, then the policy chain, then the
/// end-of-tier drop). In the policy chain each Allow rule sets the accept mark and the next
/// rule returns on it, as Felix renders them.
pub fn iptables_rules(rules: &[BenchRule], source_if: &str, sink_if: &str) -> String {
    let fw = felix::from_workload_chain(source_if);
    let tw = felix::to_workload_chain(sink_if);
    let pi = felix::policy_chain(POLICY_NAME);
    let pro = felix::profile_chain("pro", SOURCE_NETWORK);
    let mut t = Iptables::new(["cali-FORWARD", &fw, &tw, &pi, &pro]);
    t.hook("FORWARD");
    t.forward(&[Dispatch::From(source_if), Dispatch::To(sink_if)]);
    t.endpoint_chain(&fw, &pro, ChainEnd::default());
    t.allow(&pro, "");
    let end_of_tier = ChainEnd {
        clear_mark: true,
        drop_comment: Some(END_OF_TIER),
    };
    t.endpoint_chain(&tw, &pi, end_of_tier);
    for rule in rules {
        let proto = match rule.protocol {
            RuleProtocol::Tcp => "tcp",
            RuleProtocol::Udp => "udp",
        };
        let source = match &rule.source {
            RuleSource::Any => String::new(),
            RuleSource::Net { addr, prefix_len } => format!(" -s {addr}/{prefix_len}"),
            RuleSource::HasLabel(label) => {
                format!(" -m set --match-set {} src", ipset_name(label))
            }
        };
        let ports = if rule.ports.0 == rule.ports.1 {
            format!("--dport {}", rule.ports.0)
        } else {
            format!("-m multiport --dports {}:{}", rule.ports.0, rule.ports.1)
        };
        t.allow(&pi, &format!("-p {proto} -m {proto}{source} {ports}"));
    }
    t.render()
}

// ---------------------------------------------------------------------------------------------
// The two sides.

/// Where a side's traffic goes: the two workloads' namespaces and addresses.
#[derive(Clone, Debug)]
struct Ends {
    source_ns: String,
    source_ip: Ipv4Addr,
    sink_ns: String,
    sink_ip: Ipv4Addr,
}

/// The kernel side: a Calico kernel-style lab with the rules as iptables and ipsets.
struct KernelSide {
    lab: Lab,
    ends: Ends,
    tw_chain: String,
    backend: IptablesBackend,
}

impl KernelSide {
    fn up(
        name: &str,
        rules: &[BenchRule],
        work_dir: &Path,
        backend: IptablesBackend,
    ) -> Result<KernelSide, PolicyBenchError> {
        let mut spec = LabSpec::new(name, 2);
        spec.forwarding = Forwarding::Kernel;
        let lab = Lab::up(&spec)?;
        let (w1, w2) = match (lab.workload(1), lab.workload(2)) {
            (Some(a), Some(b)) => (a.clone(), b.clone()),
            _ => {
                return Err(PolicyBenchError::Run(
                    "the kernel lab needs two workloads".into(),
                ))
            }
        };
        let node = lab.node_netns();
        let t = Duration::from_secs(10);
        for label in [SOURCE_NETWORK, OTHER_LABEL] {
            cmd::run(
                &[
                    "ip",
                    "netns",
                    "exec",
                    &node,
                    "ipset",
                    "create",
                    &ipset_name(label),
                    "hash:net",
                ],
                t,
            )?;
        }
        let source_ip = w1.ip.to_string();
        cmd::run(
            &[
                "ip",
                "netns",
                "exec",
                &node,
                "ipset",
                "add",
                &ipset_name(SOURCE_NETWORK),
                &source_ip,
            ],
            t,
        )?;
        let file = work_dir.join(format!("{name}.iptables"));
        std::fs::write(
            &file,
            iptables_rules(rules, &w1.host_interface, &w2.host_interface),
        )
        .map_err(io_err(format!("writing {}", file.display())))?;
        let path = file.display().to_string();
        cmd::run(
            &[
                "ip",
                "netns",
                "exec",
                &node,
                backend.restore(),
                "--noflush",
                &path,
            ],
            Duration::from_secs(60),
        )?;
        Ok(KernelSide {
            backend,
            tw_chain: format!("cali-tw-{}", w2.host_interface),
            ends: Ends {
                source_ns: w1.netns,
                source_ip: w1.ip,
                sink_ns: w2.netns,
                sink_ip: w2.ip,
            },
            lab,
        })
    }

    /// Packets the end-of-tier drop rule has dropped.
    fn denied(&self) -> Result<u64, PolicyBenchError> {
        let out = cmd::run(
            &[
                "ip",
                "netns",
                "exec",
                &self.lab.node_netns(),
                self.backend.iptables(),
                "-L",
                &self.tw_chain,
                "-v",
                "-x",
                "-n",
            ],
            Duration::from_secs(10),
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find(|l| l.contains(END_OF_TIER))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                PolicyBenchError::Run(format!(
                    "no end-of-tier counter in {}:\n{text}",
                    self.tw_chain
                ))
            })
    }

    fn conntrack_max(&self) -> Option<u64> {
        let out = cmd::run(
            &[
                "ip",
                "netns",
                "exec",
                &self.lab.node_netns(),
                "cat",
                "/proc/sys/net/netfilter/nf_conntrack_max",
            ],
            Duration::from_secs(5),
        )
        .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }
}

/// The brindle side: one agent-mode node on an embedded store, two workloads plugged by
/// brindle-cni, the policy applied with brindlectl. Everything is removed on drop.
struct BrindleSide {
    lab: MultiLab,
    node: Option<NodeProcess>,
    containers: Vec<String>,
    dir: PathBuf,
    bin_dir: PathBuf,
    ends: Option<Ends>,
}

const NODE_STOP_GRACE: Duration = Duration::from_secs(5);

impl BrindleSide {
    fn up(
        name: &str,
        opts: &PolicyOptions,
        rules: &[BenchRule],
    ) -> Result<BrindleSide, PolicyBenchError> {
        for bin in ["brindle-node", "brindle-cni", "brindle-ipam", "brindlectl"] {
            if !opts.bin_dir.join(bin).is_file() {
                return Err(PolicyBenchError::Run(format!(
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
            return Err(PolicyBenchError::Run(format!(
                "brindlectl apply: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(side)
    }

    fn node_netns(&self) -> String {
        self.lab.node(1).map(|n| n.node_netns()).unwrap_or_default()
    }

    fn node_name(&self) -> String {
        format!("{}n1", self.lab.spec().name)
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("node.sock")
    }

    fn datastore_env(&self) -> Vec<(String, String)> {
        vec![
            ("DATASTORE_TYPE".into(), "embedded".into()),
            (
                "BRINDLE_EMBEDDED_PATH".into(),
                self.dir.join("store.redb").display().to_string(),
            ),
        ]
    }

    fn start_node(&mut self, mode: &str) -> Result<(), PolicyBenchError> {
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

    fn node(&mut self) -> Result<&mut NodeProcess, PolicyBenchError> {
        self.node.as_mut().ok_or_else(not_running)
    }

    fn policy_denied(&self) -> Result<u64, PolicyBenchError> {
        let stats = self.node.as_ref().ok_or_else(not_running)?.stats()?;
        stats["fastpath"]["drops"]["policy_denied"]
            .as_u64()
            .ok_or_else(|| PolicyBenchError::Run(format!("no policy_denied counter in {stats}")))
    }

    /// A container namespace plugged in with brindle-cni ADD on `network`.
    fn add_container(&mut self, network: &str) -> Result<(String, Ipv4Addr), PolicyBenchError> {
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
            _ => Err(PolicyBenchError::Run(format!(
                "CNI ADD for {ns} failed: {}\n{}",
                out.stdout, out.stderr
            ))),
        }
    }

    /// SIGSTOP (`pause`) or SIGCONT: a stopped node does not compete for the cores.
    fn pause(&self, pause: bool) {
        if let Some(node) = &self.node {
            node.signal(if pause { libc::SIGSTOP } else { libc::SIGCONT });
        }
    }
}

fn not_running() -> PolicyBenchError {
    PolicyBenchError::Run("brindle-node is not running".into())
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

fn probe(ends: &Ends, port: u16, frame_size: usize) -> Flood {
    Flood {
        src: ends.source_ip,
        dst: ends.sink_ip,
        base_port: port,
        flows: 1,
        frame_size,
        batch: 16,
        duration: Duration::from_secs(2),
        max_packets: PROBE_PACKETS,
        reverse: false,
    }
}

/// Sends allowed then denied probes; `denied_counter` reads the side's denial counter.
fn prove(
    ends: &Ends,
    opts: &PolicyOptions,
    mut denied_counter: impl FnMut() -> Result<u64, PolicyBenchError>,
) -> Result<EnforcementProof, PolicyBenchError> {
    let settle = || std::thread::sleep(Duration::from_millis(300));
    let mut proof = EnforcementProof::default();
    let before = rx_packets(&ends.sink_ns)?;
    proof.allowed_sent = flood_from(
        &ends.source_ns,
        probe(ends, opts.port + PORT_SPAN - 1, opts.frame_size),
    )?
    .sent;
    settle();
    proof.allowed_delivered = rx_packets(&ends.sink_ns)?.saturating_sub(before);
    let denied_before = denied_counter()?;
    let before = rx_packets(&ends.sink_ns)?;
    proof.denied_sent = flood_from(
        &ends.source_ns,
        probe(ends, denied_port(opts.port), opts.frame_size),
    )?
    .sent;
    settle();
    proof.denied_delivered = rx_packets(&ends.sink_ns)?.saturating_sub(before);
    proof.denied_counted = denied_counter()?.saturating_sub(denied_before);
    Ok(proof)
}

/// Proves until it holds or `within` passes (brindle applies the policy asynchronously; until
/// then its sink's profile admits nothing from the source network, so allowed probes fail).
fn prove_within(
    ends: &Ends,
    opts: &PolicyOptions,
    within: Duration,
    mut denied_counter: impl FnMut() -> Result<u64, PolicyBenchError>,
) -> Result<EnforcementProof, PolicyBenchError> {
    let deadline = Instant::now() + within;
    loop {
        let proof = prove(ends, opts, &mut denied_counter)?;
        if proof.holds() {
            return Ok(proof);
        }
        if Instant::now() >= deadline || cmd::interrupted() {
            return Err(PolicyBenchError::Run(format!(
                "the policy is not in force: {proof:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Opens each of `flows` flows in both directions: one packet from the source, then one reply
/// from the sink. Linux conntrack calls a UDP flow ESTABLISHED only once it has seen a reply;
/// until then every packet of a one-way flow is NEW and walks the rules (brindle's flow table
/// lets a one-way flow's later packets through either way; the replies cost it nothing more).
fn open_flows(ends: &Ends, opts: &PolicyOptions, flows: u64) -> Result<(), PolicyBenchError> {
    let flood = Flood {
        src: ends.source_ip,
        dst: ends.sink_ip,
        base_port: opts.port,
        flows,
        frame_size: opts.frame_size,
        batch: 16,
        duration: Duration::from_secs(2),
        max_packets: flows,
        reverse: false,
    };
    flood_from(&ends.source_ns, flood)?;
    std::thread::sleep(Duration::from_millis(50));
    let reply = Flood {
        src: ends.sink_ip,
        dst: ends.source_ip,
        reverse: true,
        ..flood
    };
    flood_from(&ends.sink_ns, reply)?;
    std::thread::sleep(Duration::from_millis(50));
    Ok(())
}

/// One timed run of `flows` flows from the source to the sink.
fn measure(ends: &Ends, opts: &PolicyOptions, flows: u64) -> Result<Measured, PolicyBenchError> {
    let before = rx_packets(&ends.sink_ns)?;
    let cpu_before = CpuTimes::read().map_err(io_err("reading /proc/stat"))?;
    let sent = flood_from(
        &ends.source_ns,
        Flood {
            src: ends.source_ip,
            dst: ends.sink_ip,
            base_port: opts.port,
            flows,
            frame_size: opts.frame_size,
            batch: opts.batch,
            duration: opts.duration,
            max_packets: u64::MAX,
            reverse: false,
        },
    )?;
    let cpu_after = CpuTimes::read().map_err(io_err("reading /proc/stat"))?;
    // Packets still in flight (queues, rings) arrive within a moment.
    std::thread::sleep(Duration::from_millis(300));
    let delivered = rx_packets(&ends.sink_ns)?.saturating_sub(before);
    let secs = if sent.secs > 0.0 { sent.secs } else { f64::NAN };
    Ok(Measured {
        pps_offered: sent.sent as f64 / secs,
        pps_delivered: delivered as f64 / secs,
        busy_cores: cpu_before.busy_cores_until(&cpu_after, stats::online_cpus()),
        sent: sent.sent,
        delivered,
        secs: sent.secs,
        refused_batches: sent.refused_batches,
    })
}

/// Validates the options that do not need the machine.
pub fn validate(opts: &PolicyOptions) -> Result<(), PolicyBenchError> {
    let invalid = |field, value: String, reason: &str| {
        Err(PolicyBenchError::Invalid {
            field,
            value,
            reason: reason.into(),
        })
    };
    if !(1..=20).contains(&opts.rounds) {
        return invalid(
            "rounds",
            opts.rounds.to_string(),
            "must be between 1 and 20",
        );
    }
    if opts.duration.is_zero() || opts.duration > Duration::from_secs(600) {
        return invalid(
            "duration",
            format!("{:?}", opts.duration),
            "must be between 0 and 600 s",
        );
    }
    if !(1..=lab::udp::MAX_BATCH).contains(&opts.batch) {
        return invalid(
            "batch",
            opts.batch.to_string(),
            "must be between 1 and 1024",
        );
    }
    if opts.node_mode != "poll" && opts.node_mode != "interrupt" {
        return invalid(
            "node-mode",
            opts.node_mode.clone(),
            "expected poll or interrupt",
        );
    }
    lab::udp::payload_len(opts.frame_size).map_err(|e| PolicyBenchError::Run(e.to_string()))?;
    bench_rules(opts.rules, opts.port).map(|_| ())
}

/// Brings both sides up, proves the policy in force on each, then runs the interleaved rounds:
/// per round and traffic kind, the kernel (brindle-node stopped) then brindle.
pub fn run(opts: &PolicyOptions) -> Result<PolicyReport, PolicyBenchError> {
    validate(opts)?;
    let rules = bench_rules(opts.rules, opts.port)?;
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    let loadavg_before = LoadAverage::read().map(|l| l.line).unwrap_or_default();
    let tag = lab::run::pid_tag(5);
    let brindle = BrindleSide::up(&format!("pb{tag}"), opts, &rules)?;
    let kernel = KernelSide::up(&format!("pk{tag}"), &rules, &opts.work_dir, opts.iptables)?;
    let brindle_ends = brindle
        .ends
        .clone()
        .ok_or_else(|| PolicyBenchError::Run("no brindle workloads".into()))?;

    brindle.pause(true);
    let kernel_proof = prove_within(&kernel.ends, opts, Duration::from_secs(5), || {
        kernel.denied()
    });
    brindle.pause(false);
    let kernel_proof = kernel_proof?;
    let brindle_proof = prove_within(&brindle_ends, opts, Duration::from_secs(30), || {
        brindle.policy_denied()
    })?;

    let kinds = [("established", FEW_FLOWS), ("new_flows", all_flows())];
    let mut kernel_runs: Vec<Vec<Measured>> = vec![Vec::new(); kinds.len()];
    let mut brindle_runs: Vec<Vec<Measured>> = vec![Vec::new(); kinds.len()];
    for round in 1..=opts.rounds {
        for (i, (kind, flows)) in kinds.iter().enumerate() {
            if cmd::interrupted() {
                return Err(PolicyBenchError::Run("interrupted by a signal".into()));
            }
            let established = *flows == FEW_FLOWS;
            brindle.pause(true);
            let k = (if established {
                open_flows(&kernel.ends, opts, *flows)
            } else {
                Ok(())
            })
            .and_then(|()| measure(&kernel.ends, opts, *flows));
            brindle.pause(false);
            let k = k?;
            // The node gets a moment to notice it ran again.
            std::thread::sleep(Duration::from_millis(200));
            if established {
                open_flows(&brindle_ends, opts, *flows)?;
            }
            let b = measure(&brindle_ends, opts, *flows)?;
            eprintln!(
                "round {round}/{} {kind}: kernel {:.0} pps delivered, brindle {:.0}",
                opts.rounds, k.pps_delivered, b.pps_delivered
            );
            kernel_runs[i].push(k);
            brindle_runs[i].push(b);
        }
    }
    let kernel_conntrack_max = kernel.conntrack_max();
    let kinds = kinds
        .iter()
        .zip(kernel_runs.into_iter().zip(brindle_runs))
        .map(|((kind, flows), (k, b))| KindResult::new(kind, *flows, k, b))
        .collect();
    drop(kernel);
    drop(brindle);
    Ok(PolicyReport {
        rules: opts.rules,
        frame_size: opts.frame_size,
        duration_secs: opts.duration.as_secs_f64(),
        rounds: opts.rounds,
        node_mode: opts.node_mode.clone(),
        iptables: opts.iptables,
        generator_cpu: GENERATOR_CPU,
        node_cpu: NODE_CPU,
        ncpus: stats::online_cpus(),
        loadavg_before,
        loadavg_after: LoadAverage::read().map(|l| l.line).unwrap_or_default(),
        kernel_conntrack_max,
        kernel_proof,
        brindle_proof,
        kinds,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn bench_probe(port: u16) -> Probe {
        Probe {
            protocol: RuleProtocol::Udp,
            src: Ipv4Addr::new(192, 168, 0, 1),
            src_in_source_network: true,
            dst_port: port,
        }
    }

    #[test]
    fn only_the_last_rule_admits_the_benchmark_traffic() {
        for base in [1024, 1500, 5201, 29_990, 30_000, 64_000, 65535 - PORT_SPAN] {
            let rules = bench_rules(1000, base).unwrap();
            assert_eq!(rules.len(), 1000);
            let (allow, others) = rules.split_last().unwrap();
            for port in base..=base + PORT_SPAN {
                let probe = bench_probe(port);
                let admitted: Vec<_> = others.iter().filter(|r| r.admits(&probe)).collect();
                assert!(admitted.is_empty(), "base {base} port {port}: {admitted:?}");
                // The allowed range, and the denied port just past it.
                assert_eq!(
                    allow.admits(&probe),
                    port < base + PORT_SPAN,
                    "base {base} port {port}"
                );
            }
            // Not from outside the source network, not TCP.
            let mut p = bench_probe(base);
            p.src_in_source_network = false;
            assert!(!allow.admits(&p));
            p = bench_probe(base);
            p.protocol = RuleProtocol::Tcp;
            assert!(!allow.admits(&p));
        }
    }

    #[test]
    fn the_non_matching_rules_vary_protocol_source_and_ports() {
        let rules = bench_rules(1000, 5201).unwrap();
        let others = &rules[..999];
        assert!(others.iter().any(|r| r.protocol == RuleProtocol::Tcp));
        assert!(others.iter().any(|r| r.protocol == RuleProtocol::Udp));
        assert!(others
            .iter()
            .any(|r| matches!(r.source, RuleSource::Net { .. })));
        assert!(others
            .iter()
            .any(|r| r.source == RuleSource::HasLabel(OTHER_LABEL)));
        assert!(others.iter().any(|r| r.source == RuleSource::Any));
        assert!(others.iter().any(|r| r.ports.0 < r.ports.1));
        // Each would admit some packet: a rule that could never match proves nothing.
        let r = &others[1];
        let probe = Probe {
            protocol: r.protocol,
            src: Ipv4Addr::new(10, 0, 0, 1),
            src_in_source_network: false,
            dst_port: r.ports.0,
        };
        assert_eq!(r.source, RuleSource::HasLabel(OTHER_LABEL));
        assert!(!r.admits(&probe), "nobody carries {OTHER_LABEL}");
        let r = &others[0];
        assert!(
            r.admits(&Probe {
                protocol: RuleProtocol::Tcp,
                dst_port: r.ports.0,
                ..probe
            }),
            "{r:?}"
        );
    }

    #[test]
    fn bad_counts_and_ports_name_the_field() {
        let e = bench_rules(0, 5201).unwrap_err().to_string();
        assert!(e.contains("rules 0"), "{e}");
        let e = bench_rules(10, 80).unwrap_err().to_string();
        assert!(e.contains("port 80"), "{e}");
        let e = bench_rules(10, 65000).unwrap_err().to_string();
        assert!(e.contains("port 65000"), "{e}");
    }

    #[test]
    fn the_policy_yaml_has_every_rule_in_order() {
        let rules = bench_rules(1000, 5201).unwrap();
        let y = policy_yaml(&rules);
        assert_eq!(y.matches("- action: Allow").count(), 1000);
        assert!(y.contains("kind: GlobalNetworkPolicy"));
        assert!(y.contains("  selector: has(polsink)\n"));
        assert!(y.contains("nets: [10.0.0.0/24]"));
        assert!(y.contains("selector: has(polother)"));
        assert!(y.ends_with(
            "  - action: Allow\n    protocol: UDP\n    source:\n      selector: has(polsrc)\n    \
             destination:\n      ports: [\"5201:6224\"]\n"
        ), "{}", &y[y.len() - 200..]);
    }

    #[test]
    fn the_iptables_follow_calicos_structure() {
        let rules = bench_rules(1000, 5201).unwrap();
        let t = iptables_rules(&rules, "cali1", "cali2");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.first(), Some(&"*filter"));
        assert_eq!(lines.last(), Some(&"COMMIT"));
        // The to-workload chain: conntrack first, then the policy, then the end-of-tier drop.
        let tw: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("-A cali-tw-cali2 "))
            .collect();
        assert!(
            tw[0].contains("--ctstate RELATED,ESTABLISHED -j ACCEPT"),
            "{tw:?}"
        );
        assert!(
            tw.iter()
                .position(|l| l.ends_with("-j cali-pi-polbench-1000"))
                > Some(0)
        );
        assert!(
            tw.last().unwrap().ends_with("-j DROP") && tw.last().unwrap().contains(END_OF_TIER)
        );
        // Two lines per rule (set the accept mark, return on it), the allowing one last.
        let pi: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("-A cali-pi-"))
            .collect();
        assert_eq!(pi.len(), 2000);
        assert_eq!(
            pi[1998],
            "-A cali-pi-polbench-1000 -p udp -m udp -m set --match-set cali40s:polsrc src -m multiport \
             --dports 5201:6224 -j MARK --set-xmark 0x10000/0x10000"
        );
        assert_eq!(
            pi[1999],
            "-A cali-pi-polbench-1000 -m mark --mark 0x10000/0x10000 -j RETURN"
        );
        assert!(
            pi[0].contains("-p tcp -m tcp -s 10.0.0.0/24 --dport 1024 "),
            "{}",
            pi[0]
        );
        assert!(pi
            .iter()
            .any(|l| l.contains("--match-set cali40s:polother src")));
        assert!(lines.contains(&"-A FORWARD -j cali-FORWARD"));
    }

    #[test]
    fn flows_walk_source_ports_then_destination_ports() {
        assert_eq!(flow_ports(0, FEW_FLOWS, 5201), (1024, 5201));
        assert_eq!(flow_ports(15, FEW_FLOWS, 5201), (1039, 5201));
        assert_eq!(
            flow_ports(16, FEW_FLOWS, 5201),
            (1024, 5201),
            "few flows repeat"
        );
        let n = u64::from(SOURCE_PORTS);
        assert_eq!(flow_ports(n - 1, all_flows(), 5201), (65535, 5201));
        assert_eq!(flow_ports(n, all_flows(), 5201), (1024, 5202));
        assert_eq!(
            flow_ports(all_flows() - 1, all_flows(), 5201),
            (65535, 5201 + PORT_SPAN - 1)
        );
        assert_eq!(flow_ports(all_flows(), all_flows(), 5201), (1024, 5201));
        assert_eq!(
            flow_ports(7, 0, 5201),
            (1024, 5201),
            "zero flows is one flow, no panic"
        );
    }

    #[test]
    fn datagrams_carry_lengths_addresses_and_ports() {
        let mut d = build_datagram(
            Ipv4Addr::new(192, 168, 0, 1),
            Ipv4Addr::new(192, 168, 0, 2),
            18,
        );
        set_ports(&mut d, (1024, 5201));
        assert_eq!(d.len(), 46);
        assert_eq!(d[0], 0x45);
        assert_eq!(u16::from_be_bytes([d[2], d[3]]), 46);
        assert_eq!(d[9], 17);
        assert_eq!(&d[12..20], &[192, 168, 0, 1, 192, 168, 0, 2]);
        assert_eq!(u16::from_be_bytes([d[20], d[21]]), 1024);
        assert_eq!(u16::from_be_bytes([d[22], d[23]]), 5201);
        assert_eq!(u16::from_be_bytes([d[24], d[25]]), 26);
        assert_eq!(&d[26..28], &[0, 0], "no UDP checksum");
    }

    fn measured(delivered: f64) -> Measured {
        Measured {
            pps_offered: delivered * 2.0,
            pps_delivered: delivered,
            ..Measured::default()
        }
    }

    #[test]
    fn ratios_are_brindle_medians_over_kernel_medians() {
        let k = KindResult::new(
            "new_flows",
            7,
            vec![measured(100.0), measured(300.0), measured(200.0)],
            vec![measured(1000.0), measured(900.0), measured(5000.0)],
        );
        assert_eq!(k.kernel.pps_delivered, Some(200.0));
        assert_eq!(k.brindle.pps_delivered, Some(1000.0));
        assert_eq!(k.ratio_delivered, Some(5.0));
        assert_eq!(k.ratio_offered, Some(5.0));
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(Some(f64::NAN), Some(1.0)), None);
        assert_eq!(ratio(None, Some(1.0)), None);
        let k = KindResult::new("established", 16, vec![], vec![measured(1.0)]);
        assert_eq!(k.ratio_delivered, None);
    }

    #[test]
    fn a_proof_holds_only_when_allowed_arrive_and_denied_are_counted_and_stopped() {
        let good = EnforcementProof {
            allowed_sent: 200,
            allowed_delivered: 200,
            denied_sent: 200,
            denied_delivered: 1,
            denied_counted: 200,
        };
        assert!(good.holds());
        assert!(!EnforcementProof {
            allowed_delivered: 0,
            ..good.clone()
        }
        .holds());
        assert!(!EnforcementProof {
            denied_counted: 10,
            ..good.clone()
        }
        .holds());
        assert!(!EnforcementProof {
            denied_delivered: 200,
            ..good.clone()
        }
        .holds());
        assert!(!EnforcementProof::default().holds());
    }

    #[test]
    fn markdown_has_a_row_per_traffic_kind_with_the_ratio() {
        let report = PolicyReport {
            rules: 1000,
            frame_size: 64,
            duration_secs: 1.0,
            rounds: 1,
            node_mode: "poll".into(),
            iptables: IptablesBackend::Legacy,
            generator_cpu: 0,
            node_cpu: 1,
            ncpus: 2,
            loadavg_before: "0.50 0.40 0.30 1/100 1".into(),
            loadavg_after: "0.60 0.40 0.30 1/100 1".into(),
            kernel_conntrack_max: Some(65536),
            kernel_proof: EnforcementProof::default(),
            brindle_proof: EnforcementProof::default(),
            kinds: vec![KindResult::new(
                "established",
                16,
                vec![measured(100.0)],
                vec![measured(550.0)],
            )],
        };
        let md = markdown(&report);
        assert!(
            md.contains("| established | 16 | 200 | 100 | 1100 | 550 | 5.50 |"),
            "{md}"
        );
        assert!(
            md.contains("load average 0.50 0.40 0.30 1/100 1 -> 0.60"),
            "{md}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["kinds"][0]["ratio_delivered"], 5.5);
        assert_eq!(
            json["kinds"][0]["brindle"]["rounds"][0]["pps_delivered"],
            550.0
        );
    }

    pub(crate) fn sample_sweep() -> RulesSweepReport {
        let point = |rules: usize, kernel: f64, brindle: f64| RulesSweepPoint {
            rules,
            kinds: vec![
                KindResult::new(
                    "established",
                    FEW_FLOWS,
                    vec![measured(kernel)],
                    vec![measured(brindle)],
                ),
                KindResult::new(
                    "new_flows",
                    all_flows(),
                    vec![measured(kernel / 2.0)],
                    vec![measured(brindle / 2.0)],
                ),
            ],
            kernel_proof: EnforcementProof::default(),
            brindle_proof: EnforcementProof::default(),
        };
        RulesSweepReport {
            rule_counts: vec![10, 10_000],
            frame_size: 64,
            duration_secs: 1.0,
            rounds: 1,
            node_mode: "poll".into(),
            iptables: IptablesBackend::Legacy,
            generator_cpu: GENERATOR_CPU,
            node_cpu: NODE_CPU,
            ncpus: 2,
            loadavg_before: "0.1".into(),
            loadavg_after: "0.2".into(),
            points: vec![
                point(10, 400_000.0, 300_000.0),
                point(10_000, 40_000.0, 280_000.0),
            ],
        }
    }

    #[test]
    fn the_sweep_json_keeps_every_count_with_stable_field_names() {
        let json = serde_json::to_value(sample_sweep()).unwrap();
        assert_eq!(json["rule_counts"], serde_json::json!([10, 10_000]));
        for field in [
            "frame_size",
            "duration_secs",
            "rounds",
            "node_mode",
            "iptables",
            "ncpus",
        ] {
            assert!(json.get(field).is_some(), "{field}");
        }
        let points = json["points"].as_array().unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(points[1]["rules"], 10_000);
        let kind = &points[1]["kinds"][0];
        assert_eq!(kind["kind"], "established");
        assert_eq!(kind["kernel"]["pps_delivered"], 40_000.0);
        assert_eq!(kind["brindle"]["pps_delivered"], 280_000.0);
        assert_eq!(kind["ratio_delivered"], 7.0);
        assert_eq!(points[0]["kinds"][1]["kind"], "new_flows");
        assert!(points[0]["kernel_proof"].get("allowed_sent").is_some());
        let md = sweep_markdown(&sample_sweep());
        assert!(
            md.contains("| 10000 | established | 40000 | 280000 | 7.00 |"),
            "{md}"
        );
    }

    #[test]
    fn sweep_counts_are_sorted_bounded_and_unique() {
        assert_eq!(sweep_counts(&[1000, 10, 100]).unwrap(), vec![10, 100, 1000]);
        assert!(sweep_counts(&[]).is_err());
        let err = sweep_counts(&[10, 10]).unwrap_err().to_string();
        assert!(err.contains("rules 10"), "{err}");
        let err = sweep_counts(&[10, 20_000]).unwrap_err().to_string();
        assert!(err.contains("rules 20000"), "{err}");
        assert!(sweep_counts(&[1, 2, 3, 4, 5, 6, 7, 8, 9]).is_err());
    }
}
