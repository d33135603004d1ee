//! Routing information bases (RFC 4271 section 3.2) and the Decision Process (section 9.1).
//!
//! [`Rib`] ties them together: one [`LocRib`] with every candidate path per prefix (the
//! best apart), of which each peer's [`AdjRibIn`] (routes as received, after the checks on
//! receipt) is a view, and per peer an [`AdjRibOut`] (what we advertised). Each operation
//! reports what changed into a [`RibChanges`]: next hops for the dataplane and UPDATE
//! contents per peer. Pure like the FSM: no sockets, no clock.
//!
//! Memory: attribute sets are interned ([`Interner`]), so a prefix learned from one peer
//! costs one 16-octet Loc-RIB entry (its 8-octet key and a pointer), plus one in each
//! Adj-RIB-Out it is advertised in.

pub mod adj_in;
pub mod adj_out;
pub mod best;
mod graceful;
pub mod intern;
pub mod loc;
pub mod prefix_map;

use std::net::Ipv4Addr;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

pub use adj_in::{AdjRibIn, Import};
pub use adj_out::{export, AdjRibOut, OutChange};
pub use best::{select_best, Candidate, SourceInfo, DEFAULT_LOCAL_PREF};
pub use intern::Interner;
pub use loc::{BestChange, Inserted, LocRib};
pub use prefix_map::PrefixMap;

use crate::packet::{AsPath, Ipv4Prefix, Origin, PathAttributes, Update};

/// The local speaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RibConfig {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// CLUSTER_ID when reflecting (RFC 4456 section 7); the router id when unset.
    pub cluster_id: Option<Ipv4Addr>,
}

impl RibConfig {
    pub fn cluster_id(&self) -> Ipv4Addr {
        self.cluster_id.unwrap_or(self.router_id)
    }
}

/// The runtime's name for a peer (any value it likes, unique among the peers up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub u32);

/// A peer whose session is Established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's address (selection step 9.1.2.2 g).
    pub address: Ipv4Addr,
    pub asn: u32,
    /// Its BGP Identifier, from its OPEN.
    pub router_id: Ipv4Addr,
    /// Our address on the session: the NEXT_HOP we announce.
    pub local_address: Ipv4Addr,
    /// The peer is a route reflector client of ours (RFC 4456).
    pub rr_client: bool,
}

impl PeerInfo {
    pub fn is_ebgp(&self, config: &RibConfig) -> bool {
        self.asn != config.asn
    }
}

/// Where a path came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Originated by this node (its IPAM blocks).
    Local,
    Peer(PeerKey),
}

/// A route's path: its attributes and who it came from. Shared between all the prefixes
/// announced with it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path {
    pub source: Source,
    pub attrs: PathAttributes,
}

/// A change of the best next hop for a prefix, for the dataplane. `next_hop` is `None` when
/// no learned route is left, or when the best route is our own (the node forwards to its
/// own blocks by itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FibChange {
    pub prefix: Ipv4Prefix,
    pub next_hop: Option<Ipv4Addr>,
}

/// What a RIB operation changed; drained by the runtime.
#[derive(Debug, Default)]
pub struct RibChanges {
    pub fib: Vec<FibChange>,
    pub out: Vec<(PeerKey, OutChange)>,
}

/// Errors of the RIB's API (the runtime's mistakes, not the peers').
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RibError {
    #[error("peer {0:?} is already up")]
    PeerAlreadyUp(PeerKey),
    #[error("peer {0:?} is not up")]
    UnknownPeer(PeerKey),
}

struct PeerRibs {
    info: PeerInfo,
    /// Paths held from the peer (the size of its Adj-RIB-In).
    received: usize,
    adj_out: AdjRibOut,
    /// False while the peer restarts and we keep its routes (RFC 4724 section 4.2); nothing
    /// is advertised to it then.
    up: bool,
    /// Its routes kept from before a restart that it has not sent again yet.
    stale: FxHashSet<Ipv4Prefix>,
}

