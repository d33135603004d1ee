//! IP sets: the address groups selectors and NetworkSets resolve to, kept current by the
//! control plane without recompiling the programs that name them.
//!
//! A program refers to a set only by [`IpSetId`]; membership lives here. Workers read an
//! immutable [`IpSets`] snapshot; the control plane edits an [`IpSetsWriter`] and publishes a
//! new snapshot with one atomic pointer swap ([`arc_swap::ArcSwap`]).
//!
//! Why snapshots rather than an epoch'd in-place structure: a worker loads the snapshot once
//! per batch (one atomic load, lock-free, no allocation) and then sees one consistent
//! membership for the whole batch, which a structure edited underneath it would not give.
//! The price is on the writer: `publish` rebuilds the index, O(members) (about 15 ms for
//! 100k members, see BENCHMARKS.md), so the control plane should batch a calc-graph update's
//! deltas and publish once. Memory is two copies at most while readers drain the old one.
//!
//! # Layout
//! The snapshot is indexed by address, not by set: `hosts` maps each /32 member to the sets
//! holding it, and one map per prefix length in use maps each shorter member network to its
//! sets. "Which sets hold this address" is then 1 + (prefix lengths in use) hash probes,
//! independent of the number of sets, which is what lets the classifier key rules on a set.

use std::collections::{BTreeSet, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use super::hash::FastMap;
use super::rule::{mask, Cidr};

/// The id of an IP set, chosen by the control plane (e.g. one per distinct selector).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpSetId(pub u32);

/// An immutable membership snapshot. `Default` is empty (every set empty).
#[derive(Debug, Default)]
pub struct IpSets {
    hosts: FastMap<u32, Box<[IpSetId]>>,
    /// Longest prefix first; only lengths some member uses (0..=31).
    networks: Vec<NetworkLevel>,
    member_count: usize,
}

#[derive(Debug)]
struct NetworkLevel {
    mask: u32,
    nets: FastMap<u32, Box<[IpSetId]>>,
}

impl IpSets {
    /// Whether `set` holds `addr`. A set nobody defined is empty.
    #[inline]
    pub fn contains(&self, set: IpSetId, addr: Ipv4Addr) -> bool {
        self.sets_containing(addr).any(|s| s == set)
    }

    /// Every set holding `addr` (a set may be listed more than once when several of its
    /// members cover the address). No allocation.
    #[inline]
    pub fn sets_containing(&self, addr: Ipv4Addr) -> impl Iterator<Item = IpSetId> + '_ {
        let addr = u32::from(addr);
        let hosts = self.hosts.get(&addr).map(|s| &s[..]).unwrap_or(&[]);
        let networks = self
            .networks
            .iter()
            .filter_map(move |level| level.nets.get(&(addr & level.mask)))
            .flat_map(|s| s.iter());
        hosts.iter().chain(networks).copied()
    }

    /// Members over all sets (a CIDR in two sets counts twice).
    pub fn member_count(&self) -> usize {
        self.member_count
    }

    /// Whether any set holds a non-/32 member (the classifier then probes more maps).
    pub fn has_networks(&self) -> bool {
        !self.networks.is_empty()
    }

    fn build(members: &FastMap<IpSetId, HashSet<Cidr>>) -> Self {
        let mut by_cidr: FastMap<Cidr, Vec<IpSetId>> = FastMap::default();
        let mut member_count = 0;
        for (&set, cidrs) in members {
            for &cidr in cidrs {
                by_cidr.entry(cidr).or_default().push(set);
                member_count += 1;
            }
        }
        let lengths: BTreeSet<u8> = by_cidr
            .keys()
            .map(|c| c.len())
            .filter(|&l| l < 32)
            .collect();
        let mut networks: Vec<NetworkLevel> = lengths
            .iter()
            .rev()
            .map(|&len| NetworkLevel {
                mask: mask(len),
                nets: FastMap::default(),
            })
            .collect();
        let mut hosts = FastMap::default();
        for (cidr, mut sets) in by_cidr {
            sets.sort_unstable();
            let sets = sets.into_boxed_slice();
            if cidr.len() == 32 {
                hosts.insert(cidr.bits(), sets);
            } else if let Some(level) = networks.iter_mut().find(|l| l.mask == mask(cidr.len())) {
                level.nets.insert(cidr.bits(), sets);
            }
        }
        IpSets {
            hosts,
            networks,
            member_count,
        }
    }
}

/// The control plane's side: edit membership, then [`publish`](Self::publish).
/// Edits are invisible to readers until published.
pub struct IpSetsWriter {
    members: FastMap<IpSetId, HashSet<Cidr>>,
    shared: Arc<ArcSwap<IpSets>>,
}

/// A worker's handle: [`load`](Self::load) the current snapshot once per batch.
#[derive(Clone)]
pub struct IpSetsReader {
    shared: Arc<ArcSwap<IpSets>>,
}

