//! An AF_XDP port: one socket on one queue of one interface, with its own UMEM.
//!
//! Frame ownership is kept simple on purpose. Every port owns its UMEM; half of its frames
//! circulate between the fill ring and the RX ring, the other half are a free list for TX.
//! Forwarding from one port to another *copies* the frame from the ingress UMEM into a TX frame
//! of the egress UMEM: a 64-1500 byte memcpy is cheap next to the rest of the per-packet work,
//! and it means a frame never leaves the UMEM it belongs to, so no port can starve another of
//! frames and no cross-port accounting is needed.
//!
//! Nothing here allocates after `open`: descriptor arrays are sized up front.

use std::error::Error as _;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};

use xsk_rs::config::{BindFlags, FrameSize, LibxdpFlags, QueueSize, SocketConfig, UmemConfig};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

use crate::frame_sizes::XDP_HEADROOM;
use crate::ids::PortId;
use crate::tables::PortInfo;
use crate::xdp::{XdpError, XdpProgram};

/// Sizes of a port's UMEM and rings.
#[derive(Clone, Copy, Debug)]
pub struct PortConfig {
    /// Frames in the UMEM; half feed RX, half are kept for TX.
    pub frames: u32,
    /// Bytes per frame (a power of two, at least 2048).
    pub frame_size: u32,
    /// Entries in each of the RX, TX, fill and completion rings (a power of two).
    pub ring_size: u32,
    /// Most frames taken from the RX ring at once.
    pub batch_size: usize,
    /// Force copy mode (XDP_COPY) even where the driver could do zero-copy.
    pub force_copy: bool,
    /// Busy polling of the socket's NAPI context by the worker (NIC profiles); `None`: the
    /// kernel's interrupts drive NAPI as usual.
    pub busy_poll: Option<BusyPoll>,
}

/// The socket options of busy polling (Documentation/networking/napi.rst, "Busy polling";
/// SO_PREFER_BUSY_POLL and SO_BUSY_POLL_BUDGET since Linux 5.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusyPoll {
    /// SO_PREFER_BUSY_POLL: under load the kernel leaves NAPI to the application's polling
    /// (with `napi_defer_hard_irqs` set on the interface, interrupts stay masked meanwhile).
    pub prefer: bool,
    /// SO_BUSY_POLL: microseconds a busy-polling syscall spins in NAPI.
    pub usecs: u32,
    /// SO_BUSY_POLL_BUDGET: packets one busy-poll call lets NAPI process.
    pub budget: u32,
}

// From <asm-generic/socket.h>; the libc crate does not export them for Linux.
const SO_BUSY_POLL: libc::c_int = 46;
const SO_PREFER_BUSY_POLL: libc::c_int = 69;
const SO_BUSY_POLL_BUDGET: libc::c_int = 70;

/// Sets the busy-poll options on socket `fd`; the error names the option and the value.
fn set_busy_poll(fd: RawFd, busy: &BusyPoll) -> Result<(), (&'static str, u32, io::Error)> {
    let options = [
        (
            "SO_PREFER_BUSY_POLL",
            SO_PREFER_BUSY_POLL,
            u32::from(busy.prefer),
        ),
        ("SO_BUSY_POLL", SO_BUSY_POLL, busy.usecs),
        ("SO_BUSY_POLL_BUDGET", SO_BUSY_POLL_BUDGET, busy.budget),
    ];
    for (name, option, value) in options {
        let v = value as libc::c_int;
        // SAFETY: setsockopt on our own socket with a pointer to an int of the given size.
        let err = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                &v as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if err != 0 {
            return Err((name, value, io::Error::last_os_error()));
        }
    }
    Ok(())
}

