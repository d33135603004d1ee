//! Frames handed between the workers and the slow path.
//!
//! A worker that punts copies the frame into a buffer taken from a fixed pool and sends it on a
//! bounded channel; the slow path returns every buffer to the pool when done. Injection runs the
//! other way. Buffers are allocated once, up front, so neither side allocates per packet, and a
//! full pool or channel drops the frame (counted) instead of blocking a worker.
//!
//! With several workers ([`punt_paths`]) every worker punts into one shared queue (a
//! lock-free bounded MPSC array; punts are rare next to forwarded frames, so the workers do
//! not contend on it), and each worker has its own injection queue and wake descriptor: the
//! slow path injects a frame to the worker that owns its egress port
//! ([`crate::handoff::port_owner`]), the only one that may write to that port's TX ring.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use crossbeam_queue::ArrayQueue;

use crate::eventfd::EventFd;
use crate::frame_sizes::FRAME_BUF_SIZE;
use crate::ids::PortId;
use crate::pipeline::PuntReason;

type Buf = Box<[u8; FRAME_BUF_SIZE]>;

/// A frame on its way between a worker and the slow path.
pub struct Frame {
    /// Punted: the port it arrived on. Injected: the port to send it out of.
    pub port: PortId,
    /// Why it was punted; `None` for injected frames.
    pub reason: Option<PuntReason>,
    len: u16,
    buf: Buf,
}

impl Frame {
    pub fn data(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

/// The buffers both sides share.
struct BufferPool(ArrayQueue<Buf>);

impl BufferPool {
    fn new(count: usize) -> BufferPool {
        let queue = ArrayQueue::new(count);
        for _ in 0..count {
            let _ = queue.push(Box::new([0u8; FRAME_BUF_SIZE]));
        }
        BufferPool(queue)
    }

    fn fill(&self, port: PortId, reason: Option<PuntReason>, data: &[u8]) -> Option<Frame> {
        if data.len() > FRAME_BUF_SIZE {
            return None;
        }
        let mut buf = self.0.pop()?;
        buf[..data.len()].copy_from_slice(data);
        Some(Frame {
            port,
            reason,
            len: data.len() as u16,
            buf,
        })
    }

    fn recycle(&self, frame: Frame) {
        let _ = self.0.push(frame.buf);
    }
}

/// Sizes of the punt path.
#[derive(Clone, Copy, Debug)]
pub struct PuntConfig {
    pub buffers: usize,
    pub queue_depth: usize,
}

impl Default for PuntConfig {
    fn default() -> Self {
        PuntConfig {
            buffers: 1024,
            queue_depth: 512,
        }
    }
}

/// Creates the two ends of the punt path for one worker.
pub fn punt_path(config: PuntConfig) -> std::io::Result<(WorkerEnd, SlowpathEnd)> {
    let (mut workers, slowpath) = punt_paths(config, 1)?;
    Ok((workers.remove(0), slowpath))
}

/// Creates the punt path for `workers` workers (at least 1): element `i` of the first value
/// is worker `i`'s end. They share the buffers and the punt queue.
pub fn punt_paths(
    config: PuntConfig,
    workers: usize,
) -> std::io::Result<(Vec<WorkerEnd>, SlowpathEnd)> {
    let workers = workers.max(1);
    let pool = Arc::new(BufferPool::new(config.buffers));
    let (punt_tx, punt_rx) = crossbeam_channel::bounded(config.queue_depth);
    let mut ends = Vec::with_capacity(workers);
    let mut injects = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (inject_tx, inject_rx) = crossbeam_channel::bounded(config.queue_depth);
        let wake = Arc::new(EventFd::new()?);
        ends.push(WorkerEnd {
            pool: pool.clone(),
            punt: punt_tx.clone(),
            inject: inject_rx,
            wake: wake.clone(),
        });
        injects.push((inject_tx, wake));
    }
    Ok((
        ends,
        SlowpathEnd {
            pool,
            punt: punt_rx,
            injects,
        },
    ))
}

/// The worker's end: punt frames, collect frames to inject.
pub struct WorkerEnd {
    pool: Arc<BufferPool>,
    punt: Sender<Frame>,
    inject: Receiver<Frame>,
    wake: Arc<EventFd>,
}

impl WorkerEnd {
    /// Copies `data` to the slow path. False when the pool or queue is full (the caller counts
    /// `DropReason::PuntQueueFull`).
    pub fn punt(&self, port: PortId, reason: PuntReason, data: &[u8]) -> bool {
        let Some(frame) = self.pool.fill(port, Some(reason), data) else {
            return false;
        };
        match self.punt.try_send(frame) {
            Ok(()) => true,
            Err(TrySendError::Full(f)) | Err(TrySendError::Disconnected(f)) => {
                self.pool.recycle(f);
                false
            }
        }
    }

    /// Hands every waiting injected frame to `send(port, frame)`; returns how many.
    pub fn drain_inject(&self, mut send: impl FnMut(PortId, &[u8])) -> usize {
        let mut n = 0;
        while let Ok(frame) = self.inject.try_recv() {
            send(frame.port, frame.data());
            self.pool.recycle(frame);
            n += 1;
        }
        if n > 0 {
            // So that the worker sleeps again; a concurrent inject rings again.
            self.wake.clear();
        }
        n
    }

