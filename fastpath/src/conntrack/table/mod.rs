//! The flow table: a fixed-capacity, two-way index of flows for one worker.
//!
//! Layout. Flows live in a slab (`flows`) allocated once at creation, with a free list. An
//! index of 64-byte buckets (8 slots of a 32-bit hash tag and a flow reference) maps *both*
//! keys of every flow, original and reply, to its slab entry, so one probe finds a packet's
//! flow and its direction. A key sits in the first free slot of its first bucket, or of a
//! second bucket derived from the tag when the first is full; at the index's load (at most half
//! its slots when the slab is full) the second bucket rarely fills, and most lookups read one
//! cache line of index and one flow, at most two and one.
//!
//! Nothing allocates after [`FlowTable::new`]: insert, lookup, expiry and eviction only move
//! entries within the slab and the index.
//!
//! Time. The caller passes `now` (a monotonic [`Millis`]); each packet sets a flow's deadline
//! to `now` plus the timeout of its state. Expired flows are removed lazily when a lookup or an
//! insert meets them, and by [`FlowTable::expire`], a bounded sweep the worker runs once per
//! batch.
//!
//! Pressure. When both buckets of a new key are full, or the slab is, the insert evicts: an
//! expired flow if it sees one, else the least valuable flow among the candidates (the flows
//! in those buckets, or a window of the slab under a rotating hand), by [`FlowValue`] then
//! earliest deadline. Established flows (TCP established, UDP streams) are evicted only when
//! [`FlowTableConfig::evict_established`] is set; otherwise the insert fails with
//! [`InsertError::TableFull`], as Linux's early drop spares assured connections.

use super::key::{Direction, FlowKey};
use super::persist::{FlowFile, SavedFlow};
use super::state::{FlowState, FlowValue, Millis, Timeouts};

mod flow;

pub use flow::{DirectionCounters, Flow, FlowHit, FlowId, PolicyDecision};

/// Slots per index bucket: 8 tags and 8 references fill one 64-byte cache line.
const SLOTS: usize = 8;

/// How a table is sized and behaves; fixed at creation.
#[derive(Clone, Copy, Debug)]
pub struct FlowTableConfig {
    /// Most flows held at once (at least 1, at most 2^31 - 1).
    pub capacity: usize,
    pub timeouts: Timeouts,
    /// Hash seed; pick it at random per process so that bucket placement is not predictable
    /// from outside.
    pub seed: u64,
    /// How many slab entries an insert into a full table examines for a victim.
    pub eviction_window: usize,
    /// Whether an insert may evict an established flow when nothing less valuable is found.
    pub evict_established: bool,
}

impl FlowTableConfig {
    pub fn with_capacity(capacity: usize) -> FlowTableConfig {
        FlowTableConfig {
            capacity,
            timeouts: Timeouts::default(),
            seed: 0x5eed_f10f_7ab1_e000,
            eviction_window: 64,
            evict_established: false,
        }
    }
}
/// What an insert did besides inserting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inserted {
    pub id: FlowId,
    /// Live flows evicted to make room (counted in [`ConntrackCounters::evicted`]).
    pub evicted: u32,
    /// Expired flows removed to make room (counted in [`ConntrackCounters::expired`]).
    pub expired: u32,
}

/// Why an insert did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// A live flow already holds the original or the reply key.
    #[error("a flow already holds key {key} ({:?} direction)", hit.direction)]
    Exists { key: FlowKey, hit: FlowHit },
    /// No room and nothing evictable: every candidate is an established flow.
    #[error("flow table full ({capacity} flows) and no flow may be evicted for {key}")]
    TableFull { key: FlowKey, capacity: usize },
}

/// Counters of one table. Workers each have a table; readers sum them with `+=`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConntrackCounters {
    pub created: u64,
    pub expired: u64,
    pub evicted: u64,
    /// Inserts refused for lack of room.
    pub table_full: u64,
    pub lookup_hit: u64,
    pub lookup_miss: u64,
    /// Inserts refused because a key was taken.
    pub insert_exists: u64,
}

