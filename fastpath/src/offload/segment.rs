//! Software TCP segmentation and checksum completion: what a NIC's TSO and checksum offload
//! do, for frames that must leave through an interface that takes no offload metadata (an
//! AF_XDP socket).
//!
//! Segmentation follows Linux's `inet_gso_segment` and `tcp_gso_segment` (net/ipv4/af_inet.c,
//! net/ipv4/tcp_offload.c), so that a receiver sees what the kernel's own software GSO would
//! have sent. Every segment carries a copy of the Ethernet, IPv4 and TCP headers (options
//! included) and the next `gso.size` bytes of payload, with:
//! - IPv4 Total Length set, Identification the original plus the segment's index (Linux does
//!   this whether or not DF is set; with DF the field is ignored, RFC 6864 section 4.1) and the
//!   header checksum recomputed (RFC 791 section 3.1);
//! - TCP Sequence Number the original plus the offset of the segment's payload, modulo 2^32
//!   (RFC 9293 section 3.4);
//! - FIN and PSH only on the last segment: FIN takes the sequence number after the last byte,
//!   PSH marks the end of what the sender pushed (RFC 9293 sections 3.5 and 3.9.1);
//! - CWR only on the first: it marks the first data after a window reduction (RFC 3168 section
//!   6.1.2; Linux's `SKB_GSO_TCP_ECN`). URG and the Urgent Pointer are copied as they are, as
//!   Linux does;
//! - the TCP checksum computed whole over the pseudo header and the segment (RFC 9293 section
//!   3.1): whatever the original field held (a pseudo-header seed, or garbage) is ignored.
//!
//! The IPv4 header checksum of the original is not checked: every segment gets a new one.

use std::net::Ipv4Addr;

use crate::frame_sizes::FRAME_BUF_SIZE;
use crate::wire::checksum::{accumulate, fold};
use crate::wire::ethernet::{ethertype, HEADER_LEN as ETHERNET_HEADER_LEN};
use crate::wire::ipv4::protocol;
use crate::wire::tcp::flags;
use crate::wire::{EthernetPacket, Ipv4Packet, TcpPacket, WireError};

use super::{Gso, GsoKind, PartialChecksum};

/// A frame whose offload work cannot be done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// The frame's headers are not Ethernet, IPv4 and TCP, are inconsistent, or the datagram
    /// is a fragment.
    #[error(transparent)]
    Header(#[from] WireError),
    /// `csum_start` or `csum_offset` puts the checksum field past the end of the frame.
    #[error(
        "virtio_net_hdr {field} is {value}: the checksum field would end at byte {end} of a \
         {len}-byte frame"
    )]
    ChecksumOutsideFrame {
        field: &'static str,
        value: u16,
        end: usize,
        len: usize,
    },
    /// A segment size of 0: no payload would fit a segment.
    #[error("gso_size is 0: no payload fits a segment")]
    ZeroGsoSize,
    /// Headers plus `gso_size` bytes of payload do not fit the segment buffer.
    #[error("a segment of {len} bytes (gso_size {gso_size}) does not fit a {max}-byte buffer")]
    SegmentTooLarge {
        len: usize,
        gso_size: u16,
        max: usize,
    },
}

/// Finishes a partial checksum in place: the Internet checksum (RFC 1071) of `frame[start..]`,
/// written big-endian at `start + offset`, as Linux's `skb_checksum_help` does.
///
/// The field already holds the pseudo-header sum (the seed), so summing the covered bytes as
/// they are gives the whole checksum. A result of 0 is written as 0xffff (Linux's
/// `CSUM_MANGLED_0`): UDP needs that, 0 meaning "no checksum" (RFC 768), and for TCP the two
/// are the same number in one's complement. The sum runs to the end of `frame`, so pass the
/// frame without link-layer padding (a TAP device gives none).
pub fn complete_checksum(frame: &mut [u8], partial: PartialChecksum) -> Result<(), OffloadError> {
    let start = usize::from(partial.start);
    let at = start + usize::from(partial.offset);
    let end = at + 2;
    let len = frame.len();
    let Some(covered) = frame.get(start..).filter(|_| end <= len) else {
        let (field, value) = if start >= len {
            ("csum_start", partial.start)
        } else {
            ("csum_offset", partial.offset)
        };
        return Err(OffloadError::ChecksumOutsideFrame {
            field,
            value,
            end,
            len,
        });
    };
    let csum = match !fold(accumulate(0, covered)) {
        0 => 0xffff,
        c => c,
    };
    if let Some(field) = frame.get_mut(at..end) {
        field.copy_from_slice(&csum.to_be_bytes());
    }
    Ok(())
}

