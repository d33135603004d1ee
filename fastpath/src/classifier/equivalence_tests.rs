//! Program semantics (tiers, order, Pass, Log, profiles, default deny), checked on both the
//! indexed and the linear program, and the property that they agree on random rule sets.

use std::net::Ipv4Addr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn both(rules: &EndpointRules) -> [PolicyProgram; 2] {
    let indexed = ClassifierBuilder::default().compile(rules).unwrap();
    assert!(matches!(indexed.index(), IndexKind::TupleSpace { .. }));
    let linear = ClassifierBuilder::linear().compile(rules).unwrap();
    assert_eq!(linear.index(), IndexKind::Linear);
    [indexed, linear]
}

fn tcp_to(dst_port: u16) -> PacketFields {
    PacketFields {
        src: [10, 0, 0, 1].into(),
        dst: [10, 0, 0, 2].into(),
        protocol: protocol::TCP,
        src_port: 40000,
        dst_port,
        icmp_type: None,
        icmp_code: None,
    }
}

fn port_rule(action: Action, port: u16) -> Rule {
    let mut rule = Rule::any(action);
    rule.protocol = Some(protocol::TCP);
    rule.dst.ports = vec![PortRange::single(port)];
    rule
}

fn policy(name: &str, order: Option<f64>, rules: Vec<Rule>) -> Policy {
    Policy {
        name: name.into(),
        order,
        rules,
    }
}

fn tier(
    name: &str,
    order: Option<f64>,
    default_action: TierDefaultAction,
    policies: Vec<Policy>,
) -> Tier {
    Tier {
        name: name.into(),
        order,
        default_action,
        policies,
    }
}

fn origin(program: &PolicyProgram, decision: Decision) -> Option<String> {
    decision
        .rule
        .map(|r| program.origin(r).unwrap().to_string())
}

#[test]
fn no_policy_and_no_profile_denies() {
    let sets = IpSets::default();
    for program in both(&EndpointRules::default()) {
        assert_eq!(
            program.evaluate(&tcp_to(80), &sets),
            Decision {
                action: PolicyAction::Deny,
                rule: None
            }
        );
    }
}

#[test]
fn first_matching_rule_decides_within_a_policy() {
    let sets = IpSets::default();
    let rules = EndpointRules {
        tiers: vec![tier(
            "default",
            Some(1e6),
            TierDefaultAction::Deny,
            vec![policy(
                "p",
                None,
                vec![
                    port_rule(Action::Deny, 22),
                    port_rule(Action::Allow, 80),
                    port_rule(Action::Deny, 80),
                ],
            )],
        )],
        profiles: vec![],
    };
    for program in both(&rules) {
        let d = program.evaluate(&tcp_to(80), &sets);
        assert_eq!(d.action, PolicyAction::Allow);
        assert_eq!(origin(&program, d).unwrap(), "tier default policy p rule 1");
        let d = program.evaluate(&tcp_to(22), &sets);
        assert_eq!(
            (d.action, origin(&program, d).unwrap().as_str()),
            (PolicyAction::Deny, "tier default policy p rule 0")
        );
        // Nothing matched in a tier with a policy: the tier's default action.
        let d = program.evaluate(&tcp_to(443), &sets);
        assert_eq!(
            (d.action, origin(&program, d).unwrap().as_str()),
            (PolicyAction::Deny, "tier default default action")
        );
    }
}

#[test]
fn policies_run_by_order_then_name_and_unordered_last() {
    let sets = IpSets::default();
    let rules = EndpointRules {
        tiers: vec![tier(
            "t",
            None,
            TierDefaultAction::Deny,
            vec![
                policy("a-unordered", None, vec![port_rule(Action::Allow, 80)]),
                policy("b", Some(10.0), vec![port_rule(Action::Deny, 80)]),
                policy("a", Some(10.0), vec![port_rule(Action::Log, 80)]),
                policy("z", Some(5.0), vec![port_rule(Action::Log, 80)]),
            ],
        )],
        profiles: vec![],
    };
    for program in both(&rules) {
        let mut seen = Vec::new();
        let d = program.evaluate_with(&tcp_to(80), &sets, |r, _| {
            seen.push(program.origin(r).unwrap().to_string())
        });
        assert_eq!(d.action, PolicyAction::Deny);
        assert_eq!(
            seen,
            [
                "tier t policy z rule 0",
                "tier t policy a rule 0",
                "tier t policy b rule 0"
            ]
        );
    }
}

