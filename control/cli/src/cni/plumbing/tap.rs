//! A workload on a TAP (`workload_interface: "tap"`): the container's interface is a
//! persistent TAP with virtio-net headers (what `ip tuntap add dev IFNAME mode tap vnet_hdr`
//! makes), which brindle-node attaches to inside the container's namespace
//! (`fastpath::port::tap`). Nothing is made on the host.
//!
//! Persistent, so that the container keeps its interface, address and routes while the node
//! restarts (and until the node attaches, the TAP has no carrier, which is harmless). Offloads
//! stay as the kernel sets them: through the TAP the container's kernel hands over whole TCP
//! segments with their checksums partial, which is the point (the node offers TSO4 and CSUM
//! when it attaches).

use std::fs::{File, OpenOptions};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;

use rtnetlink::packet_route::link::InfoKind;

use super::netlink::{within, Rtnl};
use super::{check_container_end, configure_container_end, existing_link, PlumbingError, Wired};

/// include/uapi/linux/if_tun.h.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
/// `IFLA_TUN_TYPE` and `IFLA_TUN_VNET_HDR` (include/uapi/linux/if_link.h).
const IFLA_TUN_TYPE: u16 = 3;
const IFLA_TUN_VNET_HDR: u16 = 5;

/// Creates and configures the TAP `ifname` in the namespace at `netns`. An interface of that
/// name already there is refused before anything is done: `TUNSETIFF` may take over an
/// existing TAP, and what this call did not build it must not remove on failure.
pub fn wire(netns: &str, ifname: &str, ip: Ipv4Addr, mtu: u32) -> Result<Wired, PlumbingError> {
    let ns = Rtnl::in_netns(netns)?;
    if ns.link(ifname)?.is_some() {
        return Err(PlumbingError {
            command: format!("create TAP {ifname} in {netns}"),
            detail: format!("{ifname} already exists in {netns}"),
        });
    }
    // The device goes to the namespace of the thread that opens /dev/net/tun.
    let tun = within(netns, "open /dev/net/tun", || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .map_err(|e| PlumbingError {
                command: "open /dev/net/tun".into(),
                detail: e.to_string(),
            })
    })?;
    create_persistent_tap(&tun, ifname).map_err(|detail| PlumbingError {
        command: format!("create TAP {ifname} in {netns}"),
        detail,
    })?;
    drop(tun);
    let result = (|| {
        let link = existing_link(&ns, ifname)?;
        ns.set_mtu(ifname, link.index, mtu)?;
        let container_mac = configure_container_end(&ns, ifname, ip)?;
        Ok(Wired {
            host: None,
            container_mac,
        })
    })();
    if result.is_err() {
        // Leave nothing half-built behind.
        let _ = ns.del_link(ifname);
    }
    result
}

