//! The legacy `struct virtio_net_hdr` (include/uapi/linux/virtio_net.h; virtio 1.x section
//! 5.1.6) a TAP device with `IFF_VNET_HDR` puts in front of every frame, read into and written
//! from an [`Offload`].
//!
//! ```text
//!  0        1          2          4           6            8             10
//! +--------+----------+----------+-----------+------------+-------------+
//! | flags  | gso_type | hdr_len  | gso_size  | csum_start | csum_offset |
//! +--------+----------+----------+-----------+------------+-------------+
//! ```
//! The 16-bit fields are in the host's byte order: the legacy header is "guest native", and a
//! TAP device without `TUNSETVNETLE`/`TUNSETVNETBE` uses the CPU's own order
//! (`tun16_to_cpu` in drivers/net/tun.c). The 12-byte header with `num_buffers` is only used
//! with `TUNSETVNETHDRSZ`, which the vRouter does not set.
//!
//! Flags other than NEEDS_CSUM are ignored, as Linux's `virtio_net_hdr_to_skb` does: DATA_VALID
//! says the checksum was verified, which changes nothing for a frame that is forwarded as it is.

use super::{Gso, GsoKind, Offload, PartialChecksum};

/// Length of the legacy header.
pub const VNET_HDR_LEN: usize = 10;

mod field {
    pub const FLAGS: usize = 0;
    pub const GSO_TYPE: usize = 1;
    pub const HDR_LEN: usize = 2;
    pub const GSO_SIZE: usize = 4;
    pub const CSUM_START: usize = 6;
    pub const CSUM_OFFSET: usize = 8;
}

/// Bits of the flags byte.
pub mod flags {
    /// The checksum over `csum_start..` is to be written at `csum_start + csum_offset`.
    pub const NEEDS_CSUM: u8 = 1;
    /// The checksum has been verified (receive side only).
    pub const DATA_VALID: u8 = 2;
}

/// Values of the gso_type byte.
pub mod gso_type {
    pub const NONE: u8 = 0;
    pub const TCPV4: u8 = 1;
    pub const UDP: u8 = 3;
    pub const TCPV6: u8 = 4;
    pub const UDP_L4: u8 = 5;
    /// The first segment carries CWR (`SKB_GSO_TCP_ECN`); only sent to a device offered
    /// `TUN_F_TSO_ECN`.
    pub const ECN: u8 = 0x80;
}

/// A header that cannot be read or asks for an offload this module does not do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VnetHdrError {
    /// The buffer ends before the header does.
    #[error("virtio_net_hdr is truncated: the buffer has {len} bytes, {VNET_HDR_LEN} are needed")]
    Truncated { len: usize },
    /// A GSO type other than NONE and TCPV4, or with the ECN bit (the TAP device must not be
    /// offered `TUN_F_TSO6`, `TUN_F_UFO`, `TUN_F_USO4/6` or `TUN_F_TSO_ECN`).
    #[error("virtio_net_hdr gso_type has unsupported value {value:#x}")]
    UnsupportedGsoType { value: u8 },
    /// A GSO type with a segment size of 0: no payload would fit a segment.
    #[error("virtio_net_hdr gso_size is 0 with gso_type {gso_type:#x}")]
    ZeroGsoSize { gso_type: u8 },
}

