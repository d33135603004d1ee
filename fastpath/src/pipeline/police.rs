//! Stage 6, policy: anti-spoofing, connection tracking, the endpoints' programs and NAT
//! outgoing for a packet routed out of a port. Which of them apply is decided in `policy`
//! alone, from the crossing (the two ports, the host path, the NAT rules): first the cheap
//! `policy::may_be_policed`, then `policy::check`. A packet of a flow already allowed (a
//! NAT reply) skips the stage.
//!
//! Reads the IPv4 header and transport ports, the ingress and egress ports, the host path,
//! `Tables::snat`, the flow table and the IP sets; sets the datagram's addresses, ports and
//! checksums when the flow is source-NATed. Verdicts: `Drop(SpoofedSource)`,
//! `Drop(PolicyDenied)`, `Drop(NatFailed)`.

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
    if arrival.tracked || !policy::may_be_policed(from, egress.port, host, snat) {
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
    };
    let owns_source = |src| routes_back_to(src, ingress, tables);
    let checked = policy::check(
        &packet.ip(),
        &crossing,
        owns_source,
        policing.sets,
        policing.state,
    );
    match checked {
        Ok(None) => Ok(()),
        Ok(Some(to)) => match translate(packet.datagram_mut(), &to) {
            Ok(()) => Ok(()),
            Err(_) => Err(Verdict::Drop(DropReason::NatFailed)),
        },
        Err(reason) => Err(Verdict::Drop(reason)),
    }
}
