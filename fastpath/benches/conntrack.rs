//! Flow table: lookups that hit at 1k, 100k and 1M flows, and insert+expire churn, for our
//! [`FlowTable`] and, side by side in the same run, the same table built on `std`'s `HashMap`
//! (hashbrown's SwissTable) with its default SipHash and with foldhash (hashbrown's default
//! hasher, the fastest general-purpose one we found), each indexing both keys of every flow.
//!
//! Run: `cargo bench -p fastpath --bench conntrack`

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fastpath::conntrack::{
    Direction, FlowKey, FlowTable, FlowTableConfig, Millis, PolicyDecision, Timeouts,
};
use fastpath::wire::tcp::flags::ACK;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Lookups per measured iteration (random flows, both directions).
const PROBES: usize = 1 << 16;
const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
const NOW: Millis = 1_000;

/// `n` distinct TCP flows between random pod and remote addresses.
fn random_flows(n: usize, seed: u64) -> Vec<FlowKey> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let k = FlowKey::tcp(
            Ipv4Addr::from(0xc0a8_0000 | (rng.gen::<u32>() & 0xffff)),
            rng.gen_range(32768..61000),
            Ipv4Addr::from(rng.gen::<u32>()),
            [80, 443, 53, 8080][rng.gen_range(0..4)],
        );
        if seen.insert(k) {
            out.push(k);
        }
    }
    out
}

/// The packets' keys: random flows, half of them replies.
fn probes(flows: &[FlowKey], seed: u64) -> Vec<FlowKey> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..PROBES)
        .map(|_| {
            let k = flows[rng.gen_range(0..flows.len())];
            if rng.gen::<bool>() {
                k.reversed()
            } else {
                k
            }
        })
        .collect()
}

/// What our table stores per flow, for the `HashMap` tables to do the same work per hit.
struct BaselineFlow {
    keys: [FlowKey; 2],
    deadline: Millis,
}

/// The obvious alternative: a hash map from each key to (flow index, direction), flows in a
/// `Vec`, expiry by a FIFO (exact only because every flow here has the same timeout).
struct MapTable<S> {
    index: HashMap<FlowKey, u32, S>,
    flows: Vec<BaselineFlow>,
    free: Vec<u32>,
    fifo: VecDeque<u32>,
    hits: u64,
    misses: u64,
}

impl<S: BuildHasher + Default> MapTable<S> {
    fn new(capacity: usize) -> Self {
        MapTable {
            index: HashMap::with_capacity_and_hasher(capacity * 2, S::default()),
            flows: Vec::with_capacity(capacity),
            free: Vec::new(),
            fifo: VecDeque::with_capacity(capacity),
            hits: 0,
            misses: 0,
        }
    }

    fn insert(&mut self, key: FlowKey, deadline: Millis) {
        let flow = BaselineFlow {
            keys: [key, key.reversed()],
            deadline,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.flows[i as usize] = flow;
                i
            }
            None => {
                self.flows.push(flow);
                (self.flows.len() - 1) as u32
            }
        };
        self.index.insert(key, idx << 1);
        self.index.insert(key.reversed(), (idx << 1) | 1);
        self.fifo.push_back(idx);
    }

    #[inline]
    fn lookup(&mut self, key: &FlowKey, now: Millis) -> Option<(u32, Direction)> {
        match self.index.get(key) {
            Some(&r) if self.flows[(r >> 1) as usize].deadline > now => {
                self.hits += 1;
                let dir = if r & 1 == 0 {
                    Direction::Original
                } else {
                    Direction::Reply
                };
                Some((r >> 1, dir))
            }
            _ => {
                self.misses += 1;
                None
            }
        }
    }

    fn expire(&mut self, now: Millis) {
        while let Some(&idx) = self.fifo.front() {
            let flow = &self.flows[idx as usize];
            if flow.deadline > now {
                break;
            }
            self.index.remove(&flow.keys[0]);
            self.index.remove(&flow.keys[1]);
            self.fifo.pop_front();
            self.free.push(idx);
        }
    }
}

type SipMapTable = MapTable<std::collections::hash_map::RandomState>;
/// std's map is hashbrown's SwissTable; with foldhash it is hashbrown's default map.
type FoldMapTable = MapTable<foldhash::fast::RandomState>;

fn allowed() -> PolicyDecision {
    PolicyDecision {
        allowed: true,
        ..PolicyDecision::default()
    }
}

