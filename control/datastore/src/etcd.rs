//! The etcd v3 backend: [`Datastore`] over the `etcd-client` crate, with a private tokio
//! runtime so that the API stays blocking.
//!
//! Conditional writes are etcd transactions (etcd API `Txn`, as libcalico-go does them):
//! - create: `if create_revision(key) == 0 then put`;
//! - update: `if create_revision(key) > 0 && mod_revision(key) == expected then put else get`,
//!   the `get` telling `NotFound` from `Conflict` and giving the actual revision;
//! - delete: likewise with a delete.
//!
//! Several endpoints: etcd-client balances requests over all of them; a request that fails
//! with a transport error (the member died, lost its leader, the connection broke) is retried
//! until the configured timeout, and the balancer sends the retry to a member that answers.
//! Caveat shared with every etcd client: a write whose reply was lost may have been applied;
//! its retry then reports `AlreadyExists`/`Conflict`, which callers handle as for any race.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, CompactionOptions, Compare, CompareOp, ConnectOptions, EventType,
    GetOptions, Identity, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::time::Instant;

use crate::{Datastore, DatastoreError, KeyValue, Result, Watch, WatchEvent};

/// Where the etcd cluster is and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `http://host:port` or `https://host:port` (TLS) of the members.
    pub endpoints: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Upper bound of one blocking call, retries included.
    pub timeout: Duration,
}

pub const DEFAULT_ETCD_ENDPOINT: &str = "http://127.0.0.1:2379";

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            endpoints: vec![DEFAULT_ETCD_ENDPOINT.to_string()],
            ca_file: None,
            cert_file: None,
            key_file: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Events buffered per watch before the pump waits for the consumer.
const WATCH_CHANNEL: usize = 1024;
/// Time limit of the first attempt of a request; later attempts get twice the previous one.
const FIRST_ATTEMPT_LIMIT: Duration = Duration::from_secs(1);
/// Pause between retries of a failed request.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// The etcd v3 backend of [`Datastore`].
pub struct EtcdStore {
    /// `Option` only so that `Drop` can shut it down without blocking (safe in async contexts).
    runtime: Option<tokio::runtime::Runtime>,
    client: Client,
    timeout: Duration,
    active_watches: Arc<AtomicUsize>,
    /// Said after "unavailable" errors when the store talks TLS without a certificate of its
    /// own: a server with `--client-cert-auth` refuses it, and the TLS alert alone does not
    /// tell the user which setting is missing.
    tls_hint: Option<&'static str>,
}

const NO_CLIENT_CERTIFICATE: &str = "the client has no certificate (ETCD_CERT_FILE and \
    ETCD_KEY_FILE, or etcdCertFile and etcdKeyFile, or the netconf's etcd_cert_file and \
    etcd_key_file), and an etcd with --client-cert-auth refuses such clients";

