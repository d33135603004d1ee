//! Best path selection, one table per step of RFC 4271 section 9.1.2.2 (and RFC 4456
//! section 9 for route reflection).

use super::*;

fn ibgp_from(last_octet: u8) -> SourceInfo {
    SourceInfo {
        local: false,
        ebgp: false,
        router_id: Ipv4Addr::new(10, 0, 0, last_octet),
        address: Ipv4Addr::new(10, 0, 0, last_octet),
    }
}

fn ebgp_from(last_octet: u8) -> SourceInfo {
    SourceInfo {
        ebgp: true,
        ..ibgp_from(last_octet)
    }
}

fn attrs(path: &[u32]) -> PathAttributes {
    PathAttributes {
        as_path: AsPath::from_sequence(path.to_vec()),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        ..Default::default()
    }
}

/// The winner must not depend on the order the candidates are listed in.
fn best_of(candidates: &[(PathAttributes, SourceInfo)]) -> usize {
    let list: Vec<Candidate<'_>> = candidates
        .iter()
        .map(|(attrs, source)| Candidate {
            attrs,
            source: *source,
        })
        .collect();
    let best = select_best(&list).expect("a best path");
    let reversed: Vec<Candidate<'_>> = list.iter().rev().copied().collect();
    let best_reversed = select_best(&reversed).expect("a best path");
    assert_eq!(
        candidates.len() - 1 - best_reversed,
        best,
        "selection depends on the order"
    );
    best
}

#[test]
fn no_candidates_no_best() {
    assert_eq!(select_best(&[]), None);
}

#[test]
fn highest_local_pref_wins_and_missing_local_pref_counts_100() {
    let low = PathAttributes {
        local_pref: Some(50),
        ..attrs(&[1])
    };
    let high = PathAttributes {
        local_pref: Some(200),
        ..attrs(&[1, 2, 3])
    };
    assert_eq!(
        best_of(&[(low.clone(), ibgp_from(2)), (high, ibgp_from(3))]),
        1
    );
    assert_eq!(
        best_of(&[(low, ibgp_from(2)), (attrs(&[1, 2, 3]), ibgp_from(3))]),
        1,
        "none = 100 > 50"
    );
}

#[test]
fn local_pref_from_an_external_peer_does_not_count() {
    let ebgp_claims_high = PathAttributes {
        local_pref: Some(1000),
        ..attrs(&[1, 2])
    };
    assert_eq!(
        best_of(&[
            (ebgp_claims_high, ebgp_from(2)),
            (attrs(&[1]), ibgp_from(3))
        ]),
        1
    );
}

#[test]
fn locally_originated_route_wins_over_learned_ones() {
    let local = SourceInfo {
        local: true,
        ebgp: false,
        router_id: OUR_ID,
        address: Ipv4Addr::UNSPECIFIED,
    };
    let learned = PathAttributes {
        local_pref: Some(500),
        ..attrs(&[])
    };
    assert_eq!(best_of(&[(learned, ibgp_from(2)), (attrs(&[]), local)]), 1);
}

#[test]
fn shortest_as_path_wins_and_an_as_set_counts_one() {
    assert_eq!(
        best_of(&[
            (attrs(&[1, 2, 3]), ebgp_from(2)),
            (attrs(&[4, 5]), ebgp_from(3))
        ]),
        1
    );
    let with_set = PathAttributes {
        as_path: AsPath {
            segments: vec![
                AsPathSegment {
                    kind: AsPathSegmentType::AsSequence,
                    asns: vec![1],
                },
                AsPathSegment {
                    kind: AsPathSegmentType::AsSet,
                    asns: vec![7, 8, 9, 10],
                },
            ],
        },
        ..attrs(&[])
    };
    // [1 {7 8 9 10}] has length 2, shorter than [4 5 6].
    assert_eq!(
        best_of(&[(attrs(&[4, 5, 6]), ebgp_from(2)), (with_set, ebgp_from(3))]),
        1
    );
}

