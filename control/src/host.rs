//! Facts about the host the node runs on: its interfaces (index, MAC, MTU, queues, addresses)
//! and core count; its name and routes come from `cli::host`, which the CNI plugin shares.
//!
//! Read from sysfs and libc rather than by running `ip`, so the node needs no tools besides
//! itself.

use std::ffi::CString;
use std::net::Ipv4Addr;

use fastpath::MacAddr;

pub use cli::host::{
    default_route, default_route_interface, gateway_routes, hostname, parse_prefix, GatewayRoute,
    Ipv4Prefix,
};

pub fn core_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Names of the interfaces in this network namespace, sorted.
pub fn interface_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// What the node needs to know about one interface.
#[derive(Clone, Debug)]
pub struct InterfaceFacts {
    pub name: String,
    pub ifindex: u32,
    pub mac: MacAddr,
    pub mtu: u16,
    pub queues: u32,
    /// IPv4 addresses with prefix lengths.
    pub addrs: Vec<(Ipv4Addr, u8)>,
}

#[derive(Debug, thiserror::Error)]
pub enum InterfaceError {
    #[error("interface {0:?} does not exist in this network namespace")]
    Missing(String),
    #[error("workload {name:?}: {detail}")]
    MissingTap { name: String, detail: String },
    #[error("interface {name:?}: cannot read {what}: {detail}")]
    Unreadable {
        name: String,
        what: &'static str,
        detail: String,
    },
}

/// What the node needs to know about workload `name`'s TAP, read in the workload's namespace
/// (it has no IPv4 addresses the node uses).
pub fn tap_interface(
    name: &str,
    tap: &crate::config::TapWorkload,
) -> Result<InterfaceFacts, InterfaceError> {
    use fastpath::port::{read_tap_facts, TapError};
    match read_tap_facts(&tap.netns, &tap.ifname) {
        Ok(f) => Ok(InterfaceFacts {
            name: name.to_owned(),
            ifindex: f.ifindex,
            mac: f.mac,
            mtu: f.mtu,
            queues: 1,
            addrs: Vec::new(),
        }),
        Err(e @ (TapError::Missing { .. } | TapError::Netns { .. })) => {
            Err(InterfaceError::MissingTap {
                name: name.to_owned(),
                detail: e.to_string(),
            })
        }
        Err(e) => Err(InterfaceError::Unreadable {
            name: name.to_owned(),
            what: "its TAP",
            detail: e.to_string(),
        }),
    }
}

pub fn interface(name: &str) -> Result<InterfaceFacts, InterfaceError> {
    interface_with_addresses(name, &ipv4_addresses_by_interface())
}

/// As [`interface`], with the addresses taken from a dump made once for many interfaces.
pub fn interface_with_addresses(
    name: &str,
    addresses: &std::collections::HashMap<String, Vec<(Ipv4Addr, u8)>>,
) -> Result<InterfaceFacts, InterfaceError> {
    let cname = CString::new(name).map_err(|_| InterfaceError::Missing(name.to_owned()))?;
    // SAFETY: cname is a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        return Err(InterfaceError::Missing(name.to_owned()));
    }
    let sys = |what: &'static str| {
        std::fs::read_to_string(format!("/sys/class/net/{name}/{what}"))
            .map(|s| s.trim().to_owned())
            .map_err(|e| InterfaceError::Unreadable {
                name: name.to_owned(),
                what,
                detail: e.to_string(),
            })
    };
    let unreadable = |what: &'static str, detail: String| InterfaceError::Unreadable {
        name: name.to_owned(),
        what,
        detail,
    };
    let mac: MacAddr = sys("address")?
        .parse()
        .map_err(|e| unreadable("address", e))?;
    let mtu: u16 = sys("mtu")?
        .parse::<u32>()
        .map_err(|e| unreadable("mtu", e.to_string()))?
        .min(u16::MAX as u32) as u16;
    let queues = std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .max(1);
    let addrs = addresses.get(name).cloned().unwrap_or_default();
    Ok(InterfaceFacts {
        name: name.to_owned(),
        ifindex,
        mac,
        mtu,
        queues,
        addrs,
    })
}

/// IPv4 addresses of every interface, via one getifaddrs(3).
pub fn ipv4_addresses_by_interface() -> std::collections::HashMap<String, Vec<(Ipv4Addr, u8)>> {
    let mut out: std::collections::HashMap<String, Vec<(Ipv4Addr, u8)>> =
        std::collections::HashMap::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below; we only read it.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return out;
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || (*ifa.ifa_addr).sa_family as i32 != libc::AF_INET {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            let addr = &*(ifa.ifa_addr as *const libc::sockaddr_in);
            let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
            let len = if ifa.ifa_netmask.is_null() {
                32
            } else {
                let mask = &*(ifa.ifa_netmask as *const libc::sockaddr_in);
                u32::from_be(mask.sin_addr.s_addr).count_ones() as u8
            };
            out.entry(name).or_default().push((ip, len));
        }
        libc::freeifaddrs(head);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_facts_are_read() {
        let lo = interface("lo").unwrap();
        assert_eq!(lo.ifindex, 1);
        assert!(lo.addrs.contains(&(Ipv4Addr::LOCALHOST, 8)));
        assert!(matches!(
            interface("no-such-if0"),
            Err(InterfaceError::Missing(_))
        ));
    }
}
