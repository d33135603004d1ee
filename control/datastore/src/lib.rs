//! The datastore every node watches: a revisioned key-value store with compare-and-swap and
//! watch, as etcd v3 provides it. Two backends implement [`Datastore`]: etcd v3 (`etcd`) and an
//! embedded store for a single host (`embedded`). Resources, IPAM blocks and handles are stored
//! under Calico's keys (see [`keys`]), as JSON, so that the layout matches calico's own.
//!
//! CONTRACT (the backends are implemented against it; IPAM, brindlectl, the CNI plugin and the
//! node agent use only this trait):
//! - Revisions are cluster-wide and increase with every write (etcd's `mod_revision`); a
//!   resource's `resourceVersion` is its key's `mod_revision` as a decimal string.
//! - `create` fails with `AlreadyExists` if the key exists; `update` and `delete` with
//!   `Some(rev)` fail with `Conflict` unless the key's current mod_revision is `rev` (and with
//!   `NotFound` if the key is absent); these are single transactions (etcd `Txn`).
//! - `list(prefix)` returns the keys under `prefix` (sorted by key) and the store revision the
//!   list was read at; `watch(prefix, rev)` then delivers every change with
//!   mod_revision >= `rev` in order (use `list_rev + 1`). If `rev` was compacted away the
//!   watch yields `WatchEvent::Compacted` and ends; after a lost connection it yields
//!   `WatchEvent::Disconnected` and ends. Either way the consumer does a full resync: list
//!   again, then watch from the new revision + 1. As in etcd, a `rev` of 0 means "from now".
//! - Dropping a [`Watch`] cancels it.
//! - All methods are blocking (backends may run an async runtime inside), and `Send + Sync`,
//!   so CLIs, the CNI plugin and threads can share one `Arc<dyn Datastore>`.

use std::time::Duration;

pub mod config;
pub mod embedded;
pub mod etcd;
pub mod keys;

pub use config::{ConfigError, DatastoreConfig, DatastoreType};
pub use embedded::{EmbeddedOptions, EmbeddedStore};
pub use etcd::{EtcdConfig, EtcdStore};

/// Opens the configured backend. The embedded store is shared with other processes on this
/// host (see [`embedded`]); an etcd client connects lazily, so this succeeds while etcd is
/// down and the first request reports `Unavailable`.
pub fn open(config: &DatastoreConfig) -> Result<std::sync::Arc<dyn Datastore>> {
    Ok(match config.datastore_type {
        DatastoreType::Embedded => std::sync::Arc::new(EmbeddedStore::open(&config.embedded_path)?),
        DatastoreType::Etcdv3 => std::sync::Arc::new(EtcdStore::connect(config.etcd.clone())?),
    })
}

/// One stored key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
}

/// A change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    Put(KeyValue),
    Delete {
        key: String,
        mod_revision: i64,
    },
    /// The requested start revision is no longer available: resync.
    Compacted {
        compact_revision: i64,
    },
    /// The connection to the store was lost: resync when it is back.
    Disconnected {
        reason: String,
    },
}

/// A running watch; dropping it cancels the watch.
pub struct Watch {
    events: std::sync::mpsc::Receiver<WatchEvent>,
    _cancel: Box<dyn Send>,
}

impl Watch {
    /// `cancel` is kept alive as long as the watch and dropped with it (backends put whatever
    /// stops their watcher there: a sender whose drop ends a task, a guard...).
    pub fn new(events: std::sync::mpsc::Receiver<WatchEvent>, cancel: Box<dyn Send>) -> Watch {
        Watch {
            events,
            _cancel: cancel,
        }
    }

    /// Next event, waiting up to `timeout`; `None` on timeout or when the watch has ended.
    pub fn next_timeout(&self, timeout: Duration) -> Option<WatchEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Next event without waiting.
    pub fn try_next(&self) -> Option<WatchEvent> {
        self.events.try_recv().ok()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DatastoreError {
    #[error("resource does not exist: {key}")]
    NotFound { key: String },
    #[error("resource already exists: {key}")]
    AlreadyExists { key: String },
    #[error("update conflict on {key}: expected revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: i64,
        actual: i64,
    },
    #[error("datastore unavailable: {0}")]
    Unavailable(String),
    #[error("datastore error: {0}")]
    Backend(String),
}

pub type Result<T> = std::result::Result<T, DatastoreError>;

/// A revisioned key-value store with compare-and-swap and watch (see the crate docs).
pub trait Datastore: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<KeyValue>>;
    /// Keys under `prefix`, sorted, and the store revision they were read at.
    fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, i64)>;
    /// Creates `key`; `AlreadyExists` if present. Returns the new mod_revision.
    fn create(&self, key: &str, value: &[u8]) -> Result<i64>;
    /// Replaces `key` if its mod_revision is `expected_revision`. Returns the new mod_revision.
    fn update(&self, key: &str, value: &[u8], expected_revision: i64) -> Result<i64>;
    /// Creates or replaces `key` unconditionally. Returns the new mod_revision.
    fn put(&self, key: &str, value: &[u8]) -> Result<i64>;
    /// Deletes `key` (only at `expected_revision` when given). `NotFound` if absent.
    fn delete(&self, key: &str, expected_revision: Option<i64>) -> Result<()>;
    /// Watches keys under `prefix` from `from_revision` (see the crate docs).
    fn watch(&self, prefix: &str, from_revision: i64) -> Result<Watch>;
}
