//! Calico's label selector language (libcalico-go `lib/selector`): `role == 'db' && has(net1)`.
//!
//! - [`Selector::parse`]: Calico's grammar and precedence (below); errors are [`ParseError`]s
//!   naming the byte position and what was expected there.
//! - `Display` / [`Selector::canonical`]: Calico's canonical text (double quotes unless the value
//!   holds one, `&&`/`||` groups parenthesised, set members sorted and deduplicated), so
//!   `parse(canonical)` gives back an equal selector and equal selectors print the same.
//! - [`Selector::matches`]: evaluation against any [`Labels`]; [`ParentLabels`] layers an
//!   endpoint's own labels over inherited (profile/namespace) ones.
//! - [`Selector::label_keys`], [`Selector::is_all`], [`Selector::unique_id`]: what the policy
//!   compiler needs to index selectors and share address sets between equal ones.
//! - [`scope`]: the selectors a namespaced policy and its rules really mean
//!   (`projectcalico.org/namespace`, `namespaceSelector` with `pcns.` labels, `global()`).
//!
//! ## Grammar (Calico's)
//! ```text
//! selector  := <empty> | or
//! or        := and ( "||" and )*
//! and       := operation ( "&&" operation )*
//! operation := "!"* ( has(k) | all() | global() | "(" or ")"
//!                   | k ("==" | "!=" | contains | starts with | ends with) string
//!                   | k ("in" | "not in") "{" [ string ("," string)* [","] ] "}" )
//! ```
//! `!` binds tightest, then `&&`, then `||`; a run of `!` collapses to its parity. Labels `k`
//! are runs of `[a-zA-Z0-9_./-]`; strings are `'...'` or `"..."` without escapes; whitespace
//! is space and tab only. An empty selector is `all()`. `==`, `contains`, `starts with`,
//! `ends with`, `in` and `has` need the label; `!=` and `not in` hold when it is absent.
//!
//! ## `global()`
//! Calico's evaluator treats `global()` as true and gives it meaning only inside a rule's
//! `namespaceSelector`, where it is rewritten to "not in any namespace". We give it that meaning
//! everywhere: `global()` matches exactly the things without a `projectcalico.org/namespace`
//! label, i.e. non-namespaced resources (host endpoints, global network sets, nodes). Inside a
//! `namespaceSelector`, [`scope::rule_selector`] rewrites it as Calico does.
//!
//! ## Where we differ from Calico on purpose
//! - Input longer than [`MAX_SELECTOR_LEN`] bytes or nested deeper than [`MAX_NESTING`]
//!   parentheses is rejected (Calico has no bound), and so is input whose canonical form would
//!   be (it adds spaces and parenthesises every `&&`/`||` group), so that the canonical form of
//!   anything accepted parses again.
//! - A double negation `!(!x)` is folded to `x` (Calico prints `!!x`, which re-parses as `x`), so
//!   that parsing the canonical form always gives back the same selector.

mod error;
mod expr;
mod labels;
mod lexer;
mod limits;
mod parser;
pub mod scope;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha224};

pub use error::ParseError;
pub use expr::Expr;
pub use labels::{Labels, ParentLabels};
pub use limits::{MAX_NESTING, MAX_SELECTOR_LEN};
pub use scope::PolicyScope;

/// The label every namespaced endpoint carries, holding its namespace's name.
pub const NAMESPACE_LABEL: &str = "projectcalico.org/namespace";

/// The prefix under which endpoints inherit their namespace's labels.
pub const NAMESPACE_LABEL_PREFIX: &str = "pcns.";

/// A parsed selector. Equality and hashing are those of the canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selector {
    root: Expr,
}

impl Selector {
    /// Parses `input` with Calico's grammar. Blank input is `all()`, as in Calico.
    pub fn parse(input: &str) -> Result<Selector, ParseError> {
        parser::parse(input).map(Selector::from_expr)
    }

    /// `all()`.
    pub fn all() -> Selector {
        Selector::from_expr(Expr::All)
    }

    pub(crate) fn from_expr(root: Expr) -> Selector {
        Selector { root }
    }

    /// The parsed form, for compilers that walk it.
    pub fn expr(&self) -> &Expr {
        &self.root
    }

    /// Calico's canonical text (the same as `to_string()`).
    pub fn canonical(&self) -> String {
        self.to_string()
    }

    /// Whether the selector is exactly `all()`.
    pub fn is_all(&self) -> bool {
        self.root == Expr::All
    }

    /// Whether `labels` are selected. See the crate docs for `global()`.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.root.matches(labels)
    }

    /// The label keys the selector reads (`global()` reads [`NAMESPACE_LABEL`]).
    pub fn label_keys(&self) -> BTreeSet<&str> {
        let mut keys = BTreeSet::new();
        self.root.collect_label_keys(&mut keys);
        keys
    }

    /// A stable identifier of the canonical form, the one Calico computes: `s:` then the
    /// unpadded URL-safe base64 of SHA-224 over `"s:" + canonical`. Equal selectors share it.
    pub fn unique_id(&self) -> String {
        let digest = Sha224::digest(format!("s:{self}").as_bytes());
        format!("s:{}", base64_url_unpadded(&digest))
    }

    /// A copy with `prefix` before every label key (e.g. `pcsa.` for service account labels).
    pub fn with_label_prefix(&self, prefix: &str) -> Selector {
        Selector::from_expr(self.root.with_label_prefix(prefix))
    }

    /// `(self && other)`.
    pub fn and(&self, other: &Selector) -> Selector {
        Selector::from_expr(Expr::And(vec![self.root.clone(), other.root.clone()]))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.fmt(f)
    }
}

impl FromStr for Selector {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Selector, ParseError> {
        Selector::parse(input)
    }
}

/// RFC 4648 section 5 ("base64url"), without padding.
fn base64_url_unpadded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        // A chunk of k bytes yields k + 1 characters.
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests;
