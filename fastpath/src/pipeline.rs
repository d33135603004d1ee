//! The packet pipeline: `process(frame, ingress port, tables) -> verdict`.
//!
//! CONTRACT (the worker and the slow path are written against it):
//! - parse Ethernet (shorter than 14 bytes -> `Drop(BadEthernet)`); ARP -> `Punt(Arp)`; other
//!   non-IPv4 -> `Drop(UnsupportedEtherType)`;
//! - validate IPv4 in this order: fixed header, version, IHL >= 5, options within the frame ->
//!   `BadIpv4Header`; IHL*4 <= total length <= frame payload -> `BadIpv4Length`; header
//!   checksum -> `BadIpv4Checksum`;
//! - IPIP decapsulation (RFC 2003 section 3): protocol 4, arrived on an uplink port, addressed
//!   to the node (its destination routes `Local`): from a source that is not a known node
//!   (`Tables::is_tunnel_peer`) -> `Drop(IpipUnknownSource)`; an outer fragment ->
//!   `Drop(IpipFragment)`; otherwise the outer IPv4 header is replaced by a copy of the
//!   Ethernet header, `ipip_decapsulated` counts it, and the inner packet goes through the
//!   steps below (once: an IPIP packet inside is not unwrapped again). The verdict then
//!   applies to `frame[start..]` ([`Outcome::start`]);
//! - FIB lookup of the destination: none -> `Punt(NoRoute)` (counted as drop `NoRoute`);
//!   `Blackhole` -> drop; `Local` -> `Punt(Local)`; `Neighbor`: TTL <= 1 -> `Punt(TtlExpired)`
//!   (counted as drop `TtlExpired`); total length above the egress port's MTU (less 20 bytes
//!   when the next hop encapsulates) -> with DF `Punt(FragmentationNeeded { mtu })` (counted
//!   as drop `FragmentationNeeded`; the slow path sends ICMP type 3 code 4, RFC 1191), without
//!   DF `Drop(TooBig)` (the node does not fragment); no MAC yet -> `Punt(Unresolved(nh))`;
//! - the node's stack (`Tables::host`, a host port): a frame from the host port addressed to
//!   it (the kernel routed it to a workload) is routed as any; any other frame from it is the
//!   node's own traffic out of the uplink (a host endpoint's TC program redirected it): with
//!   the endpoint's programs (`policy::check_host`, egress), out of the uplink as it is ->
//!   `Forward(uplink)`. A packet for the node from the uplink: the endpoint's programs
//!   (ingress) when one is enforced, then delivered to the kernel's end -> `Forward(host
//!   port)`; denied -> `Drop(PolicyDenied)`. Delivering leaves the TTL and source MAC alone;
//! - a packet for the node itself from a policed workload (`policy::to_host`, tracked): a
//!   foreign source -> `Drop(SpoofedSource)`, its egress program denies -> `Drop(PolicyDenied)`,
//!   `defaultEndpointToHostAction: Drop` -> `Drop(ToHostDenied)`; then delivered to the host
//!   port, or `Punt(Local)` when addressed to the workloads' gateway or there is no host port;
//! - policy (`policy::check`), for a packet from or to a policed workload port: a source
//!   that is not the sending workload's -> `Drop(SpoofedSource)`; the flow table or the
//!   endpoints' programs deny -> `Drop(PolicyDenied)`;
//! - decrement TTL with an incremental checksum update (RFC 1624), rewrite source MAC to the
//!   egress port's and destination MAC to the next hop's -> `Forward(port)`, or for a next hop
//!   with `Encap::Ipip` -> `Encapsulate { port, next_hop }`: the worker writes the outer IPv4
//!   header while it copies the frame to the TX ring ([`encapsulate_ipip`]), so that the
//!   pipeline never needs room in front of a frame.
//! - tables that contradict themselves (a FIB entry naming a next hop that does not exist, a
//!   next hop naming a port that does not exist) -> `Drop(NoRoute)`.
//!
//! Counting: every frame adds to `rx_packets`/`rx_bytes` and to exactly one of `forwarded`
//! (`Forward` and `Encapsulate`), `punted` (Arp, Local, Unresolved) or a drop reason (every
//! `Drop`, and the NoRoute, TtlExpired and FragmentationNeeded punts, which the slow path
//! answers with an ICMP error and then drops), so that
//! `rx_packets == forwarded + punted + total_drops()` always holds.
//!
//! Never panics on any input; never allocates; never locks.