impl std::ops::AddAssign for ConntrackCounters {
    fn add_assign(&mut self, o: ConntrackCounters) {
        self.created += o.created;
        self.expired += o.expired;
        self.evicted += o.evicted;
        self.table_full += o.table_full;
        self.lookup_hit += o.lookup_hit;
        self.lookup_miss += o.lookup_miss;
        self.insert_exists += o.insert_exists;
    }
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Bucket {
    /// 0 marks an empty slot; tags are never 0.
    tags: [u32; SLOTS],
    /// Slab index << 1 | direction.
    refs: [u32; SLOTS],
}

const EMPTY_BUCKET: Bucket = Bucket {
    tags: [0; SLOTS],
    refs: [0; SLOTS],
};

impl Bucket {
    /// A bit per slot whose tag is `tag` (0 finds the empty slots).
    #[inline(always)]
    fn matching(&self, tag: u32) -> u32 {
        let mut mask = 0;
        for (s, &t) in self.tags.iter().enumerate() {
            mask |= u32::from(t == tag) << s;
        }
        mask
    }
}

/// Where a key hashes: its tag and its two candidate buckets.
#[derive(Clone, Copy)]
struct Place {
    tag: u32,
    buckets: [usize; 2],
}

/// A bounded flow table for one worker; see the module documentation.
pub struct FlowTable {
    config: FlowTableConfig,
    flows: Vec<Flow>,
    free: Vec<u32>,
    index: Vec<Bucket>,
    bucket_mask: usize,
    /// The slab position where the next sweep or eviction scan starts.
    hand: usize,
    len: usize,
    counters: ConntrackCounters,
    /// Where the flows are kept for the next process, if anywhere (`persist`).
    file: Option<FlowFile>,
}

impl FlowTable {
    /// Allocates everything the table will ever use. `capacity` is clamped to 1..2^31.
    pub fn new(config: FlowTableConfig) -> FlowTable {
        let capacity = config.capacity.clamp(1, (u32::MAX >> 1) as usize);
        // Two keys per flow, at most half the index slots used when full.
        let buckets = (capacity * 2 * 2).div_ceil(SLOTS);
        FlowTable::with_index(FlowTableConfig { capacity, ..config }, buckets)
    }

    /// A table with `buckets` index buckets (rounded up to a power of two, at least 2); tests
    /// use a tiny index to fill buckets before the slab.
    fn with_index(config: FlowTableConfig, buckets: usize) -> FlowTable {
        let capacity = config.capacity.clamp(1, (u32::MAX >> 1) as usize);
        let buckets = buckets.next_power_of_two().max(2);
        FlowTable {
            config: FlowTableConfig {
                capacity,
                eviction_window: config.eviction_window.max(1),
                ..config
            },
            flows: vec![Flow::VACANT; capacity],
            free: (0..capacity as u32).rev().collect(),
            index: vec![EMPTY_BUCKET; buckets],
            bucket_mask: buckets - 1,
            hand: 0,
            len: 0,
            counters: ConntrackCounters::default(),
            file: None,
        }
    }

    /// Keeps the table's flows in `file` from now on (for a table that is still empty, as
    /// a worker's is when it starts: flows already held are written too).
    pub fn keep_in(&mut self, mut file: FlowFile) {
        for (i, flow) in self.flows.iter().enumerate().filter(|(_, f)| f.live) {
            file.write(i, flow);
        }
        self.file = Some(file);
    }

    /// Inserts a flow a previous process saved ([`FlowFile::open`]): with its state, its
    /// policy decision and a fresh deadline for its state from `now`.
    pub fn restore(&mut self, saved: &SavedFlow, now: Millis) -> Result<FlowId, InsertError> {
        let id = self
            .insert(saved.original, saved.reply, 0, 0, saved.policy, now)?
            .id;
        let flow = &mut self.flows[id.index()];
        flow.state = saved.state;
        flow.counters = [DirectionCounters::default(); 2];
        flow.deadline = now.saturating_add(
            self.config
                .timeouts
                .for_state(saved.original.protocol, saved.state),
        );
        if let Some(file) = self.file.as_mut() {
            file.set_state(id.index(), saved.state);
        }
        Ok(id)
    }

    pub fn config(&self) -> &FlowTableConfig {
        &self.config
    }

    pub fn capacity(&self) -> usize {
        self.config.capacity
    }

    /// Flows held, including expired ones not yet swept.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn counters(&self) -> ConntrackCounters {
        self.counters
    }

    pub fn flow(&self, id: FlowId) -> &Flow {
        &self.flows[id.index()]
    }

    pub fn flow_mut(&mut self, id: FlowId) -> &mut Flow {
        &mut self.flows[id.index()]
    }

