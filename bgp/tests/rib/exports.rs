//! The RIB: export rules (split horizon, route reflection, eBGP), loop prevention,
//! withdrawals, peers going down, and a large table.

use super::*;

fn prefix(a: u8, b: u8, c: u8, len: u8) -> Ipv4Prefix {
    Ipv4Prefix::containing(Ipv4Addr::new(10, a, b, c), len).unwrap()
}

fn peer(last_octet: u8, asn: u32, rr_client: bool) -> PeerInfo {
    PeerInfo {
        address: Ipv4Addr::new(172, 16, 0, last_octet),
        asn,
        router_id: Ipv4Addr::new(10, 0, 0, last_octet),
        local_address: Ipv4Addr::new(172, 16, 0, 1),
        rr_client,
    }
}

fn announce(prefixes: &[Ipv4Prefix], attrs: PathAttributes) -> Update {
    Update {
        nlri: prefixes.to_vec(),
        attributes: Some(attrs),
        ..Default::default()
    }
}

fn withdraw(prefixes: &[Ipv4Prefix]) -> Update {
    Update {
        withdrawn: prefixes.to_vec(),
        ..Default::default()
    }
}

fn node_route(next_hop: [u8; 4]) -> PathAttributes {
    PathAttributes {
        next_hop: Some(Ipv4Addr::from(next_hop)),
        ..Default::default()
    }
}

fn rib(cluster_id: Option<Ipv4Addr>) -> Rib {
    Rib::new(RibConfig {
        asn: OUR_AS,
        router_id: OUR_ID,
        cluster_id,
    })
}

fn up(rib: &mut Rib, key: u32, info: PeerInfo) -> RibChanges {
    let mut changes = RibChanges::default();
    rib.peer_up(PeerKey(key), info, &mut changes).unwrap();
    changes
}

fn apply(rib: &mut Rib, key: u32, update: Update) -> RibChanges {
    let mut changes = RibChanges::default();
    rib.update(PeerKey(key), &update, &mut changes).unwrap();
    changes
}

fn announced_to(changes: &RibChanges, key: u32) -> Vec<(Ipv4Prefix, Arc<PathAttributes>)> {
    changes
        .out
        .iter()
        .filter(|(k, _)| *k == PeerKey(key))
        .filter_map(|(_, c)| match c {
            OutChange::Announce(p, a) => Some((*p, Arc::clone(a))),
            OutChange::Withdraw(_) => None,
        })
        .collect()
}

fn withdrawn_to(changes: &RibChanges, key: u32) -> Vec<Ipv4Prefix> {
    changes
        .out
        .iter()
        .filter(|(k, _)| *k == PeerKey(key))
        .filter_map(|(_, c)| match c {
            OutChange::Withdraw(p) => Some(*p),
            OutChange::Announce(..) => None,
        })
        .collect()
}

#[test]
fn ibgp_split_horizon_keeps_ibgp_routes_from_other_ibgp_peers_but_sends_them_to_ebgp() {
    let mut rib = rib(None);
    up(&mut rib, 1, peer(2, OUR_AS, false));
    up(&mut rib, 2, peer(3, OUR_AS, false));
    up(&mut rib, 3, peer(4, 65000, false));
    let p = prefix(1, 0, 0, 26);
    let learned = PathAttributes {
        med: Some(7),
        local_pref: Some(150),
        ..node_route([172, 16, 0, 2])
    };
    let changes = apply(&mut rib, 1, announce(&[p], learned));
    assert_eq!(
        changes.fib,
        vec![FibChange {
            prefix: p,
            next_hop: Some(Ipv4Addr::new(172, 16, 0, 2))
        }]
    );
    assert!(
        announced_to(&changes, 1).is_empty(),
        "not back to the peer it came from"
    );
    assert!(announced_to(&changes, 2).is_empty(), "iBGP split horizon");
    let to_ebgp = announced_to(&changes, 3);
    assert_eq!(to_ebgp.len(), 1);
    let attrs = &to_ebgp[0].1;
    assert_eq!(
        attrs.as_path,
        AsPath::from_sequence(vec![OUR_AS]),
        "our AS prepended"
    );
    assert_eq!(
        attrs.next_hop,
        Some(Ipv4Addr::new(172, 16, 0, 1)),
        "NEXT_HOP is ours"
    );
    assert_eq!(attrs.local_pref, None, "no LOCAL_PREF to an external peer");
    assert_eq!(attrs.med, None, "a MED is not passed on to another AS");
    // What a ROUTE-REFRESH from the external peer would get again.
    let table: Vec<_> = rib
        .adj_rib_out(PeerKey(3))
        .unwrap()
        .iter()
        .map(|(p, a)| (p, a.clone()))
        .collect();
    assert_eq!(table, vec![(p, Arc::clone(attrs))]);
    assert!(rib.adj_rib_out(PeerKey(2)).unwrap().is_empty());
}

