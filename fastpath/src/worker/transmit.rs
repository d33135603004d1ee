//! Putting frames on TX rings: this worker's own, or, for a port another worker owns, that
//! worker's through the handoff rings (a port's TX ring has one writer). After a batch only
//! the ports that were transmitted on are flushed ([`TxDirty`]).

use crate::frame_sizes::FRAME_BUF_SIZE;
use crate::handoff::{port_owner, HandoffKind, Outbox};
use crate::ids::NextHopId;
use crate::ids::PortId;
use crate::offload::Offload;
use crate::pipeline::encapsulate_ipip;
use crate::port::Port;
use crate::tables::{Encap, Tables};

/// Sends `data` out of port `port`: onto its TX ring when this worker has the port, else
/// handed to the worker that owns it. False when neither took it.
pub(super) fn send(
    ports: &mut [Option<Port>],
    dirty: &mut TxDirty,
    handoff: Option<&mut Outbox>,
    port: PortId,
    data: &[u8],
) -> bool {
    if is_local(ports, usize::from(port)) {
        transmit_on(ports, dirty, port, data)
    } else {
        hand_to_owner(handoff, port, data)
    }
}

/// [`send`] for received frame `i` of `ports[slot]`, from byte `start` on (past a stripped
/// tunnel header): to a local port it is copied straight from the RX ring.
pub(super) fn send_received(
    ports: &mut [Option<Port>],
    dirty: &mut TxDirty,
    handoff: Option<&mut Outbox>,
    (slot, i, start): (usize, usize, usize),
    egress: PortId,
) -> bool {
    if is_local(ports, usize::from(egress)) {
        let sent = forward(ports, (slot, i, start), usize::from(egress), &Offload::NONE);
        if sent {
            dirty.mark(usize::from(egress));
        }
        return sent;
    }
    let frame = ports
        .get(slot)
        .and_then(Option::as_ref)
        .map_or(&[][..], |p| p.received_frame(i));
    frame
        .get(start..)
        .is_some_and(|data| hand_to_owner(handoff, egress, data))
}

/// Copies `frame` to the TX ring of local port `port`; marks it for the flush.
pub(super) fn transmit_on(
    ports: &mut [Option<Port>],
    dirty: &mut TxDirty,
    port: PortId,
    frame: &[u8],
) -> bool {
    let sent = ports
        .get_mut(usize::from(port))
        .and_then(Option::as_mut)
        .is_some_and(|p| p.transmit(frame));
    if sent {
        dirty.mark(usize::from(port));
    }
    sent
}

/// Whether this worker has a socket at port slot `slot`.
fn is_local(ports: &[Option<Port>], slot: usize) -> bool {
    ports.get(slot).is_some_and(Option::is_some)
}

/// Hands processed frame `data` to the worker that owns port `egress`, to transmit it there.
/// False when there is no other owner (the port is gone) or its ring is full.
fn hand_to_owner(out: Option<&mut Outbox>, egress: PortId, data: &[u8]) -> bool {
    let Some(out) = out else { return false };
    let owner = port_owner(egress, out.workers);
    owner != out.worker && out.send(owner, HandoffKind::Transmit, egress, data)
}

/// Copies received frame `i` of `ports[ingress]`, from byte `start` on (past a stripped tunnel
/// header), to `ports[egress]`, which may be the ingress port itself: to its TX ring, or, for a
/// GSO frame (`offload` not none, egress a TAP), written whole with its metadata. False when
/// the port took nothing or the tables name a slot without a port (a port being removed, whose
/// route is already gone from the newest snapshot but not from the one this batch loaded).
pub(super) fn forward(
    ports: &mut [Option<Port>],
    (ingress, i, start): (usize, usize, usize),
    egress: usize,
    offload: &Offload,
) -> bool {
    if egress == ingress {
        return ports
            .get_mut(ingress)
            .and_then(Option::as_mut)
            .is_some_and(|p| p.transmit_received(i, start));
    }
    if egress >= ports.len() || ingress >= ports.len() {
        return false;
    }
    let (from, to) = if ingress < egress {
        let (a, b) = ports.split_at_mut(egress);
        (&a[ingress], &mut b[0])
    } else {
        let (a, b) = ports.split_at_mut(ingress);
        (&b[0], &mut a[egress])
    };
    let (Some(from), Some(to)) = (from, to) else {
        return false;
    };
    from.received_frame(i)
        .get(start..)
        .is_some_and(|data| match offload.is_none() {
            true => to.transmit(data),
            false => to.transmit_offloaded(data, offload),
        })
}

