//! Stage 5, lookup: the FIB entry for the destination, and whether the packet may leave by
//! the route's egress port.
//!
//! Reads the IPv4 destination, TTL, total length and DF, the FIB, the next hops and the
//! egress port's MTU. Verdicts, in this order: `Punt(NoRoute)` (no entry), `Drop(NoRoute)`
//! (an entry naming a next hop that does not exist), `Drop(Blackhole)`, `Punt(TtlExpired)`,
//! `Drop(NoRoute)` (a next hop naming a port that does not exist),
//! `Punt(FragmentationNeeded { mtu })` or `Drop(TooBig)`. A `Local` entry is not a verdict:
//! the packet goes to local delivery.

use std::net::Ipv4Addr;

use crate::counters::DropReason;
use crate::ids::NextHopId;
use crate::ids::PortId;
use crate::tables::{Encap, NextHop, NextHopKind, PortInfo, PortKind, Tables, IPIP_OVERHEAD};

use super::input::RoutingFields;
use super::{PuntReason, Verdict};

/// Where the FIB sends a packet.
pub(super) enum Route<'t> {
    /// To the node itself: local delivery.
    Local,
    /// Out of a port to a neighbour.
    Out(Egress<'t>),
}

/// A next hop the packet may be sent to, and the port it is behind.
#[derive(Clone, Copy)]
pub(super) struct Egress<'t> {
    pub id: NextHopId,
    pub hop: &'t NextHop,
    pub port: &'t PortInfo,
}

#[inline(always)]
pub(super) fn route<'t>(ip: &RoutingFields, tables: &'t Tables) -> Result<Route<'t>, Verdict> {
    let Some(id) = tables.fib.lookup(u32::from(ip.dst)) else {
        return Err(Verdict::Punt(PuntReason::NoRoute));
    };
    let Some(hop) = tables.next_hops.get(id as usize) else {
        return Err(Verdict::Drop(DropReason::NoRoute));
    };
    match hop.kind {
        NextHopKind::Neighbor => {}
        NextHopKind::Local => return Ok(Route::Local),
        NextHopKind::Blackhole => return Err(Verdict::Drop(DropReason::Blackhole)),
    }
    // RFC 1812 section 5.3.1: a router discards a packet whose TTL it would lower to 0.
    if ip.ttl <= 1 {
        return Err(Verdict::Punt(PuntReason::TtlExpired));
    }
    let Some(port) = tables.ports.get(usize::from(hop.port)) else {
        return Err(Verdict::Drop(DropReason::NoRoute));
    };
    // RFC 1812 section 5.2.6 / RFC 1191: the node does not fragment, so a packet too big for
    // the link (as sent: with the tunnel header) is refused, and with DF the sender learns
    // the MTU that fits.
    let overhead = match hop.encap {
        Encap::None => 0,
        Encap::Ipip { .. } => IPIP_OVERHEAD,
    };
    let mtu = port.mtu.saturating_sub(overhead);
    if ip.total_len > mtu {
        return Err(if ip.dont_frag {
            Verdict::Punt(PuntReason::FragmentationNeeded { mtu })
        } else {
            Verdict::Drop(DropReason::TooBig)
        });
    }
    Ok(Route::Out(Egress { id, hop, port }))
}

pub(super) fn arrived_on_uplink(ingress: PortId, tables: &Tables) -> bool {
    tables
        .ports
        .get(usize::from(ingress))
        .is_some_and(|p| p.kind == PortKind::Uplink)
}

/// Whether the FIB routes `dst` to the node itself.
pub(super) fn is_local(dst: Ipv4Addr, tables: &Tables) -> bool {
    tables
        .fib
        .lookup(u32::from(dst))
        .and_then(|id| tables.next_hops.get(id as usize))
        .is_some_and(|nh| nh.kind == NextHopKind::Local)
}

/// Whether the FIB routes `src` back to the port it came from, as a neighbour with exactly
/// that address: anti-spoofing, a workload may only send from its own addresses.
pub(super) fn routes_back_to(src: Ipv4Addr, ingress: PortId, tables: &Tables) -> bool {
    tables
        .fib
        .lookup(u32::from(src))
        .and_then(|id| tables.next_hops.get(id as usize))
        .is_some_and(|nh| nh.kind == NextHopKind::Neighbor && nh.port == ingress && nh.ip == src)
}
