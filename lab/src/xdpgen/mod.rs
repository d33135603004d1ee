//! An AF_XDP UDP generator and sink, for offered vs delivered pps, loss, reordering and
//! one-way latency between two namespaces of one host.
//!
//! - The **generator** builds its Ethernet/IPv4/UDP frames once into the UMEM and, per frame,
//!   only writes an 18-byte stamp (magic, sequence number, CLOCK_MONOTONIC nanoseconds) and
//!   patches the UDP checksum incrementally (RFC 1624). It transmits on a TX-only AF_XDP
//!   socket bound to the workload's `eth0`, towards the next hop's MAC from the neighbour
//!   table (for a Calico workload: 169.254.1.1, answered by proxy ARP).
//! - The **sink** attaches fastpath's XDP program to its `eth0` as a workload port, so every
//!   frame goes to its AF_XDP socket(s), and answers ARP for its own address itself (the
//!   kernel no longer sees the interface's frames). It counts stamped frames, gaps and late
//!   arrivals by sequence number and records latency in an hdrhistogram. It sleeps in
//!   poll(2) when no frame is waiting, so that it leaves the cores to the generator and the
//!   vRouter.
//!
//! Every namespace of a host shares CLOCK_MONOTONIC, so `receive time - stamp` is the
//! one-way latency including the generator's own TX path.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::udp::FRAME_OVERHEAD;

/// The first two bytes of every stamped payload.
pub const STAMP_MAGIC: [u8; 2] = *b"BX";
/// Magic (2), sequence number (8), send time in ns (8): exactly the payload of a 64-byte frame.
pub const STAMP_LEN: usize = 18;
/// Smallest frame (FCS included) that holds a stamp.
pub const MIN_FRAME: usize = FRAME_OVERHEAD + STAMP_LEN;
/// UDP source port of generated frames.
pub const SOURCE_PORT: u16 = 40_000;
/// Most frames produced per TX ring round.
pub const MAX_BATCH: usize = 256;

const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const UDP_LEN: usize = 8;
/// Offset of the stamp in a frame, and of the UDP checksum.
const STAMP_AT: usize = ETH_LEN + IPV4_LEN + UDP_LEN;
const UDP_CSUM_AT: usize = ETH_LEN + IPV4_LEN + 6;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const PROTO_UDP: u8 = 17;

/// Generator UMEM: frames and ring entries (the TX ring holds every frame, so producing a
/// batch of free frames never fails).
const SEND_FRAMES: u32 = 2048;
const UMEM_FRAME_SIZE: u32 = 2048;
/// Latency histogram range: 1 ns to 60 s, 3 significant digits, allocated once.
const LATENCY_MAX_NS: u64 = 60_000_000_000;
/// How long the sink sleeps in poll(2) when no frame is waiting, so it notices its deadline.
const SINK_POLL_MS: i32 = 50;
/// How long the sink retries a queue that a just-closed socket still holds.
const SINK_BUSY_RETRY: Duration = Duration::from_secs(3);
/// Most RX queues the sink opens a socket on.
const MAX_SINK_QUEUES: u32 = 16;

#[derive(Debug, thiserror::Error)]
pub enum XdpGenError {
    #[error("invalid {field} {value}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("AF_XDP on {dev}: {reason}")]
    Socket { dev: String, reason: String },
    #[error("no neighbour entry for {next_hop} on {dev} after {waited:?} (is the next hop answering ARP?)")]
    NoNeighbour {
        next_hop: Ipv4Addr,
        dev: String,
        waited: Duration,
    },
    #[error(transparent)]
    Port(#[from] fastpath::port::PortError),
    #[error(transparent)]
    Xdp(#[from] fastpath::xdp::XdpError),
}

fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> XdpGenError {
    let op = op.into();
    move |source| XdpGenError::Io { op, source }
}

fn invalid(field: &'static str, value: impl ToString, reason: impl Into<String>) -> XdpGenError {
    XdpGenError::Invalid {
        field,
        value: value.to_string(),
        reason: reason.into(),
    }
}

mod accounting;
mod frame;
mod neigh;
mod send;
mod sink;

pub use accounting::*;
pub use frame::*;
pub use neigh::*;
pub use send::*;
pub use sink::*;
