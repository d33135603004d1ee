//! One IPAM behaviour suite run against both real backends: the embedded store (a redb file
//! in a temp dir) and a real etcd each test starts on 127.0.0.1. `ipam_suite!` instantiates
//! every case for one backend. The concurrency case, which runs `brindle-perf ipam-worker` in
//! several OS processes against the same store, is in perf/tests/ipam_workers.rs.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use common::{embedded, etcd, ip, json_at, pool, Fixture};
use datastore::keys;
use ipam::{AutoAssignArgs, Ipam, IpamConfig, IpamError, PoolInfo};

fn one(host: &str, handle: &str, pools: &[PoolInfo]) -> AutoAssignArgs {
    AutoAssignArgs {
        num: 1,
        handle_id: handle.to_string(),
        attrs: BTreeMap::from([("node".to_string(), host.to_string())]),
        host: host.to_string(),
        pools: pools.to_vec(),
    }
}

// ---- cases ----------------------------------------------------------------------------------

fn allocation_order_and_block_claim(f: &Fixture) {
    let ipam = Ipam::new(f.store.clone());
    let pools = [pool("10.1.0.0/24", 26)];
    let mut args = one("node-a", "h-a", &pools);
    args.num = 3;
    assert_eq!(
        ipam.auto_assign(&args).unwrap(),
        [ip("10.1.0.0"), ip("10.1.0.1"), ip("10.1.0.2")]
    );
    assert_eq!(
        ipam.auto_assign(&one("node-a", "h-a2", &pools)).unwrap(),
        [ip("10.1.0.3")]
    );
    // Another host claims the next free block, not the first host's.
    assert_eq!(
        ipam.auto_assign(&one("node-b", "h-b", &pools)).unwrap(),
        [ip("10.1.0.64")]
    );

    let block = json_at(&*f.store, &keys::ipam_block("10.1.0.0/26"));
    assert_eq!(block["cidr"], "10.1.0.0/26");
    assert_eq!(block["affinity"], "host:node-a");
    assert_eq!(block["allocations"][0], 0);
    assert_eq!(block["allocations"][4], serde_json::Value::Null);
    assert_eq!(block["unallocated"][0], 4);
    assert_eq!(block["attributes"][0]["handle_id"], "h-a");
    assert_eq!(block["attributes"][0]["secondary"]["node"], "node-a");
    let affinity = json_at(&*f.store, &keys::ipam_affinity("node-a", "10.1.0.0/26"));
    assert_eq!(
        affinity,
        serde_json::json!({"state": "confirmed", "deleted": false})
    );
    let handle = json_at(&*f.store, &keys::ipam_handle("h-a"));
    assert_eq!(handle["block"], serde_json::json!({"10.1.0.0/26": 3}));
    assert_eq!(
        json_at(&*f.store, &keys::ipam_block("10.1.0.64/26"))["affinity"],
        "host:node-b"
    );

    let attrs = ipam
        .get_assignment_attrs(ip("10.1.0.64"))
        .unwrap()
        .expect("allocated");
    assert_eq!(attrs.handle_id.as_deref(), Some("h-b"));
    assert_eq!(attrs.attrs["node"], "node-b");
    assert_eq!(ipam.get_assignment_attrs(ip("10.1.0.65")).unwrap(), None);
}

fn exhausting_a_block_claims_a_second(f: &Fixture) {
    let ipam = Ipam::new(f.store.clone());
    let pools = [pool("10.2.0.0/24", 26)];
    let mut args = one("node-a", "full", &pools);
    args.num = 64;
    let first = ipam.auto_assign(&args).unwrap();
    assert_eq!(first.len(), 64);
    assert!(first.iter().all(|a| a.octets()[3] < 64));
    assert_eq!(
        ipam.auto_assign(&one("node-a", "next", &pools)).unwrap(),
        [ip("10.2.0.64")]
    );
    let blocks = ipam.blocks().unwrap();
    let summary: Vec<_> = blocks
        .iter()
        .map(|b| (b.cidr.to_string(), b.affinity.clone(), b.in_use, b.total))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "10.2.0.0/26".to_string(),
                Some("node-a".to_string()),
                64,
                64
            ),
            (
                "10.2.0.64/26".to_string(),
                Some("node-a".to_string()),
                1,
                64
            ),
        ]
    );
    let usage = ipam.usage(&pools).unwrap();
    assert_eq!(
        (usage[0].total, usage[0].in_use, usage[0].free),
        (256, 65, 191)
    );
}