/// Adj-RIBs-In, Loc-RIB and Adj-RIBs-Out of one speaker.
pub struct Rib {
    config: RibConfig,
    peers: FxHashMap<PeerKey, PeerRibs>,
    /// Locally originated prefixes held (they are in the Loc-RIB like a peer's routes).
    originated: usize,
    loc: LocRib,
    paths: Interner<Path>,
    exported: Interner<PathAttributes>,
}

impl Rib {
    pub fn new(config: RibConfig) -> Self {
        Self {
            config,
            peers: FxHashMap::default(),
            originated: 0,
            loc: LocRib::default(),
            paths: Interner::default(),
            exported: Interner::default(),
        }
    }

    pub fn config(&self) -> &RibConfig {
        &self.config
    }

    pub fn loc_rib(&self) -> &LocRib {
        &self.loc
    }

    /// The routes held from `peer` (a view of the Loc-RIB).
    pub fn adj_rib_in(&self, peer: PeerKey) -> Option<AdjRibIn<'_>> {
        let held = self.peers.get(&peer)?;
        Some(AdjRibIn::new(&self.loc, Source::Peer(peer), held.received))
    }

    /// The prefixes this node originates (a view of the Loc-RIB).
    pub fn originated(&self) -> AdjRibIn<'_> {
        AdjRibIn::new(&self.loc, Source::Local, self.originated)
    }

    pub fn adj_rib_out(&self, peer: PeerKey) -> Option<&AdjRibOut> {
        self.peers.get(&peer).map(|p| &p.adj_out)
    }

    /// Distinct shared paths held (for memory reports).
    pub fn distinct_paths(&self) -> usize {
        self.paths.len()
    }

    /// A session came up: the peer is sent every best path it may have.
    /// A peer back from a restart keeps its stale routes until [`Rib::sweep_stale`].
    pub fn peer_up(
        &mut self,
        key: PeerKey,
        info: PeerInfo,
        changes: &mut RibChanges,
    ) -> Result<(), RibError> {
        let (received, stale) = match self.peers.remove(&key) {
            Some(peer) if peer.up => {
                self.peers.insert(key, peer);
                return Err(RibError::PeerAlreadyUp(key));
            }
            Some(restarted) => (restarted.received, restarted.stale),
            None => (0, FxHashSet::default()),
        };
        let mut adj_out = AdjRibOut::default();
        for (prefix, best) in self.loc.iter_best() {
            let from = source_peer(&self.peers, best.source);
            let change = adj_out.update(
                prefix,
                Some(best),
                from.as_ref(),
                (key, &info),
                &self.config,
                &mut self.exported,
            );
            changes.out.extend(change.map(|c| (key, c)));
        }
        self.peers.insert(
            key,
            PeerRibs {
                info,
                received,
                adj_out,
                up: true,
                stale,
            },
        );
        Ok(())
    }

    /// A session went down: its routes leave the Loc-RIB (and are withdrawn from the
    /// others where they were best).
    pub fn peer_down(&mut self, key: PeerKey, changes: &mut RibChanges) -> Result<(), RibError> {
        // Out of the table first, so that nothing is computed for it any more.
        let gone = self.peers.remove(&key).ok_or(RibError::UnknownPeer(key))?;
        for peer in self.peers.values_mut() {
            peer.adj_out.forget_cached_export();
        }
        let source = Source::Peer(key);
        let held: Vec<Ipv4Prefix> = self.loc.iter_from(source).map(|(p, _)| p).collect();
        for prefix in held {
            self.loc_remove(prefix, source, changes);
        }
        drop(gone);
        self.paths.sweep();
        self.exported.sweep();
        Ok(())
    }

    /// An UPDATE from an Established peer.
    pub fn update(
        &mut self,
        key: PeerKey,
        update: &Update,
        changes: &mut RibChanges,
    ) -> Result<(), RibError> {
        let peer = self
            .peers
            .get_mut(&key)
            .filter(|p| p.up)
            .ok_or(RibError::UnknownPeer(key))?;
        let info = peer.info;
        let import = AdjRibIn::import(update, key, &info, &self.config);
        // Sent again (or withdrawn) since the restart: no longer stale.
        if !peer.stale.is_empty() {
            for prefix in import.withdrawn.iter().chain(&import.announced) {
                peer.stale.remove(prefix);
            }
        }
        for prefix in import.withdrawn {
            self.withdraw_path(prefix, Source::Peer(key), changes);
        }
        if let Some(path) = import.path {
            let path = self.paths.intern(path);
            for prefix in import.announced {
                self.announce_path(prefix, Arc::clone(&path), changes);
            }
        }
        Ok(())
    }

    /// Originates `prefix` (one of the node's blocks): ORIGIN IGP, empty AS_PATH.
    pub fn originate(&mut self, prefix: Ipv4Prefix, changes: &mut RibChanges) {
        let attrs = PathAttributes {
            origin: Origin::Igp,
            as_path: AsPath::default(),
            ..Default::default()
        };
        let path = self.paths.intern(Path {
            source: Source::Local,
            attrs,
        });
        self.announce_path(prefix, path, changes);
    }

    /// Stops originating `prefix`.
    pub fn withdraw_local(&mut self, prefix: Ipv4Prefix, changes: &mut RibChanges) {
        self.withdraw_path(prefix, Source::Local, changes);
    }

    fn announce_path(&mut self, prefix: Ipv4Prefix, path: Arc<Path>, changes: &mut RibChanges) {
        let source = path.source;
        if let Source::Peer(key) = source {
            if !self.peers.contains_key(&key) {
                return;
            }
        }
        let (peers, config) = (&self.peers, &self.config);
        let info = |s: Source| source_info(peers, config, s);
        let inserted = self.loc.insert(prefix, path, &info);
        if let (None, Some(held)) = (&inserted.replaced, self.held_from(source)) {
            *held += 1;
        }
        if let Some(best) = inserted.best {
            self.best_changed(prefix, best, changes);
        }
    }

    fn withdraw_path(&mut self, prefix: Ipv4Prefix, source: Source, changes: &mut RibChanges) {
        if let Source::Peer(key) = source {
            if !self.peers.contains_key(&key) {
                return;
            }
        }
        self.loc_remove(prefix, source, changes);
    }

    /// Removes the path `source` had for `prefix`, if any.
    fn loc_remove(&mut self, prefix: Ipv4Prefix, source: Source, changes: &mut RibChanges) {
        let (peers, config) = (&self.peers, &self.config);
        let info = |s: Source| source_info(peers, config, s);
        let (removed, best) = self.loc.remove(prefix, source, &info);
        if let (Some(_), Some(held)) = (&removed, self.held_from(source)) {
            *held = held.saturating_sub(1);
        }
        if let Some(best) = best {
            self.best_changed(prefix, best, changes);
        }
    }

    /// The count of paths held from `source`; `None` for a peer that is gone.
    fn held_from(&mut self, source: Source) -> Option<&mut usize> {
        match source {
            Source::Local => Some(&mut self.originated),
            Source::Peer(key) => self.peers.get_mut(&key).map(|p| &mut p.received),
        }
    }

    /// The best path of `prefix` changed: tell the dataplane if the next hop moved, and
    /// bring every Adj-RIB-Out in line.
    fn best_changed(&mut self, prefix: Ipv4Prefix, change: BestChange, changes: &mut RibChanges) {
        let next_hop = |p: &Option<Arc<Path>>| {
            p.as_ref()
                .filter(|p| p.source != Source::Local)
                .and_then(|p| p.attrs.next_hop)
        };
        let (old_hop, new_hop) = (next_hop(&change.old), next_hop(&change.new));
        if old_hop != new_hop {
            changes.fib.push(FibChange {
                prefix,
                next_hop: new_hop,
            });
        }
        let best = change.new;
        let from = best
            .as_ref()
            .and_then(|b| source_peer(&self.peers, b.source));
        for (key, peer) in self.peers.iter_mut().filter(|(_, p)| p.up) {
            let change = peer.adj_out.update(
                prefix,
                best.as_ref(),
                from.as_ref(),
                (*key, &peer.info),
                &self.config,
                &mut self.exported,
            );
            changes.out.extend(change.map(|c| (*key, c)));
        }
    }
}

