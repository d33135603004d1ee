//! IPv4 prefixes as IPAM uses them: pools, blocks, and the text form Calico stores
//! (`192.168.0.0/26`; keys use `192.168.0.0-26`, see `datastore::keys`).

use std::net::Ipv4Addr;

/// IPAM's pools and blocks are the workspace's one prefix type: host bits are refused by
/// `new` and parsing (like Calico's pool validation), cleared by `containing`.
pub use ipv4net::{Ipv4Prefix, PrefixError};

/// The block arithmetic IPAM does on a prefix: its size, the position of an address in it,
/// and its sub-prefixes (a pool's blocks).
pub trait BlockMath: Sized {
    /// Number of addresses (u64: a /0 holds 2^32).
    fn size(&self) -> u64;
    /// Position of `addr` inside the prefix, if it is inside.
    fn ordinal_of(&self, addr: Ipv4Addr) -> Option<u64>;
    /// The address at position `ordinal`, if the prefix has that many.
    fn addr_at(&self, ordinal: u64) -> Option<Ipv4Addr>;
    /// The sub-prefixes of length `len` in address order (none if `len` is shorter than
    /// the prefix or longer than 32). Lazy, so a /8 pool of /26 blocks costs nothing up front.
    fn subnets(&self, len: u8) -> impl Iterator<Item = Self>;
}

impl BlockMath for Ipv4Prefix {
    fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.len()))
    }

    fn ordinal_of(&self, addr: Ipv4Addr) -> Option<u64> {
        self.contains(addr)
            .then(|| u64::from(u32::from(addr) - u32::from(self.addr())))
    }

    fn addr_at(&self, ordinal: u64) -> Option<Ipv4Addr> {
        (ordinal < self.size()).then(|| Ipv4Addr::from(u32::from(self.addr()) + ordinal as u32))
    }

    fn subnets(&self, len: u8) -> impl Iterator<Item = Ipv4Prefix> {
        let (count, start) = if len < self.len() || len > 32 {
            (0, 0)
        } else {
            (
                1u64 << (len - self.len()),
                u64::from(u32::from(self.addr())),
            )
        };
        let step = 1u64 << (32 - u32::from(len.min(32)));
        // Each network is `len`-aligned inside the prefix, so `new` cannot refuse it.
        (0..count).filter_map(move |i| {
            Ipv4Prefix::new(Ipv4Addr::from((start + i * step) as u32), len).ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_calico_form() {
        let c: Ipv4Prefix = "192.168.0.64/26".parse().unwrap();
        assert_eq!(c.to_string(), "192.168.0.64/26");
        assert_eq!(c.size(), 64);
        assert!("192.168.0.65/26".parse::<Ipv4Prefix>().is_err());
        assert!("192.168.0.0/33".parse::<Ipv4Prefix>().is_err());
        assert!("192.168.0.0".parse::<Ipv4Prefix>().is_err());
        assert!("x/26".parse::<Ipv4Prefix>().is_err());
    }

    #[test]
    fn ordinals_and_subnets() {
        let pool: Ipv4Prefix = "10.0.0.0/24".parse().unwrap();
        let blocks: Vec<String> = pool.subnets(26).map(|b| b.to_string()).collect();
        assert_eq!(
            blocks,
            [
                "10.0.0.0/26",
                "10.0.0.64/26",
                "10.0.0.128/26",
                "10.0.0.192/26"
            ]
        );
        assert_eq!(pool.subnets(23).count(), 0);
        assert_eq!(pool.subnets(33).count(), 0);
        let b: Ipv4Prefix = "10.0.0.64/26".parse().unwrap();
        assert_eq!(b.ordinal_of("10.0.0.70".parse().unwrap()), Some(6));
        assert_eq!(b.ordinal_of("10.0.0.128".parse().unwrap()), None);
        assert_eq!(b.addr_at(63), Some("10.0.0.127".parse().unwrap()));
        assert_eq!(b.addr_at(64), None);
        assert!(pool.covers(&b));
        assert!(!b.covers(&pool));
        let all = Ipv4Prefix::new(Ipv4Addr::UNSPECIFIED, 0).unwrap();
        assert_eq!(all.size(), 1 << 32);
        assert!(all.contains("1.2.3.4".parse().unwrap()));
        assert_eq!(
            Ipv4Prefix::containing("10.0.0.70".parse().unwrap(), 26).unwrap(),
            b
        );
    }
}
