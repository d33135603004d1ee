//! Compare-and-swap retry loop. Every IPAM read-modify-write reads a record with its
//! revision, changes it, and writes it back only if the revision is unchanged; when another
//! writer got there first it reads again. Retries are bounded and jittered so that many
//! processes racing for one block spread out instead of colliding in lock step.

use std::time::Duration;

use datastore::DatastoreError;
use rand::Rng;

use crate::IpamError;

/// Attempts before giving up on one record (Calico uses the same bound).
pub const MAX_ATTEMPTS: u32 = 100;

/// What one attempt of a read-modify-write came to.
pub enum Attempt<T> {
    Done(T),
    /// Lost a race (revision moved, key appeared or vanished): read again.
    Retry,
}

/// Runs `attempt` until it is done, at most [`MAX_ATTEMPTS`] times.
pub fn retry<T>(
    key: &str,
    mut attempt: impl FnMut() -> Result<Attempt<T>, IpamError>,
) -> Result<T, IpamError> {
    for n in 0..MAX_ATTEMPTS {
        match attempt()? {
            Attempt::Done(v) => return Ok(v),
            Attempt::Retry => {
                tracing::debug!(key, attempt = n, "CAS conflict, retrying");
                backoff(n);
            }
        }
    }
    Err(IpamError::TooManyConflicts {
        key: key.to_string(),
        attempts: MAX_ATTEMPTS,
    })
}

/// Whether a write failed only because another writer changed the key first.
pub fn lost_race(e: &DatastoreError) -> bool {
    matches!(
        e,
        DatastoreError::Conflict { .. }
            | DatastoreError::AlreadyExists { .. }
            | DatastoreError::NotFound { .. }
    )
}

/// Turns a write result into an attempt outcome: a lost race retries, other errors stop.
pub fn settle<T>(r: Result<T, DatastoreError>) -> Result<Attempt<T>, IpamError> {
    match r {
        Ok(v) => Ok(Attempt::Done(v)),
        Err(e) if lost_race(&e) => Ok(Attempt::Retry),
        Err(e) => Err(e.into()),
    }
}

fn backoff(attempt: u32) {
    // 0..(attempt+1)*100 µs, capped at 5 ms: short enough for a CNI ADD, long enough to
    // let the winner's write land.
    let ceiling = ((attempt + 1) * 100).min(5_000);
    let micros = rand::thread_rng().gen_range(0..=ceiling);
    std::thread::sleep(Duration::from_micros(u64::from(micros)));
}
