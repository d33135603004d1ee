//! The embedded datastore: etcd's data model in one redb file, for a single host.
//!
//! Layout (three redb tables):
//! - `keys`: key -> [`StoredValue`] (create revision, mod revision, value);
//! - `changes`: revision -> [`Change`], the change log watches replay from; it keeps the last
//!   `change_log_len` revisions, older ones are trimmed and recorded as the compact revision;
//! - `meta`: the store revision and the compact revision.
//!
//! Every mutation is one redb write transaction that reads the key, checks the caller's
//! condition (absent / at revision N), bumps the revision, writes the key and appends to the
//! change log. redb allows one write transaction at a time, so CAS never loses an update.
//!
//! Sharing between processes: the file is opened in redb's `ConcurrencyMode::MultiWriter`, where
//! every process (CNI plugin invocations, brindlectl, the node agent) holds the database open at
//! once and redb serialises write transactions across processes with a byte-range lock. Opening
//! is serialised with a sidecar lock file (`<path>.lock`) so that two processes never initialise a
//! fresh file at the same time.
//!
//! Watches: each watch is a thread that reads the change log from its next revision. It wakes up
//! on every commit made through this process's store (in-process notification) and otherwise
//! polls every [`WATCH_POLL`], which is how commits of other processes reach it. Reading the log
//! (rather than forwarding in-memory events) keeps replay, live delivery and cross-process
//! delivery one code path with one order: the revision order.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use redb::{ConcurrencyMode, Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::{Datastore, DatastoreError, KeyValue, Result, Watch, WatchEvent};

mod file_lock;
mod private;
mod records;

use file_lock::OpenLock;

use records::{Change, StoredValue};

const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
const CHANGES: TableDefinition<i64, &[u8]> = TableDefinition::new("changes");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";
/// Revisions below this one are no longer in the change log.
const META_COMPACT_REVISION: &str = "compact_revision";

/// How many revisions the change log keeps by default.
pub const DEFAULT_CHANGE_LOG_LEN: u64 = 10_000;
/// How often a watch looks for commits made by other processes.
pub const WATCH_POLL: Duration = Duration::from_millis(100);
/// Change-log entries read per read transaction, so a watch far behind never holds a long
/// transaction or a large buffer.
const WATCH_BATCH: usize = 512;
/// Events buffered per watch; a slow consumer makes its watch thread wait, not grow memory.
const WATCH_CHANNEL: usize = 1024;
/// Page cache per process: the store is small and many short-lived processes open it.
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Options of [`EmbeddedStore::open_with`].
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Revisions kept for watches to replay; a watch from an older revision gets `Compacted`.
    pub change_log_len: u64,
    /// How long `open` waits for the file (held by another process: an incompatible opener,
    /// a stopped one, an outside `flock`) before giving up.
    pub open_timeout: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            change_log_len: DEFAULT_CHANGE_LOG_LEN,
            open_timeout: Duration::from_secs(10),
        }
    }
}

/// The embedded backend of [`Datastore`]. Cheap to share behind an `Arc`.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
}