/// Cuts GSO frames into segments, one at a time, in a buffer allocated once.
pub struct Segmenter {
    buf: Box<[u8; FRAME_BUF_SIZE]>,
}

impl Default for Segmenter {
    fn default() -> Segmenter {
        Segmenter::new()
    }
}

/// What every segment of one frame shares, read once from its headers.
struct Template<'a> {
    /// The Ethernet, IPv4 and TCP headers, options included.
    headers: &'a [u8],
    ip_header_len: usize,
    ident: u16,
    seq: u32,
    flags: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
}

impl Segmenter {
    /// A segmenter with its buffer (one [`FRAME_BUF_SIZE`] frame).
    pub fn new() -> Segmenter {
        Segmenter {
            buf: Box::new([0u8; FRAME_BUF_SIZE]),
        }
    }

    /// Splits `frame` (Ethernet + IPv4 + TCP, payload up to 64 KiB) into segments of at most
    /// `gso.size` payload bytes each and calls `emit(segment)` for each, in order (see the
    /// module doc for what each segment carries). A frame whose payload fits one segment
    /// (an empty one included) is emitted once, its checksums completed. Bytes past the IPv4
    /// Total Length (Ethernet padding) are ignored, and so is `gso.header_len`: the header
    /// lengths are read from the headers.
    ///
    /// Returns the number of segments emitted. When `emit` returns false (the TX ring is
    /// full) that segment counts as not sent, and segmentation stops there. Errors, before any
    /// segment is emitted: the frame is not IPv4 and TCP, its headers are truncated or
    /// inconsistent ([`OffloadError::Header`]), the datagram is a fragment, `gso.size` is 0,
    /// or the largest segment would not fit the buffer.
    pub fn segment(
        &mut self,
        frame: &[u8],
        gso: Gso,
        mut emit: impl FnMut(&[u8]) -> bool,
    ) -> Result<usize, OffloadError> {
        let cut = Cut::of(frame, gso)?;
        for index in 0..cut.count {
            if !emit(self.build_nth(&cut, index, gso)?) {
                return Ok(index);
            }
        }
        Ok(cut.count)
    }

    /// Segment `index` of `frame` as [`Segmenter::segment`] would emit it, or `None` past the
    /// last one: for a caller that must give up its borrow of the frame's buffer between
    /// segments (the worker sends each through the ports that also hold the frame). The
    /// frame's headers are read again on each call; the errors are `segment`'s.
    pub fn nth(
        &mut self,
        frame: &[u8],
        gso: Gso,
        index: usize,
    ) -> Result<Option<&[u8]>, OffloadError> {
        let cut = Cut::of(frame, gso)?;
        if index >= cut.count {
            return Ok(None);
        }
        self.build_nth(&cut, index, gso).map(Some)
    }

    fn build_nth(&mut self, cut: &Cut<'_>, index: usize, gso: Gso) -> Result<&[u8], OffloadError> {
        let mss = usize::from(gso.size);
        let offset = index * mss;
        let chunk = cut
            .payload
            .get(offset..cut.payload.len().min(offset + mss))
            .unwrap_or_default();
        let len = cut.template.headers.len() + chunk.len();
        self.build(&cut.template, index, cut.count, offset, chunk)
            .ok_or(OffloadError::SegmentTooLarge {
                len,
                gso_size: gso.size,
                max: FRAME_BUF_SIZE,
            })
    }

