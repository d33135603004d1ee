//! Reading a benchmark's JSON for its rows: numbers through JSON pointers, with errors that
//! name the field. Pointers rather than the benchmarks' own types, so that files written
//! before a benchmark gained a field still read.

use serde_json::Value;

/// A field of a results document that is missing or not what it should be.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field {field}: {problem}")]
pub struct RowError {
    pub field: String,
    pub problem: String,
}

impl RowError {
    pub fn new(field: &str, problem: impl Into<String>) -> RowError {
        RowError {
            field: field.to_string(),
            problem: problem.into(),
        }
    }
}

/// One parsed results document.
pub(super) struct Doc<'a>(pub(super) &'a Value);

impl Doc<'_> {
    pub(super) fn value(&self) -> &Value {
        self.0
    }

    /// `None` when the field is absent or null (a side that did not run).
    pub(super) fn optional_number(&self, pointer: &str) -> Result<Option<f64>, RowError> {
        match self.0.pointer(pointer) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| RowError::new(pointer, format!("{n} is not a finite number"))),
            Some(other) => Err(RowError::new(
                pointer,
                format!("expected a number, found {other}"),
            )),
        }
    }

    pub(super) fn number(&self, pointer: &str) -> Result<f64, RowError> {
        self.optional_number(pointer)?
            .ok_or_else(|| RowError::new(pointer, "missing"))
    }

    pub(super) fn is_present(&self, pointer: &str) -> bool {
        !matches!(self.0.pointer(pointer), None | Some(Value::Null))
    }

    pub(super) fn array(&self, pointer: &str) -> Result<&Vec<Value>, RowError> {
        self.0
            .pointer(pointer)
            .and_then(Value::as_array)
            .ok_or_else(|| RowError::new(pointer, "expected an array"))
    }

    pub(super) fn text(&self, pointer: &str) -> Result<&str, RowError> {
        self.0
            .pointer(pointer)
            .and_then(Value::as_str)
            .ok_or_else(|| RowError::new(pointer, "expected a string"))
    }

    /// The rounds the file's figures are medians of (1 when it does not say).
    pub(super) fn rounds(&self) -> u32 {
        self.0
            .get("rounds")
            .and_then(Value::as_u64)
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(1)
    }
}
