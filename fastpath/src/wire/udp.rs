//! UDP datagrams (RFC 768).
//!
//! ```text
//!  0      7 8     15 16    23 24    31
//! +--------+--------+--------+--------+
//! |   Source Port   |  Destination    |
//! |                 |      Port       |
//! +--------+--------+--------+--------+
//! |     Length      |    Checksum     |
//! +--------+--------+--------+--------+
//! |          data octets ...
//! ```
//! Hand the view the IPv4 payload; the payload is bounded by the Length field.

use std::net::Ipv4Addr;

use super::ipv4::protocol;
use super::{be, check_len, checksum, WireError};

mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

pub const HEADER_LEN: usize = 8;

/// A read/write view of a UDP datagram.
#[derive(Clone, Copy, Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks; accessors panic if the header or Length extends past it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking the header fits and 8 <= Length <= buffer length.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let b = buffer.as_ref();
        check_len("udp", "header", b.len(), HEADER_LEN)?;
        let len = usize::from(be::read_u16(b, field::LENGTH));
        if len < HEADER_LEN || len > b.len() {
            return Err(WireError::BadLength {
                header: "udp",
                field: "length",
                value: len,
                min: HEADER_LEN,
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
    pub fn src_port(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Header plus data, in bytes.
    #[inline]
    pub fn len(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::LENGTH)
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// True when the checksum over the pseudo header and datagram verifies, or when the
    /// sender did not compute one (checksum 0, RFC 768).
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let len = self.len();
        let sum = checksum::pseudo_header(src, dst, protocol::UDP, u32::from(len));
        checksum::fold(checksum::accumulate(
            sum,
            &self.buffer.as_ref()[..usize::from(len)],
        )) == 0xffff
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
    pub fn set_len(&mut self, v: u16) {
        be::write_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        be::write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// Computes the checksum over the IPv4 pseudo header and the datagram and stores it; a
    /// computed 0 is sent as 0xffff, since 0 means "no checksum" (RFC 768).
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let len = self.len();
        let sum = checksum::pseudo_header(src, dst, protocol::UDP, u32::from(len));
        let c = !checksum::fold(checksum::accumulate(
            sum,
            &self.buffer.as_ref()[..usize::from(len)],
        ));
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

/// A UDP header as plain values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
}

impl UdpRepr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> UdpRepr {
        UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        }
    }

    /// Writes the header and `payload` at the start of `buf` with a checksum for `src` ->
    /// `dst`; returns the datagram length.
    pub fn emit(
        &self,
        payload: &[u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        buf: &mut [u8],
    ) -> Result<usize, WireError> {
        let len = HEADER_LEN + payload.len();
        if len > usize::from(u16::MAX) {
            return Err(WireError::BadLength {
                header: "udp",
                field: "length",
                value: len,
                min: HEADER_LEN,
                max: usize::from(u16::MAX),
            });
        }
        check_len("udp", "datagram", buf.len(), len)?;
        let mut p = Packet::new_unchecked(&mut buf[..len]);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_len(len as u16);
        p.payload_mut().copy_from_slice(payload);
        p.fill_checksum(src, dst);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_rng::hostile_inputs;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 31);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 30);

    /// 20 -> 10 carrying "Hi" from 192.168.0.31 to 192.168.0.30. Checksum worked by hand:
    /// pseudo header 0x181a8 + datagram 0x4891 = 0x1ca39, folded 0xca3a, complement 0x35c5.
    fn known() -> [u8; 10] {
        [0x00, 0x14, 0x00, 0x0a, 0x00, 0x0a, 0x35, 0xc5, b'H', b'i']
    }

    #[test]
    fn reads_fields_and_verifies_a_known_checksum() {
        let d = known();
        let p = Packet::new_checked(&d[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.len(), p.checksum()),
            (20, 10, 10, 0x35c5)
        );
        assert_eq!(p.payload(), b"Hi");
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(192, 168, 0, 29)));
    }

    #[test]
    fn emit_reproduces_the_known_datagram() {
        let mut buf = [0u8; 16];
        let n = UdpRepr {
            src_port: 20,
            dst_port: 10,
        }
        .emit(b"Hi", SRC, DST, &mut buf)
        .unwrap();
        assert_eq!(&buf[..n], &known()[..]);
        assert_eq!(
            UdpRepr::parse(&Packet::new_checked(&buf[..n]).unwrap()),
            UdpRepr {
                src_port: 20,
                dst_port: 10
            }
        );
    }

    #[test]
    fn zero_checksum_means_none_and_computed_zero_is_sent_as_ffff() {
        let mut d = known();
        d[6] = 0;
        d[7] = 0;
        assert!(Packet::new_checked(&d[..])
            .unwrap()
            .verify_checksum(SRC, DST));
        // Find a payload whose checksum computes to zero, then check it goes out as 0xffff.
        let mut buf = [0u8; 10];
        let found = (0..=u16::MAX).find(|&v| {
            let mut p = Packet::new_unchecked(&mut buf[..]);
            p.set_src_port(1);
            p.set_dst_port(2);
            p.set_len(10);
            p.payload_mut().copy_from_slice(&v.to_be_bytes());
            p.set_checksum(0);
            let sum = checksum::pseudo_header(SRC, DST, protocol::UDP, 10);
            !checksum::fold(checksum::accumulate(sum, &buf)) == 0
        });
        let v = found.expect("some 16-bit payload makes the sum 0xffff");
        let n = UdpRepr {
            src_port: 1,
            dst_port: 2,
        }
        .emit(&v.to_be_bytes(), SRC, DST, &mut buf)
        .unwrap();
        let p = Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.checksum(), 0xffff);
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn truncations_and_bad_lengths_are_errors() {
        let d = known();
        for n in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&d[..n]).unwrap_err(),
                WireError::Truncated {
                    header: "udp",
                    field: "header",
                    len: n,
                    need: 8
                }
            );
        }
        assert_eq!(
            Packet::new_checked(&d[..9]).unwrap_err(),
            WireError::BadLength {
                header: "udp",
                field: "length",
                value: 10,
                min: 8,
                max: 9
            }
        );
        let mut short = d;
        short[5] = 7;
        assert_eq!(
            Packet::new_checked(&short[..]).unwrap_err(),
            WireError::BadLength {
                header: "udp",
                field: "length",
                value: 7,
                min: 8,
                max: 10
            }
        );
        assert!(UdpRepr {
            src_port: 1,
            dst_port: 2
        }
        .emit(b"abc", SRC, DST, &mut [0u8; 10])
        .is_err());
    }

    #[test]
    fn payload_is_bounded_by_length_field() {
        let mut d = known().to_vec();
        d.extend([0u8; 6]);
        assert_eq!(Packet::new_checked(&d[..]).unwrap().payload(), b"Hi");
    }

    #[test]
    fn never_panics_on_hostile_input() {
        for input in hostile_inputs(&known(), 2000, 5) {
            if let Ok(p) = Packet::new_checked(&input[..]) {
                let _ = (
                    p.src_port(),
                    p.dst_port(),
                    p.len(),
                    p.checksum(),
                    p.payload().len(),
                    p.verify_checksum(SRC, DST),
                );
                let mut owned = input.clone();
                Packet::new_checked(&mut owned[..])
                    .unwrap()
                    .fill_checksum(SRC, DST);
            }
        }
    }
}
