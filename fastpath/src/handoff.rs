//! Frames handed from one fastpath worker to another (VPP calls this handoff).
//!
//! With several workers, connection tracking stays right only if both directions of a flow
//! meet the same worker's flow table (see `worker::flow_owner`), and a port's TX ring has one
//! writer: the worker that owns the port. A worker that receives a frame it does not own, or
//! that must transmit on a port it does not own, copies the frame into a [`Producer`] of a
//! single-producer single-consumer ring to that worker.
//!
//! Each ring is a fixed array of fixed-size slots allocated once, when the workers start: a
//! push is one copy and two atomic operations, never a lock or an allocation, and a full ring
//! refuses the frame (the caller drops and counts it) instead of making a worker wait.
//!
//! Workers are numbered `0..workers`; every ordered pair has its own ring ([`mesh`]). Which
//! worker owns a port is [`port_owner`], the one rule control and the slow path also follow
//! when they hand ports and injected frames out.

use std::cell::UnsafeCell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::eventfd::EventFd;
use crate::frame_sizes::FRAME_BUF_SIZE;
use crate::ids::PortId;

/// Largest frame a slot holds: as much as crosses to the slow path.
pub const SLOT_SIZE: usize = FRAME_BUF_SIZE;

/// Slots per ring unless configured otherwise: 2 MiB per ordered pair of workers, enough for
/// a few batches of every port while the receiver is busy.
pub const DEFAULT_SLOTS: usize = 512;

/// The worker (of `workers`) that owns port `port`: transmits on it and receives from it.
/// Round robin by id. The uplink is the exception: every worker has its own queue's socket of
/// it, so each transmits on the uplink itself.
pub fn port_owner(port: PortId, workers: usize) -> usize {
    usize::from(port) % workers.max(1)
}

/// What the receiving worker does with a handed-off frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandoffKind {
    /// A received frame of a flow the receiver owns: run it through the pipeline as if it
    /// had arrived on `port`.
    Process,
    /// A frame already processed: only transmit it on `port`, which the receiver owns.
    Transmit,
}

struct Slot {
    kind: HandoffKind,
    port: PortId,
    len: u16,
    data: [u8; SLOT_SIZE],
}

/// The ring itself. `tail` is written only by the producer, `head` only by the consumer; a
/// slot between them belongs to the consumer, every other slot to the producer.
struct Ring {
    slots: Box<[UnsafeCell<Slot>]>,
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
}

// SAFETY: a slot is only touched by the side that owns it (see `Ring`), and ownership passes
// with a Release store of `tail` (to the consumer) or `head` (back to the producer) that the
// other side reads with Acquire.
unsafe impl Sync for Ring {}
unsafe impl Send for Ring {}

/// The sending end of one ring; not `Clone`, so there is one producer.
pub struct Producer {
    ring: Arc<Ring>,
}

/// The receiving end of one ring; not `Clone`, so there is one consumer.
pub struct Consumer {
    ring: Arc<Ring>,
}

/// Creates one ring of `slots` slots (at least 1).
pub fn ring(slots: usize) -> (Producer, Consumer) {
    let slots: Box<[UnsafeCell<Slot>]> = (0..slots.max(1))
        .map(|_| {
            UnsafeCell::new(Slot {
                kind: HandoffKind::Process,
                port: 0,
                len: 0,
                data: [0; SLOT_SIZE],
            })
        })
        .collect();
    let ring = Arc::new(Ring {
        slots,
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
    });
    (Producer { ring: ring.clone() }, Consumer { ring })
}

impl Producer {
    /// Copies `data` into the next free slot. False when the ring is full or `data` does not
    /// fit a slot: the frame is not sent.
    pub fn push(&mut self, kind: HandoffKind, port: PortId, data: &[u8]) -> bool {
        let ring = &*self.ring;
        if data.len() > SLOT_SIZE {
            return false;
        }
        let tail = ring.tail.load(Ordering::Relaxed);
        let head = ring.head.load(Ordering::Acquire);
        if tail.wrapping_sub(head) >= ring.slots.len() {
            return false;
        }
        // SAFETY: the slot at `tail` is not between head and tail, so the consumer does not
        // touch it until the Release store below.
        let slot = unsafe { &mut *ring.slots[tail % ring.slots.len()].get() };
        slot.kind = kind;
        slot.port = port;
        slot.len = data.len() as u16;
        slot.data[..data.len()].copy_from_slice(data);
        ring.tail.store(tail.wrapping_add(1), Ordering::Release);
        true
    }
}

