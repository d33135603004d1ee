//! UPDATE path attributes (RFC 4271 sections 4.3 and 5, RFC 1997, RFC 4456, RFC 4760,
//! RFC 6793) and their error handling (RFC 4271 section 6.3 revised by RFC 7606).
//!
//! Each attribute is a triple <type, length, value>:
//! ```text
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attr. Flags  |Attr. Type Code|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Attribute flags: bit 0 Optional, bit 1 Transitive, bit 2 Partial, bit 3 Extended Length
//! (the length is then two octets instead of one); the low four bits are unused.
//! ```

// `is_multiple_of` is newer than the workspace's rust-version (1.80).
#![allow(unknown_lints, clippy::manual_is_multiple_of)]

use std::net::Ipv4Addr;

use super::prefix::Ipv4Prefix;

mod decode;
mod encode;

/// The path attributes of an UPDATE, decoded.
///
/// ORIGIN, AS_PATH and NEXT_HOP are well-known mandatory only when the UPDATE announces
/// routes (RFC 4271 section 5; with MP_REACH_NLRI, NEXT_HOP is carried in it instead,
/// RFC 4760 section 3), so they are encoded only then; an UPDATE that only withdraws
/// decodes with the defaults (`Igp`, empty path).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PathAttributes {
    pub origin: Origin,
    /// AS_PATH with 4-octet AS numbers; for a 2-octet peer it is the merge of AS_PATH and
    /// AS4_PATH (RFC 6793 section 4.2.3).
    pub as_path: AsPath,
    pub next_hop: Option<Ipv4Addr>,
    /// MULTI_EXIT_DISC (RFC 4271 section 5.1.4).
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    /// AGGREGATOR with a 4-octet AS; for a 2-octet peer merged with AS4_AGGREGATOR.
    pub aggregator: Option<Aggregator>,
    /// COMMUNITIES (RFC 1997), each as the 32-bit value (AS << 16 | local).
    pub communities: Vec<u32>,
    /// ORIGINATOR_ID (RFC 4456 section 8).
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST (RFC 4456 section 8), nearest cluster first.
    pub cluster_list: Vec<Ipv4Addr>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// Attributes this speaker does not implement. Optional transitive ones are passed on
    /// with the Partial bit set (RFC 4271 section 5); the others are dropped on decode.
    pub unknown: Vec<RawAttribute>,
}

/// ORIGIN (RFC 4271 section 5.1.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    #[default]
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// AS_PATH (RFC 4271 section 5.1.2): segments of AS numbers, all 4-octet here.
///
/// Each segment on the wire:
/// ```text
/// +------------------+------------------+---------------------------+
/// | segment type (1) | AS count (1)     | AS numbers (2 or 4 each)  |
/// +------------------+------------------+---------------------------+
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<AsPathSegment>,
}

/// One AS_PATH segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AsPathSegment {
    pub kind: AsPathSegmentType,
    /// 1 to 255 AS numbers (a longer run is split into several segments on encode).
    pub asns: Vec<u32>,
}

/// AS_PATH segment types (RFC 4271 section 4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AsPathSegmentType {
    /// Unordered set of ASes a route in the UPDATE has traversed.
    AsSet = 1,
    /// Ordered set of ASes, nearest first.
    AsSequence = 2,
}

/// AGGREGATOR (RFC 4271 section 5.1.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// MP_REACH_NLRI (RFC 4760 section 3).
/// ```text
/// +---------------------------------------------------------+
/// | Address Family Identifier (2 octets)                    |
/// +---------------------------------------------------------+
/// | Subsequent Address Family Identifier (1 octet)          |
/// +---------------------------------------------------------+
/// | Length of Next Hop Network Address (1 octet)            |
/// +---------------------------------------------------------+
/// | Network Address of Next Hop (variable)                  |
/// +---------------------------------------------------------+
/// | Reserved (1 octet)                                      |
/// +---------------------------------------------------------+
/// | Network Layer Reachability Information (variable)       |
/// +---------------------------------------------------------+
/// ```
/// Only AFI 1 / SAFI 1 (IPv4 unicast) NLRI are decoded; for other families `nlri` is empty
/// and the attribute is kept as it came in `raw_nlri`, so a speaker that did not negotiate
/// the family can ignore it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MpReach {
    pub afi: u16,
    pub safi: u8,
    /// The next hop as it came (4 octets for IPv4 unicast).
    pub next_hop: Vec<u8>,
    pub nlri: Vec<Ipv4Prefix>,
    /// NLRI of a family other than IPv4 unicast, undecoded.
    pub raw_nlri: Vec<u8>,
}

