//! The node's own stack (`Tables::host`, a host port whose other end is the kernel's):
//! stage 2, host input, for what comes from it, and local delivery, the lookup's `Local`
//! branch, for what goes to it.

use crate::ids::PortId;
use crate::policy::{self, HostDirection};
use crate::tables::{HostPath, Tables};

use super::input::Ipv4Frame;
use super::lookup::routes_back_to;
use super::{Policing, PuntReason, Verdict};

/// Stage 2, host input: a frame from the host port not addressed to that port's MAC is the
/// node's own traffic out of the uplink (a host endpoint's TC program redirected it): the
/// endpoint's egress programs (`policy::check_host`), then out of the uplink as it is (the
/// kernel routed it and wrote its Ethernet header). `None` for every other frame, which goes
/// on to be routed (from the host port: the kernel routed it to a workload).
///
/// Reads the ingress port, `Tables::host`, the Ethernet destination. Verdicts:
/// `Forward(uplink)`, `Drop(PolicyDenied)`.
#[inline(always)]
pub(super) fn input(
    packet: &Ipv4Frame<'_>,
    ingress: PortId,
    tables: &Tables,
    policing: &mut Policing<'_>,
) -> Option<Verdict> {
    let host = tables.host.as_ref().filter(|h| h.port == ingress)?;
    let port_mac = tables.ports.get(usize::from(ingress)).map(|p| p.mac);
    if port_mac == Some(packet.eth_dst()) {
        return None;
    }
    if let Some(policy) = &host.policy {
        if let Err(reason) = policy::check_host(
            &packet.ip(),
            HostDirection::FromHost,
            policy,
            host.uplink,
            policing.sets,
            policing.state,
        ) {
            return Some(Verdict::Drop(reason));
        }
    }
    Some(Verdict::Forward(host.uplink))
}

/// Local delivery: a packet the FIB routes to the node itself (or the workloads' gateway).
/// From the uplink: the host endpoint's ingress programs, if one is enforced, then into the
/// node's stack. From a workload: its policy (`policy::to_host`, tracked; its source must be
/// its own), then into the node's stack, or to the slow path when addressed to the gateway
/// (echo replies) or when there is no host port.
///
/// Reads the ingress port, `Tables::host`, the IPv4 header; sets the Ethernet destination to
/// the kernel's end. Verdicts: `Forward(host port)`, `Punt(Local)`, `Drop(SpoofedSource)`,
/// `Drop(PolicyDenied)`, `Drop(ToHostDenied)`.
pub(super) fn deliver_local(
    mut packet: Ipv4Frame<'_>,
    ingress: PortId,
    tables: &Tables,
    policing: &mut Policing<'_>,
) -> Verdict {
    if let Some(host) = tables.host.as_ref().filter(|h| h.uplink == ingress) {
        if let Some(policy) = &host.policy {
            let checked = policy::check_host(
                &packet.ip(),
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
        return deliver(&mut packet, host);
    }
    let from = tables.ports.get(usize::from(ingress));
    let sender = from.and_then(|p| p.policy.as_deref());
    let owns_source = |src| routes_back_to(src, ingress, tables);
    if let Err(reason) = policy::to_host(
        &packet.ip(),
        ingress,
        sender,
        owns_source,
        policing.sets,
        policing.state,
    ) {
        return Verdict::Drop(reason);
    }
    let gateway = from.map(|p| p.ip);
    match tables.host.as_ref() {
        Some(host) if ingress != host.port && Some(packet.ip().dst_addr()) != gateway => {
            deliver(&mut packet, host)
        }
        _ => Verdict::Punt(PuntReason::Local),
    }
}

/// Hands a packet to the node's stack: out of the host port, addressed to the kernel's end
/// (the kernel drops frames for other hosts). Delivered, not routed: the TTL and the source
/// MAC stay.
pub(super) fn deliver(packet: &mut Ipv4Frame<'_>, host: &HostPath) -> Verdict {
    packet.set_eth_dst(host.kernel_mac);
    Verdict::Forward(host.port)
}
