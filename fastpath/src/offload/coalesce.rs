//! Receive coalescing (what Linux's GRO does, `tcp_gro_receive` and `inet_gro_receive`):
//! consecutive TCP segments of one flow, each at most the MTU, joined into one GSO frame for a
//! port that takes offload metadata (a TAP), so that a workload is handed one 64 KiB segment
//! and one write(2) instead of forty.
//!
//! A segment joins the open run only when the result is what the sender's TSO would have
//! produced: same addresses, ports, TOS, TTL and DF (set), no IPv4 options, the next sequence
//! number, the same acknowledgment and identical TCP options, flags ACK (PSH allowed, and it
//! ends the run), a payload no larger than the run's first (a smaller one ends the run), a
//! checksum that verifies (the receiver trusts the joined frame's partial checksum, so a
//! damaged segment must not be hidden in it), and at most 64 KiB in all. Anything else is sent
//! as it is, after the run it would have followed (the caller flushes first).
//!
//! The joined frame carries the first segment's headers with the total length, the IPv4
//! checksum, PSH and the last window updated, and its TCP checksum left partial (the
//! pseudo-header sum, RFC 793 section 3.1), as a sender's TSO leaves it: with
//! [`Offload`] metadata saying how to cut it again.

use crate::wire::checksum::{fold, pseudo_header};
use crate::wire::ethernet::{self, ethertype, HEADER_LEN as ETHERNET_HEADER_LEN};
use crate::wire::ipv4::protocol;
use crate::wire::{Ipv4Packet, TcpPacket};

use super::{Gso, GsoKind, Offload, PartialChecksum};

/// The largest joined frame: an IPv4 datagram of 64 KiB behind its Ethernet header.
const MAX_FRAME: usize = ETHERNET_HEADER_LEN + 65_535;

/// TCP flags (RFC 793 section 3.1, RFC 3168 section 6.1).
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
/// Flags a segment may carry and still join a run.
const JOINABLE: u8 = ACK | PSH;

const IPV4_HEADER_LEN: usize = 20;
const TCP_CHECKSUM_AT: usize = 16;
const TCP_WINDOW_AT: usize = 14;
const TCP_FLAGS_AT: usize = 13;

/// The open run: where it goes and what the next segment must match.
#[derive(Clone, Copy, Debug)]
struct Run {
    /// The caller's name for the egress (a port id).
    egress: u16,
    /// Ethernet + IPv4 + TCP header bytes of the first segment.
    header_len: usize,
    /// Payload bytes of the first segment: the most any other may carry.
    mss: usize,
    next_seq: u32,
    segments: usize,
    /// A segment ended the run (PSH, or shorter than the first): nothing more joins.
    closed: bool,
}

/// One open run of segments, joined in a buffer allocated once.
pub struct Coalescer {
    buf: Box<[u8]>,
    len: usize,
    run: Option<Run>,
}

impl Default for Coalescer {
    fn default() -> Coalescer {
        Coalescer::new()
    }
}

/// A joined frame, ready to send.
#[derive(Debug, PartialEq, Eq)]
pub struct Joined<'a> {
    pub egress: u16,
    pub frame: &'a [u8],
    /// GSO metadata when more than one segment was joined; none for a lone segment, which
    /// goes out as it came.
    pub offload: Offload,
    pub segments: usize,
}

impl Coalescer {
    pub fn new() -> Coalescer {
        Coalescer {
            buf: vec![0u8; MAX_FRAME].into_boxed_slice(),
            len: 0,
            run: None,
        }
    }

    /// The egress of the open run, if any.
    pub fn open_for(&self) -> Option<u16> {
        self.run.map(|r| r.egress)
    }

    /// Adds `frame` (a finished Ethernet frame, checksums complete) for `egress` to the open
    /// run, or opens a run with it when none is open. False, with nothing changed, when it
    /// cannot join: the caller then flushes the run (if it goes to the same egress) and sends
    /// `frame` on its own, or offers it again once the run is taken.
    pub fn offer(&mut self, egress: u16, frame: &[u8]) -> bool {
        let Some(seg) = Segment::read(frame) else {
            return false;
        };
        match self.run {
            None => self.open(egress, frame, &seg),
            Some(run) => self.join(run, egress, frame, &seg),
        }
    }

