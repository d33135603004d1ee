//! Selector expressions (`role == 'db' && has(net1)`, `all()`), as used by policies, IP pools,
//! BGP peers and network sets.
//!
//! HOOK: this module only checks what can be checked without the grammar (not blank, quotes
//! and parentheses balanced, bounded length). The policy issue brings the full selector parser
//! (Calico's `selector` package grammar); it should replace [`check`]'s body with
//! "parse it, report the parser's error", keeping this signature so every caller gets it.

use crate::validate::Errors;

/// Longest selector accepted (a bound on untrusted input; real selectors are short).
pub const MAX_SELECTOR_LEN: usize = 4096;

/// Why `expr` cannot be a selector, if it cannot.
pub fn problem(expr: &str) -> Option<&'static str> {
    if expr.trim().is_empty() {
        return Some("selector must not be blank (leave the field out to select nothing)");
    }
    if expr.len() > MAX_SELECTOR_LEN {
        return Some("selector is too long");
    }
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for c in expr.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth < 0 {
                    return Some("unbalanced parentheses");
                }
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return Some("unterminated string");
    }
    if depth != 0 {
        return Some("unbalanced parentheses");
    }
    None
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
}
