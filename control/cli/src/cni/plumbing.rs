//! Wiring a workload the way Calico's CNI plugin does (ARCHITECTURE.md, "How a workload is wired"):
//! a veth whose host end is `cali` + 11 hex digits of a hash of the workload ([`host_interface_name`]) with MAC
//! `ee:ee:ee:ee:ee:ee`, and whose container end carries the workload's /32, a link-scope route
//! to 169.254.1.1 and the default route through it.
//!
//! Done with iproute2 and ethtool (`ip link set ... netns <path>` accepts a namespace path;
//! commands inside the container run under `nsenter --net=<path>`), every command bounded in
//! time. Checksum and segmentation offloads are turned off on both ends: the vRouter handles raw
//! frames, and a partially checksummed frame would reach the other workload unfinished.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

/// The MAC Calico gives every host-side workload veth (the vRouter's
/// `fastpath::MacAddr::CALICO_HOST_SIDE`). Text here: the plugin only hands MACs to `ip` and
/// to its result, and does not link the dataplane.
pub const CALICO_HOST_SIDE_MAC: &str = "ee:ee:ee:ee:ee:ee";

pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("{command}: {detail}")]
pub struct PlumbingError {
    pub command: String,
    pub detail: String,
}

/// Who a host interface is for: a Kubernetes pod, or a container's interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadIdentity<'a> {
    Pod { namespace: &'a str, name: &'a str },
    Container { id: &'a str, ifname: &'a str },
}

/// The host end of a workload's veth, as Calico names it: `cali` + the first 11 hex digits of
/// the SHA-1 of the workload's identity (Linux allows 15 characters). For a pod that is
/// `namespace.name`, exactly Calico's `VethNameForWorkload`, so that Calico's tools find the
/// interface; for any other container it is `container id.interface`, so that containers
/// whose ids share a prefix, and a container's second interface, never share a name.
pub fn host_interface_name(workload: WorkloadIdentity<'_>) -> String {
    use sha1::{Digest, Sha1};
    let identity = match workload {
        WorkloadIdentity::Pod { namespace, name } => format!("{namespace}.{name}"),
        WorkloadIdentity::Container { id, ifname } => format!("{id}.{ifname}"),
    };
    let digest = Sha1::digest(identity.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("cali{}", &hex[..11])
}

/// What ADD created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wired {
    pub host_interface: String,
    /// MACs as `ip` prints them: six lowercase hex octets.
    pub host_mac: String,
    pub container_mac: String,
}

/// Creates and configures the veth pair for a workload.
pub fn wire(
    netns: &str,
    ifname: &str,
    host_if: &str,
    ip: Ipv4Addr,
    mtu: u32,
) -> Result<Wired, PlumbingError> {
    let mtu = mtu.to_string();
    let net = format!("--net={netns}");
    let in_ns = |args: &[&str]| {
        let mut full = vec!["nsenter", net.as_str()];
        full.extend_from_slice(args);
        run(&full)
    };
    run(&[
        "ip", "link", "add", host_if, "mtu", &mtu, "type", "veth", "peer", "name", ifname, "mtu",
        &mtu, "netns", netns,
    ])?;
    let result = (|| {
        run(&[
            "ip",
            "link",
            "set",
            "dev",
            host_if,
            "address",
            CALICO_HOST_SIDE_MAC,
        ])?;
        disable_offloads(&["ethtool"], host_if);
        run(&["ip", "link", "set", "dev", host_if, "up"])?;
        disable_offloads(&["nsenter", &net, "ethtool"], ifname);
        in_ns(&["ip", "link", "set", "dev", ifname, "up"])?;
        in_ns(&["ip", "addr", "add", &format!("{ip}/32"), "dev", ifname])?;
        in_ns(&[
            "ip",
            "route",
            "add",
            &GATEWAY.to_string(),
            "dev",
            ifname,
            "scope",
            "link",
        ])?;
        in_ns(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &GATEWAY.to_string(),
            "dev",
            ifname,
        ])?;
        let container_mac = read_mac(&["nsenter", &net], ifname)?;
        Ok(Wired {
            host_interface: host_if.to_owned(),
            host_mac: CALICO_HOST_SIDE_MAC.to_owned(),
            container_mac,
        })
    })();
    if result.is_err() {
        // Leave nothing half-built behind: deleting the host end removes the pair.
        let _ = run(&["ip", "link", "del", "dev", host_if]);
    }
    result
}

