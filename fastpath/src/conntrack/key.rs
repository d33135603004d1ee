//! The 5-tuple that names one direction of a flow, and the direction itself.

use std::net::Ipv4Addr;

use crate::wire::ipv4::protocol;

/// One direction of a flow: source, destination, IP protocol and the two transport ports.
///
/// For ICMP echo (RFC 792) both ports hold the echo identifier: a request and its reply carry
/// the same identifier, so the reply's key is the request's [`FlowKey::reversed`], exactly as
/// for TCP and UDP, and source NAT can rewrite it like a port. Other protocols use ports 0.
#[derive(Clone, Copy, Debug, Eq)]
pub struct FlowKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

/// Which way a packet travels relative to the packet that created its flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Same way as the first packet (the initiator's side).
    Original = 0,
    /// The answer.
    Reply = 1,
}

impl Direction {
    #[inline]
    pub fn opposite(self) -> Direction {
        match self {
            Direction::Original => Direction::Reply,
            Direction::Reply => Direction::Original,
        }
    }

    #[inline]
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl FlowKey {
    #[inline]
    pub fn new(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: u8,
        src_port: u16,
        dst_port: u16,
    ) -> FlowKey {
        FlowKey {
            src,
            dst,
            protocol,
            src_port,
            dst_port,
        }
    }

    #[inline]
    pub fn tcp(src: Ipv4Addr, src_port: u16, dst: Ipv4Addr, dst_port: u16) -> FlowKey {
        FlowKey::new(src, dst, protocol::TCP, src_port, dst_port)
    }

    #[inline]
    pub fn udp(src: Ipv4Addr, src_port: u16, dst: Ipv4Addr, dst_port: u16) -> FlowKey {
        FlowKey::new(src, dst, protocol::UDP, src_port, dst_port)
    }

    /// An ICMP echo request or reply with identifier `ident`.
    #[inline]
    pub fn icmp_echo(src: Ipv4Addr, dst: Ipv4Addr, ident: u16) -> FlowKey {
        FlowKey::new(src, dst, protocol::ICMP, ident, ident)
    }

    /// The key of a packet going the other way.
    #[inline]
    pub fn reversed(&self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
            protocol: self.protocol,
            src_port: self.dst_port,
            dst_port: self.src_port,
        }
    }

    /// The key as two words: addresses, then protocol and ports.
    #[inline]
    fn words(&self) -> (u64, u64) {
        let addrs = (u64::from(u32::from(self.src)) << 32) | u64::from(u32::from(self.dst));
        let rest = (u64::from(self.protocol) << 32)
            | (u64::from(self.src_port) << 16)
            | u64::from(self.dst_port);
        (addrs, rest)
    }

    /// A 64-bit hash of the key under `seed`.
    ///
    /// The key packed into two words and mixed with multiplies and shifts: the address word
    /// through a multiply (a bijection), folded with the rest, then MurmurHash3's 64-bit
    /// finalizer so that every input bit reaches the low bits the table indexes with. Fast (no
    /// loop, three multiplies); the per-table seed keeps an outside sender from predicting
    /// bucket placement.
    #[inline]
    pub fn seeded_hash(&self, seed: u64) -> u64 {
        let (addrs, rest) = self.words();
        let mut h = (addrs ^ seed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(31)
            ^ rest;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Field by field, but as two word compares (the flow table compares a key per lookup).
impl PartialEq for FlowKey {
    #[inline]
    fn eq(&self, other: &FlowKey) -> bool {
        self.words() == other.words()
    }
}

/// Hashes what [`PartialEq`] compares (for `HashMap`s of keys outside the flow table).
impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.words().hash(state);
    }
}

impl std::fmt::Display for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "proto {} {}:{} -> {}:{}",
            self.protocol, self.src, self.src_port, self.dst, self.dst_port
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_swaps_addresses_and_ports_and_is_an_involution() {
        let k = FlowKey::tcp(
            Ipv4Addr::new(10, 0, 0, 1),
            40000,
            Ipv4Addr::new(10, 0, 0, 2),
            80,
        );
        let r = k.reversed();
        assert_eq!(
            r,
            FlowKey::tcp(
                Ipv4Addr::new(10, 0, 0, 2),
                80,
                Ipv4Addr::new(10, 0, 0, 1),
                40000
            )
        );
        assert_eq!(r.reversed(), k);
        let e = FlowKey::icmp_echo(Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2), 7);
        assert_eq!(
            e.reversed(),
            FlowKey::icmp_echo(Ipv4Addr::new(2, 2, 2, 2), Ipv4Addr::new(1, 1, 1, 1), 7)
        );
    }

    #[test]
    fn hash_differs_by_direction_field_and_seed() {
        let k = FlowKey::udp(
            Ipv4Addr::new(10, 0, 0, 1),
            1000,
            Ipv4Addr::new(10, 0, 0, 2),
            53,
        );
        assert_ne!(k.seeded_hash(1), k.reversed().seeded_hash(1));
        assert_ne!(k.seeded_hash(1), k.seeded_hash(2));
        let mut other = k;
        other.protocol = protocol::TCP;
        assert_ne!(k.seeded_hash(1), other.seeded_hash(1));
        // Sequential source ports land in many different buckets (low bits differ).
        let buckets: std::collections::HashSet<u64> = (0..1024u16)
            .map(|p| FlowKey { src_port: p, ..k }.seeded_hash(9) & 1023)
            .collect();
        assert!(
            buckets.len() > 550,
            "only {} of 1024 buckets used",
            buckets.len()
        );
    }
}
