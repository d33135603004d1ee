//! Where a worker's frames come from: a port's RX ring, the other workers' handoff rings and
//! the slow path's injections. Each batch loads the current table snapshot once.

use arc_swap::ArcSwap;

use crate::counters::PipelineCounters;
use crate::handoff::{HandoffKind, HandoffLinks, Outbox};
use crate::ids::PortId;
use crate::offload::{Gso, Offload, Segmenter};
use crate::pipeline::{self, Policing};
use crate::port::Port;
use crate::punt::WorkerEnd;
use crate::tables::Tables;

use super::coalesce::Coalescing;
use super::dispatch::{Dispatcher, Held, Processed};
use super::flow_owner::flow_owner;
use super::transmit::{self, TunnelScratch, TxDirty};

/// Frames a worker takes from the other workers' rings per loop: bounds the loop like a batch.
const HANDOFF_BUDGET: usize = 256;

/// What servicing needs besides the ports, the handoff links and the policy state.
pub(super) struct Io<'a> {
    pub tables: &'a ArcSwap<Tables>,
    pub punt: &'a WorkerEnd,
    pub tunnel: &'a mut TunnelScratch,
    pub segmenter: &'a mut Segmenter,
    pub coalescing: &'a mut Coalescing,
    pub counters: &'a mut PipelineCounters,
    pub dirty: &'a mut TxDirty,
}

impl Io<'_> {
    fn dispatcher<'d>(&'d mut self, tables: &'d Tables) -> Dispatcher<'d> {
        Dispatcher {
            tables,
            punt: self.punt,
            tunnel: self.tunnel,
            segmenter: self.segmenter,
            coalescing: self.coalescing,
            counters: self.counters,
            dirty: self.dirty,
        }
    }
}

/// Receives one batch on the socket at port slot `slot`, runs the frames this worker owns
/// through the pipeline and acts on their verdicts; hands the others to their owner first
/// (see `flow_owner`). Returns the number of frames received.
pub(super) fn service_port(
    ports: &mut [Option<Port>],
    slot: usize,
    io: &mut Io<'_>,
    mut handoff: Option<&mut Outbox>,
    policing: &mut Policing<'_>,
) -> usize {
    let Some(port) = ports.get_mut(slot).and_then(Option::as_mut) else {
        return 0;
    };
    let n = port.receive();
    if n == 0 {
        return 0;
    }
    // The port's id, not its slot: another queue's socket of a port sits in a slot of its own.
    let ingress = port.id();
    let snapshot = io.tables.load();
    // NAT replies are owned by the slice their port is in (see `flow_owner`).
    let nat = snapshot.snat.as_ref().map(|r| r.node.octets());
    let mut dispatcher = io.dispatcher(&snapshot);
    for index in 0..n {
        let Some(port) = ports[slot].as_mut() else {
            break;
        };
        let offload = port.received_offload(index);
        if let Some(out) = handoff.as_deref_mut() {
            let owner = flow_owner(
                port.received_frame(index),
                out.workers,
                nat,
                &snapshot.floating,
            );
            if owner != out.worker {
                // Not counted as received here: the owner counts it. A full ring drops it,
                // counted as `full`. A GSO frame goes as the packets it stands for: a ring
                // slot holds one packet.
                match offload.gso {
                    None => {
                        out.send(
                            owner,
                            HandoffKind::Process,
                            ingress,
                            port.received_frame(index),
                        );
                    }
                    Some(gso) => hand_over_cut(
                        dispatcher.segmenter,
                        out,
                        owner,
                        ingress,
                        port.received_frame(index),
                        gso,
                    ),
                };
                continue;
            }
        }
        let frame = port.received_frame_mut(index);
        let bytes = frame.len();
        let outcome = pipeline::process_offloaded(frame, ingress, &snapshot, policing, offload.gso);
        let processed = Processed {
            held: Held::Rx { slot, index },
            ingress,
            bytes,
            outcome,
            offload,
        };
        dispatcher.dispatch(ports, handoff.as_deref_mut(), processed);
    }
    // The run must be written before the frames it holds go back to the kernel.
    dispatcher.coalescing.flush(ports, dispatcher.counters);
    if let Some(port) = ports[slot].as_mut() {
        port.release_received();
    }
    io.dirty.flush(ports);
    n
}

/// Takes the frames the other workers handed over: flows this worker owns go through the
/// pipeline as if received on their port; processed frames are transmitted on the port they
/// name. Returns how many frames were taken.
pub(super) fn take_handoffs(
    ports: &mut [Option<Port>],
    links: &mut HandoffLinks,
    io: &mut Io<'_>,
    policing: &mut Policing<'_>,
) -> usize {
    let snapshot = io.tables.load();
    let mut dispatcher = io.dispatcher(&snapshot);
    let mut transmit_failed = 0;
    let n = links.receive(HANDOFF_BUDGET, |out, kind, port, frame| match kind {
        // Counted as sent by the worker that processed it; only a failure is counted here.
        HandoffKind::Transmit => {
            if !transmit::transmit_on(ports, dispatcher.dirty, port, frame) {
                transmit_failed += 1;
            }
        }
        HandoffKind::Process => {
            let bytes = frame.len();
            let outcome = pipeline::process(frame, port, &snapshot, policing);
            let processed = Processed {
                held: Held::Handed(frame),
                ingress: port,
                bytes,
                outcome,
                offload: Offload::NONE,
            };
            dispatcher.dispatch(ports, Some(out), processed);
        }
    });
    links.out.stats.transmit_failed += transmit_failed;
    if n > 0 {
        io.dirty.flush(ports);
    }
    n
}

/// Sends the frames the slow path injected; returns how many it handled.
pub(super) fn inject(
    ports: &mut [Option<Port>],
    io: &mut Io<'_>,
    mut handoff: Option<&mut Outbox>,
) -> usize {
    let n = io.punt.drain_inject(|port, data| {
        // The slow path injects to the port's owner; a port that moved meanwhile is handed on.
        let sent = transmit::send(ports, io.dirty, handoff.as_deref_mut(), port, data);
        io.counters.record_injected(sent);
    });
    if n > 0 {
        io.dirty.flush(ports);
    }
    n
}

/// Hands GSO frame `frame` to worker `owner` as the packets it stands for (each counted as
/// handed off, or as `full` where the ring refused it; the owner counts what it receives).
fn hand_over_cut(
    segmenter: &mut Segmenter,
    out: &mut Outbox,
    owner: usize,
    ingress: PortId,
    frame: &[u8],
    gso: Gso,
) {
    let mut k = 0;
    while let Ok(Some(packet)) = segmenter.nth(frame, gso, k) {
        if !out.send(owner, HandoffKind::Process, ingress, packet) {
            return;
        }
        k += 1;
    }
}