#[test]
fn tiers_run_in_order_and_pass_skips_to_the_next_tier_past_the_default_action() {
    let sets = IpSets::default();
    let rules = EndpointRules {
        tiers: vec![
            tier(
                "later",
                Some(200.0),
                TierDefaultAction::Deny,
                vec![policy("allow-80", None, vec![port_rule(Action::Allow, 80)])],
            ),
            tier(
                "first",
                Some(100.0),
                TierDefaultAction::Deny,
                vec![
                    policy("pass-80", Some(1.0), vec![port_rule(Action::Pass, 80)]),
                    policy("deny-80", Some(2.0), vec![port_rule(Action::Deny, 80)]),
                ],
            ),
        ],
        profiles: vec![],
    };
    for program in both(&rules) {
        let mut seen = Vec::new();
        let d = program.evaluate_with(&tcp_to(80), &sets, |r, a| {
            seen.push((program.origin(r).unwrap().to_string(), a))
        });
        assert_eq!(d.action, PolicyAction::Allow);
        assert_eq!(
            origin(&program, d).unwrap(),
            "tier later policy allow-80 rule 0"
        );
        assert_eq!(
            seen,
            [
                ("tier first policy pass-80 rule 0".to_string(), Action::Pass),
                (
                    "tier later policy allow-80 rule 0".to_string(),
                    Action::Allow
                )
            ]
        );
        // Not passed: the first tier's default action denies before the later tier is reached.
        let d = program.evaluate(&tcp_to(81), &sets);
        assert_eq!(origin(&program, d).unwrap(), "tier first default action");
    }
}

#[test]
fn tier_default_pass_and_empty_tiers_fall_through_to_profiles() {
    let sets = IpSets::default();
    let rules = EndpointRules {
        tiers: vec![
            tier(
                "passing",
                Some(1.0),
                TierDefaultAction::Pass,
                vec![policy("deny-22", None, vec![port_rule(Action::Deny, 22)])],
            ),
            // No policy of this tier applies to the endpoint: skipped, its default Deny unused.
            tier("empty", Some(2.0), TierDefaultAction::Deny, vec![]),
        ],
        profiles: vec![
            Profile {
                name: "kns.a".into(),
                rules: vec![port_rule(Action::Pass, 80), port_rule(Action::Deny, 80)],
            },
            Profile {
                name: "net1".into(),
                rules: vec![port_rule(Action::Allow, 80), port_rule(Action::Allow, 22)],
            },
        ],
    };
    for program in both(&rules) {
        let d = program.evaluate(&tcp_to(22), &sets);
        assert_eq!(
            (d.action, origin(&program, d).unwrap().as_str()),
            (PolicyAction::Deny, "tier passing policy deny-22 rule 0")
        );
        // Pass in a profile skips the rest of that profile.
        let d = program.evaluate(&tcp_to(80), &sets);
        assert_eq!(
            (d.action, origin(&program, d).unwrap().as_str()),
            (PolicyAction::Allow, "profile net1 rule 0")
        );
        // No profile rule matched: deny, with no rule to blame.
        assert_eq!(
            program.evaluate(&tcp_to(443), &sets),
            Decision {
                action: PolicyAction::Deny,
                rule: None
            }
        );
    }
}

