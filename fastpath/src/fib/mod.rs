//! IPv4 FIB with longest-prefix match.
//!
//! CONTRACT: a DIR-24-8 table mapping prefixes to [`NextHopId`]s.
//!
//! - [`Fib::new`] / `Default`: empty; cheap (the 64 MiB first level is zeroed memory the kernel
//!   only backs with pages once they are written).
//! - [`Fib::insert`]`(prefix: Ipv4Addr, len: u8, nh: NextHopId) -> Result<Option<NextHopId>, FibError>`
//!   replaces and returns the old next hop of the same prefix. Errors: `len > 32`, host bits
//!   set in `prefix` (rejected, not masked: a route such as `10.1.2.3/24` is almost always a
//!   configuration mistake, and silently widening it would hide that), and `nh >`
//!   [`MAX_NEXT_HOP`] (2^25 - 2).
//! - [`Fib::remove`]`(prefix, len) -> Option<NextHopId>`: the addresses the prefix covered fall
//!   back to the next shorter covering prefix (or to no route).
//! - [`Fib::lookup`]`(addr: u32 /* host byte order */) -> Option<NextHopId>`: `#[inline]`, no
//!   branches beyond the two-level walk; [`Fib::lookup_batch`] for many addresses at once.
//! - [`Fib::len`], [`Fib::is_empty`], [`Fib::get`] (exact prefix), [`Fib::iter`] (dump in
//!   length, then address order).
//! - `Clone` copies the whole table (64 MiB plus the groups): control builds a new FIB off the
//!   hot path.
//!
//! # Layout (DIR-24-8, Gupta, Lin and McKeown, "Routing Lookups in Hardware at Memory Access
//! Speeds", INFOCOM 1998)
//!
//! ```text
//!  addr:  [ 24 high bits ][ 8 low bits ]
//!               |                 |
//!  tbl24[addr >> 8] = 0 | depth | nh + 1    -> nh (0: no route)
//!                   = 1 | group  ---------> tbl8[group * 256 + (addr & 0xff)] = 0 | depth | nh + 1
//!  entry bits:       31 | 30..25 | 24..0
//! ```
//!
//! Prefixes of length <= 24 are expanded into `2^(24 - len)` first-level entries; a longer
//! prefix turns its /24 into a 256-entry second-level group. Each leaf entry also records the
//! depth (`len + 1`, 0 for no route) of the prefix that wrote it, which is what makes insert and
//! remove correct under arbitrary overlap: an insert overwrites only entries owned by a prefix
//! no longer than itself, a remove rewrites only the entries it owns, with the next shorter
//! covering prefix found in the exact-prefix maps (`routes`). Keeping the depth inside the
//! entry (rather than in a parallel array) costs the lookup one AND and halves the memory a
//! clone copies.
//!
//! The first level is advised to the kernel as transparent-huge-page memory: lookups hit it at
//! random, and with 4 KiB pages nearly every one would also miss the TLB.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::ids::NextHopId;

/// The largest next hop id the table can encode (leaf entries hold `nh + 1` in 25 bits).
pub const MAX_NEXT_HOP: NextHopId = VALUE_MASK - 1;

/// Number of first-level entries: one per /24.
const TBL24_LEN: usize = 1 << 24;
/// Entries in one second-level group: one per address of a /24.
const GROUP_LEN: usize = 256;
/// First-level entry flag: the low 31 bits are a second-level group index.
const EXT: u32 = 1 << 31;
/// Leaf entry: where the depth (`len + 1`) of the prefix that wrote it starts.
const DEPTH_SHIFT: u32 = 25;
/// Leaf entry: `nh + 1`, or 0 for no route.
const VALUE_MASK: u32 = (1 << DEPTH_SHIFT) - 1;
/// A slot no prefix covers.
const NO_ROUTE: u32 = 0;

/// Why a route was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FibError {
    #[error("prefix length {len} is longer than 32")]
    PrefixTooLong { len: u8 },
    #[error("prefix {prefix}/{len} has host bits set (the network is {network}/{len})")]
    HostBitsSet {
        prefix: Ipv4Addr,
        len: u8,
        network: Ipv4Addr,
    },
    #[error("next hop id {nh} is larger than the FIB can encode (maximum {MAX_NEXT_HOP})")]
    NextHopTooLarge { nh: NextHopId },
}

