//! [`PrefixMap`]: a hash map from IPv4 prefix to value, split into shards so that growing
//! it never needs twice its size at once.
//!
//! Why: a hash table grows by allocating one twice its size and moving every entry over,
//! so for a moment it holds the old table and the new: 1.5 times the new size. With a
//! million routes that moment was the speaker's peak memory. Split into [`SHARDS`] tables
//! picked by a hash of the prefix, the shards fill evenly and grow one at a time, so the
//! moment costs one shard's worth, and the peak is the final size.

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;

use crate::packet::Ipv4Prefix;

/// How many tables the map is split into (a power of two).
pub const SHARDS: usize = 64;

/// A map from prefix to `V`.
#[derive(Debug)]
pub struct PrefixMap<V> {
    shards: Box<[FxHashMap<Ipv4Prefix, V>]>,
    len: usize,
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| FxHashMap::default()).collect(),
            len: 0,
        }
    }
}

/// The shard of `prefix`. Not the tables' own hash: the tables use its top bits as
/// per-entry tags, which would then be nearly equal within a shard and match falsely.
fn shard_of(prefix: &Ipv4Prefix) -> usize {
    let key = (u64::from(u32::from(prefix.addr())) << 8) | u64::from(prefix.len());
    // Fibonacci hashing: the top bits of the product depend on every bit of the key.
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SHARDS.trailing_zeros())) as usize
}

impl<V> PrefixMap<V> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, prefix: &Ipv4Prefix) -> Option<&V> {
        self.shards[shard_of(prefix)].get(prefix)
    }

    pub fn get_mut(&mut self, prefix: &Ipv4Prefix) -> Option<&mut V> {
        self.shards[shard_of(prefix)].get_mut(prefix)
    }

    pub fn contains_key(&self, prefix: &Ipv4Prefix) -> bool {
        self.get(prefix).is_some()
    }

    /// Stores `value`, returning the one it replaces.
    pub fn insert(&mut self, prefix: Ipv4Prefix, value: V) -> Option<V> {
        let old = self.shards[shard_of(&prefix)].insert(prefix, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn remove(&mut self, prefix: &Ipv4Prefix) -> Option<V> {
        let old = self.shards[shard_of(prefix)].remove(prefix);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// The value of `prefix`, inserted with `make` if there is none; and whether it was
    /// inserted.
    pub fn get_or_insert_with(
        &mut self,
        prefix: Ipv4Prefix,
        make: impl FnOnce() -> V,
    ) -> (&mut V, bool) {
        match self.shards[shard_of(&prefix)].entry(prefix) {
            Entry::Occupied(held) => (held.into_mut(), false),
            Entry::Vacant(slot) => {
                self.len += 1;
                (slot.insert(make()), true)
            }
        }
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Ipv4Prefix, &V)> + '_ {
        self.shards.iter().flat_map(|s| s.iter())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn nth(i: u32) -> Ipv4Prefix {
        Ipv4Prefix::containing(Ipv4Addr::from(0x1400_0000 + (i << 8)), 24).unwrap()
    }

    #[test]
    fn behaves_as_one_map() {
        let mut map = PrefixMap::default();
        assert!(map.is_empty() && map.get(&nth(1)).is_none());
        for i in 0..10_000 {
            assert_eq!(map.insert(nth(i), i), None);
        }
        assert_eq!(map.len(), 10_000);
        assert_eq!(map.insert(nth(7), 70), Some(7), "replaced, not added");
        assert_eq!(map.len(), 10_000);
        assert_eq!(map.get(&nth(7)), Some(&70));
        *map.get_mut(&nth(8)).unwrap() = 80;
        assert_eq!(map.get(&nth(8)), Some(&80));
        let (held, inserted) = map.get_or_insert_with(nth(9), || 0);
        assert_eq!((*held, inserted), (9, false));
        let (held, inserted) = map.get_or_insert_with(nth(20_000), || 5);
        assert_eq!((*held, inserted), (5, true));
        assert_eq!(map.len(), 10_001);
        assert_eq!(map.remove(&nth(20_000)), Some(5));
        assert_eq!(map.remove(&nth(20_000)), None);
        assert_eq!(map.len(), 10_000);
        let mut keys: Vec<Ipv4Prefix> = map.iter().map(|(p, _)| *p).collect();
        keys.sort();
        assert_eq!(keys, (0..10_000).map(nth).collect::<Vec<_>>());
        // The same address with another length is another key.
        let short = Ipv4Prefix::containing(nth(3).addr(), 16).unwrap();
        assert!(!map.contains_key(&short) && map.contains_key(&nth(3)));
    }

    /// A table of consecutive /24s (the shape of the benchmark, and of Calico blocks) is
    /// spread evenly, so no shard is much larger than its share.
    #[test]
    fn consecutive_prefixes_spread_evenly_over_the_shards() {
        let mut counts = [0usize; SHARDS];
        let n = 100_000u32;
        for i in 0..n {
            counts[shard_of(&nth(i))] += 1;
        }
        let share = n as usize / SHARDS;
        assert!(
            counts
                .iter()
                .all(|&c| c > share * 9 / 10 && c < share * 11 / 10),
            "{counts:?}"
        );
    }
}