struct Shared {
    db: Database,
    change_log_len: i64,
    /// Commits made through this process; watches wait on `committed` for it to change.
    local_commits: Mutex<u64>,
    committed: Condvar,
    /// Watch threads still running (tests check that dropping a watch ends it).
    active_watches: AtomicUsize,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store at `path`, shareable with other processes.
    pub fn open(path: impl AsRef<Path>) -> Result<EmbeddedStore> {
        Self::open_with(path, EmbeddedOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: EmbeddedOptions) -> Result<EmbeddedStore> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private::create_dir(dir)?;
        }
        let deadline = Instant::now() + options.open_timeout;
        let _opening = OpenLock::take(path, deadline)?;
        // redb initialises an empty file in place: made here, the file has its mode from the
        // start.
        drop(private::open_file(path)?);
        // redb would block on a file another process holds exclusively; wait boundedly here.
        file_lock::wait_until_shared(path, deadline)?;
        let mut backoff = Duration::from_millis(5);
        let db = loop {
            let mut builder = Database::builder();
            builder
                .set_cache_size(CACHE_BYTES)
                .set_concurrency_mode(ConcurrencyMode::MultiWriter);
            match builder.create(path) {
                Ok(db) => break db,
                // Held by a process that opened it exclusively (an older or foreign opener):
                // short-lived CLIs wait for it rather than fail at once.
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                }
                Err(e) => {
                    return Err(DatastoreError::Unavailable(format!(
                        "opening {}: {e}",
                        path.display()
                    )))
                }
            }
        };
        Self::init(db, options)
    }

    /// A private store in memory (tests, dry runs); not shared with other processes.
    pub fn open_in_memory() -> Result<EmbeddedStore> {
        Self::open_in_memory_with(EmbeddedOptions::default())
    }

    pub fn open_in_memory_with(options: EmbeddedOptions) -> Result<EmbeddedStore> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(backend_error)?;
        Self::init(db, options)
    }

    fn init(db: Database, options: EmbeddedOptions) -> Result<EmbeddedStore> {
        // Tables must exist before the first read transaction opens them.
        let txn = db.begin_write().map_err(backend_error)?;
        txn.open_table(KEYS).map_err(backend_error)?;
        txn.open_table(CHANGES).map_err(backend_error)?;
        txn.open_table(META).map_err(backend_error)?;
        txn.commit().map_err(backend_error)?;
        let change_log_len = i64::try_from(options.change_log_len.max(1)).unwrap_or(i64::MAX);
        Ok(EmbeddedStore {
            shared: Arc::new(Shared {
                db,
                change_log_len,
                local_commits: Mutex::new(0),
                committed: Condvar::new(),
                active_watches: AtomicUsize::new(0),
            }),
        })
    }

    /// The current store revision.
    pub fn revision(&self) -> Result<i64> {
        let txn = self.shared.db.begin_read().map_err(backend_error)?;
        let meta = txn.open_table(META).map_err(backend_error)?;
        meta_value(&meta, META_REVISION)
    }

    /// The oldest revision a watch can still start from.
    pub fn compact_revision(&self) -> Result<i64> {
        let txn = self.shared.db.begin_read().map_err(backend_error)?;
        let meta = txn.open_table(META).map_err(backend_error)?;
        meta_value(&meta, META_COMPACT_REVISION)
    }

    /// Watch threads of this store still running.
    pub fn active_watches(&self) -> usize {
        self.shared.active_watches.load(Ordering::SeqCst)
    }

    /// One mutation of `key` as a single write transaction: `decide` sees the current value and
    /// says what to do (or refuses with an error, which aborts the transaction).
    fn mutate<'v>(
        &self,
        key: &str,
        decide: impl FnOnce(Option<&StoredValue>) -> Result<Action<'v>>,
    ) -> Result<i64> {
        let txn = self.shared.db.begin_write().map_err(backend_error)?;
        let revision = {
            let mut keys = txn.open_table(KEYS).map_err(backend_error)?;
            let mut changes = txn.open_table(CHANGES).map_err(backend_error)?;
            let mut meta = txn.open_table(META).map_err(backend_error)?;
            let current = match keys.get(key).map_err(backend_error)? {
                Some(raw) => Some(StoredValue::decode(raw.value())?),
                None => None,
            };
            let action = decide(current.as_ref())?;
            let revision = meta_value(&meta, META_REVISION)? + 1;
            let change = match action {
                Action::Put(value) => {
                    let stored = StoredValue {
                        create_revision: current.as_ref().map_or(revision, |c| c.create_revision),
                        mod_revision: revision,
                        value: value.to_vec(),
                    };
                    keys.insert(key, stored.encode().as_slice())
                        .map_err(backend_error)?;
                    Change::Put {
                        key: key.to_string(),
                        create_revision: stored.create_revision,
                        value: stored.value,
                    }
                }
                Action::Delete => {
                    keys.remove(key).map_err(backend_error)?;
                    Change::Delete {
                        key: key.to_string(),
                    }
                }
            };
            changes
                .insert(revision, change.encode().as_slice())
                .map_err(backend_error)?;
            meta.insert(META_REVISION, revision)
                .map_err(backend_error)?;
            // Keep the last `change_log_len` revisions: (revision - len, revision].
            let keep_from = revision - self.shared.change_log_len + 1;
            if keep_from > meta_value(&meta, META_COMPACT_REVISION)? {
                changes
                    .retain_in(..keep_from, |_, _| false)
                    .map_err(backend_error)?;
                meta.insert(META_COMPACT_REVISION, keep_from)
                    .map_err(backend_error)?;
            }
            revision
        };
        txn.commit().map_err(backend_error)?;
        self.shared.notify_commit();
        Ok(revision)
    }
}

