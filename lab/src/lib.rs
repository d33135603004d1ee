//! Brindle's test bed, shared by the integration tests, the benchmarks and the demo:
//!
//! - [`netns`] and [`multi`]: namespaces and veths wired the way Calico's CNI wires
//!   workloads, one node ([`Lab`]) or several on a segment ([`MultiLab`]).
//! - [`cmd`]: bounded execution of the external tools (`ip`, `ethtool`, `sysctl`), in a
//!   namespace or not, and child processes stopped on every exit path.
//! - [`node`]: a `brindle-node` process in a namespace: started with a log, waited for,
//!   its stats read, signalled, stopped.
//! - [`cni`]: invoking `brindle-cni` the way a container runtime does.
//! - [`udp`]: `sendmmsg`/`recvmmsg` generator and sink, bounded by duration.
//! - [`xdpgen`]: AF_XDP generator and sink with sequence numbers and one-way latency.

pub mod cmd;
pub mod cni;
pub mod multi;
pub mod netns;
pub mod node;
pub mod udp;
pub mod xdpgen;

pub use multi::*;
pub use netns::*;
