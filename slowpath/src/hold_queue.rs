//! Frames waiting for their next hop's MAC, like Linux's per-neighbour ARP queue.
//!
//! Bounded twice: at most `per_neighbor` frames for one neighbour (the oldest is dropped when a
//! new one arrives, as Linux does with `unres_qlen`) and at most `total` over all neighbours
//! (a new frame is refused). Buffers are allocated the first time they are needed, never more
//! than `total` of them, and are reused afterwards.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use fastpath::frame_sizes::FRAME_BUF_SIZE;
use fastpath::PortId;

/// The neighbour a frame waits for: its egress port and IP.
pub type NeighborKey = (PortId, Ipv4Addr);

type Buf = Box<[u8; FRAME_BUF_SIZE]>;

/// A frame copied out of the punt path.
struct HeldFrame {
    buf: Buf,
    len: u16,
    /// The port it arrived on, for an ICMP error if the neighbour never resolves.
    ingress: PortId,
}

/// What became of a frame offered to [`HoldQueue::hold`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldOutcome {
    /// Held.
    Held,
    /// Held, but the neighbour's queue was full and its oldest frame was dropped.
    HeldDroppedOldest,
    /// Not held: all neighbours together hold `total` frames already.
    TotalFull,
    /// Not held: longer than a punt buffer.
    TooLarge,
}

#[derive(Default)]
pub struct HoldQueue {
    per_neighbor: usize,
    total: usize,
    held: usize,
    allocated: usize,
    free: Vec<Buf>,
    waiting: HashMap<NeighborKey, Vec<HeldFrame>>,
}

impl HoldQueue {
    pub fn new(per_neighbor: usize, total: usize) -> HoldQueue {
        HoldQueue {
            per_neighbor,
            total,
            ..Default::default()
        }
    }

    /// Frames held over all neighbours.
    pub fn len(&self) -> usize {
        self.held
    }

    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Frames held for one neighbour.
    pub fn len_for(&self, key: NeighborKey) -> usize {
        self.waiting.get(&key).map_or(0, Vec::len)
    }

    /// Copies `data`, which arrived on `ingress`, into the queue of `key`.
    pub fn hold(&mut self, key: NeighborKey, ingress: PortId, data: &[u8]) -> HoldOutcome {
        if data.len() > FRAME_BUF_SIZE {
            return HoldOutcome::TooLarge;
        }
        if self.per_neighbor == 0 {
            return HoldOutcome::TotalFull;
        }
        let queue_full = self.len_for(key) >= self.per_neighbor;
        let buf = if queue_full {
            // Reuse the oldest frame's buffer: the count does not change.
            let queue = self
                .waiting
                .get_mut(&key)
                .expect("queue_full implies the queue exists");
            queue.remove(0).buf
        } else {
            let Some(buf) = self.take_buffer() else {
                return HoldOutcome::TotalFull;
            };
            self.held += 1;
            buf
        };
        let mut frame = HeldFrame {
            buf,
            len: data.len() as u16,
            ingress,
        };
        frame.buf[..data.len()].copy_from_slice(data);
        let per_neighbor = self.per_neighbor;
        self.waiting
            .entry(key)
            .or_insert_with(|| Vec::with_capacity(per_neighbor))
            .push(frame);
        if queue_full {
            HoldOutcome::HeldDroppedOldest
        } else {
            HoldOutcome::Held
        }
    }

    /// Hands every frame held for `key`, oldest first, to `f(ingress, frame)` (mutable, so
    /// that it can be rewritten in place) and frees them. Returns how many.
    pub fn release(&mut self, key: NeighborKey, mut f: impl FnMut(PortId, &mut [u8])) -> usize {
        let Some(frames) = self.waiting.remove(&key) else {
            return 0;
        };
        let n = frames.len();
        for mut frame in frames {
            f(frame.ingress, &mut frame.buf[..frame.len as usize]);
            self.free.push(frame.buf);
        }
        self.held -= n;
        n
    }

    fn take_buffer(&mut self) -> Option<Buf> {
        if self.held >= self.total {
            return None;
        }
        if let Some(buf) = self.free.pop() {
            return Some(buf);
        }
        if self.allocated >= self.total {
            return None;
        }
        self.allocated += 1;
        Some(Box::new([0u8; FRAME_BUF_SIZE]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(last: u8) -> NeighborKey {
        (1, Ipv4Addr::new(10, 0, 0, last))
    }

    fn released(q: &mut HoldQueue, k: NeighborKey) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        q.release(k, |_, f| out.push(f.to_vec()));
        out
    }

    #[test]
    fn frames_come_back_in_order_once() {
        let mut q = HoldQueue::new(4, 16);
        assert_eq!(q.hold(key(1), 0, b"one"), HoldOutcome::Held);
        assert_eq!(q.hold(key(1), 0, b"two"), HoldOutcome::Held);
        assert_eq!(q.hold(key(2), 0, b"other"), HoldOutcome::Held);
        assert_eq!(q.len(), 3);
        assert_eq!(
            released(&mut q, key(1)),
            vec![b"one".to_vec(), b"two".to_vec()]
        );
        assert_eq!(released(&mut q, key(1)), Vec::<Vec<u8>>::new());
        assert_eq!(q.len(), 1);
        assert_eq!(q.len_for(key(2)), 1);
    }

    #[test]
    fn a_full_neighbor_queue_drops_its_oldest_frame() {
        let mut q = HoldQueue::new(2, 16);
        q.hold(key(1), 0, b"a");
        q.hold(key(1), 0, b"b");
        assert_eq!(q.hold(key(1), 0, b"c"), HoldOutcome::HeldDroppedOldest);
        assert_eq!(q.len(), 2);
        assert_eq!(released(&mut q, key(1)), vec![b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn the_total_bound_refuses_new_frames_and_buffers_are_reused() {
        let mut q = HoldQueue::new(4, 3);
        for i in 1..=3 {
            assert_eq!(q.hold(key(i), 0, b"x"), HoldOutcome::Held);
        }
        assert_eq!(q.hold(key(4), 0, b"y"), HoldOutcome::TotalFull);
        assert_eq!(q.len_for(key(4)), 0);
        q.release(key(1), |_, _| {});
        assert_eq!(q.hold(key(4), 0, b"y"), HoldOutcome::Held);
        assert_eq!(
            q.allocated, 3,
            "a released buffer is reused, not a new one allocated"
        );
    }

    #[test]
    fn oversized_frames_are_refused() {
        let mut q = HoldQueue::new(4, 4);
        assert_eq!(
            q.hold(key(1), 0, &[0u8; FRAME_BUF_SIZE + 1]),
            HoldOutcome::TooLarge
        );
        assert!(q.is_empty());
    }
}
