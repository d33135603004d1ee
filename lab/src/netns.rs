//! A one-host lab in network namespaces, wired exactly like Calico's CNI plugin wires
//! workloads (see ARCHITECTURE.md, "How a workload is wired"):
//!
//! ```text
//!   <name>-w1            <name>-node                          <name>-ext
//!   eth0 192.168.0.1/32  cali<11 hex> ee:ee:ee:ee:ee:ee
//!     default via          ...                 eth0 10.99.0.1/24 --- eth0 10.99.0.2/24
//!     169.254.1.1          default via 10.99.0.2                   192.168.0.0/16 via 10.99.0.1
//!   <name>-w2 ...        cali<11 hex>
//! ```
//!
//! In [`Forwarding::Kernel`] mode the node namespace forwards like Calico's kernel dataplane
//! (ip_forward=1, proxy ARP on every cali interface, a /32 route per workload). In
//! [`Forwarding::Brindle`] mode the kernel does not forward at all (ip_forward=0, no proxy ARP,
//! no routes): workloads reach each other only through a vRouter attached to the cali
//! interfaces.
//!
//! [`crate::MultiLab`] puts several such nodes on one L2 segment (and optionally some behind a
//! router, in another subnet), for forwarding between nodes.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cmd::{self, CmdError, CONFIG_TIMEOUT};
use crate::wiring::Builder;

/// The MAC Calico gives every host-side veth, so that workloads never learn a real host MAC.
pub const HOST_SIDE_MAC: &str = "ee:ee:ee:ee:ee:ee";
/// The gateway every workload routes through; nobody owns it, the host answers ARP for it.
pub const WORKLOAD_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// Uplink addresses: node side and the external namespace standing in for the rest of the world.
pub const UPLINK_NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
pub const UPLINK_EXT_IP: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
pub const UPLINK_PREFIX_LEN: u8 = 24;
/// Name of the uplink interface in the node namespace (and of its peer in the ext namespace).
pub const UPLINK_IF: &str = "eth0";
/// Lab names are prefixes of namespace names; short so that `<name>-w123` stays readable.
pub const MAX_NAME_LEN: usize = 8;
/// Bound on workloads per lab: each costs a namespace and ~15 commands.
pub const MAX_WORKLOADS: usize = 250;
/// Pools are /16 like Calico's default `192.168.0.0/16`.
pub const POOL_PREFIX_LEN: u8 = 16;

/// Who forwards between workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forwarding {
    /// Only brindle forwards: ip_forward=0, no proxy ARP, no kernel routes to workloads.
    Brindle,
    /// Linux forwards, as with Calico's kernel dataplane.
    Kernel,
}

/// The checksum and segmentation offloads of the lab's veths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Offloads {
    /// Off on every veth (`ethtool -K tx off tso off gso off gro off`): brindle's best wiring
    /// today, where senders finish their checksums while they copy.
    #[default]
    Off,
    /// As Linux creates a veth and as Calico leaves them (checksum offload, TSO/GSO, GRO on):
    /// the kernel baseline as users run it, and brindle with workloads wired by hand.
    AsCreated,
}

/// What a workload's `eth0` is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadPort {
    /// One end of a veth pair whose other end, `cali...` in the node's namespace, the
    /// vRouter serves with AF_XDP (or the kernel routes to).
    #[default]
    Veth,
    /// A persistent TAP with virtio-net headers that brindle-node attaches to (brindle
    /// forwarding only): whole 64 KiB TCP segments cross it. The `cali...` name is only the
    /// port's name in the node.
    Tap,
}

/// What to build.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSpec {
    /// Short prefix of every namespace name (`[a-z0-9]`, starts with a letter, <= 8 chars).
    pub name: String,
    pub workloads: usize,
    /// Workload `i` (from 1) gets `pool_base + i`.
    pub pool_base: Ipv4Addr,
    pub forwarding: Forwarding,
    pub uplink: bool,
    #[serde(default)]
    pub offloads: Offloads,
    #[serde(default)]
    pub workload_port: WorkloadPort,
}

impl LabSpec {
    /// A spec with the defaults: pool 192.168.0.0, Brindle forwarding, with an uplink.
    pub fn new(name: impl Into<String>, workloads: usize) -> Self {
        Self {
            name: name.into(),
            workloads,
            pool_base: Ipv4Addr::new(192, 168, 0, 0),
            forwarding: Forwarding::Brindle,
            uplink: true,
            offloads: Offloads::Off,
            workload_port: WorkloadPort::Veth,
        }
    }