impl Consumer {
    /// Hands the oldest frame to `take(kind, port, frame)` (mutable: the pipeline rewrites
    /// frames in place) and frees its slot; `None` when the ring is empty.
    pub fn pop<R>(&mut self, take: impl FnOnce(HandoffKind, PortId, &mut [u8]) -> R) -> Option<R> {
        let ring = &*self.ring;
        let head = ring.head.load(Ordering::Relaxed);
        let tail = ring.tail.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        // SAFETY: the slot at `head` is between head and tail: the producer published it with
        // its Release store of `tail` and does not touch it until our store of `head`.
        let slot = unsafe { &mut *ring.slots[head % ring.slots.len()].get() };
        let len = usize::from(slot.len).min(SLOT_SIZE);
        let result = take(slot.kind, slot.port, &mut slot.data[..len]);
        ring.head.store(head.wrapping_add(1), Ordering::Release);
        Some(result)
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        let ring = &*self.ring;
        ring.tail
            .load(Ordering::Acquire)
            .wrapping_sub(ring.head.load(Ordering::Relaxed))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A worker's handoff counters, published by the worker and read by stats.
#[derive(Debug, Default)]
pub struct HandoffCounters {
    /// Frames this worker handed to another.
    pub handed_off: AtomicU64,
    /// Frames other workers handed to this one.
    pub received: AtomicU64,
    /// Frames dropped because the ring to their owner was full.
    pub full: AtomicU64,
    pub transmit_failed: AtomicU64,
}

/// A plain copy of [`HandoffCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HandoffStats {
    pub handed_off: u64,
    pub received: u64,
    pub full: u64,
    /// Frames handed over to be transmitted that the owner's TX ring could not take.
    pub transmit_failed: u64,
}

impl HandoffCounters {
    pub fn snapshot(&self) -> HandoffStats {
        HandoffStats {
            handed_off: self.handed_off.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            full: self.full.load(Ordering::Relaxed),
            transmit_failed: self.transmit_failed.load(Ordering::Relaxed),
        }
    }

    fn publish(&self, s: &HandoffStats) {
        self.handed_off.store(s.handed_off, Ordering::Relaxed);
        self.received.store(s.received, Ordering::Relaxed);
        self.full.store(s.full, Ordering::Relaxed);
        self.transmit_failed
            .store(s.transmit_failed, Ordering::Relaxed);
    }
}

/// One worker's ends of the mesh: its [`Outbox`] to every other worker and a consumer from
/// each.
pub struct HandoffLinks {
    pub out: Outbox,
    from: Vec<Consumer>,
}

/// The sending side of a worker's links, apart from its consumers so that a frame taken
/// from one ring can be handed on to another worker while the rings are being drained.
pub struct Outbox {
    /// This worker's number.
    pub worker: usize,
    pub workers: usize,
    /// By destination worker; `None` at `worker` itself.
    to: Vec<Option<Producer>>,
    /// Every worker's wake eventfd, by worker.
    wakes: Vec<Arc<EventFd>>,
    /// Destinations pushed to since the last [`Outbox::wake_peers`].
    pushed: Vec<bool>,
    pub stats: HandoffStats,
    counters: Arc<HandoffCounters>,
}

/// Creates the rings between `workers` workers, `slots` slots each; element `i` goes to
/// worker `i`.
pub fn mesh(workers: usize, slots: usize) -> std::io::Result<Vec<HandoffLinks>> {
    let workers = workers.max(1);
    let mut wakes = Vec::with_capacity(workers);
    for _ in 0..workers {
        wakes.push(Arc::new(EventFd::new()?));
    }
    let mut links: Vec<HandoffLinks> = (0..workers)
        .map(|worker| HandoffLinks {
            out: Outbox {
                worker,
                workers,
                to: (0..workers).map(|_| None).collect(),
                wakes: wakes.clone(),
                pushed: vec![false; workers],
                stats: HandoffStats::default(),
                counters: Arc::new(HandoffCounters::default()),
            },
            from: Vec::with_capacity(workers - 1),
        })
        .collect();
    for from in 0..workers {
        for to in (0..workers).filter(|t| *t != from) {
            let (p, c) = ring(slots);
            links[from].out.to[to] = Some(p);
            links[to].from.push(c);
        }
    }
    Ok(links)
}

impl Outbox {
    /// Copies a frame to worker `to`; false (and counted as `full`) when its ring is full.
    /// Handing to oneself is a caller's mistake and fails.
    pub fn send(&mut self, to: usize, kind: HandoffKind, port: PortId, data: &[u8]) -> bool {
        let sent = self
            .to
            .get_mut(to)
            .and_then(Option::as_mut)
            .is_some_and(|p| p.push(kind, port, data));
        if sent {
            self.stats.handed_off += 1;
            self.pushed[to] = true;
        } else {
            self.stats.full += 1;
        }
        sent
    }

