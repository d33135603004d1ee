//! The veth of a Docker endpoint, made at Join as Calico's driver made it: both ends in the
//! node's namespace, the host end named as brindle-cni names a container's
//! (`cni::plumbing::host_interface_name`) with Calico's MAC, the other end under a temporary
//! name that Join hands to dockerd, which moves it into the container and renames it. The
//! container end's address and routes are dockerd's job (from RequestAddress and Join's
//! answer); removing the host end (brindle-cni's `unwire`) removes the pair.
//!
//! Offloads are off on both ends for the reason brindle-cni turns them off: the vRouter
//! forwards raw frames, and a partially checksummed one would reach the other side unfinished.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli::cni::plumbing::{self, WorkloadIdentity, CALICO_HOST_SIDE_MAC};

use super::types::{DriverError, DriverResult};

const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// The interface dockerd creates in the container is this prefix and a number (`cali0`), as
/// with Calico's driver.
pub const CONTAINER_PREFIX: &str = "cali";

/// The host and temporary names of endpoint `endpoint_id`'s veth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethNames {
    pub host: String,
    pub temporary: String,
}

impl VethNames {
    pub fn of(endpoint_id: &str) -> VethNames {
        let host = plumbing::host_interface_name(WorkloadIdentity::Container {
            id: endpoint_id,
            ifname: CONTAINER_PREFIX,
        });
        // `cali` + 11 hex digits; `tmp` + the same digits fits Linux's 15 characters too.
        let temporary = format!("tmp{}", &host[4..]);
        VethNames { host, temporary }
    }
}

/// Creates the pair; returns the MAC of the end the container gets. Nothing is left behind
/// on error.
pub fn create(names: &VethNames, mtu: u32) -> DriverResult<String> {
    let mtu = mtu.to_string();
    let (host, temp) = (names.host.as_str(), names.temporary.as_str());
    // A pair of this name is this endpoint's, left by a Join that failed half way or a node
    // that stopped before Leave: dockerd's retry gets a fresh one.
    remove(names)?;
    run(&[
        "ip", "link", "add", host, "mtu", &mtu, "type", "veth", "peer", "name", temp, "mtu", &mtu,
    ])?;
    let result = (|| {
        run(&[
            "ip",
            "link",
            "set",
            "dev",
            host,
            "address",
            CALICO_HOST_SIDE_MAC,
        ])?;
        for dev in [host, temp] {
            for feature in ["tx", "tso", "gso", "gro"] {
                // Best effort: a driver may have a feature fixed, which is fine.
                let _ = run(&["ethtool", "-K", dev, feature, "off"]);
            }
        }
        run(&["ip", "link", "set", "dev", host, "up"])?;
        mac_of(temp)
    })();
    if result.is_err() {
        let _ = plumbing::veth::unwire(host);
    }
    result
}

/// Removes the pair (idempotent).
pub fn remove(names: &VethNames) -> DriverResult<()> {
    plumbing::veth::unwire(&names.host)
        .map_err(|e| DriverError::new(format!("cannot remove {}: {e}", names.host)))
}

/// The interface's MAC as `ip` prints it.
fn mac_of(dev: &str) -> DriverResult<String> {
    let text = run(&["ip", "-o", "link", "show", "dev", dev])?;
    text.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| DriverError::new(format!("{dev} has no link/ether address")))
}

/// Runs a command with a time limit; stdout on success, stderr in the error otherwise.
fn run(args: &[&str]) -> DriverResult<String> {
    let command = args.join(" ");
    let fail = |detail: String| DriverError::new(format!("{command}: {detail}"));
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("timed out after {COMMAND_TIMEOUT:?}")));
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_and_are_per_endpoint() {
        let a = VethNames::of("5efe1ee8d2b8a3bf2237a3c41ea32622ac332e844762fa3a2aa2d5b27939494b");
        let b = VethNames::of("5efe1ee8d2b8a3bf2237a3c41ea32622ac332e844762fa3a2aa2d5b27939494c");
        assert_ne!(a.host, b.host);
        assert!(a.host.starts_with("cali") && a.host.len() == 15, "{a:?}");
        assert!(
            a.temporary.starts_with("tmp") && a.temporary.len() == 14,
            "{a:?}"
        );
        assert_eq!(&a.host[4..], &a.temporary[3..]);
    }
}