#[test]
fn log_counts_and_continues() {
    let sets = IpSets::default();
    let mut log_all = Rule::any(Action::Log);
    log_all.protocol = Some(protocol::TCP);
    let rules = EndpointRules {
        tiers: vec![tier(
            "t",
            None,
            TierDefaultAction::Deny,
            vec![policy(
                "p",
                None,
                vec![
                    log_all,
                    port_rule(Action::Log, 80),
                    port_rule(Action::Allow, 80),
                ],
            )],
        )],
        profiles: vec![],
    };
    for program in both(&rules) {
        let mut hits = RuleHits::for_program(&program);
        for _ in 0..3 {
            program.evaluate_with(&tcp_to(80), &sets, |r, _| hits.hit(r));
        }
        let d = program.evaluate_with(&tcp_to(81), &sets, |r, _| hits.hit(r));
        assert_eq!(d.action, PolicyAction::Deny);
        let counts: Vec<u64> = (0..program.rule_count() as u32)
            .map(|r| hits.get(RuleRef(r)))
            .collect();
        assert_eq!(
            counts,
            [4, 3, 3, 1],
            "log-all, log-80, allow-80, tier default"
        );
    }
}

#[test]
fn ip_set_updates_take_effect_without_recompiling() {
    let mut writer = IpSetsWriter::new();
    let reader = writer.reader();
    let mut rule = port_rule(Action::Allow, 80);
    rule.src.sets = vec![IpSetId(42)];
    let rules = EndpointRules {
        tiers: vec![],
        profiles: vec![Profile {
            name: "web".into(),
            rules: vec![rule],
        }],
    };
    for program in both(&rules) {
        writer.replace_set(IpSetId(42), []);
        writer.publish();
        assert_eq!(
            program.evaluate(&tcp_to(80), &reader.load()).action,
            PolicyAction::Deny
        );
        writer.add_member(IpSetId(42), Cidr::new([10, 0, 0, 0].into(), 30).unwrap());
        writer.publish();
        assert_eq!(
            program.evaluate(&tcp_to(80), &reader.load()).action,
            PolicyAction::Allow
        );
        writer.remove_member(IpSetId(42), Cidr::new([10, 0, 0, 0].into(), 30).unwrap());
        writer.add_member(IpSetId(42), Cidr::host([10, 0, 0, 9].into()));
        writer.publish();
        assert_eq!(
            program.evaluate(&tcp_to(80), &reader.load()).action,
            PolicyAction::Deny
        );
    }
}

#[test]
fn bad_rules_are_rejected_naming_where() {
    let mut rule = port_rule(Action::Allow, 80);
    rule.src.not_ports = vec![PortRange {
        first: 100,
        last: 10,
    }];
    let rules = EndpointRules {
        tiers: vec![tier(
            "t",
            None,
            TierDefaultAction::Deny,
            vec![policy("p", None, vec![Rule::any(Action::Log), rule])],
        )],
        profiles: vec![],
    };
    let err = ClassifierBuilder::default().compile(&rules).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tier t policy p rule 1: port range 100:10 has its first port after its last"
    );
}

#[test]
fn an_index_over_its_memory_bound_falls_back_to_linear() {
    let mut rule = Rule::any(Action::Allow);
    rule.protocol = Some(protocol::TCP);
    rule.src.nets = (0..40)
        .map(|i| Cidr::new(Ipv4Addr::new(10, i, 0, 0), 16).unwrap())
        .collect();
    rule.dst.nets = (0..40)
        .map(|i| Cidr::new(Ipv4Addr::new(172, 16, i, 0), 24).unwrap())
        .collect();
    rule.dst.ports = vec![PortRange::new(80, 89).unwrap()];
    let rules = EndpointRules {
        tiers: vec![],
        profiles: vec![Profile {
            name: "wide".into(),
            rules: vec![rule],
        }],
    };
    // Per-rule cap: 40 x 40 x 10 keys degrade to 40 (source only), still indexed.
    let program = ClassifierBuilder::default().compile(&rules).unwrap();
    assert_eq!(
        program.index(),
        IndexKind::TupleSpace {
            tuples: 1,
            entries: 40,
            largest_bucket: 1
        }
    );
    let bounded = ClassifierBuilder {
        max_index_entries: 39,
        ..Default::default()
    }
    .compile(&rules)
    .unwrap();
    assert_eq!(bounded.index(), IndexKind::Linear);
    let sets = IpSets::default();
    let mut packet = tcp_to(85);
    packet.src = [10, 7, 1, 1].into();
    packet.dst = [172, 16, 39, 1].into();
    for p in [&program, &bounded] {
        assert_eq!(p.evaluate(&packet, &sets).action, PolicyAction::Allow);
        packet.dst_port = 90;
        assert_eq!(p.evaluate(&packet, &sets).action, PolicyAction::Deny);
        packet.dst_port = 85;
    }
}