/// Reads the offload metadata from the first [`VNET_HDR_LEN`] bytes of `hdr`.
///
/// `csum_start` and `csum_offset` are taken as they are; whether they fall inside the frame is
/// checked where the checksum is completed ([`super::complete_checksum`]).
pub fn decode(hdr: &[u8]) -> Result<Offload, VnetHdrError> {
    let Some(h) = hdr.first_chunk::<VNET_HDR_LEN>() else {
        return Err(VnetHdrError::Truncated { len: hdr.len() });
    };
    let u16_at = |at: usize| u16::from_ne_bytes([h[at], h[at + 1]]);
    let gso = match h[field::GSO_TYPE] {
        gso_type::NONE => None,
        gso_type::TCPV4 => {
            let size = u16_at(field::GSO_SIZE);
            if size == 0 {
                return Err(VnetHdrError::ZeroGsoSize {
                    gso_type: gso_type::TCPV4,
                });
            }
            Some(Gso {
                kind: GsoKind::TcpV4,
                size,
                header_len: u16_at(field::HDR_LEN),
            })
        }
        value => return Err(VnetHdrError::UnsupportedGsoType { value }),
    };
    let partial_checksum = (h[field::FLAGS] & flags::NEEDS_CSUM != 0).then(|| PartialChecksum {
        start: u16_at(field::CSUM_START),
        offset: u16_at(field::CSUM_OFFSET),
    });
    Ok(Offload {
        gso,
        partial_checksum,
    })
}

/// Writes `offload` as a header: what the kernel expects in front of a frame written to the
/// TAP device. [`Offload::NONE`] is all zeros.
pub fn encode(offload: &Offload, out: &mut [u8; VNET_HDR_LEN]) {
    *out = [0; VNET_HDR_LEN];
    if let Some(gso) = offload.gso {
        out[field::GSO_TYPE] = match gso.kind {
            GsoKind::TcpV4 => gso_type::TCPV4,
        };
        put_u16(out, field::HDR_LEN, gso.header_len);
        put_u16(out, field::GSO_SIZE, gso.size);
    }
    if let Some(partial) = offload.partial_checksum {
        out[field::FLAGS] = flags::NEEDS_CSUM;
        put_u16(out, field::CSUM_START, partial.start);
        put_u16(out, field::CSUM_OFFSET, partial.offset);
    }
}

