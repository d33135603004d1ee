//! Selector expressions (`role == 'db' && has(net1)`, `all()`), as used by policies, IP pools,
//! BGP peers and network sets: checked with the `selector` crate's parser (Calico's grammar),
//! so every field that holds a selector reports the parser's error and its position.

use crate::validate::Errors;

/// Longest selector accepted (a bound on untrusted input; real selectors are short).
pub const MAX_SELECTOR_LEN: usize = selector::MAX_SELECTOR_LEN;

/// Why `expr` cannot be a selector, if it cannot: the parser's message, which names the byte
/// position and what was expected there ("at position 7: expected a string literal after '=='").
pub fn problem(expr: &str) -> Option<String> {
    // Calico reads a blank selector as all(); in a resource it is almost always a mistake
    // (an empty YAML value), and leaving the field out already means the default.
    if expr.trim().is_empty() {
        return Some("selector must not be blank (leave the field out to select nothing)".into());
    }
    selector::Selector::parse(expr).err().map(|e| e.to_string())
}

/// Records an error at `path` if `expr` is not a selector.
pub(crate) fn check(errs: &mut Errors, path: &str, expr: &str) {
    if let Some(reason) = problem(expr) {
        errs.add(path, expr, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obvious_selector_mistakes_are_found() {
        assert_eq!(problem("all()"), None);
        assert_eq!(problem("role == 'db' && has(net1)"), None);
        assert_eq!(problem("a == ')'"), None);
        assert!(problem("").is_some());
        assert!(problem("   ").is_some());
        assert!(problem("has(net1").is_some());
        assert!(problem("role == 'db").is_some());
        assert!(problem("a)(").is_some());
    }

    #[test]
    fn problems_come_from_the_parser_with_their_position() {
        assert_eq!(
            problem("role == db").as_deref(),
            Some("at position 8: expected a string literal after '==', found a label")
        );
        assert_eq!(
            problem("has(net1").as_deref(),
            Some("at position 8: expected ')' to close 'has('")
        );
        assert!(problem(&"x".repeat(MAX_SELECTOR_LEN + 1))
            .unwrap()
            .contains("longer than"));
    }
}
