//! The packet pipeline: `process_frame(frame, ingress port, tables) -> verdict`.
//!
//! CONTRACT (the worker and the slow path are written against it):
//! - parse Ethernet (shorter than 14 bytes -> `Drop(BadEthernet)`); ARP -> `Punt(Arp)`; other
//!   non-IPv4 -> `Drop(UnsupportedEtherType)`;
//! - validate IPv4 in this order: fixed header, version, IHL >= 5, options within the frame ->
//!   `BadIpv4Header`; IHL*4 <= total length <= frame payload -> `BadIpv4Length`; header
//!   checksum -> `BadIpv4Checksum`;
//! - FIB lookup of the destination: none -> `Punt(NoRoute)` (counted as drop `NoRoute`);
//!   `Blackhole` -> drop; `Local` -> `Punt(Local)`; `Neighbor`: TTL <= 1 -> `Punt(TtlExpired)`
//!   (counted as drop `TtlExpired`), no MAC yet -> `Punt(Unresolved(nh))`;
//! - decrement TTL with an incremental checksum update (RFC 1624), rewrite source MAC to the
//!   egress port's and destination MAC to the next hop's -> `Forward(port)`.
//! - tables that contradict themselves (a FIB entry naming a next hop that does not exist, a
//!   next hop naming a port that does not exist) -> `Drop(NoRoute)`.
//!
//! Counting: every frame adds to `rx_packets`/`rx_bytes` and to exactly one of `forwarded`,
//! `punted` (Arp, Local, Unresolved) or a drop reason (every `Drop`, and the NoRoute and
//! TtlExpired punts, which the slow path answers with an ICMP error and then drops), so that
//! `rx_packets == forwarded + punted + total_drops()` always holds.
//!
//! Never panics on any input; never allocates; never locks.

use crate::counters::{DropReason, PipelineCounters};
use crate::tables::{MacAddr, NextHopId, NextHopKind, PortId, Tables};
use crate::wire::ethernet::{self, ethertype};
use crate::wire::{Ipv4Packet, WireError};

/// Why a frame goes to the slow path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PuntReason {
    /// An ARP packet: proxy ARP on workload ports, neighbour learning.
    Arp,
    /// TTL expired in transit: answer with ICMP time exceeded.
    TtlExpired,
    /// No route: answer with ICMP destination unreachable.
    NoRoute,
    /// The next hop's MAC is not known yet: resolve it, then send the frame on.
    Unresolved(NextHopId),
    /// Addressed to the node itself.
    Local,
}

/// What to do with a frame after the pipeline has seen it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) frame out of this port.
    Forward(PortId),
    /// Copy the frame to the slow path; the original is then released.
    Punt(PuntReason),
    /// Release the frame.
    Drop(DropReason),
}

/// A frame and the port it arrived on.
pub struct Frame<'a> {
    pub data: &'a mut [u8],
    pub ingress: PortId,
}

/// Runs one frame through the pipeline, rewriting it in place when forwarded.
#[inline]
pub fn process_frame(frame: &mut [u8], _ingress: PortId, tables: &Tables, counters: &mut PipelineCounters) -> Verdict {
    counters.rx_packets += 1;
    counters.rx_bytes += frame.len() as u64;
    let verdict = decide(frame, tables);
    account(verdict, counters);
    verdict
}

/// Runs a batch; `verdicts[i]` is the verdict for `frames[i]` (extra entries of either slice
/// are left alone).
pub fn process_batch(frames: &mut [Frame<'_>], tables: &Tables, counters: &mut PipelineCounters, verdicts: &mut [Verdict]) {
    for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
        *verdict = process_frame(frame.data, frame.ingress, tables, counters);
    }
}

