//! The Receiving Speaker's side of Graceful Restart (RFC 4724 section 4.2): a restarting
//! peer's routes stay in the Loc-RIB and the FIB, marked stale, while it comes back; what
//! it does not send again by its End-of-RIB (or by the time the runtime gives it) is swept.
//!
//! The runtime decides when: [`Rib::peer_restarting`] when the session drops in a way that
//! keeps routes, [`Rib::sweep_stale`] on the peer's End-of-RIB, when its new OPEN says its
//! forwarding state was lost, or when a timer runs out.

use super::{AdjRibOut, Ipv4Prefix, PeerKey, Rib, RibChanges, RibError, Source};

impl Rib {
    /// The session with `key` dropped and the peer may be restarting: keep its routes as
    /// they are (best paths, FIB, what the other peers were sent), all of them stale.
    pub fn peer_restarting(&mut self, key: PeerKey) -> Result<(), RibError> {
        let source = Source::Peer(key);
        let held: Vec<Ipv4Prefix> = self.loc.iter_from(source).map(|(p, _)| p).collect();
        let peer = self
            .peers
            .get_mut(&key)
            .filter(|p| p.up)
            .ok_or(RibError::UnknownPeer(key))?;
        peer.up = false;
        // A route sent again since an earlier restart may be stale again: all of them are.
        peer.stale = held.into_iter().collect();
        // Nothing goes to a peer without a session; it gets the whole table when it is back.
        peer.adj_out = AdjRibOut::default();
        Ok(())
    }

    /// True while `key`'s routes are kept through a restart (its session is not up).
    pub fn is_restarting(&self, key: PeerKey) -> bool {
        self.peers.get(&key).is_some_and(|p| !p.up)
    }

    /// Routes of `key` kept from before its restart and not sent again yet.
    pub fn stale_count(&self, key: PeerKey) -> usize {
        self.peers.get(&key).map_or(0, |p| p.stale.len())
    }

    /// Removes `key`'s stale routes. A peer that is still not back is forgotten altogether
    /// (its restart time is over). Returns how many routes went.
    pub fn sweep_stale(&mut self, key: PeerKey, changes: &mut RibChanges) -> usize {
        let Some(peer) = self.peers.get_mut(&key) else {
            return 0;
        };
        if !peer.up {
            let held = peer.received;
            let _ = self.peer_down(key, changes);
            return held;
        }
        let stale = std::mem::take(&mut peer.stale);
        let swept = stale.len();
        for prefix in stale {
            self.loc_remove(prefix, Source::Peer(key), changes);
        }
        self.paths.sweep();
        self.exported.sweep();
        swept
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::super::tests::{announce, peer, prefix};
    use super::super::{FibChange, RibConfig};
    use super::*;

    fn rib() -> Rib {
        Rib::new(RibConfig {
            asn: 64512,
            router_id: Ipv4Addr::new(10, 0, 0, 100),
            cluster_id: None,
        })
    }

    #[test]
    fn a_restarting_peers_routes_stay_until_swept_and_what_it_sends_again_survives() {
        let mut rib = rib();
        let mut changes = RibChanges::default();
        let (a, b, c) = (prefix(1), prefix(2), prefix(3));
        rib.peer_up(PeerKey(1), peer(1), &mut changes).unwrap();
        rib.peer_up(PeerKey(2), peer(2), &mut changes).unwrap();
        rib.update(PeerKey(1), &announce(&[a, b], 1, 100), &mut changes)
            .unwrap();

        // The session drops: nothing changes for the dataplane or the other peer.
        let mut changes = RibChanges::default();
        rib.peer_restarting(PeerKey(1)).unwrap();
        assert!(changes.fib.is_empty() && changes.out.is_empty());
        assert!(rib.is_restarting(PeerKey(1)));
        assert_eq!(rib.stale_count(PeerKey(1)), 2);
        assert_eq!(rib.adj_rib_in(PeerKey(1)).unwrap().len(), 2);
        assert!(rib.loc_rib().best(&a).is_some());
        // A route originated meanwhile is not advertised to the one away.
        rib.originate(c, &mut changes);
        assert!(!changes.out.is_empty());
        assert!(changes.out.iter().all(|(k, _)| *k != PeerKey(1)));
        // While it is away it cannot send anything.
        assert_eq!(
            rib.update(PeerKey(1), &announce(&[c], 1, 100), &mut changes),
            Err(RibError::UnknownPeer(PeerKey(1)))
        );

        // It is back: it gets the whole table, and sends `a` again (with a new next hop).
        let mut changes = RibChanges::default();
        rib.peer_up(PeerKey(1), peer(1), &mut changes).unwrap();
        assert!(matches!(
            changes.out.as_slice(),
            [(PeerKey(1), crate::rib::OutChange::Announce(p, _))] if *p == c
        ));
        assert!(!rib.is_restarting(PeerKey(1)));
        rib.update(PeerKey(1), &announce(&[a], 9, 100), &mut changes)
            .unwrap();
        assert_eq!(rib.stale_count(PeerKey(1)), 1);

        // End-of-RIB: `b`, not sent again, goes; `a` stays with its new next hop.
        let mut changes = RibChanges::default();
        assert_eq!(rib.sweep_stale(PeerKey(1), &mut changes), 1);
        assert_eq!(
            changes.fib,
            vec![FibChange {
                prefix: b,
                next_hop: None
            }]
        );
        assert_eq!(rib.adj_rib_in(PeerKey(1)).unwrap().len(), 1);
        assert_eq!(
            rib.loc_rib().best(&a).unwrap().attrs.next_hop,
            Some(Ipv4Addr::new(172, 16, 0, 9))
        );
        assert_eq!(rib.sweep_stale(PeerKey(1), &mut changes), 0);
    }

    #[test]
    fn a_peer_that_does_not_come_back_in_time_is_forgotten() {
        let mut rib = rib();
        let mut changes = RibChanges::default();
        rib.peer_up(PeerKey(1), peer(1), &mut changes).unwrap();
        rib.update(
            PeerKey(1),
            &announce(&[prefix(1), prefix(2)], 1, 100),
            &mut changes,
        )
        .unwrap();
        rib.peer_restarting(PeerKey(1)).unwrap();
        let mut changes = RibChanges::default();
        assert_eq!(rib.sweep_stale(PeerKey(1), &mut changes), 2);
        assert_eq!(changes.fib.len(), 2);
        assert!(changes.fib.iter().all(|f| f.next_hop.is_none()));
        assert!(rib.adj_rib_in(PeerKey(1)).is_none() && rib.loc_rib().is_empty());
        // Back after that: a new peer with an empty view.
        rib.peer_up(PeerKey(1), peer(1), &mut changes).unwrap();
        assert!(rib.adj_rib_in(PeerKey(1)).unwrap().is_empty());
        assert_eq!(rib.stale_count(PeerKey(1)), 0);
    }

    #[test]
    fn restarting_twice_or_when_not_up_is_refused() {
        let mut rib = rib();
        let mut changes = RibChanges::default();
        assert_eq!(
            rib.peer_restarting(PeerKey(1)),
            Err(RibError::UnknownPeer(PeerKey(1)))
        );
        rib.peer_up(PeerKey(1), peer(1), &mut changes).unwrap();
        rib.peer_restarting(PeerKey(1)).unwrap();
        assert_eq!(
            rib.peer_restarting(PeerKey(1)),
            Err(RibError::UnknownPeer(PeerKey(1)))
        );
        // A hard down while restarting drops everything.
        rib.peer_down(PeerKey(1), &mut changes).unwrap();
        assert!(rib.adj_rib_in(PeerKey(1)).is_none());
    }
}