/// `TUNSETIFF` (TAP, no packet information, virtio-net headers) then `TUNSETPERSIST`, so that
/// the device outlives this descriptor.
fn create_persistent_tap(tun: &File, ifname: &str) -> Result<(), String> {
    #[repr(C)]
    struct IfreqFlags {
        name: [u8; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    let mut request = IfreqFlags {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
        _pad: [0; 22],
    };
    let name = ifname.as_bytes();
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(format!("{ifname:?} is not an interface name"));
    }
    request.name[..name.len()].copy_from_slice(name);
    let persist: libc::c_ulong = 1;
    // SAFETY: ioctls on a descriptor owned by `tun`, with a request that outlives the call.
    unsafe {
        if libc::ioctl(tun.as_raw_fd(), TUNSETIFF, &mut request) != 0 {
            return Err(format!("TUNSETIFF: {}", std::io::Error::last_os_error()));
        }
        if libc::ioctl(tun.as_raw_fd(), TUNSETPERSIST, persist) != 0 {
            return Err(format!(
                "TUNSETPERSIST: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Removes the TAP (idempotent: a namespace or an interface already gone is not an error; a
/// TAP goes with its namespace).
pub fn unwire(netns: &str, ifname: &str) -> Result<(), PlumbingError> {
    if netns.is_empty() || !Path::new(netns).exists() {
        return Ok(());
    }
    Rtnl::in_netns(netns)?.del_link(ifname)
}

/// CHECK: `ifname` in `netns` is a TAP with virtio-net headers, with the address and the
/// default route ADD gave it.
pub fn check(netns: &str, ifname: &str, ip: Ipv4Addr) -> Result<(), String> {
    let missing = |e: String| format!("TAP {ifname} in {netns} is missing: {e}");
    let link = Rtnl::in_netns(netns)
        .and_then(|ns| ns.link(ifname))
        .map_err(|e| missing(e.to_string()))?
        .ok_or_else(|| missing("no such interface".into()))?;
    if !is_vnet_hdr_tap(&link) {
        return Err(format!(
            "{ifname} in {netns} is not a TAP with virtio-net headers"
        ));
    }
    check_container_end(netns, ifname, ip)
}

/// A TUN/TAP device reports its type (`IFF_TAP`) and whether it has virtio-net headers in
/// `IFLA_INFO_DATA`.
fn is_vnet_hdr_tap(link: &super::netlink::Link) -> bool {
    link.kind == Some(InfoKind::Tun)
        && link.tun_u8(IFLA_TUN_TYPE) == Some(IFF_TAP as u8)
        && link.tun_u8(IFLA_TUN_VNET_HDR) == Some(1)
}

/// Whether `ifname` exists in the namespace at `netns` (false when the namespace is gone).
pub fn exists_in(netns: &str, ifname: &str) -> bool {
    Rtnl::in_netns(netns)
        .and_then(|ns| ns.link(ifname))
        .is_ok_and(|link| link.is_some())
}

#[cfg(test)]
mod tests {
    use super::super::TestNetns;
    use super::*;

    /// Root: what the kernel reports for a plain TAP and for a veth is not a vnet_hdr TAP.
    #[test]
    fn a_vnet_hdr_tap_is_told_from_a_plain_tap_and_other_links() {
        let ns = TestNetns::new("tapkind");
        let path = ns.path();
        ns.exec(&["ip", "tuntap", "add", "dev", "plain0", "mode", "tap"]);
        ns.exec(&[
            "ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1",
        ]);
        let plain = Rtnl::in_netns(&path).unwrap().link("plain0").unwrap();
        let veth = Rtnl::in_netns(&path).unwrap().link("v0").unwrap();
        let made = wire(&path, "eth0", Ipv4Addr::new(10, 250, 0, 6), 1500);
        let ours = Rtnl::in_netns(&path).unwrap().link("eth0").unwrap();
        drop(ns);
        made.unwrap();
        assert!(is_vnet_hdr_tap(&ours.unwrap()));
        assert!(!is_vnet_hdr_tap(&plain.expect("ip tuntap add made plain0")));
        assert!(!is_vnet_hdr_tap(&veth.expect("ip link add made v0")));
    }

    /// Root: a TAP made, checked and removed in a fresh namespace, as a workload sees it.
    #[test]
    fn wire_check_unwire_round_trip_in_a_real_namespace() {
        let ns = TestNetns::new("tap");
        let path = ns.path();
        let ip = Ipv4Addr::new(10, 250, 0, 8);
        let wired = wire(&path, "eth0", ip, 1400);
        let checked = check(&path, "eth0", ip);
        let details = ns.exec(&["ip", "-d", "-o", "link", "show", "dev", "eth0"]);
        let routes = ns.exec(&["ip", "-4", "route", "show"]);
        let mac = ns.exec(&["cat", "/sys/class/net/eth0/address"]);
        let again = wire(&path, "eth0", ip, 1400);
        let still_there = exists_in(&path, "eth0");
        let unwired = unwire(&path, "eth0").and_then(|_| unwire(&path, "eth0"));
        let gone = !exists_in(&path, "eth0");
        drop(ns);
        let wired = wired.unwrap();
        assert_eq!(wired.host, None, "nothing on the host");
        assert_eq!(wired.container_mac, mac.trim());
        assert!(
            details.contains("tun type tap") && details.contains("vnet_hdr on"),
            "{details}"
        );
        assert!(details.contains("persist on"), "{details}");
        assert!(details.contains("mtu 1400"), "{details}");
        assert!(
            routes.contains("default via 169.254.1.1 dev eth0")
                && routes.contains("169.254.1.1 dev eth0 scope link"),
            "{routes}"
        );
        checked.unwrap();
        let again = again.unwrap_err();
        assert!(again.detail.contains("already exists"), "{again}");
        assert!(still_there, "a refused ADD removed the TAP it did not make");
        unwired.unwrap();
        assert!(gone);
        // The namespace itself gone: nothing to do.
        unwire(&path, "eth0").unwrap();
        unwire("", "eth0").unwrap();
    }

    #[test]
    fn a_failure_names_the_command_and_leaves_nothing_behind() {
        let ns = TestNetns::new("tapfail");
        let path = ns.path();
        // A TAP the kernel makes, then an MTU it refuses: the TAP goes again.
        let err = wire(&path, "eth0", Ipv4Addr::new(10, 250, 0, 9), 10);
        let left = exists_in(&path, "eth0");
        drop(ns);
        let err = err.unwrap_err();
        assert!(err.command.contains("mtu 10"), "{err}");
        assert!(!left, "a failed wire left its TAP");
        let err = wire(
            "/var/run/netns/does-not-exist",
            "eth0",
            Ipv4Addr::new(10, 0, 0, 1),
            1500,
        )
        .unwrap_err();
        assert!(err.command.contains("does-not-exist"), "{err}");
    }
}