    /// Wakes the workers frames were pushed to since the last call (once per loop, not per
    /// frame): a sleeping worker notices nothing else.
    pub fn wake_peers(&mut self) {
        for (to, pushed) in self.pushed.iter_mut().enumerate() {
            if std::mem::take(pushed) {
                self.wakes[to].ring();
            }
        }
    }

    /// Makes the counters visible to stats.
    pub fn publish(&self) {
        self.counters.publish(&self.stats);
    }
}

impl HandoffLinks {
    /// The counters this worker publishes.
    pub fn counters(&self) -> Arc<HandoffCounters> {
        self.out.counters.clone()
    }

    /// Copies a frame to worker `to` (see [`Outbox::send`]).
    pub fn send(&mut self, to: usize, kind: HandoffKind, port: PortId, data: &[u8]) -> bool {
        self.out.send(to, kind, port, data)
    }

    /// Hands up to `budget` frames waiting from the other workers to `take`, with the outbox
    /// to hand them on; returns how many.
    pub fn receive(
        &mut self,
        budget: usize,
        mut take: impl FnMut(&mut Outbox, HandoffKind, PortId, &mut [u8]),
    ) -> usize {
        let mut n = 0;
        let out = &mut self.out;
        for c in self.from.iter_mut() {
            while n < budget && c.pop(|k, p, d| take(out, k, p, d)).is_some() {
                n += 1;
            }
        }
        if n > 0 {
            self.out.stats.received += n as u64;
            // A push after this rings again.
            self.out.wakes[self.out.worker].clear();
        }
        n
    }