#[test]
fn lowest_origin_wins() {
    let incomplete = PathAttributes {
        origin: Origin::Incomplete,
        ..attrs(&[1])
    };
    let egp = PathAttributes {
        origin: Origin::Egp,
        ..attrs(&[2])
    };
    let igp = PathAttributes {
        origin: Origin::Igp,
        ..attrs(&[3])
    };
    assert_eq!(
        best_of(&[
            (incomplete.clone(), ebgp_from(2)),
            (egp.clone(), ebgp_from(3))
        ]),
        1
    );
    assert_eq!(
        best_of(&[
            (incomplete, ebgp_from(2)),
            (egp, ebgp_from(3)),
            (igp, ebgp_from(4))
        ]),
        2
    );
}

#[test]
fn lowest_med_wins_between_routes_from_the_same_neighbour_as() {
    let med = |m: Option<u32>, path: &[u32]| PathAttributes {
        med: m,
        ..attrs(path)
    };
    // Same neighbour AS 1: MED decides even though router id 2 is lower.
    assert_eq!(
        best_of(&[
            (med(Some(20), &[1, 9]), ebgp_from(2)),
            (med(Some(10), &[1, 8]), ebgp_from(3))
        ]),
        1
    );
    // A missing MED is the lowest possible value.
    assert_eq!(
        best_of(&[
            (med(Some(5), &[1, 9]), ebgp_from(2)),
            (med(None, &[1, 8]), ebgp_from(3))
        ]),
        1
    );
}

#[test]
fn med_is_not_compared_between_different_neighbour_ases() {
    let med = |m: u32, path: &[u32]| PathAttributes {
        med: Some(m),
        ..attrs(path)
    };
    // AS 1 with MED 100 vs AS 2 with MED 1: MED does not apply, the lower router id wins.
    assert_eq!(
        best_of(&[
            (med(100, &[1, 9]), ebgp_from(2)),
            (med(1, &[2, 8]), ebgp_from(3))
        ]),
        0
    );
    // Three routes where a pairwise comparison would cycle: A(AS1, MED 10, id 4) beats
    // B(AS1, MED 20, id 2) on MED; B beats C(AS2, id 3) on router id; C beats A on router id.
    // The elimination removes B first, so C (id 3) wins whatever the order.
    let a = (med(10, &[1, 9]), ebgp_from(4));
    let b = (med(20, &[1, 9]), ebgp_from(2));
    let c = (med(0, &[2, 9]), ebgp_from(3));
    assert_eq!(best_of(&[a.clone(), b.clone(), c.clone()]), 2);
    assert_eq!(best_of(&[b, c, a]), 1);
}

#[test]
fn external_route_wins_over_internal_one() {
    assert_eq!(
        best_of(&[(attrs(&[1]), ibgp_from(2)), (attrs(&[1]), ebgp_from(3))]),
        1
    );
}

#[test]
fn lowest_bgp_identifier_wins_and_originator_id_stands_for_it() {
    assert_eq!(
        best_of(&[(attrs(&[1]), ibgp_from(3)), (attrs(&[1]), ibgp_from(2))]),
        1
    );
    // Reflected route: learned from reflector 10.0.0.2, originated by 10.0.0.9: compares as 9.
    let reflected = PathAttributes {
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 9)),
        ..attrs(&[1])
    };
    assert_eq!(
        best_of(&[(reflected, ibgp_from(2)), (attrs(&[1]), ibgp_from(3))]),
        1
    );
}

#[test]
fn shortest_cluster_list_wins() {
    let id = Ipv4Addr::new(10, 0, 0, 9);
    let long = PathAttributes {
        originator_id: Some(id),
        cluster_list: vec![Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2)],
        ..attrs(&[1])
    };
    let short = PathAttributes {
        originator_id: Some(id),
        cluster_list: vec![Ipv4Addr::new(3, 3, 3, 3)],
        ..attrs(&[1])
    };
    assert_eq!(best_of(&[(long, ibgp_from(2)), (short, ibgp_from(3))]), 1);
}

#[test]
fn lowest_peer_address_breaks_the_last_tie() {
    let id = Ipv4Addr::new(10, 0, 0, 9);
    let reflected = PathAttributes {
        originator_id: Some(id),
        ..attrs(&[1])
    };
    let from_a = SourceInfo {
        address: Ipv4Addr::new(10, 0, 0, 50),
        ..ibgp_from(2)
    };
    let from_b = SourceInfo {
        address: Ipv4Addr::new(10, 0, 0, 40),
        ..ibgp_from(3)
    };
    assert_eq!(
        best_of(&[(reflected.clone(), from_a), (reflected, from_b)]),
        1
    );
}
