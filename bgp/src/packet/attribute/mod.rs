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

/// Attribute flag bits (RFC 4271 section 4.3).
pub mod flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes (IANA "BGP Path Attributes").
pub mod type_code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    /// RFC 1997.
    pub const COMMUNITIES: u8 = 8;
    /// RFC 4456 section 8.
    pub const ORIGINATOR_ID: u8 = 9;
    /// RFC 4456 section 8.
    pub const CLUSTER_LIST: u8 = 10;
    /// RFC 4760 section 3.
    pub const MP_REACH_NLRI: u8 = 14;
    /// RFC 4760 section 4.
    pub const MP_UNREACH_NLRI: u8 = 15;
    /// RFC 6793 section 3.
    pub const AS4_PATH: u8 = 17;
    /// RFC 6793 section 3.
    pub const AS4_AGGREGATOR: u8 = 18;
}

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

// ---------------------------------------------------------------------------------------
// Codec
// ---------------------------------------------------------------------------------------

use super::notification::{update_message_error as err, Notification};
use super::prefix::{decode_prefixes, encode_prefixes};
use super::wire::{Put, Reader};
use super::{AFI_IPV4, AS_TRANS, SAFI_UNICAST};

/// How RFC 7606 handles a malformed attribute, weakest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    /// Drop the attribute, keep the routes (RFC 7606 section 2).
    AttributeDiscard,
    /// Withdraw the routes the UPDATE announces (RFC 7606 section 2).
    TreatAsWithdraw,
    /// Send the NOTIFICATION and close the session (RFC 4271 section 6).
    SessionReset,
}

/// A malformation and the NOTIFICATION RFC 4271 section 6.3 names for it.
#[derive(Clone, Debug)]
struct Malformation {
    severity: Severity,
    notification: Notification,
}

impl Malformation {
    fn new(severity: Severity, subcode: u8, data: Vec<u8>) -> Self {
        Self {
            severity,
            notification: Notification::update(subcode, data),
        }
    }
}

/// The decoded attributes and what RFC 7606 made of the malformations that did not reset
/// the session.
#[derive(Debug)]
pub(crate) struct DecodedAttributes {
    pub(crate) attributes: PathAttributes,
    pub(crate) treat_as_withdraw: bool,
    pub(crate) malformation: Option<Notification>,
}

/// The Optional and Transitive bits each attribute we implement must carry
/// (RFC 4271 section 5 and the RFC defining each attribute); `None` for the others.
fn expected_flags(type_code: u8) -> Option<u8> {
    use flags::{OPTIONAL, TRANSITIVE};
    Some(match type_code {
        type_code::ORIGIN
        | type_code::AS_PATH
        | type_code::NEXT_HOP
        | type_code::LOCAL_PREF
        | type_code::ATOMIC_AGGREGATE => TRANSITIVE,
        type_code::AGGREGATOR
        | type_code::COMMUNITIES
        | type_code::AS4_PATH
        | type_code::AS4_AGGREGATOR => OPTIONAL | TRANSITIVE,
        type_code::MULTI_EXIT_DISC
        | type_code::ORIGINATOR_ID
        | type_code::CLUSTER_LIST
        | type_code::MP_REACH_NLRI
        | type_code::MP_UNREACH_NLRI => OPTIONAL,
        _ => return None,
    })
}

/// Attribute state built while the list is parsed.
struct Decoder<'a> {
    four_octet_as: bool,
    attrs: PathAttributes,
    seen: [bool; 256],
    as4_path: Option<AsPath>,
    as4_aggregator: Option<Aggregator>,
    /// The NEXT_HOP attribute as it came, for the Invalid NEXT_HOP data.
    next_hop_attribute: &'a [u8],
    worst: Option<Malformation>,
}

impl<'a> Decoder<'a> {
    /// Records a malformation that does not reset the session; the strongest one wins, the
    /// first among equals.
    fn note(&mut self, m: Malformation) {
        match &self.worst {
            Some(w) if w.severity >= m.severity => {}
            _ => self.worst = Some(m),
        }
    }

