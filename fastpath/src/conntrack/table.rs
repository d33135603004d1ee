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

use std::net::Ipv4Addr;

use super::key::{Direction, FlowKey};
use super::state::{FlowState, FlowValue, Millis, Timeouts};

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

/// Index of a flow in its table's slab. Valid until the flow is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowId(u32);

impl FlowId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A packet's flow and the direction the packet travels in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowHit {
    pub id: FlowId,
    pub direction: Direction,
}

/// Which side of the policy decided, for a flow whose verdict is cached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyDecision {
    /// The verdict for the flow (both directions: replies of an allowed flow pass).
    pub allowed: bool,
    /// The local endpoint whose egress policy was evaluated for the original direction.
    pub egress_endpoint: Option<u32>,
    /// The local endpoint whose ingress policy was evaluated for the original direction.
    pub ingress_endpoint: Option<u32>,
    /// Generation of the policy programme that decided, so a newer programme can be told from
    /// the one that allowed an established flow.
    pub generation: u32,
}

/// Packets and bytes seen in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionCounters {
    pub packets: u64,
    pub bytes: u64,
}

/// One tracked flow.
///
/// Laid out in C order and cache-line aligned so that what a lookup reads (the keys, the
/// deadline, whether the entry is live) sits in the entry's first cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Flow {
    /// Original and reply keys, indexed by [`Direction`]. When the reply key is not the
    /// original reversed, the flow is translated (see [`Flow::translated`]).
    keys: [FlowKey; 2],
    live: bool,
    state: FlowState,
    deadline: Millis,
    created: Millis,
    counters: [DirectionCounters; 2],
    pub policy: PolicyDecision,
}

impl Flow {
    const VACANT: Flow = Flow {
        keys: [FlowKey {
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
            protocol: 0,
            src_port: 0,
            dst_port: 0,
        }; 2],
        state: FlowState::Other { replied: false },
        created: 0,
        deadline: 0,
        counters: [DirectionCounters {
            packets: 0,
            bytes: 0,
        }; 2],
        policy: PolicyDecision {
            allowed: false,
            egress_endpoint: None,
            ingress_endpoint: None,
            generation: 0,
        },
        live: false,
    };

    pub fn key(&self, direction: Direction) -> &FlowKey {
        &self.keys[direction.index()]
    }

    pub fn original(&self) -> &FlowKey {
        &self.keys[0]
    }

    pub fn reply(&self) -> &FlowKey {
        &self.keys[1]
    }

    pub fn state(&self) -> FlowState {
        self.state
    }

    pub fn created(&self) -> Millis {
        self.created
    }

    /// When the flow expires unless another packet arrives.
    pub fn deadline(&self) -> Millis {
        self.deadline
    }

    pub fn counters(&self, direction: Direction) -> DirectionCounters {
        self.counters[direction.index()]
    }

    /// True when packets of this flow are rewritten (source or destination NAT).
    pub fn is_translated(&self) -> bool {
        self.keys[1] != self.keys[0].reversed()
    }

    /// The key a packet travelling in `direction` must carry when it leaves: the other
    /// direction's key reversed. For a source-NATed flow this is the node's address and port
    /// on the way out and the workload's on the way back.
    pub fn translated(&self, direction: Direction) -> FlowKey {
        self.keys[direction.opposite().index()].reversed()
    }

    fn is_expired(&self, now: Millis) -> bool {
        self.deadline <= now
    }

    /// Eviction order: expired first, then by value, then earliest deadline.
    fn eviction_rank(&self, now: Millis) -> (bool, FlowValue, Millis) {
        (!self.is_expired(now), self.state.value(), self.deadline)
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
        }
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
        flow.state = flow
            .state
            .advance(hit.direction, tcp_flags, now.saturating_sub(flow.created));
        flow.deadline = now.saturating_add(timeouts.for_state(flow.keys[0].protocol, flow.state));
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
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::conntrack::state::{TcpState, UdpState};
    use crate::wire::tcp::flags::{ACK, FIN, RST, SYN};
    use crate::wire::test_rng::Rng;

