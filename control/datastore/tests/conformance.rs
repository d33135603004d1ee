//! One behaviour suite for every [`Datastore`] backend: each case is a function over a
//! [`Fixture`], and `conformance_suite!` instantiates all cases for one backend. The etcd
//! instantiation runs against a real `etcd` the test starts on 127.0.0.1 (one per test, so
//! compaction in one case cannot disturb another).

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use datastore::{
    Datastore, DatastoreError, EmbeddedOptions, EmbeddedStore, EtcdConfig, EtcdStore, WatchEvent,
};

/// What a case needs from a backend beyond the trait.
trait Fixture {
    fn store(&self) -> Arc<dyn Datastore>;
    /// Makes every revision up to now unavailable to new watches.
    fn force_compaction(&self);
    /// Watches of this store whose machinery is still running.
    fn active_watches(&self) -> usize;
}

const WAIT: Duration = Duration::from_secs(10);

// ---- cases ----------------------------------------------------------------------------------

fn create_get_list_update_delete(f: &dyn Fixture) {
    let ds = f.store();
    assert_eq!(ds.get("/t/crud/a").unwrap(), None);
    let rev_a = ds.create("/t/crud/a", b"one").unwrap();
    let kv = ds
        .get("/t/crud/a")
        .unwrap()
        .expect("created key is readable");
    assert_eq!(
        (kv.key.as_str(), kv.value.as_slice()),
        ("/t/crud/a", &b"one"[..])
    );
    assert_eq!((kv.create_revision, kv.mod_revision), (rev_a, rev_a));

    let rev_b = ds.create("/t/crud/b", b"two").unwrap();
    ds.create("/t/crudx", b"outside the prefix").unwrap();
    let (listed, list_rev) = ds.list("/t/crud/").unwrap();
    let keys: Vec<_> = listed.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        keys,
        ["/t/crud/a", "/t/crud/b"],
        "list is sorted and honours the prefix"
    );
    assert!(
        list_rev > rev_b,
        "list revision covers the last write (the /t/crudx create)"
    );

    let rev_a2 = ds.update("/t/crud/a", b"uno", rev_a).unwrap();
    let kv = ds.get("/t/crud/a").unwrap().unwrap();
    assert_eq!(kv.value, b"uno");
    assert_eq!(
        (kv.create_revision, kv.mod_revision),
        (rev_a, rev_a2),
        "update keeps create_revision"
    );

    let rev_put = ds.put("/t/crud/a", b"eins").unwrap();
    assert!(rev_put > rev_a2);
    let rev_new = ds.put("/t/crud/c", b"put creates").unwrap();
    assert_eq!(
        ds.get("/t/crud/c").unwrap().unwrap().create_revision,
        rev_new
    );

    ds.delete("/t/crud/a", Some(rev_put)).unwrap();
    ds.delete("/t/crud/b", None).unwrap();
    assert_eq!(ds.get("/t/crud/a").unwrap(), None);
    let (listed, _) = ds.list("/t/crud/").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, "/t/crud/c");

    // A key created again after a delete starts a new life: new create_revision.
    let rev_again = ds.create("/t/crud/a", b"again").unwrap();
    assert_eq!(
        ds.get("/t/crud/a").unwrap().unwrap().create_revision,
        rev_again
    );
}

fn errors_name_the_failed_condition(f: &dyn Fixture) {
    let ds = f.store();
    let rev = ds.create("/t/err/k", b"v").unwrap();
    assert!(
        matches!(ds.create("/t/err/k", b"w"), Err(DatastoreError::AlreadyExists { key }) if key == "/t/err/k")
    );
    assert!(
        matches!(ds.update("/t/err/missing", b"w", 1), Err(DatastoreError::NotFound { key }) if key == "/t/err/missing")
    );
    assert!(matches!(
        ds.delete("/t/err/missing", None),
        Err(DatastoreError::NotFound { .. })
    ));
    assert!(matches!(
        ds.delete("/t/err/missing", Some(rev)),
        Err(DatastoreError::NotFound { .. })
    ));
    // The failed writes changed nothing.
    assert_eq!(ds.get("/t/err/k").unwrap().unwrap().value, b"v");
    assert_eq!(ds.get("/t/err/k").unwrap().unwrap().mod_revision, rev);
}