#[test]
fn crowded_slash_24s_get_a_table_for_their_hosts() {
    let rules_with = |hosts: u8| {
        let mut rules: Vec<Rule> = (0..hosts)
            .map(|i| {
                let mut rule = port_rule(Action::Allow, 80);
                rule.src.nets = vec![Cidr::host(Ipv4Addr::new(10, 0, 0, i))];
                rule
            })
            .collect();
        let mut wider = port_rule(Action::Deny, 80);
        wider.src.nets = vec![Cidr::new([10, 0, 0, 128].into(), 26).unwrap()];
        rules.push(wider);
        EndpointRules {
            tiers: vec![],
            profiles: vec![Profile {
                name: "p".into(),
                rules,
            }],
        }
    };
    let sets = IpSets::default();
    let mut packet = tcp_to(80);
    // 5 hosts share the /24 key with the /26: one table, one bucket of 6. 20 hosts crowd it:
    // they move to a /32 table (buckets of 1), the /26 stays alone under the /24 key.
    for (hosts, tuples, buckets) in [(5, 1, 6), (20, 2, 1)] {
        let [indexed, linear] = both(&rules_with(hosts));
        assert_eq!(
            indexed.index(),
            IndexKind::TupleSpace {
                tuples,
                entries: usize::from(hosts) + 1,
                largest_bucket: buckets
            }
        );
        for last in [3, 19, 130, 200] {
            packet.src = Ipv4Addr::new(10, 0, 0, last);
            assert_eq!(
                indexed.evaluate(&packet, &sets),
                linear.evaluate(&packet, &sets),
                "{hosts} hosts, .{last}"
            );
        }
    }
}

// ---- Random rule sets: the index must agree with the linear reference on every packet ----

/// Addresses are drawn near these so that random nets, sets and packets overlap often.
const BASES: [[u8; 4]; 4] = [
    [10, 0, 0, 0],
    [10, 0, 1, 0],
    [10, 1, 0, 0],
    [192, 168, 0, 0],
];
const PORTS: [u16; 6] = [22, 53, 80, 443, 8080, 1000];
/// GRE (47) has its own number but no key class of its own ("other").
const PROTOCOLS: [u8; 5] = [
    protocol::TCP,
    protocol::UDP,
    protocol::ICMP,
    protocol::SCTP,
    47,
];
const SET_IDS: u32 = 6;

fn random_addr(rng: &mut StdRng) -> Ipv4Addr {
    let base = u32::from(Ipv4Addr::from(BASES[rng.gen_range(0..BASES.len())]));
    Ipv4Addr::from(
        base + rng.gen_range(0..8)
            + if rng.gen_bool(0.2) {
                256 * rng.gen_range(0..4)
            } else {
                0
            },
    )
}

fn random_cidr(rng: &mut StdRng) -> Cidr {
    const LENGTHS: [u8; 11] = [0, 4, 8, 12, 16, 20, 23, 24, 26, 30, 32];
    Cidr::new(random_addr(rng), LENGTHS[rng.gen_range(0..LENGTHS.len())]).unwrap()
}

fn random_ports(rng: &mut StdRng) -> Vec<PortRange> {
    (0..rng.gen_range(1..3))
        .map(|_| {
            let first = PORTS[rng.gen_range(0..PORTS.len())];
            PortRange::new(first, first + [0, 0, 5, 40][rng.gen_range(0..4)]).unwrap()
        })
        .collect()
}