    pub fn validate(&self) -> Result<(), LabError> {
        let name = &self.name;
        let name_ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !name_ok {
            return Err(LabError::InvalidSpec {
                field: "name",
                value: name.clone(),
                reason: "must be 1-8 characters of [a-z0-9], starting with a letter",
            });
        }
        if self.workloads > MAX_WORKLOADS {
            return Err(LabError::InvalidSpec {
                field: "workloads",
                value: self.workloads.to_string(),
                reason: "at most 250 workloads",
            });
        }
        let base = u32::from(self.pool_base);
        let host_bits = (1u32 << (32 - POOL_PREFIX_LEN)) - 1;
        if (base & host_bits) as usize + self.workloads >= host_bits as usize {
            return Err(LabError::InvalidSpec {
                field: "pool_base",
                value: self.pool_base.to_string(),
                reason: "workload addresses would leave the /16 pool",
            });
        }
        if self.workload_port == WorkloadPort::Tap && self.forwarding == Forwarding::Kernel {
            return Err(LabError::InvalidSpec {
                field: "workload_port",
                value: "tap".into(),
                reason: "TAP workloads need brindle forwarding: the kernel has nothing to route them through",
            });
        }
        Ok(())
    }

    /// The pool the workloads are in, as `a.b.0.0/16`.
    pub fn pool_cidr(&self) -> String {
        let mask = u32::MAX << (32 - POOL_PREFIX_LEN);
        let network = Ipv4Addr::from(u32::from(self.pool_base) & mask);
        format!("{network}/{POOL_PREFIX_LEN}")
    }

    pub fn node_netns(&self) -> String {
        format!("{}-node", self.name)
    }

    pub fn ext_netns(&self) -> String {
        format!("{}-ext", self.name)
    }

    /// Namespace of workload `index` (from 1).
    pub fn workload_netns(&self, index: usize) -> String {
        format!("{}-w{index}", self.name)
    }

    /// Address of workload `index` (from 1).
    pub fn workload_ip(&self, index: usize) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.pool_base).wrapping_add(index as u32))
    }

    /// Host-side interface of workload `index`: `cali` + 11 hex characters of a hash of the
    /// lab name and index, as Calico derives it from a hash of the workload id.
    pub fn host_interface(&self, index: usize) -> String {
        let hash = mix64(fnv1a64(format!("{}/w{index}", self.name).as_bytes()));
        let hex = format!("{hash:016x}");
        format!("cali{}", &hex[..11])
    }

    /// Every namespace this spec names, workloads first so that the node goes last.
    pub fn netns_names(&self) -> Vec<String> {
        let mut names: Vec<String> = (1..=self.workloads)
            .map(|i| self.workload_netns(i))
            .collect();
        if self.uplink {
            names.push(self.ext_netns());
        }
        names.push(self.node_netns());
        names
    }
}

/// MurmurHash3's 64-bit finaliser: FNV alone changes few high nibbles when only the last
/// byte differs (`w1` vs `w2`), and the name keeps the high nibbles.
fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// FNV-1a, 64 bit: stable across runs and Rust versions (unlike `DefaultHasher`).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("invalid lab {field} {value:?}: {reason}")]
    InvalidSpec {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("network namespace {0} already exists; pick another lab name or take it down first")]
    Exists(String),
    #[error(transparent)]
    Command(#[from] CmdError),
    #[error("unexpected output from `{command}`: {reason}")]
    Output { command: String, reason: String },
}

/// One workload: its namespace and how it is plugged into the node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Workload {
    pub netns: String,
    pub ip: Ipv4Addr,
    /// The `cali...` veth end in the node namespace.
    pub host_interface: String,
    /// MAC of the workload's `eth0`.
    pub mac: String,
}

/// The node's link to the outside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Uplink {
    /// Interface in the node namespace.
    pub node_interface: String,
    pub node_ip: Ipv4Addr,
    pub ext_netns: String,
    pub ext_ip: Ipv4Addr,
}

/// A lab that exists. Dropping it takes it down unless [`Lab::keep`] was called.
#[derive(Debug)]
pub struct Lab {
    pub(crate) spec: LabSpec,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) uplink: Option<Uplink>,
    pub(crate) down_on_drop: bool,
}

impl Lab {
    /// Builds the lab. On any failure, removes the namespaces this call created (and only
    /// those) and returns the error naming the failing command and its stderr.
    pub fn up(spec: &LabSpec) -> Result<Lab, LabError> {
        spec.validate()?;
        for ns in spec.netns_names() {
            if netns_exists(&ns) {
                return Err(LabError::Exists(ns));
            }
        }
        let mut builder = Builder {
            spec,
            created: Vec::new(),
        };
        match builder.build() {
            Ok(lab) => Ok(lab),
            Err(err) => {
                for ns in builder.created.iter().rev() {
                    let _ = delete_netns(ns);
                }
                Err(err)
            }
        }
    }