fn cas_conflicts_report_the_actual_revision(f: &dyn Fixture) {
    let ds = f.store();
    let first = ds.create("/t/cas/k", b"1").unwrap();
    let second = ds.update("/t/cas/k", b"2", first).unwrap();
    match ds.update("/t/cas/k", b"stale", first) {
        Err(DatastoreError::Conflict {
            key,
            expected,
            actual,
        }) => {
            assert_eq!(
                (key.as_str(), expected, actual),
                ("/t/cas/k", first, second)
            );
        }
        other => panic!("stale update must conflict, got {other:?}"),
    }
    match ds.delete("/t/cas/k", Some(first)) {
        Err(DatastoreError::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (first, second)),
        other => panic!("stale delete must conflict, got {other:?}"),
    }
    let kv = ds.get("/t/cas/k").unwrap().unwrap();
    assert_eq!(
        (kv.value.as_slice(), kv.mod_revision),
        (&b"2"[..], second),
        "conflicts change nothing"
    );
}

fn revisions_increase_with_every_write(f: &dyn Fixture) {
    let ds = f.store();
    let (_, start) = ds.list("/t/rev/").unwrap();
    let mut last = start;
    for i in 0..10 {
        let rev = ds.put(&format!("/t/rev/{}", i % 3), b"x").unwrap();
        assert!(rev > last, "write {i}: revision {rev} after {last}");
        last = rev;
    }
    ds.delete("/t/rev/0", None).unwrap();
    let (_, after_delete) = ds.list("/t/rev/").unwrap();
    assert!(after_delete > last, "a delete is a write too");
}

/// The writes `list_then_watch` makes after its list, and what a watch must see for them.
fn write_watched_changes(ds: &dyn Datastore) -> Vec<WatchEvent> {
    let rev_a = ds.create("/t/watch/a", b"a1").unwrap();
    ds.put("/t/watchers/x", b"same leading bytes, other prefix")
        .unwrap();
    let rev_b = ds.put("/t/watch/b", b"b1").unwrap();
    let rev_a2 = ds.update("/t/watch/a", b"a2", rev_a).unwrap();
    ds.create("/t/other/y", b"outside").unwrap();
    ds.delete("/t/watch/b", None).unwrap();
    let (_, rev_del) = ds.list("/t/watch/").unwrap();
    let kv = |key: &str, value: &[u8], create, modified| {
        WatchEvent::Put(datastore::KeyValue {
            key: key.into(),
            value: value.to_vec(),
            create_revision: create,
            mod_revision: modified,
        })
    };
    vec![
        kv("/t/watch/a", b"a1", rev_a, rev_a),
        kv("/t/watch/b", b"b1", rev_b, rev_b),
        kv("/t/watch/a", b"a2", rev_a, rev_a2),
        WatchEvent::Delete {
            key: "/t/watch/b".into(),
            mod_revision: rev_del,
        },
    ]
}

fn collect(watch: &datastore::Watch, count: usize) -> Vec<WatchEvent> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while seen.len() < count && Instant::now() < deadline {
        if let Some(event) = watch.next_timeout(Duration::from_millis(100)) {
            seen.push(event);
        }
    }
    seen
}

fn list_then_watch_sees_exactly_the_later_changes_in_order(f: &dyn Fixture) {
    let ds = f.store();
    ds.create("/t/watch/before", b"listed, not watched")
        .unwrap();
    let (listed, list_rev) = ds.list("/t/watch/").unwrap();
    assert_eq!(listed.len(), 1);

    let live = ds.watch("/t/watch/", list_rev + 1).unwrap();
    let expected = write_watched_changes(ds.as_ref());
    assert_eq!(collect(&live, expected.len()), expected, "live watch");
    // Replay: a watch started after the writes, from the same revision, sees the same.
    let replay = ds.watch("/t/watch/", list_rev + 1).unwrap();
    assert_eq!(collect(&replay, expected.len()), expected, "replayed watch");
    // Nothing else arrives: the other prefixes were filtered out.
    assert_eq!(live.next_timeout(Duration::from_millis(400)), None);
    assert_eq!(replay.next_timeout(Duration::from_millis(100)), None);
}

fn watch_from_a_later_revision_skips_earlier_changes(f: &dyn Fixture) {
    let ds = f.store();
    ds.put("/t/skip/k", b"1").unwrap();
    let second = ds.put("/t/skip/k", b"2").unwrap();
    let watch = ds.watch("/t/skip/", second).unwrap();
    match collect(&watch, 1).as_slice() {
        [WatchEvent::Put(kv)] => {
            assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"2"[..], second))
        }
        other => panic!("expected exactly the second put, got {other:?}"),
    }
}

