//! The kernel baselines the benchmarks compare brindle with, set up as Calico's kernel
//! dataplane sets them up: kernel forwarding between nodes ([`kernel_forwarding_commands`])
//! and IP in IP through `tunl0` or an LWT BPF program ([`setup_kernel_ipip`]); the iptables
//! their Felix-style policy is programmed into ([`IptablesBackend`]) and read back from
//! ([`rule_listing`], [`packets_of_rule`]). The rules themselves are each benchmark's, written
//! with `lab::felix`.

mod forwarding;
mod ipip;
mod iptables;
#[cfg(test)]
mod tests;

pub use forwarding::*;
pub use ipip::*;
pub use iptables::*;

use lab::cmd::{self, CONFIG_TIMEOUT};

use crate::error::BenchError;

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