    /// A handle on a lab built earlier (for example by another process). Reads workload MACs
    /// where it can; does not take the lab down on drop.
    pub fn attach(spec: &LabSpec) -> Result<Lab, LabError> {
        spec.validate()?;
        let workloads = (1..=spec.workloads)
            .map(|i| {
                let netns = spec.workload_netns(i);
                let mac = interface_mac(&netns, "eth0").unwrap_or_default();
                Workload {
                    ip: spec.workload_ip(i),
                    host_interface: spec.host_interface(i),
                    netns,
                    mac,
                }
            })
            .collect();
        Ok(Lab {
            spec: spec.clone(),
            workloads,
            uplink: uplink_of(spec),
            down_on_drop: false,
        })
    }

    /// Deletes exactly the namespaces named by the spec; idempotent. Deleting a namespace
    /// destroys the veths in it, and with them their peers.
    pub fn down(&self) -> Result<(), LabError> {
        down_spec(&self.spec)
    }

    /// Leaves the lab in place when this handle is dropped (for the CLI's `up`).
    pub fn keep(mut self) {
        self.down_on_drop = false;
    }

    pub fn spec(&self) -> &LabSpec {
        &self.spec
    }

    pub fn node_netns(&self) -> String {
        self.spec.node_netns()
    }

    pub fn workloads(&self) -> &[Workload] {
        &self.workloads
    }

    /// Workload `index`, counting from 1 like the namespace names.
    pub fn workload(&self, index: usize) -> Option<&Workload> {
        index.checked_sub(1).and_then(|i| self.workloads.get(i))
    }

    pub fn uplink(&self) -> Option<&Uplink> {
        self.uplink.as_ref()
    }

    /// Runs `args` inside namespace `ns` (bounded to 60 s, and cut short once the process is
    /// [`cmd::interrupted`]); returns the output whatever the exit status.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Result<Output, LabError> {
        self.exec_timeout(ns, args, Duration::from_secs(60))
    }

    pub fn exec_timeout(
        &self,
        ns: &str,
        args: &[&str],
        timeout: Duration,
    ) -> Result<Output, LabError> {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        Ok(cmd::run_interruptible(&full, timeout)?)
    }

    /// The `brindle-node` configuration for this lab.
    pub fn node_config_toml(&self, mode: &str, control_socket: &Path) -> String {
        self.node_config_toml_pinned(mode, control_socket, &[])
    }

    /// Same, with the cores the workers are pinned to in poll mode (omitted when empty).
    pub fn node_config_toml_pinned(
        &self,
        mode: &str,
        control_socket: &Path,
        cores: &[usize],
    ) -> String {
        let mut out = String::new();
        out.push_str(&format!("mode = {}\n", toml_str(mode)));
        out.push_str(&format!("node_name = {}\n", toml_str(&self.spec.name)));
        if let Some(uplink) = &self.uplink {
            out.push_str(&format!("uplink = {}\n", toml_str(&uplink.node_interface)));
        }
        out.push_str(&format!("pools = [{}]\n", toml_str(&self.spec.pool_cidr())));
        out.push_str(&format!(
            "control_socket = {}\n",
            toml_str(&control_socket.to_string_lossy())
        ));
        if !cores.is_empty() {
            let list: Vec<String> = cores.iter().map(|c| c.to_string()).collect();
            out.push_str(&format!("cores = [{}]\n", list.join(", ")));
        }
        if self.spec.workload_port == WorkloadPort::Tap {
            // The node's stack gets whole segments too.
            out.push_str("host_port = \"tap\"\n");
        }
        for w in &self.workloads {
            out.push_str("\n[[workload]]\n");
            out.push_str(&format!("interface = {}\n", toml_str(&w.host_interface)));
            out.push_str(&format!("ips = [{}]\n", toml_str(&w.ip.to_string())));
            if self.spec.workload_port == WorkloadPort::Tap {
                let netns = format!("/run/netns/{}", w.netns);
                out.push_str(&format!("tap = {{ netns = {} }}\n", toml_str(&netns)));
            }
        }
        out
    }

    /// Addresses, links and routes of every namespace, for humans.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for ns in self.spec.netns_names() {
            out.push_str(&format!("== {ns}\n"));
            if !netns_exists(&ns) {
                out.push_str("   (absent)\n");
                continue;
            }
            for args in [
                ["ip", "-br", "link"].as_slice(),
                ["ip", "-br", "addr"].as_slice(),
                ["ip", "route"].as_slice(),
            ] {
                let mut full = vec!["ip", "-n", ns.as_str()];
                full.extend_from_slice(&args[1..]);
                match cmd::run(&full, CONFIG_TIMEOUT) {
                    Ok(o) => out.push_str(&String::from_utf8_lossy(&o.stdout)),
                    Err(e) => out.push_str(&format!("   {e}\n")),
                }
            }
        }
        out
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.down_on_drop {
            if let Err(e) = self.down() {
                eprintln!("lab {}: teardown failed: {e}", self.spec.name);
            }
        }
    }
}

