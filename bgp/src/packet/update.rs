//! UPDATE message (RFC 4271 section 4.3).
//!
//! ```text
//! +-----------------------------------------------------+
//! |   Withdrawn Routes Length (2 octets)                |
//! +-----------------------------------------------------+
//! |   Withdrawn Routes (variable)                       |
//! +-----------------------------------------------------+
//! |   Total Path Attribute Length (2 octets)            |
//! +-----------------------------------------------------+
//! |   Path Attributes (variable)                        |
//! +-----------------------------------------------------+
//! |   Network Layer Reachability Information (variable) |
//! +-----------------------------------------------------+
//! ```
//! Each prefix in Withdrawn Routes and NLRI is `<length (1 octet), prefix (ceil(length/8)
//! octets)>`.

use std::net::Ipv4Addr;

use super::attribute::{MpUnreach, PathAttributes};
use super::consts::{AFI_IPV4, SAFI_UNICAST};
use super::context::EncodeContext;
use super::notification::Notification;
use super::prefix::{Ipv4Prefix, Nlri};

/// An UPDATE: routes withdrawn, and routes announced with their path attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Update {
    /// IPv4 unicast prefixes no longer reachable (the classic Withdrawn Routes field; an
    /// UPDATE treated as withdraw also has its announced prefixes moved here).
    pub withdrawn: Vec<Ipv4Prefix>,
    /// The path attributes, `None` when the UPDATE carries none (withdraw-only).
    pub attributes: Option<PathAttributes>,
    /// IPv4 unicast prefixes announced with `attributes` (the classic NLRI field).
    pub nlri: Vec<Ipv4Prefix>,
    /// Set on decode when an attribute was malformed in a way RFC 7606 section 7 handles by
    /// "treat-as-withdraw": every prefix the UPDATE announced (NLRI and MP_REACH_NLRI) has
    /// been moved to `withdrawn`, `nlri` is empty and `attributes` is `None`.
    /// Never encoded.
    pub treat_as_withdraw: bool,
    /// The first malformation found on decode that did not reset the session: what
    /// RFC 4271 section 6.3 would have sent, kept so the session can log it (RFC 7606
    /// section 6). With `treat_as_withdraw` false it names an attribute that was discarded.
    /// Never encoded.
    pub malformation: Option<Notification>,
}

impl Update {
    /// The End-of-RIB marker for IPv4 unicast: an UPDATE with nothing in it
    /// (RFC 4724 section 2).
    pub fn end_of_rib() -> Self {
        Self::default()
    }

