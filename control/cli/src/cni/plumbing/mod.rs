//! Wiring a workload the way Calico's CNI plugin does (ARCHITECTURE.md, "How a workload is wired"):
//! the container's interface carries the workload's /32, a link-scope route to 169.254.1.1 and
//! the default route through it. What the interface is made of is the netconf's
//! `workload_interface`:
//!
//! - [`veth`]: a veth whose host end is `cali` + 11 hex digits of a hash of the workload
//!   ([`host_interface_name`]) with MAC `ee:ee:ee:ee:ee:ee`; the node serves the host end.
//! - [`tap`]: a persistent TAP with virtio-net headers in the container's namespace, which the
//!   node attaches to; nothing on the host (the `cali...` name is still the workload's name in
//!   the node and on its endpoint).
//!
//! Done over rtnetlink ([`netlink`]) and the ethtool ioctl ([`offloads`]) from the plugin's
//! own process: no `ip` or `ethtool` is spawned, and nothing is read from `/sys`, so the
//! plugin sees the namespaces its caller is in whatever sysfs is mounted.
//!
//! Every function blocks on a runtime of its own: from async code, call it on a blocking
//! thread (`tokio::task::spawn_blocking`), never directly inside a task.

pub mod netlink;
mod offloads;
pub mod tap;
pub mod veth;

use std::net::Ipv4Addr;
#[cfg(test)]
use std::process::Command;

use netlink::Rtnl;

/// The MAC Calico gives every host-side workload veth (the vRouter's
/// `fastpath::MacAddr::CALICO_HOST_SIDE`). Here too: the plugin does not link the dataplane.
pub const CALICO_HOST_SIDE_MAC: &str = "ee:ee:ee:ee:ee:ee";
const CALICO_HOST_SIDE_OCTETS: [u8; 6] = [0xee; 6];

pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

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
    /// The interface on the host; none for a TAP.
    pub host: Option<HostEnd>,
    /// MACs as six lowercase hex octets joined by colons, as `ip` prints them.
    pub container_mac: String,
}

/// The host end of a veth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEnd {
    pub name: String,
    pub mac: String,
}

/// Whether the calling thread's network namespace has an interface `name`. Asked over
/// rtnetlink: `/sys/class/net` shows the namespace sysfs was mounted in, which under
/// `nsenter --net` is not the caller's.
pub fn interface_exists(name: &str) -> bool {
    netlink::Rtnl::here("the host namespace")
        .and_then(|host| host.link(name))
        .is_ok_and(|link| link.is_some())
}

/// The link `ifname` in `ns`, which must be there.
fn existing_link(ns: &Rtnl, ifname: &str) -> Result<netlink::Link, PlumbingError> {
    ns.link(ifname)?.ok_or_else(|| PlumbingError {
        command: format!("get link {ifname}"),
        detail: "no such interface".into(),
    })
}

/// Gives the container's interface, already there, what every workload gets: up, the /32,
/// the link-scope route to the gateway and the default route through it. Returns its MAC.
fn configure_container_end(ns: &Rtnl, ifname: &str, ip: Ipv4Addr) -> Result<String, PlumbingError> {
    let link = existing_link(ns, ifname)?;
    ns.set_up(ifname, link.index)?;
    ns.add_address(ifname, link.index, ip)?;
    ns.add_route(ifname, link.index, (GATEWAY, 32), None)?;
    ns.add_route(
        ifname,
        link.index,
        (Ipv4Addr::UNSPECIFIED, 0),
        Some(GATEWAY),
    )?;
    if link.mac.len() != 6 {
        return Err(PlumbingError {
            command: format!("get link {ifname}"),
            detail: format!("{:?} is not a MAC address", link.mac_text()),
        });
    }
    Ok(link.mac_text())
}

/// CHECK: the container's interface has the address and the default route ADD gave it.
fn check_container_end(netns: &str, ifname: &str, ip: Ipv4Addr) -> Result<(), String> {
    let ns = Rtnl::in_netns(netns).map_err(|e| e.to_string())?;
    let link = ns
        .link(ifname)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{ifname} in {netns} is missing"))?;
    let addrs = ns.addresses(link.index).map_err(|e| e.to_string())?;
    if !addrs.contains(&(ip, 32)) {
        return Err(format!("{ifname} in {netns} does not have {ip}/32"));
    }
    let gateways = ns.default_gateways().map_err(|e| e.to_string())?;
    if !gateways.contains(&GATEWAY) {
        return Err(format!("no default route via {GATEWAY} in {netns}"));
    }
    Ok(())
}

/// A network namespace made for a root test, deleted (by its name) when dropped.
#[cfg(test)]
struct TestNetns(String);

#[cfg(test)]
impl TestNetns {
    fn new(label: &str) -> TestNetns {
        let name = format!("cniplumb{label}{}", std::process::id());
        assert!(Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap()
            .success());
        TestNetns(name)
    }

    fn path(&self) -> String {
        format!("/var/run/netns/{}", self.0)
    }

    /// `args` run with `ip netns exec`, which, unlike `nsenter --net`, mounts the namespace's
    /// own sysfs.
    fn exec(&self, args: &[&str]) -> String {
        Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// The host interface name of container `id`'s `eth0`, for the tests.
#[cfg(test)]
fn container(id: &str) -> String {
    host_interface_name(WorkloadIdentity::Container { id, ifname: "eth0" })
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
