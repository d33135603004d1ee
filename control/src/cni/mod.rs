//! The CNI plugins' building blocks: the protocol (`spec`) and the interface wiring (`plumbing`).

pub mod plumbing;
pub mod spec;