fn dropping_a_watch_cancels_it(f: &dyn Fixture) {
    let ds = f.store();
    let baseline = f.active_watches();
    let watch = ds.watch("/t/cancel/", 0).unwrap();
    ds.put("/t/cancel/k", b"v").unwrap();
    assert_eq!(
        collect(&watch, 1).len(),
        1,
        "the watch runs before it is dropped"
    );
    assert_eq!(f.active_watches(), baseline + 1);
    drop(watch);
    let deadline = Instant::now() + WAIT;
    while f.active_watches() > baseline && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(f.active_watches(), baseline, "the dropped watch stopped");
    // The store is unaffected by the cancelled watch.
    ds.put("/t/cancel/k", b"after").unwrap();
}

fn watch_from_a_compacted_revision_reports_compacted(f: &dyn Fixture) {
    let ds = f.store();
    let old = ds.put("/t/compact/k", b"old").unwrap();
    ds.put("/t/compact/k", b"newer").unwrap();
    f.force_compaction();
    let watch = ds.watch("/t/compact/", old).unwrap();
    match watch.next_timeout(WAIT) {
        Some(WatchEvent::Compacted { compact_revision }) => assert!(compact_revision > old),
        other => panic!("expected Compacted, got {other:?}"),
    }
    // The watch has ended: a resync (list, watch from list revision + 1) works.
    let (listed, rev) = ds.list("/t/compact/").unwrap();
    assert_eq!(listed[0].value, b"newer");
    let resynced = ds.watch("/t/compact/", rev + 1).unwrap();
    let next = ds.put("/t/compact/k", b"after resync").unwrap();
    match collect(&resynced, 1).as_slice() {
        [WatchEvent::Put(kv)] => assert_eq!(kv.mod_revision, next),
        other => panic!("resynced watch must deliver the next put, got {other:?}"),
    }
}

/// Reads the counter at `key` and writes it back plus one, retrying on conflict.
fn increment(ds: &dyn Datastore, key: &str) -> usize {
    let mut conflicts = 0;
    for _ in 0..10_000 {
        let kv = ds.get(key).unwrap().expect("counter exists");
        let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
        match ds.update(key, (n + 1).to_string().as_bytes(), kv.mod_revision) {
            Ok(_) => return conflicts,
            Err(DatastoreError::Conflict { .. }) => conflicts += 1,
            Err(e) => panic!("increment failed: {e}"),
        }
    }
    panic!("increment of {key} starved after 10000 conflicts");
}

fn parallel_cas_increments_lose_no_update(f: &dyn Fixture) {
    let ds = f.store();
    ds.create("/t/counter", b"0").unwrap();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let ds = ds.clone();
            thread::spawn(move || {
                (0..100)
                    .map(|_| increment(ds.as_ref(), "/t/counter"))
                    .sum::<usize>()
            })
        })
        .collect();
    let conflicts: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let value = ds.get("/t/counter").unwrap().unwrap().value;
    assert_eq!(
        String::from_utf8(value).unwrap(),
        "800",
        "({conflicts} conflicts were retried)"
    );
}

/// A listing larger than one etcd page (and, at 6 MiB, than a gRPC message) is complete, in
/// key order, and one snapshot: a write made after it does not show up in it.
fn large_lists_are_complete_and_consistent(f: &dyn Fixture) {
    let ds = f.store();
    let value = vec![b'x'; 2500];
    for i in 0..2500 {
        ds.put(&format!("/big/{i:05}"), &value).unwrap();
    }
    ds.put("/bigger", b"outside the prefix").unwrap();
    let (kvs, revision) = ds.list("/big/").unwrap();
    assert_eq!(kvs.len(), 2500);
    assert!(kvs.windows(2).all(|w| w[0].key < w[1].key), "sorted by key");
    assert!(kvs.iter().all(|kv| kv.mod_revision <= revision));
    let later = ds.put("/big/99999", b"later").unwrap();
    assert!(later > revision);
    let (kvs, _) = ds.list("/big/").unwrap();
    assert_eq!(kvs.len(), 2501);
}

