//! Ethernet II frames (IEEE 802.3 section 3.1.1 with an EtherType instead of a length).
//!
//! ```text
//!  0                   6                  12         14
//! +-------------------+-------------------+----------+----------------
//! | destination MAC   | source MAC        | EtherType| payload ...
//! +-------------------+-------------------+----------+----------------
//! ```
//! The FCS is stripped by the NIC and never appears in our buffers.

use super::{be, check_len, WireError};

/// EtherType values the vRouter knows (IEEE registry).
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const IPV6: u16 = 0x86dd;
}

mod field {
    pub const DST: usize = 0;
    pub const SRC: usize = 6;
    pub const ETHERTYPE: usize = 12;
}

pub const HEADER_LEN: usize = 14;

/// A 48-bit Ethernet address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The MAC Calico gives every host-side workload veth.
    pub const CALICO_HOST_SIDE: MacAddr = MacAddr([0xee; 6]);
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    #[inline]
    pub fn to_u64(self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    #[inline]
    pub fn from_u64(v: u64) -> MacAddr {
        let b = v.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }
}

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl std::fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in out.iter_mut() {
            let part = parts
                .next()
                .ok_or_else(|| format!("MAC address {s:?} has fewer than 6 octets"))?;
            *byte = u8::from_str_radix(part, 16)
                .map_err(|_| format!("MAC address {s:?} has a bad octet {part:?}"))?;
        }
        if parts.next().is_some() {
            return Err(format!("MAC address {s:?} has more than 6 octets"));
        }
        Ok(MacAddr(out))
    }
}

/// A read/write view of an Ethernet II frame.
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

    /// Wraps `buffer` after checking it holds a whole header.
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        check_len("ethernet", "header", buffer.as_ref().len(), HEADER_LEN)?;
        Ok(Packet { buffer })
    }

    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::DST)
    }

    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        mac_at(self.buffer.as_ref(), field::SRC)
    }

    #[inline]
    pub fn ethertype(&self) -> u16 {
        be::read_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Everything after the header (may be empty).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<'a> Packet<&'a [u8]> {
    /// The payload, borrowed for as long as the buffer rather than the view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    #[inline]
    pub fn set_dst_addr(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST..field::DST + 6].copy_from_slice(&mac.0);
    }

    #[inline]
    pub fn set_src_addr(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 6].copy_from_slice(&mac.0);
    }

    #[inline]
    pub fn set_ethertype(&mut self, value: u16) {
        be::write_u16(self.buffer.as_mut(), field::ETHERTYPE, value);
    }

    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

#[inline]
fn mac_at(b: &[u8], at: usize) -> MacAddr {
    MacAddr([b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5]])
}

/// An Ethernet header as plain values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetRepr {
    pub src: MacAddr,
    pub dst: MacAddr,
    pub ethertype: u16,
}

impl EthernetRepr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> EthernetRepr {
        EthernetRepr {
            src: packet.src_addr(),
            dst: packet.dst_addr(),
            ethertype: packet.ethertype(),
        }
    }

    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header at the start of `buf`; returns the header length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let mut packet = Packet::new_checked(buf)?;
        packet.set_dst_addr(self.dst);
        packet.set_src_addr(self.src);
        packet.set_ethertype(self.ethertype);
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::test_rng::hostile_inputs;

    const FRAME: [u8; 18] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x02, 0x42, 0xac, 0x11, 0x00, 0x02, // src
        0x08, 0x06, // ARP
        0xde, 0xad, 0xbe, 0xef,
    ];

    #[test]
    fn reads_fields_of_a_frame() {
        let p = Packet::new_checked(&FRAME[..]).unwrap();
        assert_eq!(p.dst_addr(), MacAddr::BROADCAST);
        assert_eq!(p.src_addr(), MacAddr([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]));
        assert_eq!(p.ethertype(), ethertype::ARP);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(p.into_payload(), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn repr_round_trips() {
        let repr = EthernetRepr {
            src: MacAddr([1, 2, 3, 4, 5, 6]),
            dst: MacAddr::CALICO_HOST_SIDE,
            ethertype: ethertype::IPV4,
        };
        let mut buf = [0u8; 20];
        assert_eq!(repr.emit(&mut buf), Ok(14));
        assert_eq!(
            EthernetRepr::parse(&Packet::new_checked(&buf[..]).unwrap()),
            repr
        );
    }

    #[test]
    fn setters_write_the_right_bytes() {
        let mut buf = FRAME;
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.set_dst_addr(MacAddr([9; 6]));
        p.set_src_addr(MacAddr([8; 6]));
        p.set_ethertype(ethertype::IPV6);
        p.payload_mut()[0] = 0x11;
        assert_eq!(
            &buf[..15],
            &[9, 9, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8, 0x86, 0xdd, 0x11]
        );
    }

    #[test]
    fn header_only_frame_has_empty_payload() {
        let p = Packet::new_checked(&FRAME[..14]).unwrap();
        assert!(p.payload().is_empty());
    }

    #[test]
    fn every_truncation_is_an_error() {
        for n in 0..HEADER_LEN {
            assert_eq!(
                Packet::new_checked(&FRAME[..n]).unwrap_err(),
                WireError::Truncated {
                    header: "ethernet",
                    field: "header",
                    len: n,
                    need: 14
                }
            );
        }
        assert!(EthernetRepr {
            src: MacAddr::BROADCAST,
            dst: MacAddr::BROADCAST,
            ethertype: 0
        }
        .emit(&mut [0; 13])
        .is_err());
    }

    #[test]
    fn never_panics_on_hostile_input() {
        for input in hostile_inputs(&FRAME, 2000, 1) {
            if let Ok(p) = Packet::new_checked(&input[..]) {
                let _ = (p.dst_addr(), p.src_addr(), p.ethertype(), p.payload().len());
            }
        }
    }
}
