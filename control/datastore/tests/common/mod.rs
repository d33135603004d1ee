//! The shared test support (`control/testkit`).
pub use testkit::*;
