//! Rate limits (`fastpath::qos`), two questions, each answered side by side in one run:
//!
//! - `qos_pipeline_64B_udp`: what the limits add to the pipeline, ns/frame, for batches of 64
//!   64-byte UDP frames from workload A to workload B (a small FIB): neither port limited, vs.
//!   A's egress and B's ingress both limited (every frame charged twice, the worst case) at a
//!   rate they stay under, vs. A over its egress limit (every frame dropped at stage 1a).
//! - `qos_gcra_vs_governor`: our `Gcra::admit` against `governor`'s direct `RateLimiter`
//!   (`check_n`) on the same clock, for 1500-byte frames through a 1 Gbit/s limit, offered at
//!   the limit (every frame conforms) and at 10x the limit (nine in ten refused). Both read
//!   the time from the same static, as the workers read `PolicyState::now_ns`, so neither
//!   pays for a clock the other does not.
//!
//! Run: `cargo bench -p fastpath --bench qos`

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fastpath::classifier::IpSets;
use fastpath::pipeline::{process, Policing};
use fastpath::policy::PolicyState;
use fastpath::qos::{DirectionLimits, Gcra, PortQos, QosLimits, Rate};
use fastpath::wire::ethernet::{self, ethertype};
use fastpath::wire::ipv4::{self, protocol};
use fastpath::wire::{EthernetRepr, Ipv4Repr, UdpRepr};
use fastpath::{
    DropReason, Fib, MacAddr, NextHop, NextHopKind, PortId, PortInfo, PortKind, Tables, Verdict,
};
use governor::clock::Clock;
use governor::{Quota, RateLimiter};

const BATCH: usize = 64;
const FRAME_LEN: usize = 64;
const A: PortId = 0;
const B: PortId = 1;
const A_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
const B_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 3);
/// Simulated time between batches: 64 x 64 bytes per 10 us is 3.3 Gbit/s.
const BATCH_GAP_NS: u64 = 10_000;

type Batch = [[u8; FRAME_LEN]; BATCH];

fn qos(ingress: Option<Rate>, egress: Option<Rate>) -> Option<Arc<PortQos>> {
    let direction = |bandwidth| DirectionLimits {
        bandwidth,
        packets: None,
    };
    Some(Arc::new(PortQos::new(QosLimits {
        ingress: direction(ingress),
        egress: direction(egress),
    })))
}

fn tables(a: Option<Arc<PortQos>>, b: Option<Arc<PortQos>>) -> Tables {
    let port = |name: &str, qos| PortInfo {
        name: name.into(),
        ifindex: 0,
        kind: PortKind::Workload,
        mac: MacAddr::CALICO_HOST_SIDE,
        ip: Ipv4Addr::new(169, 254, 1, 1),
        mtu: 1500,
        policy: None,
        qos,
    };
    let next_hops = vec![
        NextHop::new(NextHopKind::Neighbor, A, A_IP),
        NextHop::new(NextHopKind::Neighbor, B, B_IP),
    ];
    next_hops[0].set_mac(Some(MacAddr([0x02, 0, 0, 0, 0, 0x0a])));
    next_hops[1].set_mac(Some(MacAddr([0x02, 0, 0, 0, 0, 0x0b])));
    let mut fib = Fib::new();
    fib.insert(A_IP, 32, 0).unwrap();
    fib.insert(B_IP, 32, 1).unwrap();
    Tables {
        fib,
        next_hops,
        ports: vec![port("caliA", a), port("caliB", b)],
        ..Tables::default()
    }
}

fn udp_frame() -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    EthernetRepr {
        src: MacAddr([0x02, 0, 0, 0, 0, 0x0a]),
        dst: MacAddr::CALICO_HOST_SIDE,
        ethertype: ethertype::IPV4,
    }
    .emit(&mut f)
    .unwrap();
    let udp_len = FRAME_LEN - ethernet::HEADER_LEN - ipv4::HEADER_LEN;
    Ipv4Repr::new(A_IP, B_IP, protocol::UDP, udp_len as u16)
        .emit(&mut f[ethernet::HEADER_LEN..])
        .unwrap();
    UdpRepr {
        src_port: 40000,
        dst_port: 5201,
    }
    .emit(&[0; 22], A_IP, B_IP, &mut f[34..])
    .unwrap();
    f
}

/// Runs a batch at simulated time `now_ns` as a worker does; the verdict of the last frame.
fn run(batch: &mut Batch, tables: &Tables, policing: &mut Policing<'_>, now_ns: u64) -> Verdict {
    policing.state.now_ns = now_ns;
    let mut last = Verdict::Drop(DropReason::BadEthernet);
    for frame in batch.iter_mut() {
        last = black_box(process(frame, A, tables, policing).verdict);
    }
    last
}

