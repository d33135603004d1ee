//! FIB lookups: our DIR-24-8 [`Fib`] against `prefix_trie::PrefixMap`, the same 1M prefixes
//! and the same 1M keys, side by side in one criterion group.
//!
//! Run: `cargo bench -p fastpath --bench fib`

mod workload;

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fastpath::Fib;
use ipnet::Ipv4Net;
use prefix_trie::PrefixMap;

const KEY_COUNT: usize = 1_000_000;
const BATCH: usize = 64;

fn fib_lookups(c: &mut Criterion) {
    let prefixes = workload::random_prefixes(workload::PREFIX_COUNT, 0xf1b);
    let keys = workload::random_keys(&prefixes, KEY_COUNT, 0x4e75);

    let started = Instant::now();
    let mut fib = Fib::new();
    for (i, &(addr, len)) in prefixes.iter().enumerate() {
        fib.insert(Ipv4Addr::from(addr), len, i as u32)
            .expect("valid prefix");
    }
    let fib_build = started.elapsed();

    let started = Instant::now();
    let mut trie: PrefixMap<Ipv4Net, u32> = PrefixMap::new();
    for (i, &(addr, len)) in prefixes.iter().enumerate() {
        trie.insert(
            Ipv4Net::new(Ipv4Addr::from(addr), len).expect("valid prefix"),
            i as u32,
        );
    }
    let trie_build = started.elapsed();

    // Both tables must agree before their speed means anything.
    let mut hits = 0usize;
    for &key in &keys {
        let ours = fib.lookup(key);
        let theirs = trie
            .get_lpm(&Ipv4Net::new(Ipv4Addr::from(key), 32).unwrap())
            .map(|(_, &nh)| nh);
        assert_eq!(ours, theirs, "tables disagree on {}", Ipv4Addr::from(key));
        hits += ours.is_some() as usize;
    }
    eprintln!(
        "fib bench: {} distinct prefixes ({:?}), built in {fib_build:?} (Fib) / {trie_build:?} (prefix-trie); \
         {KEY_COUNT} keys, {:.1}% hits; {}",
        fib.len(),
        fib,
        100.0 * hits as f64 / KEY_COUNT as f64,
        anon_huge_pages()
    );

    let mut group = c.benchmark_group("fib_lookup_1M_prefixes");
    group.throughput(Throughput::Elements(KEY_COUNT as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));

    group.bench_function("brindle_fib/lookup", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for &key in &keys {
                acc = acc.wrapping_add(fib.lookup(black_box(key)).unwrap_or(0));
            }
            black_box(acc)
        })
    });

    group.bench_function("brindle_fib/lookup_batch64", |b| {
        let mut out = [None; BATCH];
        b.iter(|| {
            let mut acc = 0u32;
            for chunk in keys.chunks(BATCH) {
                fib.lookup_batch(black_box(chunk), &mut out);
                for nh in &out[..chunk.len()] {
                    acc = acc.wrapping_add(nh.unwrap_or(0));
                }
            }
            black_box(acc)
        })
    });

    // prefix-trie takes its key as a prefix; building the /32 is part of each lookup's cost
    // for a caller that has an address, so build them up front to measure the lookup alone.
    let trie_keys: Vec<Ipv4Net> = keys
        .iter()
        .map(|&k| Ipv4Net::new(Ipv4Addr::from(k), 32).unwrap())
        .collect();
    group.bench_function("prefix_trie/get_lpm", |b| {
        b.iter(|| {
            let mut acc = 0u32;
            for key in &trie_keys {
                acc = acc.wrapping_add(trie.get_lpm(black_box(key)).map_or(0, |(_, &nh)| nh));
            }
            black_box(acc)
        })
    });
    group.finish();

    // What a test pays for a small table: `Fib::new` (a fresh 64 MiB zero mapping), a few
    // routes, drop.
    let mut group = c.benchmark_group("fib_small_table");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("brindle_fib/new_insert_8_routes_drop", |b| {
        b.iter(|| {
            let mut fib = Fib::new();
            for i in 0..8u32 {
                fib.insert(Ipv4Addr::from(0x0a00_0000 | i << 16), 16, i)
                    .unwrap();
            }
            fib.insert(Ipv4Addr::new(10, 0, 0, 7), 32, 9).unwrap();
            black_box(fib.lookup(0x0a00_0007))
        })
    });
    group.finish();

    // Building the control-plane copy a snapshot swap needs (`Clone`), for the record.
    let mut group = c.benchmark_group("fib_clone_1M_prefixes");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("brindle_fib/clone", |b| {
        b.iter_batched(|| (), |()| fib.clone(), BatchSize::PerIteration)
    });
    group.finish();
}

/// The process's transparent-huge-page memory, to show whether the FIB got huge pages.
fn anon_huge_pages() -> String {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("AnonHugePages"))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "AnonHugePages: unknown".into())
}

criterion_group!(benches, fib_lookups);
criterion_main!(benches);