macro_rules! conformance_suite {
    ($backend:ident, $fixture:expr) => {
        mod $backend {
            use super::*;

            fn fixture() -> Box<dyn Fixture> {
                Box::new($fixture)
            }

            #[test]
            fn create_get_list_update_delete() {
                super::create_get_list_update_delete(fixture().as_ref());
            }
            #[test]
            fn errors_name_the_failed_condition() {
                super::errors_name_the_failed_condition(fixture().as_ref());
            }
            #[test]
            fn cas_conflicts_report_the_actual_revision() {
                super::cas_conflicts_report_the_actual_revision(fixture().as_ref());
            }
            #[test]
            fn revisions_increase_with_every_write() {
                super::revisions_increase_with_every_write(fixture().as_ref());
            }
            #[test]
            fn list_then_watch_sees_exactly_the_later_changes_in_order() {
                super::list_then_watch_sees_exactly_the_later_changes_in_order(fixture().as_ref());
            }
            #[test]
            fn watch_from_a_later_revision_skips_earlier_changes() {
                super::watch_from_a_later_revision_skips_earlier_changes(fixture().as_ref());
            }
            #[test]
            fn dropping_a_watch_cancels_it() {
                super::dropping_a_watch_cancels_it(fixture().as_ref());
            }
            #[test]
            fn watch_from_a_compacted_revision_reports_compacted() {
                super::watch_from_a_compacted_revision_reports_compacted(fixture().as_ref());
            }
            #[test]
            fn large_lists_are_complete_and_consistent() {
                super::large_lists_are_complete_and_consistent(fixture().as_ref());
            }
            #[test]
            fn parallel_cas_increments_lose_no_update() {
                super::parallel_cas_increments_lose_no_update(fixture().as_ref());
            }
        }
    };
}

// ---- embedded backend -------------------------------------------------------------------------

/// The change log is kept short so that compaction is reached with a few writes.
const TEST_CHANGE_LOG_LEN: u64 = 64;

struct EmbeddedFixture {
    store: Arc<EmbeddedStore>,
    _dir: common::TempDir,
}

impl EmbeddedFixture {
    fn new() -> EmbeddedFixture {
        let dir = common::TempDir::new("embedded");
        let options = EmbeddedOptions {
            change_log_len: TEST_CHANGE_LOG_LEN,
            ..Default::default()
        };
        let store = EmbeddedStore::open_with(dir.path().join("store.redb"), options).unwrap();
        EmbeddedFixture {
            store: Arc::new(store),
            _dir: dir,
        }
    }
}

impl Fixture for EmbeddedFixture {
    fn store(&self) -> Arc<dyn Datastore> {
        self.store.clone()
    }
    fn force_compaction(&self) {
        // Push every earlier revision out of the bounded change log.
        for _ in 0..=TEST_CHANGE_LOG_LEN {
            self.store.put("/scratch/compaction", b"x").unwrap();
        }
    }
    fn active_watches(&self) -> usize {
        self.store.active_watches()
    }
}

conformance_suite!(embedded, EmbeddedFixture::new());

#[test]
fn embedded_store_persists_revisions_across_reopen() {
    let dir = common::TempDir::new("reopen");
    let path = dir.path().join("store.redb");
    let rev = {
        let store = EmbeddedStore::open(&path).unwrap();
        store.create("/t/persist", b"v").unwrap();
        store.put("/t/persist", b"w").unwrap()
    };
    let store = EmbeddedStore::open(&path).unwrap();
    let kv = store.get("/t/persist").unwrap().unwrap();
    assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"w"[..], rev));
    assert!(
        store.put("/t/other", b"x").unwrap() > rev,
        "the revision counter survives a reopen"
    );
    // The change log survives too: a watch replays the writes from before the reopen.
    let watch = store.watch("/t/persist", rev).unwrap();
    assert!(
        matches!(watch.next_timeout(WAIT), Some(WatchEvent::Put(kv)) if kv.mod_revision == rev)
    );
}

#[test]
fn embedded_watch_far_behind_replays_in_batches_in_order() {
    // More changes than one change-log read returns (512), fewer than the log keeps.
    let store = EmbeddedStore::open_in_memory().unwrap();
    let first = store.put("/t/batch/k", b"0").unwrap();
    for i in 1..1200 {
        store.put("/t/batch/k", i.to_string().as_bytes()).unwrap();
    }
    let watch = store.watch("/t/batch/", first).unwrap();
    let events = collect(&watch, 1200);
    let revisions: Vec<i64> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Put(kv) => kv.mod_revision,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(revisions, (first..first + 1200).collect::<Vec<_>>());
}

#[test]
fn embedded_in_memory_store_works() {
    let store = EmbeddedStore::open_in_memory().unwrap();
    let rev = store.create("/t/mem", b"v").unwrap();
    assert_eq!(store.get("/t/mem").unwrap().unwrap().mod_revision, rev);
    assert!(matches!(
        store.create("/t/mem", b"v"),
        Err(DatastoreError::AlreadyExists { .. })
    ));
}

// ---- etcd backend ---------------------------------------------------------------------------

struct EtcdFixture {
    store: Arc<EtcdStore>,
    server: common::EtcdMember,
}