fn source_peer(peers: &FxHashMap<PeerKey, PeerRibs>, source: Source) -> Option<PeerInfo> {
    match source {
        Source::Local => None,
        Source::Peer(key) => peers.get(&key).map(|p| p.info),
    }
}

fn source_info(
    peers: &FxHashMap<PeerKey, PeerRibs>,
    config: &RibConfig,
    source: Source,
) -> SourceInfo {
    match source_peer(peers, source) {
        None => SourceInfo {
            local: true,
            ebgp: false,
            router_id: config.router_id,
            address: Ipv4Addr::UNSPECIFIED,
        },
        Some(peer) => SourceInfo {
            local: false,
            ebgp: peer.is_ebgp(config),
            router_id: peer.router_id,
            address: peer.address,
        },
    }
}

#[cfg(test)]
mod tests {
    //! The Adj-RIBs-In as views of the one Loc-RIB: each peer sees its own paths, best or
    //! not, through announcements, implicit and explicit withdrawals and the other peer
    //! going down.

    use super::*;

    pub(super) fn prefix(third: u8) -> Ipv4Prefix {
        Ipv4Prefix::containing(Ipv4Addr::new(10, 1, third, 0), 24).unwrap()
    }

    /// An internal peer (same AS); router ids order them: peer 1 wins ties.
    pub(super) fn peer(n: u8) -> PeerInfo {
        PeerInfo {
            address: Ipv4Addr::new(172, 16, 0, n),
            asn: 64512,
            router_id: Ipv4Addr::new(10, 0, 0, n),
            local_address: Ipv4Addr::new(172, 16, 0, 100),
            rr_client: false,
        }
    }