#[test]
fn ebgp_route_goes_to_ibgp_peers_with_next_hop_kept_and_local_pref_set() {
    let mut rib = rib(None);
    up(&mut rib, 1, peer(2, OUR_AS, false));
    up(&mut rib, 3, peer(4, 65000, false));
    let p = prefix(2, 0, 0, 24);
    let external = PathAttributes {
        local_pref: Some(999),
        ..PathAttributes {
            as_path: AsPath::from_sequence(vec![65000]),
            ..node_route([172, 16, 0, 4])
        }
    };
    let changes = apply(&mut rib, 3, announce(&[p], external));
    let to_ibgp = announced_to(&changes, 1);
    assert_eq!(to_ibgp.len(), 1);
    assert_eq!(to_ibgp[0].1.next_hop, Some(Ipv4Addr::new(172, 16, 0, 4)));
    assert_eq!(
        to_ibgp[0].1.local_pref,
        Some(100),
        "the peer's LOCAL_PREF is ignored, ours (100) set"
    );
    assert_eq!(to_ibgp[0].1.as_path, AsPath::from_sequence(vec![65000]));
}

#[test]
fn locally_originated_blocks_are_announced_with_origin_igp_and_our_next_hop() {
    let mut rib = rib(None);
    up(&mut rib, 1, peer(2, OUR_AS, false));
    up(&mut rib, 3, peer(4, 65000, false));
    let block = prefix(3, 0, 64, 26);
    let mut changes = RibChanges::default();
    rib.originate(block, &mut changes);
    assert!(
        changes.fib.is_empty(),
        "our own block is no learned route for the dataplane"
    );
    let to_ibgp = &announced_to(&changes, 1)[0].1;
    assert_eq!(to_ibgp.origin, Origin::Igp);
    assert_eq!(to_ibgp.as_path, AsPath::default());
    assert_eq!(to_ibgp.next_hop, Some(Ipv4Addr::new(172, 16, 0, 1)));
    assert_eq!(to_ibgp.local_pref, Some(100));
    let to_ebgp = &announced_to(&changes, 3)[0].1;
    assert_eq!(to_ebgp.as_path, AsPath::from_sequence(vec![OUR_AS]));
    // A peer that comes up later gets it too.
    let later = up(&mut rib, 4, peer(5, OUR_AS, false));
    assert_eq!(
        announced_to(&later, 4)
            .iter()
            .map(|(p, _)| *p)
            .collect::<Vec<_>>(),
        vec![block]
    );
    let mut changes = RibChanges::default();
    rib.withdraw_local(block, &mut changes);
    assert_eq!(withdrawn_to(&changes, 1), vec![block]);
    assert_eq!(withdrawn_to(&changes, 3), vec![block]);
    assert_eq!(withdrawn_to(&changes, 4), vec![block]);
}

