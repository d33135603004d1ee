//! Sides, their forwarders and encapsulations, and the benchmark's options.

use super::*;

/// Who forwards on a side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forwarder {
    Kernel,
    Brindle,
}

/// How packets cross between the nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encap {
    Plain,
    Ipip,
}

/// One of the four measured topologies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Side {
    pub forwarder: Forwarder,
    pub encap: Encap,
}

impl Side {
    /// In the order they run: the kernel first, as in `e2e`.
    pub const ALL: [Side; 4] = [
        Side::new(Forwarder::Kernel, Encap::Plain),
        Side::new(Forwarder::Kernel, Encap::Ipip),
        Side::new(Forwarder::Brindle, Encap::Plain),
        Side::new(Forwarder::Brindle, Encap::Ipip),
    ];

    pub const fn new(forwarder: Forwarder, encap: Encap) -> Side {
        Side { forwarder, encap }
    }

    /// The side's field name in the report.
    pub fn name(self) -> &'static str {
        match (self.forwarder, self.encap) {
            (Forwarder::Kernel, Encap::Plain) => "kernel_plain",
            (Forwarder::Kernel, Encap::Ipip) => "kernel_ipip",
            (Forwarder::Brindle, Encap::Plain) => "brindle_plain",
            (Forwarder::Brindle, Encap::Ipip) => "brindle_ipip",
        }
    }

    /// Two letters that start the side's lab name.
    pub(super) fn lab_prefix(self) -> &'static str {
        match (self.forwarder, self.encap) {
            (Forwarder::Kernel, Encap::Plain) => "kp",
            (Forwarder::Kernel, Encap::Ipip) => "ki",
            (Forwarder::Brindle, Encap::Plain) => "bp",
            (Forwarder::Brindle, Encap::Ipip) => "bi",
        }
    }
}

/// Worker core of node 1 and of node 2 (`None`: not pinned).
pub type NodeCpus = [Option<usize>; 2];

/// Parses `--node-cpus`: `none`, one core for both nodes (`1`), or one per node (`1,0`,
/// `1,none`).
pub fn parse_node_cpus(text: &str) -> Result<NodeCpus, String> {
    let one = |part: &str| -> Result<Option<usize>, String> {
        let part = part.trim();
        if part == "none" {
            return Ok(None);
        }
        part.parse::<usize>().map(Some).map_err(|_| {
            format!("invalid node-cpus {text:?}: {part:?} is neither a core number nor none")
        })
    };
    let parts: Vec<&str> = text.split(',').collect();
    match parts.as_slice() {
        [both] => {
            let cpu = one(both)?;
            Ok([cpu, cpu])
        }
        [first, second] => Ok([one(first)?, one(second)?]),
        _ => Err(format!(
            "invalid node-cpus {text:?}: expected one or two comma-separated cores"
        )),
    }
}

#[derive(Clone, Debug)]
pub struct CrossnodeOptions {
    pub brindle_node: PathBuf,
    /// This benchmark's own executable, which provides `udp-send` and `udp-sink`.
    pub perf_exe: PathBuf,
    pub duration: Duration,
    pub pings: u32,
    pub frame_size: usize,
    pub batch: usize,
    pub port: u16,
    /// Scratch directory for node configs, sockets, logs, captures and BPF objects.
    pub work_dir: PathBuf,
    /// brindle-node's worker mode: "interrupt" (the default here: two nodes share the cores)
    /// or "poll".
    pub node_mode: String,
    /// Worker cores of the two brindle nodes ([`DEFAULT_NODE_CPUS`]: unpinned).
    pub node_cpus: NodeCpus,
    /// The compiler of the kernel IPIP BPF program (needed only without the `ipip` driver).
    pub clang: String,
    /// Rounds of the four sides, interleaved (kernel plain, kernel IPIP, brindle plain,
    /// brindle IPIP, then again), so that a burst of other work on the machine hits one
    /// round of every side rather than all of one side; each side reports its medians.
    pub rounds: usize,
}
