//! Frames handed between the workers and the slow path.
//!
//! A worker that punts copies the frame into a buffer taken from a fixed pool and sends it on a
//! bounded channel; the slow path returns every buffer to the pool when done. Injection runs the
//! other way. Buffers are allocated once, up front, so neither side allocates per packet, and a
//! full pool or channel drops the frame (counted) instead of blocking a worker.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use crossbeam_queue::ArrayQueue;

use crate::pipeline::PuntReason;
use crate::tables::PortId;

/// Largest frame that crosses between worker and slow path: a whole frame of the largest MTU
/// the ports accept (see `port::PortConfig::frame_size_for_mtu`), so that the first packet to
/// a neighbour still being resolved is held rather than refused, whatever its size.
pub const FRAME_BUF_SIZE: usize = 4096;

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
        Some(Frame { port, reason, len: data.len() as u16, buf })
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
        PuntConfig { buffers: 1024, queue_depth: 512 }
    }
}

/// Creates the two ends of the punt path for one worker.
pub fn punt_path(config: PuntConfig) -> std::io::Result<(WorkerEnd, SlowpathEnd)> {
    let pool = Arc::new(BufferPool::new(config.buffers));
    let (punt_tx, punt_rx) = crossbeam_channel::bounded(config.queue_depth);
    let (inject_tx, inject_rx) = crossbeam_channel::bounded(config.queue_depth);
    // SAFETY: eventfd returns a new descriptor or -1, which we check.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a freshly created descriptor that nothing else owns.
    let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
    let worker = WorkerEnd { pool: pool.clone(), punt: punt_tx, inject: inject_rx, wake: wake.clone() };
    let slowpath = SlowpathEnd { pool, punt: punt_rx, inject: inject_tx, wake };
    Ok((worker, slowpath))
}

/// The worker's end: punt frames, collect frames to inject.
pub struct WorkerEnd {
    pool: Arc<BufferPool>,
    punt: Sender<Frame>,
    inject: Receiver<Frame>,
    wake: Arc<OwnedFd>,
}

impl WorkerEnd {
    /// Copies `data` to the slow path. False when the pool or queue is full (the caller counts
    /// `DropReason::PuntQueueFull`).
    pub fn punt(&self, port: PortId, reason: PuntReason, data: &[u8]) -> bool {
        let Some(frame) = self.pool.fill(port, Some(reason), data) else { return false };
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
            // Reset the eventfd so poll(2) sleeps again; a concurrent inject re-arms it.
            let mut v = 0u64;
            // SAFETY: reading 8 bytes into a u64 from a valid nonblocking eventfd.
            unsafe { libc::read(self.wake.as_raw_fd(), &mut v as *mut u64 as *mut libc::c_void, 8) };
        }
        n
    }

    /// Descriptor that becomes readable when frames are waiting to be injected; interrupt-mode
    /// workers add it to their poll(2) set.
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }
}

/// The slow path's end: receive punted frames, inject new ones.
pub struct SlowpathEnd {
    pool: Arc<BufferPool>,
    punt: Receiver<Frame>,
    inject: Sender<Frame>,
    wake: Arc<OwnedFd>,
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

    /// Sends `data` out of `port` through the worker. False when the pool or queue is full.
    pub fn inject(&self, port: PortId, data: &[u8]) -> bool {
        let Some(frame) = self.pool.fill(port, None, data) else { return false };
        match self.inject.try_send(frame) {
            Ok(()) => {
                let one = 1u64;
                // SAFETY: writing 8 bytes from a u64 to a valid eventfd.
                unsafe { libc::write(self.wake.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
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
        let (worker, slow) = punt_path(PuntConfig { buffers: 2, queue_depth: 4 }).unwrap();
        assert!(worker.punt(3, PuntReason::NoRoute, b"abc"));
        assert!(worker.punt(4, PuntReason::Arp, b"de"));
        // Pool exhausted: the third punt is refused, not blocked.
        assert!(!worker.punt(5, PuntReason::Arp, b"f"));
        let f = slow.recv_timeout(Duration::from_millis(10)).unwrap().unwrap();
        assert_eq!((f.port, f.reason, f.data()), (3, Some(PuntReason::NoRoute), &b"abc"[..]));
        slow.recycle(f);
        assert!(worker.punt(5, PuntReason::Arp, b"f"));
    }

    #[test]
    fn injected_frames_reach_the_worker_and_wake_it() {
        let (worker, slow) = punt_path(PuntConfig::default()).unwrap();
        assert!(slow.inject(7, b"hello"));
        let mut pfd = libc::pollfd { fd: worker.wake_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 1, "eventfd should be readable");
        let mut seen = Vec::new();
        assert_eq!(worker.drain_inject(|p, d| seen.push((p, d.to_vec()))), 1);
        assert_eq!(seen, vec![(7, b"hello".to_vec())]);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 0, "eventfd should be reset");
    }

    #[test]
    fn oversized_frames_are_refused() {
        let (worker, _slow) = punt_path(PuntConfig::default()).unwrap();
        assert!(!worker.punt(0, PuntReason::Arp, &[0u8; FRAME_BUF_SIZE + 1]));
    }
}