#[test]
fn reflector_sends_client_routes_to_everyone_with_originator_id_and_cluster_list() {
    let cluster = Ipv4Addr::new(244, 0, 0, 1);
    let mut rib = rib(Some(cluster));
    up(&mut rib, 1, peer(2, OUR_AS, true)); // client
    up(&mut rib, 2, peer(3, OUR_AS, true)); // client
    up(&mut rib, 3, peer(4, OUR_AS, false)); // non-client
    let p = prefix(4, 0, 0, 26);
    let changes = apply(&mut rib, 1, announce(&[p], node_route([172, 16, 0, 2])));
    for key in [2, 3] {
        let sent = announced_to(&changes, key);
        assert_eq!(sent.len(), 1, "client route reflected to peer {key}");
        assert_eq!(sent[0].1.originator_id, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(sent[0].1.cluster_list, vec![cluster]);
        assert_eq!(
            sent[0].1.next_hop,
            Some(Ipv4Addr::new(172, 16, 0, 2)),
            "next hop kept"
        );
    }
    assert!(announced_to(&changes, 1).is_empty());
}

#[test]
fn reflector_sends_non_client_routes_only_to_clients_and_keeps_an_existing_originator_id() {
    let cluster = Ipv4Addr::new(244, 0, 0, 1);
    let mut rib = rib(Some(cluster));
    up(&mut rib, 1, peer(2, OUR_AS, true)); // client
    up(&mut rib, 3, peer(4, OUR_AS, false)); // non-client
    up(&mut rib, 4, peer(5, OUR_AS, false)); // non-client
    let p = prefix(5, 0, 0, 26);
    let other_cluster = Ipv4Addr::new(244, 0, 0, 2);
    let reflected_elsewhere = PathAttributes {
        originator_id: Some(Ipv4Addr::new(10, 9, 9, 9)),
        cluster_list: vec![other_cluster],
        ..node_route([172, 16, 0, 9])
    };
    let changes = apply(&mut rib, 3, announce(&[p], reflected_elsewhere));
    assert!(
        announced_to(&changes, 4).is_empty(),
        "non-client to non-client is not reflected"
    );
    let sent = announced_to(&changes, 1);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].1.originator_id,
        Some(Ipv4Addr::new(10, 9, 9, 9)),
        "ORIGINATOR_ID kept"
    );
    assert_eq!(
        sent[0].1.cluster_list,
        vec![cluster, other_cluster],
        "our CLUSTER_ID prepended"
    );
}

#[test]
fn reflected_loops_are_dropped_on_receipt_and_withdraw_what_they_replace() {
    let cluster = Ipv4Addr::new(244, 0, 0, 1);
    let mut rib = rib(Some(cluster));
    up(&mut rib, 1, peer(2, OUR_AS, false));
    let p = prefix(6, 0, 0, 26);
    apply(&mut rib, 1, announce(&[p], node_route([172, 16, 0, 2])));
    assert!(rib.loc_rib().best(&p).is_some());
    // Our own route coming back (ORIGINATOR_ID is us): treated as withdraw.
    let ours = PathAttributes {
        originator_id: Some(OUR_ID),
        ..node_route([172, 16, 0, 2])
    };
    let changes = apply(&mut rib, 1, announce(&[p], ours));
    assert!(rib.loc_rib().best(&p).is_none());
    assert_eq!(
        changes.fib,
        vec![FibChange {
            prefix: p,
            next_hop: None
        }]
    );
    // A route that has passed through our cluster: ignored.
    let looped = PathAttributes {
        cluster_list: vec![Ipv4Addr::new(1, 1, 1, 1), cluster],
        ..node_route([172, 16, 0, 2])
    };
    apply(&mut rib, 1, announce(&[p], looped));
    assert!(rib.loc_rib().best(&p).is_none());
    assert_eq!(rib.adj_rib_in(PeerKey(1)).unwrap().len(), 0);
}

#[test]
fn ebgp_route_with_our_as_in_the_path_is_dropped() {
    let mut rib = rib(None);
    up(&mut rib, 3, peer(4, 65000, false));
    let p = prefix(7, 0, 0, 24);
    let looped = PathAttributes {
        as_path: AsPath::from_sequence(vec![65000, OUR_AS, 65001]),
        ..node_route([172, 16, 0, 4])
    };
    let changes = apply(&mut rib, 3, announce(&[p], looped));
    assert!(changes.fib.is_empty());
    assert!(rib.loc_rib().best(&p).is_none());
}