    /// One attribute: `whole` is the attribute with its header, the data RFC 4271 section
    /// 6.3 puts in most UPDATE errors.
    fn attribute(
        &mut self,
        attr_flags: u8,
        code: u8,
        value: &'a [u8],
        whole: &'a [u8],
    ) -> Result<(), Malformation> {
        use Severity::*;
        let with_data = |severity, subcode| Malformation::new(severity, subcode, whole.to_vec());
        let mut r = Reader::new(value);
        match code {
            // RFC 4271 section 5.1.1; RFC 7606 section 7.1.
            type_code::ORIGIN => {
                if value.len() != 1 {
                    return Err(with_data(TreatAsWithdraw, err::ATTRIBUTE_LENGTH_ERROR));
                }
                self.attrs.origin = match value[0] {
                    0 => Origin::Igp,
                    1 => Origin::Egp,
                    2 => Origin::Incomplete,
                    _ => return Err(with_data(TreatAsWithdraw, err::INVALID_ORIGIN_ATTRIBUTE)),
                };
            }
            // RFC 4271 section 5.1.2; RFC 7606 section 7.2.
            type_code::AS_PATH => {
                let as_len = if self.four_octet_as { 4 } else { 2 };
                self.attrs.as_path = decode_as_path(value, as_len).ok_or_else(|| {
                    Malformation::new(TreatAsWithdraw, err::MALFORMED_AS_PATH, Vec::new())
                })?;
            }
            // RFC 4271 section 5.1.3; RFC 7606 section 7.3.
            type_code::NEXT_HOP => {
                let nh = r
                    .ipv4()
                    .filter(|_| value.len() == 4)
                    .ok_or_else(|| with_data(TreatAsWithdraw, err::ATTRIBUTE_LENGTH_ERROR))?;
                self.attrs.next_hop = Some(nh);
                self.next_hop_attribute = whole;
            }
            // RFC 4271 section 5.1.4; RFC 7606 section 7.4.
            type_code::MULTI_EXIT_DISC => {
                self.attrs.med = Some(
                    exact_u32(value)
                        .ok_or_else(|| with_data(TreatAsWithdraw, err::ATTRIBUTE_LENGTH_ERROR))?,
                );
            }
            // RFC 4271 section 5.1.5; RFC 7606 section 7.5.
            type_code::LOCAL_PREF => {
                self.attrs.local_pref = Some(
                    exact_u32(value)
                        .ok_or_else(|| with_data(TreatAsWithdraw, err::ATTRIBUTE_LENGTH_ERROR))?,
                );
            }
            // RFC 4271 section 5.1.6; RFC 7606 section 7.6.
            type_code::ATOMIC_AGGREGATE => {
                if !value.is_empty() {
                    return Err(with_data(AttributeDiscard, err::ATTRIBUTE_LENGTH_ERROR));
                }
                self.attrs.atomic_aggregate = true;
            }
            // RFC 4271 section 5.1.7, RFC 6793 section 4; RFC 7606 section 7.7.
            type_code::AGGREGATOR => {
                let as_len = if self.four_octet_as { 4 } else { 2 };
                if value.len() != as_len + 4 {
                    return Err(with_data(AttributeDiscard, err::ATTRIBUTE_LENGTH_ERROR));
                }
                let asn = if as_len == 4 {
                    r.u32()
                } else {
                    r.u16().map(u32::from)
                };
                if let (Some(asn), Some(address)) = (asn, r.ipv4()) {
                    self.attrs.aggregator = Some(Aggregator { asn, address });
                }
            }
            // RFC 1997; RFC 7606 section 7.8.
            type_code::COMMUNITIES => {
                if value.is_empty() || value.len() % 4 != 0 {
                    return Err(with_data(TreatAsWithdraw, err::ATTRIBUTE_LENGTH_ERROR));
                }
                self.attrs.communities = std::iter::from_fn(|| r.u32()).collect();
            }
            // RFC 4456 section 8; RFC 7606 section 7.9.
            type_code::ORIGINATOR_ID => {
                let id = r
                    .ipv4()
                    .filter(|_| value.len() == 4)
                    .ok_or_else(|| with_data(TreatAsWithdraw, err::ATTRIBUTE_LENGTH_ERROR))?;
                self.attrs.originator_id = Some(id);
            }
            // RFC 4456 section 8; RFC 7606 section 7.10.
            type_code::CLUSTER_LIST => {
                if value.is_empty() || value.len() % 4 != 0 {
                    return Err(with_data(TreatAsWithdraw, err::ATTRIBUTE_LENGTH_ERROR));
                }
                self.attrs.cluster_list = std::iter::from_fn(|| r.ipv4()).collect();
            }
            // RFC 4760 section 3; RFC 7606 sections 5.3 and 7.11: the NLRI cannot be found
            // reliably in a malformed MP_REACH_NLRI, so it resets the session.
            type_code::MP_REACH_NLRI => {
                let reset = || with_data(SessionReset, err::OPTIONAL_ATTRIBUTE_ERROR);
                let afi = r.u16().ok_or_else(reset)?;
                let safi = r.u8().ok_or_else(reset)?;
                let nh_len = r.u8().ok_or_else(reset)?;
                let next_hop = r.take(usize::from(nh_len)).ok_or_else(reset)?;
                let _reserved = r.u8().ok_or_else(reset)?;
                let nlri_bytes = r.rest();
                let mut reach = MpReach {
                    afi,
                    safi,
                    next_hop: next_hop.to_vec(),
                    nlri: Vec::new(),
                    raw_nlri: Vec::new(),
                };
                if (afi, safi) == (AFI_IPV4, SAFI_UNICAST) {
                    if nh_len != 4 {
                        return Err(reset());
                    }
                    reach.nlri = decode_prefixes(nlri_bytes).map_err(|_| reset())?;
                } else {
                    reach.raw_nlri = nlri_bytes.to_vec();
                }
                self.attrs.mp_reach = Some(reach);
            }
            // RFC 4760 section 4; RFC 7606 section 5.3.
            type_code::MP_UNREACH_NLRI => {
                let reset = || with_data(SessionReset, err::OPTIONAL_ATTRIBUTE_ERROR);
                let afi = r.u16().ok_or_else(reset)?;
                let safi = r.u8().ok_or_else(reset)?;
                let rest = r.rest();
                let mut unreach = MpUnreach {
                    afi,
                    safi,
                    withdrawn: Vec::new(),
                    raw_withdrawn: Vec::new(),
                };
                if (afi, safi) == (AFI_IPV4, SAFI_UNICAST) {
                    unreach.withdrawn = decode_prefixes(rest).map_err(|_| reset())?;
                } else {
                    unreach.raw_withdrawn = rest.to_vec();
                }
                self.attrs.mp_unreach = Some(unreach);
            }
            // RFC 6793 section 6: between two 4-octet speakers AS4_PATH and AS4_AGGREGATOR
            // are discarded; from a 2-octet one a malformed one is discarded too.
            type_code::AS4_PATH => {
                if !self.four_octet_as {
                    self.as4_path = Some(decode_as_path(value, 4).ok_or_else(|| {
                        with_data(AttributeDiscard, err::OPTIONAL_ATTRIBUTE_ERROR)
                    })?);
                }
            }
            type_code::AS4_AGGREGATOR => {
                if !self.four_octet_as {
                    let (Some(asn), Some(address)) = (r.u32(), r.ipv4()) else {
                        return Err(with_data(AttributeDiscard, err::ATTRIBUTE_LENGTH_ERROR));
                    };
                    if !r.is_empty() {
                        return Err(with_data(AttributeDiscard, err::ATTRIBUTE_LENGTH_ERROR));
                    }
                    self.as4_aggregator = Some(Aggregator { asn, address });
                }
            }
            // RFC 4271 section 6.3: a well-known attribute we do not know is fatal.
            _ if attr_flags & flags::OPTIONAL == 0 => {
                return Err(with_data(
                    SessionReset,
                    err::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                ));
            }
            // RFC 4271 section 5: an unknown optional transitive attribute is passed on with
            // the Partial bit set; an unknown optional non-transitive one is dropped.
            _ => {
                if attr_flags & flags::TRANSITIVE != 0 {
                    self.attrs.unknown.push(RawAttribute {
                        flags: (attr_flags | flags::PARTIAL) & !flags::EXTENDED_LENGTH,
                        type_code: code,
                        value: value.to_vec(),
                    });
                }
            }
        }
        Ok(())
    }

