//! Policy classifier, ns/packet: the tuple-space index against the linear reference on the same
//! Calico-shaped rule sets of 10, 1,000 and 10,000 rules, in one criterion run; plus the time
//! to compile 10,000 rules and to publish IP sets of 100,000 members.
//!
//! Rule shapes (an ingress policy for one endpoint, as Calico users write them): 60% TCP,
//! 35% UDP, 5% any protocol; sources from a selector (an IP set of 1-5 pods, a fifth of the
//! sets also holding a NetworkSet /24) for 55% of the rules, from `nets` (/16 to /32) for the
//! rest; a single destination port for 70%, a port range (10 to 2,000 ports) for 20%. Two tiers: "security"
//! (defaultAction Pass) with the Deny and Pass rules (10%), then "default" (Deny) with the
//! Allows, policies of 10 rules; a profile after them.
//!
//! Packets: half hit a rule from the last tenth of the list, half match no rule (sources
//! outside every net and set), so they fall to the default tier's default action.
//!
//! Run: `cargo bench -p fastpath --bench classifier`

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fastpath::classifier::{
    protocol, Action, Cidr, ClassifierBuilder, EndpointRules, IpSetId, IpSets, IpSetsWriter,
    PacketFields, Policy, PolicyProgram, PortRange, Profile, Rule, Tier, TierDefaultAction,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SIZES: [usize; 3] = [10, 1_000, 10_000];
const PACKETS: usize = 1024;
const RULES_PER_POLICY: usize = 10;
const WELL_KNOWN_PORTS: [u16; 10] = [80, 443, 53, 22, 8080, 5432, 6379, 9090, 3306, 27017];

/// One generated rule set, the IP sets it names, and where each source came from.
struct Workload {
    rules: EndpointRules,
    sets: Arc<IpSets>,
    /// The flattened order of the generated rules (tier "security" first), for picking late ones.
    flat: Vec<Rule>,
    /// Pods of each set id (to build packets that a set rule matches).
    set_pods: Vec<Vec<Ipv4Addr>>,
}

fn pod(rng: &mut StdRng) -> Ipv4Addr {
    // Workloads live in 10.64.0.0/10 (nothing else generated overlaps it except NetworkSets).
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 64, 0, 0)) + rng.gen_range(0..1 << 22))
}

fn rule_for(
    rng: &mut StdRng,
    action: Action,
    writer: &mut IpSetsWriter,
    set_pods: &mut Vec<Vec<Ipv4Addr>>,
) -> Rule {
    let mut rule = Rule::any(action);
    rule.protocol = match rng.gen_range(0..100) {
        0..=59 => Some(protocol::TCP),
        60..=94 => Some(protocol::UDP),
        _ => None,
    };
    match rng.gen_range(0..100) {
        0..=54 => {
            let id = IpSetId(set_pods.len() as u32);
            let pods: Vec<Ipv4Addr> = (0..rng.gen_range(1..6)).map(|_| pod(rng)).collect();
            for &p in &pods {
                writer.add_member(id, Cidr::host(p));
            }
            if rng.gen_bool(0.2) {
                // A NetworkSet the selector also picks: an outside /24 in 100.64.0.0/10.
                let net =
                    u32::from(Ipv4Addr::new(100, 64, 0, 0)) + (rng.gen_range(0..1 << 14) << 8);
                writer.add_member(id, Cidr::new(net.into(), 24).unwrap());
            }
            set_pods.push(pods);
            rule.src.sets = vec![id];
        }
        _ => {
            let len = [16, 24, 24, 28, 32][rng.gen_range(0..5)];
            let addr = u32::from(Ipv4Addr::new(172, 16, 0, 0)) + rng.gen_range(0..1 << 20);
            rule.src.nets = vec![Cidr::new(addr.into(), len).unwrap()];
        }
    }
    if rule.protocol.is_some() {
        match rng.gen_range(0..100) {
            0..=69 => {
                let port = if rng.gen_bool(0.5) {
                    WELL_KNOWN_PORTS[rng.gen_range(0..WELL_KNOWN_PORTS.len())]
                } else {
                    rng.gen_range(1024..49152)
                };
                rule.dst.ports = vec![PortRange::single(port)];
            }
            70..=89 => {
                let first = rng.gen_range(1024..60000);
                rule.dst.ports =
                    vec![PortRange::new(first, first + rng.gen_range(10..2000)).unwrap()];
            }
            _ => {}
        }
    }
    rule
}