/// Deletes exactly the namespaces named by `spec`, if present.
pub fn down_spec(spec: &LabSpec) -> Result<(), LabError> {
    spec.validate()?;
    let mut first_error = None;
    for ns in spec.netns_names() {
        if let Err(e) = delete_netns(&ns) {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

pub(crate) fn uplink_of(spec: &LabSpec) -> Option<Uplink> {
    spec.uplink.then(|| Uplink {
        node_interface: UPLINK_IF.to_string(),
        node_ip: UPLINK_NODE_IP,
        ext_netns: spec.ext_netns(),
        ext_ip: UPLINK_EXT_IP,
    })
}

/// A TOML basic string. JSON string escapes are a subset of TOML's.
pub(crate) fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

pub fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

pub(crate) fn delete_netns(name: &str) -> Result<(), LabError> {
    if netns_exists(name) {
        cmd::run(&["ip", "netns", "del", name], CONFIG_TIMEOUT)?;
    }
    Ok(())
}

/// MAC of `dev` in `ns`, from `ip -j link`.
pub fn interface_mac(ns: &str, dev: &str) -> Result<String, LabError> {
    let args = ["ip", "-j", "-n", ns, "link", "show", "dev", dev];
    let out = cmd::run(&args, CONFIG_TIMEOUT)?;
    let parsed: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| LabError::Output {
            command: cmd::display(&args),
            reason: e.to_string(),
        })?;
    parsed
        .get(0)
        .and_then(|link| link.get("address"))
        .and_then(|a| a.as_str())
        .map(str::to_string)
        .ok_or_else(|| LabError::Output {
            command: cmd::display(&args),
            reason: "no address field".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_calico_shape() {
        let spec = LabSpec::new("demo", 3);
        assert_eq!(spec.node_netns(), "demo-node");
        assert_eq!(spec.workload_netns(2), "demo-w2");
        let cali = spec.host_interface(1);
        assert_eq!(cali.len(), 15, "{cali}");
        assert!(cali.starts_with("cali"));
        assert!(cali[4..].chars().all(|c| c.is_ascii_hexdigit()), "{cali}");
        assert_ne!(spec.host_interface(1), spec.host_interface(2));
        assert_ne!(
            LabSpec::new("other", 3).host_interface(1),
            spec.host_interface(1)
        );
        assert_eq!(spec.workload_ip(1), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(spec.pool_cidr(), "192.168.0.0/16");
    }

    #[test]
    fn invalid_names_are_rejected_with_the_field() {
        for bad in ["", "toolongname", "Demo", "a-b", "1abc", "a/b"] {
            let err = LabSpec::new(bad, 1).validate().unwrap_err();
            assert!(err.to_string().contains("name"), "{bad}: {err}");
        }
        assert!(LabSpec::new("ok1", 1).validate().is_ok());
        let mut spec = LabSpec::new("ok", 10);
        spec.pool_base = Ipv4Addr::new(10, 0, 255, 250);
        assert!(spec
            .validate()
            .unwrap_err()
            .to_string()
            .contains("pool_base"));
    }

    #[test]
    fn node_config_lists_every_workload() {
        let spec = LabSpec::new("demo", 2);
        let lab = Lab {
            workloads: (1..=2)
                .map(|i| Workload {
                    netns: spec.workload_netns(i),
                    ip: spec.workload_ip(i),
                    host_interface: spec.host_interface(i),
                    mac: String::new(),
                })
                .collect(),
            uplink: uplink_of(&spec),
            spec: spec.clone(),
            down_on_drop: false,
        };
        let text = lab.node_config_toml_pinned("poll", Path::new("/run/brindle/demo.sock"), &[1]);
        let expected = format!(
            "mode = \"poll\"\nnode_name = \"demo\"\nuplink = \"eth0\"\npools = [\"192.168.0.0/16\"]\n\
             control_socket = \"/run/brindle/demo.sock\"\ncores = [1]\n\n[[workload]]\n\
             interface = \"{}\"\nips = [\"192.168.0.1\"]\n\n[[workload]]\ninterface = \"{}\"\n\
             ips = [\"192.168.0.2\"]\n",
            spec.host_interface(1),
            spec.host_interface(2)
        );
        assert_eq!(text, expected);
    }
}
