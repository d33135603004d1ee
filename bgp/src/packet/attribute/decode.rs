//! Decoding the Path Attributes field of an UPDATE (RFC 4271 section 4.3) with the error
//! handling of RFC 7606: each malformation is classed as attribute-discard,
//! treat-as-withdraw or session reset.

use std::net::Ipv4Addr;

use super::{Aggregator, AsPath, AsPathSegment, AsPathSegmentType, MpReach, MpUnreach, Origin};
use super::{PathAttributes, RawAttribute};
use crate::packet::consts::update_message_error as err;
use crate::packet::consts::{attribute_flags as flags, attribute_type_code as type_code};
use crate::packet::consts::{AFI_IPV4, AS_TRANS, SAFI_UNICAST};
use crate::packet::notification::Notification;
use crate::packet::prefix::decode_prefixes;
use crate::packet::wire::Reader;

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
pub(super) fn decode_as_path(value: &[u8], as_len: usize) -> Option<AsPath> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
