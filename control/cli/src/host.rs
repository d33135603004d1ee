//! Facts about the host that both the node and the command-line tools read: its name and the
//! kernel's IPv4 routes (hence the default route's interface).
//!
//! Read from procfs rather than by running `ip`, so that neither needs tools besides itself.

use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 prefix in canonical form (host bits zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Prefix {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Ipv4Prefix {
    fn mask(len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - len)
        }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask(self.len) == u32::from(self.addr)
    }

    pub fn overlaps(&self, other: &Ipv4Prefix) -> bool {
        let shorter = self.len.min(other.len);
        let m = Self::mask(shorter);
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }
}

impl std::fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv4Prefix {
    type Err = String;

    /// Accepts `a.b.c.d/len` only; host bits set are refused (as Calico refuses such a pool
    /// CIDR) rather than silently masked.
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, len) = s.split_once('/').ok_or("expected a.b.c.d/len")?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| "not an IPv4 address")?;
        let len: u8 = len.parse().map_err(|_| "prefix length is not a number")?;
        if len > 32 {
            return Err("prefix length above 32".into());
        }
        if u32::from(addr) & !Self::mask(len) != 0 {
            let network = Ipv4Addr::from(u32::from(addr) & Self::mask(len));
            return Err(format!("host bits set (did you mean {network}/{len}?)"));
        }
        Ok(Ipv4Prefix { addr, len })
    }
}

pub fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
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
            let prefix = Ipv4Prefix {
                addr: addr(cols[1])?,
                len: mask.leading_ones() as u8,
            };
            let gateway = addr(cols[2]).filter(|g| !g.is_unspecified());
            Some((cols[0].to_owned(), prefix, gateway))
        })
        .collect()
}

/// The IPv4 default route in the current network namespace: (interface, gateway).
pub fn default_route() -> Option<(String, Option<Ipv4Addr>)> {
    kernel_routes()
        .into_iter()
        .find(|(_, p, _)| p.len == 0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_canonically_and_refuse_host_bits() {
        let p: Ipv4Prefix = "10.20.0.0/24".parse().unwrap();
        assert!(p.contains(Ipv4Addr::new(10, 20, 0, 77)));
        assert!(!p.contains(Ipv4Addr::new(10, 20, 1, 1)));
        assert!("10.20.0.1/24"
            .parse::<Ipv4Prefix>()
            .unwrap_err()
            .contains("10.20.0.0/24"));
        assert!("10.20.0.0/33".parse::<Ipv4Prefix>().is_err());
        assert!("0.0.0.0/0"
            .parse::<Ipv4Prefix>()
            .unwrap()
            .contains(Ipv4Addr::new(1, 2, 3, 4)));
        let a: Ipv4Prefix = "10.0.0.0/8".parse().unwrap();
        assert!(a.overlaps(&"10.9.0.0/16".parse().unwrap()));
        assert!(!a.overlaps(&"11.0.0.0/8".parse().unwrap()));
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
}
