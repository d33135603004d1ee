//! IPv4 prefixes as carried in the Withdrawn Routes and NLRI fields (RFC 4271 section 4.3)
//! and in MP_REACH_NLRI / MP_UNREACH_NLRI for AFI 1 SAFI 1 (RFC 4760 section 5).

use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 prefix with its host bits zero, so two equal networks compare equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Prefix {
    addr: Ipv4Addr,
    len: u8,
}

impl Ipv4Prefix {
    /// The prefix `addr/len` with the host bits of `addr` cleared; `None` if `len > 32`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Option<Self> {
        if len > 32 {
            return None;
        }
        Some(Self { addr: Ipv4Addr::from(u32::from(addr) & mask(len)), len })
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The prefix length, 0 to 32.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// True if `ip` is inside this prefix.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.len) == u32::from(self.addr)
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

fn mask(len: u8) -> u32 {
    match len {
        0 => 0,
        l => u32::MAX << (32 - u32::from(l.min(32))),
    }
}