/// Removes the veth pair (idempotent: a missing interface is not an error).
pub fn unwire(host_if: &str) -> Result<(), PlumbingError> {
    if !interface_exists(host_if) {
        return Ok(());
    }
    match run(&["ip", "link", "del", "dev", host_if]) {
        Ok(_) => Ok(()),
        Err(_) if !interface_exists(host_if) => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn interface_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// CHECK: the container end has the address and routes ADD gave it.
pub fn check(netns: &str, ifname: &str, host_if: &str, ip: Ipv4Addr) -> Result<(), String> {
    if !interface_exists(host_if) {
        return Err(format!("host interface {host_if} is missing"));
    }
    let net = format!("--net={netns}");
    let addrs = run(&[
        "nsenter", &net, "ip", "-4", "-o", "addr", "show", "dev", ifname,
    ])
    .map_err(|e| e.to_string())?;
    if !addrs.contains(&format!("{ip}/32")) {
        return Err(format!("{ifname} in {netns} does not have {ip}/32"));
    }
    let routes = run(&["nsenter", &net, "ip", "-4", "route", "show", "default"])
        .map_err(|e| e.to_string())?;
    if !routes.contains(&GATEWAY.to_string()) {
        return Err(format!("no default route via {GATEWAY} in {netns}"));
    }
    Ok(())
}

/// The interface's MAC as the namespace's own kernel reports it. Not through
/// `/sys/class/net`: `nsenter --net` keeps the caller's sysfs mount, which shows the host's
/// interfaces (a container's `eth0` would read as the host's `eth0`).
fn read_mac(prefix: &[&str], ifname: &str) -> Result<String, PlumbingError> {
    let mut args = prefix.to_vec();
    args.extend_from_slice(&["ip", "-o", "link", "show", "dev", ifname]);
    let text = run(&args)?;
    let fail = |detail: String| PlumbingError {
        command: args.join(" "),
        detail,
    };
    let mac = text
        .split_whitespace()
        .skip_while(|word| *word != "link/ether")
        .nth(1)
        .ok_or_else(|| fail(format!("no link/ether address in {:?}", text.trim())))?;
    let octets: Vec<&str> = mac.split(':').collect();
    let well_formed = octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()));
    if !well_formed {
        return Err(fail(format!("link/ether {mac:?} is not a MAC address")));
    }
    Ok(mac.to_ascii_lowercase())
}

/// Best effort: some drivers have some features fixed, which is fine.
fn disable_offloads(prefix: &[&str], dev: &str) {
    for feature in ["tx", "tso", "gso", "gro"] {
        let mut args = prefix.to_vec();
        args.extend_from_slice(&["-K", dev, feature, "off"]);
        let _ = run(&args);
    }
}

/// Runs a command with a time limit; stdout on success, stderr in the error otherwise.
fn run(args: &[&str]) -> Result<String, PlumbingError> {
    let command = args.join(" ");
    let fail = |detail: String| PlumbingError {
        command: command.clone(),
        detail,
    };
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
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

    fn container(id: &str) -> String {
        host_interface_name(WorkloadIdentity::Container { id, ifname: "eth0" })
    }

    #[test]
    fn a_pods_interface_is_named_as_calico_names_it() {
        // `printf default.nginx | sha1sum`: c440f455693b69cdd48a37aa5ecd78038f50413d.
        let name = host_interface_name(WorkloadIdentity::Pod {
            namespace: "default",
            name: "nginx",
        });
        assert_eq!(name, "calic440f455693");
        assert_eq!(name.len(), 15, "Linux allows 15 characters");
    }

    #[test]
    fn containers_sharing_an_id_prefix_and_a_containers_interfaces_get_distinct_names() {
        let a = container("0123456789abcdef0123");
        let b = container("0123456789a-another-container");
        assert_ne!(a, b, "ids sharing their first 11 characters");
        assert!(a.starts_with("cali") && a.len() == 15, "{a}");
        let eth1 = host_interface_name(WorkloadIdentity::Container {
            id: "0123456789abcdef0123",
            ifname: "eth1",
        });
        assert_ne!(a, eth1);
        assert_eq!(a, container("0123456789abcdef0123"), "stable across calls");
        assert!(container("").len() == 15 && container(&"f".repeat(64)).len() == 15);
    }

    /// Root: wires a fresh namespace and checks the result as a workload would see it.
    #[test]
    fn wire_check_unwire_round_trip_in_a_real_namespace() {
        let ns = format!("cniplumb{}", std::process::id());
        assert!(Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .unwrap()
            .success());
        let path = format!("/var/run/netns/{ns}");
        let host_if = container(&format!("t{}", std::process::id()));
        let ip = Ipv4Addr::new(10, 250, 0, 7);
        let wired = wire(&path, "eth0", &host_if, ip, 1400);
        let checked = check(&path, "eth0", &host_if, ip);
        let host_mtu =
            std::fs::read_to_string(format!("/sys/class/net/{host_if}/mtu")).unwrap_or_default();
        let host_mac = std::fs::read_to_string(format!("/sys/class/net/{host_if}/address"))
            .unwrap_or_default();
        // `ip netns exec` mounts the namespace's own sysfs, unlike `nsenter --net`.
        let container_mac = Command::new("ip")
            .args(["netns", "exec", &ns, "cat", "/sys/class/net/eth0/address"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let unwired = unwire(&host_if).and_then(|_| unwire(&host_if));
        let gone = !interface_exists(&host_if);
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        let wired = wired.unwrap();
        assert_eq!(wired.host_mac, CALICO_HOST_SIDE_MAC);
        assert_eq!(
            wired.container_mac,
            container_mac.trim(),
            "the MAC read is not the container's eth0"
        );
        assert_eq!(host_mac.trim(), "ee:ee:ee:ee:ee:ee");
        assert_eq!(host_mtu.trim(), "1400");
        checked.unwrap();
        unwired.unwrap();
        assert!(gone);
    }

    #[test]
    fn a_failure_names_the_command_and_leaves_nothing_behind() {
        let host_if = container(&format!("f{}", std::process::id()));
        let err = wire(
            "/var/run/netns/does-not-exist",
            "eth0",
            &host_if,
            Ipv4Addr::new(10, 0, 0, 1),
            1500,
        )
        .unwrap_err();
        assert!(err.command.contains("ip link add"), "{err}");
        assert!(!interface_exists(&host_if));
    }
}