fn borrows_when_pools_are_full_unless_strict(f: &Fixture) {
    let ipam = Ipam::new(f.store.clone());
    let pools = [pool("10.3.0.0/25", 26)];
    assert_eq!(
        ipam.auto_assign(&one("node-a", "a1", &pools)).unwrap(),
        [ip("10.3.0.0")]
    );
    assert_eq!(
        ipam.auto_assign(&one("node-b", "b1", &pools)).unwrap(),
        [ip("10.3.0.64")]
    );
    // No free block left: node-c borrows from the first block with room.
    assert_eq!(
        ipam.auto_assign(&one("node-c", "c1", &pools)).unwrap(),
        [ip("10.3.0.1")]
    );
    let block = json_at(&*f.store, &keys::ipam_block("10.3.0.0/26"));
    assert_eq!(
        block["affinity"], "host:node-a",
        "borrowing leaves the block's affinity alone"
    );
    assert!(f
        .store
        .list(&keys::ipam_affinity_prefix("node-c"))
        .unwrap()
        .0
        .is_empty());

    ipam.set_config(&IpamConfig {
        strict_affinity: true,
        auto_allocate_blocks: true,
    })
    .unwrap();
    match ipam.auto_assign(&one("node-c", "c2", &pools)) {
        Err(IpamError::Exhausted {
            requested: 1,
            assigned: 0,
            strict_affinity: true,
        }) => {}
        other => panic!("strict affinity must forbid borrowing, got {other:?}"),
    }
    assert!(
        f.store.get(&keys::ipam_handle("c2")).unwrap().is_none(),
        "a failed request leaves no handle"
    );
    // The owners still allocate from their own blocks.
    assert_eq!(
        ipam.auto_assign(&one("node-a", "a2", &pools)).unwrap(),
        [ip("10.3.0.2")]
    );
    assert_eq!(ipam.usage(&pools).unwrap()[0].in_use, 4);
}

fn partial_request_is_given_back(f: &Fixture) {
    let ipam = Ipam::new(f.store.clone());
    let pools = [pool("10.4.0.0/26", 26)];
    let mut args = one("node-a", "greedy", &pools);
    args.num = 65;
    match ipam.auto_assign(&args) {
        Err(IpamError::Exhausted {
            requested: 65,
            assigned: 64,
            ..
        }) => {}
        other => panic!("expected Exhausted, got {other:?}"),
    }
    assert_eq!(ipam.usage(&pools).unwrap()[0].in_use, 0);
    assert!(f.store.get(&keys::ipam_handle("greedy")).unwrap().is_none());
    assert!(ipam.check(&["node-a".to_string()]).unwrap().is_clean());
}

fn release_by_ip_and_by_handle_twice(f: &Fixture) {
    let ipam = Ipam::new(f.store.clone());
    let pools = [pool("10.5.0.0/24", 26)];
    let mut args = one("node-a", "two", &pools);
    args.num = 2;
    let pair = ipam.auto_assign(&args).unwrap();
    let single = ipam.auto_assign(&one("node-a", "single", &pools)).unwrap();

    // By address: the unallocated one comes back, the handle's count drops.
    let not_allocated = ipam
        .release_ips(&[pair[0], ip("10.5.0.200"), ip("192.0.2.1")])
        .unwrap();
    assert_eq!(not_allocated, [ip("10.5.0.200"), ip("192.0.2.1")]);
    assert_eq!(
        json_at(&*f.store, &keys::ipam_handle("two"))["block"]["10.5.0.0/26"],
        1
    );
    assert_eq!(ipam.release_ips(&single).unwrap(), Vec::<Ipv4Addr>::new());
    assert!(
        f.store.get(&keys::ipam_handle("single")).unwrap().is_none(),
        "an empty handle is deleted"
    );
    assert_eq!(
        ipam.release_ips(&single).unwrap(),
        single,
        "releasing twice reports it unallocated"
    );

    // By handle, twice.
    assert_eq!(ipam.release_by_handle("two").unwrap(), [pair[1]]);
    assert!(f.store.get(&keys::ipam_handle("two")).unwrap().is_none());
    assert_eq!(
        ipam.release_by_handle("two").unwrap(),
        Vec::<Ipv4Addr>::new()
    );
    assert_eq!(ipam.usage(&pools).unwrap()[0].in_use, 0);
    // The block stays, affine and empty; released addresses go to the back of the queue.
    assert_eq!(
        ipam.auto_assign(&one("node-a", "after", &pools)).unwrap(),
        [ip("10.5.0.3")]
    );
}

