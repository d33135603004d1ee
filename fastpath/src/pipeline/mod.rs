//! The packet pipeline: [`process`]`(frame, ingress port, tables, policing) -> Outcome`, what
//! a worker calls for every frame it owns. The worker acts on the verdict and counts what
//! finally became of the frame (`PipelineCounters::record`); the pipeline counts nothing.
//!
//! The pipeline is a chain of stages, each a module, run in this order (VPP's graph nodes:
//! a stage reads what the stages before it checked or set, and either ends the frame's way
//! with a verdict or hands it on). A stage's verdicts are listed in the order it checks.
//!
//! | stage | reads | sets | verdicts |
//! |---|---|---|---|
//! | 1 `input`: Ethernet, IPv4, checksum | the frame | the checked view [`Ipv4Frame`] | `Drop(BadEthernet)`; `Punt(Arp)`; `Drop(UnsupportedEtherType)`; `Drop(BadIpv4Header)` (fixed header, version, IHL >= 5, options within the frame); `Drop(BadIpv4Length)` (IHL*4 <= total length <= frame payload); `Drop(BadIpv4Checksum)` |
//! | 1a `rate_limit::sent`: the sender's limit | ingress port's `PortInfo::qos` (egress), the frame's length (a GSO frame: its segments too), `PolicyState::now_ns` | the port's shared GCRA limiter charged | `Drop(RateLimited)` (over the workload's egress limit) |
//! | 1b `l4_checksum`: offloaded checksums | protocol, fragment fields, addresses, lengths, the TCP/UDP checksum | a checksum a local sender left to offload (the pseudo-header sum only) completed: [`Outcome::checksum_completed`] | – |
//! | 1b' `segment_len`, for a GSO frame instead of 1b | IPv4 header length, protocol, total length, TCP data offset, the GSO size | the size of the packets the frame stands for, which stage 5 checks against the MTU | – |
//! | 2 `host` input: the node's own traffic | ingress port, `Tables::host`, Ethernet destination | – | from the host port and not addressed to it: `Forward(uplink)` or `Drop(PolicyDenied)` (host endpoint egress, `policy::check_host`); the rest goes on |
//! | 3 `nat_reply` | IPv4 destination, ingress kind, `Tables::snat`, flow table | datagram rewritten back to the workload; the flow counts as allowed (stage 6 skipped) | – (goes on to stage 5) |
//! | 3b `floating`: floating IPs | IPv4 destination, `Tables::floating`, flow table | destination rewritten to the workload (a tracked flow: as the flow says, stage 6 skipped; a new flow: stage 6 tracks it under the floating IP) | `Drop(NatFailed)`; `Drop(PolicyDenied)` (a tracked flow denied) |
//! | 4 `decap`: IPIP for the node | protocol, ingress kind, FIB (destination `Local`, source a tunnel peer), outer fragment | outer header stripped: [`Outcome::start`]; the inner packet goes through stage 1's IPv4 checks, then 5-7, once | `Drop(IpipUnknownSource)`; `Drop(IpipFragment)` |
//! | 5 `lookup` | destination, TTL, total length, DF, FIB, next hops, egress MTU (less 20 bytes into a tunnel) | the next hop and egress port | `Punt(NoRoute)`; `Drop(NoRoute)` (no such next hop); `Local` goes to local delivery; `Drop(Blackhole)`; `Punt(TtlExpired)` (TTL <= 1); `Drop(NoRoute)` (no such port); too big: `Punt(FragmentationNeeded { mtu })` with DF (RFC 1191), `Drop(TooBig)` without (the node does not fragment) |
//! | 5a `host` local delivery (lookup: `Local`) | ingress port, `Tables::host`, IPv4 header | Ethernet destination: the kernel's end (TTL and source MAC stay) | from the uplink: host endpoint ingress (`Drop(PolicyDenied)`), then `Forward(host port)`; from a policed workload (`policy::to_host`, tracked): `Drop(SpoofedSource)`, `Drop(PolicyDenied)`, `Drop(ToHostDenied)`; then `Forward(host port)`, or `Punt(Local)` when addressed to the gateway or there is no host port |
//! | 6 `police` | IPv4 header, transport ports, ingress and egress ports, host path, `Tables::snat`, `Tables::floating`, flow table, IP sets | datagram source-NATed (NAT outgoing; a floating IP's reply or hairpin); a reply of a flow from the host port: Ethernet destination the kernel's end | `Drop(SpoofedSource)`; `Drop(PolicyDenied)`; `Drop(NatFailed)`; `Forward(host port)` (that reply) |
//! | 7 `rewrite` | next hop MAC and tunnel, egress port MAC | MACs, TTL - 1 (RFC 1624 checksum update) | `Punt(Unresolved(nh))` (always for a connected next hop: the slow path resolves each destination);  `Forward(port)`; `Encapsulate { port, next_hop }` |
//! | 8 `rate_limit::delivered`: the receiver's limit, on a `Forward(port)` | that port's `PortInfo::qos` (ingress), the frame's length (after decapsulation, the inner frame's), `PolicyState::now_ns` | the port's shared GCRA limiter charged | `Drop(RateLimited)` (over the workload's ingress limit; else the verdict stays) |
//!
//! Never panics on any input; never allocates; never locks.
//!
//! Counting (by the worker, [`crate::counters::Fate`] and [`Outcome::marks`]): every frame
//! adds to `rx_packets`/`rx_bytes` (and to `ipip_decapsulated`, `checksums_completed` when
//! stages 4 and 1b acted) and to exactly one of `forwarded` (`Forward` and `Encapsulate`,
//! once sent), `punted` (`Arp`, `Local`, `Unresolved`, once the slow path took them) or a
//! drop reason (every `Drop`; the `NoRoute`, `TtlExpired` and `FragmentationNeeded` punts,
//! which the slow path answers with an ICMP error and then drops; a failed send as `TxFull`,
//! a failed punt as `PuntQueueFull`), so that `rx_packets == forwarded + punted +
//! total_drops()` always holds.