    /// Writes segment `index` of `count`, carrying `chunk` (the payload from `offset`), into
    /// the buffer and returns it; `None` only if it does not fit, which `segment` has ruled
    /// out.
    fn build(
        &mut self,
        t: &Template<'_>,
        index: usize,
        count: usize,
        offset: usize,
        chunk: &[u8],
    ) -> Option<&[u8]> {
        let len = t.headers.len() + chunk.len();
        let segment = self.buf.get_mut(..len)?;
        segment
            .get_mut(..t.headers.len())?
            .copy_from_slice(t.headers);
        segment.get_mut(t.headers.len()..)?.copy_from_slice(chunk);

        // The headers were read through checked views in `segment` and copied whole, so the
        // unchecked views below stay in bounds.
        let datagram = segment.get_mut(ETHERNET_HEADER_LEN..)?;
        let total_len = u16::try_from(datagram.len()).ok()?;
        let mut ip = Ipv4Packet::new_unchecked(&mut *datagram);
        ip.set_total_len(total_len);
        ip.set_ident(t.ident.wrapping_add(index as u16));
        ip.fill_checksum();

        let mut tcp = TcpPacket::new_unchecked(datagram.get_mut(t.ip_header_len..)?);
        tcp.set_seq_number(t.seq.wrapping_add(offset as u32));
        let mut segment_flags = t.flags;
        if index != 0 {
            segment_flags &= !flags::CWR;
        }
        if index + 1 != count {
            segment_flags &= !(flags::FIN | flags::PSH);
        }
        tcp.set_flags(segment_flags);
        tcp.fill_checksum(t.src, t.dst);
        self.buf.get(..len)
    }
}

/// A frame checked for cutting: its shared headers, payload and number of segments.
struct Cut<'a> {
    template: Template<'a>,
    payload: &'a [u8],
    count: usize,
}

