//! Adj-RIB-Out (RFC 4271 section 3.2): what we advertised to one peer, and the export rules
//! that decide what a Loc-RIB best path becomes for that peer.
//!
//! - iBGP split horizon (RFC 4271 section 9.2): a route learned from an internal peer is not
//!   sent to other internal peers, unless we reflect (RFC 4456 section 6): routes from clients
//!   go to every peer, routes from non-clients only to clients. A reflected route gets
//!   ORIGINATOR_ID (if absent) and our CLUSTER_ID prepended to CLUSTER_LIST (section 8).
//! - To an external peer (RFC 4271 section 5.1): our AS prepended, NEXT_HOP ours,
//!   LOCAL_PREF removed, MED not passed on (section 5.1.4), no RR attributes.
//! - To an internal peer: NEXT_HOP kept (Calico nodes announce their own address as the
//!   next hop), LOCAL_PREF set (section 5.1.5).
//! - Locally originated routes: ORIGIN IGP, empty AS_PATH, NEXT_HOP our session address.

use std::sync::Arc;

use super::best::DEFAULT_LOCAL_PREF;
use super::intern::Interner;
use super::prefix_map::PrefixMap;
use super::{Path, PeerInfo, PeerKey, RibConfig, Source};
use crate::packet::{Ipv4Prefix, PathAttributes};

/// One change to send to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutChange {
    /// Advertise (or replace) the route. Equal attribute sets are the same `Arc`, so the
    /// runtime can pack the prefixes that share one into a single UPDATE.
    Announce(Ipv4Prefix, Arc<PathAttributes>),
    Withdraw(Ipv4Prefix),
}

/// What we advertised to one peer.
#[derive(Debug, Default)]
pub struct AdjRibOut {
    routes: PrefixMap<Arc<PathAttributes>>,
    /// The last path exported and what it became: consecutive prefixes of one UPDATE share
    /// their path, so this saves re-building and re-interning per prefix.
    last_export: Option<(Arc<Path>, Option<Arc<PathAttributes>>)>,
}

impl AdjRibOut {
    pub fn get(&self, prefix: &Ipv4Prefix) -> Option<&Arc<PathAttributes>> {
        self.routes.get(prefix)
    }

    /// Everything advertised: what to send again on a ROUTE-REFRESH (RFC 2918 section 4).
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Prefix, &Arc<PathAttributes>)> + '_ {
        self.routes.iter().map(|(p, a)| (*p, a))
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Drops the export cache (its source peer went away; a new session under the same key
    /// may export differently).
    pub(crate) fn forget_cached_export(&mut self) {
        self.last_export = None;
    }

    /// Brings the advertisement of `prefix` in line with the Loc-RIB best path `best`
    /// (learned from `from`, `None` for local routes); the change to send, if any.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn update(
        &mut self,
        prefix: Ipv4Prefix,
        best: Option<&Arc<Path>>,
        from: Option<&PeerInfo>,
        to: (PeerKey, &PeerInfo),
        config: &RibConfig,
        interner: &mut Interner<PathAttributes>,
    ) -> Option<OutChange> {
        let exported = best.and_then(|path| match &self.last_export {
            Some((last, out)) if Arc::ptr_eq(last, path) => out.clone(),
            _ => {
                let out = export(path, from, to, config).map(|a| interner.intern(a));
                self.last_export = Some((Arc::clone(path), out.clone()));
                out
            }
        });
        match exported {
            Some(attrs) => {
                if self
                    .routes
                    .get(&prefix)
                    .is_some_and(|held| Arc::ptr_eq(held, &attrs))
                {
                    return None;
                }
                self.routes.insert(prefix, Arc::clone(&attrs));
                Some(OutChange::Announce(prefix, attrs))
            }
            None => self
                .routes
                .remove(&prefix)
                .map(|_| OutChange::Withdraw(prefix)),
        }
    }
}

/// What `path` becomes when sent to peer `to`; `None` if it must not be sent.
pub fn export(
    path: &Path,
    from: Option<&PeerInfo>,
    (to_key, to): (PeerKey, &PeerInfo),
    config: &RibConfig,
) -> Option<PathAttributes> {
    let mut attrs = path.attrs.clone();
    match (path.source, from) {
        // Never back to the peer it came from.
        (Source::Peer(key), _) if key == to_key => return None,
        (Source::Peer(_), Some(from)) if !from.is_ebgp(config) && !to.is_ebgp(config) => {
            // RFC 4456 section 6: split horizon, unless reflected.
            if !(from.rr_client || to.rr_client) {
                return None;
            }
            attrs.originator_id.get_or_insert(from.router_id);
            attrs.cluster_list.insert(0, config.cluster_id());
        }
        (Source::Peer(_), None) => return None,
        _ => {}
    }
    if matches!(path.source, Source::Local) {
        attrs.next_hop = Some(to.local_address);
    }
    if to.is_ebgp(config) {
        // Sender-side loop check: the peer would drop it (RFC 4271 section 9.1.2).
        if attrs.as_path.contains(to.asn) {
            return None;
        }
        attrs.as_path = attrs.as_path.prepend(config.asn);
        attrs.next_hop = Some(to.local_address);
        attrs.local_pref = None;
        if matches!(path.source, Source::Peer(_)) {
            attrs.med = None;
        }
        attrs.originator_id = None;
        attrs.cluster_list.clear();
    } else {
        attrs.local_pref = Some(attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF));
    }
    Some(attrs)
}
