//! ARP for IPv4 over Ethernet (RFC 826), the only kind the vRouter speaks.
//!
//! ```text
//!  0        2        4    5    6        8                14          18                24          28
//! +--------+--------+----+----+--------+-----------------+-----------+-----------------+-----------+
//! | htype  | ptype  |hlen|plen|  oper  | sender hw addr  | sender ip | target hw addr  | target ip |
//! +--------+--------+----+----+--------+-----------------+-----------+-----------------+-----------+
//! ```
//! `new_checked` accepts only htype 1 (Ethernet), ptype 0x0800, hlen 6 and plen 4, so the
//! address fields are always at the offsets above.

use std::net::Ipv4Addr;

use super::ethernet::MacAddr;
use super::{be, check_len, WireError};

mod field {
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: usize = 8;
    pub const SPA: usize = 14;
    pub const THA: usize = 18;
    pub const TPA: usize = 24;
}

pub const PACKET_LEN: usize = 28;
pub const HTYPE_ETHERNET: u16 = 1;
pub const PTYPE_IPV4: u16 = 0x0800;

/// RFC 826 `ar$op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOperation {
    Request,
    Reply,
}

impl ArpOperation {
    pub const REQUEST: u16 = 1;
    pub const REPLY: u16 = 2;

    pub fn from_u16(v: u16) -> Option<ArpOperation> {
        match v {
            Self::REQUEST => Some(ArpOperation::Request),
            Self::REPLY => Some(ArpOperation::Reply),
            _ => None,
        }
    }

    pub fn to_u16(self) -> u16 {
        match self {
            ArpOperation::Request => Self::REQUEST,
            ArpOperation::Reply => Self::REPLY,
        }
    }
}

/// A read/write view of an Ethernet/IPv4 ARP packet.
#[derive(Clone, Copy, Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks; accessors panic if it is shorter than [`PACKET_LEN`].
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking its length and that it is Ethernet/IPv4 ARP.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let b = buffer.as_ref();
        check_len("arp", "packet", b.len(), PACKET_LEN)?;
        let bad = |field, value: u32| {
            Err(WireError::BadValue {
                header: "arp",
                field,
                value,
            })
        };
        let htype = be::read_u16(b, field::HTYPE);
        if htype != HTYPE_ETHERNET {
            return bad("hardware_type", htype.into());
        }
        let ptype = be::read_u16(b, field::PTYPE);
        if ptype != PTYPE_IPV4 {
            return bad("protocol_type", ptype.into());
        }
        if b[field::HLEN] != 6 {
            return bad("hardware_len", b[field::HLEN].into());
        }
        if b[field::PLEN] != 4 {
            return bad("protocol_len", b[field::PLEN].into());
        }
        Ok(Packet { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Raw `ar$op`; see [`ArpOperation`].
    #[inline]
    pub fn operation(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::OPER)
    }

    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::SHA)
    }

    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(be::read_u32(self.buffer.as_ref(), field::SPA))
    }

    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::THA)
    }

    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(be::read_u32(self.buffer.as_ref(), field::TPA))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the fixed Ethernet/IPv4 type and length fields.
    pub fn set_ethernet_ipv4_types(&mut self) {
        let b = self.buffer.as_mut();
        be::write_u16(b, field::HTYPE, HTYPE_ETHERNET);
        be::write_u16(b, field::PTYPE, PTYPE_IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }

    #[inline]
    pub fn set_operation(&mut self, op: u16) {
        be::write_u16(self.buffer.as_mut(), field::OPER, op);
    }

    #[inline]
    pub fn set_sender_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SHA..field::SHA + 6].copy_from_slice(&mac.0);
    }

    #[inline]
    pub fn set_sender_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA..field::SPA + 4].copy_from_slice(&ip.octets());
    }

    #[inline]
    pub fn set_target_mac(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::THA..field::THA + 6].copy_from_slice(&mac.0);
    }

    #[inline]
    pub fn set_target_ip(&mut self, ip: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA..field::TPA + 4].copy_from_slice(&ip.octets());
    }
}

#[inline]
fn mac_at(b: &[u8], at: usize) -> MacAddr {
    MacAddr([b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5]])
}

