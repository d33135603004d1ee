//! Acting on the pipeline's verdicts, for frames from a port's RX ring and frames another
//! worker handed over alike, and counting what finally became of each frame: once, here,
//! when the outcome is known (a failed send is a `TxFull` drop, a failed punt a
//! `PuntQueueFull` one), so that `rx_packets == forwarded + punted + total_drops()`.

use crate::counters::{DropReason, Fate, Marks, PipelineCounters};
use crate::handoff::Outbox;
use crate::ids::PortId;
use crate::offload::{Offload, Segmenter};
use crate::pipeline::{Outcome, Verdict};
use crate::port::Port;
use crate::punt::WorkerEnd;
use crate::tables::Tables;

use super::coalesce::Coalescing;
use super::gso::takes_offloads_here;
use super::transmit::{self, TunnelScratch, TxDirty};

/// Where a processed frame is.
#[derive(Clone, Copy)]
pub(super) enum Held<'f> {
    /// Received frame `index` of the socket at port slot `slot`, still in its RX ring.
    Rx { slot: usize, index: usize },
    /// In a handoff ring's slot.
    Handed(&'f [u8]),
}

/// A frame the pipeline has seen.
pub(super) struct Processed<'f> {
    pub held: Held<'f>,
    /// The port it arrived on.
    pub ingress: PortId,
    /// Its length as received.
    pub bytes: usize,
    pub outcome: Outcome,
    /// A GSO frame's offload metadata (from a TAP port), kept for a port that takes it;
    /// `Offload::NONE` for any other frame.
    pub offload: Offload,
}

/// What acting on verdicts needs, for one batch (`tables` is the snapshot the batch was
/// processed with).
pub(super) struct Dispatcher<'a> {
    pub tables: &'a Tables,
    pub punt: &'a WorkerEnd,
    pub tunnel: &'a mut TunnelScratch,
    pub segmenter: &'a mut Segmenter,
    pub coalescing: &'a mut Coalescing,
    pub counters: &'a mut PipelineCounters,
    pub dirty: &'a mut TxDirty,
}

impl Dispatcher<'_> {
    /// Sends, punts or drops `frame` as its verdict says (out of ports this worker has, or
    /// through `handoff` to the worker that owns the egress port), and records its fate.
    #[inline]
    pub fn dispatch(
        &mut self,
        ports: &mut [Option<Port>],
        handoff: Option<&mut Outbox>,
        frame: Processed<'_>,
    ) {
        let Processed {
            held,
            ingress,
            bytes,
            outcome,
            offload,
        } = frame;
        if let (Some(_), Held::Rx { slot, index }) = (offload.gso, held) {
            let fate = self.dispatch_gso(ports, handoff, (slot, index), ingress, outcome, offload);
            let marks = Marks {
                gso: true,
                ..outcome.marks()
            };
            self.counters.record(bytes, marks, fate);
            return;
        }
        let start = outcome.start;
        if let (Verdict::Forward(egress), Held::Rx { slot, index }) = (outcome.verdict, held) {
            if takes_offloads_here(ports, egress)
                && self.coalescing.offer(
                    ports,
                    self.counters,
                    (slot, index, start),
                    egress,
                    (bytes, outcome.marks()),
                )
            {
                return;
            }
        }
        let fate = match outcome.verdict {
            Verdict::Forward(egress) => {
                let sent = match held {
                    Held::Rx { slot, index } => transmit::send_received(
                        ports,
                        self.dirty,
                        handoff,
                        (slot, index, start),
                        egress,
                    ),
                    Held::Handed(data) => data
                        .get(start..)
                        .is_some_and(|d| transmit::send(ports, self.dirty, handoff, egress, d)),
                };
                sent_or_tx_full(sent, false)
            }
            Verdict::Encapsulate { port, next_hop } => {
                let wrapped = match bytes_of(held, ports).get(start..) {
                    Some(frame) => self.tunnel.wrap(frame, next_hop, self.tables),
                    None => None,
                };
                let sent = wrapped
                    .is_some_and(|data| transmit::send(ports, self.dirty, handoff, port, data));
                sent_or_tx_full(sent, true)
            }
            Verdict::Punt(reason) => {
                let data = bytes_of(held, ports).get(start..).unwrap_or_default();
                reason.fate(self.punt.punt(ingress, reason, data))
            }
            Verdict::Drop(reason) => Fate::Dropped(reason),
        };
        self.counters.record(bytes, outcome.marks(), fate);
    }
}

/// The bytes of a held frame (none when its port has gone).
fn bytes_of<'a>(held: Held<'a>, ports: &'a [Option<Port>]) -> &'a [u8] {
    match held {
        Held::Rx { slot, index } => ports
            .get(slot)
            .and_then(Option::as_ref)
            .map_or(&[][..], |p| p.received_frame(index)),
        Held::Handed(data) => data,
    }
}

/// The fate of a frame to send: sent, or dropped because no TX ring (or handoff ring, or
/// tunnel buffer) took it.
pub(super) fn sent_or_tx_full(sent: bool, tunnelled: bool) -> Fate {
    if sent {
        Fate::Sent { tunnelled }
    } else {
        Fate::Dropped(DropReason::TxFull)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Marks;
    use crate::pipeline::PuntReason;

    #[test]
    fn failed_punts_turn_punted_frames_into_drops_and_leave_drops_alone() {
        let mut c = PipelineCounters::default();
        c.record(60, Marks::NONE, PuntReason::Arp.fate(true));
        c.record(60, Marks::NONE, PuntReason::Arp.fate(false));
        c.record(60, Marks::NONE, PuntReason::NoRoute.fate(false));
        assert_eq!(c.punted, 1);
        assert_eq!(c.dropped(DropReason::PuntQueueFull), 1);
        assert_eq!(
            c.dropped(DropReason::NoRoute),
            1,
            "an ICMP-error punt is one drop, taken or not"
        );
        assert_eq!(c.rx_packets, c.forwarded + c.punted + c.total_drops());
    }

    #[test]
    fn a_failed_send_is_a_tx_full_drop_and_a_sent_tunnel_frame_counts_as_encapsulated() {
        let mut c = PipelineCounters::default();
        c.record(60, Marks::NONE, sent_or_tx_full(false, false));
        c.record(
            80,
            Marks {
                decapsulated: true,
                ..Marks::NONE
            },
            sent_or_tx_full(true, true),
        );
        c.record(80, Marks::NONE, sent_or_tx_full(false, true));
        assert_eq!((c.forwarded, c.tx_packets, c.ipip_encapsulated), (1, 1, 1));
        assert_eq!(c.dropped(DropReason::TxFull), 2);
        assert_eq!(c.rx_packets, c.forwarded + c.punted + c.total_drops());
    }
}
