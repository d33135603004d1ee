//! The kernel baselines the benchmarks compare brindle with, set up as Calico's kernel
//! dataplane sets them up: kernel forwarding between nodes ([`kernel_forwarding_commands`])
//! and IP in IP through `tunl0` or an LWT BPF program ([`setup_kernel_ipip`]); the iptables
//! their Felix-style policy is programmed into ([`IptablesBackend`]) and read back from
//! ([`rule_listing`], [`packets_of_rule`]). The rules themselves are each benchmark's, written
//! with `lab::felix`. The veths keep their offloads as Linux creates them, as Calico leaves
//! them ([`offloads_for`]).

mod forwarding;
mod ipip;
mod iptables;
#[cfg(test)]
mod tests;

pub use forwarding::*;
pub use ipip::*;
pub use iptables::*;

use lab::cmd::{self, CONFIG_TIMEOUT};
use lab::{Forwarding, Offloads};

use crate::error::BenchError;

/// The veths' offloads for a side: the kernel's as Calico ships it (checksum offload,
/// TSO/GSO and GRO on, so that the kernel moves 64 KiB segments between pods); brindle's on
/// its best wiring today, with them off (AF_XDP in copy mode carries no offload metadata:
/// brindle completes what a sender left to checksum offload, at a cost the sender avoids
/// when it finishes the checksum while it copies).
pub fn offloads_for(forwarding: Forwarding) -> Offloads {
    match forwarding {
        Forwarding::Kernel => Offloads::AsCreated,
        Forwarding::Brindle => Offloads::Off,
    }
}

/// Runs argument vectors in order; stops at the first failure or at a signal.
pub fn run_all(commands: &[Vec<String>]) -> Result<(), BenchError> {
    for command in commands {
        if cmd::interrupted() {
            return Err(BenchError::Run("interrupted by a signal".into()));
        }
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        cmd::run(&args, CONFIG_TIMEOUT)?;
    }
    Ok(())
}

pub(crate) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}
