//! ICMP for IPv4 (RFC 792): echo, and the two errors a router sends.
//!
//! ```text
//!  0                   1                   2                   3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Rest of header                            |
//! |  echo: Identifier | Sequence;  unreachable code 4: 0 | MTU    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Data (echo payload, or the original IP header + data)     |
//! ```
//! The view covers exactly the ICMP message: hand it the IPv4 payload, not the whole buffer,
//! because the checksum covers the message and nothing after it.

use std::net::Ipv4Addr;

use super::ipv4::{self, Ipv4Repr};
use super::{be, check_len, checksum, WireError};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const REST: usize = 4;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
    pub const NEXT_HOP_MTU: usize = 6;
}

pub const HEADER_LEN: usize = 8;

/// ICMP message types (RFC 792).
pub mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DST_UNREACHABLE: u8 = 3;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAMETER_PROBLEM: u8 = 12;
}

/// Destination unreachable codes (RFC 792, RFC 1812 section 5.2.7.1).
pub mod unreachable {
    pub const NET: u8 = 0;
    pub const HOST: u8 = 1;
    pub const PROTOCOL: u8 = 2;
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set; carries the next-hop MTU (RFC 1191 section 4).
    pub const FRAG_NEEDED: u8 = 4;
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Time exceeded codes (RFC 792).
pub mod time_exceeded {
    pub const TTL_IN_TRANSIT: u8 = 0;
    pub const REASSEMBLY: u8 = 1;
}

/// Largest datagram an ICMP error may make (RFC 1812 section 4.3.2.3: "as much of the
/// original datagram as possible without the length of the ICMP datagram exceeding 576 bytes").
pub const MAX_ERROR_DATAGRAM: usize = 576;

/// How much of the offending datagram fits in an error sent with a 20-byte IPv4 header.
pub const MAX_ERROR_QUOTE: usize = MAX_ERROR_DATAGRAM - ipv4::HEADER_LEN - HEADER_LEN;

/// A read/write view of one ICMP message.
#[derive(Clone, Copy, Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks; accessors panic if it is shorter than [`HEADER_LEN`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking it holds the 8-byte header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        check_len("icmpv4", "header", buffer.as_ref().len(), HEADER_LEN)?;
        Ok(Packet { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    #[inline]
    pub fn checksum(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The type-specific second word.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        be::read_u32(self.buffer.as_ref(), field::REST)
    }

    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::ECHO_SEQ)
    }