impl<'a> Cut<'a> {
    /// Reads and checks `frame`'s headers (the errors of [`Segmenter::segment`]).
    fn of(frame: &'a [u8], gso: Gso) -> Result<Cut<'a>, OffloadError> {
        let GsoKind::TcpV4 = gso.kind;
        let ethernet = EthernetPacket::new_checked(frame)?;
        if ethernet.ethertype() != ethertype::IPV4 {
            return Err(bad_value(
                "ethernet",
                "ethertype",
                ethernet.ethertype().into(),
            ));
        }
        let ip = Ipv4Packet::new_checked(ethernet.into_payload())?;
        if ip.protocol() != protocol::TCP {
            return Err(bad_value("ipv4", "protocol", ip.protocol().into()));
        }
        // A fragment's payload is not a whole TCP segment (Linux's inet_gso_segment refuses
        // them too).
        if ip.more_frags() {
            return Err(bad_value("ipv4", "more_fragments", 1));
        }
        if ip.frag_offset() != 0 {
            return Err(bad_value(
                "ipv4",
                "fragment_offset",
                ip.frag_offset().into(),
            ));
        }
        let tcp = TcpPacket::new_checked(ip.payload())?;
        if gso.size == 0 {
            return Err(OffloadError::ZeroGsoSize);
        }
        let mss = usize::from(gso.size);
        let headers_len = ETHERNET_HEADER_LEN + ip.header_len() + tcp.header_len();
        // The payload as the TCP view sees it (up to the IPv4 Total Length), taken from
        // `frame` itself so that it outlives the views.
        let payload_len = tcp.payload().len();
        let payload = frame
            .get(headers_len..headers_len + payload_len)
            .unwrap_or_default();
        let largest = headers_len + payload.len().min(mss);
        if largest > FRAME_BUF_SIZE {
            return Err(OffloadError::SegmentTooLarge {
                len: largest,
                gso_size: gso.size,
                max: FRAME_BUF_SIZE,
            });
        }
        // The checked views put the three headers back to back at the start of `frame`.
        let Some(headers) = frame.get(..headers_len) else {
            return Err(WireError::Truncated {
                header: "tcp",
                field: "header",
                len: frame.len(),
                need: headers_len,
            }
            .into());
        };
        let template = Template {
            headers,
            ip_header_len: ip.header_len(),
            ident: ip.ident(),
            seq: tcp.seq_number(),
            flags: tcp.flags(),
            src: ip.src_addr(),
            dst: ip.dst_addr(),
        };

        let count = payload.len().div_ceil(mss).max(1);
        Ok(Cut {
            template,
            payload,
            count,
        })
    }
}

fn bad_value(header: &'static str, field: &'static str, value: u32) -> OffloadError {
    OffloadError::Header(WireError::BadValue {
        header,
        field,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offload::vnet_hdr;
    use crate::offload::Offload;
    use crate::wire::checksum::pseudo_header;
    use crate::wire::test_rng::{hostile_inputs, Rng};
    use crate::wire::UdpPacket;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 65, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 65, 1, 7);
    const ETH: usize = ETHERNET_HEADER_LEN;
    /// NOP, NOP, Timestamps (RFC 7323 section 3): the options Linux puts on every segment.
    const TCP_TIMESTAMPS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78];
    const ALL_FLAGS: u8 = flags::CWR | flags::ECE | flags::ACK | flags::PSH | flags::FIN;

    fn tso(size: u16) -> Gso {
        Gso {
            kind: GsoKind::TcpV4,
            size,
            header_len: 0, // a hint only: the segmenter must not need it
        }
    }

    /// The frame a TAP device gives with GSO: Ethernet, IPv4 with DF and `ip_options`, TCP
    /// with timestamps, `tcp_flags`, and its checksum field holding the pseudo-header seed.
    fn tcp_frame(
        payload: &[u8],
        ip_options: &[u8],
        ident: u16,
        seq: u32,
        tcp_flags: u8,
    ) -> Vec<u8> {
        let ip_len = 20 + ip_options.len();
        let tcp_len = 20 + TCP_TIMESTAMPS.len();
        let mut f = vec![0u8; ETH + ip_len + tcp_len];
        f[0..6].copy_from_slice(&[0xee; 6]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        let ip = &mut f[ETH..];
        ip[0] = 0x40 | (ip_len / 4) as u8;
        let total = (ip_len + tcp_len + payload.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&ident.to_be_bytes());
        ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = protocol::TCP;
        ip[12..16].copy_from_slice(&SRC.octets());
        ip[16..20].copy_from_slice(&DST.octets());
        ip[20..ip_len].copy_from_slice(ip_options);
        let tcp = &mut ip[ip_len..];
        tcp[0..2].copy_from_slice(&47000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&0x0bad_cafeu32.to_be_bytes());
        tcp[12] = ((tcp_len / 4) as u8) << 4;
        tcp[13] = tcp_flags;
        tcp[14..16].copy_from_slice(&502u16.to_be_bytes());
        tcp[20..].copy_from_slice(&TCP_TIMESTAMPS);
        f.extend_from_slice(payload);
        let seg_len = (tcp_len + payload.len()) as u32;
        let seed = fold(pseudo_header(SRC, DST, protocol::TCP, seg_len));
        f[ETH + ip_len + 16..ETH + ip_len + 18].copy_from_slice(&seed.to_be_bytes());
        Ipv4Packet::new_unchecked(&mut f[ETH..]).fill_checksum();
        f
    }

    fn random_payload(len: usize, seed: u64) -> Vec<u8> {
        let mut p = vec![0u8; len];
        Rng::new(seed).fill(&mut p);
        p
    }

    /// Runs the segmenter, collecting every segment.
    fn segments(frame: &[u8], gso: Gso) -> Result<Vec<Vec<u8>>, OffloadError> {
        let mut out = Vec::new();
        let n = Segmenter::new().segment(frame, gso, |s| {
            out.push(s.to_vec());
            true
        })?;
        assert_eq!(n, out.len(), "the count returned is the count emitted");
        Ok(out)
    }

    /// What a segment says, after asserting it is a well-formed frame: Ethernet header as
    /// the original's, a valid IPv4 header checksum and Total Length, a valid TCP checksum.
    struct Seen {
        ident: u16,
        seq: u32,
        flags: u8,
        payload: Vec<u8>,
    }

    fn check(segment: &[u8], original: &[u8]) -> Seen {
        assert_eq!(segment[..ETH], original[..ETH], "Ethernet header copied");
        let ip = Ipv4Packet::new_checked(&segment[ETH..]).expect("IPv4 header");
        let orig_ip = Ipv4Packet::new_checked(&original[ETH..]).unwrap();
        assert!(ip.verify_checksum(), "IPv4 header checksum");
        assert_eq!(
            usize::from(ip.total_len()),
            segment.len() - ETH,
            "total length"
        );
        assert_eq!(ip.options(), orig_ip.options(), "IPv4 options copied");
        assert_eq!(
            (ip.dont_frag(), ip.more_frags(), ip.frag_offset(), ip.ttl()),
            (orig_ip.dont_frag(), false, 0, orig_ip.ttl())
        );
        assert_eq!((ip.src_addr(), ip.dst_addr()), (SRC, DST));
        let tcp = TcpPacket::new_checked(ip.payload()).expect("TCP header");
        let orig_tcp = TcpPacket::new_checked(orig_ip.payload()).unwrap();
        assert!(tcp.verify_checksum(SRC, DST), "TCP checksum");
        assert_eq!(tcp.options(), orig_tcp.options(), "TCP options copied");
        assert_eq!(
            (
                tcp.src_port(),
                tcp.dst_port(),
                tcp.ack_number(),
                tcp.window_len()
            ),
            (
                orig_tcp.src_port(),
                orig_tcp.dst_port(),
                orig_tcp.ack_number(),
                orig_tcp.window_len()
            )
        );
        Seen {
            ident: ip.ident(),
            seq: tcp.seq_number(),
            flags: tcp.flags(),
            payload: tcp.payload().to_vec(),
        }
    }

    #[test]
    fn a_10000_byte_payload_becomes_seven_segments_of_at_most_1448() {
        let payload = random_payload(10_000, 1);
        let seq0 = u32::MAX - 3000; // wraps in the third segment
        let ident0 = 0xfffd; // wraps in the fourth
        let f = tcp_frame(&payload, &[], ident0, seq0, ALL_FLAGS);
        let segs = segments(&f, tso(1448)).unwrap();
        assert_eq!(segs.len(), 10_000usize.div_ceil(1448));
        assert_eq!(segs.len(), 7);

        let mut joined = Vec::new();
        let mut expect_seq = seq0;
        for (i, s) in segs.iter().enumerate() {
            let seen = check(s, &f);
            let want_len = if i < 6 { 1448 } else { 10_000 - 6 * 1448 };
            assert_eq!(seen.payload.len(), want_len, "segment {i}");
            assert_eq!(
                s.len(),
                ETH + 20 + 32 + want_len,
                "segment {i} frame length"
            );
            assert_eq!(seen.seq, expect_seq, "segment {i} sequence number");
            expect_seq = expect_seq.wrapping_add(want_len as u32);
            assert_eq!(
                seen.ident,
                ident0.wrapping_add(i as u16),
                "segment {i} ident"
            );
            let first = i == 0;
            let last = i == segs.len() - 1;
            assert_eq!(seen.flags & flags::CWR != 0, first, "segment {i} CWR");
            assert_eq!(seen.flags & flags::FIN != 0, last, "segment {i} FIN");
            assert_eq!(seen.flags & flags::PSH != 0, last, "segment {i} PSH");
            assert_eq!(
                seen.flags & (flags::ACK | flags::ECE),
                flags::ACK | flags::ECE
            );
            joined.extend_from_slice(&seen.payload);
        }
        assert_eq!(joined, payload, "payloads concatenate to the original");
        assert_eq!(expect_seq, seq0.wrapping_add(10_000));
        assert!(expect_seq < seq0, "the sequence numbers wrapped");
    }

    #[test]
    fn ip_options_are_copied_into_every_segment() {
        let payload = random_payload(3000, 2);
        let f = tcp_frame(&payload, &[1, 1, 1, 0], 7, 1000, flags::ACK | flags::PSH);
        let segs = segments(&f, tso(1000)).unwrap();
        assert_eq!(segs.len(), 3);
        for (i, s) in segs.iter().enumerate() {
            let seen = check(s, &f);
            assert_eq!(seen.payload, payload[i * 1000..(i + 1) * 1000]);
            assert_eq!(
                (seen.seq, seen.ident),
                (1000 + i as u32 * 1000, 7 + i as u16)
            );
            assert_eq!(seen.flags & flags::PSH != 0, i == 2);
        }
    }

    #[test]
    fn a_payload_that_fits_is_emitted_once_with_its_checksum_completed() {
        for len in [1, 999, 1447, 1448] {
            let payload = random_payload(len, 3);
            let f = tcp_frame(&payload, &[], 42, 5, ALL_FLAGS);
            let segs = segments(&f, tso(1448)).unwrap();
            assert_eq!(segs.len(), 1, "payload {len}");
            let seen = check(&segs[0], &f);
            assert_eq!((seen.ident, seen.seq, seen.flags), (42, 5, ALL_FLAGS));
            let mut completed = f.clone();
            TcpPacket::new_unchecked(&mut completed[ETH + 20..]).fill_checksum(SRC, DST);
            assert_eq!(segs[0], completed, "only the TCP checksum changes");
        }
    }

    #[test]
    fn an_empty_payload_is_emitted_once() {
        let f = tcp_frame(&[], &[], 1, 2, flags::ACK | flags::FIN);
        let segs = segments(&f, tso(1448)).unwrap();
        assert_eq!(segs.len(), 1);
        let seen = check(&segs[0], &f);
        assert!(seen.payload.is_empty());
        assert_eq!(seen.flags, flags::ACK | flags::FIN);
    }

    #[test]
    fn the_original_checksum_field_is_ignored() {
        let payload = random_payload(2000, 4);
        let seeded = segments(&tcp_frame(&payload, &[], 1, 2, flags::ACK), tso(700)).unwrap();
        let mut garbage = tcp_frame(&payload, &[], 1, 2, flags::ACK);
        garbage[ETH + 20 + 16..ETH + 20 + 18].copy_from_slice(&[0xde, 0xad]);
        assert_eq!(segments(&garbage, tso(700)).unwrap(), seeded);
    }

    #[test]
    fn ethernet_padding_and_bytes_past_total_length_are_ignored() {
        for (len, size) in [(6, 1448), (3000, 1448)] {
            let f = tcp_frame(&random_payload(len, 5), &[], 1, 2, flags::ACK);
            let mut padded = f.clone();
            padded.extend_from_slice(&[0xa5; 40]);
            assert_eq!(
                segments(&padded, tso(size)).unwrap(),
                segments(&f, tso(size)).unwrap()
            );
        }
    }

    #[test]
    fn a_full_tx_ring_stops_segmentation() {
        let f = tcp_frame(&random_payload(10_000, 6), &[], 1, 2, flags::ACK);
        let mut segmenter = Segmenter::new();
        for accepted in 0..7 {
            let mut calls = 0;
            let sent = segmenter.segment(&f, tso(1448), |_| {
                calls += 1;
                calls <= accepted
            });
            assert_eq!(sent, Ok(accepted), "ring takes {accepted}");
            assert_eq!(calls, accepted + 1, "no segment offered after a refusal");
        }
        let sent = segmenter.segment(&f, tso(1448), |_| true);
        assert_eq!(sent, Ok(7));
    }

    #[test]
    fn nth_gives_each_segment_segment_emits_and_none_past_the_last() {
        let f = tcp_frame(&random_payload(10_000, 9), &[], 7, 99, ALL_FLAGS);
        let mut segmenter = Segmenter::new();
        let mut emitted = Vec::new();
        segmenter
            .segment(&f, tso(1448), |s| {
                emitted.push(s.to_vec());
                true
            })
            .unwrap();
        for (k, want) in emitted.iter().enumerate() {
            let got = segmenter.nth(&f, tso(1448), k).unwrap();
            assert_eq!(got.map(<[u8]>::to_vec).as_ref(), Some(want), "segment {k}");
        }
        assert_eq!(segmenter.nth(&f, tso(1448), emitted.len()), Ok(None));
        assert!(segmenter.nth(&f[..40], tso(1448), 0).is_err());
    }

    #[test]
    fn every_truncation_of_a_valid_frame_is_an_error() {
        let f = tcp_frame(&random_payload(10_000, 7), &[4, 4, 0, 0], 1, 2, ALL_FLAGS);
        let mut segmenter = Segmenter::new();
        for n in 0..f.len() {
            let mut emitted = 0;
            let result = segmenter.segment(&f[..n], tso(1448), |_| {
                emitted += 1;
                true
            });
            assert!(
                matches!(result, Err(OffloadError::Header(_))),
                "{n} bytes: {result:?}"
            );
            assert_eq!(emitted, 0, "{n} bytes: nothing emitted before an error");
        }
        assert_eq!(segmenter.segment(&f, tso(1448), |_| true), Ok(7));
    }

    #[test]
    fn frames_that_are_not_whole_ipv4_tcp_segments_are_errors() {
        let f = tcp_frame(&random_payload(3000, 8), &[], 1, 2, flags::ACK);
        let run = |frame: &[u8], size: u16| segments(frame, tso(size)).map(|s| s.len());
        let header_err = |header, field, value| {
            Err(OffloadError::Header(WireError::BadValue {
                header,
                field,
                value,
            }))
        };

        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(run(&arp, 1448), header_err("ethernet", "ethertype", 0x0806));

        let mut udp = f.clone();
        udp[ETH + 9] = protocol::UDP;
        assert_eq!(run(&udp, 1448), header_err("ipv4", "protocol", 17));

        let mut more_frags = f.clone();
        more_frags[ETH + 6] |= 0x20;
        assert_eq!(
            run(&more_frags, 1448),
            header_err("ipv4", "more_fragments", 1)
        );

        let mut offset = f.clone();
        offset[ETH + 6..ETH + 8].copy_from_slice(&185u16.to_be_bytes());
        assert_eq!(
            run(&offset, 1448),
            header_err("ipv4", "fragment_offset", 1480)
        );

        let mut v6 = f.clone();
        v6[ETH] = 0x65;
        assert_eq!(run(&v6, 1448), header_err("ipv4", "version", 6));

        let mut short_doff = f.clone();
        short_doff[ETH + 20 + 12] = 4 << 4;
        assert_eq!(run(&short_doff, 1448), header_err("tcp", "data_offset", 4));

        // A TCP header longer than the datagram it is in.
        let mut long_doff = tcp_frame(&[], &[], 1, 2, flags::ACK);
        long_doff[ETH + 20 + 12] = 15 << 4;
        long_doff.extend_from_slice(&[0; 60]); // padding past Total Length does not count
        assert_eq!(
            run(&long_doff, 1448),
            Err(OffloadError::Header(WireError::Truncated {
                header: "tcp",
                field: "options",
                len: 32,
                need: 60
            }))
        );

        let mut long_total = f.clone();
        long_total[ETH + 2..ETH + 4].copy_from_slice(&9000u16.to_be_bytes());
        assert!(matches!(
            run(&long_total, 1448),
            Err(OffloadError::Header(WireError::BadLength {
                field: "total_length",
                ..
            }))
        ));

        assert_eq!(run(&f, 0), Err(OffloadError::ZeroGsoSize));
    }

    #[test]
    fn a_segment_too_large_for_the_buffer_is_refused_up_front() {
        let f = tcp_frame(&random_payload(10_000, 9), &[], 1, 2, flags::ACK);
        let headers = ETH + 20 + 32;
        let fits = (FRAME_BUF_SIZE - headers) as u16;
        let segs = segments(&f, tso(fits)).unwrap();
        assert_eq!(segs.len(), 3);
        assert_eq!(segs[0].len(), FRAME_BUF_SIZE);
        assert_eq!(
            segments(&f, tso(fits + 1)),
            Err(OffloadError::SegmentTooLarge {
                len: FRAME_BUF_SIZE + 1,
                gso_size: fits + 1,
                max: FRAME_BUF_SIZE
            })
        );
        assert_eq!(
            OffloadError::SegmentTooLarge {
                len: 4097,
                gso_size: 4031,
                max: 4096
            }
            .to_string(),
            "a segment of 4097 bytes (gso_size 4031) does not fit a 4096-byte buffer"
        );
        // A large gso_size is fine when the payload is small.
        assert_eq!(
            segments(&tcp_frame(&[1; 100], &[], 1, 2, 0), tso(u16::MAX))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn hostile_frames_never_panic_and_every_segment_emitted_is_well_formed() {
        let valid = tcp_frame(&random_payload(700, 10), &[1, 1, 1, 1], 1, 2, ALL_FLAGS);
        let mut segmenter = Segmenter::new();
        let mut accepted = 0;
        for input in hostile_inputs(&valid, 3000, 11) {
            for size in [1, 100, 1448] {
                let result = segmenter.segment(&input, tso(size), |s| {
                    let ip = Ipv4Packet::new_checked(&s[ETH..]).expect("IPv4 header");
                    assert!(ip.verify_checksum());
                    let tcp = TcpPacket::new_checked(ip.payload()).expect("TCP header");
                    assert!(tcp.verify_checksum(ip.src_addr(), ip.dst_addr()));
                    assert!(tcp.payload().len() <= usize::from(size));
                    true
                });
                accepted += usize::from(result.is_ok());
            }
        }
        assert!(accepted > 0, "some inputs are valid");
    }

    #[test]
    fn a_completed_checksum_verifies_and_matches_a_full_computation() {
        for len in [0, 1, 2, 999, 1448] {
            let mut f = tcp_frame(&random_payload(len, 12), &[], 1, 2, flags::ACK);
            let partial = PartialChecksum {
                start: (ETH + 20) as u16,
                offset: 16,
            };
            assert!(
                len == 0
                    || !TcpPacket::new_checked(&f[ETH + 20..])
                        .unwrap()
                        .verify_checksum(SRC, DST),
                "the seed alone does not verify"
            );
            let mut full = f.clone();
            TcpPacket::new_unchecked(&mut full[ETH + 20..]).fill_checksum(SRC, DST);
            complete_checksum(&mut f, partial).unwrap();
            assert!(TcpPacket::new_checked(&f[ETH + 20..])
                .unwrap()
                .verify_checksum(SRC, DST));
            assert_eq!(f, full, "payload {len}");
        }
    }

    #[test]
    fn a_header_from_the_tap_device_drives_completion() {
        let mut f = tcp_frame(&random_payload(321, 13), &[4, 4, 0, 0], 1, 2, flags::ACK);
        let mut hdr = [0u8; vnet_hdr::VNET_HDR_LEN];
        let start = (ETH + 24) as u16;
        vnet_hdr::encode(
            &Offload {
                gso: None,
                partial_checksum: Some(PartialChecksum { start, offset: 16 }),
            },
            &mut hdr,
        );
        let partial = vnet_hdr::decode(&hdr).unwrap().partial_checksum.unwrap();
        complete_checksum(&mut f, partial).unwrap();
        assert!(TcpPacket::new_checked(&f[ETH + 24..])
            .unwrap()
            .verify_checksum(SRC, DST));
    }

    #[test]
    fn a_udp_checksum_that_comes_out_zero_is_sent_as_ffff() {
        // Ethernet + IPv4 + UDP with 8 bytes of data, the checksum field holding the seed; one
        // data word chosen so that the whole sum is 0xffff, i.e. the checksum is 0.
        let mut f = vec![0u8; ETH + 20 + 16];
        let udp_at = ETH + 20;
        f[udp_at..udp_at + 2].copy_from_slice(&5353u16.to_be_bytes());
        f[udp_at + 2..udp_at + 4].copy_from_slice(&53u16.to_be_bytes());
        f[udp_at + 4..udp_at + 6].copy_from_slice(&16u16.to_be_bytes());
        f[udp_at + 8..udp_at + 14].copy_from_slice(b"query!");
        let seed = fold(pseudo_header(SRC, DST, protocol::UDP, 16));
        f[udp_at + 6..udp_at + 8].copy_from_slice(&seed.to_be_bytes());
        let rest = fold(accumulate(0, &f[udp_at..]));
        f[udp_at + 14..udp_at + 16].copy_from_slice(&(!rest).to_be_bytes());
        assert_eq!(fold(accumulate(0, &f[udp_at..])), 0xffff);

        let partial = PartialChecksum {
            start: udp_at as u16,
            offset: 6,
        };
        complete_checksum(&mut f, partial).unwrap();
        let udp = UdpPacket::new_checked(&f[udp_at..]).unwrap();
        assert_eq!(
            udp.checksum(),
            0xffff,
            "0 means no checksum: sent as 0xffff"
        );
        assert!(udp.verify_checksum(SRC, DST));
    }

    #[test]
    fn a_checksum_outside_the_frame_is_an_error_never_a_panic() {
        let original: Vec<u8> = (0..60).collect();
        for start in (0..70).chain([u16::MAX - 1, u16::MAX]) {
            for offset in (0..70).chain([u16::MAX - 1, u16::MAX]) {
                let mut f = original.clone();
                let partial = PartialChecksum { start, offset };
                let end = usize::from(start) + usize::from(offset) + 2;
                match complete_checksum(&mut f, partial) {
                    Ok(()) => {
                        assert!(end <= 60, "start {start} offset {offset}");
                        let at = end - 2;
                        assert_eq!(f[..at], original[..at]);
                        assert_eq!(f[end..], original[end..], "only the field is written");
                    }
                    Err(e) => {
                        assert!(end > 60, "start {start} offset {offset}: {e}");
                        let (field, value) = if usize::from(start) >= 60 {
                            ("csum_start", start)
                        } else {
                            ("csum_offset", offset)
                        };
                        let len = 60;
                        assert_eq!(
                            e,
                            OffloadError::ChecksumOutsideFrame {
                                field,
                                value,
                                end,
                                len
                            }
                        );
                        assert_eq!(f, original, "nothing written");
                    }
                }
            }
        }
        assert_eq!(
            OffloadError::ChecksumOutsideFrame {
                field: "csum_offset",
                value: 16,
                end: 52,
                len: 40
            }
            .to_string(),
            "virtio_net_hdr csum_offset is 16: the checksum field would end at byte 52 of a \
             40-byte frame"
        );
    }
}
