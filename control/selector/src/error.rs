//! Why a selector could not be parsed, and where.

use thiserror::Error;

/// A selector that does not follow the grammar. `position` is the byte offset into the input
/// where the problem was found (the input's length when it ended too early).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("at position {position}: {message}")]
pub struct ParseError {
    pub position: usize,
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            position,
            message: message.into(),
        }
    }
}