    /// RFC 6793 section 4.2.3: a 2-octet peer's path is its AS_PATH with the trailing part
    /// replaced by AS4_PATH, and its aggregator the AS4_AGGREGATOR, when they agree.
    fn merge_as4(&mut self) {
        if self.four_octet_as {
            return;
        }
        if let (Some(agg), Some(_)) = (self.attrs.aggregator, self.as4_aggregator) {
            if agg.asn != u32::from(AS_TRANS) {
                // The aggregator was a 2-octet speaker that did not pass the AS4 attributes
                // on: both AS4_AGGREGATOR and AS4_PATH are stale and SHALL be ignored.
                return;
            }
        }
        if let Some(as4) = self.as4_aggregator {
            if self.attrs.aggregator.is_some() {
                self.attrs.aggregator = Some(as4);
            }
        }
        let Some(as4_path) = self.as4_path.take() else {
            return;
        };
        let (count, count4) = (self.attrs.as_path.path_len(), as4_path.path_len());
        if count < count4 {
            return; // AS4_PATH is ignored when it is longer than AS_PATH
        }
        let mut keep = count - count4;
        let mut merged = Vec::new();
        for seg in &self.attrs.as_path.segments {
            if keep == 0 {
                break;
            }
            match seg.kind {
                AsPathSegmentType::AsSet => {
                    merged.push(seg.clone());
                    keep -= 1;
                }
                AsPathSegmentType::AsSequence => {
                    let n = keep.min(seg.asns.len());
                    merged.push(AsPathSegment {
                        kind: seg.kind,
                        asns: seg.asns[..n].to_vec(),
                    });
                    keep -= n;
                }
            }
        }
        for seg in as4_path.segments {
            match merged.last_mut() {
                Some(last)
                    if last.kind == AsPathSegmentType::AsSequence
                        && seg.kind == AsPathSegmentType::AsSequence
                        && last.asns.len() + seg.asns.len() <= 255 =>
                {
                    last.asns.extend(seg.asns)
                }
                _ => merged.push(seg),
            }
        }
        self.attrs.as_path = AsPath { segments: merged };
    }
}

