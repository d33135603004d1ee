//! Interning of path attribute sets: every route with the same attributes from the same
//! source shares one allocation, so a table of a million prefixes costs a pointer per prefix
//! and one attribute set per distinct path (BIRD does the same with its `rta` cache).

use std::hash::Hash;
use std::sync::Arc;

use rustc_hash::FxHashSet;

/// A set of shared values; [`Interner::intern`] returns the one already held when an equal
/// value exists.
#[derive(Debug)]
pub struct Interner<T> {
    set: FxHashSet<Arc<T>>,
    /// Size after the last sweep: the next sweep runs when the set has doubled, which keeps
    /// sweeping amortised O(1) per interned value.
    swept_len: usize,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Self {
            set: FxHashSet::default(),
            swept_len: 0,
        }
    }
}

impl<T: Hash + Eq> Interner<T> {
    /// The shared copy of `value`.
    pub fn intern(&mut self, value: T) -> Arc<T> {
        if let Some(held) = self.set.get(&value) {
            return Arc::clone(held);
        }
        if self.set.len() >= 2 * self.swept_len.max(512) {
            self.sweep();
        }
        let held = Arc::new(value);
        self.set.insert(Arc::clone(&held));
        held
    }

    /// Drops the values nobody but the interner holds any more.
    pub fn sweep(&mut self) {
        self.set.retain(|v| Arc::strong_count(v) > 1);
        self.swept_len = self.set.len();
    }

    /// Distinct values held (including unused ones not yet swept).
    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}