/// The IPv4 forwarding table. See the module documentation for the layout.
pub struct Fib {
    /// First level, indexed by `addr >> 8`. A fixed-size array so that indexing with a 24-bit
    /// value needs no bounds check.
    tbl24: Box<[u32; TBL24_LEN]>,
    /// Second-level groups, `GROUP_LEN` leaf entries each.
    tbl8: Vec<u32>,
    /// Groups no `tbl24` entry points at, reused before `tbl8` grows.
    free_groups: Vec<u32>,
    /// The exact prefixes, one map per length (0..=32), keyed by network address.
    routes: [BTreeMap<u32, NextHopId>; 33],
    prefix_count: usize,
}

impl Fib {
    pub fn new() -> Fib {
        Fib {
            tbl24: zeroed_first_level(),
            tbl8: Vec::new(),
            free_groups: Vec::new(),
            routes: std::array::from_fn(|_| BTreeMap::new()),
            prefix_count: 0,
        }
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.prefix_count
    }

    pub fn is_empty(&self) -> bool {
        self.prefix_count == 0
    }

    /// The next hop of the longest prefix containing `addr` (host byte order).
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<NextHopId> {
        let mut entry = self.tbl24[(addr >> 8) as usize];
        if entry & EXT != 0 {
            entry = self.tbl8[group_base(entry & !EXT) | (addr & 0xff) as usize];
        }
        (entry & VALUE_MASK).checked_sub(1)
    }

    /// Looks up `addrs[i]` into `out[i]` for `i < min(addrs.len(), out.len())`.
    ///
    /// Loads the first-level entries of 16 addresses before resolving any, so that their cache
    /// misses overlap. Use it where per-packet work would separate single lookups (parse a
    /// batch, look the whole batch up, then rewrite); in a tight loop of nothing but lookups the
    /// CPU overlaps the misses of [`Fib::lookup`] by itself and that is faster (BENCHMARKS.md).
    #[inline]
    pub fn lookup_batch(&self, addrs: &[u32], out: &mut [Option<NextHopId>]) {
        const CHUNK: usize = 16;
        let n = addrs.len().min(out.len());
        let (addrs, out) = (&addrs[..n], &mut out[..n]);
        for (addrs, out) in addrs.chunks(CHUNK).zip(out.chunks_mut(CHUNK)) {
            let mut first = [NO_ROUTE; CHUNK];
            for (entry, &addr) in first.iter_mut().zip(addrs) {
                *entry = self.tbl24[(addr >> 8) as usize];
            }
            for ((slot, &addr), &entry) in out.iter_mut().zip(addrs).zip(&first) {
                let entry = if entry & EXT != 0 {
                    self.tbl8[group_base(entry & !EXT) | (addr & 0xff) as usize]
                } else {
                    entry
                };
                *slot = (entry & VALUE_MASK).checked_sub(1);
            }
        }
    }

    /// The next hop of exactly `prefix/len`, if that prefix is in the table.
    pub fn get(&self, prefix: Ipv4Addr, len: u8) -> Option<NextHopId> {
        self.routes
            .get(len as usize)?
            .get(&u32::from(prefix))
            .copied()
    }

    /// Adds or replaces `prefix/len -> nh`; returns the next hop it replaced.
    pub fn insert(
        &mut self,
        prefix: Ipv4Addr,
        len: u8,
        nh: NextHopId,
    ) -> Result<Option<NextHopId>, FibError> {
        if len > 32 {
            return Err(FibError::PrefixTooLong { len });
        }
        let addr = u32::from(prefix);
        if addr & !netmask(len) != 0 {
            let network = Ipv4Addr::from(addr & netmask(len));
            return Err(FibError::HostBitsSet {
                prefix,
                len,
                network,
            });
        }
        if nh > MAX_NEXT_HOP {
            return Err(FibError::NextHopTooLarge { nh });
        }
        let previous = self.routes[len as usize].insert(addr, nh);
        if previous.is_none() {
            self.prefix_count += 1;
        }
        // Overwrite what shorter (or the same) prefixes wrote; longer ones stay.
        let own_depth = len + 1;
        self.paint(addr, len, |d| d <= own_depth, leaf(len, nh));
        Ok(previous)
    }

