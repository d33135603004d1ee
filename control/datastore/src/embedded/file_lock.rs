//! Waiting, boundedly, for the store's file when another process holds it.
//!
//! Why: the locks involved (the sidecar `<path>.lock` that serialises opening, and the file
//! itself, which a foreign or older opener may hold exclusively) are advisory locks another
//! process can keep forever: a stopped brindlectl, a backup script's `flock`. Blocking on them
//! would hang a CNI ADD or a `brindlectl get` with no word of why. So every wait polls with a
//! deadline, and the error names the file and, from `/proc/locks`, the process holding it.

use std::fs::{File, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{DatastoreError, Result};

/// The sidecar lock that serialises opening the store (redb initialises a fresh file in its
/// first open; two first opens at once must not race). Released when dropped.
pub(super) struct OpenLock(File);

impl OpenLock {
    pub(super) fn take(db_path: &Path, deadline: Instant) -> Result<OpenLock> {
        let mut lock_path = PathBuf::from(db_path).into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let file = super::private::open_file(&lock_path)?;
        wait_for(&lock_path, deadline, || file.try_lock())?;
        Ok(OpenLock(file))
    }
}

impl Drop for OpenLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Waits until no other process holds the store's file exclusively (openers of the store
/// share it). A file that does not exist yet is free.
pub(super) fn wait_until_shared(db_path: &Path, deadline: Instant) -> Result<()> {
    let Ok(file) = File::open(db_path) else {
        return Ok(());
    };
    wait_for(db_path, deadline, || file.try_lock_shared())?;
    let _ = file.unlock();
    Ok(())
}

/// Tries `lock` with a growing pause until it succeeds or `deadline` passes.
fn wait_for(
    path: &Path,
    deadline: Instant,
    mut lock: impl FnMut() -> std::result::Result<(), TryLockError>,
) -> Result<()> {
    let mut pause = Duration::from_millis(5);
    loop {
        match lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(TryLockError::WouldBlock) => return Err(held_by_another(path)),
            Err(TryLockError::Error(e)) => {
                return Err(DatastoreError::Unavailable(format!(
                    "locking {}: {e}",
                    path.display()
                )))
            }
        }
    }
}

fn held_by_another(path: &Path) -> DatastoreError {
    let holders = std::fs::metadata(path)
        .map(|m| holders_of(m.dev(), m.ino()))
        .unwrap_or_default();
    let by = match holders.as_slice() {
        [] => String::new(),
        pids => format!(
            " (pid {})",
            pids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    DatastoreError::Unavailable(format!(
        "{} is locked by another process{by}; gave up waiting for it",
        path.display()
    ))
}

/// The processes holding a lock on the file `(dev, ino)`, from `/proc/locks` (read up to a
/// bound: it lists every lock of the host).
fn holders_of(dev: u64, ino: u64) -> Vec<u32> {
    let Ok(file) = File::open("/proc/locks") else {
        return Vec::new();
    };
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::Read::take(file, 1 << 20), &mut text);
    // `1: FLOCK  ADVISORY  WRITE 4242 00:1f:123456 0 EOF`: the device as major:minor in hex.
    // Linux's dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let wanted = format!("{major:02x}:{minor:02x}:{ino}");
    let mut pids: Vec<u32> = text
        .lines()
        // `->` marks a process waiting for the lock, not holding it.
        .filter(|line| !line.contains("->"))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = fields.iter().position(|f| *f == wanted)?;
            fields.get(at.checked_sub(1)?)?.parse().ok()
        })
        .filter(|pid| *pid != std::process::id())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}
