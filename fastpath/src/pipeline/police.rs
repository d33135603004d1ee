//! Stage 6, policy: anti-spoofing, connection tracking, the endpoints' programs and NAT
//! outgoing for a packet routed out of a port. Which of them apply is decided in `policy`
//! alone, from the crossing (the two ports, the host path, the NAT rules): first the cheap
//! `policy::may_be_policed`, then `policy::check`. A packet of a flow already allowed (a
//! NAT reply) skips the stage.
//!
//! Reads the IPv4 header and transport ports, the ingress and egress ports, the host path,
//! `Tables::snat`, `Tables::floating`, the flow table and the IP sets; sets the datagram's
//! addresses, ports and checksums when the flow is source-NATed (NAT outgoing, or the reply
//! of a flow to a floating IP, which leaves from the floating IP). Verdicts:
//! `Drop(SpoofedSource)`, `Drop(PolicyDenied)`, `Drop(NatFailed)`; `Forward(host port)` for
//! a reply of a flow that came from the node's stack (`host::deliver`), which goes back
//! there to have the stack's NAT undone (a portmap hostPort, a service).

use crate::conntrack::rewrite::translate;
use crate::counters::DropReason;
use crate::policy::{self, Crossing};
use crate::tables::{Encap, Tables};

use super::input::Ipv4Frame;
use super::lookup::{routes_back_to, Egress};
use super::{Arrival, Policing, Verdict};

#[inline(always)]
pub(super) fn check(
    packet: &mut Ipv4Frame<'_>,
    arrival: Arrival,
    egress: &Egress<'_>,
    tables: &Tables,
    policing: &mut Policing<'_>,
) -> Result<(), Verdict> {
    let ingress = arrival.ingress;
    let from = tables.ports.get(usize::from(ingress));
    let (host, snat) = (tables.host.as_ref(), tables.snat.as_ref());
    // The gate first: the crossing is only built for a packet that may be policed.
    // With floating IPs any flow may be translated, so the flow table is always asked.
    let floating = !tables.floating.is_empty();
    if arrival.tracked || !(floating || policy::may_be_policed(from, egress.port, host, snat)) {
        return Ok(());
    }
    let crossing = Crossing {
        ingress,
        from,
        egress: egress.hop.port,
        to: egress.port,
        host,
        snat,
        encapsulated: egress.hop.encap != Encap::None,
        tunnelled: arrival.tunnelled,
        floating_dst: arrival.floating_dst,
        floating,
    };
    let owns_source = |src| routes_back_to(src, ingress, tables);
    let checked = policy::check(
        &packet.ip(),
        &crossing,
        owns_source,
        policing.sets,
        policing.state,
    );
    let passed = checked.map_err(Verdict::Drop)?;
    if let Some(to) = passed.rewrite {
        translate(packet.datagram_mut(), &to).map_err(|_| Verdict::Drop(DropReason::NatFailed))?;
    }
    match host.filter(|_| passed.to_host) {
        // A reply of a flow the node's stack sent in (a hostPort or service DNAT): back to
        // the stack, whose conntrack undoes its translation.
        Some(host) => Err(super::host::deliver(packet, host)),
        None => Ok(()),
    }
}