    /// Removes `prefix/len`; returns its next hop, or `None` if the table did not hold it.
    pub fn remove(&mut self, prefix: Ipv4Addr, len: u8) -> Option<NextHopId> {
        let addr = u32::from(prefix);
        let removed = self.routes.get_mut(len as usize)?.remove(&addr)?;
        self.prefix_count -= 1;
        let replacement = match self.covering(addr, len) {
            Some((cover_len, cover_nh)) => leaf(cover_len, cover_nh),
            None => NO_ROUTE,
        };
        // Only the entries this prefix wrote: equal depth inside its range means this prefix.
        let own_depth = len + 1;
        self.paint(addr, len, |d| d == own_depth, replacement);
        if len > 24 {
            self.collapse_group_if_unneeded(addr >> 8);
        }
        Some(removed)
    }

    /// All prefixes as `(network, len, next hop)`, shortest first, then by address.
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, u8, NextHopId)> + '_ {
        self.routes.iter().enumerate().flat_map(|(len, map)| {
            map.iter()
                .map(move |(&addr, &nh)| (Ipv4Addr::from(addr), len as u8, nh))
        })
    }

    /// Number of second-level groups a first-level entry points at.
    pub fn groups_in_use(&self) -> usize {
        self.tbl8.len() / GROUP_LEN - self.free_groups.len()
    }

    /// The longest prefix strictly shorter than `len` that contains `addr`: `(len, nh)`.
    fn covering(&self, addr: u32, len: u8) -> Option<(u8, NextHopId)> {
        (0..len).rev().find_map(|l| {
            self.routes[l as usize]
                .get(&(addr & netmask(l)))
                .map(|&nh| (l, nh))
        })
    }

    /// Writes the leaf `new` into every slot of `addr/len`'s range whose current depth
    /// satisfies `overwrite`.
    fn paint(&mut self, addr: u32, len: u8, overwrite: impl Fn(u8) -> bool, new: u32) {
        if len <= 24 {
            let first = (addr >> 8) as usize;
            let count = 1usize << (24 - len);
            for i in first..first + count {
                let current = self.tbl24[i];
                if current & EXT != 0 {
                    // A /24 split by longer prefixes: the shorter prefix lives in its group.
                    let base = group_base(current & !EXT);
                    paint_slots(&mut self.tbl8[base..base + GROUP_LEN], &overwrite, new);
                } else if overwrite(depth(current)) {
                    self.tbl24[i] = new;
                }
            }
        } else {
            let Some(group) = self.group_of(addr >> 8) else {
                return;
            };
            let first = group_base(group) | (addr & 0xff) as usize;
            let count = 1usize << (32 - len);
            paint_slots(&mut self.tbl8[first..first + count], &overwrite, new);
        }
    }

    /// The group of the /24 `index`, splitting it into a new group (every slot a copy of the
    /// first-level entry) if it has none.
    fn group_of(&mut self, index: u32) -> Option<u32> {
        let index = index as usize;
        let current = *self.tbl24.get(index)?;
        if current & EXT != 0 {
            return Some(current & !EXT);
        }
        let group = match self.free_groups.pop() {
            Some(group) => group,
            None => {
                // At most one group per /24, so the index stays below 2^24 < EXT.
                let group = (self.tbl8.len() / GROUP_LEN) as u32;
                self.tbl8.resize(self.tbl8.len() + GROUP_LEN, NO_ROUTE);
                group
            }
        };
        let base = group_base(group);
        self.tbl8[base..base + GROUP_LEN].fill(current);
        self.tbl24[index] = EXT | group;
        Some(group)
    }

    /// Folds the group of the /24 `index` back into its first-level entry once no prefix
    /// longer than /24 is left in it; the group goes to the free list.
    fn collapse_group_if_unneeded(&mut self, index: u32) {
        let index = index as usize;
        let current = self.tbl24[index];
        if current & EXT == 0 {
            return;
        }
        let group = current & !EXT;
        let base = group_base(group);
        let slots = &self.tbl8[base..base + GROUP_LEN];
        if slots.iter().any(|&slot| depth(slot) > 24 + 1) {
            return;
        }
        // Every slot now holds the same /24-or-shorter prefix (or none).
        self.tbl24[index] = slots[0];
        self.free_groups.push(group);
    }
}

