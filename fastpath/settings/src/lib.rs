//! The vocabulary the dataplane (`fastpath`) and the NIC profiles (`hwprofile`) share: how the
//! XDP program is attached and how a worker waits for frames ([`modes`]), and the sizes of an
//! AF_XDP frame ([`frame_sizes`]). It depends on nothing, so a tool that only reads profiles
//! (brindlectl's `node checksystem`) does not link the dataplane; `fastpath` re-exports both
//! modules under its own paths.

pub mod frame_sizes;
pub mod modes;

pub use modes::{RxMode, XdpMode};