fn specific_assign_of_taken_address_fails(f: &Fixture) {
    let ipam = Ipam::new(f.store.clone());
    let pools = [pool("10.6.0.0/24", 26)];
    let none = BTreeMap::new();
    ipam.assign_ip(ip("10.6.0.130"), "static-1", &none, "node-a", &pools)
        .unwrap();
    assert_eq!(
        json_at(&*f.store, &keys::ipam_block("10.6.0.128/26"))["affinity"],
        "host:node-a"
    );
    let err = ipam
        .assign_ip(ip("10.6.0.130"), "static-2", &none, "node-a", &pools)
        .unwrap_err();
    assert!(
        matches!(&err, IpamError::AddressInUse { handle_id: Some(h), .. } if h == "static-1"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "address 10.6.0.130 is already assigned (handle static-1)"
    );
    assert!(f
        .store
        .get(&keys::ipam_handle("static-2"))
        .unwrap()
        .is_none());
    let err = ipam
        .assign_ip(ip("10.7.0.1"), "static-3", &none, "node-a", &pools)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the provided IP address 10.7.0.1 is not in a configured pool"
    );
    // Auto-assignment on that host continues in the block the static address created.
    assert_eq!(
        ipam.auto_assign(&one("node-a", "auto", &pools)).unwrap(),
        [ip("10.6.0.128")]
    );
}

fn check_finds_planted_problems(f: &Fixture) {
    let ipam = Ipam::new(f.store.clone());
    let pools = [pool("10.8.0.0/24", 26)];
    let nodes = ["node-a".to_string(), "node-b".to_string()];
    let leak = ipam.auto_assign(&one("node-a", "leaky", &pools)).unwrap()[0];
    ipam.auto_assign(&one("node-a", "fine", &pools)).unwrap();
    ipam.auto_assign(&one("node-b", "on-b", &pools)).unwrap();
    let clean = ipam.check(&nodes).unwrap();
    assert!(clean.is_clean(), "{clean:?}");
    assert_eq!(
        (
            clean.blocks_checked,
            clean.allocations_checked,
            clean.handles_checked
        ),
        (2, 3, 3)
    );

    // Plant: a handle record lost (a leaked address), a handle claiming an address that is not
    // there, and a node that went away.
    f.store.delete(&keys::ipam_handle("leaky"), None).unwrap();
    f.store
        .put(
            &keys::ipam_handle("ghost"),
            br#"{"handleID":"ghost","block":{"10.8.0.0/26":2},"deleted":false}"#,
        )
        .unwrap();
    let report = ipam.check(&nodes[..1]).unwrap();
    assert_eq!(report.leaked.len(), 1);
    assert_eq!(
        (report.leaked[0].ip, report.leaked[0].handle_id.as_deref()),
        (leak, Some("leaky"))
    );
    assert_eq!(report.handle_mismatches.len(), 1);
    let m = &report.handle_mismatches[0];
    assert_eq!(
        (m.handle_id.as_str(), m.block.as_str(), m.recorded, m.found),
        ("ghost", "10.8.0.0/26", 2, 0)
    );
    assert_eq!(report.orphaned_blocks.len(), 1);
    assert_eq!(
        (
            report.orphaned_blocks[0].cidr.to_string(),
            report.orphaned_blocks[0].host.as_str()
        ),
        ("10.8.0.64/26".to_string(), "node-b")
    );
    assert!(!report.is_clean());
}

fn tunnel_address_is_idempotent(f: &Fixture) {
    let ipam = Ipam::new(f.store.clone());
    let pools = [pool("10.9.0.0/24", 26)];
    let first = ipam
        .ensure_tunnel_address("node-a", &pools)
        .unwrap()
        .expect("an address");
    assert_eq!(
        ipam.ensure_tunnel_address("node-a", &pools).unwrap(),
        Some(first)
    );
    assert_eq!(
        ipam.ips_by_handle("ipip-tunnel-addr-node-a").unwrap(),
        [first]
    );
    let attrs = ipam.get_assignment_attrs(first).unwrap().unwrap();
    assert_eq!(attrs.attrs["type"], "ipipTunnelAddress");
    assert_eq!(attrs.attrs["node"], "node-a");
    assert_eq!(ipam.usage(&pools).unwrap()[0].in_use, 1);
    // No IPIP pool any more: the address is given back.
    assert_eq!(ipam.ensure_tunnel_address("node-a", &[]).unwrap(), None);
    assert_eq!(ipam.usage(&pools).unwrap()[0].in_use, 0);
}

