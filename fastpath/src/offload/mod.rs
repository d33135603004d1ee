//! Offload metadata of a Linux TAP device with `IFF_VNET_HDR`, and the work a NIC's offloads
//! would do, done in software.
//!
//! A TAP device opened with `IFF_VNET_HDR` puts a `struct virtio_net_hdr` in front of every
//! frame (include/uapi/linux/virtio_net.h; virtio 1.x section 5.1.6). With offloads enabled
//! (`TUNSETOFFLOAD`) the kernel hands over TCP segments of up to 64 KiB (GSO) and segments
//! whose checksum it has only begun (CHECKSUM_PARTIAL), expecting the device to finish them the
//! way a NIC's TSO and checksum offload would. An AF_XDP socket carries no such metadata: a
//! frame going out of one must be whole, so [`segment::Segmenter`] cuts a GSO frame into
//! MSS-sized segments (what Linux's `tcp_gso_segment` and `inet_gso_segment` do) and
//! [`segment::complete_checksum`] finishes a partial checksum (Linux's `skb_checksum_help`).
//! [`vnet_hdr`] reads and writes the header itself. The other way, [`coalesce::Coalescer`]
//! joins a flow's MTU-sized segments into one GSO frame for a TAP (Linux's GRO).
//!
//! Pure: no I/O, no clock; the segmenter's buffer is allocated once, so nothing here allocates
//! per frame.

pub mod coalesce;
pub mod segment;
pub mod vnet_hdr;

pub use coalesce::{Coalescer, Joined};
pub use segment::{complete_checksum, OffloadError, Segmenter};
pub use vnet_hdr::{VnetHdrError, VNET_HDR_LEN};

/// Offload metadata of one frame (all offsets from the start of the Ethernet frame).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offload {
    /// The frame is one large TCP segment to be cut into segments of `gso.size` payload bytes.
    pub gso: Option<Gso>,
    /// The frame's L4 checksum is only begun and must be finished before it leaves.
    pub partial_checksum: Option<PartialChecksum>,
}

impl Offload {
    /// A whole frame with its checksums complete: nothing left to do.
    pub const NONE: Offload = Offload {
        gso: None,
        partial_checksum: None,
    };

    /// True when nothing is left to do for the frame.
    #[inline]
    pub fn is_none(&self) -> bool {
        self.gso.is_none() && self.partial_checksum.is_none()
    }
}

/// Generic segmentation offload: how the frame is to be segmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gso {
    pub kind: GsoKind,
    /// Payload bytes per segment (the MSS for TCP).
    pub size: u16,
    /// Bytes of headers (Ethernet+IP+TCP) in front of the payload, as the sender said. A hint
    /// only: the segmenter reads the real lengths from the headers.
    pub header_len: u16,
}

/// The protocols a GSO frame may carry. Only TCP over IPv4 is supported: the decoder refuses
/// TCP over IPv6 and UDP (`VnetHdrError::UnsupportedGsoType`), so the TAP device must not be
/// offered those offloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoKind {
    TcpV4,
}

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the Internet checksum over `[start..]` of the frame is to be
/// written at `start + offset`; that field already holds the pseudo-header sum (the seed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialChecksum {
    /// Where the checksummed bytes begin (the L4 header).
    pub start: u16,
    /// Where the checksum field is, counted from `start` (16 for TCP, 6 for UDP).
    pub offset: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_the_default_and_only_none_is_none() {
        assert_eq!(Offload::NONE, Offload::default());
        assert!(Offload::NONE.is_none());
        let csum = Offload {
            gso: None,
            partial_checksum: Some(PartialChecksum {
                start: 34,
                offset: 16,
            }),
        };
        assert!(!csum.is_none());
        let gso = Offload {
            gso: Some(Gso {
                kind: GsoKind::TcpV4,
                size: 1448,
                header_len: 66,
            }),
            partial_checksum: None,
        };
        assert!(!gso.is_none());
    }
}
