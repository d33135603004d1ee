//! IPv4 FIB with longest-prefix match.
//!
//! CONTRACT (implemented by the FIB work item): DIR-24-8 (or faster) table mapping prefixes to
//! `NextHopId`s.
//!
//! - `Fib::new()` / `Default`: empty.
//! - `insert(prefix: Ipv4Addr, len: u8, nh: NextHopId) -> Result<Option<NextHopId>, FibError>`
//!   (replaces and returns the old next hop of the same prefix; error for len > 32 or an
//!   `nh` that does not fit the table's encoding).
//! - `remove(prefix, len) -> Option<NextHopId>`: the covered addresses fall back to the next
//!   shorter prefix.
//! - `lookup(addr: u32 /* host byte order */) -> Option<NextHopId>`: `#[inline]`, no branches
//!   beyond the two-level walk.
//! - `len()`: number of prefixes.

use crate::tables::NextHopId;

#[derive(Debug, Default)]
pub struct Fib {
    _todo: (),
}

impl Fib {
    pub fn new() -> Fib {
        Fib::default()
    }

    #[inline]
    pub fn lookup(&self, _addr: u32) -> Option<NextHopId> {
        unimplemented!("FIB work item")
    }
}
