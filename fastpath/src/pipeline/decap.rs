//! Stage 4, IPIP decapsulation (RFC 2003 section 3): protocol 4, arrived on an uplink port,
//! addressed to the node (its destination routes `Local`).
//!
//! Reads the protocol, the ingress port's kind, the FIB (destination local, source a tunnel
//! peer), the outer fragment fields. Sets: the outer IPv4 header replaced by a copy of the
//! Ethernet header, so that `frame[start..]` is a frame of its own and nothing is moved but
//! 14 bytes; the inner packet then goes through input's IPv4 checks and the stages after
//! this one, once (an IPIP packet inside is not unwrapped again). Verdicts:
//! `Drop(IpipUnknownSource)`, `Drop(IpipFragment)`.

use crate::counters::DropReason;
use crate::ids::PortId;
use crate::tables::Tables;
use crate::wire::ethernet;
use crate::wire::ipv4::protocol;

use super::input::Ipv4Frame;
use super::lookup::{arrived_on_uplink, is_local};
use super::Verdict;

/// Whether the packet is an IPIP tunnel to this node, to unwrap.
#[inline(always)]
pub(super) fn applies(packet: &Ipv4Frame<'_>, ingress: PortId, tables: &Tables) -> bool {
    let ip = packet.ip();
    ip.protocol() == protocol::IPIP
        && arrived_on_uplink(ingress, tables)
        && is_local(ip.dst_addr(), tables)
}

/// Strips the outer header of an IPIP packet from a known node: the inner frame (not
/// checked yet) and where it starts in the outer one.
pub(super) fn strip<'a>(
    packet: Ipv4Frame<'a>,
    tables: &Tables,
) -> Result<(usize, &'a mut [u8]), Verdict> {
    let ip = packet.ip();
    // Only nodes this one routes to may tunnel to it; anyone else could inject packets past
    // the uplink's filtering by wrapping them (RFC 2003 section 4.1 leaves this to the
    // decapsulator).
    if !tables.is_tunnel_peer(ip.src_addr()) {
        return Err(Verdict::Drop(DropReason::IpipUnknownSource));
    }
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Err(Verdict::Drop(DropReason::IpipFragment));
    }
    let start = ip.header_len();
    let end = ethernet::HEADER_LEN + usize::from(ip.total_len());
    // The checked view guarantees header_len <= total_len <= what follows the Ethernet
    // header, so both ends are in range; never panic should that ever change.
    let Some(frame) = packet.into_frame().get_mut(..end) else {
        return Err(Verdict::Drop(DropReason::BadIpv4Length));
    };
    frame.copy_within(..ethernet::HEADER_LEN, start);
    Ok((start, &mut frame[start..]))
}