impl PortConfig {
    /// The smallest frame size (2048 or 4096, the sizes AF_XDP accepts up to a page) whose
    /// frames hold a whole Ethernet frame of an interface with `mtu`; `None` when even a page
    /// does not.
    pub fn frame_size_for_mtu(mtu: u16) -> Option<u32> {
        let needed = u32::from(mtu) + 14 + XDP_HEADROOM;
        [2048, 4096].into_iter().find(|size| needed <= *size)
    }
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            frames: 4096,
            frame_size: 2048,
            ring_size: 2048,
            batch_size: 64,
            force_copy: false,
            busy_poll: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("port {port}: bad configuration: {reason}")]
    Config { port: String, reason: String },
    #[error("port {port}: cannot create the UMEM: {source}")]
    Umem {
        port: String,
        source: xsk_rs::umem::UmemCreateError,
    },
    #[error("port {port} queue {queue}: cannot create the AF_XDP socket: {source}{}", source.source().map(|e| format!(": {e}")).unwrap_or_default())]
    Socket {
        port: String,
        queue: u32,
        source: xsk_rs::socket::SocketCreateError,
    },
    #[error("port {port} queue {queue}: the socket came without fill and completion rings")]
    NoFillRing { port: String, queue: u32 },
    #[error("port {port}: {source}")]
    Xdp { port: String, source: XdpError },
    #[error(
        "port {port} queue {queue}: setting {option} = {value} on the AF_XDP socket: {source}"
    )]
    SocketOption {
        port: String,
        queue: u32,
        option: &'static str,
        value: u32,
        source: io::Error,
    },
}

/// The receive half: frames the kernel filled, and frames going back to it.
struct RxSide {
    ring: RxQueue,
    fill: FillQueue,
    /// The current batch, as taken from the RX ring.
    batch: Vec<FrameDesc>,
    received: usize,
    /// Frames waiting for room on the fill ring (normally empty: the fill ring has room for
    /// every RX frame).
    backlog: Vec<FrameDesc>,
}

/// The transmit half: free frames, the TX ring, and completions coming back.
struct TxSide {
    ring: TxQueue,
    comp: CompQueue,
    free: Vec<FrameDesc>,
    /// Scratch for draining the completion ring.
    completed: Vec<FrameDesc>,
    /// Frames produced since the last kick, so `flush` knows whether to wake the kernel.
    unkicked: usize,
}

/// One AF_XDP socket and its UMEM.
///
/// `Send`, so that a worker can take its ports into its thread; not `Sync`: one thread drives
/// the rings.
pub struct XskPort {
    id: PortId,
    name: String,
    queue: u32,
    fd: RawFd,
    umem: Umem,
    rx: RxSide,
    tx: TxSide,
    /// The socket busy-polls its NAPI context: an empty RX ring is answered with a
    /// recvfrom(2), the syscall that runs NAPI for us.
    busy_polling: bool,
}

// Workers move their ports into their own thread.
const _: fn() = || {
    fn is_send<T: Send>() {}
    is_send::<XskPort>();
};

impl std::fmt::Debug for XskPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XskPort")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("queue", &self.queue)
            .finish()
    }
}

