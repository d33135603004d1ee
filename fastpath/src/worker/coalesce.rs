//! Joining a batch's consecutive TCP segments of one flow for a TAP port (`offload::coalesce`)
//! before they are written: one write(2) and one 64 KiB segment for the workload instead of
//! one per packet. Each joined segment is counted when the joined frame is written (or fails
//! to be), so a frame is still counted once, when its fate is known.

use crate::counters::{Fate, Marks, PipelineCounters};
use crate::ids::PortId;
use crate::offload::Coalescer;
use crate::port::Port;

use super::dispatch::sent_or_tx_full;

/// Most segments one joined frame holds: a 64 KiB frame of 256-byte segments.
const MAX_PENDING: usize = 256;

/// The worker's open run and the segments in it, waiting to be counted.
pub(super) struct Coalescing {
    coalescer: Coalescer,
    /// Each joined segment's length as received and marks.
    pending: Vec<(usize, Marks)>,
}

impl Coalescing {
    pub(super) fn new() -> Coalescing {
        Coalescing {
            coalescer: Coalescer::new(),
            pending: Vec::with_capacity(MAX_PENDING),
        }
    }

    /// Takes received frame `index` of `ports[slot]` (from byte `start`), forwarded to TAP
    /// port `egress`, into a run; false when it joins none and must be sent on its own (any
    /// run it would have followed has been written first).
    pub(super) fn offer(
        &mut self,
        ports: &mut [Option<Port>],
        counters: &mut PipelineCounters,
        (slot, index, start): (usize, usize, usize),
        egress: PortId,
        received: (usize, Marks),
    ) -> bool {
        if self.join(ports, (slot, index, start), egress, received) {
            return true;
        }
        if self.coalescer.open_for().is_none() {
            return false;
        }
        // It follows the open run, which goes first; then it may open a run of its own.
        self.flush(ports, counters);
        self.join(ports, (slot, index, start), egress, received)
    }

    /// Offers the frame to the coalescer; true when it took it (and its count is pending).
    fn join(
        &mut self,
        ports: &[Option<Port>],
        (slot, index, start): (usize, usize, usize),
        egress: PortId,
        received: (usize, Marks),
    ) -> bool {
        if self.pending.len() >= MAX_PENDING {
            return false;
        }
        let frame = ports
            .get(slot)
            .and_then(Option::as_ref)
            .and_then(|p| p.received_frame(index).get(start..))
            .unwrap_or_default();
        if !self.coalescer.offer(egress, frame) {
            return false;
        }
        // Capacity was reserved up front: no allocation.
        self.pending.push(received);
        true
    }

    /// Writes the open run, if any, and counts its segments.
    pub(super) fn flush(&mut self, ports: &mut [Option<Port>], counters: &mut PipelineCounters) {
        let Some(joined) = self.coalescer.take() else {
            return;
        };
        let sent = ports
            .get_mut(usize::from(joined.egress))
            .and_then(Option::as_mut)
            .is_some_and(|p| p.transmit_offloaded(joined.frame, &joined.offload));
        if sent && joined.segments > 1 {
            counters.gro_merged += joined.segments as u64;
        }
        let fate: Fate = sent_or_tx_full(sent, false);
        for (bytes, marks) in self.pending.drain(..) {
            counters.record(bytes, marks, fate);
        }
    }
}