fn lookup_hit(c: &mut Criterion) {
    let mut group = c.benchmark_group("conntrack_lookup_hit");
    group.throughput(Throughput::Elements(PROBES as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for n in SIZES {
        let flows = random_flows(n, n as u64);
        let keys = probes(&flows, 7);

        let mut ours = FlowTable::new(FlowTableConfig::with_capacity(n));
        let mut std_map = SipMapTable::new(n);
        let mut hb_map = FoldMapTable::new(n);
        for &k in &flows {
            ours.insert(k, k.reversed(), ACK, 60, allowed(), 0)
                .expect("room for every flow");
            std_map.insert(k, Millis::MAX);
            hb_map.insert(k, Millis::MAX);
        }
        // All three must find every probe, in the same direction, before timing means anything.
        for k in &keys {
            let hit = ours.lookup(k, NOW).expect("hit");
            assert_eq!(std_map.lookup(k, NOW).map(|h| h.1), Some(hit.direction));
            assert_eq!(hb_map.lookup(k, NOW).map(|h| h.1), Some(hit.direction));
        }
        assert_eq!(ours.counters().evicted, 0);
        assert_eq!((std_map.misses, hb_map.misses), (0, 0));
        assert_eq!((std_map.hits, hb_map.hits), (PROBES as u64, PROBES as u64));

        group.bench_with_input(BenchmarkId::new("brindle_flow_table", n), &n, |b, _| {
            b.iter(|| {
                let mut acc = 0u32;
                for k in &keys {
                    acc = acc.wrapping_add(
                        ours.lookup(black_box(k), NOW)
                            .map_or(0, |h| h.id.index() as u32),
                    );
                }
                black_box(acc)
            })
        });
        // As a worker would: prefetch the buckets of a batch of 32 packets, then look them up.
        group.bench_with_input(
            BenchmarkId::new("brindle_flow_table_prefetch32", n),
            &n,
            |b, _| {
                b.iter(|| {
                    let mut acc = 0u32;
                    for batch in keys.chunks(32) {
                        for k in batch {
                            ours.prefetch(black_box(k));
                        }
                        for k in batch {
                            acc = acc.wrapping_add(
                                ours.lookup(black_box(k), NOW)
                                    .map_or(0, |h| h.id.index() as u32),
                            );
                        }
                    }
                    black_box(acc)
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("std_hashmap_siphash", n), &n, |b, _| {
            b.iter(|| {
                let mut acc = 0u32;
                for k in &keys {
                    acc = acc.wrapping_add(std_map.lookup(black_box(k), NOW).map_or(0, |h| h.0));
                }
                black_box(acc)
            })
        });
        group.bench_with_input(BenchmarkId::new("std_hashmap_foldhash", n), &n, |b, _| {
            b.iter(|| {
                let mut acc = 0u32;
                for k in &keys {
                    acc = acc.wrapping_add(hb_map.lookup(black_box(k), NOW).map_or(0, |h| h.0));
                }
                black_box(acc)
            })
        });
    }
    group.finish();
}

/// A steady state of `n` live flows: each new flow (one per ms) lives `n` ms, so every insert
/// is matched by one flow expiring. Per element: one insert and the expiry it causes. Our
/// table sweeps 8 slab entries per insert (capacity 1.25 n), so that it covers the slab well
/// within the quarter of headroom; the map tables expire exactly, from a FIFO.
fn insert_expire_churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("conntrack_insert_expire_churn");
    const BATCH: u64 = 4096;
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    let key = |i: u64| {
        FlowKey::udp(
            Ipv4Addr::from(0xc0a8_0000 | (i >> 16) as u32),
            i as u16,
            Ipv4Addr::new(8, 8, 8, 8),
            53,
        )
    };
    for n in [100_000usize, 1_000_000] {
        let lifetime = n as Millis;
        let timeouts = Timeouts {
            udp: Duration::from_millis(lifetime),
            ..Timeouts::default()
        };

        // A quarter of headroom over the live flows, as a deployment would size it.
        let mut ours = FlowTable::new(FlowTableConfig {
            timeouts,
            ..FlowTableConfig::with_capacity(n + n / 4)
        });
        let mut now: Millis = 0;
        let mut next = 0u64;
        for _ in 0..n {
            now += 1;
            ours.insert(key(next), key(next).reversed(), 0, 60, allowed(), now)
                .expect("fill");
            next += 1;
        }
        group.bench_with_input(BenchmarkId::new("brindle_flow_table", n), &n, |b, _| {
            b.iter(|| {
                for _ in 0..BATCH {
                    now += 1;
                    let k = key(next);
                    next += 1;
                    ours.expire(now, 8);
                    black_box(ours.insert(k, k.reversed(), 0, 60, allowed(), now).is_ok());
                }
            })
        });
        let c = ours.counters();
        assert_eq!((c.evicted, c.table_full), (0, 0), "churn must only expire");
        eprintln!(
            "conntrack churn {n}: {} live, {} created, {} expired",
            ours.len(),
            c.created,
            c.expired
        );
        drop(ours);

        let mut std_map = SipMapTable::new(n);
        let (mut now, mut next) = (0, 0u64);
        for _ in 0..n {
            now += 1;
            std_map.insert(key(next), now + lifetime);
            next += 1;
        }
        group.bench_with_input(BenchmarkId::new("std_hashmap_siphash", n), &n, |b, _| {
            b.iter(|| {
                for _ in 0..BATCH {
                    now += 1;
                    std_map.expire(now);
                    std_map.insert(key(next), now + lifetime);
                    next += 1;
                }
            })
        });
        drop(std_map);

        let mut hb_map = FoldMapTable::new(n);
        let (mut now, mut next) = (0, 0u64);
        for _ in 0..n {
            now += 1;
            hb_map.insert(key(next), now + lifetime);
            next += 1;
        }
        group.bench_with_input(BenchmarkId::new("std_hashmap_foldhash", n), &n, |b, _| {
            b.iter(|| {
                for _ in 0..BATCH {
                    now += 1;
                    hb_map.expire(now);
                    hb_map.insert(key(next), now + lifetime);
                    next += 1;
                }
            })
        });
        assert_eq!(hb_map.index.len(), 2 * n, "steady state holds n flows");
    }
    group.finish();
}

criterion_group!(benches, lookup_hit, insert_expire_churn);
criterion_main!(benches);
