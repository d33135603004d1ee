//! Stage 7, rewrite: what a router does to a packet it forwards.
//!
//! Reads the next hop's MAC and tunnel, the egress port's MAC. Sets the Ethernet source
//! (the egress port's MAC) and destination (the next hop's), TTL - 1 with an incremental
//! checksum update (RFC 1624). Verdicts: `Punt(Unresolved(next hop))` (no MAC yet: the slow
//! path resolves it and sends the frame on), `Forward(port)`, `Encapsulate { port, next_hop }`
//! for a next hop with `Encap::Ipip` (the worker writes the outer header while it copies the
//! frame to the TX ring, [`super::encapsulate_ipip`], so that the pipeline never needs room
//! in front of a frame).

use crate::tables::Encap;
use crate::wire::ethernet::MacAddr;

use super::input::Ipv4Frame;
use super::lookup::Egress;
use super::{PuntReason, Verdict};

#[inline(always)]
pub(super) fn forward(mut packet: Ipv4Frame<'_>, egress: &Egress<'_>) -> Verdict {
    let Some(neighbor_mac) = egress.hop.mac() else {
        return Verdict::Punt(PuntReason::Unresolved(egress.id));
    };
    packet.forward_rewrite(egress.port.mac, neighbor_mac);
    match egress.hop.encap {
        Encap::None => Verdict::Forward(egress.hop.port),
        Encap::Ipip { .. } => Verdict::Encapsulate {
            port: egress.hop.port,
            next_hop: egress.id,
        },
    }
}

/// What the rewrite stage does to a frame it forwards, for frames the slow path held while it
/// resolved the neighbour: Ethernet source = `src` (the egress port's MAC), destination =
/// `dst` (the neighbour's), TTL - 1 (RFC 1812 section 5.3.1).
///
/// Returns false, leaving the frame untouched, when it is not a valid IPv4 frame or its TTL
/// is too low to forward (the pipeline would not have forwarded it either).
pub fn forward_rewrite(frame: &mut [u8], src: MacAddr, dst: MacAddr) -> bool {
    let Ok(mut packet) = Ipv4Frame::new_checked(frame) else {
        return false;
    };
    let forwardable = packet.ip().ttl() > 1;
    if forwardable {
        packet.forward_rewrite(src, dst);
    }
    forwardable
}
