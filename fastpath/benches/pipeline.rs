//! The packet pipeline, ns/packet: parse, FIB lookup in a 1M-prefix table, TTL/checksum and
//! MAC rewrite, on batches of 64 synthetic 64-byte UDP frames to varied destinations.
//!
//! Run: `cargo bench -p fastpath --bench pipeline`

mod workload;

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fastpath::pipeline::harness::{process_batch, process_counted, Frame};
use fastpath::{
    MacAddr, NextHop, NextHopKind, PipelineCounters, PortInfo, PortKind, Tables, Verdict,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BATCH: usize = 64;
/// Distinct batches in the cold-destination runs: 64 Ki destinations, so the FIB entries a
/// batch needs are (mostly) not in cache from the last time the batch went through.
const COLD_BATCHES: usize = 1024;
const FRAME_LEN: usize = 64;
/// Next hops the random prefixes spread over (all resolved neighbours on the uplink).
const NEXT_HOP_COUNT: u32 = 1024;
const UPLINK: u16 = 0;
const WORKLOAD: u16 = 1;

type Batch = [[u8; FRAME_LEN]; BATCH];

/// RFC 1071 one's-complement sum over the IPv4 header.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A 64-byte Ethernet II / IPv4 / UDP frame from a workload to `dst`, built byte by byte
/// (RFC 791 section 3.1 header, RFC 768 UDP header with checksum 0 = none).
fn udp_frame(dst: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&MacAddr::CALICO_HOST_SIDE.0); // to the vRouter
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]); // the workload
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45; // version 4, IHL 5
    ip[2..4].copy_from_slice(&((FRAME_LEN - 14) as u16).to_be_bytes()); // total length
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&Ipv4Addr::new(10, 0, 0, 1).octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let checksum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&5201u16.to_be_bytes());
    udp[4..6].copy_from_slice(&((FRAME_LEN - 34) as u16).to_be_bytes());
    f
}

/// Tables with the 1M-prefix FIB, `NEXT_HOP_COUNT` resolved uplink neighbours, and a /32 to
/// each test destination (varied over the address space) via a resolved neighbour.
fn tables_and_frames() -> (Tables, Batch, Vec<Batch>) {
    let prefixes = workload::random_prefixes(workload::PREFIX_COUNT, 0xf1b);
    let ports = vec![
        PortInfo {
            name: "uplink0".into(),
            ifindex: 2,
            kind: PortKind::Uplink,
            mac: MacAddr([0x02, 0, 0, 0, 0, 0x10]),
            ip: Ipv4Addr::new(192, 0, 2, 1),
            mtu: 1500,
            policy: None,
            qos: None,
        },
        PortInfo {
            name: "cali0123456789a".into(),
            ifindex: 3,
            kind: PortKind::Workload,
            mac: MacAddr::CALICO_HOST_SIDE,
            ip: Ipv4Addr::new(169, 254, 1, 1),
            mtu: 1500,
            policy: None,
            qos: None,
        },
    ];
    let mut tables = Tables {
        ports,
        ..Tables::default()
    };
    for i in 0..NEXT_HOP_COUNT {
        let nh = NextHop::new(
            NextHopKind::Neighbor,
            UPLINK,
            Ipv4Addr::from(0xc000_0200 + i),
        );
        nh.set_mac(Some(MacAddr([0x02, 0, 0, 0, (i >> 8) as u8, i as u8])));
        tables.next_hops.push(nh);
    }
    for (i, &(addr, len)) in prefixes.iter().enumerate() {
        tables
            .fib
            .insert(Ipv4Addr::from(addr), len, i as u32 % NEXT_HOP_COUNT)
            .expect("valid prefix");
    }
    // Destinations spread over the space (and so over cold parts of the table).
    let destinations = workload::random_keys(&prefixes, BATCH, 0xde57);
    let mut frames = [[0u8; FRAME_LEN]; BATCH];
    for (frame, &dst) in frames.iter_mut().zip(&destinations) {
        tables
            .fib
            .insert(Ipv4Addr::from(dst), 32, dst % NEXT_HOP_COUNT)
            .expect("valid /32");
        *frame = udp_frame(Ipv4Addr::from(dst));
    }
    // Cold destinations: hosts inside random prefixes of the big table, so routed through
    // its entries rather than through 64 hot /32s.
    let mut rng = StdRng::seed_from_u64(0xc01d);
    let cold = (0..COLD_BATCHES)
        .map(|_| {
            std::array::from_fn(|_| {
                let (addr, len) = prefixes[rng.gen_range(0..prefixes.len())];
                let host_bits = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
                udp_frame(Ipv4Addr::from(addr | (rng.gen::<u32>() & host_bits)))
            })
        })
        .collect();
    (tables, frames, cold)
}

