//! Stage 3b, floating IPs: a packet addressed to one of `Tables::floating`'s external
//! addresses, from any port (Felix's `cali-fip-dnat` runs in PREROUTING and OUTPUT), is
//! destination-NATed to the workload's internal address (`policy::floating_dnat`) and then
//! routed like any packet: a packet of a tracked flow as already allowed, the first packet
//! of a flow through the policy stage, which tracks the flow under the floating IP.
//!
//! Reads the IPv4 destination, `Tables::floating` and the flow table; sets the datagram's
//! addresses, ports and checksums. Verdicts: `Drop(NatFailed)`, `Drop(PolicyDenied)` (a
//! tracked flow that policy denied).

use crate::policy::{self, FloatingDnat, PolicyState};
use crate::tables::Tables;

use super::input::Ipv4Frame;
use super::Verdict;

/// `None` when the packet is not addressed to a floating IP (it goes on unchanged).
#[inline(always)]
pub(super) fn translate(
    packet: &mut Ipv4Frame<'_>,
    tables: &Tables,
    state: &mut PolicyState,
) -> Option<Result<FloatingDnat, Verdict>> {
    // Without floating IPs (the common case) this is one length check.
    let external = packet.ip().dst_addr();
    let internal = tables.floating.internal(external)?;
    Some(
        policy::floating_dnat(packet.datagram_mut(), external, internal, state)
            .map_err(Verdict::Drop),
    )
}