fn workload(rule_count: usize, seed: u64) -> Workload {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut writer = IpSetsWriter::new();
    let mut set_pods = Vec::new();
    let (mut security, mut default) = (Vec::new(), Vec::new());
    for _ in 0..rule_count {
        match rng.gen_range(0..100) {
            0..=6 => security.push(rule_for(&mut rng, Action::Deny, &mut writer, &mut set_pods)),
            7..=9 => security.push(rule_for(&mut rng, Action::Pass, &mut writer, &mut set_pods)),
            _ => default.push(rule_for(
                &mut rng,
                Action::Allow,
                &mut writer,
                &mut set_pods,
            )),
        }
    }
    let policies = |prefix: &str, rules: &[Rule]| -> Vec<Policy> {
        rules
            .chunks(RULES_PER_POLICY)
            .enumerate()
            .map(|(i, chunk)| Policy {
                name: format!("{prefix}-{i:05}"),
                order: Some(i as f64),
                rules: chunk.to_vec(),
            })
            .collect()
    };
    let mut flat = security.clone();
    flat.extend(default.iter().cloned());
    let mut profile_rule = Rule::any(Action::Allow);
    profile_rule.src.sets = vec![IpSetId(u32::MAX)]; // the namespace's own pods: none in this bench
    let rules = EndpointRules {
        tiers: vec![
            Tier {
                name: "security".into(),
                order: Some(10.0),
                default_action: TierDefaultAction::Pass,
                policies: policies("sec", &security),
            },
            Tier {
                name: "default".into(),
                order: Some(1e6),
                default_action: TierDefaultAction::Deny,
                policies: policies("app", &default),
            },
        ],
        profiles: vec![Profile {
            name: "kns.bench".into(),
            rules: vec![profile_rule],
        }],
    };
    Workload {
        rules,
        sets: writer.publish(),
        flat,
        set_pods,
    }
}

/// A packet the given rule matches (ports and protocol in its ranges, source in its set/net).
fn packet_for(rng: &mut StdRng, rule: &Rule, set_pods: &[Vec<Ipv4Addr>]) -> PacketFields {
    let src = if let Some(set) = rule.src.sets.first() {
        let pods = &set_pods[set.0 as usize];
        pods[rng.gen_range(0..pods.len())]
    } else if let Some(net) = rule.src.nets.first() {
        let host_bits = if net.len() == 32 {
            0
        } else {
            rng.gen_range(0..1u32 << (32 - net.len()))
        };
        Ipv4Addr::from(u32::from(net.addr()) | host_bits)
    } else {
        pod(rng)
    };
    let dst_port = rule
        .dst
        .ports
        .first()
        .map_or(rng.gen_range(1024..65535), |r| {
            rng.gen_range(r.first..=r.last)
        });
    PacketFields {
        src,
        dst: Ipv4Addr::new(10, 64, 0, 1),
        protocol: rule.protocol.unwrap_or(protocol::TCP),
        src_port: rng.gen_range(32768..61000),
        dst_port,
        icmp_type: None,
        icmp_code: None,
    }
}