    /// The End-of-RIB marker of another family: an UPDATE whose only attribute is an empty
    /// MP_UNREACH_NLRI (RFC 4724 section 2).
    pub fn end_of_rib_for(afi: u16, safi: u8) -> Self {
        if (afi, safi) == (AFI_IPV4, SAFI_UNICAST) {
            return Self::end_of_rib();
        }
        let unreach = MpUnreach {
            afi,
            safi,
            withdrawn: Vec::new(),
            raw_withdrawn: Vec::new(),
        };
        Self {
            attributes: Some(PathAttributes {
                mp_unreach: Some(unreach),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The family this UPDATE is the End-of-RIB marker of, if it is one (RFC 4724 section 2;
    /// an empty MP_UNREACH_NLRI for IPv4 unicast counts too).
    pub fn end_of_rib_family(&self) -> Option<(u16, u8)> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || self.treat_as_withdraw {
            return None;
        }
        match &self.attributes {
            None => Some((AFI_IPV4, SAFI_UNICAST)),
            Some(a) => match (&a.mp_unreach, &a.mp_reach) {
                (Some(u), None)
                    if u.withdrawn.is_empty()
                        && u.raw_withdrawn.is_empty()
                        && *a
                            == (PathAttributes {
                                mp_unreach: Some(u.clone()),
                                ..Default::default()
                            }) =>
                {
                    Some((u.afi, u.safi))
                }
                _ => None,
            },
        }
    }

    /// Every IPv4 unicast prefix this UPDATE announces: the NLRI field and MP_REACH_NLRI for
    /// AFI 1 / SAFI 1 (RFC 4760 allows either).
    pub fn announced(&self) -> impl Iterator<Item = Ipv4Prefix> + '_ {
        let mp = self
            .attributes
            .as_ref()
            .and_then(|a| a.mp_reach.as_ref())
            .filter(|r| (r.afi, r.safi) == (AFI_IPV4, SAFI_UNICAST))
            .map(|r| r.nlri.as_slice())
            .unwrap_or(&[]);
        self.nlri.iter().chain(mp).copied()
    }

    /// Every IPv4 unicast prefix this UPDATE withdraws: the Withdrawn Routes field and
    /// MP_UNREACH_NLRI for AFI 1 / SAFI 1.
    pub fn withdrawn_routes(&self) -> impl Iterator<Item = Ipv4Prefix> + '_ {
        let mp = self
            .attributes
            .as_ref()
            .and_then(|a| a.mp_unreach.as_ref())
            .filter(|u| (u.afi, u.safi) == (AFI_IPV4, SAFI_UNICAST))
            .map(|u| u.withdrawn.as_slice())
            .unwrap_or(&[]);
        self.withdrawn.iter().chain(mp).copied()
    }

    /// The IPv4 next hop of the announced routes: NEXT_HOP for the NLRI field, or the
    /// MP_REACH_NLRI next hop (RFC 4760 section 3).
    pub fn next_hop(&self) -> Option<Ipv4Addr> {
        let a = self.attributes.as_ref()?;
        a.next_hop
            .or_else(|| a.mp_reach.as_ref().and_then(|r| r.ipv4_next_hop()))
    }
}

use super::consts::update_message_error as err;
use super::consts::{attribute_type_code, HEADER_LEN, MAX_MESSAGE_LEN};
use super::prefix::{decode_prefixes, encode_prefixes};
use super::wire::{patch_len16, Put, Reader};

impl Update {
    /// Decodes an UPDATE body (after the header), with RFC 4271 section 6.3 as revised by
    /// RFC 7606: `Err` only where the session must be reset.
    pub(crate) fn decode(body: &[u8], four_octet_as: bool) -> Result<Update, Notification> {
        let malformed_list = || Notification::update(err::MALFORMED_ATTRIBUTE_LIST, Vec::new());
        let invalid_network = |_| Notification::update(err::INVALID_NETWORK_FIELD, Vec::new());
        let mut r = Reader::new(body);
        // RFC 4271 section 6.3: lengths that overrun the message are a Malformed Attribute
        // List.
        let withdrawn_len = r.u16().ok_or_else(malformed_list)?;
        let withdrawn = r
            .take(usize::from(withdrawn_len))
            .ok_or_else(malformed_list)?;
        let attributes_len = r.u16().ok_or_else(malformed_list)?;
        let attributes = r
            .take(usize::from(attributes_len))
            .ok_or_else(malformed_list)?;
        // RFC 7606 section 5.3: a syntax error in either prefix field resets the session.
        let mut update = Update {
            withdrawn: decode_prefixes(withdrawn).map_err(invalid_network)?,
            nlri: decode_prefixes(r.rest()).map_err(invalid_network)?,
            ..Default::default()
        };
        if !attributes.is_empty() {
            let decoded =
                PathAttributes::decode(attributes, !update.nlri.is_empty(), four_octet_as)?;
            update.attributes = Some(decoded.attributes);
            update.treat_as_withdraw = decoded.treat_as_withdraw;
            update.malformation = decoded.malformation;
        } else if !update.nlri.is_empty() {
            // Routes with no attributes at all: ORIGIN is the first of those missing
            // (RFC 7606 section 3 (d)).
            update.treat_as_withdraw = true;
            update.malformation = Some(Notification::update(
                err::MISSING_WELL_KNOWN_ATTRIBUTE,
                vec![attribute_type_code::ORIGIN],
            ));
        }
        if update.treat_as_withdraw {
            update.withdraw_everything();
        }
        Ok(update)
    }

    /// Treat-as-withdraw (RFC 7606 section 2): every IPv4 unicast route the UPDATE names,
    /// announced or withdrawn, ends up in `withdrawn`; the attributes are dropped.
    fn withdraw_everything(&mut self) {
        let mut withdrawn: Vec<Ipv4Prefix> = self.withdrawn_routes().collect();
        withdrawn.extend(self.announced());
        self.withdrawn = withdrawn;
        self.nlri.clear();
        self.attributes = None;
    }

    /// Appends the UPDATE body.
    pub(crate) fn encode(&self, four_octet_as: bool, out: &mut Vec<u8>) {
        let at = out.len();
        out.put_u16(0);
        encode_prefixes(&self.withdrawn, out);
        patch_len16(out, at);

        let at = out.len();
        out.put_u16(0);
        if let Some(attributes) = &self.attributes {
            let announces = !self.nlri.is_empty() || attributes.mp_reach.is_some();
            attributes.encode(announces, four_octet_as, out);
        }
        patch_len16(out, at);

        encode_prefixes(&self.nlri, out);
    }

    /// Splits announcements and withdrawals into UPDATEs that each fit the 4096-octet limit
    /// (RFC 4271 section 4.1): withdrawals first, then the `nlri` with `attributes`
    /// repeated in every UPDATE that carries some. Returns no UPDATE when both lists are
    /// empty.
    pub fn pack(
        withdrawn: &[Ipv4Prefix],
        attributes: &PathAttributes,
        nlri: &[Ipv4Prefix],
        cx: &EncodeContext,
    ) -> Vec<Update> {
        // Header, two length fields.
        let room = MAX_MESSAGE_LEN - HEADER_LEN - 4;
        let mut updates = Vec::new();

        let mut current = Update::default();
        let mut used = 0;
        for p in withdrawn {
            if used + p.encoded_len() > room {
                updates.push(std::mem::take(&mut current));
                used = 0;
            }
            current.withdrawn.push(*p);
            used += p.encoded_len();
        }

        if !nlri.is_empty() {
            let mut attrs_len = Vec::new();
            attributes.encode(true, cx.four_octet_as, &mut attrs_len);
            let attrs_len = attrs_len.len();
            for p in nlri {
                let starts_attrs = current.attributes.is_none();
                let cost = p.encoded_len() + if starts_attrs { attrs_len } else { 0 };
                if used + cost > room && (used > 0) {
                    updates.push(std::mem::take(&mut current));
                    used = 0;
                }
                if current.attributes.is_none() {
                    current.attributes = Some(attributes.clone());
                    used += attrs_len;
                }
                current.nlri.push(*p);
                used += p.encoded_len();
            }
        }
        if !current.withdrawn.is_empty() || !current.nlri.is_empty() {
            updates.push(current);
        }
        updates
    }
}
