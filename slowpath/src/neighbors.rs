//! The slow path's own record of resolved neighbours: (port, ip) -> (mac, updated at).
//!
//! Next hops in a published [`Tables`] carry the MAC the workers use; this table is what the
//! slow path knows independently of any snapshot, so that when control publishes a new one the
//! MACs learned so far can be written into its next hops at once instead of being re-resolved.
//! It is bounded: entries come from packet data, so a flood of ARP from made-up senders evicts
//! the least recently updated entry rather than growing the table.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Instant;

use fastpath::{MacAddr, PortId, Tables};

/// A resolved neighbour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbor {
    pub mac: MacAddr,
    pub updated_at: Instant,
}

/// Whether [`NeighborTable::learn`] changed anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    New,
    Changed,
    Refreshed,
}

#[derive(Debug)]
pub struct NeighborTable {
    entries: HashMap<(PortId, Ipv4Addr), Neighbor>,
    capacity: usize,
}

impl NeighborTable {
    pub fn new(capacity: usize) -> NeighborTable {
        let capacity = capacity.max(1);
        NeighborTable {
            entries: HashMap::with_capacity(capacity),
            capacity,
        }
    }

    pub fn get(&self, port: PortId, ip: Ipv4Addr) -> Option<Neighbor> {
        self.entries.get(&(port, ip)).copied()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every neighbour, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = ((PortId, Ipv4Addr), Neighbor)> + '_ {
        self.entries.iter().map(|(k, n)| (*k, *n))
    }

    /// Records `ip` on `port` at `mac`.
    pub fn learn(&mut self, port: PortId, ip: Ipv4Addr, mac: MacAddr, now: Instant) -> Learned {
        if let Some(entry) = self.entries.get_mut(&(port, ip)) {
            let changed = entry.mac != mac;
            *entry = Neighbor {
                mac,
                updated_at: now,
            };
            return if changed {
                Learned::Changed
            } else {
                Learned::Refreshed
            };
        }
        if self.entries.len() >= self.capacity {
            self.evict_oldest();
        }
        self.entries.insert(
            (port, ip),
            Neighbor {
                mac,
                updated_at: now,
            },
        );
        Learned::New
    }

    /// Writes every known MAC into the matching next hops of `tables` (after control publishes
    /// a new snapshot). Returns how many next hops were set.
    pub fn apply_to(&self, tables: &Tables) -> usize {
        let mut set = 0;
        for nh in &tables.next_hops {
            if nh.kind != fastpath::NextHopKind::Neighbor || nh.connected {
                continue;
            }
            if let Some(n) = self.entries.get(&(nh.port, nh.ip)) {
                if nh.mac() != Some(n.mac) {
                    nh.set_mac(Some(n.mac));
                }
                set += 1;
            }
        }
        set
    }

    // O(n), but it only runs when the table is full of entries nobody refreshes.
    fn evict_oldest(&mut self) {
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, n)| n.updated_at)
            .map(|(k, _)| *k);
        if let Some(key) = oldest {
            self.entries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastpath::{NextHop, NextHopKind};
    use std::time::Duration;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    #[test]
    fn learn_reports_new_changed_and_refreshed() {
        let now = Instant::now();
        let mut t = NeighborTable::new(8);
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(t.learn(1, ip, A, now), Learned::New);
        assert_eq!(t.learn(1, ip, A, now), Learned::Refreshed);
        assert_eq!(t.learn(1, ip, B, now), Learned::Changed);
        assert_eq!(t.get(1, ip).map(|n| n.mac), Some(B));
        // Same ip on another port is another neighbour.
        assert_eq!(t.get(2, ip), None);
    }

    #[test]
    fn a_full_table_evicts_the_least_recently_updated_entry() {
        let t0 = Instant::now();
        let mut t = NeighborTable::new(2);
        let (x, y, z) = (
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 3),
        );
        t.learn(0, x, A, t0);
        t.learn(0, y, A, t0 + Duration::from_secs(1));
        t.learn(0, x, A, t0 + Duration::from_secs(2)); // x is now the fresher one
        t.learn(0, z, B, t0 + Duration::from_secs(3));
        assert_eq!(t.len(), 2);
        assert!(t.get(0, y).is_none());
        assert!(t.get(0, x).is_some() && t.get(0, z).is_some());
    }

    #[test]
    fn apply_to_sets_matching_neighbor_next_hops_only() {
        let now = Instant::now();
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        let mut t = NeighborTable::new(8);
        t.learn(3, ip, A, now);
        let tables = Tables {
            next_hops: vec![
                NextHop::new(NextHopKind::Neighbor, 3, ip),
                NextHop::new(NextHopKind::Neighbor, 4, ip),
                NextHop::new(NextHopKind::Local, 3, ip),
                NextHop::new(NextHopKind::Neighbor, 3, ip),
            ],
            ..Default::default()
        };
        assert_eq!(t.apply_to(&tables), 2);
        let macs: Vec<_> = tables.next_hops.iter().map(|nh| nh.mac()).collect();
        assert_eq!(macs, vec![Some(A), None, None, Some(A)]);
    }
}