impl IpSetsReader {
    /// Lock-free; no allocation in the common case (arc-swap's debt slots).
    #[inline]
    pub fn load(&self) -> Guard<Arc<IpSets>> {
        self.shared.load()
    }
}

impl Default for IpSetsWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl IpSetsWriter {
    pub fn new() -> Self {
        IpSetsWriter {
            members: FastMap::default(),
            shared: Arc::new(ArcSwap::from_pointee(IpSets::default())),
        }
    }

    pub fn reader(&self) -> IpSetsReader {
        IpSetsReader {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Returns whether the member was new.
    pub fn add_member(&mut self, set: IpSetId, member: Cidr) -> bool {
        self.members.entry(set).or_default().insert(member)
    }

    /// Returns whether the member was there.
    pub fn remove_member(&mut self, set: IpSetId, member: Cidr) -> bool {
        let Some(cidrs) = self.members.get_mut(&set) else {
            return false;
        };
        let removed = cidrs.remove(&member);
        if cidrs.is_empty() {
            self.members.remove(&set);
        }
        removed
    }

    /// Sets the whole membership of `set` (a resync).
    pub fn replace_set(&mut self, set: IpSetId, members: impl IntoIterator<Item = Cidr>) {
        let cidrs: HashSet<Cidr> = members.into_iter().collect();
        if cidrs.is_empty() {
            self.members.remove(&set);
        } else {
            self.members.insert(set, cidrs);
        }
    }

    pub fn remove_set(&mut self, set: IpSetId) {
        self.members.remove(&set);
    }

    pub fn members(&self, set: IpSetId) -> impl Iterator<Item = Cidr> + '_ {
        self.members.get(&set).into_iter().flatten().copied()
    }

    /// Builds a snapshot of the current membership and swaps it in for every reader.
    /// O(members); off the hot path.
    pub fn publish(&mut self) -> Arc<IpSets> {
        let snapshot = Arc::new(IpSets::build(&self.members));
        self.shared.store(Arc::clone(&snapshot));
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(a: [u8; 4], len: u8) -> Cidr {
        Cidr::new(a.into(), len).unwrap()
    }

    #[test]
    fn membership_by_host_and_network_members() {
        let mut writer = IpSetsWriter::new();
        writer.add_member(IpSetId(1), Cidr::host([10, 0, 0, 1].into()));
        writer.add_member(IpSetId(2), cidr([10, 0, 0, 0], 24));
        writer.add_member(IpSetId(3), cidr([10, 0, 0, 0], 8));
        writer.add_member(IpSetId(3), cidr([10, 0, 0, 0], 24));
        let sets = writer.publish();
        let of = |a: [u8; 4]| {
            let mut v: Vec<u32> = sets.sets_containing(a.into()).map(|s| s.0).collect();
            v.sort();
            v
        };
        assert_eq!(of([10, 0, 0, 1]), vec![1, 2, 3, 3]);
        assert_eq!(of([10, 0, 0, 2]), vec![2, 3, 3]);
        assert_eq!(of([10, 5, 0, 2]), vec![3]);
        assert_eq!(of([11, 0, 0, 1]), Vec::<u32>::new());
        assert!(sets.contains(IpSetId(1), [10, 0, 0, 1].into()));
        assert!(!sets.contains(IpSetId(1), [10, 0, 0, 2].into()));
        assert_eq!(sets.member_count(), 4);
    }

    #[test]
    fn edits_reach_readers_only_when_published() {
        let mut writer = IpSetsWriter::new();
        let reader = writer.reader();
        let a: Ipv4Addr = [192, 168, 1, 7].into();
        writer.add_member(IpSetId(7), Cidr::host(a));
        assert!(!reader.load().contains(IpSetId(7), a), "not yet published");
        writer.publish();
        let before = reader.load_full_for_test();
        assert!(reader.load().contains(IpSetId(7), a));

        assert!(writer.remove_member(IpSetId(7), Cidr::host(a)));
        assert!(!writer.remove_member(IpSetId(7), Cidr::host(a)));
        writer.publish();
        assert!(!reader.load().contains(IpSetId(7), a));
        assert!(
            before.contains(IpSetId(7), a),
            "an old snapshot a worker still holds does not change"
        );

        writer.replace_set(IpSetId(7), [cidr([192, 168, 0, 0], 16)]);
        writer.publish();
        assert!(reader.load().contains(IpSetId(7), a));
        writer.remove_set(IpSetId(7));
        writer.publish();
        assert!(!reader.load().contains(IpSetId(7), a));
        assert_eq!(writer.members(IpSetId(7)).count(), 0);
    }

    impl IpSetsReader {
        fn load_full_for_test(&self) -> Arc<IpSets> {
            self.shared.load_full()
        }
    }
}
