//! A workload on a veth (Calico's wiring): the host end `cali...` with Calico's MAC, the
//! container end in the container's namespace.
//!
//! Checksum and segmentation offloads are turned off on both ends: the vRouter handles raw
//! frames, and a partially checksummed frame would reach the other workload unfinished.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use rtnetlink::packet_route::link::{InfoData, InfoVeth};
use rtnetlink::{LinkUnspec, LinkVeth};

use super::netlink::{within, Rtnl};
use super::{
    configure_container_end, existing_link, offloads, HostEnd, PlumbingError, Wired,
    CALICO_HOST_SIDE_MAC, CALICO_HOST_SIDE_OCTETS,
};

/// Creates and configures the veth pair for a workload: one `RTM_NEWLINK` makes the host end
/// with Calico's MAC and the container end directly in the container's namespace
/// (`IFLA_NET_NS_FD` on the peer), so no interface of the container's name ever appears on
/// the host.
pub fn wire(
    netns: &str,
    ifname: &str,
    host_if: &str,
    ip: Ipv4Addr,
    mtu: u32,
) -> Result<Wired, PlumbingError> {
    let what = format!("create veth {host_if} with peer {ifname} in {netns}");
    let target = File::open(netns).map_err(|e| PlumbingError {
        command: what.clone(),
        detail: format!("cannot open the namespace: {e}"),
    })?;
    let host = Rtnl::here("the host namespace")?;
    let peer = LinkUnspec::new_with_name(ifname)
        .mtu(mtu)
        .setns_by_fd(target.as_raw_fd())
        .build();
    let pair = LinkVeth::new(host_if, ifname)
        .mtu(mtu)
        .address(CALICO_HOST_SIDE_OCTETS.to_vec())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    host.add_link(what, pair)?;
    let result = (|| {
        let host_link = existing_link(&host, host_if)?;
        log_refused(
            host_if,
            offloads::disable(&offloads::socket_here()?, host_if),
        );
        host.set_up(host_if, host_link.index)?;
        let (ns, socket) = within(netns, "open rtnetlink and an ethtool socket", || {
            Ok((Rtnl::here(netns)?, offloads::socket_here()?))
        })?;
        log_refused(ifname, offloads::disable(&socket, ifname));
        let container_mac = configure_container_end(&ns, ifname, ip)?;
        Ok(Wired {
            host: Some(HostEnd {
                name: host_if.to_owned(),
                mac: CALICO_HOST_SIDE_MAC.to_owned(),
            }),
            container_mac,
        })
    })();
    if result.is_err() {
        // Leave nothing half-built behind: deleting the host end removes the pair.
        let _ = host.del_link(host_if);
    }
    result
}

fn log_refused(dev: &str, refused: Vec<&str>) {
    if !refused.is_empty() {
        tracing::debug!(dev, ?refused, "offloads the driver keeps on");
    }
}

/// Removes the veth pair (idempotent: a missing interface is not an error).
pub fn unwire(host_if: &str) -> Result<(), PlumbingError> {
    Rtnl::here("the host namespace")?.del_link(host_if)
}

/// CHECK: the host end is there with Calico's MAC, and the container end has the address and
/// routes ADD gave it.
pub fn check(netns: &str, ifname: &str, host_if: &str, ip: Ipv4Addr) -> Result<(), String> {
    let host = Rtnl::here("the host namespace").map_err(|e| e.to_string())?;
    let link = host
        .link(host_if)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("host interface {host_if} is missing"))?;
    if link.mac != CALICO_HOST_SIDE_OCTETS {
        return Err(format!(
            "{host_if} has MAC {}, not {CALICO_HOST_SIDE_MAC}",
            link.mac_text()
        ));
    }
    super::check_container_end(netns, ifname, ip)
}

#[cfg(test)]
mod tests {
    use super::super::{container, interface_exists, TestNetns};
    use super::*;

    /// Root: wires a fresh namespace and checks the result as a workload would see it.
    #[test]
    fn wire_check_unwire_round_trip_in_a_real_namespace() {
        let ns = TestNetns::new("veth");
        let path = ns.path();
        let host_if = container(&format!("t{}", std::process::id()));
        let ip = Ipv4Addr::new(10, 250, 0, 7);
        let wired = wire(&path, "eth0", &host_if, ip, 1400);
        let checked = check(&path, "eth0", &host_if, ip);
        let host_mtu =
            std::fs::read_to_string(format!("/sys/class/net/{host_if}/mtu")).unwrap_or_default();
        let host_mac = std::fs::read_to_string(format!("/sys/class/net/{host_if}/address"))
            .unwrap_or_default();
        let container_mac = ns.exec(&["cat", "/sys/class/net/eth0/address"]);
        let unwired = unwire(&host_if).and_then(|_| unwire(&host_if));
        let gone = !interface_exists(&host_if);
        drop(ns);
        let wired = wired.unwrap();
        assert_eq!(
            wired.host,
            Some(HostEnd {
                name: host_if.clone(),
                mac: CALICO_HOST_SIDE_MAC.into()
            })
        );
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
        assert!(err.command.contains("create veth"), "{err}");
        assert!(!interface_exists(&host_if));
    }
}