impl EtcdFixture {
    fn new() -> EtcdFixture {
        let server = common::start_etcd("conformance");
        let config = EtcdConfig {
            endpoints: vec![server.client_url.clone()],
            ..Default::default()
        };
        EtcdFixture {
            store: Arc::new(EtcdStore::connect(config).unwrap()),
            server,
        }
    }
}

impl Fixture for EtcdFixture {
    fn store(&self) -> Arc<dyn Datastore> {
        self.store.clone()
    }
    fn force_compaction(&self) {
        let (_, revision) = self.store.list("/").unwrap();
        self.store.compact(revision).unwrap();
    }
    fn active_watches(&self) -> usize {
        // Counted by the server too: a dropped watch must end there, not only in the client.
        let watchers = self
            .server
            .metric("etcd_debugging_mvcc_watcher_total")
            .expect("etcd exports its watcher gauge");
        (watchers as usize).max(self.store.active_watches())
    }
}

conformance_suite!(etcd, EtcdFixture::new());

#[test]
fn etcd_unreachable_is_unavailable_within_the_timeout() {
    let config = EtcdConfig {
        endpoints: vec![format!("http://127.0.0.1:{}", common::free_port())],
        timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let store = EtcdStore::connect(config).unwrap();
    let started = Instant::now();
    assert!(matches!(
        store.get("/t/k"),
        Err(DatastoreError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn open_picks_the_configured_backend() {
    let dir = common::TempDir::new("open");
    let config = datastore::DatastoreConfig {
        datastore_type: datastore::DatastoreType::Embedded,
        embedded_path: dir.path().join("nested/store.redb"),
        ..Default::default()
    };
    let store = datastore::open(&config).unwrap();
    store.create("/t/open", b"v").unwrap();
    assert!(
        config.embedded_path.exists(),
        "the embedded store lives at the configured path"
    );

    let server = common::start_etcd("open");
    let config = datastore::DatastoreConfig {
        datastore_type: datastore::DatastoreType::Etcdv3,
        etcd: EtcdConfig {
            endpoints: vec![server.client_url.clone()],
            ..Default::default()
        },
        ..Default::default()
    };
    let store = datastore::open(&config).unwrap();
    store.create("/t/open", b"etcd").unwrap();
    let direct = EtcdStore::connect(config.etcd.clone()).unwrap();
    assert_eq!(direct.get("/t/open").unwrap().unwrap().value, b"etcd");
}

const CHILD_PATH_ENV: &str = "BRINDLE_DATASTORE_TEST_PATH";
const CHILD_INCREMENTS: usize = 150;

/// Run by `embedded_two_processes_increment_without_losing_updates` in child processes.
#[test]
#[ignore = "helper process of embedded_two_processes_increment_without_losing_updates"]
fn embedded_child_process_increments() {
    let path = std::env::var(CHILD_PATH_ENV).expect("run by the two-process test");
    let store: Arc<dyn Datastore> = Arc::new(EmbeddedStore::open(path).unwrap());
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            thread::spawn(move || {
                for _ in 0..CHILD_INCREMENTS / 2 {
                    increment(store.as_ref(), "/t/counter");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn embedded_two_processes_increment_without_losing_updates() {
    let dir = common::TempDir::new("two-procs");
    let path = dir.path().join("store.redb");
    let store = EmbeddedStore::open(&path).unwrap();
    store.create("/t/counter", b"0").unwrap();
    // A watch in this process sees the other processes' commits (by polling the change log).
    let watch = store.watch("/t/counter", 0).unwrap();

    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "embedded_child_process_increments",
                    "--nocapture",
                ])
                .env(CHILD_PATH_ENV, &path)
                .spawn()
                .unwrap()
        })
        .collect();
    // And this process increments too, while the children do.
    for _ in 0..CHILD_INCREMENTS / 3 {
        increment(&store, "/t/counter");
    }
    for mut child in children {
        assert!(child.wait().unwrap().success(), "child process failed");
    }
    let total = 2 * CHILD_INCREMENTS + CHILD_INCREMENTS / 3;
    let kv = store.get("/t/counter").unwrap().unwrap();
    assert_eq!(String::from_utf8(kv.value).unwrap(), total.to_string());
    let events = collect(&watch, total);
    assert_eq!(
        events.len(),
        total,
        "the watch saw every increment, including other processes'"
    );
    let last = events.last().unwrap();
    assert!(matches!(last, WatchEvent::Put(last) if last.mod_revision == kv.mod_revision));
}