    /// Next-hop MTU of a "fragmentation needed" message (RFC 1191 section 4).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU)
    }

    /// Everything after the 8-byte header.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// True for error messages, to which no ICMP error may be sent (RFC 1812 section 4.3.2.7).
    #[inline]
    pub fn is_error(&self) -> bool {
        matches!(
            self.msg_type(),
            msg_type::DST_UNREACHABLE
                | msg_type::REDIRECT
                | msg_type::TIME_EXCEEDED
                | msg_type::PARAMETER_PROBLEM
        )
    }

    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    #[inline]
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    #[inline]
    pub fn set_checksum(&mut self, v: u16) {
        be::write_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    #[inline]
    pub fn set_rest_of_header(&mut self, v: u32) {
        be::write_u32(self.buffer.as_mut(), field::REST, v);
    }

    #[inline]
    pub fn set_echo_ident(&mut self, v: u16) {
        be::write_u16(self.buffer.as_mut(), field::ECHO_IDENT, v);
    }

    #[inline]
    pub fn set_echo_seq_no(&mut self, v: u16) {
        be::write_u16(self.buffer.as_mut(), field::ECHO_SEQ, v);
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes the checksum over the whole message and stores it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// An ICMP message as plain values; `data` borrows the echo payload or the quoted datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    /// Type 3. `next_hop_mtu` is sent only with code 4 (RFC 1191); `original` is the offending
    /// datagram from its IP header on, cut to [`MAX_ERROR_QUOTE`] when emitted.
    DstUnreachable {
        code: u8,
        next_hop_mtu: u16,
        original: &'a [u8],
    },
    /// Type 11, code 0 (TTL) or 1 (reassembly); `original` as for `DstUnreachable`.
    TimeExceeded { code: u8, original: &'a [u8] },
}

impl<'a> Icmpv4Repr<'a> {
    /// Reads a message whose checksum verifies. Error messages must quote at least an IPv4
    /// header (RFC 792); other types are refused.
    pub fn parse(packet: &Packet<&'a [u8]>) -> Result<Icmpv4Repr<'a>, WireError> {
        if !packet.verify_checksum() {
            return Err(WireError::BadValue {
                header: "icmpv4",
                field: "checksum",
                value: packet.checksum().into(),
            });
        }
        let data: &'a [u8] = packet.buffer.get(HEADER_LEN..).unwrap_or_default();
        let (ident, seq_no) = (packet.echo_ident(), packet.echo_seq_no());
        match packet.msg_type() {
            msg_type::ECHO_REQUEST => Ok(Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }),
            msg_type::ECHO_REPLY => Ok(Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            }),
            msg_type::DST_UNREACHABLE => {
                check_len("icmpv4", "original_datagram", data.len(), ipv4::HEADER_LEN)?;
                let next_hop_mtu = if packet.msg_code() == unreachable::FRAG_NEEDED {
                    packet.next_hop_mtu()
                } else {
                    0
                };
                Ok(Icmpv4Repr::DstUnreachable {
                    code: packet.msg_code(),
                    next_hop_mtu,
                    original: data,
                })
            }
            msg_type::TIME_EXCEEDED => {
                check_len("icmpv4", "original_datagram", data.len(), ipv4::HEADER_LEN)?;
                Ok(Icmpv4Repr::TimeExceeded {
                    code: packet.msg_code(),
                    original: data,
                })
            }
            other => Err(WireError::BadValue {
                header: "icmpv4",
                field: "type",
                value: other.into(),
            }),
        }
    }

    /// The data this message carries once emitted (quotes cut to [`MAX_ERROR_QUOTE`]).
    fn data(&self) -> &'a [u8] {
        match *self {
            Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => data,
            Icmpv4Repr::DstUnreachable { original, .. }
            | Icmpv4Repr::TimeExceeded { original, .. } => {
                &original[..original.len().min(MAX_ERROR_QUOTE)]
            }
        }
    }

    /// Length of the emitted message.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + self.data().len()
    }

    /// Writes the message with its checksum at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.buffer_len();
        check_len("icmpv4", "message", buf.len(), len)?;
        let mut p = Packet::new_unchecked(&mut buf[..len]);
        let (ty, code, rest) = match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. } => {
                (msg_type::ECHO_REQUEST, 0, echo_word(ident, seq_no))
            }
            Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                (msg_type::ECHO_REPLY, 0, echo_word(ident, seq_no))
            }
            Icmpv4Repr::DstUnreachable {
                code, next_hop_mtu, ..
            } => {
                let rest = if code == unreachable::FRAG_NEEDED {
                    u32::from(next_hop_mtu)
                } else {
                    0
                };
                (msg_type::DST_UNREACHABLE, code, rest)
            }
            Icmpv4Repr::TimeExceeded { code, .. } => (msg_type::TIME_EXCEEDED, code, 0),
        };
        p.set_msg_type(ty);
        p.set_msg_code(code);
        p.set_rest_of_header(rest);
        p.data_mut().copy_from_slice(self.data());
        p.fill_checksum();
        Ok(len)
    }

    /// Writes an IPv4 header from `src` to `dst` followed by this message at the start of
    /// `buf`; returns the datagram's length. This is what the slow path sends for an error.
    pub fn emit_in_ipv4(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        buf: &mut [u8],
    ) -> Result<usize, WireError> {
        let icmp_len = self.buffer_len();
        let total = ipv4::HEADER_LEN + icmp_len;
        check_len("icmpv4", "datagram", buf.len(), total)?;
        let ip = Ipv4Repr::new(src, dst, ipv4::protocol::ICMP, icmp_len as u16);
        ip.emit(buf)?;
        self.emit(&mut buf[ipv4::HEADER_LEN..])?;
        Ok(total)
    }
}