impl Default for Fib {
    fn default() -> Fib {
        Fib::new()
    }
}

impl Clone for Fib {
    fn clone(&self) -> Fib {
        let mut tbl24 = zeroed_first_level();
        tbl24.copy_from_slice(&self.tbl24[..]);
        Fib {
            tbl24,
            tbl8: self.tbl8.clone(),
            free_groups: self.free_groups.clone(),
            routes: self.routes.clone(),
            prefix_count: self.prefix_count,
        }
    }
}

impl std::fmt::Debug for Fib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fib")
            .field("prefixes", &self.prefix_count)
            .field("groups_in_use", &self.groups_in_use())
            .field("groups_free", &self.free_groups.len())
            .finish()
    }
}

fn paint_slots(slots: &mut [u32], overwrite: &impl Fn(u8) -> bool, new: u32) {
    for slot in slots {
        if overwrite(depth(*slot)) {
            *slot = new;
        }
    }
}

/// The leaf entry of prefix length `len` (<= 32) and next hop `nh` (<= `MAX_NEXT_HOP`).
fn leaf(len: u8, nh: NextHopId) -> u32 {
    (u32::from(len) + 1) << DEPTH_SHIFT | (nh + 1)
}

/// `len + 1` of the prefix that wrote a leaf entry, 0 if none did.
fn depth(leaf: u32) -> u8 {
    (leaf >> DEPTH_SHIFT) as u8
}

/// The mask of a `len`-bit prefix (`len <= 32`).
fn netmask(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

#[inline]
fn group_base(group: u32) -> usize {
    (group as usize) * GROUP_LEN
}

/// A zeroed first level, built through `Vec` so that it never passes through the stack and
/// the allocator hands out fresh zero pages (calloc on a new mapping) instead of writing them.
fn zeroed_first_level() -> Box<[u32; TBL24_LEN]> {
    let table = vec![NO_ROUTE; TBL24_LEN].into_boxed_slice();
    advise_huge_pages(&table);
    match table.try_into() {
        Ok(array) => array,
        Err(_) => unreachable!("vec![_; TBL24_LEN] has TBL24_LEN elements"),
    }
}

/// Asks the kernel to back `table` with transparent huge pages (THP "madvise" mode, the
/// Debian default), so that random lookups do not pay a TLB miss each. Best effort.
fn advise_huge_pages(table: &[u32]) {
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        page if page > 0 => page as usize,
        _ => return,
    };
    let start = table.as_ptr() as usize;
    let end = start + std::mem::size_of_val(table);
    let first_page = start.next_multiple_of(page);
    let last_page = end / page * page;
    if last_page <= first_page {
        return;
    }
    // SAFETY: the range lies inside memory `table` owns, and MADV_HUGEPAGE only changes how
    // the kernel backs those pages, never their contents.
    let rc = unsafe {
        libc::madvise(
            first_page as *mut libc::c_void,
            last_page - first_page,
            libc::MADV_HUGEPAGE,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "FIB: no transparent huge pages");
    }
}

