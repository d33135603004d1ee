//! Facts about the host the node runs on: names, interfaces, the default route.
//!
//! Read from procfs/sysfs and libc rather than by running `ip`, so the node needs no tools
//! besides itself.

use std::ffi::CString;
use std::net::Ipv4Addr;

use fastpath::MacAddr;

pub use ipv4net::Ipv4Prefix;

/// Parses a configured pool or route prefix, `a.b.c.d/len`. Host bits set are refused (as
/// Calico refuses such a pool CIDR) rather than silently masked; the error says which
/// network was probably meant.
pub fn parse_prefix(s: &str) -> Result<Ipv4Prefix, String> {
    let (addr, len) = s.split_once('/').ok_or("expected a.b.c.d/len")?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| "not an IPv4 address")?;
    let len: u8 = len.parse().map_err(|_| "prefix length is not a number")?;
    let network = Ipv4Prefix::containing(addr, len).map_err(|_| "prefix length above 32")?;
    if network.addr() != addr {
        return Err(format!("host bits set (did you mean {network}?)"));
    }
    Ok(network)
}

pub fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

pub fn core_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A route of the kernel's main table through a gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayRoute {
    pub prefix: Ipv4Prefix,
    pub gateway: Ipv4Addr,
}

/// The kernel's IPv4 routes in the current network namespace: (interface, prefix, gateway).
fn kernel_routes() -> Vec<(String, Ipv4Prefix, Option<Ipv4Addr>)> {
    let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    parse_proc_net_route(&table)
}

/// `/proc/net/route`: columns Iface Destination Gateway Flags RefCnt Use Metric Mask ...,
/// addresses in hex, little endian.
fn parse_proc_net_route(table: &str) -> Vec<(String, Ipv4Prefix, Option<Ipv4Addr>)> {
    let addr = |hex: &str| {
        u32::from_str_radix(hex, 16)
            .ok()
            .map(|a| Ipv4Addr::from(a.swap_bytes()))
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 8 {
                return None;
            }
            let mask = u32::from(addr(cols[7])?);
            if mask.leading_ones() + mask.trailing_zeros() != 32 {
                return None;
            }
            // The kernel keeps a route's destination in network form, so nothing is masked.
            let prefix = Ipv4Prefix::containing(addr(cols[1])?, mask.leading_ones() as u8).ok()?;
            let gateway = addr(cols[2]).filter(|g| !g.is_unspecified());
            Some((cols[0].to_owned(), prefix, gateway))
        })
        .collect()
}

/// The IPv4 default route in the current network namespace: (interface, gateway).
pub fn default_route() -> Option<(String, Option<Ipv4Addr>)> {
    kernel_routes()
        .into_iter()
        .find(|(_, p, _)| p.len() == 0)
        .map(|(iface, _, gw)| (iface, gw))
}

/// The kernel's routes out of `interface` through a gateway: the host's own way to other
/// subnets (the underlay), e.g. to nodes behind a router.
pub fn gateway_routes(interface: &str) -> Vec<GatewayRoute> {
    kernel_routes()
        .into_iter()
        .filter(|(iface, _, _)| iface == interface)
        .filter_map(|(_, prefix, gateway)| {
            Some(GatewayRoute {
                prefix,
                gateway: gateway?,
            })
        })
        .collect()
}

pub fn default_route_interface() -> Option<String> {
    default_route().map(|(iface, _)| iface)
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
    #[error("interface {name:?}: cannot read {what}: {detail}")]
    Unreadable {
        name: String,
        what: &'static str,
        detail: String,
    },
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
    fn prefixes_parse_canonically_and_refuse_host_bits() {
        let p: Ipv4Prefix = parse_prefix("10.20.0.0/24").unwrap();
        assert!(p.contains(Ipv4Addr::new(10, 20, 0, 77)));
        assert!(!p.contains(Ipv4Addr::new(10, 20, 1, 1)));
        assert!(parse_prefix("10.20.0.1/24")
            .unwrap_err()
            .contains("10.20.0.0/24"));
        assert!(parse_prefix("10.20.0.0/33").is_err());
        assert!(parse_prefix("0.0.0.0/0")
            .unwrap()
            .contains(Ipv4Addr::new(1, 2, 3, 4)));
        let a: Ipv4Prefix = parse_prefix("10.0.0.0/8").unwrap();
        assert!(a.overlaps(&parse_prefix("10.9.0.0/16").unwrap()));
        assert!(!a.overlaps(&parse_prefix("11.0.0.0/8").unwrap()));
    }

    #[test]
    fn kernel_routes_are_read_from_proc_net_route() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\tFE00620A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0000620A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t0000610A\t FE00620A\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t0000610A\tFE00620A\t0003\t0\t0\t0\tFF00FFFF\t0\t0\t0
short line
";
        let routes = parse_proc_net_route(table);
        let text: Vec<String> = routes
            .iter()
            .map(|(i, p, g)| format!("{i} {p} {}", g.map(|g| g.to_string()).unwrap_or_default()))
            .collect();
        assert_eq!(
            text,
            [
                "eth0 0.0.0.0/0 10.98.0.254",
                "eth0 10.98.0.0/24 ",
                "eth0 10.97.0.0/24 10.98.0.254"
            ],
            "a non-contiguous mask and a short line are skipped"
        );
    }

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
