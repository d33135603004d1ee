//! The packet pipeline: `process_frame(frame, ingress port, tables) -> verdict`.
//!
//! CONTRACT (implemented by the pipeline work item):
//! - parse Ethernet; ARP -> `Punt(Arp)`; other non-IPv4 -> `Drop(UnsupportedEtherType)`;
//! - validate IPv4 (version, IHL >= 5, total length, header checksum) -> drop reasons;
//! - FIB lookup of the destination: none -> `Punt(NoRoute)` (counted as drop `NoRoute`);
//!   `Blackhole` -> drop; `Local` -> `Punt(Local)`; `Neighbor` with no MAC yet ->
//!   `Punt(Unresolved(nh))`;
//! - TTL <= 1 -> `Punt(TtlExpired)` (counted as drop `TtlExpired`);
//! - decrement TTL with an incremental checksum update (RFC 1624), rewrite source MAC to the
//!   egress port's and destination MAC to the next hop's -> `Forward(port)`.
//! Never panics on any input; never allocates.

use crate::counters::PipelineCounters;
use crate::tables::{NextHopId, PortId, Tables};

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
}

/// What to do with a frame after the pipeline has seen it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send the (rewritten) frame out of this port.
    Forward(PortId),
    /// Copy the frame to the slow path; the original is then released.
    Punt(PuntReason),
    /// Release the frame.
    Drop(crate::counters::DropReason),
}

/// A frame and the port it arrived on.
pub struct Frame<'a> {
    pub data: &'a mut [u8],
    pub ingress: PortId,
}

/// Runs one frame through the pipeline, rewriting it in place when forwarded.
pub fn process_frame(
    _frame: &mut [u8],
    _ingress: PortId,
    _tables: &Tables,
    _counters: &mut PipelineCounters,
) -> Verdict {
    unimplemented!("pipeline work item")
}

/// Runs a batch; `verdicts[i]` is the verdict for `frames[i]`.
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
