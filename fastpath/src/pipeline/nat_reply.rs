//! Stage 3, NAT reply: a packet from the uplink addressed to the node's NAT address that
//! belongs to a source-NATed flow (a reply, or an ICMP error about the flow) is rewritten
//! back to the workload (`policy::nat_reply`) and then routed like any packet, its flow
//! already allowed. Anything else addressed to the node (a tunnel, the node's own traffic)
//! goes on unchanged.
//!
//! Reads the IPv4 destination, the ingress port's kind, `Tables::snat` and the flow table;
//! sets the datagram's addresses, ports and checksums. No verdict of its own.

use crate::ids::PortId;
use crate::policy::{self, PolicyState};
use crate::tables::Tables;

use super::input::Ipv4Frame;
use super::lookup::arrived_on_uplink;

/// True when the packet was a NAT reply and has been rewritten to the workload.
#[inline(always)]
pub(super) fn translate(
    packet: &mut Ipv4Frame<'_>,
    ingress: PortId,
    tables: &Tables,
    state: &mut PolicyState,
) -> bool {
    // The NAT rules first: without NAT outgoing (the common case) no header field is read.
    tables
        .snat
        .as_ref()
        .is_some_and(|s| s.node == packet.ip().dst_addr())
        && arrived_on_uplink(ingress, tables)
        && policy::nat_reply(packet.datagram_mut(), state)
}
