//! The bounds on a selector, and why what is accepted always prints within them.
//!
//! The input is bounded (length, and depth of parentheses) so that hostile input cannot make
//! the parser slow or exhaust the stack. But the canonical form is not the input: it adds
//! spaces around operators, turns `'x'` into `"x"` and parenthesises every `&&` and `||` group,
//! so a 4096-byte input can print 4097 bytes or more, and `a || b && (...)` nested 33 deep
//! prints 66 levels of parentheses. Had such a selector been accepted, its canonical form
//! would be refused by the same parser, breaking `parse(canonical(s)) == s`. So the canonical
//! form is held to the same two bounds at parse time. That makes the promise hold: the
//! canonical form of what parses is at most [`MAX_SELECTOR_LEN`] bytes with parentheses at
//! most [`MAX_NESTING`] deep, so it passes the input checks, and it parses to the same
//! selector, whose canonical form is itself.

use std::fmt::{self, Write};

use crate::error::ParseError;
use crate::expr::Expr;

/// Longest selector accepted, in bytes, as given and in canonical form (real selectors are
/// far shorter).
pub const MAX_SELECTOR_LEN: usize = 4096;

/// Deepest nesting of parentheses accepted, as given and in canonical form.
pub const MAX_NESTING: usize = 64;

/// Refuses `expr` (parsed from `input_len` bytes) if its canonical form is longer than
/// [`MAX_SELECTOR_LEN`] or nests parentheses deeper than [`MAX_NESTING`]. The error is placed
/// at the input's end: it is found only once the whole selector is read.
pub(crate) fn check_canonical(expr: &Expr, input_len: usize) -> Result<(), ParseError> {
    let depth = group_depth(expr);
    if depth > MAX_NESTING {
        return Err(ParseError::new(
            input_len,
            format!(
                "parentheses nested deeper than {MAX_NESTING} in the canonical form, which \
                 parenthesises every && and || group ({depth} deep)"
            ),
        ));
    }
    let len = canonical_len(expr);
    if len > MAX_SELECTOR_LEN {
        return Err(ParseError::new(
            input_len,
            format!(
                "canonical form is {len} bytes long, longer than the {MAX_SELECTOR_LEN} allowed \
                 (it adds spaces, quotes and parentheses to the {input_len} bytes given)"
            ),
        ));
    }
    Ok(())
}

/// How deep the canonical form nests parentheses: one level per `&&`/`||` group (`!` and the
/// parentheses of `has()`, `all()` and `global()` add none). Recursion is bounded: the parser
/// only builds trees whose input nesting is at most [`MAX_NESTING`].
fn group_depth(expr: &Expr) -> usize {
    match expr {
        Expr::Not(e) => group_depth(e),
        Expr::And(es) | Expr::Or(es) => 1 + es.iter().map(group_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The canonical form's length in bytes, counted as it is printed, without building it.
fn canonical_len(expr: &Expr) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 = self.0.saturating_add(s.len());
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and `Display` for `Expr` only fails if the writer does.
    let _ = write!(count, "{expr}");
    count.0
}
