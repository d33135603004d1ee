//! The iptables a kernel side programs (Felix's `iptablesBackend`), and reading its rules'
//! counters back: the proof that Felix-style rules written with `lab::felix` carry the
//! traffic.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use lab::cmd;

use crate::error::{io_err, BenchError};

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
    type Err = BenchError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "legacy" => Ok(IptablesBackend::Legacy),
            "nft" => Ok(IptablesBackend::Nft),
            _ => Err(BenchError::Invalid {
                field: "iptables",
                value: s.into(),
                reason: "expected legacy or nft".into(),
            }),
        }
    }
}

/// `iptables -L <chain> -v -x -n` in `ns`: every rule with its exact counters.
pub fn rule_listing(
    backend: IptablesBackend,
    ns: &str,
    chain: &str,
    timeout: Duration,
) -> Result<String, BenchError> {
    let out = cmd::run(
        &[
            "ip",
            "netns",
            "exec",
            ns,
            backend.iptables(),
            "-L",
            chain,
            "-v",
            "-x",
            "-n",
        ],
        timeout,
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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

/// Creates the ipset `name` (`hash:net`, as Felix makes them for selectors) in `ns`, holding
/// `members`.
pub fn create_ipset(
    ns: &str,
    name: &str,
    members: &[String],
    timeout: Duration,
) -> Result<(), BenchError> {
    let exec = ["ip", "netns", "exec", ns, "ipset"];
    cmd::run(
        &[&exec[..], &["create", name, "hash:net"]].concat(),
        timeout,
    )?;
    for member in members {
        cmd::run(&[&exec[..], &["add", name, member]].concat(), timeout)?;
    }
    Ok(())
}

/// Writes `rules` (an `iptables-restore` file, e.g. from `lab::felix::Iptables::render`) to
/// `file` and loads them into `ns` alongside what is there (`--noflush`).
pub fn restore_rules(
    backend: IptablesBackend,
    ns: &str,
    rules: &str,
    file: &Path,
    timeout: Duration,
) -> Result<(), BenchError> {
    std::fs::write(file, rules).map_err(io_err(format!("writing {}", file.display())))?;
    let path = file.display().to_string();
    let restore = [
        "ip",
        "netns",
        "exec",
        ns,
        backend.restore(),
        "--noflush",
        &path,
    ];
    cmd::run(&restore, timeout)?;
    Ok(())
}