use std::net::Ipv4Addr;

use std::sync::LazyLock;

use crate::classifier::IpSets;
use crate::conntrack::rewrite::translate;
use crate::counters::{DropReason, PipelineCounters};
use crate::ids::{NextHopId, PortId};
use crate::policy::{self, HostDirection, PolicyState};
use crate::tables::{Encap, HostPath, NextHopKind, PortKind, Tables, IPIP_OVERHEAD};
use crate::wire::ethernet::{self, ethertype, MacAddr};
use crate::wire::ipv4::{self, protocol};
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
    /// Too big for the egress link and DF set: answer with ICMP fragmentation needed carrying
    /// `mtu`, the largest packet the next hop takes (RFC 1191 section 4).
    FragmentationNeeded { mtu: u16 },
}

/// What to do with a frame after the pipeline has seen it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) frame out of this port.
    Forward(PortId),
    /// Send the (rewritten) frame out of `port` inside the IPIP tunnel of next hop `next_hop`
    /// (its [`Encap::Ipip`]); the worker adds the outer header with [`encapsulate_ipip`].
    Encapsulate { port: PortId, next_hop: NextHopId },
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

/// A verdict and the part of the frame it applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// The frame to forward, encapsulate or punt is `frame[start..]`: 0, except after IPIP
    /// decapsulation, where the inner packet (behind a copy of the Ethernet header) starts
    /// at the outer IPv4 header's length.
    pub start: usize,
}

impl Outcome {
    fn whole(verdict: Verdict) -> Outcome {
        Outcome { verdict, start: 0 }
    }
}

/// What policing needs besides the tables: the IP sets snapshot (read once per batch) and
/// the worker's policy state.
pub struct Policing<'a> {
    pub sets: &'a IpSets,
    pub state: &'a mut PolicyState,
}

/// Runs one frame through the pipeline, rewriting it in place when forwarded; the verdict
/// applies to `frame[outcome.start..]`. This is what workers call.
#[inline]
pub fn process_policed(
    frame: &mut [u8],
    ingress: PortId,
    tables: &Tables,
    counters: &mut PipelineCounters,
    policing: &mut Policing<'_>,
) -> Outcome {
    counters.rx_packets += 1;
    counters.rx_bytes += frame.len() as u64;
    let outcome = decide(frame, ingress, tables, counters, policing);
    account(outcome.verdict, counters);
    outcome
}

/// [`process_policed`] without IP sets or flow tracking: policed ports are checked packet by
/// packet (replies too), with every IP set empty. For tests and benchmarks of the stateless
/// parts.
#[inline]
pub fn process(
    frame: &mut [u8],
    ingress: PortId,
    tables: &Tables,
    counters: &mut PipelineCounters,
) -> Outcome {
    static NO_SETS: LazyLock<IpSets> = LazyLock::new(IpSets::default);
    let mut state = PolicyState::stateless();
    process_policed(
        frame,
        ingress,
        tables,
        counters,
        &mut Policing {
            sets: &NO_SETS,
            state: &mut state,
        },
    )
}

/// [`process`] for callers that only look at the verdict. After an IPIP decapsulation the
/// verdict is about the inner packet, which starts further in: use [`process`] to act on it.
#[inline]
pub fn process_frame(
    frame: &mut [u8],
    ingress: PortId,
    tables: &Tables,
    counters: &mut PipelineCounters,
) -> Verdict {
    process(frame, ingress, tables, counters).verdict
}