fn exact_u32(value: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(value).ok().map(u32::from_be_bytes)
}

/// Decodes AS_PATH segments with `as_len`-octet AS numbers; `None` if malformed
/// (RFC 7606 section 7.2: an unknown segment type, a zero count, or an overrun).
fn decode_as_path(value: &[u8], as_len: usize) -> Option<AsPath> {
    let mut r = Reader::new(value);
    let mut segments = Vec::new();
    while !r.is_empty() {
        let kind = match r.u8()? {
            1 => AsPathSegmentType::AsSet,
            2 => AsPathSegmentType::AsSequence,
            _ => return None,
        };
        let count = usize::from(r.u8()?);
        if count == 0 {
            return None;
        }
        let mut ases = Reader::new(r.take(count * as_len)?);
        let asns = (0..count)
            .map(|_| {
                if as_len == 4 {
                    ases.u32()
                } else {
                    ases.u16().map(u32::from)
                }
            })
            .collect::<Option<Vec<u32>>>()?;
        segments.push(AsPathSegment { kind, asns });
    }
    Some(AsPath { segments })
}

/// True for a NEXT_HOP no route can use: unspecified, broadcast, multicast
/// (RFC 4271 section 6.3, "syntactically incorrect").
fn next_hop_is_invalid(nh: Ipv4Addr) -> bool {
    nh.is_unspecified() || nh.is_broadcast() || nh.is_multicast()
}

