//! Adj-RIB-In (RFC 4271 section 3.2): the routes one peer advertised to us that passed the
//! checks on receipt, one shared path per prefix.
//!
//! What does not pass is treated as withdrawn (RFC 7606 section 2): an UPDATE the codec
//! marked `treat_as_withdraw`, a route with our AS in its AS_PATH (RFC 4271 section 9.1.2),
//! a reflected route that has been through us already (RFC 4456 section 8), a route with no
//! NEXT_HOP. Withdrawing rather than ignoring matters: the route may replace one we hold.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::loc::LocRib;
use super::{Path, PeerInfo, RibConfig, Source};
use crate::packet::{Ipv4Prefix, PathAttributes, Update};

/// The routes learned from one peer: a view of the [`LocRib`], which holds every path
/// (whether best or not) with its source.
#[derive(Clone, Copy, Debug)]
pub struct AdjRibIn<'a> {
    loc: &'a LocRib,
    source: Source,
    /// Paths from `source`, counted by the RIB as they come and go (counting them here
    /// would walk the whole table).
    len: usize,
}

/// An UPDATE after the checks on receipt: the prefixes to withdraw, and the path (not yet
/// interned) the announced prefixes get, `None` when the announcement is treated as withdraw.
#[derive(Debug, PartialEq, Eq)]
pub struct Import {
    pub withdrawn: Vec<Ipv4Prefix>,
    pub announced: Vec<Ipv4Prefix>,
    pub path: Option<Path>,
}

impl<'a> AdjRibIn<'a> {
    pub(crate) fn new(loc: &'a LocRib, source: Source, len: usize) -> Self {
        Self { loc, source, len }
    }

    /// The path the peer announced for `prefix`.
    pub fn get(&self, prefix: &Ipv4Prefix) -> Option<&'a Arc<Path>> {
        self.loc.path_from(prefix, self.source)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every prefix the peer announced (a walk of the whole Loc-RIB).
    pub fn prefixes(&self) -> impl Iterator<Item = Ipv4Prefix> + 'a {
        self.loc.iter_from(self.source).map(|(p, _)| p)
    }

    /// Applies the checks on receipt to an UPDATE from `peer`.
    pub fn import(
        update: &Update,
        key: super::PeerKey,
        peer: &PeerInfo,
        config: &RibConfig,
    ) -> Import {
        let mut withdrawn: Vec<Ipv4Prefix> = update.withdrawn_routes().collect();
        let mut announced: Vec<Ipv4Prefix> = update.announced().collect();
        let path = match (&update.attributes, update.treat_as_withdraw) {
            (Some(attrs), false) if !announced.is_empty() => {
                Self::accept(attrs, update.next_hop(), peer, config).map(|attrs| Path {
                    source: Source::Peer(key),
                    attrs,
                })
            }
            _ => None,
        };
        if path.is_none() {
            withdrawn.append(&mut announced);
        }
        Import {
            withdrawn,
            announced,
            path,
        }
    }

    /// The attributes to store for a route from `peer`, or `None` if it must be treated as
    /// withdrawn.
    fn accept(
        attrs: &PathAttributes,
        next_hop: Option<Ipv4Addr>,
        peer: &PeerInfo,
        config: &RibConfig,
    ) -> Option<PathAttributes> {
        let next_hop = next_hop?;
        if peer.is_ebgp(config) {
            // RFC 4271 section 9.1.2: a route whose AS_PATH holds our AS is a loop.
            if attrs.as_path.contains(config.asn) {
                return None;
            }
        } else {
            // RFC 4456 section 8: our own route reflected back, or one that has passed
            // through our cluster.
            if attrs.originator_id == Some(config.router_id)
                || attrs.cluster_list.contains(&config.cluster_id())
            {
                return None;
            }
        }
        let mut stored = attrs.clone();
        // NLRI is per prefix, not part of the shared path; the next hop is kept in one
        // place whichever way it came (RFC 4760 section 3).
        stored.mp_reach = None;
        stored.mp_unreach = None;
        stored.next_hop = Some(next_hop);
        if peer.is_ebgp(config) {
            // RFC 4271 section 5.1.5: LOCAL_PREF from an external peer is not used; and
            // ORIGINATOR_ID / CLUSTER_LIST are meaningful only inside an AS (RFC 4456).
            stored.local_pref = None;
            stored.originator_id = None;
            stored.cluster_list.clear();
        }
        Some(stored)
    }
}
