//! What a selector is evaluated against: anything that can look up a label by key.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// A set of labels (key → value).
pub trait Labels {
    fn get(&self, key: &str) -> Option<&str>;
}

impl<L: Labels + ?Sized> Labels for &L {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
}

/// A list of pairs; the first pair with the key wins.
impl Labels for [(&str, &str)] {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl<const N: usize> Labels for [(&str, &str); N] {
    fn get(&self, key: &str) -> Option<&str> {
        Labels::get(self.as_slice(), key)
    }
}

/// No labels at all.
impl Labels for () {
    fn get(&self, _key: &str) -> Option<&str> {
        None
    }
}

/// An entity's own labels with inherited ones behind them: a workload endpoint's labels over
/// its profiles' (which carry its namespace's labels as `pcns.*`). As in Calico, the entity's
/// own value wins when both have the key. Nest for several parents, first parent first:
/// `ParentLabels::new(&own, ParentLabels::new(&profile_a, &profile_b))`.
#[derive(Debug, Clone, Copy)]
pub struct ParentLabels<O, P> {
    pub own: O,
    pub parent: P,
}

impl<O: Labels, P: Labels> ParentLabels<O, P> {
    pub fn new(own: O, parent: P) -> ParentLabels<O, P> {
        ParentLabels { own, parent }
    }
}

impl<O: Labels, P: Labels> Labels for ParentLabels<O, P> {
    fn get(&self, key: &str) -> Option<&str> {
        self.own.get(key).or_else(|| self.parent.get(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_source_looks_up_by_key() {
        let btree: BTreeMap<String, String> = [("a".into(), "1".into())].into();
        let hash: HashMap<String, String> = [("a".into(), "1".into())].into();
        let pairs = [("a", "1"), ("a", "2")];
        assert_eq!(Labels::get(&btree, "a"), Some("1"));
        assert_eq!(Labels::get(&hash, "a"), Some("1"));
        assert_eq!(Labels::get(&pairs[..], "a"), Some("1"));
        assert_eq!(Labels::get(&pairs, "b"), None);
        assert_eq!(Labels::get(&(), "a"), None);
    }

    #[test]
    fn own_labels_override_inherited_ones() {
        let own = [("role", "db")];
        let profile_a = [("role", "web"), ("pcns.team", "blue")];
        let profile_b = [("pcns.team", "red"), ("tier", "1")];
        let all = ParentLabels::new(&own, ParentLabels::new(&profile_a, &profile_b));
        assert_eq!(all.get("role"), Some("db"));
        assert_eq!(all.get("pcns.team"), Some("blue"));
        assert_eq!(all.get("tier"), Some("1"));
        assert_eq!(all.get("zone"), None);
    }
}
