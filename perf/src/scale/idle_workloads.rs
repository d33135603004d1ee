//! Idle workloads: veth pairs made with `ip -batch`, the `cali…` ends in the node namespace.

use super::*;

/// Host-side name of idle workload `k` (from 1): `cali` + 11 characters, like Calico's.
pub fn idle_interface(k: usize) -> String {
    format!("calisq{:09x}", k)
}

/// Address of idle workload `k` (from 1): from 192.168.16.1 on, inside the lab's /16 pool
/// and clear of the real workloads (192.168.0.1, .2).
pub fn idle_ip(k: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 16, 0)) + k as u32)
}

/// The `[[workload]]` entries of `count` idle workloads, for node.toml.
pub fn idle_workloads_toml(count: usize) -> String {
    let mut out = String::new();
    for k in 1..=count {
        out.push_str(&format!(
            "\n[[workload]]\ninterface = \"{}\"\nips = [\"{}\"]\n",
            idle_interface(k),
            idle_ip(k)
        ));
    }
    out
}

/// The idle veths: `cali…` ends in the node namespace, peers in `<lab>-idle`. Dropping it
/// deletes that namespace, which destroys the pairs.
pub(super) struct IdleWorkloads {
    pub(super) netns: String,
}

impl IdleWorkloads {
    pub(super) fn up(lab: &Lab, count: usize) -> Result<IdleWorkloads, BenchError> {
        let netns = format!("{}-idle", lab.spec().name);
        if lab::netns_exists(&netns) {
            return Err(BenchError::Run(format!(
                "network namespace {netns} already exists"
            )));
        }
        cmd::run(&["ip", "netns", "add", &netns], CONFIG_TIMEOUT)?;
        let idle = IdleWorkloads { netns };
        let node = lab.node_netns();
        let mut node_batch = String::new();
        let mut peer_batch = String::new();
        for k in 1..=count {
            let cali = idle_interface(k);
            node_batch.push_str(&format!(
                "link add {cali} type veth peer name i{k} netns {}\n",
                idle.netns
            ));
            node_batch.push_str(&format!("link set {cali} up\n"));
            peer_batch.push_str(&format!("link set i{k} up\n"));
        }
        run_batch(&node, &node_batch, &lab_file(lab, "idle-node.batch"))?;
        run_batch(&idle.netns, &peer_batch, &lab_file(lab, "idle-peer.batch"))?;
        Ok(idle)
    }
}

impl Drop for IdleWorkloads {
    fn drop(&mut self) {
        if let Err(e) = cmd::run(&["ip", "netns", "del", &self.netns], CONFIG_TIMEOUT) {
            eprintln!("deleting {}: {e}", self.netns);
        }
    }
}

pub(super) fn lab_file(lab: &Lab, what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}-{what}", lab.spec().name))
}

/// `ip -n ns -batch file` with `commands` written to `file` (removed afterwards).
pub(super) fn run_batch(ns: &str, commands: &str, file: &Path) -> Result<(), BenchError> {
    std::fs::write(file, commands).map_err(io_err(format!("writing {}", file.display())))?;
    let path = file.to_string_lossy().to_string();
    let result = cmd::run(&["ip", "-n", ns, "-batch", &path], CONFIG_TIMEOUT);
    let _ = std::fs::remove_file(file);
    result?;
    Ok(())
}