/// What a mutation does once its condition holds.
enum Action<'v> {
    Put(&'v [u8]),
    Delete,
}

impl Shared {
    fn notify_commit(&self) {
        let mut commits = self.local_commits.lock().unwrap_or_else(|p| p.into_inner());
        *commits = commits.wrapping_add(1);
        self.committed.notify_all();
    }

    fn local_commits(&self) -> u64 {
        *self.local_commits.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until a local commit after `seen`, the poll interval, or cancellation.
    fn wait_for_commit(&self, seen: u64, cancelled: &AtomicBool) {
        let commits = self.local_commits.lock().unwrap_or_else(|p| p.into_inner());
        if *commits != seen || cancelled.load(Ordering::SeqCst) {
            return;
        }
        let _ = self.committed.wait_timeout(commits, WATCH_POLL);
    }
}

impl Datastore for EmbeddedStore {
    fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let txn = self.shared.db.begin_read().map_err(backend_error)?;
        let keys = txn.open_table(KEYS).map_err(backend_error)?;
        match keys.get(key).map_err(backend_error)? {
            Some(raw) => Ok(Some(StoredValue::decode(raw.value())?.into_key_value(key))),
            None => Ok(None),
        }
    }

    fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, i64)> {
        let txn = self.shared.db.begin_read().map_err(backend_error)?;
        let keys = txn.open_table(KEYS).map_err(backend_error)?;
        let meta = txn.open_table(META).map_err(backend_error)?;
        let revision = meta_value(&meta, META_REVISION)?;
        let mut found = Vec::new();
        for entry in keys.range(prefix..).map_err(backend_error)? {
            let (key, raw) = entry.map_err(backend_error)?;
            let key = key.value();
            if !key.starts_with(prefix) {
                break;
            }
            found.push(StoredValue::decode(raw.value())?.into_key_value(key));
        }
        Ok((found, revision))
    }

    fn create(&self, key: &str, value: &[u8]) -> Result<i64> {
        self.mutate(key, |current| match current {
            Some(_) => Err(DatastoreError::AlreadyExists {
                key: key.to_string(),
            }),
            None => Ok(Action::Put(value)),
        })
    }

    fn update(&self, key: &str, value: &[u8], expected_revision: i64) -> Result<i64> {
        self.mutate(key, |current| {
            check_revision(key, current, expected_revision)?;
            Ok(Action::Put(value))
        })
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<i64> {
        self.mutate(key, |_| Ok(Action::Put(value)))
    }

    fn delete(&self, key: &str, expected_revision: Option<i64>) -> Result<()> {
        self.mutate(key, |current| {
            match expected_revision {
                Some(expected) => check_revision(key, current, expected)?,
                None if current.is_none() => {
                    return Err(DatastoreError::NotFound {
                        key: key.to_string(),
                    })
                }
                None => {}
            }
            Ok(Action::Delete)
        })
        .map(|_| ())
    }

    fn watch(&self, prefix: &str, from_revision: i64) -> Result<Watch> {
        // Like etcd, a start revision of 0 (or less) means "changes after now".
        let start = if from_revision > 0 {
            from_revision
        } else {
            self.revision()? + 1
        };
        let (events, receiver) = sync_channel(WATCH_CHANNEL);
        let cancelled = Arc::new(AtomicBool::new(false));
        let watcher = ChangeLogWatcher {
            shared: self.shared.clone(),
            prefix: prefix.to_string(),
            next_revision: start,
            events,
            cancelled: cancelled.clone(),
        };
        self.shared.active_watches.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("embedded-watch".into())
            .spawn(move || watcher.run());
        if let Err(e) = spawned {
            self.shared.active_watches.fetch_sub(1, Ordering::SeqCst);
            return Err(DatastoreError::Backend(format!(
                "spawning watch thread: {e}"
            )));
        }
        Ok(Watch::new(
            receiver,
            Box::new(CancelOnDrop {
                cancelled,
                shared: self.shared.clone(),
            }),
        ))
    }
}

