//! IPv4 headers (RFC 791 section 3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |   DSCP    |ECN|          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |Flags|      Fragment Offset    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Source Address                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options (IHL > 5)                          |
//! ```
//! The buffer may be longer than the datagram (Ethernet pads short frames to 60 bytes), so the
//! payload is bounded by Total Length, not by the buffer.

use std::net::Ipv4Addr;

use super::{be, check_len, checksum, WireError};

mod field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// Byte offset of the TTL/protocol word, for incremental checksum updates.
pub const TTL_PROTOCOL_WORD: usize = field::TTL;

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// IANA protocol numbers the vRouter looks at.
pub mod protocol {
    pub const ICMP: u8 = 1;
    pub const IPIP: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 datagram.
#[derive(Clone, Copy, Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks; accessors panic if the header or the Total Length
    /// extends past it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking, in this order: the fixed header fits (`Truncated`),
    /// version is 4 and IHL >= 5 (`BadValue`), the header with options fits (`Truncated`),
    /// IHL*4 <= Total Length <= buffer length (`BadLength`). The checksum is not checked here
    /// (see [`Packet::verify_checksum`]).
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let b = buffer.as_ref();
        check_len("ipv4", "header", b.len(), HEADER_LEN)?;
        let version = b[field::VER_IHL] >> 4;
        if version != 4 {
            return Err(WireError::BadValue {
                header: "ipv4",
                field: "version",
                value: version.into(),
            });
        }
        let ihl = b[field::VER_IHL] & 0x0f;
        if ihl < 5 {
            return Err(WireError::BadValue {
                header: "ipv4",
                field: "ihl",
                value: ihl.into(),
            });
        }
        let header_len = usize::from(ihl) * 4;
        check_len("ipv4", "options", b.len(), header_len)?;
        let total_len = usize::from(be::read_u16(b, field::TOTAL_LEN));
        if total_len < header_len || total_len > b.len() {
            return Err(WireError::BadLength {
                header: "ipv4",
                field: "total_length",
                value: total_len,
                min: header_len,
                max: b.len(),
            });
        }
        Ok(Packet { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    #[inline]
    pub fn total_len(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::IDENT)
    }

    #[inline]
    pub fn dont_frag(&self) -> bool {
        be::read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FLAG_DF != 0
    }

    #[inline]
    pub fn more_frags(&self) -> bool {
        be::read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FLAG_MF != 0
    }

    /// Part of a fragmented datagram: more fragments follow, or the offset is not 0.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        be::read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// Fragment offset in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (be::read_u16(self.buffer.as_ref(), field::FLAGS_FRAG) & FRAG_OFFSET_MASK) << 3
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(be::read_u32(self.buffer.as_ref(), field::SRC))
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(be::read_u32(self.buffer.as_ref(), field::DST))
    }