mod decap;
mod encap;
mod floating;
pub mod harness;
mod host;
mod input;
mod l4_checksum;
mod lookup;
mod nat_reply;
mod police;
mod rate_limit;
mod rewrite;
mod segment_len;

use crate::classifier::IpSets;
use crate::counters::{DropReason, Fate, Marks};
use crate::ids::NextHopId;
use crate::ids::PortId;
use crate::offload::Gso;
use crate::policy::{FloatingDnat, PolicyState};
use crate::tables::Tables;

pub use encap::encapsulate_ipip;
pub use input::Ipv4Frame;
pub use rewrite::forward_rewrite;

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

impl PuntReason {
    /// What became of a punted frame, which the slow path took (`delivered`) or not: the
    /// reasons the slow path answers with an ICMP error are drops either way (the frame goes
    /// no further); the others are punted, or dropped as `PuntQueueFull`.
    pub fn fate(self, delivered: bool) -> Fate {
        match self {
            PuntReason::NoRoute => Fate::Dropped(DropReason::NoRoute),
            PuntReason::TtlExpired => Fate::Dropped(DropReason::TtlExpired),
            PuntReason::FragmentationNeeded { .. } => {
                Fate::Dropped(DropReason::FragmentationNeeded)
            }
            PuntReason::Arp | PuntReason::Local | PuntReason::Unresolved(_) if delivered => {
                Fate::Punted
            }
            PuntReason::Arp | PuntReason::Local | PuntReason::Unresolved(_) => {
                Fate::Dropped(DropReason::PuntQueueFull)
            }
        }
    }
}

/// What to do with a frame after the pipeline has seen it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) frame out of this port.
    Forward(PortId),
    /// Send the (rewritten) frame out of `port` inside the IPIP tunnel of next hop `next_hop`
    /// (its `Encap::Ipip`); the worker adds the outer header with [`encapsulate_ipip`].
    Encapsulate { port: PortId, next_hop: NextHopId },
    /// Copy the frame to the slow path; the original is then released.
    Punt(PuntReason),
    /// Release the frame.
    Drop(DropReason),
}

/// A verdict and the part of the frame it applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// The frame to forward, encapsulate or punt is `frame[start..]`: 0, except after IPIP
    /// decapsulation, where the inner packet (behind a copy of the Ethernet header) starts
    /// at the outer IPv4 header's length.
    pub start: usize,
    /// Stage 1b completed a TCP or UDP checksum its sender had left to offload.
    pub checksum_completed: bool,
}

impl Outcome {
    fn whole(verdict: Verdict) -> Outcome {
        Outcome::from(verdict, 0)
    }

    fn from(verdict: Verdict, start: usize) -> Outcome {
        Outcome {
            verdict,
            start,
            checksum_completed: false,
        }
    }

    /// What the pipeline did to the frame besides its verdict, for the counters.
    #[inline]
    pub fn marks(&self) -> Marks {
        Marks {
            decapsulated: self.decapsulated(),
            checksum_completed: self.checksum_completed,
            gso: false,
        }
    }

    /// Whether the pipeline stripped an IPIP header (whatever then happened to the inner
    /// packet).
    #[inline]
    pub fn decapsulated(&self) -> bool {
        self.start != 0
    }
}

/// What policing needs besides the tables: the IP sets snapshot (read once per batch) and
/// the worker's policy state.
pub struct Policing<'a> {
    pub sets: &'a IpSets,
    pub state: &'a mut PolicyState,
}