fn random_side(rng: &mut StdRng) -> EndpointMatch {
    let mut side = EndpointMatch::default();
    let maybe = |rng: &mut StdRng, p: f64| rng.gen_bool(p);
    if maybe(rng, 0.4) {
        side.nets = (0..rng.gen_range(1..4)).map(|_| random_cidr(rng)).collect();
    }
    if maybe(rng, 0.15) {
        side.not_nets = (0..rng.gen_range(1..3)).map(|_| random_cidr(rng)).collect();
    }
    if maybe(rng, 0.3) {
        side.sets = (0..rng.gen_range(1..3))
            .map(|_| IpSetId(rng.gen_range(0..SET_IDS)))
            .collect();
    }
    if maybe(rng, 0.1) {
        side.not_sets = vec![IpSetId(rng.gen_range(0..SET_IDS))];
    }
    if maybe(rng, 0.4) {
        side.ports = random_ports(rng);
    }
    if maybe(rng, 0.1) {
        side.not_ports = random_ports(rng);
    }
    side
}

fn random_rule(rng: &mut StdRng) -> Rule {
    let action = [Action::Allow, Action::Deny, Action::Pass, Action::Log][rng.gen_range(0..4)];
    let mut rule = Rule::any(action);
    if rng.gen_bool(0.6) {
        rule.protocol = Some(PROTOCOLS[rng.gen_range(0..PROTOCOLS.len())]);
    }
    if rng.gen_bool(0.1) {
        rule.not_protocol = Some(PROTOCOLS[rng.gen_range(0..PROTOCOLS.len())]);
    }
    rule.src = random_side(rng);
    rule.dst = random_side(rng);
    if rng.gen_bool(0.1) {
        rule.icmp = Some(IcmpMatch {
            icmp_type: rng.gen_range(0..3) * 8 / 2,
            code: rng.gen_bool(0.5).then(|| rng.gen_range(0..2)),
        });
    }
    if rng.gen_bool(0.05) {
        rule.not_icmp = Some(IcmpMatch {
            icmp_type: 8,
            code: None,
        });
    }
    rule
}

fn random_rules(rng: &mut StdRng, max_rules_per_policy: usize) -> EndpointRules {
    let rules = |rng: &mut StdRng| {
        (0..rng.gen_range(0..=max_rules_per_policy))
            .map(|_| random_rule(rng))
            .collect()
    };
    let tiers = (0..rng.gen_range(0..4))
        .map(|t| Tier {
            name: format!("tier{t}"),
            order: rng.gen_bool(0.8).then(|| f64::from(rng.gen_range(0..3))),
            default_action: if rng.gen_bool(0.7) {
                TierDefaultAction::Deny
            } else {
                TierDefaultAction::Pass
            },
            policies: (0..rng.gen_range(0..4))
                .map(|p| Policy {
                    name: format!("pol{p}"),
                    order: rng.gen_bool(0.7).then(|| f64::from(rng.gen_range(0..3))),
                    rules: rules(rng),
                })
                .collect(),
        })
        .collect();
    let profiles = (0..rng.gen_range(0..3))
        .map(|p| Profile {
            name: format!("prof{p}"),
            rules: rules(rng),
        })
        .collect();
    EndpointRules { tiers, profiles }
}

fn random_sets(rng: &mut StdRng) -> IpSetsWriter {
    let mut writer = IpSetsWriter::new();
    for id in 0..SET_IDS {
        for _ in 0..rng.gen_range(0..5) {
            let member = if rng.gen_bool(0.6) {
                Cidr::host(random_addr(rng))
            } else {
                random_cidr(rng)
            };
            writer.add_member(IpSetId(id), member);
        }
    }
    writer
}

fn random_packet(rng: &mut StdRng) -> PacketFields {
    let protocol = PROTOCOLS[rng.gen_range(0..PROTOCOLS.len())];
    let icmp = protocol == protocol::ICMP;
    let ports = matches!(protocol, protocol::TCP | protocol::UDP | protocol::SCTP);
    let port = |rng: &mut StdRng| {
        PORTS[rng.gen_range(0..PORTS.len())] + [0, 0, 3, 30][rng.gen_range(0..4)]
    };
    PacketFields {
        src: random_addr(rng),
        dst: random_addr(rng),
        protocol,
        src_port: if ports { port(rng) } else { 0 },
        dst_port: if ports { port(rng) } else { 0 },
        icmp_type: icmp.then(|| rng.gen_range(0..3) * 4),
        icmp_code: icmp.then(|| rng.gen_range(0..2)),
    }
}