fn packets(w: &Workload, seed: u64) -> Vec<PacketFields> {
    let mut rng = StdRng::seed_from_u64(seed);
    let late_from = w.flat.len() - (w.flat.len() / 10).max(1);
    (0..PACKETS)
        .map(|i| {
            if i % 2 == 0 {
                let rule = &w.flat[rng.gen_range(late_from..w.flat.len())];
                packet_for(&mut rng, rule, &w.set_pods)
            } else {
                PacketFields {
                    src: Ipv4Addr::from(
                        u32::from(Ipv4Addr::new(198, 18, 0, 0)) + rng.gen_range(0..1 << 15),
                    ),
                    dst: Ipv4Addr::new(10, 64, 0, 1),
                    protocol: if rng.gen_bool(0.6) {
                        protocol::TCP
                    } else {
                        protocol::UDP
                    },
                    src_port: rng.gen_range(32768..61000),
                    dst_port: rng.gen_range(1..65535),
                    icmp_type: None,
                    icmp_code: None,
                }
            }
        })
        .collect()
}

fn evaluate_all(program: &PolicyProgram, packets: &[PacketFields], sets: &IpSets) -> usize {
    packets
        .iter()
        .filter(|p| {
            program.evaluate(black_box(p), sets).action == fastpath::classifier::PolicyAction::Allow
        })
        .count()
}

fn classifier(c: &mut Criterion) {
    let mut group = c.benchmark_group("classifier");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(PACKETS as u64));
    for size in SIZES {
        let w = workload(size, 0xc1a5 + size as u64);
        let sets: &IpSets = &w.sets;
        let packets = packets(&w, 0x9ac7);
        let indexed = ClassifierBuilder::default().compile(&w.rules).unwrap();
        let linear = ClassifierBuilder::linear().compile(&w.rules).unwrap();
        // Same decisions before the speed means anything; and the workload must be as described.
        let mut late_hits = 0;
        for (i, p) in packets.iter().enumerate() {
            let (a, b) = (indexed.evaluate(p, sets), linear.evaluate(p, sets));
            assert_eq!(a, b, "indexed and linear disagree on {p:?}");
            if i % 2 == 0 {
                late_hits += (a.rule.map_or(0, |r| r.0 as usize) >= w.flat.len() * 8 / 10) as usize;
            } else {
                let origin = a
                    .rule
                    .and_then(|r| indexed.origin(r))
                    .map(|o| o.to_string());
                assert_eq!(
                    origin.as_deref(),
                    Some("tier default default action"),
                    "a no-match packet matched {p:?}"
                );
            }
        }
        eprintln!(
            "classifier bench: {size} rules, {} IP set members, index {:?}; {late_hits}/{} matching packets decided by a rule in the last 20%",
            sets.member_count(),
            indexed.index(),
            PACKETS / 2
        );
        group.bench_with_input(BenchmarkId::new("indexed", size), &packets, |b, packets| {
            b.iter(|| evaluate_all(&indexed, packets, sets))
        });
        group.bench_with_input(BenchmarkId::new("linear", size), &packets, |b, packets| {
            b.iter(|| evaluate_all(&linear, packets, sets))
        });
    }
    group.finish();
}

fn compile(c: &mut Criterion) {
    let w = workload(10_000, 0xc1a5 + 10_000);
    let started = Instant::now();
    let program = ClassifierBuilder::default().compile(&w.rules).unwrap();
    eprintln!(
        "classifier bench: one compile of 10,000 rules took {:?} ({:?})",
        started.elapsed(),
        program.index()
    );
    let mut group = c.benchmark_group("classifier-build");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("compile-10000-rules", |b| {
        b.iter(|| {
            ClassifierBuilder::default()
                .compile(black_box(&w.rules))
                .unwrap()
        })
    });

    // 20,000 sets of 5 pods: what `publish` costs per calc-graph update at that size.
    let mut rng = StdRng::seed_from_u64(0x5e75);
    let mut writer = IpSetsWriter::new();
    for id in 0..20_000 {
        for _ in 0..5 {
            writer.add_member(IpSetId(id), Cidr::host(pod(&mut rng)));
        }
    }
    group.bench_function("ipsets-publish-100k-members", |b| {
        b.iter(|| writer.publish())
    });
    group.finish();
}

criterion_group!(benches, classifier, compile);
criterion_main!(benches);