fn releasing_a_nodes_affinities(f: &Fixture) {
    let ipam = Ipam::new(f.store.clone());
    let pools = [pool("10.10.0.0/24", 26)];
    let mut args = one("node-a", "fill", &pools);
    args.num = 65; // one full block and one more
    let taken = ipam.auto_assign(&args).unwrap();
    ipam.release_ips(&taken[64..]).unwrap(); // second block now empty
    ipam.release_affinities("node-a").unwrap();
    assert!(f
        .store
        .list(&keys::ipam_affinity_prefix("node-a"))
        .unwrap()
        .0
        .is_empty());
    assert!(
        f.store
            .get(&keys::ipam_block("10.10.0.64/26"))
            .unwrap()
            .is_none(),
        "empty block deleted"
    );
    assert_eq!(
        json_at(&*f.store, &keys::ipam_block("10.10.0.0/26"))["affinity"],
        serde_json::Value::Null
    );
    // The addresses still in use stay allocated; once released the unowned block goes.
    assert_eq!(ipam.usage(&pools).unwrap()[0].in_use, 64);
    ipam.release_by_handle("fill").unwrap();
    assert!(f
        .store
        .get(&keys::ipam_block("10.10.0.0/26"))
        .unwrap()
        .is_none());
    assert!(ipam.check(&[]).unwrap().is_clean());
}

fn release_checked_frees_only_the_allocation_seen(f: &Fixture) {
    let ipam = Ipam::new(f.store.clone());
    let pools = [pool("10.9.0.0/24", 30)];
    let mut args = one("n1", "h1", &pools);
    args.num = 2;
    let ips = ipam.auto_assign(&args).unwrap();
    let block = ipam::block::AllocationBlock::decode(
        &f.store
            .get(&keys::ipam_block("10.9.0.0/30"))
            .unwrap()
            .unwrap()
            .value,
    )
    .unwrap();
    let seen: Vec<ipam::ReleaseOptions> = ips
        .iter()
        .map(|&address| {
            let ordinal = u32::from(address) - u32::from(ip("10.9.0.0"));
            ipam::ReleaseOptions {
                address,
                handle: Some("h1".into()),
                sequence_number: Some(block.sequence_number_for_allocation[&ordinal.to_string()]),
            }
        })
        .collect();
    // ips[1] is released and handed out again, to the same handle: only its sequence number
    // tells the new allocation from the one seen.
    ipam.release_ips(&[ips[1]]).unwrap();
    ipam.assign_ip(ips[1], "h1", &BTreeMap::new(), "n1", &pools)
        .unwrap();
    let out = ipam.release_checked(&seen).unwrap();
    assert_eq!(out.released, vec![ips[0]]);
    assert_eq!(out.changed, vec![ips[1]]);
    assert!(out.not_allocated.is_empty());
    assert_eq!(ipam.ips_by_handle("h1").unwrap(), vec![ips[1]]);
    assert!(ipam.check(&[]).unwrap().handle_mismatches.is_empty());
    // Released already: not allocated.
    let out = ipam.release_checked(&seen[..1]).unwrap();
    assert_eq!(out.not_allocated, vec![ips[0]]);
}

macro_rules! ipam_suite {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[test]
                fn $case() {
                    let fixture = super::$backend(stringify!($case));
                    super::$case(&fixture);
                }
            )*
        }
    };
}

ipam_suite!(embedded:
    allocation_order_and_block_claim,
    exhausting_a_block_claims_a_second,
    borrows_when_pools_are_full_unless_strict,
    partial_request_is_given_back,
    release_by_ip_and_by_handle_twice,
    specific_assign_of_taken_address_fails,
    check_finds_planted_problems,
    tunnel_address_is_idempotent,
    releasing_a_nodes_affinities,
    release_checked_frees_only_the_allocation_seen,
);

ipam_suite!(etcd:
    allocation_order_and_block_claim,
    exhausting_a_block_claims_a_second,
    borrows_when_pools_are_full_unless_strict,
    partial_request_is_given_back,
    release_by_ip_and_by_handle_twice,
    specific_assign_of_taken_address_fails,
    check_finds_planted_problems,
    tunnel_address_is_idempotent,
    releasing_a_nodes_affinities,
    release_checked_frees_only_the_allocation_seen,
);