impl XskPort {
    /// Creates the UMEM and socket on `info.name`'s `queue`, fills the fill ring and puts the
    /// socket in XSKMAP `slot`. The XDP program must already be attached to the interface.
    pub fn open(
        id: PortId,
        info: &PortInfo,
        queue: u32,
        config: &PortConfig,
        prog: &XdpProgram,
        slot: u32,
    ) -> Result<XskPort, PortError> {
        let name = info.name.clone();
        let bad = |reason: String| PortError::Config {
            port: name.clone(),
            reason,
        };
        if config.frames < 2 || !config.frames.is_multiple_of(2) {
            return Err(bad(format!(
                "frames must be an even number >= 2, not {}",
                config.frames
            )));
        }
        if config.batch_size == 0 {
            return Err(bad("batch_size must be at least 1".into()));
        }
        let frame_size = FrameSize::new(config.frame_size)
            .map_err(|e| bad(format!("frame_size {}: {e}", config.frame_size)))?;
        let ring = QueueSize::new(config.ring_size)
            .map_err(|e| bad(format!("ring_size {}: {e}", config.ring_size)))?;
        let umem_config = UmemConfig::builder()
            .frame_size(frame_size)
            .fill_queue_size(ring)
            .comp_queue_size(ring)
            .build()
            .map_err(|e| bad(format!("UMEM: {e}")))?;
        let frame_count =
            NonZeroU32::new(config.frames).ok_or_else(|| bad("frames must not be 0".into()))?;
        let (umem, mut descs) =
            Umem::new(umem_config, frame_count, false).map_err(|source| PortError::Umem {
                port: name.clone(),
                source,
            })?;

        let mut bind = BindFlags::XDP_USE_NEED_WAKEUP;
        if config.force_copy {
            bind |= BindFlags::XDP_COPY;
        }
        let socket_config = SocketConfig::builder()
            .rx_queue_size(ring)
            .tx_queue_size(ring)
            // We load and attach our own program (xdp.rs) and register the socket ourselves.
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(bind)
            .build();
        let ifname = name
            .parse()
            .map_err(|_| bad("interface name contains a NUL byte".into()))?;
        // SAFETY: the UMEM is not shared with any other socket, so libxdp's shared-UMEM
        // double-free case cannot arise (and INHIBIT_PROG_LOAD is set regardless).
        let (tx_ring, rx_ring, fill_comp) = unsafe {
            Socket::new(socket_config, &umem, &ifname, queue)
        }
        .map_err(|source| PortError::Socket {
            port: name.clone(),
            queue,
            source,
        })?;
        let (mut fill, comp) = fill_comp.ok_or(PortError::NoFillRing {
            port: name.clone(),
            queue,
        })?;
        let fd = rx_ring.fd().as_raw_fd();
        if let Some(busy) = &config.busy_poll {
            set_busy_poll(fd, busy).map_err(|(option, value, source)| PortError::SocketOption {
                port: name.clone(),
                queue,
                option,
                value,
                source,
            })?;
        }

        let rx_frames = descs.len() / 2;
        let tx_free: Vec<FrameDesc> = descs.split_off(rx_frames);
        let mut backlog = Vec::with_capacity(rx_frames);
        // SAFETY: the descriptors come from this UMEM and nothing else uses them.
        let produced = unsafe { fill.produce(&descs) };
        backlog.extend_from_slice(&descs[produced..]);

        prog.register_socket(slot, fd)
            .map_err(|source| PortError::Xdp {
                port: name.clone(),
                source,
            })?;
        tracing::debug!(port = %name, queue, slot, rx_frames, tx_frames = tx_free.len(), "opened AF_XDP port");

        let tx_frames = tx_free.len();
        Ok(XskPort {
            id,
            name,
            queue,
            fd,
            umem,
            rx: RxSide {
                ring: rx_ring,
                fill,
                batch: vec![FrameDesc::default(); config.batch_size],
                received: 0,
                backlog,
            },
            tx: TxSide {
                ring: tx_ring,
                comp,
                free: tx_free,
                completed: vec![FrameDesc::default(); tx_frames],
                unkicked: 0,
            },
            busy_polling: config.busy_poll.is_some(),
        })
    }

