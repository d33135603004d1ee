//! The embedded store's file held by another process (issue 14's fault list): opening waits a
//! bounded time, then fails naming the file and the process holding it, and works again once
//! that process lets go.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use datastore::{Datastore, DatastoreError, EmbeddedOptions, EmbeddedStore};

/// A process holding an exclusive `flock(2)` on a file, as a backup script would; killed on
/// drop. One process (no child inheriting the lock), so killing it lets go.
struct Holder(Child);

/// Locks argv[1], says so, then waits (60 s at most).
const HOLD: &str = "import fcntl, sys, time
f = open(sys.argv[1])
fcntl.flock(f, fcntl.LOCK_EX)
print('held', flush=True)
time.sleep(60)";

impl Holder {
    fn lock(path: &Path) -> Holder {
        let mut child = Command::new("python3")
            .args(["-c", HOLD])
            .arg(path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut said = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut said)
            .unwrap();
        assert_eq!(said.trim(), "held", "the holder did not lock {path:?}");
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn open(path: &Path) -> Result<EmbeddedStore, DatastoreError> {
    let options = EmbeddedOptions {
        open_timeout: Duration::from_secs(1),
        ..EmbeddedOptions::default()
    };
    EmbeddedStore::open_with(path, options)
}

/// Opening while `held` is locked fails in about the timeout, naming `held` and the holder.
fn refused_while_held(store: &Path, held: &Path) {
    let holder = Holder::lock(held);
    let started = Instant::now();
    let err = open(store)
        .err()
        .expect("opened a store whose file is locked");
    let took = started.elapsed();
    let text = err.to_string();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "gave up after {took:?}"
    );
    assert!(
        text.contains(&held.display().to_string())
            && text.contains("locked by another process")
            && text.contains(&format!("pid {}", holder.0.id())),
        "{text}"
    );
    drop(holder);
    let store = open(store).expect("opens once the holder is gone");
    assert!(store.get("/t/kept").unwrap().is_some());
}

fn with_store(label: &str) -> (common::TempDir, PathBuf) {
    let dir = common::TempDir::new(label);
    let path = dir.path().join("store.redb");
    open(&path).unwrap().create("/t/kept", b"v").unwrap();
    (dir, path)
}

#[test]
fn a_store_file_locked_by_another_process_fails_in_bounded_time_naming_the_holder() {
    let (_dir, path) = with_store("locked-file");
    refused_while_held(&path, &path);
}

#[test]
fn a_held_open_lock_fails_in_bounded_time_naming_the_holder() {
    let (_dir, path) = with_store("locked-sidecar");
    let mut sidecar = path.clone().into_os_string();
    sidecar.push(".lock");
    refused_while_held(&path, Path::new(&sidecar));
}