impl EtcdStore {
    /// Connects to the cluster. Connections are made lazily, so this succeeds while members are
    /// down; the first request reports `Unavailable` if none answers within the timeout.
    pub fn connect(config: EtcdConfig) -> Result<EtcdStore> {
        if config.endpoints.is_empty() {
            return Err(DatastoreError::Backend(
                "no etcd endpoints configured".into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("brindle-etcd")
            .enable_all()
            .build()
            .map_err(|e| {
                DatastoreError::Backend(format!("starting the etcd client runtime: {e}"))
            })?;
        let options = connect_options(&config)?;
        let endpoints = config.endpoints.clone();
        let client = runtime
            .block_on(async move { Client::connect(endpoints, Some(options)).await })
            .map_err(|e| {
                DatastoreError::Unavailable(format!("etcd {:?}: {e}", config.endpoints))
            })?;
        let tls_without_certificate = config.cert_file.is_none()
            && config.endpoints.iter().any(|e| e.starts_with("https://"));
        Ok(EtcdStore {
            runtime: Some(runtime),
            client,
            timeout: config.timeout,
            active_watches: Arc::default(),
            tls_hint: tls_without_certificate.then_some(NO_CLIENT_CERTIFICATE),
        })
    }

    /// Compacts the key history up to `revision` (etcd `Compact`, physical): watches from an
    /// older revision then get `Compacted`.
    pub fn compact(&self, revision: i64) -> Result<()> {
        self.call(move |mut client| async move {
            client
                .compact(revision, Some(CompactionOptions::new().with_physical()))
                .await
        })
        .map(|_| ())
    }

    /// Watch pumps of this store still running.
    pub fn active_watches(&self) -> usize {
        self.active_watches.load(Ordering::SeqCst)
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the store")
    }

    /// Runs `request` on the runtime, retrying transport failures until the timeout, and waits
    /// for it on the calling thread (a channel rather than `block_on`, so that a caller that
    /// happens to be inside another tokio runtime does not panic).
    fn call<T, F, Fut>(&self, request: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(Client) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>> + Send,
    {
        let client = self.client.clone();
        let timeout = self.timeout;
        let (reply, result) = sync_channel(1);
        self.runtime().spawn(async move {
            let _ = reply.send(with_retries(client, timeout, request).await);
        });
        let outcome = result
            .recv()
            .map_err(|_| DatastoreError::Unavailable("etcd client runtime stopped".into()))?;
        match (outcome, self.tls_hint) {
            (Err(DatastoreError::Unavailable(why)), Some(hint)) => {
                Err(DatastoreError::Unavailable(format!("{why}; {hint}")))
            }
            (outcome, _) => outcome,
        }
    }

    /// Runs a conditional write: `succeeded` gives the new revision; otherwise the `get` in the
    /// else branch tells a missing key from a revision mismatch.
    fn conditional(&self, key: &str, expected: i64, txn: Txn) -> Result<i64> {
        let response = self.call(move |mut client| {
            let txn = txn.clone();
            async move { client.txn(txn).await }
        })?;
        if response.succeeded() {
            return Ok(header_revision(response.header()));
        }
        let actual = response.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Get(get) => Some(get.kvs().first().map(|kv| kv.mod_revision())),
            _ => None,
        });
        match actual.flatten() {
            Some(actual) => Err(DatastoreError::Conflict {
                key: key.to_string(),
                expected,
                actual,
            }),
            None => Err(DatastoreError::NotFound {
                key: key.to_string(),
            }),
        }
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn connect_options(config: &EtcdConfig) -> Result<ConnectOptions> {
    // Keep-alive notices a member that stopped answering (SIGSTOP, partition) on an open
    // connection; require_leader makes a member cut off from the quorum refuse at once.
    let mut options = ConnectOptions::new()
        .with_connect_timeout(config.timeout)
        .with_keep_alive(Duration::from_secs(1), Duration::from_secs(2))
        .with_keep_alive_while_idle(true)
        .with_require_leader(true);
    if config.ca_file.is_some() || config.cert_file.is_some() || config.key_file.is_some() {
        let read = |path: &PathBuf| {
            std::fs::read(path)
                .map_err(|e| DatastoreError::Backend(format!("reading {}: {e}", path.display())))
        };
        let mut tls = TlsOptions::new();
        if let Some(ca) = &config.ca_file {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        match (&config.cert_file, &config.key_file) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?))
            }
            (None, None) => {}
            _ => {
                return Err(DatastoreError::Backend(
                    "etcd client TLS needs both a certificate file and a key file".into(),
                ))
            }
        }
        options = options.with_tls(tls);
    }
    Ok(options)
}

async fn with_retries<T, F, Fut>(client: Client, timeout: Duration, request: F) -> Result<T>
where
    F: Fn(Client) -> Fut,
    Fut: Future<Output = std::result::Result<T, etcd_client::Error>>,
{
    let deadline = Instant::now() + timeout;
    // A hung member (stopped, partitioned) keeps its connection looking healthy, and the
    // balancer may send a request there: give the first attempt a short limit so the retry
    // reaches another member soon, and double it per attempt so a merely slow request
    // (a large list under load) still completes.
    let mut attempt_limit = FIRST_ATTEMPT_LIMIT.min(timeout);
    let mut last_error = String::from("timed out");
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(DatastoreError::Unavailable(format!(
                "etcd: {last_error} (gave up after {timeout:?})"
            )));
        }
        match tokio::time::timeout(remaining.min(attempt_limit), request(client.clone())).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if is_transient(&e) => {
                tracing::debug!(error = %e, "etcd request failed, retrying");
                last_error = error_chain(&e);
            }
            Ok(Err(e)) => return Err(DatastoreError::Backend(format!("etcd: {e}"))),
            Err(_) => {
                last_error = format!("no answer within {attempt_limit:?}");
                attempt_limit *= 2;
            }
        }
        tokio::time::sleep(RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now())))
            .await;
    }
}

