//! A 3-member etcd cluster on loopback loses one member: a client given all three endpoints
//! keeps reading, writing and doing CAS; a watch keeps delivering or reports `Disconnected`,
//! after which a resync (list, watch from list revision + 1) works.

mod common;

use std::time::{Duration, Instant};

use datastore::{Datastore, DatastoreError, EtcdConfig, EtcdStore, Watch, WatchEvent};

fn client_for(members: &[common::EtcdMember]) -> EtcdStore {
    let endpoints = members.iter().map(|m| m.client_url.clone()).collect();
    EtcdStore::connect(EtcdConfig {
        endpoints,
        timeout: Duration::from_secs(8),
        ..Default::default()
    })
    .unwrap()
}

fn leader_index(members: &[common::EtcdMember]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(i) = members
            .iter()
            .position(|m| m.metric("etcd_server_is_leader") == Some(1.0))
        {
            return i;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no member reports itself leader");
}

/// Reads, writes and CAS all work; returns the revision of the last write.
fn check_store_works(store: &EtcdStore, round: &str) -> i64 {
    let key = format!("/t/cluster/{round}");
    let created = store
        .create(&key, b"1")
        .unwrap_or_else(|e| panic!("{round}: create: {e}"));
    assert!(
        matches!(
            store.create(&key, b"again"),
            Err(DatastoreError::AlreadyExists { .. })
        ),
        "{round}"
    );
    let updated = store
        .update(&key, b"2", created)
        .unwrap_or_else(|e| panic!("{round}: update: {e}"));
    match store.update(&key, b"stale", created) {
        Err(DatastoreError::Conflict { actual, .. }) => assert_eq!(actual, updated, "{round}"),
        other => panic!("{round}: stale CAS must conflict, got {other:?}"),
    }
    assert_eq!(store.get(&key).unwrap().unwrap().value, b"2", "{round}");
    let (listed, rev) = store.list("/t/cluster/").unwrap();
    assert!(listed.iter().any(|kv| kv.key == key), "{round}");
    assert!(rev >= updated);
    store.put("/t/cluster/last", round.as_bytes()).unwrap()
}

/// The watch sees the put at `revision`, or says it lost the connection (then a resync must
/// see the next write).
fn check_watch_survives_or_resyncs(store: &EtcdStore, watch: Watch, revision: i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        match watch.next_timeout(Duration::from_millis(200)) {
            Some(WatchEvent::Put(kv)) if kv.mod_revision == revision => return,
            Some(WatchEvent::Put(_)) | Some(WatchEvent::Delete { .. }) => continue,
            Some(WatchEvent::Disconnected { reason }) => {
                eprintln!("watch reported Disconnected ({reason}); resyncing");
                let (_, list_rev) = store.list("/t/cluster/").unwrap();
                let resynced = store.watch("/t/cluster/", list_rev + 1).unwrap();
                let next = store.put("/t/cluster/after-resync", b"x").unwrap();
                let event = resynced.next_timeout(Duration::from_secs(10));
                assert!(
                    matches!(event, Some(WatchEvent::Put(ref kv)) if kv.mod_revision == next),
                    "resync: {event:?}"
                );
                return;
            }
            Some(WatchEvent::Compacted { .. }) => panic!("nothing was compacted"),
            None => continue,
        }
    }
    panic!("the watch neither delivered revision {revision} nor reported Disconnected");
}

#[test]
fn killing_the_leader_keeps_the_store_working() {
    let mut members = common::start_etcd_cluster("kill-leader", 3);
    let store = client_for(&members);
    check_store_works(&store, "before");
    let (_, rev) = store.list("/t/cluster/").unwrap();
    let watch = store.watch("/t/cluster/", rev + 1).unwrap();

    let leader = leader_index(&members);
    members[leader].kill();
    let mut last = 0;
    for round in 0..5 {
        last = check_store_works(&store, &format!("after-kill-{round}"));
    }
    assert!(
        store.get("/t/cluster/before").unwrap().is_some(),
        "data written before the kill survives"
    );
    check_watch_survives_or_resyncs(&store, watch, last);
}

#[test]
fn a_stopped_follower_does_not_stall_the_client() {
    let members = common::start_etcd_cluster("stop-follower", 3);
    let store = client_for(&members);
    check_store_works(&store, "before");
    let (_, rev) = store.list("/t/cluster/").unwrap();
    let watch = store.watch("/t/cluster/", rev + 1).unwrap();

    let follower = (leader_index(&members) + 1) % members.len();
    members[follower].signal(libc::SIGSTOP);
    let started = Instant::now();
    let mut last = 0;
    for round in 0..5 {
        last = check_store_works(&store, &format!("stopped-{round}"));
    }
    eprintln!(
        "5 rounds with a stopped member took {:?}",
        started.elapsed()
    );
    check_watch_survives_or_resyncs(&store, watch, last);
    members[follower].signal(libc::SIGCONT);
    members[follower].wait_healthy(Duration::from_secs(20));
    check_store_works(&store, "continued");
}