    fn open(&mut self, egress: u16, frame: &[u8], seg: &Segment) -> bool {
        let end = seg.header_len + seg.payload_len;
        let Some(bytes) = frame.get(..end) else {
            return false;
        };
        self.buf[..end].copy_from_slice(bytes);
        self.len = end;
        self.run = Some(Run {
            egress,
            header_len: seg.header_len,
            mss: seg.payload_len,
            next_seq: seg.seq.wrapping_add(seg.payload_len as u32),
            segments: 1,
            closed: seg.ends_run,
        });
        true
    }

    fn join(&mut self, mut run: Run, egress: u16, frame: &[u8], seg: &Segment) -> bool {
        let first = &self.buf[..run.header_len];
        let joins = !run.closed
            && run.egress == egress
            && seg.header_len == run.header_len
            && seg.seq == run.next_seq
            && seg.payload_len <= run.mss
            && self.len + seg.payload_len <= MAX_FRAME
            && same_flow(first, frame, run.header_len);
        if !joins {
            return false;
        }
        let payload = &frame[seg.header_len..seg.header_len + seg.payload_len];
        self.buf[self.len..self.len + payload.len()].copy_from_slice(payload);
        self.len += payload.len();
        // The latest window and PSH, as the receiver would have seen them last.
        let tcp = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
        self.buf[tcp + TCP_WINDOW_AT..tcp + TCP_WINDOW_AT + 2]
            .copy_from_slice(&frame[tcp + TCP_WINDOW_AT..tcp + TCP_WINDOW_AT + 2]);
        self.buf[tcp + TCP_FLAGS_AT] |= frame[tcp + TCP_FLAGS_AT] & PSH;
        run.next_seq = run.next_seq.wrapping_add(seg.payload_len as u32);
        run.segments += 1;
        run.closed = seg.ends_run || seg.payload_len < run.mss;
        self.run = Some(run);
        true
    }

    /// Closes the open run and gives its frame (none when no run is open).
    pub fn take(&mut self) -> Option<Joined<'_>> {
        let run = self.run.take()?;
        let frame = &mut self.buf[..self.len];
        if run.segments == 1 {
            return Some(Joined {
                egress: run.egress,
                frame,
                offload: Offload::NONE,
                segments: 1,
            });
        }
        let ip_len = (self.len - ETHERNET_HEADER_LEN) as u16;
        let mut ip = Ipv4Packet::new_unchecked(&mut frame[ETHERNET_HEADER_LEN..]);
        ip.set_total_len(ip_len);
        ip.fill_checksum();
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let tcp_at = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN;
        let tcp_len = u32::from(ip_len) - IPV4_HEADER_LEN as u32;
        let seed = fold(pseudo_header(src, dst, protocol::TCP, tcp_len));
        frame[tcp_at + TCP_CHECKSUM_AT..tcp_at + TCP_CHECKSUM_AT + 2]
            .copy_from_slice(&seed.to_be_bytes());
        let offload = Offload {
            gso: Some(Gso {
                kind: GsoKind::TcpV4,
                size: run.mss as u16,
                header_len: run.header_len as u16,
            }),
            partial_checksum: Some(PartialChecksum {
                start: tcp_at as u16,
                offset: TCP_CHECKSUM_AT as u16,
            }),
        };
        Some(Joined {
            egress: run.egress,
            frame,
            offload,
            segments: run.segments,
        })
    }
}

/// What the coalescer reads of a segment, checked once.
struct Segment {
    header_len: usize,
    payload_len: usize,
    seq: u32,
    /// PSH: the sender wants it delivered now.
    ends_run: bool,
}

impl Segment {
    /// A segment that may take part in a run, or `None`.
    fn read(frame: &[u8]) -> Option<Segment> {
        let eth = ethernet::Packet::new_checked(frame).ok()?;
        if eth.ethertype() != ethertype::IPV4 {
            return None;
        }
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        let plain = ip.header_len() == IPV4_HEADER_LEN
            && ip.protocol() == protocol::TCP
            && ip.dont_frag()
            && !ip.more_frags()
            && ip.frag_offset() == 0;
        if !plain {
            return None;
        }
        let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
        let flags = tcp.flags();
        if flags & !JOINABLE != 0 || flags & ACK == 0 || flags & FIN != 0 {
            return None;
        }
        let payload_len = tcp.payload().len();
        if payload_len == 0 || !tcp.verify_checksum(ip.src_addr(), ip.dst_addr()) {
            return None;
        }
        Some(Segment {
            header_len: ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + tcp.header_len(),
            payload_len,
            seq: tcp.seq_number(),
            ends_run: flags & PSH != 0,
        })
    }
}