impl PathAttributes {
    /// Decodes the Path Attributes field of an UPDATE (RFC 4271 section 4.3) and applies
    /// RFC 7606: `Err` only for the malformations that still reset the session.
    /// `announces_nlri`: the UPDATE's NLRI field is not empty.
    pub(crate) fn decode(
        buf: &[u8],
        announces_nlri: bool,
        four_octet_as: bool,
    ) -> Result<DecodedAttributes, Notification> {
        let mut d = Decoder {
            four_octet_as,
            attrs: PathAttributes::default(),
            seen: [false; 256],
            as4_path: None,
            as4_aggregator: None,
            next_hop_attribute: &[],
            worst: None,
        };
        let mut r = Reader::new(buf);
        while !r.is_empty() {
            let start = buf.len() - r.remaining();
            // RFC 7606 section 4: an attribute header cut short, or a length that overruns
            // the field, is treat-as-withdraw; Total Path Attribute Length still locates
            // the NLRI.
            let header = (r.u8(), r.u8());
            let (Some(attr_flags), Some(code)) = header else {
                d.note(Malformation::new(
                    Severity::TreatAsWithdraw,
                    err::MALFORMED_ATTRIBUTE_LIST,
                    Vec::new(),
                ));
                break;
            };
            let len = if attr_flags & flags::EXTENDED_LENGTH != 0 {
                r.u16().map(usize::from)
            } else {
                r.u8().map(usize::from)
            };
            let Some(value) = len.and_then(|len| r.take(len)) else {
                d.note(Malformation::new(
                    Severity::TreatAsWithdraw,
                    err::ATTRIBUTE_LENGTH_ERROR,
                    Vec::new(),
                ));
                break;
            };
            let whole = &buf[start..buf.len() - r.remaining()];

            // RFC 7606 section 3 (g): MP_REACH_NLRI or MP_UNREACH_NLRI twice resets the
            // session; any other repeated attribute is discarded after the first.
            let seen = &mut d.seen[usize::from(code)];
            if *seen {
                if code == type_code::MP_REACH_NLRI || code == type_code::MP_UNREACH_NLRI {
                    return Err(Notification::update(
                        err::MALFORMED_ATTRIBUTE_LIST,
                        Vec::new(),
                    ));
                }
                d.note(Malformation::new(
                    Severity::AttributeDiscard,
                    err::MALFORMED_ATTRIBUTE_LIST,
                    Vec::new(),
                ));
                continue;
            }
            *seen = true;

            // RFC 7606 section 3 (c): Optional or Transitive bits in conflict with the
            // attribute's definition make it malformed, treat-as-withdraw. MP_REACH_NLRI
            // is still parsed so that its routes can be withdrawn.
            if let Some(expected) = expected_flags(code) {
                if attr_flags & (flags::OPTIONAL | flags::TRANSITIVE) != expected {
                    d.note(Malformation::new(
                        Severity::TreatAsWithdraw,
                        err::ATTRIBUTE_FLAGS_ERROR,
                        whole.to_vec(),
                    ));
                    if code != type_code::MP_REACH_NLRI && code != type_code::MP_UNREACH_NLRI {
                        continue;
                    }
                }
            }

            if let Err(m) = d.attribute(attr_flags, code, value, whole) {
                if m.severity == Severity::SessionReset {
                    return Err(m.notification);
                }
                d.note(m);
            }
        }

        // RFC 7606 section 3 (d): a missing well-known mandatory attribute is
        // treat-as-withdraw. They are mandatory only when routes are announced; NEXT_HOP
        // only for the NLRI field (RFC 4760 section 3).
        let announces = announces_nlri || d.attrs.mp_reach.is_some();
        if announces {
            let mut required = vec![type_code::ORIGIN, type_code::AS_PATH];
            if announces_nlri {
                required.push(type_code::NEXT_HOP);
            }
            if let Some(&missing) = required.iter().find(|&&c| !d.seen[usize::from(c)]) {
                d.note(Malformation::new(
                    Severity::TreatAsWithdraw,
                    err::MISSING_WELL_KNOWN_ATTRIBUTE,
                    vec![missing],
                ));
            }
        }
        if announces_nlri {
            if let Some(nh) = d.attrs.next_hop.filter(|nh| next_hop_is_invalid(*nh)) {
                let _ = nh;
                let data = d.next_hop_attribute.to_vec();
                d.note(Malformation::new(
                    Severity::TreatAsWithdraw,
                    err::INVALID_NEXT_HOP_ATTRIBUTE,
                    data,
                ));
            }
        }
        d.merge_as4();

        let (treat_as_withdraw, malformation) = match d.worst {
            Some(m) => (
                m.severity == Severity::TreatAsWithdraw,
                Some(m.notification),
            ),
            None => (false, None),
        };
        Ok(DecodedAttributes {
            attributes: d.attrs,
            treat_as_withdraw,
            malformation,
        })
    }

