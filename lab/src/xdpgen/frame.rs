//! Frames: one Ethernet/IPv4/UDP template per run, a stamp written per frame.

use std::net::Ipv4Addr;

use super::{
    invalid, XdpGenError, ETHERTYPE_IPV4, ETH_LEN, IPV4_LEN, MIN_FRAME, PROTO_UDP, STAMP_AT,
    STAMP_LEN, STAMP_MAGIC, UDP_CSUM_AT, UDP_LEN,
};
use crate::udp::MAX_FRAME;
/// Addresses and size of the generated frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    /// Ethernet frame size, FCS included (the RFC 2544 way, like `udp-send --size`); the
    /// frame in memory is 4 bytes shorter.
    pub frame_size: usize,
}

/// One frame, built once, and the UDP checksum sum of everything but the stamp, so that
/// stamping a copy costs a few additions instead of a pass over the payload.
#[derive(Clone, Debug)]
pub struct FrameTemplate {
    bytes: Vec<u8>,
    /// One's complement sum (unfolded, not inverted) of the pseudo header and the UDP
    /// datagram with the checksum field and the stamp's sequence and time zeroed.
    base_sum: u32,
}

impl FrameTemplate {
    pub fn new(spec: &FrameSpec) -> Result<FrameTemplate, XdpGenError> {
        if !(MIN_FRAME..=MAX_FRAME).contains(&spec.frame_size) {
            return Err(invalid(
                "size",
                spec.frame_size,
                format!(
                    "frame size must be between {MIN_FRAME} and {MAX_FRAME} bytes (FCS included)"
                ),
            ));
        }
        let len = spec.frame_size - 4;
        let udp_len = len - ETH_LEN - IPV4_LEN;
        let mut f = vec![0u8; len];
        // Ethernet II.
        f[0..6].copy_from_slice(&spec.dst_mac);
        f[6..12].copy_from_slice(&spec.src_mac);
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        // IPv4 (RFC 791 section 3.1): no options, DF, TTL 64; the ID is constant (DF set, so
        // RFC 6864 section 4.1 lets it be anything).
        let ip = &mut f[ETH_LEN..ETH_LEN + IPV4_LEN];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((IPV4_LEN + udp_len) as u16).to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = PROTO_UDP;
        ip[12..16].copy_from_slice(&spec.src_ip.octets());
        ip[16..20].copy_from_slice(&spec.dst_ip.octets());
        let ip_csum = !fold(sum_words(0, ip));
        ip[10..12].copy_from_slice(&ip_csum.to_be_bytes());
        // UDP (RFC 768); the payload after the stamp is a fixed pattern.
        let udp_at = ETH_LEN + IPV4_LEN;
        f[udp_at..udp_at + 2].copy_from_slice(&spec.src_port.to_be_bytes());
        f[udp_at + 2..udp_at + 4].copy_from_slice(&spec.dst_port.to_be_bytes());
        f[udp_at + 4..udp_at + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        f[STAMP_AT..STAMP_AT + 2].copy_from_slice(&STAMP_MAGIC);
        for b in &mut f[STAMP_AT + STAMP_LEN..] {
            *b = 0x5a;
        }
        // Pseudo header (RFC 768): source, destination, zero + protocol, UDP length.
        let mut sum = sum_words(0, &spec.src_ip.octets());
        sum = sum_words(sum, &spec.dst_ip.octets());
        sum = sum_words(sum, &[0, PROTO_UDP]);
        sum = sum_words(sum, &(udp_len as u16).to_be_bytes());
        sum = sum_words(sum, &f[udp_at..]);
        let mut template = FrameTemplate {
            bytes: f,
            base_sum: sum,
        };
        // The template itself carries a valid stamp (sequence 0, time 0).
        let mut bytes = std::mem::take(&mut template.bytes);
        template.stamp(&mut bytes, 0, 0);
        template.bytes = bytes;
        Ok(template)
    }

    /// The frame as it goes on the wire (without FCS).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Writes `seq` and `sent_ns` into a copy of the template and fixes its UDP checksum.
    /// Does nothing to a buffer shorter than the template.
    pub fn stamp(&self, frame: &mut [u8], seq: u64, sent_ns: u64) {
        let Some(stamp) = frame.get_mut(STAMP_AT + 2..STAMP_AT + STAMP_LEN) else {
            return;
        };
        stamp[..8].copy_from_slice(&seq.to_be_bytes());
        stamp[8..].copy_from_slice(&sent_ns.to_be_bytes());
        // The stamp starts at an even offset of the UDP datagram, so its words line up with
        // the checksum's 16-bit words (RFC 1071 section 2).
        let sum = sum_words(self.base_sum, stamp);
        let mut csum = !fold(sum);
        if csum == 0 {
            // RFC 768: a computed 0 is sent as all ones (0 means "no checksum").
            csum = 0xffff;
        }
        if let Some(field) = frame.get_mut(UDP_CSUM_AT..UDP_CSUM_AT + 2) {
            field.copy_from_slice(&csum.to_be_bytes());
        }
    }
}

/// Adds big-endian 16-bit words of `data` to `acc` (RFC 1071); an odd last byte is padded.
fn sum_words(mut acc: u32, data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc = fold_once(acc + u32::from(u16::from_be_bytes([w[0], w[1]])));
    }
    if let [last] = words.remainder() {
        acc = fold_once(acc + (u32::from(*last) << 8));
    }
    acc
}

