//! Case-insensitive names as Go's `encoding/json` (which Calico decodes with) matches them.
//!
//! Go matches an object key to a struct field exactly if it can, otherwise case-insensitively
//! with Unicode simple folding, so `Ingress:` or `SELECTOR:` set `ingress` / `selector` in
//! Calico. Every field name this crate models is ASCII; under simple folding the only
//! non-ASCII letters equal to an ASCII one are U+017F (long s, folds with `s`) and U+212A
//! (Kelvin sign, folds with `k`), so [`fold_eq`] is exact for these names, not an
//! approximation.
//!
//! Used by `calico_struct!` (field keys at every level), the resource envelope
//! (`apiVersion`, `kind`, `metadata`, `spec`, `items`) and [`AnyCase`] (the few enum values
//! Calico accepts in any case).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

/// Whether `key` equals the ASCII `name` under Unicode simple case folding (Go's
/// `encoding/json` field matching).
pub(crate) fn fold_eq(key: &str, name: &str) -> bool {
    let mut k = key.chars();
    let mut n = name.chars();
    loop {
        match (k.next(), n.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) => {
                let same = if a.is_ascii() {
                    a.eq_ignore_ascii_case(&b)
                } else {
                    match a {
                        '\u{017F}' => b.eq_ignore_ascii_case(&'s'),
                        '\u{212A}' => b.eq_ignore_ascii_case(&'k'),
                        _ => false,
                    }
                };
                if !same {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Which of `names` (exact spellings) `key` sets: an exact match first, otherwise a
/// case-folded one (Go's rule). `None` when it is not a known field.
pub(crate) fn resolve(key: &str, names: &[&str]) -> Option<usize> {
    names
        .iter()
        .position(|n| *n == key)
        .or_else(|| names.iter().position(|n| fold_eq(key, n)))
}

/// The message when two keys of one object set the same field (`ingress` and `Ingress`).
/// Go would apply both, in document order, the later one overwriting (or merging into) the
/// earlier; a policy whose meaning depends on key order is refused instead.
pub(crate) fn duplicate_message(first: &str, second: &str, field: &str) -> String {
    format!(
        "keys '{first}' and '{second}' both set field '{field}' (field names match \
         case-insensitively, as in Calico); keep one"
    )
}

/// Renames the keys of `map` that set one of `names` (case-folded) to the exact spelling.
/// Errors with [`duplicate_message`] (and the field) when two keys set one field.
pub(crate) fn canonicalize_keys(
    map: &mut serde_json::Map<String, serde_json::Value>,
    names: &[&str],
) -> Result<(), (String, String)> {
    for name in names {
        let matching: Vec<String> = map
            .keys()
            .filter(|k| k.as_str() == *name || fold_eq(k, name))
            .cloned()
            .collect();
        match matching.as_slice() {
            [] => {}
            [only] => {
                if only != name {
                    if let Some(v) = map.remove(only) {
                        map.insert((*name).to_string(), v);
                    }
                }
            }
            [a, b, ..] => {
                // The exact spelling first, so the message reads "'spec' and 'Spec'".
                let (a, b) = if b == name { (b, a) } else { (a, b) };
                return Err((name.to_string(), duplicate_message(a, b, name)));
            }
        }
    }
    Ok(())
}

/// An enum whose values Calico accepts in any case (its API schema pattern is `(?i)`) and
/// prints in the canonical spelling.
pub trait CaseFoldEnum: Sized + Copy + 'static {
    /// Canonical spellings and values.
    const VARIANTS: &'static [(&'static str, Self)];
    /// What the value must be, for the error message.
    const EXPECTED: &'static str;
}

/// Reads an optional [`CaseFoldEnum`] whatever the case of its value (`info`, `INFO`,
/// `Info`); `null` is none. Use through `calico_struct!`'s `as AnyCase<T>`.
pub struct AnyCase<T>(pub Option<T>);

impl<T> From<AnyCase<T>> for Option<T> {
    fn from(v: AnyCase<T>) -> Option<T> {
        v.0
    }
}

impl<'de, T: CaseFoldEnum> Deserialize<'de> for AnyCase<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: CaseFoldEnum> Visitor<'de> for V<T> {
            type Value = AnyCase<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(T::EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AnyCase<T>, E> {
                T::VARIANTS
                    .iter()
                    .find(|(name, _)| *name == v)
                    .or_else(|| T::VARIANTS.iter().find(|(name, _)| fold_eq(v, name)))
                    .map(|(_, value)| AnyCase(Some(*value)))
                    .ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
            }
            fn visit_unit<E: de::Error>(self) -> Result<AnyCase<T>, E> {
                Ok(AnyCase(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<AnyCase<T>, E> {
                Ok(AnyCase(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<AnyCase<T>, D::Error> {
                AnyCase::deserialize(d)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_is_go_simple_folding_for_ascii_names() {
        assert!(fold_eq("Ingress", "ingress"));
        assert!(fold_eq("SELECTOR", "selector"));
        assert!(fold_eq("notIcmp", "notICMP"));
        // Long s and the Kelvin sign fold with s and k in Go as well.
        assert!(fold_eq("\u{017F}elector", "selector"));
        assert!(fold_eq("\u{212A}ind", "kind"));
        // Dotless i / dotted I do not fold with i under simple folding.
        assert!(!fold_eq("\u{0131}ngress", "ingress"));
        assert!(!fold_eq("\u{0130}ngress", "ingress"));
        assert!(!fold_eq("ingres", "ingress"));
        assert!(!fold_eq("ingresss", "ingress"));
        assert!(!fold_eq("in_gress", "ingress"));
    }

    #[test]
    fn exact_match_is_preferred() {
        let names = ["ab", "AB"];
        assert_eq!(resolve("AB", &names), Some(1));
        assert_eq!(resolve("ab", &names), Some(0));
        assert_eq!(resolve("Ab", &names), Some(0));
        assert_eq!(resolve("abc", &names), None);
    }
}