fn pipeline(c: &mut Criterion) {
    let (tables, frames, cold) = tables_and_frames();

    // Every frame must actually be forwarded, or the numbers measure an early drop.
    let mut counters = PipelineCounters::default();
    for frame in frames.into_iter().chain(cold.iter().flatten().copied()) {
        let mut frame = frame;
        let verdict = process_counted(&mut frame, WORKLOAD, &tables, &mut counters).verdict;
        assert_eq!(
            verdict,
            Verdict::Forward(UPLINK),
            "test frame not forwarded"
        );
        assert_eq!(frame[14 + 8], 63, "TTL not decremented");
    }

    let mut group = c.benchmark_group("pipeline_64B_udp_1M_prefixes");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));

    // The frames are rewritten in place, so each iteration gets a fresh copy (untimed).
    group.bench_function("process_frame_x64", |b| {
        b.iter_batched_ref(
            || frames,
            |batch: &mut Batch| {
                for frame in batch.iter_mut() {
                    black_box(process_counted(frame, WORKLOAD, &tables, &mut counters).verdict);
                }
            },
            BatchSize::SmallInput,
        )
    });

    group.bench_function("process_batch_64", |b| {
        let mut verdicts = [Verdict::Forward(0); BATCH];
        b.iter_batched_ref(
            || frames,
            |batch: &mut Batch| {
                let mut batch = batch.each_mut().map(|data| Frame {
                    data: &mut data[..],
                    ingress: WORKLOAD,
                });
                process_batch(&mut batch, &tables, &mut counters, &mut verdicts);
                black_box(&verdicts);
            },
            BatchSize::SmallInput,
        )
    });

    let mut next = 0;
    group.bench_function("process_batch_64_cold_destinations", |b| {
        let mut verdicts = [Verdict::Forward(0); BATCH];
        b.iter_batched_ref(
            || {
                next = (next + 1) % COLD_BATCHES;
                cold[next]
            },
            |batch: &mut Batch| {
                let mut batch = batch.each_mut().map(|data| Frame {
                    data: &mut data[..],
                    ingress: WORKLOAD,
                });
                process_batch(&mut batch, &tables, &mut counters, &mut verdicts);
                black_box(&verdicts);
            },
            BatchSize::SmallInput,
        )
    });

    // The same, with one `Fib::lookup_batch` over the batch's destinations first: what a
    // pipeline that looked a whole batch up before rewriting any frame could gain.
    let mut next = 0;
    group.bench_function(
        "lookup_batch_then_process_batch_64_cold_destinations",
        |b| {
            let mut verdicts = [Verdict::Forward(0); BATCH];
            let mut next_hops = [None; BATCH];
            b.iter_batched_ref(
                || {
                    next = (next + 1) % COLD_BATCHES;
                    cold[next]
                },
                |batch: &mut Batch| {
                    let destinations: [u32; BATCH] = std::array::from_fn(|i| {
                        u32::from_be_bytes([batch[i][30], batch[i][31], batch[i][32], batch[i][33]])
                    });
                    tables.fib.lookup_batch(&destinations, &mut next_hops);
                    black_box(&next_hops);
                    let mut batch = batch.each_mut().map(|data| Frame {
                        data: &mut data[..],
                        ingress: WORKLOAD,
                    });
                    process_batch(&mut batch, &tables, &mut counters, &mut verdicts);
                    black_box(&verdicts);
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