/// Compares decisions and the whole trail of matched rules (Log and Pass included).
fn assert_agree(
    rules: &EndpointRules,
    sets: &IpSets,
    packets: &[PacketFields],
    builder: &ClassifierBuilder,
) -> usize {
    let indexed = builder.compile(rules).unwrap();
    let linear = ClassifierBuilder::linear().compile(rules).unwrap();
    let mut allowed = 0;
    for packet in packets {
        let (mut trail_i, mut trail_l) = (Vec::new(), Vec::new());
        let di = indexed.evaluate_with(packet, sets, |r, _| trail_i.push(r));
        let dl = linear.evaluate_with(packet, sets, |r, _| trail_l.push(r));
        assert_eq!(di, dl, "decision differs for {packet:?} under {rules:#?}");
        assert_eq!(trail_i, trail_l, "matched rules differ for {packet:?}");
        allowed += (di.action == PolicyAction::Allow) as usize;
    }
    allowed
}

#[test]
fn indexed_and_linear_agree_on_random_rule_sets() {
    let mut rng = StdRng::seed_from_u64(0x5eed_c1a5);
    let (mut cases, mut allowed, mut indexed) = (0, 0, 0);
    for _ in 0..400 {
        let rules = random_rules(&mut rng, 12);
        let sets = random_sets(&mut rng).publish();
        let packets: Vec<PacketFields> = (0..100).map(|_| random_packet(&mut rng)).collect();
        let builder = ClassifierBuilder::default();
        indexed += matches!(
            builder.compile(&rules).unwrap().index(),
            IndexKind::TupleSpace { .. }
        ) as usize;
        allowed += assert_agree(&rules, &sets, &packets, &builder);
        cases += packets.len();
    }
    assert_eq!(cases, 40_000);
    assert_eq!(indexed, 400);
    // The generator must exercise both outcomes, or agreement says little.
    assert!(
        allowed > cases / 20 && allowed < cases * 19 / 20,
        "allowed {allowed} of {cases}"
    );
}

#[test]
fn indexed_and_linear_agree_on_large_rule_sets_and_tight_limits() {
    let mut rng = StdRng::seed_from_u64(0xb16_5e75);
    for round in 0..20 {
        let rules = random_rules(&mut rng, 120);
        let sets = random_sets(&mut rng).publish();
        let packets: Vec<PacketFields> = (0..500).map(|_| random_packet(&mut rng)).collect();
        // Odd rounds squeeze the per-rule key budget so rules are indexed on fewer fields.
        let builder = if round % 2 == 1 {
            ClassifierBuilder {
                max_keys_per_rule: 2,
                max_indexed_ports: 1,
                ..Default::default()
            }
        } else {
            ClassifierBuilder::default()
        };
        assert_agree(&rules, &sets, &packets, &builder);
    }
}

#[test]
fn an_address_in_more_sets_than_the_stack_holds_still_agrees() {
    let mut writer = IpSetsWriter::new();
    let many = super::program::SetList::CAPACITY as u32 + 10;
    for id in 0..many {
        writer.add_member(IpSetId(id), Cidr::host([10, 0, 0, 1].into()));
    }
    let sets = writer.publish();
    let profile_rules = (0..many)
        .rev()
        .map(|id| {
            let mut rule = port_rule(
                if id % 2 == 0 {
                    Action::Allow
                } else {
                    Action::Log
                },
                80,
            );
            rule.src.sets = vec![IpSetId(id)];
            rule
        })
        .collect();
    let rules = EndpointRules {
        tiers: vec![],
        profiles: vec![Profile {
            name: "p".into(),
            rules: profile_rules,
        }],
    };
    for program in both(&rules) {
        let mut trail = Vec::new();
        let d = program.evaluate_with(&tcp_to(80), &sets, |r, _| trail.push(r.0));
        assert_eq!(
            d,
            Decision {
                action: PolicyAction::Allow,
                rule: Some(RuleRef(1))
            }
        );
        assert_eq!(
            trail,
            [0, 1],
            "the Log rule for the last set, then the Allow for the one before"
        );
    }
}