fn pipeline(c: &mut Criterion) {
    let fast = Rate {
        per_second: 100_000_000_000,
        burst: fastpath::qos::DEFAULT_BURST_BITS,
    };
    let slow = Rate {
        per_second: 1_000,
        burst: 1_000,
    };
    let cases = [
        ("unlimited", tables(None, None), Verdict::Forward(B)),
        (
            "a_egress_b_ingress_limited_under_the_limit",
            tables(qos(None, Some(fast)), qos(Some(fast), None)),
            Verdict::Forward(B),
        ),
        (
            "a_egress_limited_over_the_limit",
            tables(qos(None, Some(slow)), None),
            Verdict::Drop(DropReason::RateLimited),
        ),
    ];
    let frames: Batch = [udp_frame(); BATCH];
    let sets = IpSets::default();
    let mut state = PolicyState::stateless();
    let mut group = c.benchmark_group("qos_pipeline_64B_udp");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for (name, tables, expected) in cases {
        let mut policing = Policing {
            sets: &sets,
            state: &mut state,
        };
        // The verdict each case is meant to measure, checked once (after the burst).
        let mut check = frames;
        run(&mut check, &tables, &mut policing, 0);
        assert_eq!(run(&mut check.clone(), &tables, &mut policing, 1), expected);
        let mut now = BATCH_GAP_NS;
        group.bench_function(name, |b| {
            // The frames are rewritten in place, so each iteration gets a fresh copy (untimed).
            b.iter_batched_ref(
                || frames,
                |batch: &mut Batch| {
                    now += BATCH_GAP_NS;
                    run(batch, &tables, &mut policing, now)
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// The simulated time both limiters read.
static NOW_NS: AtomicU64 = AtomicU64::new(0);

/// `governor`'s view of [`NOW_NS`].
#[derive(Clone, Copy)]
struct SimulatedClock;

impl Clock for SimulatedClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        Duration::from_nanos(NOW_NS.load(Ordering::Relaxed))
    }
}

const FRAME_BYTES: u32 = 1500;
const LIMIT_BITS: u64 = 1_000_000_000;
/// 100 full frames.
const BURST_BYTES: u32 = 150_000;

fn gcra_vs_governor(c: &mut Criterion) {
    // A frame's time at the limit: 12 us for 1500 bytes at 1 Gbit/s.
    let at_limit = u64::from(FRAME_BYTES) * 8 * 1_000_000_000 / LIMIT_BITS;
    let mut group = c.benchmark_group("qos_gcra_vs_governor");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for (offered, gap_ns) in [("at_the_limit", at_limit), ("10x_the_limit", at_limit / 10)] {
        // Both limiters start now (governor keeps its start time: the clock must not go back).
        NOW_NS.store(1_000_000_000, Ordering::Relaxed);
        let ours = Gcra::new(LIMIT_BITS, u64::from(BURST_BYTES) * 8, 8);
        // governor counts cells: one byte a cell, one every 8 ns at 1 Gbit/s.
        let quota = Quota::with_period(Duration::from_nanos(8_000_000_000 / LIMIT_BITS))
            .unwrap()
            .allow_burst(NonZeroU32::new(BURST_BYTES).unwrap());
        let governor = RateLimiter::direct_with_clock(quota, SimulatedClock);
        let frame = NonZeroU32::new(FRAME_BYTES).unwrap();
        // (admitted, offered) for ours and governor's.
        let mut counts = [(0u64, 0u64); 2];
        group.bench_function(format!("brindle_gcra_{offered}"), |b| {
            b.iter(|| {
                let now = NOW_NS.load(Ordering::Relaxed) + gap_ns;
                NOW_NS.store(now, Ordering::Relaxed);
                let ok = ours.admit(NOW_NS.load(Ordering::Relaxed), u64::from(FRAME_BYTES));
                counts[0].0 += u64::from(black_box(ok));
                counts[0].1 += 1;
            })
        });
        group.bench_function(format!("governor_check_n_{offered}"), |b| {
            b.iter(|| {
                let now = NOW_NS.load(Ordering::Relaxed) + gap_ns;
                NOW_NS.store(now, Ordering::Relaxed);
                let ok = matches!(governor.check_n(frame), Ok(Ok(())));
                counts[1].0 += u64::from(black_box(ok));
                counts[1].1 += 1;
            })
        });
        // Both did the same job: at the limit every frame passed, at 10x about one in ten.
        eprintln!(
            "{offered}: (admitted, offered) ours {:?}, governor {:?}",
            counts[0], counts[1]
        );
    }
    group.finish();
}

criterion_group!(benches, pipeline, gcra_vs_governor);
criterion_main!(benches);
