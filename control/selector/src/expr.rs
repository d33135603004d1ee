//! The parsed form of a selector, its canonical text, and its evaluation against labels.
//!
//! Evaluation follows Calico's (libcalico-go `selector/parser`): every operator that compares a
//! value is false when the label is absent, except `!=` and `not in`, which are true then.

use std::collections::BTreeSet;
use std::fmt;

use crate::labels::Labels;
use crate::NAMESPACE_LABEL;

/// One node of a selector. `And`/`Or` hold two or more operands; set members are sorted and
/// free of duplicates; a `Not` never wraps another `Not`. The parser and the combinators in
/// this crate keep these invariants, which is what makes equal selectors compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Expr {
    /// `all()`: matches everything.
    All,
    /// `global()`: matches what is not namespaced, i.e. has no `projectcalico.org/namespace`
    /// label (see the crate docs for why).
    Global,
    /// `has(key)`.
    Has(String),
    /// `key == "value"`.
    Eq(String, String),
    /// `key != "value"`; also true when the label is absent.
    Ne(String, String),
    /// `key contains "part"`.
    Contains(String, String),
    /// `key starts with "prefix"`.
    StartsWith(String, String),
    /// `key ends with "suffix"`.
    EndsWith(String, String),
    /// `key in {"a", "b"}`.
    In(String, Vec<String>),
    /// `key not in {"a", "b"}`; also true when the label is absent.
    NotIn(String, Vec<String>),
    /// `!expr`.
    Not(Box<Expr>),
    /// `(a && b && ...)`.
    And(Vec<Expr>),
    /// `(a || b || ...)`.
    Or(Vec<Expr>),
}

impl Expr {
    /// `!inner`, cancelling a double negation so that `!(!has(a))` and `has(a)` are one value.
    pub(crate) fn negate(inner: Expr) -> Expr {
        match inner {
            Expr::Not(e) => *e,
            e => Expr::Not(Box::new(e)),
        }
    }

    /// Sorts and deduplicates a set literal's members (Calico's canonical set order is
    /// byte-wise, which is `String`'s order).
    pub(crate) fn set(mut values: Vec<String>) -> Vec<String> {
        values.sort();
        values.dedup();
        values
    }