#[test]
fn treat_as_withdraw_update_removes_the_routes_it_names() {
    let mut rib = rib(None);
    up(&mut rib, 1, peer(2, OUR_AS, false));
    let p = prefix(8, 0, 0, 26);
    apply(&mut rib, 1, announce(&[p], node_route([172, 16, 0, 2])));
    // As the codec hands it over (RFC 7606): prefixes moved to withdrawn, no attributes.
    let malformed = Update {
        withdrawn: vec![p],
        treat_as_withdraw: true,
        ..Default::default()
    };
    let changes = apply(&mut rib, 1, malformed);
    assert_eq!(
        changes.fib,
        vec![FibChange {
            prefix: p,
            next_hop: None
        }]
    );
    // An announcement without a NEXT_HOP cannot be used either.
    apply(&mut rib, 1, announce(&[p], PathAttributes::default()));
    assert!(rib.loc_rib().best(&p).is_none());
}

#[test]
fn withdrawal_falls_back_to_the_next_best_and_propagates() {
    let mut rib = rib(None);
    up(&mut rib, 1, peer(2, OUR_AS, false));
    up(&mut rib, 2, peer(3, OUR_AS, false));
    up(&mut rib, 3, peer(4, 65000, false));
    let p = prefix(9, 0, 0, 26);
    apply(&mut rib, 2, announce(&[p], node_route([172, 16, 0, 3])));
    // Peer 1 (router id 10.0.0.2, lower) wins the tie-break.
    let changes = apply(&mut rib, 1, announce(&[p], node_route([172, 16, 0, 2])));
    assert_eq!(
        changes.fib,
        vec![FibChange {
            prefix: p,
            next_hop: Some(Ipv4Addr::new(172, 16, 0, 2))
        }]
    );
    assert_eq!(rib.loc_rib().paths(&p).len(), 2);
    let changes = apply(&mut rib, 1, withdraw(&[p]));
    assert_eq!(
        changes.fib,
        vec![FibChange {
            prefix: p,
            next_hop: Some(Ipv4Addr::new(172, 16, 0, 3))
        }]
    );
    let changes = apply(&mut rib, 2, withdraw(&[p]));
    assert_eq!(
        changes.fib,
        vec![FibChange {
            prefix: p,
            next_hop: None
        }]
    );
    assert_eq!(
        withdrawn_to(&changes, 3),
        vec![p],
        "the external peer is told"
    );
    assert!(rib.adj_rib_out(PeerKey(3)).unwrap().is_empty());
    // Withdrawing what was never announced changes nothing.
    let changes = apply(&mut rib, 2, withdraw(&[p]));
    assert!(changes.fib.is_empty() && changes.out.is_empty());
}

#[test]
fn peer_down_drops_its_routes_and_withdraws_them_from_the_others() {
    let mut rib = rib(None);
    up(&mut rib, 1, peer(2, OUR_AS, false));
    up(&mut rib, 3, peer(4, 65000, false));
    let prefixes = [prefix(10, 0, 0, 26), prefix(10, 0, 64, 26)];
    apply(
        &mut rib,
        1,
        announce(&prefixes, node_route([172, 16, 0, 2])),
    );
    let mut changes = RibChanges::default();
    rib.peer_down(PeerKey(1), &mut changes).unwrap();
    assert_eq!(changes.fib.len(), 2);
    assert!(changes.fib.iter().all(|c| c.next_hop.is_none()));
    let mut withdrawn = withdrawn_to(&changes, 3);
    withdrawn.sort();
    assert_eq!(withdrawn, prefixes.to_vec());
    assert!(
        changes.out.iter().all(|(k, _)| *k == PeerKey(3)),
        "nothing computed for the peer that is gone"
    );
    assert!(rib.loc_rib().is_empty());
    assert_eq!(
        rib.peer_down(PeerKey(1), &mut changes),
        Err(RibError::UnknownPeer(PeerKey(1)))
    );
    assert_eq!(
        rib.update(PeerKey(1), &withdraw(&prefixes), &mut changes),
        Err(RibError::UnknownPeer(PeerKey(1)))
    );
}