fn check_revision(key: &str, current: Option<&StoredValue>, expected: i64) -> Result<()> {
    match current {
        None => Err(DatastoreError::NotFound {
            key: key.to_string(),
        }),
        Some(c) if c.mod_revision != expected => Err(DatastoreError::Conflict {
            key: key.to_string(),
            expected,
            actual: c.mod_revision,
        }),
        Some(_) => Ok(()),
    }
}

/// The thread behind one [`Watch`].
struct ChangeLogWatcher {
    shared: Arc<Shared>,
    prefix: String,
    next_revision: i64,
    events: SyncSender<WatchEvent>,
    cancelled: Arc<AtomicBool>,
}

/// What one read of the change log found.
enum LogRead {
    Events {
        events: Vec<WatchEvent>,
        next_revision: i64,
        more: bool,
    },
    Compacted {
        compact_revision: i64,
    },
}

impl ChangeLogWatcher {
    fn run(mut self) {
        self.deliver();
        self.shared.active_watches.fetch_sub(1, Ordering::SeqCst);
    }

    /// Returns when the watch is cancelled, its receiver dropped, or it ended with an event.
    fn deliver(&mut self) {
        while !self.cancelled.load(Ordering::SeqCst) {
            // Read the counter before the log: a commit after this read wakes the wait below.
            let seen = self.shared.local_commits();
            match self.read_log() {
                Ok(LogRead::Events {
                    events,
                    next_revision,
                    more,
                }) => {
                    for event in events {
                        if self.events.send(event).is_err() {
                            return;
                        }
                    }
                    self.next_revision = next_revision;
                    if more {
                        continue;
                    }
                }
                Ok(LogRead::Compacted { compact_revision }) => {
                    let _ = self.events.send(WatchEvent::Compacted { compact_revision });
                    return;
                }
                Err(e) => {
                    let _ = self.events.send(WatchEvent::Disconnected {
                        reason: e.to_string(),
                    });
                    return;
                }
            }
            self.shared.wait_for_commit(seen, &self.cancelled);
        }
    }

    fn read_log(&self) -> Result<LogRead> {
        let txn = self.shared.db.begin_read().map_err(backend_error)?;
        let meta = txn.open_table(META).map_err(backend_error)?;
        let compact_revision = meta_value(&meta, META_COMPACT_REVISION)?;
        if self.next_revision < compact_revision {
            return Ok(LogRead::Compacted { compact_revision });
        }
        let changes = txn.open_table(CHANGES).map_err(backend_error)?;
        let mut events = Vec::new();
        let mut next_revision = self.next_revision;
        for (read, entry) in changes
            .range(self.next_revision..)
            .map_err(backend_error)?
            .enumerate()
        {
            if read == WATCH_BATCH {
                return Ok(LogRead::Events {
                    events,
                    next_revision,
                    more: true,
                });
            }
            let (revision, raw) = entry.map_err(backend_error)?;
            let revision = revision.value();
            next_revision = revision + 1;
            let change = Change::decode(raw.value())?;
            if change.key().starts_with(&self.prefix) {
                events.push(change.into_event(revision));
            }
        }
        Ok(LogRead::Events {
            events,
            next_revision,
            more: false,
        })
    }
}

/// Held by the [`Watch`]; dropping it stops the watch thread promptly.
struct CancelOnDrop {
    cancelled: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::SeqCst);
        // Take the lock so the flag cannot slip in between a watcher's check and its wait.
        let _commits = self
            .shared
            .local_commits
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.shared.committed.notify_all();
    }
}

fn meta_value(meta: &impl ReadableTable<&'static str, i64>, name: &str) -> Result<i64> {
    Ok(meta
        .get(name)
        .map_err(backend_error)?
        .map_or(0, |v| v.value()))
}

fn backend_error(e: impl Into<redb::Error>) -> DatastoreError {
    DatastoreError::Backend(e.into().to_string())
}