    pub(super) fn announce(prefixes: &[Ipv4Prefix], next_hop: u8, local_pref: u32) -> Update {
        Update {
            nlri: prefixes.to_vec(),
            attributes: Some(PathAttributes {
                next_hop: Some(Ipv4Addr::new(172, 16, 0, next_hop)),
                local_pref: Some(local_pref),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn withdraw(prefixes: &[Ipv4Prefix]) -> Update {
        Update {
            withdrawn: prefixes.to_vec(),
            ..Default::default()
        }
    }

    fn held(rib: &Rib, key: u32) -> Vec<Ipv4Prefix> {
        let view = rib.adj_rib_in(PeerKey(key)).expect("peer up");
        let mut prefixes: Vec<Ipv4Prefix> = view.prefixes().collect();
        prefixes.sort();
        assert_eq!(view.len(), prefixes.len(), "the count matches the table");
        prefixes
    }

    fn next_hop_of(rib: &Rib, key: u32, p: Ipv4Prefix) -> Option<Ipv4Addr> {
        rib.adj_rib_in(PeerKey(key))?.get(&p)?.attrs.next_hop
    }

    #[test]
    fn each_peer_sees_its_own_paths_through_every_change() {
        let mut rib = Rib::new(RibConfig {
            asn: 64512,
            router_id: Ipv4Addr::new(10, 0, 0, 100),
            cluster_id: None,
        });
        let mut changes = RibChanges::default();
        rib.peer_up(PeerKey(1), peer(1), &mut changes).unwrap();
        rib.peer_up(PeerKey(2), peer(2), &mut changes).unwrap();
        let (a, b, c) = (prefix(1), prefix(2), prefix(3));

        // Peer 1 announces a, b; peer 2 announces b, c with a higher LOCAL_PREF.
        rib.update(PeerKey(1), &announce(&[a, b], 1, 100), &mut changes)
            .unwrap();
        rib.update(PeerKey(2), &announce(&[b, c], 2, 200), &mut changes)
            .unwrap();
        assert_eq!(held(&rib, 1), vec![a, b]);
        assert_eq!(held(&rib, 2), vec![b, c]);
        assert_eq!(
            rib.loc_rib().best(&b).unwrap().source,
            Source::Peer(PeerKey(2))
        );
        // Peer 1's path for b is not best but still in its Adj-RIB-In.
        assert_eq!(next_hop_of(&rib, 1, b), Some(Ipv4Addr::new(172, 16, 0, 1)));

        // Implicit withdraw (RFC 4271 section 3.1): peer 2 re-announces b, now less
        // preferred; peer 1's path becomes best, and the dataplane is told.
        changes.fib.clear();
        rib.update(PeerKey(2), &announce(&[b], 3, 50), &mut changes)
            .unwrap();
        assert_eq!(held(&rib, 2), vec![b, c], "replaced, not added");
        assert_eq!(next_hop_of(&rib, 2, b), Some(Ipv4Addr::new(172, 16, 0, 3)));
        assert_eq!(
            rib.loc_rib().best(&b).unwrap().source,
            Source::Peer(PeerKey(1))
        );
        assert_eq!(
            changes.fib,
            vec![FibChange {
                prefix: b,
                next_hop: Some(Ipv4Addr::new(172, 16, 0, 1))
            }]
        );

        // Explicit withdraw of a path that is not best: no FIB change, gone from the view.
        changes.fib.clear();
        rib.update(PeerKey(2), &withdraw(&[b]), &mut changes)
            .unwrap();
        assert!(changes.fib.is_empty());
        assert_eq!(held(&rib, 2), vec![c]);
        assert_eq!(rib.loc_rib().paths(&b).len(), 1);
        // Withdrawing it again changes nothing and does not miscount.
        rib.update(PeerKey(2), &withdraw(&[b]), &mut changes)
            .unwrap();
        assert_eq!(held(&rib, 2), vec![c]);

        // Peer 2 announces b again (now better), then goes down: b falls back to peer 1,
        // c is gone, and peer 1's view is untouched.
        rib.update(PeerKey(2), &announce(&[b], 2, 200), &mut changes)
            .unwrap();
        changes.fib.clear();
        rib.peer_down(PeerKey(2), &mut changes).unwrap();
        let mut fib = changes.fib.clone();
        fib.sort_by_key(|f| f.prefix);
        assert_eq!(
            fib,
            vec![
                FibChange {
                    prefix: b,
                    next_hop: Some(Ipv4Addr::new(172, 16, 0, 1))
                },
                FibChange {
                    prefix: c,
                    next_hop: None
                },
            ]
        );
        assert!(rib.adj_rib_in(PeerKey(2)).is_none());
        assert_eq!(held(&rib, 1), vec![a, b]);
        assert_eq!(rib.loc_rib().len(), 2);

        // The peer comes back: its view starts empty.
        rib.peer_up(PeerKey(2), peer(2), &mut changes).unwrap();
        assert!(rib.adj_rib_in(PeerKey(2)).unwrap().is_empty());
    }

    #[test]
    fn originated_prefixes_are_a_view_too() {
        let mut rib = Rib::new(RibConfig {
            asn: 64512,
            router_id: Ipv4Addr::new(10, 0, 0, 100),
            cluster_id: None,
        });
        let mut changes = RibChanges::default();
        rib.originate(prefix(9), &mut changes);
        rib.originate(prefix(9), &mut changes);
        assert_eq!(rib.originated().len(), 1);
        assert_eq!(
            rib.originated().prefixes().collect::<Vec<_>>(),
            vec![prefix(9)]
        );
        rib.withdraw_local(prefix(9), &mut changes);
        assert!(rib.originated().is_empty() && rib.loc_rib().is_empty());
    }
}