    /// Appends the Path Attributes field. ORIGIN and AS_PATH are written only when the
    /// UPDATE announces routes (`announces`); MP_REACH_NLRI and MP_UNREACH_NLRI come first
    /// (RFC 7606 section 5.1), the others in type code order (RFC 4271 section 5).
    /// For a 2-octet peer, 4-octet AS numbers become AS_TRANS with AS4_PATH and
    /// AS4_AGGREGATOR carrying the real ones (RFC 6793 section 4.2.2).
    pub(crate) fn encode(&self, announces: bool, four_octet_as: bool, out: &mut Vec<u8>) {
        use flags::{OPTIONAL, TRANSITIVE};
        if let Some(reach) = &self.mp_reach {
            let mut v = Vec::new();
            v.put_u16(reach.afi);
            v.put_u8(reach.safi);
            match u8::try_from(reach.next_hop.len()) {
                Ok(len) => v.put_u8(len),
                Err(_) => v.put_u8(0),
            }
            if reach.next_hop.len() <= 255 {
                v.extend_from_slice(&reach.next_hop);
            }
            v.put_u8(0);
            encode_prefixes(&reach.nlri, &mut v);
            v.extend_from_slice(&reach.raw_nlri);
            put_attribute(out, OPTIONAL, type_code::MP_REACH_NLRI, &v);
        }
        if let Some(unreach) = &self.mp_unreach {
            let mut v = Vec::new();
            v.put_u16(unreach.afi);
            v.put_u8(unreach.safi);
            encode_prefixes(&unreach.withdrawn, &mut v);
            v.extend_from_slice(&unreach.raw_withdrawn);
            put_attribute(out, OPTIONAL, type_code::MP_UNREACH_NLRI, &v);
        }
        if announces {
            put_attribute(out, TRANSITIVE, type_code::ORIGIN, &[self.origin as u8]);
            let as_len = if four_octet_as { 4 } else { 2 };
            put_attribute(
                out,
                TRANSITIVE,
                type_code::AS_PATH,
                &encode_as_path(&self.as_path, as_len),
            );
        }
        if let Some(nh) = self.next_hop {
            put_attribute(out, TRANSITIVE, type_code::NEXT_HOP, &nh.octets());
        }
        if let Some(med) = self.med {
            put_attribute(
                out,
                OPTIONAL,
                type_code::MULTI_EXIT_DISC,
                &med.to_be_bytes(),
            );
        }
        if let Some(lp) = self.local_pref {
            put_attribute(out, TRANSITIVE, type_code::LOCAL_PREF, &lp.to_be_bytes());
        }
        if self.atomic_aggregate {
            put_attribute(out, TRANSITIVE, type_code::ATOMIC_AGGREGATE, &[]);
        }
        if let Some(agg) = self.aggregator {
            let mut v = Vec::new();
            if four_octet_as {
                v.put_u32(agg.asn);
            } else {
                v.put_u16(u16::try_from(agg.asn).unwrap_or(AS_TRANS));
            }
            v.extend_from_slice(&agg.address.octets());
            put_attribute(out, OPTIONAL | TRANSITIVE, type_code::AGGREGATOR, &v);
        }
        if !self.communities.is_empty() {
            let v: Vec<u8> = self
                .communities
                .iter()
                .flat_map(|c| c.to_be_bytes())
                .collect();
            put_attribute(out, OPTIONAL | TRANSITIVE, type_code::COMMUNITIES, &v);
        }
        if let Some(id) = self.originator_id {
            put_attribute(out, OPTIONAL, type_code::ORIGINATOR_ID, &id.octets());
        }
        if !self.cluster_list.is_empty() {
            let v: Vec<u8> = self.cluster_list.iter().flat_map(|c| c.octets()).collect();
            put_attribute(out, OPTIONAL, type_code::CLUSTER_LIST, &v);
        }
        if !four_octet_as {
            if announces
                && self
                    .as_path
                    .segments
                    .iter()
                    .flat_map(|s| &s.asns)
                    .any(|&a| a > 0xffff)
            {
                put_attribute(
                    out,
                    OPTIONAL | TRANSITIVE,
                    type_code::AS4_PATH,
                    &encode_as_path(&self.as_path, 4),
                );
            }
            if let Some(agg) = self.aggregator.filter(|a| a.asn > 0xffff) {
                let mut v = agg.asn.to_be_bytes().to_vec();
                v.extend_from_slice(&agg.address.octets());
                put_attribute(out, OPTIONAL | TRANSITIVE, type_code::AS4_AGGREGATOR, &v);
            }
        }
        for raw in &self.unknown {
            put_attribute(out, raw.flags, raw.type_code, &raw.value);
        }
    }
}

