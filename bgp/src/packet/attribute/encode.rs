//! Encoding the Path Attributes field of an UPDATE (RFC 4271 section 4.3), with the
//! AS4_PATH / AS4_AGGREGATOR of RFC 6793 for peers without 4-octet AS numbers.

use super::{AsPath, PathAttributes};
use crate::packet::consts::AS_TRANS;
use crate::packet::consts::{attribute_flags as flags, attribute_type_code as type_code};
use crate::packet::prefix::encode_prefixes;
use crate::packet::wire::Put;

impl PathAttributes {
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
    use super::super::decode::decode_as_path;
    use super::*;

    #[test]
    fn long_sequences_are_split_into_segments_of_255() {
        let path = AsPath::from_sequence((0..300).collect());
        let wire = encode_as_path(&path, 4);
        assert_eq!((wire[0], wire[1]), (2, 255));
        assert_eq!((wire[2 + 255 * 4], wire[3 + 255 * 4]), (2, 45));
        let back = decode_as_path(&wire, 4).unwrap();
        assert_eq!(back.path_len(), 300);
    }
}
