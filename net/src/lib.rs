//! The one IPv4 prefix type of the workspace: BGP NLRI, IPAM pools and blocks, the node's
//! pools and routes, and classifier rules all use [`Ipv4Prefix`]. What each of them does
//! with a prefix (NLRI encoding, block math, compiled matching) stays in its own crate as
//! functions and traits around this type.
//!
//! A prefix is always in network form: its host bits are zero, so two prefixes naming the
//! same network compare equal. The constructors say what they do with host bits:
//! [`Ipv4Prefix::new`] and parsing refuse them (as Calico refuses a pool CIDR with host
//! bits), [`Ipv4Prefix::containing`] clears them (the prefix an address falls in).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 prefix whose host bits are zero, with a length of 0 to 32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Prefix {
    addr: Ipv4Addr,
    len: u8,
}

/// Why a prefix could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("prefix length {0} is longer than 32")]
    LengthTooLong(u8),
    #[error("{addr}/{len} has host bits set")]
    HostBitsSet { addr: Ipv4Addr, len: u8 },
    #[error("not an IPv4 CIDR: {0:?}")]
    Syntax(String),
}

impl Ipv4Prefix {
    /// The prefix `addr/len`; refuses a length above 32 and an `addr` with host bits set.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Ipv4Prefix, PrefixError> {
        let prefix = Ipv4Prefix::containing(addr, len)?;
        if prefix.addr != addr {
            return Err(PrefixError::HostBitsSet { addr, len });
        }
        Ok(prefix)
    }

    /// The prefix of length `len` that contains `addr` (its host bits cleared); refuses a
    /// length above 32.
    pub fn containing(addr: Ipv4Addr, len: u8) -> Result<Ipv4Prefix, PrefixError> {
        if len > 32 {
            return Err(PrefixError::LengthTooLong(len));
        }
        Ok(Ipv4Prefix {
            addr: Ipv4Addr::from(u32::from(addr) & mask(len)),
            len,
        })
    }

    /// The single address `addr/32`.
    pub fn host(addr: Ipv4Addr) -> Ipv4Prefix {
        Ipv4Prefix { addr, len: 32 }
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0 to 32.
    #[allow(clippy::len_without_is_empty)] // a prefix length, not a collection's
    pub fn len(&self) -> u8 {
        self.len
    }

    /// The netmask, in host byte order.
    pub fn mask(&self) -> u32 {
        mask(self.len)
    }

    /// True if `ip` is inside this prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.len) == u32::from(self.addr)
    }

    /// True if `other` lies entirely inside this prefix.
    pub fn covers(&self, other: &Ipv4Prefix) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }

    /// True if the two prefixes share an address (one covers the other).
    pub fn overlaps(&self, other: &Ipv4Prefix) -> bool {
        let m = mask(self.len.min(other.len));
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }
}

/// The netmask of a prefix length, in host byte order; lengths above 32 count as 32.
#[inline]
pub fn mask(len: u8) -> u32 {
    match len {
        0 => 0,
        l => u32::MAX << (32 - u32::from(l.min(32))),
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv4Prefix {
    type Err = PrefixError;

    /// Parses `a.b.c.d/len`, refusing host bits (see [`Ipv4Prefix::new`]).
    fn from_str(s: &str) -> Result<Ipv4Prefix, PrefixError> {
        let syntax = || PrefixError::Syntax(s.to_string());
        let (addr, len) = s.split_once('/').ok_or_else(syntax)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| syntax())?;
        let len: u8 = len.parse().map_err(|_| syntax())?;
        Ipv4Prefix::new(addr, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ipv4Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn new_refuses_host_bits_and_containing_clears_them() {
        let addr = Ipv4Addr::new(10, 1, 2, 3);
        assert_eq!(
            Ipv4Prefix::new(addr, 16),
            Err(PrefixError::HostBitsSet { addr, len: 16 })
        );
        let c = Ipv4Prefix::containing(addr, 16).unwrap();
        assert_eq!((c.addr(), c.len()), (Ipv4Addr::new(10, 1, 0, 0), 16));
        assert_eq!(
            Ipv4Prefix::new(Ipv4Addr::UNSPECIFIED, 33),
            Err(PrefixError::LengthTooLong(33))
        );
        assert_eq!(
            Ipv4Prefix::containing(addr, 33),
            Err(PrefixError::LengthTooLong(33))
        );
        assert_eq!(Ipv4Prefix::host(addr), p("10.1.2.3/32"));
    }

    #[test]
    fn parsing_is_strict_and_printing_round_trips() {
        assert_eq!(p("192.168.0.64/26").to_string(), "192.168.0.64/26");
        assert!(matches!(
            "192.168.0.65/26".parse::<Ipv4Prefix>(),
            Err(PrefixError::HostBitsSet { .. })
        ));
        assert!("192.168.0.0/33".parse::<Ipv4Prefix>().is_err());
        assert!("192.168.0.0".parse::<Ipv4Prefix>().is_err());
        assert!("x/26".parse::<Ipv4Prefix>().is_err());
    }

    #[test]
    fn containment_and_overlap() {
        let a = p("10.0.0.0/8");
        assert!(a.contains(Ipv4Addr::new(10, 9, 9, 9)) && !a.contains(Ipv4Addr::new(11, 0, 0, 0)));
        assert!(a.covers(&p("10.9.0.0/16")) && !p("10.9.0.0/16").covers(&a));
        assert!(a.overlaps(&p("10.9.0.0/16")) && p("10.9.0.0/16").overlaps(&a));
        assert!(!a.overlaps(&p("11.0.0.0/8")));
        assert!(p("0.0.0.0/0").contains(Ipv4Addr::BROADCAST));
        assert_eq!(p("10.0.0.0/8").mask(), 0xff00_0000);
        assert_eq!(mask(0), 0);
    }
}
