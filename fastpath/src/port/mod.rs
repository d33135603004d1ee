//! The vRouter's ports, of two kinds a worker serves alike:
//!
//! - [`XskPort`]: an AF_XDP socket on one queue of an interface (the uplink, a workload's
//!   host-side veth, the pair to the node's stack): the fastest for small packets, frames of
//!   at most the MTU and no offload metadata.
//! - [`TapPort`]: a workload's TAP `eth0` with virtio-net headers: whole 64 KiB TCP segments
//!   with their offload metadata, one read(2) or write(2) each.
//!
//! A frame carrying offload metadata is only ever transmitted whole on a port that
//! [`Port::takes_offloads`]; the worker segments it for any other (`crate::offload`).

mod tap;
mod tap_stats;
mod xsk;

use std::io;
use std::os::fd::RawFd;

use crate::ids::PortId;
use crate::offload::Offload;
use crate::tables::PortInfo;
use crate::xdp::XdpProgram;

pub use tap::{read_tap_facts, TapError, TapFacts, TapPort, TAP_BATCH, TAP_FRAME_MAX};
pub use xsk::{BusyPoll, PortConfig, PortError, XskPort};

/// A port a worker serves.
// Not boxed: a worker's ports sit in one Vec it indexes per frame, and a box would add a
// pointer chase to every AF_XDP frame for the sake of the TAP's smaller size.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Port {
    Xsk(XskPort),
    Tap(TapPort),
}

// Workers move their ports into their own thread.
const _: fn() = || {
    fn is_send<T: Send>() {}
    is_send::<Port>();
};

impl From<XskPort> for Port {
    fn from(p: XskPort) -> Port {
        Port::Xsk(p)
    }
}

impl From<TapPort> for Port {
    fn from(p: TapPort) -> Port {
        Port::Tap(p)
    }
}

impl Port {
    /// An AF_XDP port (see [`XskPort::open`]).
    pub fn open(
        id: PortId,
        info: &PortInfo,
        queue: u32,
        config: &PortConfig,
        prog: &XdpProgram,
        slot: u32,
    ) -> Result<Port, PortError> {
        XskPort::open(id, info, queue, config, prog, slot).map(Port::Xsk)
    }

    pub fn id(&self) -> PortId {
        match self {
            Port::Xsk(p) => p.id(),
            Port::Tap(p) => p.id(),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Port::Xsk(p) => p.name(),
            Port::Tap(p) => p.name(),
        }
    }

    /// The interface queue served (a TAP has one).
    pub fn queue(&self) -> u32 {
        match self {
            Port::Xsk(p) => p.queue(),
            Port::Tap(_) => 0,
        }
    }

    /// The descriptor to wait on for received frames (POLLIN).
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Port::Xsk(p) => p.raw_fd(),
            Port::Tap(p) => p.raw_fd(),
        }
    }

    /// Whether frames with offload metadata may be transmitted here whole.
    #[inline(always)]
    pub fn takes_offloads(&self) -> bool {
        matches!(self, Port::Tap(_))
    }

    /// Takes a batch of received frames (giving the previous one back); returns how many.
    #[inline]
    pub fn receive(&mut self) -> usize {
        match self {
            Port::Xsk(p) => p.receive(),
            Port::Tap(p) => p.receive(),
        }
    }

    pub fn received(&self) -> usize {
        match self {
            Port::Xsk(p) => p.received(),
            Port::Tap(p) => p.received(),
        }
    }

    /// Received frame `i` of the batch, writable in place; empty when `i` is not in it.
    #[inline]
    pub fn received_frame_mut(&mut self, i: usize) -> &mut [u8] {
        match self {
            Port::Xsk(p) => p.received_frame_mut(i),
            Port::Tap(p) => p.received_frame_mut(i),
        }
    }

    /// Received frame `i` of the batch; empty when `i` is not in it.
    #[inline]
    pub fn received_frame(&self, i: usize) -> &[u8] {
        match self {
            Port::Xsk(p) => p.received_frame(i),
            Port::Tap(p) => p.received_frame(i),
        }
    }

    /// The offload metadata of received frame `i` (none from an AF_XDP socket).
    #[inline(always)]
    pub fn received_offload(&self, i: usize) -> Offload {
        match self {
            Port::Xsk(_) => Offload::NONE,
            Port::Tap(p) => p.received_offload(i),
        }
    }

    pub fn release_received(&mut self) {
        match self {
            Port::Xsk(p) => p.release_received(),
            Port::Tap(p) => p.release_received(),
        }
    }

    /// Sends `data`, a finished frame (checksums complete, at most the MTU). False when the
    /// port took nothing.
    #[inline]
    pub fn transmit(&mut self, data: &[u8]) -> bool {
        match self {
            Port::Xsk(p) => p.transmit(data),
            Port::Tap(p) => p.transmit(data, &Offload::NONE),
        }
    }

    /// Sends `data` with its offload metadata: only on a port that [`Port::takes_offloads`];
    /// false anywhere else.
    pub fn transmit_offloaded(&mut self, data: &[u8], offload: &Offload) -> bool {
        match self {
            Port::Xsk(_) => false,
            Port::Tap(p) => p.transmit(data, offload),
        }
    }

    /// Sends received frame `i`, from byte `start` on, back out of this same port.
    pub fn transmit_received(&mut self, i: usize, start: usize) -> bool {
        match self {
            Port::Xsk(p) => p.transmit_received(i, start),
            Port::Tap(p) => p
                .received_frame(i)
                .get(start..)
                .is_some_and(|data| p.transmit(data, &p.received_offload(i))),
        }
    }

    /// Gets what was put on the TX ring going (AF_XDP); a TAP wrote it already.
    #[inline]
    pub fn flush(&mut self) {
        if let Port::Xsk(p) = self {
            p.flush()
        }
    }

    /// Frames wait to be handed to the kernel.
    pub fn tx_pending(&self) -> bool {
        match self {
            Port::Xsk(p) => p.tx_pending(),
            Port::Tap(_) => false,
        }
    }

    /// The AF_XDP socket's drop counters; a TAP has none.
    pub fn statistics(&self) -> io::Result<xsk_rs::socket::XdpStatistics> {
        match self {
            Port::Xsk(p) => p.statistics(),
            Port::Tap(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a TAP port has no socket statistics",
            )),
        }
    }
}
