//! TCP segment headers (RFC 9293 section 3.1): the parts the vRouter reads for policy and
//! rewrites for NAT.
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Sequence Number                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Acknowledgment Number                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Data |       |C|E|U|A|P|R|S|F|                               |
//! | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Checksum            |         Urgent Pointer        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options (Data Offset > 5)                  |
//! ```
//! TCP has no length field: the segment is the whole buffer, so hand the view exactly the
//! IPv4 payload.

use std::net::Ipv4Addr;

use super::ipv4::protocol;
use super::{be, check_len, checksum, WireError};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

pub const HEADER_LEN: usize = 20;

/// Bits of the flags byte.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// A read/write view of a TCP segment.
#[derive(Clone, Copy, Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks; accessors panic if the header extends past it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking the fixed header fits, Data Offset >= 5 and the header
    /// with options fits.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let b = buffer.as_ref();
        check_len("tcp", "header", b.len(), HEADER_LEN)?;
        let offset = b[field::OFFSET] >> 4;
        if offset < 5 {
            return Err(WireError::BadValue {
                header: "tcp",
                field: "data_offset",
                value: offset.into(),
            });
        }
        check_len("tcp", "options", b.len(), usize::from(offset) * 4)?;
        Ok(Packet { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    #[inline]
    pub fn seq_number(&self) -> u32 {
        be::read_u32(self.buffer.as_ref(), field::SEQ)
    }

    #[inline]
    pub fn ack_number(&self) -> u32 {
        be::read_u32(self.buffer.as_ref(), field::ACK)
    }

    /// Header length in bytes (Data Offset * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::OFFSET] >> 4) * 4
    }

    /// The flags byte; test with the [`flags`] constants.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    #[inline]
    pub fn window_len(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::WINDOW)
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn urgent_at(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::URGENT)
    }

    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// True when the checksum over the pseudo header and segment verifies.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        checksum::fold(self.sum(src, dst)) == 0xffff
    }

    fn sum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> u64 {
        let b = self.buffer.as_ref();
        checksum::accumulate(
            checksum::pseudo_header(src, dst, protocol::TCP, b.len() as u32),
            b,
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_src_port(&mut self, v: u16) {
        be::write_u16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    #[inline]
    pub fn set_dst_port(&mut self, v: u16) {
        be::write_u16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    #[inline]
    pub fn set_seq_number(&mut self, v: u32) {
        be::write_u32(self.buffer.as_mut(), field::SEQ, v);
    }

    #[inline]
    pub fn set_ack_number(&mut self, v: u32) {
        be::write_u32(self.buffer.as_mut(), field::ACK, v);
    }

    /// Sets Data Offset from a header length in bytes (a multiple of 4, 20..=60).
    #[inline]
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buffer.as_mut();
        b[field::OFFSET] = (((len / 4) as u8) << 4) | (b[field::OFFSET] & 0x0f);
    }

    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.buffer.as_mut()[field::FLAGS] = v;
    }

    #[inline]
    pub fn set_window_len(&mut self, v: u16) {
        be::write_u16(self.buffer.as_mut(), field::WINDOW, v);
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        be::write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn set_urgent_at(&mut self, v: u16) {
        be::write_u16(self.buffer.as_mut(), field::URGENT, v);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }

    /// Computes the checksum over the IPv4 pseudo header and the segment and stores it.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = !checksum::fold(self.sum(src, dst));
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_rng::hostile_inputs;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 80);

    /// A SYN from port 40000 to 80 with an MSS option (1460), window 64240, checksum filled.
    fn syn() -> Vec<u8> {
        let mut s = vec![
            0x9c, 0x40, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02,
            0xfa, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
        ];
        Packet::new_checked(&mut s[..])
            .unwrap()
            .fill_checksum(SRC, DST);
        s
    }

    #[test]
    fn reads_fields_of_a_syn() {
        let s = syn();
        let p = Packet::new_checked(&s[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (40000, 80));
        assert_eq!((p.seq_number(), p.ack_number()), (0x1234_5678, 0));
        assert_eq!(
            (p.header_len(), p.flags(), p.window_len(), p.urgent_at()),
            (24, flags::SYN, 64240, 0)
        );
        assert_eq!(p.options(), &[0x02, 0x04, 0x05, 0xb4]);
        assert!(p.payload().is_empty());
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn checksum_matches_a_hand_sum() {
        // Pseudo header c0a8+0002+c0a8+0150+0006+0018, then the segment's words.
        let words: [u32; 18] = [
            0xc0a8, 0x0002, 0xc0a8, 0x0150, 0x0006, 0x0018, 0x9c40, 0x0050, 0x1234, 0x5678, 0, 0,
            0x6002, 0xfaf0, 0, 0, 0x0204, 0x05b4,
        ];
        let mut sum: u32 = words.iter().sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(
            Packet::new_checked(&syn()[..]).unwrap().checksum(),
            !(sum as u16)
        );
    }

    #[test]
    fn setters_round_trip_and_nat_style_rewrite_keeps_checksum_valid() {
        let mut s = syn();
        s.extend(b"GET /");
        let mut p = Packet::new_checked(&mut s[..]).unwrap();
        p.set_src_port(1234);
        p.set_dst_port(8080);
        p.set_seq_number(1);
        p.set_ack_number(2);
        p.set_flags(flags::ACK | flags::PSH);
        p.set_window_len(500);
        p.set_urgent_at(0);
        p.payload_mut()[0] = b'P';
        p.fill_checksum(SRC, DST);
        let p = Packet::new_checked(&s[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number()),
            (1234, 8080, 1, 2)
        );
        assert_eq!(
            (p.flags(), p.window_len(), p.payload()),
            (flags::ACK | flags::PSH, 500, &b"PET /"[..])
        );
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn truncations_and_bad_data_offsets_are_errors() {
        let s = syn();
        for n in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&s[..n]).unwrap_err(),
                WireError::Truncated {
                    header: "tcp",
                    field: "header",
                    len: n,
                    need: 20
                }
            );
        }
        for n in HEADER_LEN..24 {
            assert_eq!(
                Packet::new_checked(&s[..n]).unwrap_err(),
                WireError::Truncated {
                    header: "tcp",
                    field: "options",
                    len: n,
                    need: 24
                }
            );
        }
        for offset in 0..5u8 {
            let mut b = s.clone();
            b[12] = offset << 4;
            assert_eq!(
                Packet::new_checked(&b[..]).unwrap_err(),
                WireError::BadValue {
                    header: "tcp",
                    field: "data_offset",
                    value: offset.into()
                }
            );
        }
        let mut b = s.clone();
        Packet::new_unchecked(&mut b[..]).set_header_len(60);
        assert!(Packet::new_checked(&b[..]).is_err());
    }

    #[test]
    fn never_panics_on_hostile_input() {
        for input in hostile_inputs(&syn(), 2000, 6) {
            if let Ok(p) = Packet::new_checked(&input[..]) {
                let _ = (
                    p.src_port(),
                    p.dst_port(),
                    p.seq_number(),
                    p.ack_number(),
                    p.header_len(),
                    p.flags(),
                );
                let _ = (
                    p.window_len(),
                    p.checksum(),
                    p.urgent_at(),
                    p.options().len(),
                    p.payload().len(),
                );
                let _ = p.verify_checksum(SRC, DST);
                let mut owned = input.clone();
                Packet::new_checked(&mut owned[..])
                    .unwrap()
                    .fill_checksum(SRC, DST);
            }
        }
    }
}