    /// Option bytes (empty when IHL is 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The header including options.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The datagram: header and payload, without any link-layer padding after it.
    #[inline]
    pub fn datagram(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.total_len())]
    }

    /// Bytes after the header up to Total Length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }

    /// True when the header (with options) sums to 0xffff (RFC 791 section 3.1, RFC 1071).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.header()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4, 20..=60).
    #[inline]
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    #[inline]
    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = (dscp << 2) | (ecn & 0x03);
    }

    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        be::write_u16(self.buffer.as_mut(), field::TOTAL_LEN, len);
    }

    #[inline]
    pub fn set_ident(&mut self, ident: u16) {
        be::write_u16(self.buffer.as_mut(), field::IDENT, ident);
    }

    /// Sets DF, MF and the fragment offset in bytes (rounded down to 8).
    #[inline]
    pub fn set_flags_and_frag_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & FRAG_OFFSET_MASK;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        be::write_u16(self.buffer.as_mut(), field::FLAGS_FRAG, v);
    }

    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    #[inline]
    pub fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    #[inline]
    pub fn set_checksum(&mut self, csum: u16) {
        be::write_u16(self.buffer.as_mut(), field::CHECKSUM, csum);
    }

    #[inline]
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 4].copy_from_slice(&addr.octets());
    }

    #[inline]
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 4].copy_from_slice(&addr.octets());
    }

    /// Computes the header checksum over the header including options and stores it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let csum = checksum::checksum(self.header());
        self.set_checksum(csum);
    }

    /// Lowers TTL by one and patches the checksum incrementally (RFC 1624 equation 3;
    /// RFC 1812 section 5.3.1). The caller checks TTL > 1 first: a TTL of 0 wraps to 255.
    /// Always inlined: every forwarded frame pays for it, and a call costs a third of it.
    #[inline(always)]
    pub fn decrement_ttl(&mut self) {
        let b = self.buffer.as_mut();
        let old = be::read_u16(b, TTL_PROTOCOL_WORD);
        let new = old.wrapping_sub(0x0100);
        be::write_u16(b, TTL_PROTOCOL_WORD, new);
        let csum = checksum::update_u16(be::read_u16(b, field::CHECKSUM), old, new);
        be::write_u16(b, field::CHECKSUM, csum);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// An IPv4 header without options, as plain values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    /// Length of what follows the header.
    pub payload_len: u16,
    pub ttl: u8,
    pub dscp: u8,
    pub ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// A header with the defaults the node uses for packets it originates: TTL 64, DF set
    /// (so path MTU discovery works), DSCP 0, ident 0 (allowed with DF, RFC 6864 section 4.1).
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload_len: u16) -> Ipv4Repr {
        Ipv4Repr {
            src,
            dst,
            protocol,
            payload_len,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: true,
        }
    }

    /// Reads a checked packet; options are skipped, fragments and bad checksums refused.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Ipv4Repr, WireError> {
        if !packet.verify_checksum() {
            return Err(WireError::BadValue {
                header: "ipv4",
                field: "checksum",
                value: packet.checksum().into(),
            });
        }
        if packet.more_frags() || packet.frag_offset() != 0 {
            return Err(WireError::BadValue {
                header: "ipv4",
                field: "fragment_offset",
                value: packet.frag_offset().into(),
            });
        }
        Ok(Ipv4Repr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: packet.total_len() - packet.header_len() as u16,
            ttl: packet.ttl(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        })
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header with a valid checksum at the start of `buf`; returns 20. The
    /// payload is not touched. Fails if `buf` is shorter than the header or the total length
    /// does not fit in 16 bits.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        check_len("ipv4", "header", buf.len(), HEADER_LEN)?;
        let total = usize::from(self.payload_len) + HEADER_LEN;
        if total > usize::from(u16::MAX) {
            return Err(WireError::BadLength {
                header: "ipv4",
                field: "total_length",
                value: total,
                min: HEADER_LEN,
                max: usize::from(u16::MAX),
            });
        }
        let mut p = Packet::new_unchecked(buf);
        p.set_version_and_header_len(HEADER_LEN);
        p.set_dscp_ecn(self.dscp, self.ecn);
        p.set_total_len(total as u16);
        p.set_ident(self.ident);
        p.set_flags_and_frag_offset(self.dont_frag, false, 0);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        p.fill_checksum();
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_rng::hostile_inputs;

    /// A real header (UDP 192.168.0.1 -> 192.168.0.199, total length 115, DF) with its
    /// checksum 0xb861, followed by 95 payload bytes.
    fn known_datagram() -> Vec<u8> {
        let mut d = vec![
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        d.extend((0..95).map(|i| i as u8));
        d
    }

    #[test]
    fn reads_a_known_header() {
        let d = known_datagram();
        let p = Packet::new_checked(&d[..]).unwrap();
        assert_eq!((p.version(), p.header_len(), p.total_len()), (4, 20, 115));
        assert_eq!((p.dscp(), p.ecn(), p.ident()), (0, 0, 0));
        assert!(p.dont_frag() && !p.more_frags());
        assert_eq!(
            (p.frag_offset(), p.ttl(), p.protocol()),
            (0, 64, protocol::UDP)
        );
        assert_eq!(p.checksum(), 0xb861);
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
        assert!(p.options().is_empty());
        assert_eq!(p.payload().len(), 95);
    }

    #[test]
    fn repr_emits_the_known_header() {
        let d = known_datagram();
        let repr = Ipv4Repr::parse(&Packet::new_checked(&d[..]).unwrap()).unwrap();
        assert_eq!(
            repr,
            Ipv4Repr::new(
                Ipv4Addr::new(192, 168, 0, 1),
                Ipv4Addr::new(192, 168, 0, 199),
                protocol::UDP,
                95
            )
        );
        let mut buf = [0u8; 20];
        assert_eq!(repr.emit(&mut buf), Ok(20));
        assert_eq!(&buf[..], &d[..20]);
    }

    #[test]
    fn payload_is_bounded_by_total_length_not_buffer() {
        let mut d = known_datagram();
        d.extend([0u8; 10]); // link-layer padding
        let p = Packet::new_checked(&d[..]).unwrap();
        assert_eq!(p.payload().len(), 95);
        assert_eq!(p.datagram().len(), 115);
    }

    #[test]
    fn options_are_covered_by_header_and_checksum() {
        let mut d = vec![0u8; 28];
        Ipv4Repr::new(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            protocol::TCP,
            8,
        )
        .emit(&mut d)
        .unwrap();
        let mut p = Packet::new_unchecked(&mut d[..]);
        p.set_version_and_header_len(24);
        p.set_total_len(28);
        p.fill_checksum();
        let p = Packet::new_checked(&d[..]).unwrap();
        assert_eq!(
            (p.header_len(), p.options().len(), p.payload().len()),
            (24, 4, 4)
        );
        assert!(p.verify_checksum());
    }

    #[test]
    fn fragment_fields_round_trip() {
        let mut d = known_datagram();
        let mut p = Packet::new_checked(&mut d[..]).unwrap();
        p.set_flags_and_frag_offset(false, true, 1480);
        assert!(!p.dont_frag() && p.more_frags());
        assert_eq!(p.frag_offset(), 1480);
        p.fill_checksum();
        assert!(
            Ipv4Repr::parse(&p).is_err(),
            "fragments are not parsed into a Repr"
        );
    }

    #[test]
    fn decrement_ttl_keeps_checksum_valid() {
        let mut d = known_datagram();
        for ttl in (2..=255u8).rev() {
            let mut p = Packet::new_checked(&mut d[..]).unwrap();
            p.set_ttl(ttl);
            p.fill_checksum();
            p.decrement_ttl();
            assert_eq!(p.ttl(), ttl - 1);
            assert!(p.verify_checksum(), "ttl {ttl}");
        }
    }

    #[test]
    fn bad_checksum_is_detected() {
        let mut d = known_datagram();
        d[11] ^= 1;
        let p = Packet::new_checked(&d[..]).unwrap();
        assert!(!p.verify_checksum());
        assert_eq!(
            Ipv4Repr::parse(&p),
            Err(WireError::BadValue {
                header: "ipv4",
                field: "checksum",
                value: 0xb860
            })
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let d = known_datagram();
        for n in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&d[..n]).unwrap_err(),
                WireError::Truncated {
                    header: "ipv4",
                    field: "header",
                    len: n,
                    need: 20
                }
            );
        }
        for n in HEADER_LEN..d.len() {
            assert_eq!(
                Packet::new_checked(&d[..n]).unwrap_err(),
                WireError::BadLength {
                    header: "ipv4",
                    field: "total_length",
                    value: 115,
                    min: 20,
                    max: n
                }
            );
        }
        assert!(Packet::new_checked(&d[..]).is_ok());
    }

    #[test]
    fn bad_version_ihl_and_lengths_are_errors() {
        let mut d = known_datagram();
        d[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&d[..]).unwrap_err(),
            WireError::BadValue {
                header: "ipv4",
                field: "version",
                value: 6
            }
        );
        for ihl in 0..5 {
            d[0] = 0x40 | ihl;
            assert_eq!(
                Packet::new_checked(&d[..]).unwrap_err(),
                WireError::BadValue {
                    header: "ipv4",
                    field: "ihl",
                    value: ihl.into()
                }
            );
        }
        d[0] = 0x4f; // 60-byte header in a 30-byte buffer
        assert_eq!(
            Packet::new_checked(&d[..30]).unwrap_err(),
            WireError::Truncated {
                header: "ipv4",
                field: "options",
                len: 30,
                need: 60
            }
        );
        d[0] = 0x45;
        d[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&d[..]).unwrap_err(),
            WireError::BadLength {
                header: "ipv4",
                field: "total_length",
                value: 19,
                min: 20,
                max: 115
            }
        );
        assert!(
            Ipv4Repr::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, 0, 0)
                .emit(&mut [0u8; 19])
                .is_err()
        );
        assert!(
            Ipv4Repr::new(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, 0, u16::MAX)
                .emit(&mut [0u8; 20])
                .is_err()
        );
    }

    #[test]
    fn never_panics_on_hostile_input() {
        for input in hostile_inputs(&known_datagram(), 3000, 3) {
            if let Ok(p) = Packet::new_checked(&input[..]) {
                let _ = (
                    p.version(),
                    p.header_len(),
                    p.dscp(),
                    p.ecn(),
                    p.total_len(),
                    p.ident(),
                );
                let _ = (
                    p.dont_frag(),
                    p.more_frags(),
                    p.frag_offset(),
                    p.ttl(),
                    p.protocol(),
                    p.checksum(),
                );
                let _ = (
                    p.src_addr(),
                    p.dst_addr(),
                    p.options().len(),
                    p.payload().len(),
                    p.verify_checksum(),
                );
                let _ = Ipv4Repr::parse(&p);
                let mut owned = input.clone();
                let mut m = Packet::new_checked(&mut owned[..]).unwrap();
                m.decrement_ttl();
                m.fill_checksum();
                let _ = m.payload_mut().len();
            }
        }
    }
}