/// MP_UNREACH_NLRI (RFC 4760 section 4).
/// ```text
/// +---------------------------------------------------------+
/// | Address Family Identifier (2 octets)                    |
/// +---------------------------------------------------------+
/// | Subsequent Address Family Identifier (1 octet)          |
/// +---------------------------------------------------------+
/// | Withdrawn Routes (variable)                             |
/// +---------------------------------------------------------+
/// ```
/// An MP_UNREACH_NLRI with no withdrawn routes is the End-of-RIB marker of its family
/// (RFC 4724 section 2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    pub afi: u16,
    pub safi: u8,
    pub withdrawn: Vec<Ipv4Prefix>,
    /// Withdrawn routes of a family other than IPv4 unicast, undecoded.
    pub raw_withdrawn: Vec<u8>,
}

/// A path attribute kept undecoded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    /// Attribute flags as received (the Extended Length bit is recomputed on encode).
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

impl MpReach {
    /// The next hop when it is a single IPv4 address.
    pub fn ipv4_next_hop(&self) -> Option<Ipv4Addr> {
        <[u8; 4]>::try_from(self.next_hop.as_slice())
            .ok()
            .map(Ipv4Addr::from)
    }
}

impl AsPath {
    /// A path of one AS_SEQUENCE, nearest AS first.
    pub fn from_sequence(asns: Vec<u32>) -> Self {
        if asns.is_empty() {
            return Self::default();
        }
        Self {
            segments: vec![AsPathSegment {
                kind: AsPathSegmentType::AsSequence,
                asns,
            }],
        }
    }

    /// The path length best path selection compares (RFC 4271 section 9.1.2.2 a):
    /// an AS_SET counts as 1 whatever its size.
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                AsPathSegmentType::AsSet => 1,
                AsPathSegmentType::AsSequence => s.asns.len(),
            })
            .sum()
    }

    /// The neighbouring AS: the first of the first AS_SEQUENCE (RFC 4271 section 9.1.2.2 c).
    pub fn first_as(&self) -> Option<u32> {
        match self.segments.first() {
            Some(AsPathSegment {
                kind: AsPathSegmentType::AsSequence,
                asns,
            }) => asns.first().copied(),
            _ => None,
        }
    }

    /// True if `asn` appears anywhere in the path (loop detection, RFC 4271 section 9.1.2).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// The path with `asn` prepended, as a speaker does when sending to an external peer
    /// (RFC 4271 section 5.1.2).
    pub fn prepend(&self, asn: u32) -> Self {
        let mut segments = self.segments.clone();
        match segments.first_mut() {
            Some(s) if s.kind == AsPathSegmentType::AsSequence && s.asns.len() < 255 => {
                s.asns.insert(0, asn)
            }
            _ => segments.insert(
                0,
                AsPathSegment {
                    kind: AsPathSegmentType::AsSequence,
                    asns: vec![asn],
                },
            ),
        }
        Self { segments }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(asns: &[u32]) -> AsPathSegment {
        AsPathSegment {
            kind: AsPathSegmentType::AsSequence,
            asns: asns.to_vec(),
        }
    }

    #[test]
    fn path_length_counts_a_set_as_one() {
        let set = AsPathSegment {
            kind: AsPathSegmentType::AsSet,
            asns: vec![7, 8, 9],
        };
        let path = AsPath {
            segments: vec![seq(&[1, 2]), set],
        };
        assert_eq!(path.path_len(), 3);
        assert_eq!(path.first_as(), Some(1));
        assert!(path.contains(9) && !path.contains(3));
        assert_eq!(path.prepend(5).segments[0], seq(&[5, 1, 2]));
        assert_eq!(AsPath::default().prepend(5), AsPath::from_sequence(vec![5]));
    }
}
