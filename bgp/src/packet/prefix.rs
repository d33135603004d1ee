//! IPv4 prefixes as carried in the Withdrawn Routes and NLRI fields (RFC 4271 section 4.3)
//! and in MP_REACH_NLRI / MP_UNREACH_NLRI for AFI 1 SAFI 1 (RFC 4760 section 5).

use std::net::Ipv4Addr;

pub use ipv4net::Ipv4Prefix;

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
        out.extend(Ipv4Prefix::containing(Ipv4Addr::from(octets), len).ok());
    }
    Ok(out)
}

/// Encodes prefixes as `<length, prefix>` pairs (RFC 4271 section 4.3).
pub(crate) fn encode_prefixes(prefixes: &[Ipv4Prefix], out: &mut Vec<u8>) {
    for p in prefixes {
        out.push(p.len());
        out.extend_from_slice(&p.addr().octets()[..p.encoded_len() - 1]);
    }
}

/// The NLRI form of a prefix (RFC 4271 section 4.3).
pub trait Nlri {
    /// Octets this prefix takes on the wire: its length octet and the significant octets.
    fn encoded_len(&self) -> usize;
}

impl Nlri for Ipv4Prefix {
    fn encoded_len(&self) -> usize {
        1 + usize::from(self.len()).div_ceil(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_clears_host_bits_and_rejects_lengths_above_32() {
        let p = Ipv4Prefix::containing(Ipv4Addr::new(10, 1, 2, 3), 16).unwrap();
        assert_eq!((p.addr(), p.len()), (Ipv4Addr::new(10, 1, 0, 0), 16));
        assert!(
            p.contains(Ipv4Addr::new(10, 1, 255, 255)) && !p.contains(Ipv4Addr::new(10, 2, 0, 0))
        );
        assert_eq!(
            Ipv4Prefix::containing(Ipv4Addr::BROADCAST, 0)
                .unwrap()
                .addr(),
            Ipv4Addr::UNSPECIFIED
        );
        assert!(Ipv4Prefix::containing(Ipv4Addr::UNSPECIFIED, 33).is_err());
        assert_eq!(
            "10.1.2.3/32".parse::<Ipv4Prefix>().unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert!("10.0.0.0/40".parse::<Ipv4Prefix>().is_err());
    }

    /// RFC 4271 section 4.3: the fewest octets that hold the length; trailing bits ignored.
    #[test]
    fn prefixes_take_the_fewest_octets_and_ignore_trailing_bits() {
        let decoded = decode_prefixes(&[0, 9, 10, 0x80, 20, 10, 1, 0xff, 32, 1, 2, 3, 4]).unwrap();
        let expected: Vec<Ipv4Prefix> =
            ["0.0.0.0/0", "10.128.0.0/9", "10.1.240.0/20", "1.2.3.4/32"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect();
        assert_eq!(decoded, expected);
        let mut out = Vec::new();
        encode_prefixes(&decoded, &mut out);
        assert_eq!(out, [0, 9, 10, 0x80, 20, 10, 1, 0xf0, 32, 1, 2, 3, 4]);
    }

    #[test]
    fn bad_prefix_lists_are_errors() {
        assert_eq!(decode_prefixes(&[33, 1, 2, 3, 4, 5]), Err(InvalidPrefix));
        assert_eq!(decode_prefixes(&[24, 10, 1]), Err(InvalidPrefix));
        assert_eq!(decode_prefixes(&[]), Ok(vec![]));
    }
}
