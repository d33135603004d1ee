//! Stages 1a and 8, rate limits (`qos`): a workload's limits as a policer, at both ends of
//! the pipeline. Felix puts them in tc qdiscs on the workload's veth, which AF_XDP bypasses.
//!
//! - 1a `sent`: a frame from a port whose egress is limited (what the workload sends) is
//!   charged right after input, before any policy or routing work, whatever its destination
//!   (another workload, the uplink, the node, a tunnel): the tc ingress policer's place.
//! - 8 `delivered`: a frame the pipeline forwards to a port whose ingress is limited (what the
//!   workload receives) is charged last, once policy has allowed it and it has been rewritten,
//!   so that a frame the pipeline drops costs the workload nothing. Every way to a workload
//!   (routed, a NAT reply, a floating IP, out of a tunnel, hairpinned) ends in that
//!   `Forward(port)`. Frames the slow path takes (ARP, unresolved neighbours) are not charged.
//!
//! The charge is the frame's length (after IPIP decapsulation, the inner frame's) and one
//! packet, or for a GSO frame the packets it stands for (`segment_len::count`). The time is
//! `PolicyState::now_ns`, read once per batch by the worker: no clock is read per packet.
//! Reads the ingress or egress port's `PortInfo::qos`. Verdict: `Drop(RateLimited)`.

use crate::counters::DropReason;
use crate::ids::PortId;
use crate::qos::DirectionLimiter;
use crate::tables::Tables;

use super::Verdict;

/// What a frame costs against a limit.
#[derive(Clone, Copy)]
pub(super) struct Cost {
    pub bytes: usize,
    /// The packets it stands for: 1, or a GSO frame's segments.
    pub packets: u64,
}

/// Stage 1a: charges a frame to the egress limit of the port it came from. `Some` verdict:
/// over the limit.
#[inline(always)]
pub(super) fn sent(ingress: PortId, tables: &Tables, now_ns: u64, cost: Cost) -> Option<Verdict> {
    let qos = tables.ports.get(usize::from(ingress))?.qos.as_deref()?;
    refused(&qos.egress, now_ns, cost)
}

/// Stage 8: charges a frame forwarded to a port to that port's ingress limit; the verdict
/// stays unless the frame is over it.
#[inline(always)]
pub(super) fn delivered(verdict: Verdict, tables: &Tables, now_ns: u64, cost: Cost) -> Verdict {
    let Verdict::Forward(port) = verdict else {
        return verdict;
    };
    let qos = tables
        .ports
        .get(usize::from(port))
        .and_then(|p| p.qos.as_deref());
    match qos.and_then(|qos| refused(&qos.ingress, now_ns, cost)) {
        Some(drop) => drop,
        None => verdict,
    }
}

#[inline(always)]
fn refused(limiter: &DirectionLimiter, now_ns: u64, cost: Cost) -> Option<Verdict> {
    if limiter.admit_segments(now_ns, cost.bytes, cost.packets) {
        None
    } else {
        Some(Verdict::Drop(DropReason::RateLimited))
    }
}
