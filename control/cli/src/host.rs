//! Facts about the host that both the node and the command-line tools read: its name and the
//! kernel's IPv4 routes (hence the default route's interface).
//!
//! Read from procfs rather than by running `ip`, so that neither needs tools besides itself.

use std::net::Ipv4Addr;

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
}
