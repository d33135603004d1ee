//! The flow table's behaviour through its public interface: lookups in both directions,
//! deadlines, sweeping, eviction under pressure, and a model check under random operations.

use std::collections::HashMap;
use std::net::Ipv4Addr;

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
        via_host: false,
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
