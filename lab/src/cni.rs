//! Plugging workloads in the way a container runtime does: run a CNI plugin with the CNI
//! environment (`CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_PATH`) and the
//! network configuration on stdin, inside the node's network namespace.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A CNI plugin binary and the directory runtimes pass as `CNI_PATH` (where it finds its IPAM
/// plugin).
#[derive(Clone, Debug)]
pub struct CniPlugin {
    pub bin_dir: PathBuf,
    pub plugin: String,
    /// Extra environment for the plugin (e.g. `DATASTORE_TYPE`, `BRINDLE_EMBEDDED_PATH`).
    pub env: Vec<(String, String)>,
}

/// What a plugin printed and how it exited.
#[derive(Debug)]
pub struct CniOutcome {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl CniOutcome {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or(serde_json::Value::Null)
    }
}

const PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

impl CniPlugin {
    /// Runs `command` (ADD, DEL, CHECK, VERSION) for a container whose network namespace is at
    /// `netns_path`, from inside `node_ns`.
    pub fn invoke(
        &self,
        node_ns: &str,
        command: &str,
        container_id: &str,
        netns_path: &Path,
        ifname: &str,
        netconf: &str,
    ) -> std::io::Result<CniOutcome> {
        let started = Instant::now();
        let mut child = Command::new("ip")
            .args(["netns", "exec", node_ns])
            .arg(self.bin_dir.join(&self.plugin))
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", netns_path)
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", &self.bin_dir)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            // A plugin that refuses early may exit before reading everything.
            match stdin.write_all(netconf.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e),
                _ => {}
            }
        }
        let deadline = started + PLUGIN_TIMEOUT;
        while child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let out = child.wait_with_output()?;
        Ok(CniOutcome {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: started.elapsed(),
        })
    }
}

/// A network configuration for `brindle-cni` on network `name`, allocating from `pools`
/// (empty: every enabled pool).
pub fn netconf(name: &str, pools: &[&str], mtu: u32, node: &str) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": name,
        "type": "brindle-cni",
        "mtu": mtu,
        "nodename": node,
        "ipam": { "type": "brindle-ipam", "ipv4_pools": pools },
    })
    .to_string()
}
