//! Loc-RIB (RFC 4271 section 3.2) and, as views of it, the Adj-RIBs-In: one table holds
//! every candidate path per prefix, whoever it came from, the best one apart.
//!
//! Why one table: a peer's Adj-RIB-In and the Loc-RIB hold the same paths (we apply no
//! import policy that would change them), so keeping both costs a second entry per prefix
//! for nothing. The Adj-RIB-In of a peer is the set of paths here whose source is that peer
//! ([`super::AdjRibIn`]).
//!
//! Lean on purpose (1M prefixes): a prefix with one path (the common case: one full table
//! from one peer, or each mesh node's own blocks) costs one 16-octet entry, its key and a
//! pointer to a shared [`Path`]. Prefixes with several paths keep the others in a second,
//! usually small, map.

use std::sync::Arc;

use smallvec::SmallVec;

use super::best::{select_best, Candidate, SourceInfo};
use super::prefix_map::PrefixMap;
use super::{Path, Source};
use crate::packet::Ipv4Prefix;

/// The best path of a prefix changed from `old` to `new` (`None`: no path).
#[derive(Clone, Debug)]
pub struct BestChange {
    pub old: Option<Arc<Path>>,
    pub new: Option<Arc<Path>>,
}

/// What [`LocRib::insert`] did.
#[derive(Debug, Default)]
pub struct Inserted {
    /// The path the source had for the prefix before (an implicit withdraw, RFC 4271
    /// section 3.1); `None` when the source had none.
    pub replaced: Option<Arc<Path>>,
    pub best: Option<BestChange>,
}

/// Candidate paths of one prefix while it is being re-decided; most prefixes that get here
/// have two or three.
type Gathered = SmallVec<[Arc<Path>; 4]>;

/// The Loc-RIB: every candidate path per prefix.
#[derive(Debug, Default)]
pub struct LocRib {
    /// The best path of every prefix that has one.
    best: PrefixMap<Arc<Path>>,
    /// The other candidates of the prefixes that have more than one, in no order.
    others: PrefixMap<Box<[Arc<Path>]>>,
}

impl LocRib {
    /// The best path for `prefix`.
    pub fn best(&self, prefix: &Ipv4Prefix) -> Option<&Arc<Path>> {
        self.best.get(prefix)
    }

    /// Every candidate path for `prefix`, best first.
    pub fn paths(&self, prefix: &Ipv4Prefix) -> Vec<&Arc<Path>> {
        let others = self.others.get(prefix).map(|o| &o[..]).unwrap_or(&[]);
        self.best.get(prefix).into_iter().chain(others).collect()
    }

    /// The path `source` announced for `prefix` (its Adj-RIB-In entry).
    pub fn path_from(&self, prefix: &Ipv4Prefix, source: Source) -> Option<&Arc<Path>> {
        let best = self.best.get(prefix)?;
        if best.source == source {
            return Some(best);
        }
        self.others.get(prefix)?.iter().find(|p| p.source == source)
    }

    /// Prefixes with at least one path.
    pub fn len(&self) -> usize {
        self.best.len()
    }

    pub fn is_empty(&self) -> bool {
        self.best.is_empty()
    }

