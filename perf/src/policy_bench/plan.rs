//! What runs: the options, and the iptables backend the kernel side uses.

use super::*;

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
