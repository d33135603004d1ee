//! Where packets towards another node leave the uplink: the node itself, or the gateway of
//! a route to it.

use std::net::Ipv4Addr;

use super::Routing;
use crate::config::RouteEncap;

/// Whether `ip` is on one of the uplink's subnets.
pub(super) fn on_link(addrs: &[(Ipv4Addr, u8)], ip: Ipv4Addr) -> bool {
    addrs.iter().any(|(own, len)| {
        let m = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
        u32::from(*own) & m == u32::from(ip) & m
    })
}

/// The neighbour on the uplink that packets to `node` go to: `node` itself on the uplink's
/// subnet, else the gateway of the longest route covering it, among the unencapsulated
/// static routes and the kernel's gateway routes (one level of recursion, RFC 1812 section
/// 5.2.1 style), if that gateway is on the subnet. A static route wins a tie.
pub(super) fn first_hop_to(
    addrs: &[(Ipv4Addr, u8)],
    routing: &Routing,
    node: Ipv4Addr,
) -> Option<Ipv4Addr> {
    if on_link(addrs, node) {
        return Some(node);
    }
    let configured = routing
        .routes
        .iter()
        .filter(|r| r.encap == RouteEncap::None)
        .map(|r| (r.prefix, r.via, 1));
    let kernel = routing.underlay.iter().map(|r| (r.prefix, r.gateway, 0));
    configured
        .chain(kernel)
        .filter(|(prefix, via, _)| prefix.contains(node) && *via != node && on_link(addrs, *via))
        .max_by_key(|(prefix, _, configured)| (prefix.len(), *configured))
        .map(|(_, via, _)| via)
}