/// Runs a batch; `verdicts[i]` is the verdict for `frames[i]` (extra entries of either slice
/// are left alone).
pub fn process_batch(
    frames: &mut [Frame<'_>],
    tables: &Tables,
    counters: &mut PipelineCounters,
    verdicts: &mut [Verdict],
) {
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

/// Decapsulation when the frame is IPIP for this node, then the routing decision.
#[inline(always)]
fn decide(
    frame: &mut [u8],
    ingress: PortId,
    tables: &Tables,
    counters: &mut PipelineCounters,
    policing: &mut Policing<'_>,
) -> Outcome {
    let ip = match parse_ipv4(frame) {
        Ok(ip) => ip,
        Err(verdict) => return Outcome::whole(verdict),
    };
    if !ip.verify_checksum() {
        return Outcome::whole(Verdict::Drop(DropReason::BadIpv4Checksum));
    }
    // From the node's stack: what the kernel routed to the vRouter (addressed to the host
    // port: to a workload) is routed below; the rest is the node's own traffic out of the
    // uplink, redirected here by the TC program of a host endpoint.
    if let Some(host) = tables.host.as_ref().filter(|h| h.port == ingress) {
        if !addressed_to_port(frame, ingress, tables) {
            return Outcome::whole(from_host(&ip, host, policing));
        }
    }
    let next = next_step(&ip, ingress, tables);
    // A reply to a source-NATed flow (or an ICMP error about one): back to the workload, then
    // routed like any packet, its flow already allowed. Anything else addressed to the node
    // (a tunnel, the node's own traffic) goes on unchanged.
    let nat_node = tables.snat.as_ref().map(|s| s.node);
    if nat_node == Some(ip.dst_addr()) && arrived_on_uplink(ingress, tables) {
        let end = ethernet::HEADER_LEN + usize::from(ip.total_len());
        if let Some(datagram) = frame.get_mut(ethernet::HEADER_LEN..end) {
            if policy::nat_reply(datagram, policing.state) {
                return Outcome::whole(route_tracked(frame, ingress, tables, policing));
            }
        }
    }
    match next {
        Next::Route(fields) => Outcome::whole(route(frame, fields, ingress, tables, policing)),
        Next::Decapsulate(tunnel) => {
            decapsulate(frame, tunnel, ingress, tables, counters, policing)
        }
    }
}

/// What happens to a checked packet: routed as it is, or unwrapped first (RFC 2003 section 3:
/// IPIP that arrived on the uplink addressed to the node).
enum Next {
    Route(RoutingFields),
    Decapsulate(OuterHeader),
}

#[inline(always)]
fn next_step(ip: &Ipv4Packet<&[u8]>, ingress: PortId, tables: &Tables) -> Next {
    if ip.protocol() != protocol::IPIP
        || !arrived_on_uplink(ingress, tables)
        || !is_local(ip.dst_addr(), tables)
    {
        return Next::Route(RoutingFields::of(ip));
    }
    Next::Decapsulate(OuterHeader {
        src: ip.src_addr(),
        header_len: ip.header_len(),
        total_len: usize::from(ip.total_len()),
        fragment: ip.more_frags() || ip.frag_offset() != 0,
    })
}

/// Routes a packet of a flow the policy stage already allowed (a NAT reply, rewritten).
fn route_tracked(
    frame: &mut [u8],
    ingress: PortId,
    tables: &Tables,
    policing: &mut Policing<'_>,
) -> Verdict {
    match parse_ipv4(frame) {
        Ok(ip) => {
            let fields = RoutingFields {
                tracked: true,
                ..RoutingFields::of(&ip)
            };
            route(frame, fields, ingress, tables, policing)
        }
        Err(verdict) => verdict,
    }
}

/// What decapsulation needs of an outer IPv4 header (read before the frame is rewritten).
struct OuterHeader {
    src: Ipv4Addr,
    header_len: usize,
    total_len: usize,
    fragment: bool,
}

/// RFC 2003 section 3: strips the outer header of an IPIP packet from a known node and routes
/// the inner packet. The Ethernet header is copied over the end of the outer IPv4 header, so
/// that `frame[header_len..]` is a frame of its own and nothing is moved but 14 bytes.
fn decapsulate(
    frame: &mut [u8],
    outer: OuterHeader,
    ingress: PortId,
    tables: &Tables,
    counters: &mut PipelineCounters,
    policing: &mut Policing<'_>,
) -> Outcome {
    // Only nodes this one routes to may tunnel to it; anyone else could inject packets past
    // the uplink's filtering by wrapping them (RFC 2003 section 4.1 leaves this to the
    // decapsulator).
    if !tables.is_tunnel_peer(outer.src) {
        return Outcome::whole(Verdict::Drop(DropReason::IpipUnknownSource));
    }
    if outer.fragment {
        return Outcome::whole(Verdict::Drop(DropReason::IpipFragment));
    }
    // parse_ipv4 checked header_len <= total_len <= frame payload, so both ends are in range.
    let start = outer.header_len;
    let end = ethernet::HEADER_LEN + outer.total_len;
    let Some(inner) = frame.get_mut(..end) else {
        return Outcome::whole(Verdict::Drop(DropReason::BadIpv4Length));
    };
    counters.ipip_decapsulated += 1;
    inner.copy_within(..ethernet::HEADER_LEN, start);
    let inner = &mut inner[start..];
    let verdict = match parse_ipv4(inner) {
        Ok(ip) if !ip.verify_checksum() => Verdict::Drop(DropReason::BadIpv4Checksum),
        Ok(ip) => {
            let fields = RoutingFields {
                tunnelled: true,
                ..RoutingFields::of(&ip)
            };
            route(inner, fields, ingress, tables, policing)
        }
        Err(verdict) => verdict,
    };
    Outcome { verdict, start }
}

/// The header fields routing reads, taken from a checked header before the frame is
/// borrowed for the rewrite.
#[derive(Clone, Copy)]
struct RoutingFields {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    total_len: u16,
    dont_frag: bool,
    /// The packet belongs to a flow the policy stage already allowed (a NAT reply).
    tracked: bool,
    /// The packet came out of an IPIP tunnel.
    tunnelled: bool,
}

impl RoutingFields {
    #[inline(always)]
    fn of(ip: &Ipv4Packet<&[u8]>) -> RoutingFields {
        RoutingFields {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            ttl: ip.ttl(),
            total_len: ip.total_len(),
            dont_frag: ip.dont_frag(),
            tracked: false,
            tunnelled: false,
        }
    }
}

/// The FIB decision for a frame whose Ethernet and IPv4 headers `parse_ipv4` checked (and
/// whose fields are `ip`), and the rewrite when it is forwarded.
#[inline(always)]
fn route(
    frame: &mut [u8],
    ip: RoutingFields,
    ingress: PortId,
    tables: &Tables,
    policing: &mut Policing<'_>,
) -> Verdict {
    let RoutingFields {
        src,
        dst,
        ttl,
        total_len,
        dont_frag,
        tracked,
        tunnelled,
    } = ip;
    let Some(nh_id) = tables.fib.lookup(u32::from(dst)) else {
        return Verdict::Punt(PuntReason::NoRoute);
    };
    let Some(nh) = tables.next_hops.get(nh_id as usize) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    match nh.kind {
        NextHopKind::Neighbor => {}
        NextHopKind::Local => return to_host(frame, ingress, tables, policing),
        NextHopKind::Blackhole => return Verdict::Drop(DropReason::Blackhole),
    }
    // RFC 1812 section 5.3.1: a router discards a packet whose TTL it would lower to 0.
    if ttl <= 1 {
        return Verdict::Punt(PuntReason::TtlExpired);
    }
    let Some(port) = tables.ports.get(usize::from(nh.port)) else {
        return Verdict::Drop(DropReason::NoRoute);
    };
    // RFC 1812 section 5.2.6 / RFC 1191: the node does not fragment, so a packet too big for
    // the link (as sent: with the tunnel header) is refused, and with DF the sender learns
    // the MTU that fits.
    let overhead = match nh.encap {
        Encap::None => 0,
        Encap::Ipip { .. } => IPIP_OVERHEAD,
    };
    let mtu = port.mtu.saturating_sub(overhead);
    if total_len > mtu {
        return if dont_frag {
            Verdict::Punt(PuntReason::FragmentationNeeded { mtu })
        } else {
            Verdict::Drop(DropReason::TooBig)
        };
    }
    let from_policed = tables
        .ports
        .get(usize::from(ingress))
        .is_some_and(|p| p.policy.is_some());
    // NAT outgoing: out of the uplink, unencapsulated, from a NAT pool to outside every pool.
    let snat = match (&tables.snat, nh.encap) {
        (Some(rules), Encap::None) if port.kind == PortKind::Uplink && rules.applies(src, dst) => {
            Some(rules.node)
        }
        _ => None,
    };
    let through_host = tables
        .host
        .as_ref()
        .is_some_and(|h| h.policy.is_some() && (h.uplink == ingress || h.uplink == nh.port));
    if !tracked && (from_policed || port.policy.is_some() || snat.is_some() || through_host) {
        // parse_ipv4 checked this header before; the view is read-only.
        let Ok(packet) = parse_ipv4(frame) else {
            return Verdict::Drop(DropReason::BadIpv4Header);
        };
        match policy::check(
            &packet,
            ingress,
            nh.port,
            snat,
            tunnelled,
            tables,
            policing.sets,
            policing.state,
        ) {
            Err(reason) => return Verdict::Drop(reason),
            Ok(None) => {}
            Ok(Some(to)) => {
                if translate(&mut frame[ethernet::HEADER_LEN..], &to).is_err() {
                    return Verdict::Drop(DropReason::NatFailed);
                }
            }
        }
    }
    let Some(neighbor_mac) = nh.mac() else {
        return Verdict::Punt(PuntReason::Unresolved(nh_id));
    };
    rewrite(frame, port.mac, neighbor_mac);
    match nh.encap {
        Encap::None => Verdict::Forward(nh.port),
        Encap::Ipip { .. } => Verdict::Encapsulate {
            port: nh.port,
            next_hop: nh_id,
        },
    }
}

/// A packet for the node itself (or the workloads' gateway). From the uplink: through the
/// host endpoint's programs, if one is enforced, into the node's stack. From a workload: its
/// policy (`policy::to_host`), then into the node's stack, or to the slow path when addressed
/// to the gateway (echo replies) or when there is no host port.
fn to_host(
    frame: &mut [u8],
    ingress: PortId,
    tables: &Tables,
    policing: &mut Policing<'_>,
) -> Verdict {
    let Ok(packet) = parse_ipv4(frame) else {
        return Verdict::Drop(DropReason::BadIpv4Header);
    };
    if let Some(host) = tables.host.as_ref().filter(|h| h.uplink == ingress) {
        if let Some(policy) = &host.policy {
            let checked = policy::check_host(
                &packet,
                HostDirection::ToHost,
                policy,
                host.uplink,
                policing.sets,
                policing.state,
            );
            if let Err(reason) = checked {
                return Verdict::Drop(reason);
            }
        }
        return deliver(frame, host);
    }
    if let Err(reason) = policy::to_host(&packet, ingress, tables, policing.sets, policing.state) {
        return Verdict::Drop(reason);
    }
    let gateway = tables.ports.get(usize::from(ingress)).map(|p| p.ip);
    match tables.host.as_ref() {
        Some(host) if ingress != host.port && Some(packet.dst_addr()) != gateway => {
            deliver(frame, host)
        }
        _ => Verdict::Punt(PuntReason::Local),
    }
}

/// Hands a packet to the node's stack: out of the host port, addressed to the kernel's end
/// (the kernel drops frames for other hosts). Delivered, not routed: the TTL stays.
fn deliver(frame: &mut [u8], host: &HostPath) -> Verdict {
    let mut eth = ethernet::Packet::new_unchecked(&mut frame[..]);
    eth.set_dst_addr(host.kernel_mac);
    Verdict::Forward(host.port)
}

/// A packet the node sends out of the uplink: its host endpoint's egress programs, then out
/// as it is (the kernel routed it and wrote its Ethernet header).
fn from_host(ip: &Ipv4Packet<&[u8]>, host: &HostPath, policing: &mut Policing<'_>) -> Verdict {
    if let Some(policy) = &host.policy {
        if let Err(reason) = policy::check_host(
            ip,
            HostDirection::FromHost,
            policy,
            host.uplink,
            policing.sets,
            policing.state,
        ) {
            return Verdict::Drop(reason);
        }
    }
    Verdict::Forward(host.uplink)
}

/// Whether a frame's Ethernet destination is the port's own MAC (checked frame).
fn addressed_to_port(frame: &[u8], port: PortId, tables: &Tables) -> bool {
    let dst = ethernet::Packet::new_checked(frame).map(|eth| eth.dst_addr());
    tables
        .ports
        .get(usize::from(port))
        .is_some_and(|p| dst.is_ok_and(|d| d == p.mac))
}

fn arrived_on_uplink(ingress: PortId, tables: &Tables) -> bool {
    tables
        .ports
        .get(usize::from(ingress))
        .is_some_and(|p| p.kind == PortKind::Uplink)
}

fn is_local(dst: Ipv4Addr, tables: &Tables) -> bool {
    tables
        .fib
        .lookup(u32::from(dst))
        .and_then(|id| tables.next_hops.get(id as usize))
        .is_some_and(|nh| nh.kind == NextHopKind::Local)
}

/// Writes `frame` (Ethernet + IPv4, as the pipeline left it for an `Encapsulate` verdict) into
/// `out` wrapped in IPIP from `local` to `remote` (RFC 2003 section 3.1): the frame's Ethernet
/// header, an outer IPv4 header without options (protocol 4, TTL 64, DSCP/ECN and DF copied
/// from the inner header, identification `ident`, checksum), then the inner packet up to its
/// total length (Ethernet padding is not carried). Returns the length written; `None` when
/// `frame` is not IPv4 or `out` is too small (nothing useful is written then).
pub fn encapsulate_ipip(
    frame: &[u8],
    local: Ipv4Addr,
    remote: Ipv4Addr,
    ident: u16,
    out: &mut [u8],
) -> Option<usize> {
    let eth = ethernet::Packet::new_checked(frame).ok()?;
    let inner = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let inner_len = usize::from(inner.total_len());
    let outer_start = ethernet::HEADER_LEN;
    let inner_start = outer_start + ipv4::HEADER_LEN;
    let total = inner_start + inner_len;
    let out = out.get_mut(..total)?;
    let outer = ipv4::Ipv4Repr {
        ttl: OUTER_TTL,
        dscp: inner.dscp(),
        ecn: inner.ecn(),
        ident,
        dont_frag: inner.dont_frag(),
        ..ipv4::Ipv4Repr::new(local, remote, protocol::IPIP, inner.total_len())
    };
    out[..outer_start].copy_from_slice(&frame[..outer_start]);
    outer.emit(&mut out[outer_start..]).ok()?;
    out[inner_start..].copy_from_slice(inner.datagram());
    Some(total)
}

/// TTL of the outer header (RFC 2003 section 3.1: "the default TTL ... for IP datagrams").
const OUTER_TTL: u8 = 64;

/// The checked IPv4 header of an Ethernet frame, or the verdict for a frame that has none.
#[inline(always)]
fn parse_ipv4(frame: &[u8]) -> Result<Ipv4Packet<&[u8]>, Verdict> {
    let eth =
        ethernet::Packet::new_checked(frame).map_err(|_| Verdict::Drop(DropReason::BadEthernet))?;
    match eth.ethertype() {
        ethertype::IPV4 => {}
        ethertype::ARP => return Err(Verdict::Punt(PuntReason::Arp)),
        _ => return Err(Verdict::Drop(DropReason::UnsupportedEtherType)),
    }
    Ipv4Packet::new_checked(eth.into_payload()).map_err(|e| match e {
        WireError::BadLength { .. } => Verdict::Drop(DropReason::BadIpv4Length),
        WireError::Truncated { .. } | WireError::BadValue { .. } => {
            Verdict::Drop(DropReason::BadIpv4Header)
        }
    })
}

/// Rewrites a frame whose Ethernet and IPv4 headers have been checked (by `parse_ipv4`).
#[inline(always)]
fn rewrite(frame: &mut [u8], src: MacAddr, dst: MacAddr) {
    let Some((eth, ip)) = frame.split_at_mut_checked(ethernet::HEADER_LEN) else {
        return;
    };
    let mut eth = ethernet::Packet::new_unchecked(eth);
    eth.set_dst_addr(dst);
    eth.set_src_addr(src);
    Ipv4Packet::new_unchecked(ip).decrement_ttl();
}

/// Adds a verdict to exactly one of forwarded, punted or a drop reason.
#[inline(always)]
fn account(verdict: Verdict, counters: &mut PipelineCounters) {
    match verdict {
        Verdict::Forward(_) | Verdict::Encapsulate { .. } => counters.forwarded += 1,
        // The slow path turns these into ICMP errors; the frame itself goes no further.
        Verdict::Punt(PuntReason::NoRoute) => counters.drop(DropReason::NoRoute),
        Verdict::Punt(PuntReason::TtlExpired) => counters.drop(DropReason::TtlExpired),
        Verdict::Punt(PuntReason::FragmentationNeeded { .. }) => {
            counters.drop(DropReason::FragmentationNeeded)
        }
        Verdict::Punt(PuntReason::Arp | PuntReason::Local | PuntReason::Unresolved(_)) => {
            counters.punted += 1
        }
        Verdict::Drop(reason) => counters.drop(reason),
    }
}