#[test]
fn same_attributes_share_one_path_and_one_exported_set() {
    let mut rib = rib(None);
    up(&mut rib, 1, peer(2, OUR_AS, false));
    up(&mut rib, 3, peer(4, 65000, false));
    let first: Vec<Ipv4Prefix> = (0..100).map(|i| prefix(11, i, 0, 24)).collect();
    let second: Vec<Ipv4Prefix> = (100..200).map(|i| prefix(11, i, 0, 24)).collect();
    let c1 = apply(&mut rib, 1, announce(&first, node_route([172, 16, 0, 2])));
    let c2 = apply(&mut rib, 1, announce(&second, node_route([172, 16, 0, 2])));
    assert_eq!(
        rib.distinct_paths(),
        1,
        "two UPDATEs with equal attributes: one shared path"
    );
    let sent: Vec<_> = announced_to(&c1, 3)
        .into_iter()
        .chain(announced_to(&c2, 3))
        .collect();
    assert_eq!(sent.len(), 200);
    assert!(
        sent.iter().all(|(_, a)| Arc::ptr_eq(a, &sent[0].1)),
        "one exported attribute set"
    );
}

#[test]
fn peer_up_twice_is_refused() {
    let mut rib = rib(None);
    up(&mut rib, 1, peer(2, OUR_AS, false));
    let mut changes = RibChanges::default();
    assert_eq!(
        rib.peer_up(PeerKey(1), peer(2, OUR_AS, false), &mut changes),
        Err(RibError::PeerAlreadyUp(PeerKey(1)))
    );
}

/// A full Internet-size table from one peer: 1M prefixes in release (how `make test` runs),
/// 100k in debug builds. Speed is measured by the benchmark, not asserted here.
#[test]
fn large_table_is_learned_shared_and_withdrawn() {
    let count: u32 = if cfg!(debug_assertions) {
        100_000
    } else {
        1_000_000
    };
    let mut rib = rib(None);
    up(&mut rib, 1, peer(2, OUR_AS, false));
    up(&mut rib, 3, peer(4, 65000, false));
    let prefixes: Vec<Ipv4Prefix> = (0..count)
        .map(|i| Ipv4Prefix::containing(Ipv4Addr::from((1 << 24) + (i << 8)), 24).unwrap())
        .collect();
    let mut changes = RibChanges::default();
    // ~800 prefixes per UPDATE as a 4096-octet message holds, 16 distinct paths.
    for (n, chunk) in prefixes.chunks(800).enumerate() {
        let attrs = PathAttributes {
            as_path: AsPath::from_sequence(vec![65100 + (n % 16) as u32]),
            ..node_route([172, 16, 0, 2])
        };
        rib.update(PeerKey(1), &announce(chunk, attrs), &mut changes)
            .unwrap();
        assert_eq!(changes.fib.len(), chunk.len());
        changes.fib.clear();
        changes.out.clear();
    }
    assert_eq!(rib.loc_rib().len(), count as usize);
    assert_eq!(rib.adj_rib_in(PeerKey(1)).unwrap().len(), count as usize);
    assert_eq!(rib.adj_rib_out(PeerKey(3)).unwrap().len(), count as usize);
    assert_eq!(rib.distinct_paths(), 16);
    for chunk in prefixes.chunks(800) {
        rib.update(PeerKey(1), &withdraw(chunk), &mut changes)
            .unwrap();
        changes.fib.clear();
        changes.out.clear();
    }
    assert!(rib.loc_rib().is_empty());
    assert!(rib.adj_rib_out(PeerKey(3)).unwrap().is_empty());
}