    const A: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
    const B: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 3);

    fn allowed() -> PolicyDecision {
        PolicyDecision {
            allowed: true,
            egress_endpoint: Some(7),
            ingress_endpoint: None,
            generation: 3,
        }
    }

    fn table(capacity: usize) -> FlowTable {
        FlowTable::new(FlowTableConfig::with_capacity(capacity))
    }

    fn insert(
        t: &mut FlowTable,
        key: FlowKey,
        flags: u8,
        now: Millis,
    ) -> Result<Inserted, InsertError> {
        t.insert(key, key.reversed(), flags, 100, allowed(), now)
    }

    #[test]
    fn finds_a_flow_from_both_directions_and_counts_hits_and_misses() {
        let mut t = table(16);
        let k = FlowKey::tcp(A, 40000, B, 80);
        let id = insert(&mut t, k, SYN, 0).unwrap().id;
        assert_eq!(
            t.lookup(&k, 1),
            Some(FlowHit {
                id,
                direction: Direction::Original
            })
        );
        assert_eq!(
            t.lookup(&k.reversed(), 1),
            Some(FlowHit {
                id,
                direction: Direction::Reply
            })
        );
        assert_eq!(t.lookup(&FlowKey::tcp(A, 40001, B, 80), 1), None);
        assert_eq!(
            t.lookup(&FlowKey::udp(A, 40000, B, 80), 1),
            None,
            "protocol is part of the key"
        );
        let c = t.counters();
        assert_eq!((c.created, c.lookup_hit, c.lookup_miss), (1, 2, 2));
        let f = t.flow(id);
        assert_eq!(
            (f.original(), f.reply(), f.policy),
            (&k, &k.reversed(), allowed())
        );
        assert!(!f.is_translated());
        assert_eq!(f.translated(Direction::Original), k);
        assert_eq!(
            f.counters(Direction::Original),
            DirectionCounters {
                packets: 1,
                bytes: 100
            }
        );
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn translated_flow_rewrites_each_direction_to_the_other_key_reversed() {
        let mut t = table(4);
        let orig = FlowKey::udp(A, 5000, B, 53);
        let node = Ipv4Addr::new(172, 16, 0, 1);
        let reply = FlowKey::udp(B, 53, node, 41000);
        let id = t.insert(orig, reply, 0, 60, allowed(), 0).unwrap().id;
        let f = t.flow(id);
        assert!(f.is_translated());
        assert_eq!(
            f.translated(Direction::Original),
            FlowKey::udp(node, 41000, B, 53)
        );
        assert_eq!(f.translated(Direction::Reply), FlowKey::udp(B, 53, A, 5000));
        assert_eq!(
            t.lookup(&reply, 0).map(|h| h.direction),
            Some(Direction::Reply)
        );
        assert_eq!(
            t.lookup(&orig.reversed(), 0),
            None,
            "replies to the pod's own address are not this flow"
        );
    }

    #[test]
    fn insert_of_a_taken_key_is_refused_and_counted() {
        let mut t = table(16);
        let k = FlowKey::udp(A, 1, B, 2);
        let id = insert(&mut t, k, 0, 0).unwrap().id;
        assert_eq!(
            insert(&mut t, k, 0, 1),
            Err(InsertError::Exists {
                key: k,
                hit: FlowHit {
                    id,
                    direction: Direction::Original
                }
            })
        );
        // A new flow whose reply key is the existing flow's original key.
        let other = FlowKey::udp(A, 9, B, 9);
        assert_eq!(
            t.insert(other, k, 0, 0, allowed(), 1),
            Err(InsertError::Exists {
                key: k,
                hit: FlowHit {
                    id,
                    direction: Direction::Original
                }
            })
        );
        assert_eq!((t.counters().insert_exists, t.len()), (2, 1));
        assert!(t.is_free(&other, 1) && !t.is_free(&k.reversed(), 1));
    }

    #[test]
    fn expired_flow_misses_at_its_deadline_and_is_removed() {
        let mut t = table(16);
        let k = FlowKey::udp(A, 1, B, 2);
        insert(&mut t, k, 0, 1_000).unwrap();
        assert!(t.lookup(&k, 30_999).is_some());
        assert_eq!(t.lookup(&k, 31_000), None, "udp unreplied: 30 s");
        assert_eq!((t.counters().expired, t.len()), (1, 0));
        assert!(
            insert(&mut t, k, 0, 31_000).is_ok(),
            "its keys are free again"
        );
    }

    #[test]
    fn tcp_deadlines_follow_each_transition() {
        let mut t = table(16);
        let k = FlowKey::tcp(A, 40000, B, 80);
        let id = insert(&mut t, k, SYN, 0).unwrap().id;
        let state = |t: &FlowTable| match t.flow(id).state() {
            FlowState::Tcp { state, .. } => state,
            s => panic!("{s:?}"),
        };
        assert_eq!(
            (state(&t), t.flow(id).deadline()),
            (TcpState::SynSent, 120_000)
        );
        let steps = [
            (
                Direction::Reply,
                SYN | ACK,
                1_000,
                TcpState::SynRecv,
                61_000,
            ),
            (
                Direction::Original,
                ACK,
                2_000,
                TcpState::Established,
                2_000 + 432_000_000,
            ),
            (
                Direction::Original,
                FIN | ACK,
                3_000,
                TcpState::FinWait,
                123_000,
            ),
            (Direction::Reply, ACK, 4_000, TcpState::CloseWait, 64_000),
            (
                Direction::Reply,
                FIN | ACK,
                5_000,
                TcpState::LastAck,
                35_000,
            ),
            (Direction::Original, ACK, 6_000, TcpState::TimeWait, 126_000),
            (Direction::Original, RST, 7_000, TcpState::Close, 17_000),
        ];
        for (dir, flags, now, want, deadline) in steps {
            let key = *t.flow(id).key(dir);
            let hit = t.lookup(&key, now).unwrap();
            assert_eq!(hit.direction, dir);
            t.track(hit, flags, 40, now);
            assert_eq!(
                (state(&t), t.flow(id).deadline()),
                (want, deadline),
                "after {flags:#x} from {dir:?}"
            );
        }
        assert_eq!(
            t.flow(id).counters(Direction::Original),
            DirectionCounters {
                packets: 5,
                bytes: 100 + 4 * 40
            }
        );
        assert_eq!(
            t.flow(id).counters(Direction::Reply),
            DirectionCounters {
                packets: 3,
                bytes: 120
            }
        );
        assert_eq!(t.lookup(&k, 16_999).map(|h| h.id), Some(id));
        assert_eq!(t.lookup(&k, 17_000), None, "closed: 10 s after the RST");
    }

    #[test]
    fn udp_and_icmp_deadlines() {
        let mut t = table(16);
        let u = FlowKey::udp(A, 1, B, 2);
        let id = insert(&mut t, u, 0, 0).unwrap().id;
        let hit = t.lookup(&u.reversed(), 500).unwrap();
        assert_eq!(t.track(hit, 0, 10, 500), FlowState::Udp(UdpState::Replied));
        assert_eq!(t.flow(id).deadline(), 30_500);
        let hit = t.lookup(&u, 2_500).unwrap();
        assert_eq!(t.track(hit, 0, 10, 2_500), FlowState::Udp(UdpState::Stream));
        assert_eq!(t.flow(id).deadline(), 122_500);
        let e = FlowKey::icmp_echo(A, B, 99);
        let id = insert(&mut t, e, 0, 0).unwrap().id;
        let hit = t.lookup(&e.reversed(), 10).unwrap();
        assert_eq!(hit.direction, Direction::Reply);
        assert_eq!(t.track(hit, 0, 84, 10), FlowState::Other { replied: true });
        assert_eq!(t.flow(id).deadline(), 30_010);
    }

    #[test]
    fn sweep_removes_only_expired_flows_within_its_budget() {
        let mut t = table(8);
        for i in 0..8u16 {
            // Even ports: UDP (30 s); odd: TCP established (5 days).
            let k = if i % 2 == 0 {
                FlowKey::udp(A, i, B, 1)
            } else {
                FlowKey::tcp(A, i, B, 1)
            };
            insert(&mut t, k, ACK, 0).unwrap();
        }
        assert_eq!(t.expire(29_999, 8), 0);
        assert_eq!(t.expire(30_000, 3), 2, "slots 0..3 hold two UDP flows");
        assert_eq!(t.expire(30_000, 5), 2, "the hand goes on from slot 3");
        assert_eq!(t.expire(30_000, 100), 0);
        assert_eq!((t.len(), t.counters().expired), (4, 4));
        assert!(t
            .iter()
            .all(|(_, f)| f.original().protocol == crate::wire::ipv4::protocol::TCP));
    }

    #[test]
    fn full_table_evicts_expired_then_unreplied_then_replied_never_established() {
        let mut t = table(4);
        let est = FlowKey::tcp(A, 1, B, 80);
        let replied = FlowKey::udp(A, 2, B, 53);
        let old_unreplied = FlowKey::udp(A, 3, B, 53);
        let young_syn = FlowKey::tcp(A, 4, B, 80);
        insert(&mut t, est, ACK, 0).unwrap();
        let rid = insert(&mut t, replied, 0, 0).unwrap().id;
        t.track(
            FlowHit {
                id: rid,
                direction: Direction::Reply,
            },
            0,
            10,
            1_000,
        );
        insert(&mut t, old_unreplied, 0, 0).unwrap(); // deadline 30 s
        insert(&mut t, young_syn, SYN, 1_000).unwrap(); // deadline 121 s
        let gone = |t: &mut FlowTable, k: &FlowKey| t.lookup(k, 2_000).is_none();

        // New half-open TCP flows, one per ms: deadlines from 122 s, later than young_syn's.
        let new = |p: u16| FlowKey::tcp(A, 100 + p, B, 9);
        let r = insert(&mut t, new(0), SYN, 2_000).unwrap();
        assert_eq!((r.evicted, r.expired), (1, 0));
        assert!(
            gone(&mut t, &old_unreplied),
            "the unreplied flow nearest its deadline goes first"
        );
        let r = insert(&mut t, new(1), SYN, 2_001).unwrap();
        assert_eq!(r.evicted, 1);
        assert!(
            gone(&mut t, &young_syn),
            "then the older half-open TCP flow"
        );
        // Now: est, replied, new(0), new(1); the half-open ones go before the replied one.
        insert(&mut t, new(2), SYN, 2_002).unwrap();
        assert!(gone(&mut t, &new(0)));
        insert(&mut t, new(3), SYN, 2_003).unwrap();
        assert!(gone(&mut t, &new(1)));
        assert!(!gone(&mut t, &replied) && !gone(&mut t, &est));
        assert_eq!(t.counters().evicted, 4);
        // At 31 s the replied UDP flow has expired: it is taken first, counted as expired.
        let r = insert(&mut t, new(4), SYN, 31_000).unwrap();
        assert_eq!((r.evicted, r.expired), (0, 1));
        assert_eq!(t.counters().evicted, 4);
        assert!(t.lookup(&replied, 31_000).is_none() && t.lookup(&est, 31_000).is_some());
    }

    #[test]
    fn established_flows_are_kept_unless_configured_and_table_full_is_reported() {
        for evict_established in [false, true] {
            let mut t = FlowTable::new(FlowTableConfig {
                evict_established,
                ..FlowTableConfig::with_capacity(2)
            });
            let first = FlowKey::tcp(A, 1, B, 80);
            insert(&mut t, first, ACK, 0).unwrap();
            insert(&mut t, FlowKey::tcp(A, 2, B, 80), ACK, 10).unwrap();
            let third = FlowKey::tcp(A, 3, B, 80);
            let r = insert(&mut t, third, SYN, 20);
            if evict_established {
                assert_eq!(r.unwrap().evicted, 1);
                assert!(t.lookup(&first, 20).is_none(), "the earliest deadline goes");
            } else {
                assert_eq!(
                    r,
                    Err(InsertError::TableFull {
                        key: third,
                        capacity: 2
                    })
                );
                assert_eq!(t.counters().table_full, 1);
                assert_eq!(t.len(), 2);
                assert!(t.lookup(&first, 20).is_some());
            }
        }
    }

    #[test]
    fn full_buckets_evict_from_the_buckets_by_the_same_order() {
        // Two buckets of 8 slots hold 8 flows (16 keys) whatever the slab's capacity.
        let mut t = FlowTable::with_index(FlowTableConfig::with_capacity(64), 2);
        let mut keys = Vec::new();
        for i in 0..8u16 {
            // One unreplied UDP flow among established TCP ones.
            let k = if i == 5 {
                FlowKey::udp(A, i, B, 1)
            } else {
                FlowKey::tcp(A, i, B, 1)
            };
            insert(&mut t, k, ACK, u64::from(i)).unwrap();
            keys.push(k);
        }
        let r = insert(&mut t, FlowKey::tcp(A, 100, B, 1), ACK, 10).unwrap();
        assert_eq!(r.evicted, 1);
        assert!(
            t.lookup(&keys[5], 11).is_none(),
            "the unreplied flow was evicted"
        );
        assert_eq!(t.len(), 8);
        // Now only established flows: the next insert fails, the slab notwithstanding.
        let k = FlowKey::tcp(A, 101, B, 1);
        assert_eq!(
            insert(&mut t, k, ACK, 12),
            Err(InsertError::TableFull {
                key: k,
                capacity: 64
            })
        );
        assert_eq!(t.len(), 8);
        assert!(t.is_free(&k, 12), "a failed insert leaves nothing behind");
        assert_eq!(t.counters().table_full, 1);
    }

    #[test]
    fn a_crowded_index_moves_entries_to_their_other_bucket_instead_of_evicting() {
        // 8 buckets, 64 slots: 28 flows put 56 keys in, 7 a bucket on average, so many first
        // buckets overflow; every flow must still go in and be found both ways.
        let mut t = FlowTable::with_index(FlowTableConfig::with_capacity(64), 8);
        let keys: Vec<FlowKey> = (0..28u16)
            .map(|i| FlowKey::tcp(A, 1000 + i, B, 443))
            .collect();
        for &k in &keys {
            insert(&mut t, k, ACK, 0).unwrap();
        }
        assert_eq!(
            (t.counters().evicted, t.counters().table_full, t.len()),
            (0, 0, 28)
        );
        for &k in &keys {
            let hit = t.lookup(&k, 1).unwrap();
            assert_eq!(
                t.lookup(&k.reversed(), 1),
                Some(FlowHit {
                    direction: Direction::Reply,
                    ..hit
                })
            );
            assert_eq!(t.flow(hit.id).original(), &k);
        }
        // Removing every flow empties the index: no entry was left behind by a move.
        for &k in &keys {
            let id = t.lookup(&k, 1).unwrap().id;
            t.remove(id);
        }
        assert!(t.index.iter().all(|b| b.matching(0) == 0xff));
    }

    #[test]
    fn remove_frees_both_keys_and_a_self_addressed_flow_has_one() {
        let mut t = table(4);
        let k = FlowKey::udp(A, 1, B, 2);
        let id = insert(&mut t, k, 0, 0).unwrap().id;
        t.remove(id);
        t.remove(id); // twice is harmless
        assert!(t.is_free(&k, 0) && t.is_free(&k.reversed(), 0));
        assert!(t.is_empty());
        let own = FlowKey::udp(A, 7, A, 7);
        let id = insert(&mut t, own, 0, 0).unwrap().id;
        assert_eq!(
            t.lookup(&own, 0),
            Some(FlowHit {
                id,
                direction: Direction::Original
            })
        );
        t.remove(id);
        assert!(t.is_free(&own, 0));
    }

    #[test]
    fn counters_sum_across_tables() {
        let mut total = ConntrackCounters::default();
        for _ in 0..3 {
            let mut t = table(4);
            insert(&mut t, FlowKey::udp(A, 1, B, 2), 0, 0).unwrap();
            t.lookup(&FlowKey::udp(A, 1, B, 2), 0);
            t.lookup(&FlowKey::udp(A, 1, B, 3), 0);
            total += t.counters();
        }
        assert_eq!(
            (total.created, total.lookup_hit, total.lookup_miss),
            (3, 3, 3)
        );
    }

    /// Random inserts, lookups, removals and sweeps against a plain map of the same flows:
    /// the index never loses or invents a flow, in either direction.
    #[test]
    fn agrees_with_a_model_under_random_operations() {
        let mut rng = Rng::new(2024);
        let mut t = table(512);
        let mut model: HashMap<FlowKey, (FlowId, Millis)> = HashMap::new();
        let key = |rng: &mut Rng| FlowKey::udp(A, rng.below(300) as u16, B, 53);
        let mut now = 0;
        for _ in 0..50_000 {
            now += rng.below(50) as u64;
            model.retain(|_, (_, deadline)| *deadline > now);
            let k = key(&mut rng);
            match rng.below(10) {
                0..=3 => match insert(&mut t, k, 0, now) {
                    Ok(ins) => {
                        assert!(!model.contains_key(&k));
                        model.insert(k, (ins.id, now + 30_000));
                    }
                    Err(InsertError::Exists { hit, .. }) => assert_eq!(model[&k].0, hit.id),
                    Err(e) => panic!("{e}"),
                },
                4..=6 => {
                    let dir = if rng.below(2) == 0 {
                        Direction::Original
                    } else {
                        Direction::Reply
                    };
                    let probe = if dir == Direction::Original {
                        k
                    } else {
                        k.reversed()
                    };
                    let got = t.lookup(&probe, now);
                    assert_eq!(
                        got,
                        model.get(&k).map(|&(id, _)| FlowHit { id, direction: dir })
                    );
                    if let Some(hit) = got {
                        t.track(hit, 0, 1, now);
                        model.get_mut(&k).unwrap().1 = t.flow(hit.id).deadline();
                    }
                }
                7 => {
                    if let Some((id, _)) = model.remove(&k) {
                        t.remove(id);
                    }
                }
                _ => {
                    t.expire(now, 16);
                }
            }
            assert!(t.len() >= model.len());
        }
        t.expire(now, t.capacity());
        assert_eq!(t.len(), model.len());
        assert_eq!(t.counters().evicted, 0);
    }
}
