//! The one error type of the benchmark families (e2e, crossnode, policy, scenarios, scale,
//! control plane): they fail in the same ways (the lab, a command, a node, a file, invalid
//! options), and a family that runs another's measurement passes its errors on unchanged.

use lab::cmd::CmdError;
use lab::node::NodeError;
use lab::LabError;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Lab(#[from] LabError),
    #[error(transparent)]
    Command(#[from] CmdError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("datastore: {0}")]
    Datastore(#[from] datastore::DatastoreError),
    /// An option out of range; `value` as the user would recognise it (quoted where it was
    /// text).
    #[error("invalid {field} {value}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("the {side} side did not take its path: {reason}")]
    WrongPath { side: &'static str, reason: String },
    #[error("{tool} printed unexpected output: {reason}")]
    Parse { tool: &'static str, reason: String },
    #[error("{0}")]
    Run(String),
}

/// Wraps an I/O error with what was being done (`"writing report.json"`).
pub fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |source| BenchError::Io { what, source }
}

/// `value` in quotes, as [`BenchError::Invalid`] shows what was typed as text (`"busy"`); the
/// scenario suite and the control-plane benchmarks show every value that way.
pub fn quoted(value: impl Into<String>) -> String {
    format!("{:?}", value.into())
}