#[cfg(test)]
mod reference_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn at(fib: &Fib, s: &str) -> Option<NextHopId> {
        fib.lookup(u32::from(ip(s)))
    }

    #[test]
    fn empty_table_has_no_route() {
        let fib = Fib::new();
        assert!(fib.is_empty());
        assert_eq!(fib.len(), 0);
        for addr in [0, 1, 0x0a00_0001, u32::MAX] {
            assert_eq!(fib.lookup(addr), None);
        }
    }

    #[test]
    fn default_route_matches_everything() {
        let mut fib = Fib::new();
        assert_eq!(fib.insert(ip("0.0.0.0"), 0, 7), Ok(None));
        for addr in [0, 1, 0x7fff_ffff, 0x8000_0000, u32::MAX] {
            assert_eq!(fib.lookup(addr), Some(7));
        }
        assert_eq!(fib.remove(ip("0.0.0.0"), 0), Some(7));
        assert_eq!(fib.lookup(0x0102_0304), None);
        assert_eq!(fib.lookup(u32::MAX), None);
    }

    #[test]
    fn overlapping_prefixes_take_the_longest_match() {
        let mut fib = Fib::new();
        fib.insert(ip("10.0.0.0"), 8, 8).unwrap();
        fib.insert(ip("10.1.0.0"), 16, 16).unwrap();
        fib.insert(ip("10.1.2.0"), 24, 24).unwrap();
        fib.insert(ip("10.1.2.128"), 25, 25).unwrap();
        fib.insert(ip("10.1.2.200"), 32, 32).unwrap();
        assert_eq!(fib.len(), 5);
        assert_eq!(at(&fib, "10.200.0.1"), Some(8));
        assert_eq!(at(&fib, "10.1.3.1"), Some(16));
        assert_eq!(at(&fib, "10.1.2.0"), Some(24));
        assert_eq!(at(&fib, "10.1.2.127"), Some(24));
        assert_eq!(at(&fib, "10.1.2.128"), Some(25));
        assert_eq!(at(&fib, "10.1.2.199"), Some(25));
        assert_eq!(at(&fib, "10.1.2.200"), Some(32));
        assert_eq!(at(&fib, "10.1.2.201"), Some(25));
        assert_eq!(at(&fib, "10.1.2.255"), Some(25));
        assert_eq!(at(&fib, "11.0.0.0"), None);
        assert_eq!(at(&fib, "9.255.255.255"), None);
    }

    #[test]
    fn shorter_prefix_inserted_later_does_not_hide_longer_ones() {
        let mut fib = Fib::new();
        fib.insert(ip("10.1.2.200"), 32, 32).unwrap();
        fib.insert(ip("10.1.2.0"), 24, 24).unwrap();
        fib.insert(ip("10.0.0.0"), 8, 8).unwrap();
        fib.insert(ip("0.0.0.0"), 0, 0).unwrap();
        assert_eq!(at(&fib, "10.1.2.200"), Some(32));
        assert_eq!(at(&fib, "10.1.2.201"), Some(24));
        assert_eq!(at(&fib, "10.9.9.9"), Some(8));
        assert_eq!(at(&fib, "192.168.0.1"), Some(0));
    }

    #[test]
    fn removal_restores_the_covering_route_in_exactly_its_range() {
        let mut fib = Fib::new();
        fib.insert(ip("10.0.0.0"), 8, 8).unwrap();
        fib.insert(ip("10.1.0.0"), 16, 16).unwrap();
        fib.insert(ip("10.1.2.0"), 24, 24).unwrap();
        fib.insert(ip("10.1.2.128"), 25, 25).unwrap();
        fib.insert(ip("10.1.2.200"), 32, 32).unwrap();

        assert_eq!(fib.remove(ip("10.1.2.128"), 25), Some(25));
        assert_eq!(at(&fib, "10.1.2.128"), Some(24));
        assert_eq!(
            at(&fib, "10.1.2.200"),
            Some(32),
            "the /32 inside the removed /25 stays"
        );
        assert_eq!(at(&fib, "10.1.2.201"), Some(24));

        assert_eq!(fib.remove(ip("10.1.0.0"), 16), Some(16));
        assert_eq!(at(&fib, "10.1.3.1"), Some(8));
        assert_eq!(
            at(&fib, "10.1.2.1"),
            Some(24),
            "the /24 inside the removed /16 stays"
        );
        assert_eq!(at(&fib, "10.1.2.200"), Some(32));

        assert_eq!(fib.remove(ip("10.1.2.0"), 24), Some(24));
        assert_eq!(at(&fib, "10.1.2.1"), Some(8));
        assert_eq!(at(&fib, "10.1.2.200"), Some(32));

        assert_eq!(fib.remove(ip("10.1.2.200"), 32), Some(32));
        assert_eq!(at(&fib, "10.1.2.200"), Some(8));
        assert_eq!(fib.len(), 1);
        assert_eq!(fib.groups_in_use(), 0, "no prefix longer than /24 is left");
    }

    #[test]
    fn removing_an_absent_prefix_changes_nothing() {
        let mut fib = Fib::new();
        fib.insert(ip("10.1.0.0"), 16, 1).unwrap();
        assert_eq!(fib.remove(ip("10.1.0.0"), 24), None);
        assert_eq!(fib.remove(ip("10.2.0.0"), 16), None);
        assert_eq!(fib.remove(ip("10.1.0.0"), 33), None);
        assert_eq!(fib.len(), 1);
        assert_eq!(at(&fib, "10.1.0.1"), Some(1));
    }

    #[test]
    fn host_routes_at_both_ends_of_the_address_space() {
        let mut fib = Fib::new();
        fib.insert(ip("0.0.0.0"), 32, 1).unwrap();
        fib.insert(ip("255.255.255.255"), 32, 2).unwrap();
        assert_eq!(fib.lookup(0), Some(1));
        assert_eq!(fib.lookup(1), None);
        assert_eq!(fib.lookup(u32::MAX), Some(2));
        assert_eq!(fib.lookup(u32::MAX - 1), None);
        fib.insert(ip("0.0.0.0"), 0, 3).unwrap();
        assert_eq!(fib.lookup(0), Some(1));
        assert_eq!(fib.lookup(1), Some(3));
        assert_eq!(fib.lookup(u32::MAX), Some(2));
        assert_eq!(fib.lookup(u32::MAX - 1), Some(3));
        assert_eq!(fib.remove(ip("255.255.255.255"), 32), Some(2));
        assert_eq!(fib.lookup(u32::MAX), Some(3));
    }

    #[test]
    fn inserting_an_existing_prefix_replaces_its_next_hop() {
        let mut fib = Fib::new();
        fib.insert(ip("10.1.2.0"), 24, 1).unwrap();
        fib.insert(ip("10.1.2.64"), 26, 2).unwrap();
        assert_eq!(fib.insert(ip("10.1.2.0"), 24, 3), Ok(Some(1)));
        assert_eq!(fib.insert(ip("10.1.2.64"), 26, 4), Ok(Some(2)));
        assert_eq!(fib.len(), 2);
        assert_eq!(at(&fib, "10.1.2.1"), Some(3));
        assert_eq!(at(&fib, "10.1.2.65"), Some(4));
        assert_eq!(fib.get(ip("10.1.2.0"), 24), Some(3));
        assert_eq!(fib.remove(ip("10.1.2.64"), 26), Some(4));
        assert_eq!(at(&fib, "10.1.2.65"), Some(3));
    }

    #[test]
    fn bad_routes_are_refused_with_an_error_naming_the_value() {
        let mut fib = Fib::new();
        assert_eq!(
            fib.insert(ip("10.0.0.0"), 33, 1),
            Err(FibError::PrefixTooLong { len: 33 })
        );
        let err = fib.insert(ip("10.1.2.3"), 24, 1).unwrap_err();
        assert_eq!(
            err,
            FibError::HostBitsSet {
                prefix: ip("10.1.2.3"),
                len: 24,
                network: ip("10.1.2.0")
            }
        );
        assert!(err.to_string().contains("10.1.2.3/24"), "{err}");
        let err = fib.insert(ip("10.0.0.0"), 8, MAX_NEXT_HOP + 1).unwrap_err();
        assert!(
            err.to_string().contains(&(MAX_NEXT_HOP + 1).to_string()),
            "{err}"
        );
        assert_eq!(fib.insert(ip("10.0.0.0"), 8, MAX_NEXT_HOP), Ok(None));
        assert_eq!(at(&fib, "10.0.0.1"), Some(MAX_NEXT_HOP));
        assert_eq!(fib.len(), 1);
    }

    #[test]
    fn freed_second_level_groups_are_reused() {
        let mut fib = Fib::new();
        fib.insert(ip("10.0.0.128"), 25, 1).unwrap();
        fib.insert(ip("10.0.1.128"), 25, 2).unwrap();
        assert_eq!(fib.groups_in_use(), 2);
        fib.remove(ip("10.0.0.128"), 25).unwrap();
        fib.remove(ip("10.0.1.128"), 25).unwrap();
        assert_eq!(fib.groups_in_use(), 0);
        for i in 0..2u32 {
            fib.insert(Ipv4Addr::from(0x0b00_0000 | i << 8), 32, 3)
                .unwrap();
        }
        assert_eq!(fib.groups_in_use(), 2);
        assert_eq!(
            fib.tbl8.len(),
            2 * GROUP_LEN,
            "the second level did not grow"
        );
        assert_eq!(fib.lookup(0x0b00_0000), Some(3));
        assert_eq!(fib.lookup(0x0b00_0001), None);
        assert_eq!(fib.lookup(0x0a00_0080), None);
    }

    #[test]
    fn iter_dumps_every_prefix_shortest_first() {
        let mut fib = Fib::new();
        fib.insert(ip("10.1.2.0"), 24, 3).unwrap();
        fib.insert(ip("0.0.0.0"), 0, 1).unwrap();
        fib.insert(ip("10.0.0.0"), 8, 2).unwrap();
        fib.insert(ip("10.1.2.7"), 32, 4).unwrap();
        let dump: Vec<_> = fib.iter().collect();
        assert_eq!(
            dump,
            vec![
                (ip("0.0.0.0"), 0, 1),
                (ip("10.0.0.0"), 8, 2),
                (ip("10.1.2.0"), 24, 3),
                (ip("10.1.2.7"), 32, 4)
            ]
        );
    }

    #[test]
    fn debug_prints_counts_not_entries() {
        let mut fib = Fib::new();
        fib.insert(ip("10.0.0.0"), 8, 1).unwrap();
        fib.insert(ip("10.0.0.1"), 32, 2).unwrap();
        let text = format!("{fib:?}");
        assert_eq!(
            text,
            "Fib { prefixes: 2, groups_in_use: 1, groups_free: 0 }"
        );
    }

    #[test]
    fn clone_is_independent_of_the_original() {
        let mut fib = Fib::new();
        fib.insert(ip("10.0.0.0"), 8, 1).unwrap();
        fib.insert(ip("10.0.0.1"), 32, 2).unwrap();
        let mut copy = fib.clone();
        copy.remove(ip("10.0.0.1"), 32).unwrap();
        copy.insert(ip("10.0.0.0"), 8, 5).unwrap();
        assert_eq!(fib.lookup(0x0a00_0001), Some(2));
        assert_eq!(fib.lookup(0x0a00_0002), Some(1));
        assert_eq!(copy.lookup(0x0a00_0001), Some(5));
        assert_eq!(fib.len(), 2);
        assert_eq!(copy.len(), 1);
    }

    #[test]
    fn batch_lookup_agrees_with_single_lookups() {
        let mut fib = Fib::new();
        fib.insert(ip("10.0.0.0"), 8, 1).unwrap();
        fib.insert(ip("10.1.2.128"), 25, 2).unwrap();
        let addrs: Vec<u32> = (0..100u32)
            .map(|i| 0x0a01_0200u32.wrapping_add(i * 3) ^ (i << 27))
            .collect();
        let mut out = vec![None; addrs.len()];
        fib.lookup_batch(&addrs, &mut out);
        let single: Vec<_> = addrs.iter().map(|&a| fib.lookup(a)).collect();
        assert_eq!(out, single);
        assert!(out.contains(&Some(1)) && out.contains(&Some(2)) && out.contains(&None));
        // A shorter output slice bounds the work instead of panicking.
        let mut short = [Some(9); 3];
        fib.lookup_batch(&addrs, &mut short);
        assert_eq!(short[..], single[..3]);
    }
}