    pub fn id(&self) -> PortId {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// The socket's descriptor, for poll(2) (POLLIN: frames on the RX ring).
    pub fn raw_fd(&self) -> RawFd {
        self.fd
    }

    /// Takes up to `batch_size` frames from the RX ring; returns how many. A batch still
    /// held is given back to the fill ring first.
    pub fn receive(&mut self) -> usize {
        self.release_received();
        // SAFETY: the batch slots are ours; the RX ring hands back frames of this UMEM.
        let mut n = unsafe { self.rx.ring.consume(&mut self.rx.batch) };
        if n == 0 && self.busy_polling {
            // With busy polling preferred the kernel waits for us to run NAPI; a
            // non-blocking recvfrom does (net/xdp/xsk.c, xsk_recvmsg -> sk_busy_loop).
            // SAFETY: a zero-length recvfrom on our own socket; no buffer is written.
            unsafe {
                libc::recvfrom(
                    self.fd,
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
            // SAFETY: as above.
            n = unsafe { self.rx.ring.consume(&mut self.rx.batch) };
        }
        self.rx.received = n;
        n
    }

    /// Frames in the current batch.
    pub fn received(&self) -> usize {
        self.rx.received
    }

    /// The data of received frame `i` of the current batch, writable in place; empty when `i`
    /// is not in the batch.
    pub fn received_frame_mut(&mut self, i: usize) -> &mut [u8] {
        if i >= self.rx.received {
            return &mut [];
        }
        // SAFETY: the frame came off our RX ring and has not been handed back yet, so neither
        // the kernel nor any other reference touches it; `&mut self` keeps it that way for the
        // slice's lifetime.
        let mut data = unsafe { self.umem.data_mut(&mut self.rx.batch[i]) };
        let contents = data.contents_mut();
        let (ptr, len) = (contents.as_mut_ptr(), contents.len());
        // SAFETY: `DataMut` only lives as long as its borrow of the descriptor; the bytes it
        // points at stay ours for as long as `&mut self` is held, which bounds the slice.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }

    /// The data of received frame `i` of the current batch; empty when `i` is not in it.
    pub fn received_frame(&self, i: usize) -> &[u8] {
        if i >= self.rx.received {
            return &[];
        }
        // SAFETY: as in received_frame_mut.
        unsafe { self.umem.data(&self.rx.batch[i]) }.contents()
    }

    /// Gives the current batch's frames back to the fill ring, waking the kernel if it asked.
    pub fn release_received(&mut self) {
        let rx = &mut self.rx;
        if rx.received > 0 {
            // The backlog has room for every RX frame, so this never reallocates.
            rx.backlog.extend_from_slice(&rx.batch[..rx.received]);
            rx.received = 0;
        }
        if rx.backlog.is_empty() {
            return;
        }
        // SAFETY: every frame in the backlog belongs to this UMEM and is owned by us.
        let produced = unsafe { rx.fill.produce(&rx.backlog) };
        rx.backlog.drain(..produced);
        if produced > 0 && rx.fill.needs_wakeup() {
            // A zero-timeout poll is the kernel's "fill ring has frames again" kick.
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, 0) };
        }
    }

    /// Copies `data` into a free TX frame and puts it on the TX ring. False when no frame or
    /// ring slot is free, or `data` does not fit a frame. Call [`XskPort::flush`] after a batch.
    pub fn transmit(&mut self, data: &[u8]) -> bool {
        transmit(&mut self.tx, &self.umem, data)
    }

    /// Sends received frame `i`, from byte `start` on (past a stripped tunnel header), back
    /// out of this same port (a copy, like any forward).
    pub fn transmit_received(&mut self, i: usize, start: usize) -> bool {
        if i >= self.rx.received {
            return false;
        }
        // SAFETY: see received_frame; the RX frame and the TX frame are different frames of
        // the UMEM, so the source and destination do not overlap.
        let data = unsafe { self.umem.data(&self.rx.batch[i]) };
        let Some(part) = data.contents().get(start..) else {
            return false;
        };
        transmit(&mut self.tx, &self.umem, part)
    }

    /// Wakes the kernel for frames put on the TX ring (when it asked for a wakeup), and takes
    /// completed frames back into the free list.
    ///
    /// In copy mode the kernel transmits inside sendto(2), at most 32 frames per call
    /// (`TX_BATCH_SIZE` in net/xdp/xsk.c), and answers EAGAIN when more are waiting. A single
    /// kick per batch would leave the rest on the ring until the next batch to this port (a
    /// ping behind a burst could wait for seconds), so this kicks until the ring is drained,
    /// a bounded number of times; what is left is reported by [`XskPort::tx_pending`] and the
    /// worker flushes again on its next pass.
    /// Cheap when nothing was sent, so a worker may call it on every port after every batch.
    pub fn flush(&mut self) {
        if self.tx.unkicked == 0 {
            return;
        }
        if self.tx.ring.needs_wakeup() {
            for _ in 0..MAX_KICKS_PER_FLUSH {
                if kick_tx(self.fd, &self.name) == Kick::Drained {
                    self.tx.unkicked = 0;
                    break;
                }
            }
        } else {
            self.tx.unkicked = 0;
        }
        reclaim_completed(&mut self.tx);
    }

    /// Frames are on the TX ring that the kernel has not been told about yet.
    pub fn tx_pending(&self) -> bool {
        self.tx.unkicked > 0
    }

    /// Frames free for TX right now (after reclaiming completions).
    pub fn tx_free(&mut self) -> usize {
        reclaim_completed(&mut self.tx);
        self.tx.free.len()
    }

    /// The kernel's drop counters for this socket.
    pub fn statistics(&self) -> io::Result<xsk_rs::socket::XdpStatistics> {
        self.rx.ring.fd().xdp_statistics()
    }
}

fn transmit(tx: &mut TxSide, umem: &Umem, data: &[u8]) -> bool {
    if tx.free.is_empty() {
        reclaim_completed(tx);
    }
    let Some(mut desc) = tx.free.pop() else {
        return false;
    };
    // SAFETY: the frame is on our free list: neither the kernel nor any reference uses it.
    let mut frame = unsafe { umem.data_mut(&mut desc) };
    let mut cursor = frame.cursor();
    if data.len() > cursor.buf_len() {
        tx.free.push(desc);
        return false;
    }
    cursor.set_pos(0);
    // Writing to a slice of sufficient length cannot fail.
    let _ = std::io::Write::write_all(&mut cursor, data);
    // SAFETY: the frame belongs to this UMEM and now holds the frame to send.
    if unsafe { tx.ring.produce_one(&desc) } == 0 {
        tx.free.push(desc);
        return false;
    }
    tx.unkicked += 1;
    true
}

/// Most sendto(2) kicks one flush makes: 4 x 32 frames covers two full RX batches.
const MAX_KICKS_PER_FLUSH: usize = 4;

#[derive(Debug, PartialEq, Eq)]
enum Kick {
    /// The kernel took everything (or failed in a way retrying will not fix).
    Drained,
    /// Frames remain on the ring.
    More,
}

fn kick_tx(fd: RawFd, port: &str) -> Kick {
    // SAFETY: a zero-length sendto on our own AF_XDP socket; no buffers are passed.
    let ret = unsafe {
        libc::sendto(
            fd,
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
    if ret >= 0 {
        return Kick::Drained;
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) => Kick::More,
        _ => {
            tracing::debug!(port, error = %err, "TX wakeup failed");
            Kick::Drained
        }
    }
}

fn reclaim_completed(tx: &mut TxSide) {
    // SAFETY: the completion ring returns frames of this UMEM that we sent.
    let n = unsafe { tx.comp.consume(&mut tx.completed) };
    // `free` was allocated with room for every TX frame, so this never reallocates.
    tx.free.extend_from_slice(&tx.completed[..n]);
}

#[cfg(test)]
mod frame_size_tests {
    use super::*;

    #[test]
    fn frame_size_grows_with_the_mtu_and_gives_up_past_a_page() {
        assert_eq!(PortConfig::frame_size_for_mtu(1500), Some(2048));
        assert_eq!(PortConfig::frame_size_for_mtu(1778), Some(2048));
        assert_eq!(PortConfig::frame_size_for_mtu(1779), Some(4096));
        assert_eq!(PortConfig::frame_size_for_mtu(3826), Some(4096));
        assert_eq!(PortConfig::frame_size_for_mtu(9000), None);
    }
}
