//! Brindle's test bed, shared by the integration tests, the benchmarks and the demo:
//!
//! - [`netns`] and [`multi`]: namespaces and veths wired the way Calico's CNI wires
//!   workloads, one node ([`Lab`]) or several on a segment ([`MultiLab`]).
//! - [`cmd`]: bounded execution of the external tools (`ip`, `ethtool`, `sysctl`), in a
//!   namespace or not, and child processes stopped on every exit path.
//! - [`cni`]: invoking `brindle-cni` the way a container runtime does.
//! - [`udp`]: `sendmmsg`/`recvmmsg` generator and sink, bounded by duration.
//! - [`xdpgen`]: AF_XDP generator and sink with sequence numbers and one-way latency.

pub mod cmd;
pub mod cni;
pub mod multi;
pub mod netns;
pub mod udp;
pub mod xdpgen;

pub use multi::*;
pub use netns::*;