    /// This worker's wake descriptor, for its epoll set.
    pub fn wake_fd(&self) -> RawFd {
        self.out.wakes[self.out.worker].raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pop_owned(c: &mut Consumer) -> Option<(HandoffKind, PortId, Vec<u8>)> {
        c.pop(|k, p, d| (k, p, d.to_vec()))
    }

    #[test]
    fn frames_come_out_in_order_across_many_wraparounds() {
        let (mut p, mut c) = ring(3);
        for round in 0..100u16 {
            assert!(p.push(HandoffKind::Process, round, &round.to_be_bytes()));
            assert!(p.push(HandoffKind::Transmit, round + 1, &[round as u8; 3]));
            assert_eq!(c.len(), 2);
            assert_eq!(
                pop_owned(&mut c),
                Some((HandoffKind::Process, round, round.to_be_bytes().to_vec()))
            );
            assert_eq!(
                pop_owned(&mut c),
                Some((HandoffKind::Transmit, round + 1, vec![round as u8; 3]))
            );
        }
        assert!(c.is_empty());
        assert_eq!(pop_owned(&mut c), None);
    }

    #[test]
    fn a_full_ring_refuses_until_a_slot_is_freed_and_oversized_frames_are_refused() {
        let (mut p, mut c) = ring(2);
        assert!(p.push(HandoffKind::Process, 1, b"a"));
        assert!(p.push(HandoffKind::Process, 2, b"b"));
        assert!(
            !p.push(HandoffKind::Process, 3, b"c"),
            "two slots, both taken"
        );
        assert_eq!(pop_owned(&mut c).map(|f| f.1), Some(1));
        assert!(p.push(HandoffKind::Process, 3, b"c"));
        assert!(!p.push(HandoffKind::Process, 4, &[0; SLOT_SIZE + 1]));
        assert_eq!(pop_owned(&mut c).map(|f| f.2), Some(b"b".to_vec()));
        assert_eq!(pop_owned(&mut c).map(|f| f.2), Some(b"c".to_vec()));
        assert_eq!(pop_owned(&mut c), None);
    }

    #[test]
    fn the_consumer_may_rewrite_a_frame_in_place() {
        let (mut p, mut c) = ring(1);
        assert!(p.push(HandoffKind::Process, 0, &[1, 2, 3]));
        c.pop(|_, _, d| d[0] = 9);
        assert!(p.push(HandoffKind::Process, 0, &[1, 2]));
        assert_eq!(
            pop_owned(&mut c).map(|f| f.2),
            Some(vec![1, 2]),
            "the length is the new frame's"
        );
    }

    #[test]
    fn frames_cross_threads_intact_and_in_order() {
        let (mut p, mut c) = ring(8);
        const N: u32 = 20_000;
        let producer = std::thread::spawn(move || {
            let mut sent = 0;
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while sent < N && std::time::Instant::now() < deadline {
                if p.push(HandoffKind::Process, 0, &sent.to_le_bytes()) {
                    sent += 1;
                } else {
                    std::hint::spin_loop();
                }
            }
            sent
        });
        let mut next = 0u32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while next < N && std::time::Instant::now() < deadline {
            if let Some(v) = c.pop(|_, _, d| u32::from_le_bytes(d.try_into().unwrap())) {
                assert_eq!(v, next);
                next += 1;
            }
        }
        assert_eq!(producer.join().unwrap(), N);
        assert_eq!(next, N);
    }

    #[test]
    fn a_mesh_links_every_pair_counts_and_wakes_the_receiver() {
        let mut links = mesh(3, 1).unwrap();
        assert!(
            !links[0].send(0, HandoffKind::Process, 0, b"self"),
            "no ring to oneself"
        );
        assert!(links[0].send(2, HandoffKind::Transmit, 5, b"x"));
        assert!(
            !links[0].send(2, HandoffKind::Transmit, 5, b"y"),
            "one slot: full"
        );
        assert!(links[1].send(2, HandoffKind::Process, 6, b"z"));
        links[0].out.wake_peers();
        let mut pfd = libc::pollfd {
            fd: links[2].wake_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        assert_eq!(
            unsafe { libc::poll(&mut pfd, 1, 0) },
            1,
            "worker 2 is woken"
        );
        let mut got = Vec::new();
        assert_eq!(
            links[2].receive(64, |_, k, p, d| got.push((k, p, d.to_vec()))),
            2
        );
        got.sort_by_key(|g| g.1);
        assert_eq!(
            got,
            vec![
                (HandoffKind::Transmit, 5, b"x".to_vec()),
                (HandoffKind::Process, 6, b"z".to_vec())
            ]
        );
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::poll(&mut pfd, 1, 0) },
            0,
            "the wake is cleared by receiving"
        );
        for l in &links {
            l.out.publish();
        }
        assert_eq!(
            links[0].counters().snapshot(),
            HandoffStats {
                handed_off: 1,
                received: 0,
                full: 2,
                transmit_failed: 0
            }
        );
        assert_eq!(
            links[2].counters().snapshot(),
            HandoffStats {
                handed_off: 0,
                received: 2,
                full: 0,
                transmit_failed: 0
            }
        );
    }

    #[test]
    fn ports_are_owned_round_robin() {
        assert_eq!(port_owner(7, 1), 0);
        assert_eq!(port_owner(7, 0), 0, "no workers counts as one");
        assert_eq!(
            (0..4).map(|p| port_owner(p, 2)).collect::<Vec<_>>(),
            vec![0, 1, 0, 1]
        );
    }
}