fn echo_word(ident: u16, seq_no: u16) -> u32 {
    (u32::from(ident) << 16) | u32::from(seq_no)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_rng::hostile_inputs;

    /// An echo request shaped like `ping`'s: id 0x1234, seq 1, 8 data bytes.
    fn echo_request() -> Vec<u8> {
        let mut m = vec![0x08, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x01];
        m.extend(b"abcdefgh");
        let mut p = Packet::new_checked(&mut m[..]).unwrap();
        p.fill_checksum();
        m
    }

    fn offending_datagram(len: usize) -> Vec<u8> {
        let mut d = vec![0xa5u8; len];
        Ipv4Repr::new(
            Ipv4Addr::new(192, 168, 0, 2),
            Ipv4Addr::new(10, 1, 2, 3),
            ipv4::protocol::UDP,
            (len - 20) as u16,
        )
        .emit(&mut d)
        .unwrap();
        d
    }

    #[test]
    fn echo_request_fields_and_checksum() {
        let m = echo_request();
        let p = Packet::new_checked(&m[..]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code()), (msg_type::ECHO_REQUEST, 0));
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1234, 1));
        assert_eq!(p.rest_of_header(), 0x1234_0001);
        assert_eq!(p.data(), b"abcdefgh");
        assert!(p.verify_checksum());
        assert!(!p.is_error());
        // The header words plus "abcdefgh", summed by hand.
        assert_eq!(p.checksum(), 0x5435);
    }

    #[test]
    fn echo_reply_round_trips() {
        let repr = Icmpv4Repr::EchoReply {
            ident: 7,
            seq_no: 9,
            data: b"payload!",
        };
        let mut buf = [0u8; 64];
        let n = repr.emit(&mut buf).unwrap();
        assert_eq!(n, 16);
        let p = Packet::new_checked(&buf[..n]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Icmpv4Repr::parse(&p), Ok(repr));
    }

    #[test]
    fn echo_request_parses_from_bytes() {
        let m = echo_request();
        let p = Packet::new_checked(&m[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&p),
            Ok(Icmpv4Repr::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
                data: b"abcdefgh"
            })
        );
    }

    #[test]
    fn frag_needed_carries_next_hop_mtu() {
        let orig = offending_datagram(100);
        let repr = Icmpv4Repr::DstUnreachable {
            code: unreachable::FRAG_NEEDED,
            next_hop_mtu: 1480,
            original: &orig,
        };
        let mut buf = [0u8; 200];
        let n = repr.emit(&mut buf).unwrap();
        let p = Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!((p.msg_type(), p.msg_code(), p.next_hop_mtu()), (3, 4, 1480));
        assert_eq!(p.rest_of_header(), 1480);
        assert!(p.is_error());
        assert_eq!(p.data(), &orig[..]);
        assert_eq!(Icmpv4Repr::parse(&p), Ok(repr));
    }

    #[test]
    fn other_unreachable_codes_leave_rest_of_header_zero() {
        let orig = offending_datagram(40);
        let repr = Icmpv4Repr::DstUnreachable {
            code: unreachable::NET,
            next_hop_mtu: 1480,
            original: &orig,
        };
        let mut buf = [0u8; 100];
        let n = repr.emit(&mut buf).unwrap();
        assert_eq!(Packet::new_checked(&buf[..n]).unwrap().rest_of_header(), 0);
    }

    #[test]
    fn time_exceeded_quote_is_cut_to_576_byte_datagram() {
        let orig = offending_datagram(1500);
        let repr = Icmpv4Repr::TimeExceeded {
            code: time_exceeded::TTL_IN_TRANSIT,
            original: &orig,
        };
        let mut buf = [0u8; 1600];
        let n = repr
            .emit_in_ipv4(
                Ipv4Addr::new(192, 168, 0, 1),
                Ipv4Addr::new(192, 168, 0, 2),
                &mut buf,
            )
            .unwrap();
        assert_eq!(n, 576);
        let ip = ipv4::Packet::new_checked(&buf[..n]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.protocol(), ip.total_len()), (ipv4::protocol::ICMP, 576));
        let icmp = Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!((icmp.msg_type(), icmp.msg_code()), (11, 0));
        assert_eq!(icmp.data(), &orig[..MAX_ERROR_QUOTE]);
    }

    #[test]
    fn short_quote_is_sent_whole() {
        let orig = offending_datagram(60);
        let repr = Icmpv4Repr::TimeExceeded {
            code: 0,
            original: &orig,
        };
        assert_eq!(repr.buffer_len(), 68);
    }

    #[test]
    fn truncations_and_bad_messages_are_errors() {
        let m = echo_request();
        for n in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&m[..n]).unwrap_err(),
                WireError::Truncated {
                    header: "icmpv4",
                    field: "header",
                    len: n,
                    need: 8
                }
            );
        }
        let mut bad = m.clone();
        bad[9] ^= 0xff;
        assert!(matches!(
            Icmpv4Repr::parse(&Packet::new_checked(&bad[..]).unwrap()),
            Err(WireError::BadValue {
                field: "checksum",
                ..
            })
        ));
        // A time exceeded that quotes less than an IP header.
        let mut short = [0u8; 16];
        let mut p = Packet::new_unchecked(&mut short[..]);
        p.set_msg_type(msg_type::TIME_EXCEEDED);
        p.fill_checksum();
        assert!(matches!(
            Icmpv4Repr::parse(&Packet::new_checked(&short[..]).unwrap()),
            Err(WireError::Truncated { .. })
        ));
        let repr = Icmpv4Repr::EchoRequest {
            ident: 0,
            seq_no: 0,
            data: b"xyz",
        };
        assert!(repr.emit(&mut [0u8; 10]).is_err());
        assert!(repr
            .emit_in_ipv4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, &mut [0u8; 30])
            .is_err());
    }

    #[test]
    fn never_panics_on_hostile_input() {
        let orig = offending_datagram(64);
        let mut err = [0u8; 200];
        let n = Icmpv4Repr::TimeExceeded {
            code: 0,
            original: &orig,
        }
        .emit(&mut err)
        .unwrap();
        for valid in [&echo_request()[..], &err[..n]] {
            for input in hostile_inputs(valid, 2000, 4) {
                if let Ok(p) = Packet::new_checked(&input[..]) {
                    let _ = (
                        p.msg_type(),
                        p.msg_code(),
                        p.checksum(),
                        p.rest_of_header(),
                        p.echo_ident(),
                    );
                    let _ = (
                        p.echo_seq_no(),
                        p.next_hop_mtu(),
                        p.data().len(),
                        p.is_error(),
                        p.verify_checksum(),
                    );
                    let _ = Icmpv4Repr::parse(&p);
                }
            }
        }
    }
}