/// What the pipeline does to a frame it forwards, for frames the slow path held while it
/// resolved the neighbour: TTL - 1 with an RFC 1624 checksum update (RFC 1812 section 5.3.1),
/// Ethernet source = `src` (the egress port's MAC), destination = `dst` (the neighbour's).
///
/// Returns false, leaving the frame untouched, when it is not a valid IPv4 frame or its TTL
/// is too low to forward (the pipeline would not have forwarded it either).
pub fn forward_rewrite(frame: &mut [u8], src: MacAddr, dst: MacAddr) -> bool {
    let forwardable = match parse_ipv4(frame) {
        Ok(ip) => ip.ttl() > 1,
        Err(_) => false,
    };
    if forwardable {
        rewrite(frame, src, dst);
    }
    forwardable
}

/// The routing decision, and the rewrite when the answer is `Forward`.
#[inline(always)]
fn decide(frame: &mut [u8], tables: &Tables) -> Verdict {
    let ip = match parse_ipv4(frame) {
        Ok(ip) => ip,
        Err(verdict) => return verdict,
    };
    if !ip.verify_checksum() {
        return Verdict::Drop(DropReason::BadIpv4Checksum);
    }
    let ttl = ip.ttl();
    let Some(nh_id) = tables.fib.lookup(u32::from(ip.dst_addr())) else {
        return Verdict::Punt(PuntReason::NoRoute);
    };
    let Some(nh) = tables.next_hops.get(nh_id as usize) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    match nh.kind {
        NextHopKind::Neighbor => {}
        NextHopKind::Local => return Verdict::Punt(PuntReason::Local),
        NextHopKind::Blackhole => return Verdict::Drop(DropReason::Blackhole),
    }
    // RFC 1812 section 5.3.1: a router discards a packet whose TTL it would lower to 0.
    if ttl <= 1 {
        return Verdict::Punt(PuntReason::TtlExpired);
    }
    let Some(port) = tables.ports.get(usize::from(nh.port)) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    let Some(neighbor_mac) = nh.mac() else {
        return Verdict::Punt(PuntReason::Unresolved(nh_id));
    };
    rewrite(frame, port.mac, neighbor_mac);
    Verdict::Forward(nh.port)
}

/// The checked IPv4 header of an Ethernet frame, or the verdict for a frame that has none.
#[inline(always)]
fn parse_ipv4(frame: &[u8]) -> Result<Ipv4Packet<&[u8]>, Verdict> {
    let eth = ethernet::Packet::new_checked(frame).map_err(|_| Verdict::Drop(DropReason::BadEthernet))?;
    match eth.ethertype() {
        ethertype::IPV4 => {}
        ethertype::ARP => return Err(Verdict::Punt(PuntReason::Arp)),
        _ => return Err(Verdict::Drop(DropReason::UnsupportedEtherType)),
    }
    Ipv4Packet::new_checked(eth.into_payload()).map_err(|e| match e {
        WireError::BadLength { .. } => Verdict::Drop(DropReason::BadIpv4Length),
        WireError::Truncated { .. } | WireError::BadValue { .. } => Verdict::Drop(DropReason::BadIpv4Header),
    })
}

/// Rewrites a frame whose Ethernet and IPv4 headers have been checked (by `parse_ipv4`).
#[inline(always)]
fn rewrite(frame: &mut [u8], src: MacAddr, dst: MacAddr) {
    let Some((eth, ip)) = frame.split_at_mut_checked(ethernet::HEADER_LEN) else { return };
    let mut eth = ethernet::Packet::new_unchecked(eth);
    eth.set_dst_addr(dst);
    eth.set_src_addr(src);
    Ipv4Packet::new_unchecked(ip).decrement_ttl();
}

/// Adds a verdict to exactly one of forwarded, punted or a drop reason.
#[inline(always)]
fn account(verdict: Verdict, counters: &mut PipelineCounters) {
    match verdict {
        Verdict::Forward(_) => counters.forwarded += 1,
        // The slow path turns these into ICMP errors; the frame itself goes no further.
        Verdict::Punt(PuntReason::NoRoute) => counters.drop(DropReason::NoRoute),
        Verdict::Punt(PuntReason::TtlExpired) => counters.drop(DropReason::TtlExpired),
        Verdict::Punt(PuntReason::Arp | PuntReason::Local | PuntReason::Unresolved(_)) => counters.punted += 1,
        Verdict::Drop(reason) => counters.drop(reason),
    }
}