/// Whether `frame` belongs to the run whose first headers are `first` (both `header_len`
/// bytes of Ethernet, IPv4 and TCP headers): every header byte equal but those that change
/// from segment to segment (IPv4 total length, identification, checksum; TCP sequence number,
/// flags, window, checksum).
fn same_flow(first: &[u8], frame: &[u8], header_len: usize) -> bool {
    let Some(next) = frame.get(..header_len) else {
        return false;
    };
    let ip = ETHERNET_HEADER_LEN;
    let tcp = ip + IPV4_HEADER_LEN;
    // (from, to) ranges compared; the gaps are the fields allowed to differ.
    let compared = [
        (0, ip + 2),            // Ethernet, IPv4 version/IHL and TOS
        (ip + 6, ip + 10),      // IPv4 flags, fragment offset, TTL, protocol
        (ip + 12, tcp + 4),     // IPv4 addresses, TCP ports
        (tcp + 8, tcp + 13),    // TCP acknowledgment, data offset
        (tcp + 18, header_len), // TCP urgent pointer and options
    ];
    compared
        .iter()
        .all(|&(from, to)| first.get(from..to) == next.get(from..to))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::offload::Segmenter;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 65, 1, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 65, 0, 7);
    const TIMESTAMPS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78];

    /// A finished segment: DF, timestamps, `flags`, checksums complete.
    fn segment(seq: u32, payload: &[u8], flags: u8) -> Vec<u8> {
        let tcp_len = 20 + TIMESTAMPS.len();
        let mut f = vec![0u8; ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + tcp_len];
        f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 7]);
        f[6..12].copy_from_slice(&[0xee; 6]);
        f[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
        f.extend_from_slice(payload);
        let total = (IPV4_HEADER_LEN + tcp_len + payload.len()) as u16;
        let ip = &mut f[ETHERNET_HEADER_LEN..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&(seq as u16).to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 63;
        ip[9] = protocol::TCP;
        ip[12..16].copy_from_slice(&SRC.octets());
        ip[16..20].copy_from_slice(&DST.octets());
        let mut v = Ipv4Packet::new_unchecked(&mut *ip);
        v.fill_checksum();
        let t = &mut ip[IPV4_HEADER_LEN..];
        t[0..2].copy_from_slice(&5201u16.to_be_bytes());
        t[2..4].copy_from_slice(&40000u16.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[8..12].copy_from_slice(&77u32.to_be_bytes());
        t[12] = ((tcp_len / 4) as u8) << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&(seq as u16 | 1).to_be_bytes());
        t[20..tcp_len].copy_from_slice(&TIMESTAMPS);
        let mut tcp = TcpPacket::new_unchecked(&mut t[..]);
        tcp.fill_checksum(SRC, DST);
        f
    }

    fn payload(n: usize, salt: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + salt) as u8).collect()
    }

    #[test]
    fn consecutive_segments_join_into_one_frame_that_cuts_back_into_them() {
        let mut c = Coalescer::new();
        let mut sent = Vec::new();
        let mut seq = u32::MAX - 2000; // the sequence number wraps inside the run
        for i in 0..20 {
            let flags = if i == 19 { ACK | PSH } else { ACK };
            let seg = segment(seq, &payload(1448, i), flags);
            assert!(c.offer(3, &seg), "segment {i} joins");
            seq = seq.wrapping_add(1448);
            sent.push(seg);
        }
        let joined = c.take().expect("a run");
        assert_eq!((joined.egress, joined.segments), (3, 20));
        let gso = joined.offload.gso.expect("GSO metadata");
        assert_eq!(gso.size, 1448);
        let frame = joined.frame.to_vec();
        let ip = Ipv4Packet::new_checked(&frame[ETHERNET_HEADER_LEN..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(
            usize::from(ip.total_len()),
            frame.len() - ETHERNET_HEADER_LEN
        );
        assert!(c.take().is_none(), "taking closes the run");

        // Cut again as a TAP's kernel (or our segmenter) would: the very segments that came,
        // but for the IPv4 identification (renumbered from the first) and flags (PSH only
        // on the last, where it was).
        let mut k = 0;
        Segmenter::new()
            .segment(&frame, gso, |out| {
                let want = &sent[k];
                let id = ETHERNET_HEADER_LEN + 4;
                let ip_sum = ETHERNET_HEADER_LEN + 10;
                let win = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + TCP_WINDOW_AT;
                let tcp_sum = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + TCP_CHECKSUM_AT;
                let differs: Vec<usize> = (0..want.len())
                    .filter(|&b| out[b] != want[b])
                    .filter(|&b| {
                        ![
                            id,
                            id + 1,
                            ip_sum,
                            ip_sum + 1,
                            win,
                            win + 1,
                            tcp_sum,
                            tcp_sum + 1,
                        ]
                        .contains(&b)
                    })
                    .collect();
                assert_eq!(out.len(), want.len(), "segment {k}");
                assert!(differs.is_empty(), "segment {k} differs at {differs:?}");
                k += 1;
                true
            })
            .unwrap();
        assert_eq!(k, 20);
    }

    #[test]
    fn what_tso_would_not_have_sent_does_not_join() {
        let first = segment(1000, &payload(1000, 1), ACK);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "a gap in the sequence",
                segment(3000, &payload(1000, 2), ACK),
            ),
            ("a larger payload", segment(2000, &payload(1200, 2), ACK)),
            ("a FIN", segment(2000, &payload(1000, 2), ACK | FIN)),
            ("no payload", segment(2000, &[], ACK)),
            ("another acknowledgment", {
                let mut s = segment(2000, &payload(1000, 2), ACK);
                let at = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + 8;
                s[at..at + 4].copy_from_slice(&78u32.to_be_bytes());
                let (ip, tcp) = s[ETHERNET_HEADER_LEN..].split_at_mut(IPV4_HEADER_LEN);
                let _ = ip;
                TcpPacket::new_unchecked(tcp).fill_checksum(SRC, DST);
                s
            }),
            ("a damaged checksum", {
                let mut s = segment(2000, &payload(1000, 2), ACK);
                let last = s.len() - 1;
                s[last] ^= 0xff;
                s
            }),
            ("another TTL", {
                let mut s = segment(2000, &payload(1000, 2), ACK);
                s[ETHERNET_HEADER_LEN + 8] = 62;
                Ipv4Packet::new_unchecked(&mut s[ETHERNET_HEADER_LEN..]).fill_checksum();
                s
            }),
        ];
        for (what, seg) in cases {
            let mut c = Coalescer::new();
            assert!(c.offer(1, &first));
            assert!(!c.offer(1, &seg), "{what} joined");
            let joined = c.take().unwrap();
            assert_eq!(joined.segments, 1, "{what}");
            assert_eq!(
                joined.frame,
                &first[..],
                "{what}: the lone segment leaves as it came"
            );
            assert_eq!(joined.offload, Offload::NONE);
        }
        // Another egress, and a run that a PSH or a short segment closed.
        let mut c = Coalescer::new();
        assert!(c.offer(1, &first));
        assert!(!c.offer(2, &segment(2000, &payload(1000, 2), ACK)));
        assert!(c.offer(1, &segment(2000, &payload(600, 2), ACK)));
        assert!(
            !c.offer(1, &segment(2600, &payload(600, 3), ACK)),
            "closed by the short one"
        );
        assert_eq!(c.take().unwrap().segments, 2);
    }

    #[test]
    fn frames_that_are_not_plain_tcp_segments_never_open_a_run_and_never_panic() {
        let seg = segment(1, &payload(100, 0), ACK);
        let mut c = Coalescer::new();
        for n in 0..seg.len() {
            assert!(!c.offer(0, &seg[..n]), "{n} bytes");
        }
        assert!(c.open_for().is_none());
        let mut rng = crate::wire::test_rng::Rng::new(7);
        for _ in 0..2000 {
            let mut junk = seg.clone();
            let at = rng.below(junk.len());
            junk[at] = rng.next_u64() as u8;
            let _ = c.offer(0, &junk);
            let _ = c.take();
        }
    }

    #[test]
    fn a_run_stops_at_64_kib() {
        let mut c = Coalescer::new();
        let mut seq = 0u32;
        let mut joined = 0;
        while c.offer(0, &segment(seq, &payload(1448, 0), ACK)) {
            seq = seq.wrapping_add(1448);
            joined += 1;
        }
        let frame_len = c.take().unwrap().frame.len();
        assert!(frame_len <= MAX_FRAME);
        assert_eq!(joined, (65_535 - 20 - 32) / 1448);
    }
}
