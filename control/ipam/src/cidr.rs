//! IPv4 prefixes as IPAM uses them: pools, blocks, and the text form Calico stores
//! (`192.168.0.0/26`; keys use `192.168.0.0-26`, see `datastore::keys`).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 prefix whose host bits are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    network: Ipv4Addr,
    len: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("prefix length {0} is longer than 32")]
    LengthTooLong(u8),
    #[error("{addr}/{len} has host bits set")]
    HostBitsSet { addr: Ipv4Addr, len: u8 },
    #[error("not an IPv4 CIDR: {0:?}")]
    Syntax(String),
}

impl Ipv4Cidr {
    /// A prefix from its network address; refuses host bits, like Calico's pool validation.
    pub fn new(network: Ipv4Addr, len: u8) -> Result<Ipv4Cidr, CidrError> {
        if len > 32 {
            return Err(CidrError::LengthTooLong(len));
        }
        if u32::from(network) & !mask(len) != 0 {
            return Err(CidrError::HostBitsSet { addr: network, len });
        }
        Ok(Ipv4Cidr { network, len })
    }

    /// The prefix of length `len` that contains `addr`.
    pub fn containing(addr: Ipv4Addr, len: u8) -> Result<Ipv4Cidr, CidrError> {
        if len > 32 {
            return Err(CidrError::LengthTooLong(len));
        }
        Ok(Ipv4Cidr {
            network: Ipv4Addr::from(u32::from(addr) & mask(len)),
            len,
        })
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Number of addresses (u64: a /0 holds 2^32).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.len))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.len) == u32::from(self.network)
    }

    /// Whether `other` lies entirely inside `self`.
    pub fn covers(&self, other: &Ipv4Cidr) -> bool {
        other.len >= self.len && self.contains(other.network)
    }

    /// Position of `addr` inside the prefix, if it is inside.
    pub fn ordinal_of(&self, addr: Ipv4Addr) -> Option<u64> {
        self.contains(addr)
            .then(|| u64::from(u32::from(addr) - u32::from(self.network)))
    }

    /// The address at position `ordinal`, if the prefix has that many.
    pub fn addr_at(&self, ordinal: u64) -> Option<Ipv4Addr> {
        (ordinal < self.size()).then(|| Ipv4Addr::from(u32::from(self.network) + ordinal as u32))
    }

    /// The sub-prefixes of length `len` in address order (none if `len` is shorter than
    /// the prefix or longer than 32). Lazy, so a /8 pool of /26 blocks costs nothing up front.
    pub fn subnets(&self, len: u8) -> impl Iterator<Item = Ipv4Cidr> {
        let (count, start) = if len < self.len || len > 32 {
            (0, 0)
        } else {
            (1u64 << (len - self.len), u64::from(u32::from(self.network)))
        };
        let step = 1u64 << (32 - u32::from(len.min(32)));
        (0..count).map(move |i| Ipv4Cidr {
            network: Ipv4Addr::from((start + i * step) as u32),
            len,
        })
    }
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Ipv4Cidr, CidrError> {
        let syntax = || CidrError::Syntax(s.to_string());
        let (addr, len) = s.split_once('/').ok_or_else(syntax)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| syntax())?;
        let len: u8 = len.parse().map_err(|_| syntax())?;
        Ipv4Cidr::new(addr, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_calico_form() {
        let c: Ipv4Cidr = "192.168.0.64/26".parse().unwrap();
        assert_eq!(c.to_string(), "192.168.0.64/26");
        assert_eq!(c.size(), 64);
        assert!("192.168.0.65/26".parse::<Ipv4Cidr>().is_err());
        assert!("192.168.0.0/33".parse::<Ipv4Cidr>().is_err());
        assert!("192.168.0.0".parse::<Ipv4Cidr>().is_err());
        assert!("x/26".parse::<Ipv4Cidr>().is_err());
    }

    #[test]
    fn ordinals_and_subnets() {
        let pool: Ipv4Cidr = "10.0.0.0/24".parse().unwrap();
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
        let b: Ipv4Cidr = "10.0.0.64/26".parse().unwrap();
        assert_eq!(b.ordinal_of("10.0.0.70".parse().unwrap()), Some(6));
        assert_eq!(b.ordinal_of("10.0.0.128".parse().unwrap()), None);
        assert_eq!(b.addr_at(63), Some("10.0.0.127".parse().unwrap()));
        assert_eq!(b.addr_at(64), None);
        assert!(pool.covers(&b));
        assert!(!b.covers(&pool));
        let all = Ipv4Cidr::new(Ipv4Addr::UNSPECIFIED, 0).unwrap();
        assert_eq!(all.size(), 1 << 32);
        assert!(all.contains("1.2.3.4".parse().unwrap()));
        assert_eq!(
            Ipv4Cidr::containing("10.0.0.70".parse().unwrap(), 26).unwrap(),
            b
        );
    }
}
