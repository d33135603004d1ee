//! Acting on the verdict of a GSO frame (a TAP port's whole TCP segment of up to 64 KiB):
//! sent whole, with its metadata, to a TAP port of this worker; cut into packets for anything
//! else (an AF_XDP port, a tunnel, the slow path, another worker's rings), each then sent,
//! wrapped or punted as a frame of its own would be. The frame is counted once, with the
//! verdict the pipeline gave it; as sent only when every packet of it was.

use crate::counters::{DropReason, Fate};
use crate::handoff::Outbox;
use crate::ids::PortId;
use crate::offload::{Gso, Offload, Segmenter};
use crate::pipeline::{Outcome, Verdict};
use crate::port::Port;

use super::dispatch::{sent_or_tx_full, Dispatcher};
use super::transmit;

impl Dispatcher<'_> {
    /// Sends, punts or drops GSO frame `index` of the batch at port slot `slot` (`offload`
    /// has its GSO metadata); its fate.
    pub(super) fn dispatch_gso(
        &mut self,
        ports: &mut [Option<Port>],
        mut handoff: Option<&mut Outbox>,
        (slot, index): (usize, usize),
        ingress: PortId,
        outcome: Outcome,
        offload: Offload,
    ) -> Fate {
        let Some(gso) = offload.gso else {
            return Fate::Dropped(DropReason::TooBig);
        };
        let held = (slot, index, outcome.start);
        let (fate, cut) = match outcome.verdict {
            Verdict::Drop(reason) => return Fate::Dropped(reason),
            Verdict::Forward(egress) if takes_offloads_here(ports, egress) => {
                let sent = transmit::forward(ports, held, usize::from(egress), &offload);
                return sent_or_tx_full(sent, false);
            }
            Verdict::Forward(egress) => {
                let dirty = &mut *self.dirty;
                let cut = each_segment(self.segmenter, ports, held, gso, |ports, packet| {
                    transmit::send(ports, dirty, handoff.as_deref_mut(), egress, packet)
                });
                (cut.sent(false), cut)
            }
            Verdict::Encapsulate { port, next_hop } => {
                let (dirty, tunnel, tables) = (&mut *self.dirty, &mut *self.tunnel, self.tables);
                let cut = each_segment(self.segmenter, ports, held, gso, |ports, packet| {
                    tunnel.wrap(packet, next_hop, tables).is_some_and(|data| {
                        transmit::send(ports, dirty, handoff.as_deref_mut(), port, data)
                    })
                });
                (cut.sent(true), cut)
            }
            Verdict::Punt(reason) => {
                let punt = self.punt;
                let cut = each_segment(self.segmenter, ports, held, gso, |_, packet| {
                    punt.punt(ingress, reason, packet)
                });
                let fate = match cut {
                    Cut::Whole(_) => reason.fate(true),
                    Cut::Failed(_) => reason.fate(false),
                    Cut::Uncuttable => Fate::Dropped(DropReason::TooBig),
                };
                (fate, cut)
            }
        };
        self.counters.gso_cut += cut.taken();
        fate
    }
}

/// Whether `egress` is a port of this worker that takes frames with their offload metadata.
pub(super) fn takes_offloads_here(ports: &[Option<Port>], egress: PortId) -> bool {
    ports
        .get(usize::from(egress))
        .and_then(Option::as_ref)
        .is_some_and(Port::takes_offloads)
}

/// What became of the packets a GSO frame was cut into.
enum Cut {
    /// Every packet was taken: how many.
    Whole(u64),
    /// One was not (the rest were not tried); how many were taken before it.
    Failed(u64),
    /// The frame could not be cut (not TCP over IPv4, or headers that disagree).
    Uncuttable,
}

impl Cut {
    /// Packets taken.
    fn taken(&self) -> u64 {
        match self {
            Cut::Whole(n) | Cut::Failed(n) => *n,
            Cut::Uncuttable => 0,
        }
    }

    /// The frame's fate when its packets were sent.
    fn sent(&self, tunnelled: bool) -> Fate {
        match self {
            Cut::Whole(_) => sent_or_tx_full(true, tunnelled),
            Cut::Failed(_) => sent_or_tx_full(false, tunnelled),
            Cut::Uncuttable => Fate::Dropped(DropReason::TooBig),
        }
    }
}

/// Cuts received frame `index` of `ports[slot]` (from byte `start`) into packets of `gso.size`
/// payload bytes and hands each to `take`, in order, until one is refused. Each packet is
/// built in the segmenter's buffer, so `take` may use the ports while the frame stays in its
/// receive buffer.
fn each_segment(
    segmenter: &mut Segmenter,
    ports: &mut [Option<Port>],
    (slot, index, start): (usize, usize, usize),
    gso: Gso,
    mut take: impl FnMut(&mut [Option<Port>], &[u8]) -> bool,
) -> Cut {
    let mut k = 0;
    loop {
        let frame = ports
            .get(slot)
            .and_then(Option::as_ref)
            .and_then(|p| p.received_frame(index).get(start..))
            .unwrap_or_default();
        let packet = match segmenter.nth(frame, gso, k as usize) {
            Ok(Some(packet)) => packet,
            Ok(None) if k > 0 => return Cut::Whole(k),
            Ok(None) | Err(_) => return Cut::Uncuttable,
        };
        if !take(ports, packet) {
            return Cut::Failed(k);
        }
        k += 1;
    }
}