/// How a packet reached the routing stages (5-7).
#[derive(Clone, Copy)]
struct Arrival {
    ingress: PortId,
    /// A flow the policy stage already allowed (a NAT reply): stage 6 is skipped.
    tracked: bool,
    /// Out of an IPIP tunnel.
    tunnelled: bool,
    /// A GSO frame: the IPv4 total length of the packets it stands for.
    segment_len: Option<u16>,
    /// The first packet of a flow to a floating IP: the floating IP it was addressed to
    /// (stage 3b rewrote it to the workload).
    floating_dst: Option<std::net::Ipv4Addr>,
}

/// Runs one frame through the pipeline, rewriting it in place; the verdict applies to
/// `frame[outcome.start..]`. This is what workers call.
#[inline(always)]
pub fn process(
    frame: &mut [u8],
    ingress: PortId,
    tables: &Tables,
    policing: &mut Policing<'_>,
) -> Outcome {
    process_offloaded(frame, ingress, tables, policing, None)
}

/// [`process`] for a frame that may be a GSO segment (`gso`, from a TAP port's virtio-net
/// header): routed and policed once for all the packets it stands for, its checksum left
/// partial, its size checked as theirs (stage 1b').
#[inline(always)]
pub fn process_offloaded(
    frame: &mut [u8],
    ingress: PortId,
    tables: &Tables,
    policing: &mut Policing<'_>,
    gso: Option<Gso>,
) -> Outcome {
    let bytes = frame.len();
    let mut packet = match input::ipv4(frame) {
        Ok(packet) => packet,
        Err(verdict) => return Outcome::whole(verdict),
    };
    let packets = gso.map_or(1, |gso| segment_len::count(&packet, gso));
    let now_ns = policing.state.now_ns;
    let sent = rate_limit::Cost { bytes, packets };
    if let Some(verdict) = rate_limit::sent(ingress, tables, now_ns, sent) {
        return Outcome::whole(verdict);
    }
    let (checksum_completed, segment_len) = match gso {
        None => (l4_checksum::complete(&mut packet), None),
        Some(gso) => (false, Some(segment_len::of(&packet, gso))),
    };
    let mut outcome = after_input(packet, ingress, segment_len, tables, policing);
    outcome.checksum_completed = checksum_completed;
    // The frame as it leaves: after IPIP decapsulation, the inner one.
    let delivered = rate_limit::Cost {
        bytes: bytes.saturating_sub(outcome.start),
        packets,
    };
    outcome.verdict = rate_limit::delivered(outcome.verdict, tables, now_ns, delivered);
    outcome
}

#[inline(always)]
fn after_input(
    mut packet: Ipv4Frame<'_>,
    ingress: PortId,
    segment_len: Option<u16>,
    tables: &Tables,
    policing: &mut Policing<'_>,
) -> Outcome {
    if let Some(verdict) = host::input(&packet, ingress, tables, policing) {
        return Outcome::whole(verdict);
    }
    let mut arrival = Arrival {
        ingress,
        tracked: false,
        tunnelled: false,
        segment_len,
        floating_dst: None,
    };
    let mut start = 0;
    if nat_reply::translate(&mut packet, ingress, tables, policing.state) {
        arrival.tracked = true;
    } else if let Some(dnat) = floating::translate(&mut packet, tables, policing.state) {
        match dnat {
            Ok(FloatingDnat::Tracked) => arrival.tracked = true,
            Ok(FloatingDnat::New { external }) => arrival.floating_dst = Some(external),
            Err(verdict) => return Outcome::whole(verdict),
        }
    } else if decap::applies(&packet, ingress, tables) {
        let inner;
        (start, inner) = match decap::strip(packet, tables) {
            Ok(stripped) => stripped,
            Err(verdict) => return Outcome::whole(verdict),
        };
        packet = match input::ipv4(inner) {
            Ok(inner) => inner,
            Err(verdict) => return Outcome::from(verdict, start),
        };
        arrival.tunnelled = true;
    }
    // One place the routing stages are reached from, so that they are inlined once.
    let verdict = route(packet, arrival, tables, policing);
    Outcome::from(verdict, start)
}

/// Stages 5-7: lookup (or local delivery), policy, rewrite.
#[inline(always)]
fn route(
    mut packet: Ipv4Frame<'_>,
    arrival: Arrival,
    tables: &Tables,
    policing: &mut Policing<'_>,
) -> Verdict {
    let mut fields = packet.routing_fields();
    if let Some(len) = arrival.segment_len {
        fields.total_len = len;
    }
    let egress = match lookup::route(&fields, tables) {
        Ok(lookup::Route::Out(egress)) => egress,
        Ok(lookup::Route::Local) => {
            return host::deliver_local(packet, arrival.ingress, tables, policing)
        }
        Err(verdict) => return verdict,
    };
    if let Err(verdict) = police::check(&mut packet, arrival, &egress, tables, policing) {
        return verdict;
    }
    rewrite::forward(packet, &egress)
}