/// Keeps the running sum within 17 bits so that it can never overflow.
fn fold_once(acc: u32) -> u32 {
    (acc & 0xffff) + (acc >> 16)
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// What a stamped frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub seq: u64,
    pub sent_ns: u64,
}

/// The stamp of an Ethernet/IPv4/UDP frame to `dst_port`; `None` for anything else (other
/// traffic, truncated frames, a payload without the magic). Never panics.
pub fn parse_stamp(frame: &[u8], dst_port: u16) -> Option<Stamp> {
    if frame.get(12..14)? != ETHERTYPE_IPV4.to_be_bytes() {
        return None;
    }
    let ip = frame.get(ETH_LEN..)?;
    let first = *ip.first()?;
    if first >> 4 != 4 || *ip.get(9)? != PROTO_UDP {
        return None;
    }
    // Fragments other than the first carry no UDP header.
    let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
    if frag & 0x1fff != 0 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < IPV4_LEN {
        return None;
    }
    let udp = ip.get(ihl..)?;
    if u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]) != dst_port {
        return None;
    }
    let stamp = udp.get(UDP_LEN..UDP_LEN + STAMP_LEN)?;
    if stamp[..2] != STAMP_MAGIC {
        return None;
    }
    let seq = u64::from_be_bytes(stamp[2..10].try_into().ok()?);
    let sent_ns = u64::from_be_bytes(stamp[10..18].try_into().ok()?);
    Some(Stamp { seq, sent_ns })
}

/// CLOCK_MONOTONIC in nanoseconds (shared by every namespace of the host).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdpgen::{arp_reply, SOURCE_PORT};
    use fastpath::wire::{ipv4, udp};

    fn spec(frame_size: usize) -> FrameSpec {
        FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [0xee; 6],
            src_ip: Ipv4Addr::new(192, 168, 0, 1),
            dst_ip: Ipv4Addr::new(192, 168, 0, 2),
            src_port: SOURCE_PORT,
            dst_port: 5201,
            frame_size,
        }
    }

    fn assert_valid(frame: &[u8], s: &FrameSpec) {
        let ip = ipv4::Packet::new_checked(&frame[ETH_LEN..]).unwrap();
        assert!(ip.verify_checksum(), "IPv4 checksum");
        assert_eq!(ip.src_addr(), s.src_ip);
        assert_eq!(ip.dst_addr(), s.dst_ip);
        assert_eq!(usize::from(ip.total_len()), frame.len() - ETH_LEN);
        let u = udp::Packet::new_checked(ip.payload()).unwrap();
        assert_ne!(u.checksum(), 0, "a checksum is computed, not left out");
        assert!(u.verify_checksum(s.src_ip, s.dst_ip), "UDP checksum");
        assert_eq!(u.dst_port(), s.dst_port);
        assert_eq!(usize::from(u.len()), frame.len() - ETH_LEN - IPV4_LEN);
    }

    #[test]
    fn frames_of_every_size_carry_valid_checksums_after_stamping() {
        for size in [64, 65, 128, 512, 1000, 1500, 1518] {
            let s = spec(size);
            let t = FrameTemplate::new(&s).unwrap();
            assert_eq!(t.bytes().len(), size - 4);
            assert_valid(t.bytes(), &s);
            let mut frame = t.bytes().to_vec();
            for (seq, ns) in [
                (1, 2),
                (u64::MAX, u64::MAX),
                (0x1234_5678_9abc, 987_654_321_000),
                (0, 0),
            ] {
                t.stamp(&mut frame, seq, ns);
                assert_valid(&frame, &s);
                assert_eq!(parse_stamp(&frame, 5201), Some(Stamp { seq, sent_ns: ns }));
            }
        }
    }

    #[test]
    fn sixty_four_byte_frames_hold_exactly_the_stamp() {
        let t = FrameTemplate::new(&spec(64)).unwrap();
        assert_eq!(t.bytes().len() - STAMP_AT, STAMP_LEN);
        assert!(FrameTemplate::new(&spec(63)).is_err());
        let err = FrameTemplate::new(&spec(1519)).unwrap_err().to_string();
        assert!(err.contains("size 1519"), "{err}");
    }

    #[test]
    fn truncated_and_garbage_frames_have_no_stamp() {
        let t = FrameTemplate::new(&spec(128)).unwrap();
        let mut frame = t.bytes().to_vec();
        t.stamp(&mut frame, 7, 9);
        for len in 0..STAMP_AT + STAMP_LEN {
            assert_eq!(parse_stamp(&frame[..len], 5201), None, "length {len}");
        }
        assert!(parse_stamp(&frame, 5201).is_some());
        assert_eq!(parse_stamp(&frame, 5202), None, "other port");
        let mut bad = frame.clone();
        bad[STAMP_AT] = b'X';
        assert_eq!(parse_stamp(&bad, 5201), None, "no magic");
        let mut bad = frame.clone();
        bad[ETH_LEN] = 0x41; // IHL 1
        assert_eq!(parse_stamp(&bad, 5201), None, "short IHL");
        let mut bad = frame.clone();
        bad[ETH_LEN] = 0x4f; // IHL 15: the "UDP header" lands in the payload pattern
        assert_eq!(parse_stamp(&bad, 5201), None, "long IHL");
        // Pseudo-random garbage never panics.
        let mut x: u32 = 0x1234_5678;
        for len in 0..200 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = parse_stamp(&buf, 5201);
            let _ = arp_reply(&buf, [1; 6], Ipv4Addr::new(1, 2, 3, 4));
        }
    }
}