/// An error with its causes (a transport error's TLS alert is in its source, not in its
/// own text).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    // Bounded: an error chain is a handful of links.
    for _ in 0..8 {
        let Some(cause) = source else { break };
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}

/// Failures another attempt (possibly on another member) can cure.
fn is_transient(error: &etcd_client::Error) -> bool {
    use tonic::Code;
    match error {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(status) => matches!(
            status.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
                | Code::Unknown
                | Code::Aborted
        ),
        _ => false,
    }
}

/// Keys per page of a list.
const LIST_PAGE: i64 = 1000;

/// The first key after every key starting with `prefix` (etcd's prefix range end): the prefix
/// with its last byte below 0xff incremented, what follows it dropped; `\0` (to the end of the
/// keyspace) when every byte is 0xff.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map_or(0, |h| h.revision())
}

fn key_value(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    }
}

impl Datastore for EtcdStore {
    fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        let response = self.call(move |mut client| {
            let key = key.clone();
            async move { client.get(key, None).await }
        })?;
        Ok(response.kvs().first().map(key_value))
    }

    /// Lists in pages of [`LIST_PAGE`] keys, every page read at the revision of the first, so
    /// the result is one consistent snapshot however large: a single range read of ~10k
    /// WorkloadEndpoints would exceed the gRPC client's 4 MiB message limit.
    fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, i64)> {
        let end = prefix_end(prefix.as_bytes());
        let mut start = prefix.as_bytes().to_vec();
        let mut revision = 0;
        let mut out = Vec::new();
        loop {
            let (from, to) = (start.clone(), end.clone());
            let response = self.call(move |mut client| {
                let (from, to) = (from.clone(), to.clone());
                let mut options = GetOptions::new().with_range(to).with_limit(LIST_PAGE);
                if revision > 0 {
                    options = options.with_revision(revision);
                }
                // etcd returns a range sorted by key.
                async move { client.get(from, Some(options)).await }
            })?;
            if revision == 0 {
                revision = header_revision(response.header());
            }
            out.extend(response.kvs().iter().map(key_value));
            let Some(last) = response.kvs().last() else {
                break;
            };
            if !response.more() {
                break;
            }
            // The next page starts just after the last key read.
            start = last.key().to_vec();
            start.push(0);
        }
        Ok((out, revision))
    }

    fn create(&self, key: &str, value: &[u8]) -> Result<i64> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value, None)]);
        let response = self.call(move |mut client| {
            let txn = txn.clone();
            async move { client.txn(txn).await }
        })?;
        if response.succeeded() {
            Ok(header_revision(response.header()))
        } else {
            Err(DatastoreError::AlreadyExists {
                key: key.to_string(),
            })
        }
    }

    fn update(&self, key: &str, value: &[u8], expected_revision: i64) -> Result<i64> {
        // create_revision > 0 keeps `expected_revision == 0` from creating a missing key.
        let txn = Txn::new()
            .when([
                Compare::create_revision(key, CompareOp::Greater, 0),
                Compare::mod_revision(key, CompareOp::Equal, expected_revision),
            ])
            .and_then([TxnOp::put(key, value, None)])
            .or_else([TxnOp::get(key, None)]);
        self.conditional(key, expected_revision, txn)
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<i64> {
        let (key, value) = (key.to_string(), value.to_vec());
        let response = self.call(move |mut client| {
            let (key, value) = (key.clone(), value.clone());
            async move { client.put(key, value, None).await }
        })?;
        Ok(header_revision(response.header()))
    }

    fn delete(&self, key: &str, expected_revision: Option<i64>) -> Result<()> {
        let Some(expected) = expected_revision else {
            let owned = key.to_string();
            let response = self.call(move |mut client| {
                let key = owned.clone();
                async move { client.delete(key, None).await }
            })?;
            return match response.deleted() {
                0 => Err(DatastoreError::NotFound {
                    key: key.to_string(),
                }),
                _ => Ok(()),
            };
        };
        let txn = Txn::new()
            .when([
                Compare::create_revision(key, CompareOp::Greater, 0),
                Compare::mod_revision(key, CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::delete(key, None)])
            .or_else([TxnOp::get(key, None)]);
        self.conditional(key, expected, txn).map(|_| ())
    }

    fn watch(&self, prefix: &str, from_revision: i64) -> Result<Watch> {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(from_revision.max(0));
        let prefix = prefix.to_string();
        // Open the stream first, so that an unreachable cluster is an error of `watch` itself.
        let stream = self.call(move |client| {
            let (prefix, options) = (prefix.clone(), options.clone());
            async move { client.watch_client().watch(prefix, Some(options)).await }
        })?;
        let (events, receiver) = sync_channel(WATCH_CHANNEL);
        let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
        let running = WatchRunning::start(self.active_watches.clone());
        self.runtime()
            .spawn(pump_watch(stream, events, cancelled, running));
        Ok(Watch::new(receiver, Box::new(cancel)))
    }
}

/// Counts a running watch pump for as long as it lives.
struct WatchRunning(Arc<AtomicUsize>);

impl WatchRunning {
    fn start(counter: Arc<AtomicUsize>) -> WatchRunning {
        counter.fetch_add(1, Ordering::SeqCst);
        WatchRunning(counter)
    }
}

impl Drop for WatchRunning {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Forwards one etcd watch stream to the [`Watch`]'s channel until the watch is dropped (the
/// oneshot sender goes with it) or the stream ends. Dropping the stream closes the gRPC call,
/// which cancels the watch on the server.
async fn pump_watch(
    mut stream: etcd_client::WatchStream,
    events: SyncSender<WatchEvent>,
    mut cancelled: tokio::sync::oneshot::Receiver<()>,
    _running: WatchRunning,
) {
    loop {
        let message = tokio::select! {
            _ = &mut cancelled => return,
            message = stream.message() => message,
        };
        let response = match message {
            Ok(Some(response)) => response,
            Ok(None) => {
                deliver(
                    &events,
                    WatchEvent::Disconnected {
                        reason: "etcd closed the watch stream".into(),
                    },
                );
                return;
            }
            Err(e) => {
                deliver(
                    &events,
                    WatchEvent::Disconnected {
                        reason: format!("etcd watch: {e}"),
                    },
                );
                return;
            }
        };
        if response.compact_revision() > 0 {
            deliver(
                &events,
                WatchEvent::Compacted {
                    compact_revision: response.compact_revision(),
                },
            );
            return;
        }
        if response.canceled() {
            let reason = format!("etcd cancelled the watch: {}", response.cancel_reason());
            deliver(&events, WatchEvent::Disconnected { reason });
            return;
        }
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let event = match event.event_type() {
                EventType::Put => WatchEvent::Put(key_value(kv)),
                EventType::Delete => WatchEvent::Delete {
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    mod_revision: kv.mod_revision(),
                },
            };
            if !deliver(&events, event) {
                return;
            }
        }
    }
}

/// Sends to the consumer, waiting when its buffer is full (off the async worker, so other
/// requests keep running). False once the consumer has dropped the watch.
fn deliver(events: &SyncSender<WatchEvent>, event: WatchEvent) -> bool {
    tokio::task::block_in_place(|| events.send(event).is_ok())
}

#[cfg(test)]
mod prefix_end_tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end(b"/calico/a/"), b"/calico/a0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }
}