    /// The flow a packet with `key` belongs to, and its direction; counts a hit or a miss.
    /// An expired flow found on the way is removed and reported as a miss.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey, now: Millis) -> Option<FlowHit> {
        match self.find(key) {
            Some(hit) if !self.flows[hit.id.index()].is_expired(now) => {
                self.counters.lookup_hit += 1;
                Some(hit)
            }
            Some(hit) => {
                self.remove_counted(hit.id, now);
                self.counters.lookup_miss += 1;
                None
            }
            None => {
                self.counters.lookup_miss += 1;
                None
            }
        }
    }

    /// Starts loading the index bucket `key` will be looked up in, so that a lookup a few
    /// packets later does not wait for memory. A worker calls it for every packet of a batch,
    /// then looks them up: with a big table most of a lookup's time is this one cache miss.
    #[inline]
    pub fn prefetch(&self, key: &FlowKey) {
        let bucket = &self.index[self.place(key).buckets[0]];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint; it reads no memory the program can observe and
        // cannot fault, and SSE is part of the x86_64 baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                (bucket as *const Bucket).cast::<i8>(),
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = bucket;
    }

    /// True when no live (unexpired) flow holds `key` in either direction. Counts nothing;
    /// source NAT asks this of candidate reply keys.
    #[inline]
    pub fn is_free(&self, key: &FlowKey, now: Millis) -> bool {
        self.find(key)
            .is_none_or(|hit| self.flows[hit.id.index()].is_expired(now))
    }

    /// Accounts a packet of `bytes` with TCP `tcp_flags` (0 for other protocols) to the flow,
    /// advances its state and pushes its deadline out. Returns the new state.
    #[inline]
    pub fn track(&mut self, hit: FlowHit, tcp_flags: u8, bytes: u32, now: Millis) -> FlowState {
        let timeouts = &self.config.timeouts;
        let flow = &mut self.flows[hit.id.index()];
        let c = &mut flow.counters[hit.direction.index()];
        c.packets += 1;
        c.bytes += u64::from(bytes);
        let before = flow.state;
        flow.state = flow
            .state
            .advance(hit.direction, tcp_flags, now.saturating_sub(flow.created));
        flow.deadline = now.saturating_add(timeouts.for_state(flow.keys[0].protocol, flow.state));
        if flow.state != before {
            if let Some(file) = self.file.as_mut() {
                file.set_state(hit.id.index(), flow.state);
            }
        }
        flow.state
    }

    /// Creates a flow whose first packet (original direction, `tcp_flags`, `bytes`) is being
    /// forwarded now. `reply` is `original.reversed()` unless the flow is translated.
    pub fn insert(
        &mut self,
        original: FlowKey,
        reply: FlowKey,
        tcp_flags: u8,
        bytes: u32,
        policy: PolicyDecision,
        now: Millis,
    ) -> Result<Inserted, InsertError> {
        let mut done = Inserted {
            id: FlowId(0),
            evicted: 0,
            expired: 0,
        };
        for key in [original, reply] {
            if let Some(hit) = self.find(&key) {
                if !self.flows[hit.id.index()].is_expired(now) {
                    self.counters.insert_exists += 1;
                    return Err(InsertError::Exists { key, hit });
                }
                self.remove_counted(hit.id, now);
                done.expired += 1;
            }
        }
        if self.free.is_empty() {
            self.make_room_in_slab(original, now, &mut done)?;
        }
        let Some(idx) = self.free.pop() else {
            // make_room_in_slab either freed an entry or returned TableFull.
            self.counters.table_full += 1;
            return Err(InsertError::TableFull {
                key: original,
                capacity: self.config.capacity,
            });
        };
        // The flow is written before it is indexed, so that the eviction scans below see a
        // live flow behind its first slot (and skip it) rather than a stale entry.
        let state = FlowState::new(original.protocol, tcp_flags);
        let deadline = now.saturating_add(self.config.timeouts.for_state(original.protocol, state));
        self.flows[idx as usize] = Flow {
            keys: [original, reply],
            state,
            created: now,
            deadline,
            counters: [
                DirectionCounters {
                    packets: 1,
                    bytes: u64::from(bytes),
                },
                DirectionCounters::default(),
            ],
            policy,
            live: true,
        };
        let original_place = self.place(&original);
        let original_slot =
            match self.make_room_in_buckets(original, original_place, idx, now, &mut done) {
                Ok(slot) => slot,
                Err(e) => return Err(self.abandon(idx, None, e)),
            };
        self.set_slot(original_place, original_slot, idx << 1);
        // The reply key is indexed only when it differs (a flow from an address to itself
        // with equal ports has one key).
        if reply != original {
            let place = self.place(&reply);
            match self.make_room_in_buckets(reply, place, idx, now, &mut done) {
                Ok(slot) => self.set_slot(place, slot, (idx << 1) | 1),
                Err(e) => return Err(self.abandon(idx, Some(original_slot), e)),
            }
        }
        self.len += 1;
        self.counters.created += 1;
        if let Some(file) = self.file.as_mut() {
            file.write(idx as usize, &self.flows[idx as usize]);
        }
        done.id = FlowId(idx);
        Ok(done)
    }

    /// Removes a flow (its keys become free at once, e.g. a source NAT port).
    pub fn remove(&mut self, id: FlowId) {
        let flow = &self.flows[id.index()];
        if !flow.live {
            return;
        }
        let keys = flow.keys;
        if let Some(file) = self.file.as_mut() {
            file.clear(id.index());
        }
        for (dir, key) in keys.iter().enumerate() {
            let place = self.place(key);
            let wanted = (id.0 << 1) | dir as u32;
            'buckets: for b in place.buckets {
                let bucket = &mut self.index[b];
                for s in 0..SLOTS {
                    if bucket.tags[s] == place.tag && bucket.refs[s] == wanted {
                        bucket.tags[s] = 0;
                        break 'buckets;
                    }
                }
            }
        }
        self.flows[id.index()].live = false;
        self.free.push(id.0);
        self.len -= 1;
    }

    /// Sweeps up to `budget` slab entries from the rotating hand and removes the expired
    /// flows among them; returns how many. A worker calls this once per batch with a small
    /// budget, so the whole table is swept every `capacity / budget` batches without a timer.
    /// Size the budget so that a sweep finishes well within the time new flows take to fill
    /// the table's headroom: otherwise an insert into a full slab may find no expired flow in
    /// its eviction window and evict a live unreplied one (counted in `evicted`).
    pub fn expire(&mut self, now: Millis, budget: usize) -> usize {
        let mut removed = 0;
        for _ in 0..budget.min(self.flows.len()) {
            let idx = self.advance_hand();
            let flow = &self.flows[idx];
            if flow.live && flow.is_expired(now) {
                self.remove(FlowId(idx as u32));
                self.counters.expired += 1;
                removed += 1;
            }
        }
        removed
    }

    /// Live flows (including expired ones not yet removed), in slab order.
    pub fn iter(&self) -> impl Iterator<Item = (FlowId, &Flow)> {
        self.flows
            .iter()
            .enumerate()
            .filter(|(_, f)| f.live)
            .map(|(i, f)| (FlowId(i as u32), f))
    }

    fn advance_hand(&mut self) -> usize {
        let idx = self.hand;
        self.hand = if idx + 1 == self.flows.len() {
            0
        } else {
            idx + 1
        };
        idx
    }

    #[inline(always)]
    fn place(&self, key: &FlowKey) -> Place {
        let h = key.seeded_hash(self.config.seed);
        let tag = ((h >> 32) as u32).max(1);
        let first = h as usize & self.bucket_mask;
        Place {
            tag,
            buckets: [first, self.other_bucket(first, tag)],
        }
    }

    /// A key's other bucket, from either of its two and its tag alone (the map is its own
    /// inverse and never gives the same bucket), so an entry can be moved between its two
    /// buckets without its key.
    #[inline]
    fn other_bucket(&self, bucket: usize, tag: u32) -> usize {
        bucket ^ ((tag.wrapping_mul(0x5bd1_e995) as usize | 1) & self.bucket_mask)
    }

    #[inline(always)]
    fn find(&self, key: &FlowKey) -> Option<FlowHit> {
        let h = key.seeded_hash(self.config.seed);
        let tag = ((h >> 32) as u32).max(1);
        let first = h as usize & self.bucket_mask;
        // Most keys sit in their first bucket; the second is computed only when needed.
        self.probe(first, tag, key)
            .or_else(|| self.probe(self.other_bucket(first, tag), tag, key))
    }

    /// The flow behind `key` if bucket `b` holds it.
    #[inline(always)]
    fn probe(&self, b: usize, tag: u32, key: &FlowKey) -> Option<FlowHit> {
        let bucket = &self.index[b];
        // All eight tags compared at once (the compiler makes this one vector compare and
        // a mask), then only the slots whose tag matches: usually one, on a hit.
        let mut matches = bucket.matching(tag);
        while matches != 0 {
            let s = matches.trailing_zeros() as usize;
            matches &= matches - 1;
            let r = bucket.refs[s];
            let flow = &self.flows[(r >> 1) as usize];
            if flow.keys[(r & 1) as usize] == *key {
                let direction = if r & 1 == 0 {
                    Direction::Original
                } else {
                    Direction::Reply
                };
                return Some(FlowHit {
                    id: FlowId(r >> 1),
                    direction,
                });
            }
        }
        None
    }

    fn set_slot(&mut self, place: Place, (bucket, slot): (usize, usize), r: u32) {
        self.index[bucket].tags[slot] = place.tag;
        self.index[bucket].refs[slot] = r;
    }

    /// A free slot for a key in the emptier of its buckets, evicting the least valuable flow
    /// referenced from them when both are full.
    fn make_room_in_buckets(
        &mut self,
        key: FlowKey,
        place: Place,
        inserting: u32,
        now: Millis,
        done: &mut Inserted,
    ) -> Result<(usize, usize), InsertError> {
        if let Some(slot) = self.free_slot(place) {
            return Ok(slot);
        }
        if let Some(slot) = self.move_one_aside(place) {
            return Ok(slot);
        }
        let mut victim: Option<(u32, (bool, FlowValue, Millis))> = None;
        for b in place.buckets {
            for r in self.index[b].refs {
                if r >> 1 == inserting {
                    continue;
                }
                let rank = self.flows[(r >> 1) as usize].eviction_rank(now);
                if victim.is_none_or(|(_, best)| rank < best) {
                    victim = Some((r >> 1, rank));
                }
            }
        }
        self.evict(victim, key, now, done)?;
        self.free_slot(place).ok_or(InsertError::TableFull {
            key,
            capacity: self.config.capacity,
        })
    }

    /// The first free slot of the key's first bucket, else of its second: most keys then sit
    /// in their first bucket and most lookups read one bucket; the second takes the overflow.
    fn free_slot(&self, place: Place) -> Option<(usize, usize)> {
        for bucket in place.buckets {
            let free = self.index[bucket].matching(0);
            if free != 0 {
                return Some((bucket, free.trailing_zeros() as usize));
            }
        }
        None
    }

    /// Frees a slot in one of the key's (full) buckets by moving one of its entries to that
    /// entry's other bucket, if one has room (one step of cuckoo hashing). This keeps buckets
    /// from overflowing where one choice per key would (a few full buckets in a big table).
    fn move_one_aside(&mut self, place: Place) -> Option<(usize, usize)> {
        for b in place.buckets {
            for s in 0..SLOTS {
                let (tag, r) = (self.index[b].tags[s], self.index[b].refs[s]);
                let alt = self.other_bucket(b, tag);
                let free = self.index[alt].matching(0);
                if free != 0 {
                    let t = free.trailing_zeros() as usize;
                    self.index[alt].tags[t] = tag;
                    self.index[alt].refs[t] = r;
                    self.index[b].tags[s] = 0;
                    return Some((b, s));
                }
            }
        }
        None
    }

    /// Frees one slab entry: the first expired flow in the eviction window under the hand,
    /// else the least valuable one in it.
    fn make_room_in_slab(
        &mut self,
        key: FlowKey,
        now: Millis,
        done: &mut Inserted,
    ) -> Result<(), InsertError> {
        let mut victim: Option<(u32, (bool, FlowValue, Millis))> = None;
        for _ in 0..self.config.eviction_window.min(self.flows.len()) {
            let idx = self.advance_hand();
            let flow = &self.flows[idx];
            if !flow.live {
                continue;
            }
            let rank = flow.eviction_rank(now);
            if victim.is_none_or(|(_, best)| rank < best) {
                victim = Some((idx as u32, rank));
            }
            if flow.is_expired(now) {
                break;
            }
        }
        self.evict(victim, key, now, done)
    }

    fn evict(
        &mut self,
        victim: Option<(u32, (bool, FlowValue, Millis))>,
        key: FlowKey,
        now: Millis,
        done: &mut Inserted,
    ) -> Result<(), InsertError> {
        match victim {
            Some((idx, (false, _, _))) => {
                self.remove_counted(FlowId(idx), now);
                done.expired += 1;
                Ok(())
            }
            Some((idx, (true, value, _)))
                if value < FlowValue::Established || self.config.evict_established =>
            {
                self.remove(FlowId(idx));
                self.counters.evicted += 1;
                done.evicted += 1;
                Ok(())
            }
            _ => {
                self.counters.table_full += 1;
                Err(InsertError::TableFull {
                    key,
                    capacity: self.config.capacity,
                })
            }
        }
    }

    /// Undoes a half-done insert of slab entry `idx`.
    fn abandon(
        &mut self,
        idx: u32,
        original_slot: Option<(usize, usize)>,
        e: InsertError,
    ) -> InsertError {
        if let Some((bucket, slot)) = original_slot {
            self.index[bucket].tags[slot] = 0;
        }
        self.flows[idx as usize].live = false;
        self.free.push(idx);
        e
    }

    /// Removes a flow found expired.
    fn remove_counted(&mut self, id: FlowId, _now: Millis) {
        self.remove(id);
        self.counters.expired += 1;
    }
}

#[cfg(test)]
mod tests;