/// An Ethernet/IPv4 ARP packet as plain values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: ArpOperation,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Fails only for an operation other than request or reply.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<ArpRepr, WireError> {
        let op = packet.operation();
        let operation = ArpOperation::from_u16(op).ok_or(WireError::BadValue {
            header: "arp",
            field: "operation",
            value: op.into(),
        })?;
        Ok(ArpRepr {
            operation,
            sender_mac: packet.sender_mac(),
            sender_ip: packet.sender_ip(),
            target_mac: packet.target_mac(),
            target_ip: packet.target_ip(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        check_len("arp", "packet", buf.len(), PACKET_LEN)?;
        let mut p = Packet::new_unchecked(buf);
        p.set_ethernet_ipv4_types();
        p.set_operation(self.operation.to_u16());
        p.set_sender_mac(self.sender_mac);
        p.set_sender_ip(self.sender_ip);
        p.set_target_mac(self.target_mac);
        p.set_target_ip(self.target_ip);
        Ok(PACKET_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet;
    use crate::wire::test_rng::hostile_inputs;

    /// A real frame, captured on a veth: the Linux kernel in a namespace asking for
    /// 10.99.0.2 before its first ping.
    const CAPTURED_REQUEST_FRAME: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0e, 0x99, 0x00, 0xd8, 0x48, 0x5e, 0x08,
        0x06, // ethernet
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // htype ptype hlen plen oper
        0x0e, 0x99, 0x00, 0xd8, 0x48, 0x5e, 0x0a, 0x63, 0x00, 0x01, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x63, 0x00, 0x02, // target
    ];

    fn captured() -> &'static [u8] {
        &CAPTURED_REQUEST_FRAME[ethernet::HEADER_LEN..]
    }

    #[test]
    fn parses_a_captured_request() {
        let eth = ethernet::Packet::new_checked(&CAPTURED_REQUEST_FRAME[..]).unwrap();
        assert_eq!(eth.ethertype(), ethernet::ethertype::ARP);
        let repr = ArpRepr::parse(&Packet::new_checked(eth.payload()).unwrap()).unwrap();
        assert_eq!(
            repr,
            ArpRepr {
                operation: ArpOperation::Request,
                sender_mac: MacAddr([0x0e, 0x99, 0x00, 0xd8, 0x48, 0x5e]),
                sender_ip: Ipv4Addr::new(10, 99, 0, 1),
                target_mac: MacAddr([0; 6]),
                target_ip: Ipv4Addr::new(10, 99, 0, 2),
            }
        );
    }

    #[test]
    fn emit_reproduces_the_captured_bytes() {
        let repr = ArpRepr::parse(&Packet::new_checked(captured()).unwrap()).unwrap();
        let mut buf = [0u8; PACKET_LEN];
        assert_eq!(repr.emit(&mut buf), Ok(PACKET_LEN));
        assert_eq!(&buf[..], captured());
    }

    #[test]
    fn reply_round_trips() {
        let repr = ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: MacAddr::CALICO_HOST_SIDE,
            sender_ip: Ipv4Addr::new(169, 254, 1, 1),
            target_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            target_ip: Ipv4Addr::new(192, 168, 0, 5),
        };
        let mut buf = [0u8; 40];
        repr.emit(&mut buf).unwrap();
        assert_eq!(
            ArpRepr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        for n in 0..PACKET_LEN {
            assert_eq!(
                Packet::new_checked(&captured()[..n]).unwrap_err(),
                WireError::Truncated {
                    header: "arp",
                    field: "packet",
                    len: n,
                    need: PACKET_LEN
                }
            );
        }
        let repr = ArpRepr::parse(&Packet::new_checked(captured()).unwrap()).unwrap();
        assert!(repr.emit(&mut [0u8; PACKET_LEN - 1]).is_err());
    }

    #[test]
    fn rejects_other_hardware_and_protocol_types() {
        let cases: [(usize, u8, &str, u32); 4] = [
            (1, 6, "hardware_type", 6),
            (3, 0xdd, "protocol_type", 0x08dd),
            (4, 8, "hardware_len", 8),
            (5, 16, "protocol_len", 16),
        ];
        for (at, byte, field, value) in cases {
            let mut b = captured().to_vec();
            b[at] = byte;
            assert_eq!(
                Packet::new_checked(&b[..]).unwrap_err(),
                WireError::BadValue {
                    header: "arp",
                    field,
                    value
                }
            );
        }
    }

    #[test]
    fn unknown_operation_fails_to_parse() {
        let mut b = captured().to_vec();
        b[7] = 3; // RARP request
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            ArpRepr::parse(&p),
            Err(WireError::BadValue {
                header: "arp",
                field: "operation",
                value: 3
            })
        );
    }

    #[test]
    fn never_panics_on_hostile_input() {
        for input in hostile_inputs(captured(), 2000, 2) {
            if let Ok(p) = Packet::new_checked(&input[..]) {
                let _ = (
                    p.operation(),
                    p.sender_mac(),
                    p.sender_ip(),
                    p.target_mac(),
                    p.target_ip(),
                );
                let _ = ArpRepr::parse(&p);
            }
        }
    }
}