    /// Descriptor that becomes readable when frames are waiting to be injected; interrupt-mode
    /// workers add it to their poll(2) set.
    pub fn wake_fd(&self) -> RawFd {
        self.wake.raw_fd()
    }
}

/// The slow path's end: receive punted frames, inject new ones.
pub struct SlowpathEnd {
    pool: Arc<BufferPool>,
    punt: Receiver<Frame>,
    /// Each worker's injection queue and wake descriptor, by worker.
    injects: Vec<(Sender<Frame>, Arc<EventFd>)>,
}

/// The worker side has gone away.
#[derive(Debug, thiserror::Error)]
#[error("the fastpath worker has stopped")]
pub struct WorkerGone;

impl SlowpathEnd {
    /// Waits up to `timeout` for a punted frame. `Ok(None)` on timeout.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Frame>, WorkerGone> {
        match self.punt.recv_timeout(timeout) {
            Ok(f) => Ok(Some(f)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(WorkerGone),
        }
    }

    /// Returns a punted frame's buffer to the pool.
    pub fn recycle(&self, frame: Frame) {
        self.pool.recycle(frame);
    }

    /// Sends `data` out of `port` through the worker that owns the port. False when the pool
    /// or queue is full.
    pub fn inject(&self, port: PortId, data: &[u8]) -> bool {
        let (queue, wake) = &self.injects[crate::handoff::port_owner(port, self.injects.len())];
        let Some(frame) = self.pool.fill(port, None, data) else {
            return false;
        };
        match queue.try_send(frame) {
            Ok(()) => {
                wake.ring();
                true
            }
            Err(TrySendError::Full(f)) | Err(TrySendError::Disconnected(f)) => {
                self.pool.recycle(f);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punted_frames_arrive_and_buffers_return_to_the_pool() {
        let (worker, slow) = punt_path(PuntConfig {
            buffers: 2,
            queue_depth: 4,
        })
        .unwrap();
        assert!(worker.punt(3, PuntReason::NoRoute, b"abc"));
        assert!(worker.punt(4, PuntReason::Arp, b"de"));
        // Pool exhausted: the third punt is refused, not blocked.
        assert!(!worker.punt(5, PuntReason::Arp, b"f"));
        let f = slow
            .recv_timeout(Duration::from_millis(10))
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.port, f.reason, f.data()),
            (3, Some(PuntReason::NoRoute), &b"abc"[..])
        );
        slow.recycle(f);
        assert!(worker.punt(5, PuntReason::Arp, b"f"));
    }

    #[test]
    fn injected_frames_reach_the_worker_and_wake_it() {
        let (worker, slow) = punt_path(PuntConfig::default()).unwrap();
        assert!(slow.inject(7, b"hello"));
        let mut pfd = libc::pollfd {
            fd: worker.wake_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        assert_eq!(
            unsafe { libc::poll(&mut pfd, 1, 0) },
            1,
            "eventfd should be readable"
        );
        let mut seen = Vec::new();
        assert_eq!(worker.drain_inject(|p, d| seen.push((p, d.to_vec()))), 1);
        assert_eq!(seen, vec![(7, b"hello".to_vec())]);
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::poll(&mut pfd, 1, 0) },
            0,
            "eventfd should be reset"
        );
    }

    #[test]
    fn every_worker_punts_into_the_one_slow_path_which_injects_to_the_port_owner() {
        let (workers, slow) = punt_paths(PuntConfig::default(), 2).unwrap();
        assert!(workers[0].punt(0, PuntReason::Arp, b"from 0"));
        assert!(workers[1].punt(1, PuntReason::Arp, b"from 1"));
        let mut got: Vec<Vec<u8>> = (0..2)
            .map(|_| {
                let f = slow
                    .recv_timeout(Duration::from_millis(10))
                    .unwrap()
                    .unwrap();
                let data = f.data().to_vec();
                slow.recycle(f);
                data
            })
            .collect();
        got.sort();
        assert_eq!(got, vec![b"from 0".to_vec(), b"from 1".to_vec()]);
        // Ports 4 and 5: owned by workers 0 and 1 (round robin by id).
        assert!(slow.inject(4, b"to 4"));
        assert!(slow.inject(5, b"to 5"));
        let drain = |w: &WorkerEnd| {
            let mut seen = Vec::new();
            w.drain_inject(|p, d| seen.push((p, d.to_vec())));
            seen
        };
        assert_eq!(drain(&workers[0]), vec![(4, b"to 4".to_vec())]);
        assert_eq!(drain(&workers[1]), vec![(5, b"to 5".to_vec())]);
        drop(workers);
        assert!(
            slow.recv_timeout(Duration::from_millis(1)).is_err(),
            "every worker gone"
        );
    }

    #[test]
    fn oversized_frames_are_refused() {
        let (worker, _slow) = punt_path(PuntConfig::default()).unwrap();
        assert!(!worker.punt(0, PuntReason::Arp, &[0u8; FRAME_BUF_SIZE + 1]));
    }
}