    /// Every prefix with its best path.
    pub fn iter_best(&self) -> impl Iterator<Item = (Ipv4Prefix, &Arc<Path>)> + '_ {
        self.best.iter().map(|(p, b)| (*p, b))
    }

    /// Every prefix `source` has a path for, with that path.
    pub fn iter_from(&self, source: Source) -> impl Iterator<Item = (Ipv4Prefix, &Arc<Path>)> + '_ {
        let bests = self.best.iter().filter(move |(_, b)| b.source == source);
        let others = self
            .others
            .iter()
            .filter_map(move |(p, o)| o.iter().find(|c| c.source == source).map(|c| (p, c)));
        bests.chain(others).map(|(p, c)| (*p, c))
    }

    /// Adds the path from `path.source`, replacing the one that source had.
    pub(crate) fn insert(
        &mut self,
        prefix: Ipv4Prefix,
        path: Arc<Path>,
        info: &impl Fn(Source) -> SourceInfo,
    ) -> Inserted {
        let (held, inserted) = self.best.get_or_insert_with(prefix, || Arc::clone(&path));
        if inserted {
            return Inserted {
                replaced: None,
                best: Some(BestChange {
                    old: None,
                    new: Some(path),
                }),
            };
        }
        // The common replacement: the only path, from the same source.
        if held.source == path.source
            && (self.others.is_empty() || !self.others.contains_key(&prefix))
        {
            let old = std::mem::replace(held, Arc::clone(&path));
            let best = (!Arc::ptr_eq(&old, &path)).then(|| BestChange {
                old: Some(Arc::clone(&old)),
                new: Some(path),
            });
            return Inserted {
                replaced: Some(old),
                best,
            };
        }
        let (old, mut all) = self.gather(prefix);
        let replaced = match all.iter_mut().find(|p| p.source == path.source) {
            Some(slot) => Some(std::mem::replace(slot, path)),
            None => {
                all.push(path);
                None
            }
        };
        let best = self.decide(prefix, old, all, info);
        Inserted { replaced, best }
    }

    /// Removes the path from `source`: the path removed (`None` if it had none) and the
    /// change of best path, if any.
    pub(crate) fn remove(
        &mut self,
        prefix: Ipv4Prefix,
        source: Source,
        info: &impl Fn(Source) -> SourceInfo,
    ) -> (Option<Arc<Path>>, Option<BestChange>) {
        let Some(held) = self.best.get(&prefix) else {
            return (None, None);
        };
        if self.others.is_empty() || !self.others.contains_key(&prefix) {
            if held.source != source {
                return (None, None);
            }
            let old = self.best.remove(&prefix);
            let change = BestChange {
                old: old.clone(),
                new: None,
            };
            return (old, Some(change));
        }
        if self.path_from(&prefix, source).is_none() {
            return (None, None);
        }
        let (old, mut all) = self.gather(prefix);
        let removed = all
            .iter()
            .position(|p| p.source == source)
            .map(|i| all.swap_remove(i));
        let best = self.decide(prefix, old, all, info);
        (removed, best)
    }

    /// Takes every candidate of `prefix` out of the table: the best, and all of them with
    /// the best first.
    fn gather(&mut self, prefix: Ipv4Prefix) -> (Option<Arc<Path>>, Gathered) {
        let old = self.best.remove(&prefix);
        let mut all = Gathered::new();
        all.extend(old.clone());
        if let Some(others) = self.others.remove(&prefix) {
            all.extend(others.into_vec());
        }
        (old, all)
    }

    /// Puts the candidates `all` of `prefix` back, the best apart (Decision Process phase 2,
    /// RFC 4271 section 9.1.2); the change from `old`, the best before, if any.
    fn decide(
        &mut self,
        prefix: Ipv4Prefix,
        old: Option<Arc<Path>>,
        mut all: Gathered,
        info: &impl Fn(Source) -> SourceInfo,
    ) -> Option<BestChange> {
        let winner = {
            let candidates: SmallVec<[Candidate<'_>; 8]> = all
                .iter()
                .map(|p| Candidate {
                    attrs: &p.attrs,
                    source: info(p.source),
                })
                .collect();
            select_best(&candidates)
        };
        let Some(winner) = winner else {
            return old.map(|old| BestChange {
                old: Some(old),
                new: None,
            });
        };
        let new = all.swap_remove(winner);
        if !all.is_empty() {
            self.others.insert(prefix, all.into_iter().collect());
        }
        self.best.insert(prefix, Arc::clone(&new));
        match old {
            Some(old) if Arc::ptr_eq(&old, &new) => None,
            old => Some(BestChange {
                old,
                new: Some(new),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::packet::{AsPath, PathAttributes};
    use crate::rib::PeerKey;

    fn prefix(third: u8) -> Ipv4Prefix {
        Ipv4Prefix::containing(Ipv4Addr::new(10, 0, third, 0), 24).unwrap()
    }

    /// A path from peer `key` with an AS_PATH `hops` long: shorter wins (section 9.1.2.2 a).
    fn path(key: u32, hops: usize) -> Arc<Path> {
        Arc::new(Path {
            source: Source::Peer(PeerKey(key)),
            attrs: PathAttributes {
                as_path: AsPath::from_sequence(vec![65000 + key; hops]),
                next_hop: Some(Ipv4Addr::new(192, 0, 2, key as u8)),
                ..Default::default()
            },
        })
    }

    /// Every peer external, router id and address from its key.
    fn info(source: Source) -> SourceInfo {
        let Source::Peer(PeerKey(k)) = source else {
            panic!("only peer paths in these tests");
        };
        let id = Ipv4Addr::new(10, 255, 0, k as u8);
        SourceInfo {
            local: false,
            ebgp: true,
            router_id: id,
            address: id,
        }
    }

    fn best_source(loc: &LocRib, p: Ipv4Prefix) -> Option<Source> {
        loc.best(&p).map(|b| b.source)
    }

    #[test]
    fn a_prefix_with_one_path_costs_one_sixteen_octet_entry() {
        assert_eq!(std::mem::size_of::<(Ipv4Prefix, Arc<Path>)>(), 16);
    }

    #[test]
    fn first_path_becomes_best_and_same_source_replaces_it_implicitly() {
        let mut loc = LocRib::default();
        let p = prefix(1);
        let first = path(1, 2);
        let done = loc.insert(p, Arc::clone(&first), &info);
        assert!(done.replaced.is_none());
        let change = done.best.expect("a new best");
        assert!(change.old.is_none() && Arc::ptr_eq(change.new.as_ref().unwrap(), &first));

        // RFC 4271 section 3.1: a new announcement from the same peer replaces the old one.
        let second = path(1, 3);
        let done = loc.insert(p, Arc::clone(&second), &info);
        assert!(Arc::ptr_eq(done.replaced.as_ref().unwrap(), &first));
        let change = done.best.expect("best changed");
        assert!(Arc::ptr_eq(change.old.as_ref().unwrap(), &first));
        assert!(Arc::ptr_eq(change.new.as_ref().unwrap(), &second));
        assert_eq!(loc.paths(&p).len(), 1);

        // The very same path again: nothing changes.
        let done = loc.insert(p, Arc::clone(&second), &info);
        assert!(done.replaced.is_some() && done.best.is_none());
    }

    #[test]
    fn a_better_path_takes_over_and_a_worse_one_waits_behind() {
        let mut loc = LocRib::default();
        let p = prefix(2);
        loc.insert(p, path(1, 3), &info);
        // Worse (longer AS_PATH) from peer 2: held, best unchanged.
        let done = loc.insert(p, path(2, 4), &info);
        assert!(done.replaced.is_none() && done.best.is_none());
        assert_eq!(best_source(&loc, p), Some(Source::Peer(PeerKey(1))));
        // Better from peer 3: new best.
        let done = loc.insert(p, path(3, 1), &info);
        let change = done.best.expect("best changed");
        assert_eq!(change.old.unwrap().source, Source::Peer(PeerKey(1)));
        assert_eq!(change.new.unwrap().source, Source::Peer(PeerKey(3)));
        let paths = loc.paths(&p);
        assert_eq!(paths.len(), 3);
        assert_eq!(paths[0].source, Source::Peer(PeerKey(3)), "best first");
        assert_eq!(loc.len(), 1);
    }

    #[test]
    fn implicit_withdraw_of_the_best_by_a_worse_path_hands_over_to_the_runner_up() {
        let mut loc = LocRib::default();
        let p = prefix(3);
        loc.insert(p, path(1, 1), &info);
        loc.insert(p, path(2, 2), &info);
        // Peer 1 re-announces with a longer AS_PATH: peer 2 becomes best.
        let done = loc.insert(p, path(1, 5), &info);
        assert_eq!(done.replaced.unwrap().attrs.as_path.path_len(), 1);
        let change = done.best.expect("best changed");
        assert_eq!(change.new.unwrap().source, Source::Peer(PeerKey(2)));
        assert_eq!(loc.paths(&p).len(), 2);
        assert_eq!(
            loc.path_from(&p, Source::Peer(PeerKey(1)))
                .unwrap()
                .attrs
                .as_path
                .path_len(),
            5
        );
    }

    #[test]
    fn withdrawing_the_best_falls_back_and_withdrawing_the_last_empties_the_prefix() {
        let mut loc = LocRib::default();
        let p = prefix(4);
        loc.insert(p, path(1, 1), &info);
        loc.insert(p, path(2, 2), &info);
        loc.insert(p, path(3, 3), &info);
        // A non-best path leaves: no change of best.
        let (removed, change) = loc.remove(p, Source::Peer(PeerKey(3)), &info);
        assert!(removed.is_some() && change.is_none());
        // The best leaves: the runner-up takes over.
        let (removed, change) = loc.remove(p, Source::Peer(PeerKey(1)), &info);
        assert_eq!(removed.unwrap().source, Source::Peer(PeerKey(1)));
        let change = change.expect("best changed");
        assert_eq!(change.old.unwrap().source, Source::Peer(PeerKey(1)));
        assert_eq!(change.new.unwrap().source, Source::Peer(PeerKey(2)));
        assert!(loc.others.is_empty(), "a single path needs no side entry");
        // A source with nothing for the prefix: nothing happens.
        let (removed, change) = loc.remove(p, Source::Peer(PeerKey(7)), &info);
        assert!(removed.is_none() && change.is_none());
        assert_eq!(best_source(&loc, p), Some(Source::Peer(PeerKey(2))));
        // The last path leaves.
        let (removed, change) = loc.remove(p, Source::Peer(PeerKey(2)), &info);
        assert!(removed.is_some());
        let change = change.expect("no path left");
        assert!(change.new.is_none() && change.old.is_some());
        assert!(loc.is_empty() && loc.paths(&p).is_empty());
        // Withdrawing an unknown prefix is harmless.
        assert!(loc.remove(p, Source::Peer(PeerKey(2)), &info).0.is_none());
    }

    #[test]
    fn iter_from_is_a_peers_adj_rib_in_best_or_not() {
        let mut loc = LocRib::default();
        // Peer 1: best for prefixes 1 and 2, runner-up for 3; peer 2 best for 3 only.
        loc.insert(prefix(1), path(1, 1), &info);
        loc.insert(prefix(2), path(1, 1), &info);
        loc.insert(prefix(3), path(1, 4), &info);
        loc.insert(prefix(3), path(2, 1), &info);
        let mut from1: Vec<Ipv4Prefix> = loc
            .iter_from(Source::Peer(PeerKey(1)))
            .map(|(p, _)| p)
            .collect();
        from1.sort();
        assert_eq!(from1, vec![prefix(1), prefix(2), prefix(3)]);
        let from2: Vec<Ipv4Prefix> = loc
            .iter_from(Source::Peer(PeerKey(2)))
            .map(|(p, _)| p)
            .collect();
        assert_eq!(from2, vec![prefix(3)]);
        assert_eq!(loc.iter_from(Source::Local).count(), 0);
    }

    /// Peer down as the RIB does it: every prefix of the peer removed, the others' paths
    /// promoted where the peer's was best.
    #[test]
    fn removing_everything_from_one_peer_leaves_the_others_best() {
        let mut loc = LocRib::default();
        for third in 0..50u8 {
            loc.insert(prefix(third), path(1, 1), &info);
            if third % 2 == 0 {
                loc.insert(prefix(third), path(2, 2), &info);
            }
        }
        let held: Vec<Ipv4Prefix> = loc
            .iter_from(Source::Peer(PeerKey(1)))
            .map(|(p, _)| p)
            .collect();
        assert_eq!(held.len(), 50);
        let mut promoted = 0;
        for p in held {
            let (removed, change) = loc.remove(p, Source::Peer(PeerKey(1)), &info);
            assert!(removed.is_some());
            if change.expect("peer 1 was best").new.is_some() {
                promoted += 1;
            }
        }
        assert_eq!(promoted, 25);
        assert_eq!(loc.len(), 25);
        assert!(loc.others.is_empty());
        assert!(loc
            .iter_best()
            .all(|(_, b)| b.source == Source::Peer(PeerKey(2))));
    }
}
