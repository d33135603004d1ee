//! What every test here shares: the namespaces and veths, AF_PACKET sockets on the far side,
//! hand-built frames, and small AF_XDP ports.

use std::time::Duration;

pub mod af_xdp;
pub mod frames;
pub mod lab;
pub mod raw_socket;

/// How long a test waits for a frame to arrive.
pub const WAIT: Duration = Duration::from_secs(3);