/// Ports with frames on their TX ring since their last flush, so that a batch flushes only
/// those instead of every port.
#[derive(Debug, Default)]
pub(super) struct TxDirty {
    slots: Vec<usize>,
    marked: Vec<bool>,
}

impl TxDirty {
    pub(super) fn resize(&mut self, slots: usize) {
        // Ports may have left; whatever they had pending went with them.
        self.slots.retain(|s| *s < slots);
        self.slots.reserve(slots);
        self.marked.resize(slots, false);
        for (slot, m) in self.marked.iter_mut().enumerate() {
            *m = self.slots.contains(&slot);
        }
    }

    pub(super) fn mark(&mut self, slot: usize) {
        if let Some(m) = self.marked.get_mut(slot) {
            if !*m {
                *m = true;
                // Capacity for every slot was reserved in resize: no allocation.
                self.slots.push(slot);
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Flushes every marked port; those the kernel could not drain stay marked.
    pub(super) fn flush(&mut self, ports: &mut [Option<Port>]) {
        let marked = &mut self.marked;
        self.slots.retain(|&slot| {
            let pending = match ports.get_mut(slot).and_then(Option::as_mut) {
                Some(port) => {
                    port.flush();
                    port.tx_pending()
                }
                None => false,
            };
            marked[slot] = pending;
            pending
        });
    }
}

/// A worker's buffer for building IPIP frames, and the identification field of the outer
/// headers it writes.
///
/// `Port::transmit` copies one contiguous slice into a TX frame, so the outer header and the
/// packet are put together here first (one extra copy of the packet per encapsulated frame).
/// The identification counts up per worker: unique enough for non-DF packets over the
/// reassembly lifetime (RFC 6864 section 4.2), ignored for DF ones.
pub(super) struct TunnelScratch {
    buf: Box<[u8; FRAME_BUF_SIZE]>,
    ident: u16,
}

impl TunnelScratch {
    pub(super) fn new() -> TunnelScratch {
        TunnelScratch {
            buf: Box::new([0u8; FRAME_BUF_SIZE]),
            ident: 0,
        }
    }

    /// Wraps `frame` in the IPIP tunnel of next hop `nh`; the frame to send, or `None` when
    /// the next hop is not a tunnel (any more) or the result would not fit a buffer.
    pub(super) fn wrap(&mut self, frame: &[u8], nh: NextHopId, tables: &Tables) -> Option<&[u8]> {
        let Encap::Ipip { local, remote } = tables.next_hops.get(nh as usize)?.encap else {
            return None;
        };
        self.ident = self.ident.wrapping_add(1);
        let len = encapsulate_ipip(frame, local, remote, self.ident, &mut self.buf[..])?;
        Some(&self.buf[..len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_marked_ports_are_flushed_and_empty_slots_unmark() {
        let mut d = TxDirty::default();
        d.resize(4);
        d.mark(3);
        d.mark(3);
        d.mark(1);
        d.mark(17); // out of range: ignored
        assert_eq!(d.slots, vec![3, 1]);
        let mut ports: Vec<Option<Port>> = (0..4).map(|_| None).collect();
        d.flush(&mut ports);
        assert!(d.is_empty(), "slots without a port have nothing pending");
        assert!(d.marked.iter().all(|m| !m));
        d.mark(3);
        d.resize(2);
        assert!(d.is_empty(), "a slot beyond the new size is forgotten");
    }

    #[test]
    fn forwarding_to_an_empty_slot_fails_instead_of_panicking() {
        let mut ports: Vec<Option<Port>> = vec![None, None];
        let plain = &Offload::NONE;
        assert!(!forward(&mut ports, (0, 0, 0), 1, plain));
        assert!(!forward(&mut ports, (0, 0, 0), 0, plain));
        assert!(!forward(&mut ports, (1, 0, 0), 9, plain));
    }
}