/// Writes a 16-bit field in the host's byte order (see the module doc).
#[inline]
fn put_u16(out: &mut [u8; VNET_HDR_LEN], at: usize, v: u16) {
    if let Some(field) = out.get_mut(at..at + 2) {
        field.copy_from_slice(&v.to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_rng::Rng;

    const TSO: Gso = Gso {
        kind: GsoKind::TcpV4,
        size: 1448,
        header_len: 66,
    };
    const TCP_CSUM: PartialChecksum = PartialChecksum {
        start: 34,
        offset: 16,
    };

    /// A header with the given bytes and 16-bit fields, in native order.
    fn header(flags: u8, gso_type: u8, fields: [u16; 4]) -> [u8; VNET_HDR_LEN] {
        let mut h = [0u8; VNET_HDR_LEN];
        h[0] = flags;
        h[1] = gso_type;
        for (i, v) in fields.iter().enumerate() {
            h[2 + 2 * i..4 + 2 * i].copy_from_slice(&v.to_ne_bytes());
        }
        h
    }

    #[test]
    fn every_supported_combination_round_trips() {
        let cases = [
            Offload::NONE,
            Offload {
                gso: None,
                partial_checksum: Some(TCP_CSUM),
            },
            Offload {
                gso: Some(TSO),
                partial_checksum: Some(TCP_CSUM),
            },
            Offload {
                gso: Some(TSO),
                partial_checksum: None,
            },
        ];
        for offload in cases {
            let mut h = [0xa5u8; VNET_HDR_LEN];
            encode(&offload, &mut h);
            assert_eq!(decode(&h), Ok(offload), "header {h:x?}");
        }
    }

    #[test]
    fn encoding_puts_each_field_where_linux_reads_it() {
        let mut h = [0u8; VNET_HDR_LEN];
        encode(
            &Offload {
                gso: Some(TSO),
                partial_checksum: Some(TCP_CSUM),
            },
            &mut h,
        );
        assert_eq!(
            h,
            header(flags::NEEDS_CSUM, gso_type::TCPV4, [66, 1448, 34, 16])
        );
    }

    #[test]
    fn none_encodes_to_zeros_and_zeros_decode_to_none() {
        let mut h = [0xffu8; VNET_HDR_LEN];
        encode(&Offload::NONE, &mut h);
        assert_eq!(h, [0u8; VNET_HDR_LEN]);
        let offload = decode(&h).unwrap();
        assert!(offload.is_none());
        assert_eq!(offload, Offload::default());
    }

    #[test]
    fn data_valid_alone_decodes_to_none() {
        let h = header(flags::DATA_VALID, gso_type::NONE, [0; 4]);
        assert_eq!(decode(&h), Ok(Offload::NONE));
        let h = header(flags::DATA_VALID, gso_type::NONE, [1, 2, 3, 4]);
        assert_eq!(decode(&h), Ok(Offload::NONE), "offsets without NEEDS_CSUM");
    }

    #[test]
    fn bytes_after_the_header_are_ignored() {
        let mut buf = header(flags::NEEDS_CSUM, gso_type::NONE, [0, 0, 34, 16]).to_vec();
        buf.extend_from_slice(&[0xff; 60]);
        assert_eq!(
            decode(&buf),
            Ok(Offload {
                gso: None,
                partial_checksum: Some(TCP_CSUM)
            })
        );
    }

    #[test]
    fn a_short_header_is_an_error() {
        let h = header(flags::NEEDS_CSUM, gso_type::TCPV4, [66, 1448, 34, 16]);
        for len in 0..VNET_HDR_LEN {
            assert_eq!(decode(&h[..len]), Err(VnetHdrError::Truncated { len }));
        }
        assert_eq!(
            VnetHdrError::Truncated { len: 3 }.to_string(),
            "virtio_net_hdr is truncated: the buffer has 3 bytes, 10 are needed"
        );
    }

    #[test]
    fn unsupported_gso_types_are_errors() {
        let refused = [
            gso_type::UDP,
            gso_type::TCPV6,
            gso_type::UDP_L4,
            gso_type::ECN,
            gso_type::TCPV4 | gso_type::ECN,
            gso_type::TCPV6 | gso_type::ECN,
            2,
            6,
            0x7f,
            0xff,
        ];
        for value in refused {
            let h = header(flags::NEEDS_CSUM, value, [66, 1448, 34, 16]);
            assert_eq!(
                decode(&h),
                Err(VnetHdrError::UnsupportedGsoType { value }),
                "gso_type {value:#x}"
            );
        }
        assert_eq!(
            VnetHdrError::UnsupportedGsoType { value: 0x81 }.to_string(),
            "virtio_net_hdr gso_type has unsupported value 0x81"
        );
    }

    #[test]
    fn a_zero_gso_size_is_an_error() {
        let h = header(flags::NEEDS_CSUM, gso_type::TCPV4, [66, 0, 34, 16]);
        assert_eq!(
            decode(&h),
            Err(VnetHdrError::ZeroGsoSize {
                gso_type: gso_type::TCPV4
            })
        );
        assert_eq!(
            VnetHdrError::ZeroGsoSize { gso_type: 1 }.to_string(),
            "virtio_net_hdr gso_size is 0 with gso_type 0x1"
        );
        let h = header(0, gso_type::NONE, [0, 0, 0, 0]);
        assert_eq!(decode(&h), Ok(Offload::NONE), "no GSO, no size needed");
    }

    #[test]
    fn any_header_decodes_to_a_result_that_re_encodes_to_itself() {
        let mut rng = Rng::new(17);
        for _ in 0..20_000 {
            let mut h = [0u8; VNET_HDR_LEN];
            rng.fill(&mut h);
            h[1] &= [0x00, 0x01, 0x03, 0x81, 0xff][rng.below(5)];
            if let Ok(offload) = decode(&h) {
                let mut again = [0u8; VNET_HDR_LEN];
                encode(&offload, &mut again);
                assert_eq!(decode(&again), Ok(offload), "header {h:x?}");
            }
        }
    }
}