/// Encodes AS_PATH segments with `as_len`-octet AS numbers (AS_TRANS for those that do not
/// fit two octets), splitting runs longer than 255.
fn encode_as_path(path: &AsPath, as_len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for seg in &path.segments {
        for chunk in seg.asns.chunks(255) {
            v.put_u8(seg.kind as u8);
            v.put_u8(chunk.len() as u8); // chunks(255)
            for &asn in chunk {
                if as_len == 4 {
                    v.put_u32(asn);
                } else {
                    v.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS));
                }
            }
        }
    }
    v
}

/// Appends one attribute, with the Extended Length bit when the value needs it. A value
/// longer than 65535 octets cannot be sent and is left out (no valid message holds one).
fn put_attribute(out: &mut Vec<u8>, attr_flags: u8, code: u8, value: &[u8]) {
    let attr_flags = attr_flags & !flags::EXTENDED_LENGTH;
    if let Ok(len) = u8::try_from(value.len()) {
        out.put_u8(attr_flags);
        out.put_u8(code);
        out.put_u8(len);
    } else if let Ok(len) = u16::try_from(value.len()) {
        out.put_u8(attr_flags | flags::EXTENDED_LENGTH);
        out.put_u8(code);
        out.put_u16(len);
    } else {
        tracing::warn!(
            code,
            len = value.len(),
            "path attribute too long to encode, left out"
        );
        return;
    }
    out.extend_from_slice(value);
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

    #[test]
    fn long_sequences_are_split_into_segments_of_255() {
        let path = AsPath::from_sequence((0..300).collect());
        let wire = encode_as_path(&path, 4);
        assert_eq!((wire[0], wire[1]), (2, 255));
        assert_eq!((wire[2 + 255 * 4], wire[3 + 255 * 4]), (2, 45));
        let back = decode_as_path(&wire, 4).unwrap();
        assert_eq!(back.path_len(), 300);
    }

    #[test]
    fn as_path_decoding_rejects_what_rfc_7606_calls_malformed() {
        assert!(
            decode_as_path(&[3, 1, 0, 1], 2).is_none(),
            "confederation segments unsupported"
        );
        assert!(decode_as_path(&[2, 0], 2).is_none(), "zero-length segment");
        assert!(decode_as_path(&[2, 2, 0, 1], 2).is_none(), "overrun");
        assert_eq!(decode_as_path(&[], 4), Some(AsPath::default()));
    }
}
