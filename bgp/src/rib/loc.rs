//! Loc-RIB (RFC 4271 section 3.2): every candidate path per prefix, the best one first.
//!
//! Lean on purpose (1M prefixes): a prefix with one path (the common case) costs its key and
//! one pointer to a shared [`Path`]; only prefixes with several paths allocate a list.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::best::{select_best, Candidate, SourceInfo};
use super::{Path, Source};
use crate::packet::Ipv4Prefix;

/// The paths for one prefix; the best is first.
#[derive(Clone, Debug)]
enum Candidates {
    One(Arc<Path>),
    /// Two or more. Boxed (a thin pointer) so that an entry stays two words: with a bare
    /// `Vec` every prefix, even with one path, would pay four.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Arc<Path>>>),
}

impl Candidates {
    fn as_slice(&self) -> &[Arc<Path>] {
        match self {
            Self::One(p) => std::slice::from_ref(p),
            Self::Many(v) => v,
        }
    }
}

/// The best path of a prefix changed from `old` to `new` (`None`: no path).
#[derive(Clone, Debug)]
pub struct BestChange {
    pub old: Option<Arc<Path>>,
    pub new: Option<Arc<Path>>,
}

/// The Loc-RIB.
#[derive(Debug, Default)]
pub struct LocRib {
    routes: FxHashMap<Ipv4Prefix, Candidates>,
}

impl LocRib {
    /// The best path for `prefix`.
    pub fn best(&self, prefix: &Ipv4Prefix) -> Option<&Arc<Path>> {
        self.routes.get(prefix).map(|c| &c.as_slice()[0])
    }

    /// Every candidate path for `prefix`, best first.
    pub fn paths(&self, prefix: &Ipv4Prefix) -> &[Arc<Path>] {
        self.routes
            .get(prefix)
            .map(Candidates::as_slice)
            .unwrap_or(&[])
    }

    /// Prefixes with at least one path.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Every prefix with its best path.
    pub fn iter_best(&self) -> impl Iterator<Item = (Ipv4Prefix, &Arc<Path>)> + '_ {
        self.routes.iter().map(|(p, c)| (*p, &c.as_slice()[0]))
    }

    /// Adds or replaces the path from `path.source`; returns the change of best path, if any.
    pub(crate) fn insert(
        &mut self,
        prefix: Ipv4Prefix,
        path: Arc<Path>,
        info: &impl Fn(Source) -> SourceInfo,
    ) -> Option<BestChange> {
        let entry = match self.routes.get_mut(&prefix) {
            None => {
                self.routes
                    .insert(prefix, Candidates::One(Arc::clone(&path)));
                return Some(BestChange {
                    old: None,
                    new: Some(path),
                });
            }
            Some(entry) => entry,
        };
        let old_best = Arc::clone(&entry.as_slice()[0]);
        match entry {
            Candidates::One(held) if held.source == path.source => *held = path,
            Candidates::One(held) => {
                *entry = Candidates::Many(Box::new(vec![Arc::clone(held), path]));
            }
            Candidates::Many(list) => match list.iter_mut().find(|p| p.source == path.source) {
                Some(slot) => *slot = path,
                None => list.push(path),
            },
        }
        Self::reselect(entry, info);
        let new_best = &entry.as_slice()[0];
        (!Arc::ptr_eq(&old_best, new_best)).then(|| BestChange {
            old: Some(old_best),
            new: Some(Arc::clone(new_best)),
        })
    }

    /// Removes the path from `source`; returns the change of best path, if any.
    pub(crate) fn remove(
        &mut self,
        prefix: Ipv4Prefix,
        source: Source,
        info: &impl Fn(Source) -> SourceInfo,
    ) -> Option<BestChange> {
        let entry = self.routes.get_mut(&prefix)?;
        let old_best = Arc::clone(&entry.as_slice()[0]);
        match entry {
            Candidates::One(held) if held.source == source => {
                self.routes.remove(&prefix);
                return Some(BestChange {
                    old: Some(old_best),
                    new: None,
                });
            }
            Candidates::One(_) => return None,
            Candidates::Many(list) => {
                list.retain(|p| p.source != source);
                if list.len() == 1 {
                    *entry = Candidates::One(list.pop()?);
                }
            }
        }
        Self::reselect(entry, info);
        let new_best = &entry.as_slice()[0];
        (!Arc::ptr_eq(&old_best, new_best)).then(|| BestChange {
            old: Some(old_best),
            new: Some(Arc::clone(new_best)),
        })
    }

    /// Moves the best path to the front.
    fn reselect(entry: &mut Candidates, info: &impl Fn(Source) -> SourceInfo) {
        let Candidates::Many(list) = entry else {
            return;
        };
        let candidates: smallvec::SmallVec<[Candidate<'_>; 8]> = list
            .iter()
            .map(|p| Candidate {
                attrs: &p.attrs,
                source: info(p.source),
            })
            .collect();
        if let Some(best) = select_best(&candidates) {
            drop(candidates);
            list.swap(0, best);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_with_one_path_costs_its_key_and_two_words() {
        assert_eq!(std::mem::size_of::<Candidates>(), 16);
        assert_eq!(std::mem::size_of::<(Ipv4Prefix, Candidates)>(), 24);
    }
}