    pub(crate) fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = |key: &str| labels.get(key);
        match self {
            Expr::All => true,
            Expr::Global => value(NAMESPACE_LABEL).is_none(),
            Expr::Has(k) => value(k).is_some(),
            Expr::Eq(k, v) => value(k) == Some(v.as_str()),
            Expr::Ne(k, v) => value(k) != Some(v.as_str()),
            Expr::Contains(k, v) => value(k).is_some_and(|x| x.contains(v.as_str())),
            Expr::StartsWith(k, v) => value(k).is_some_and(|x| x.starts_with(v.as_str())),
            Expr::EndsWith(k, v) => value(k).is_some_and(|x| x.ends_with(v.as_str())),
            Expr::In(k, set) => value(k).is_some_and(|x| contains(set, x)),
            Expr::NotIn(k, set) => !value(k).is_some_and(|x| contains(set, x)),
            Expr::Not(e) => !e.matches(labels),
            Expr::And(es) => es.iter().all(|e| e.matches(labels)),
            Expr::Or(es) => es.iter().any(|e| e.matches(labels)),
        }
    }

    pub(crate) fn collect_label_keys<'a>(&'a self, keys: &mut BTreeSet<&'a str>) {
        match self {
            Expr::All => {}
            Expr::Global => {
                keys.insert(NAMESPACE_LABEL);
            }
            Expr::Has(k)
            | Expr::Eq(k, _)
            | Expr::Ne(k, _)
            | Expr::Contains(k, _)
            | Expr::StartsWith(k, _)
            | Expr::EndsWith(k, _)
            | Expr::In(k, _)
            | Expr::NotIn(k, _) => {
                keys.insert(k);
            }
            Expr::Not(e) => e.collect_label_keys(keys),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| e.collect_label_keys(keys)),
        }
    }

    /// A copy with `prefix` put before every label key (Calico's `PrefixVisitor`), e.g. `pcns.`
    /// to turn a selector over namespace labels into one over the labels endpoints inherit.
    pub(crate) fn with_label_prefix(&self, prefix: &str) -> Expr {
        let key = |k: &str| format!("{prefix}{k}");
        match self {
            Expr::All => Expr::All,
            Expr::Global => Expr::Global,
            Expr::Has(k) => Expr::Has(key(k)),
            Expr::Eq(k, v) => Expr::Eq(key(k), v.clone()),
            Expr::Ne(k, v) => Expr::Ne(key(k), v.clone()),
            Expr::Contains(k, v) => Expr::Contains(key(k), v.clone()),
            Expr::StartsWith(k, v) => Expr::StartsWith(key(k), v.clone()),
            Expr::EndsWith(k, v) => Expr::EndsWith(key(k), v.clone()),
            Expr::In(k, s) => Expr::In(key(k), s.clone()),
            Expr::NotIn(k, s) => Expr::NotIn(key(k), s.clone()),
            Expr::Not(e) => Expr::Not(Box::new(e.with_label_prefix(prefix))),
            Expr::And(es) => Expr::And(es.iter().map(|e| e.with_label_prefix(prefix)).collect()),
            Expr::Or(es) => Expr::Or(es.iter().map(|e| e.with_label_prefix(prefix)).collect()),
        }
    }

    /// A copy with `all()` and `global()` replaced (used to scope a `namespaceSelector`).
    pub(crate) fn replace_all_and_global(&self, all: &Expr, global: &Expr) -> Expr {
        let again = |e: &Expr| e.replace_all_and_global(all, global);
        match self {
            Expr::All => all.clone(),
            Expr::Global => global.clone(),
            Expr::Not(e) => Expr::negate(again(e)),
            Expr::And(es) => Expr::And(es.iter().map(again).collect()),
            Expr::Or(es) => Expr::Or(es.iter().map(again).collect()),
            leaf => leaf.clone(),
        }
    }
}

fn contains(set: &[String], value: &str) -> bool {
    set.binary_search_by(|m| m.as_str().cmp(value)).is_ok()
}

/// Calico quotes with `"` unless the value holds a `"` (it cannot hold both kinds).
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    let quote = if value.contains('"') { '\'' } else { '"' };
    write!(f, "{quote}{value}{quote}")
}

fn write_joined(f: &mut fmt::Formatter<'_>, es: &[Expr], op: &str) -> fmt::Result {
    f.write_str("(")?;
    for (i, e) in es.iter().enumerate() {
        if i > 0 {
            f.write_str(op)?;
        }
        write!(f, "{e}")?;
    }
    f.write_str(")")
}

fn write_set(f: &mut fmt::Formatter<'_>, key: &str, op: &str, set: &[String]) -> fmt::Result {
    write!(f, "{key} {op} {{")?;
    for (i, v) in set.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write_quoted(f, v)?;
    }
    f.write_str("}")
}

/// Calico's canonical form (its `Selector.String()`).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let compare = |f: &mut fmt::Formatter<'_>, k: &str, op: &str, v: &str| {
            write!(f, "{k} {op} ")?;
            write_quoted(f, v)
        };
        match self {
            Expr::All => f.write_str("all()"),
            Expr::Global => f.write_str("global()"),
            Expr::Has(k) => write!(f, "has({k})"),
            Expr::Eq(k, v) => compare(f, k, "==", v),
            Expr::Ne(k, v) => compare(f, k, "!=", v),
            Expr::Contains(k, v) => compare(f, k, "contains", v),
            Expr::StartsWith(k, v) => compare(f, k, "starts with", v),
            Expr::EndsWith(k, v) => compare(f, k, "ends with", v),
            Expr::In(k, s) => write_set(f, k, "in", s),
            Expr::NotIn(k, s) => write_set(f, k, "not in", s),
            Expr::Not(e) => write!(f, "!{e}"),
            Expr::And(es) => write_joined(f, es, " && "),
            Expr::Or(es) => write_joined(f, es, " || "),
        }
    }
}
