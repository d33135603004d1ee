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
    #[allow(clippy::len_without_is_empty)] // a prefix length, not a collection's
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

/// A prefix list that does not parse: a length above 32 or a prefix cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InvalidPrefix;

/// Decodes a run of `<length, prefix>` pairs filling `buf` exactly (RFC 4271 section 4.3):
/// the prefix is the fewest octets that hold `length` bits; trailing bits are ignored.
pub(crate) fn decode_prefixes(buf: &[u8]) -> Result<Vec<Ipv4Prefix>, InvalidPrefix> {
    let mut r = super::wire::Reader::new(buf);
    // Each prefix takes at least one octet, so this bounds the allocation by the input.
    let mut out = Vec::with_capacity(buf.len().min(1024));
    while !r.is_empty() {
        let len = r.u8().ok_or(InvalidPrefix)?;
        if len > 32 {
            return Err(InvalidPrefix);
        }
        let bytes = r.take(usize::from(len).div_ceil(8)).ok_or(InvalidPrefix)?;
        let mut octets = [0u8; 4];
        octets[..bytes.len()].copy_from_slice(bytes);
        out.extend(Ipv4Prefix::new(Ipv4Addr::from(octets), len));
    }
    Ok(out)
}

/// Encodes prefixes as `<length, prefix>` pairs (RFC 4271 section 4.3).
pub(crate) fn encode_prefixes(prefixes: &[Ipv4Prefix], out: &mut Vec<u8>) {
    for p in prefixes {
        out.push(p.len);
        out.extend_from_slice(&p.addr.octets()[..p.encoded_len() - 1]);
    }
}

impl Ipv4Prefix {
    /// Octets this prefix takes on the wire: its length octet and the significant octets.
    pub fn encoded_len(&self) -> usize {
        1 + usize::from(self.len).div_ceil(8)
    }
}

impl std::str::FromStr for Ipv4Prefix {
    type Err = String;

    /// Parses `a.b.c.d/len` (host bits are cleared).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s.split_once('/').ok_or_else(|| format!("{s}: expected a.b.c.d/len"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|e| format!("{s}: {e}"))?;
        let len: u8 = len.parse().map_err(|e| format!("{s}: {e}"))?;
        Self::new(addr, len).ok_or_else(|| format!("{s}: length above 32"))
    }
}
