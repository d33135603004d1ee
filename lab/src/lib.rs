//! Brindle's test bed, shared by the integration tests, the benchmarks and the demo:
//!
//! - [`netns`] and [`multi`]: namespaces and veths wired the way Calico's CNI wires
//!   workloads, one node ([`Lab`]) or several on a segment ([`MultiLab`]).
//! - [`cmd`]: bounded execution of the external tools (`ip`, `ethtool`, `sysctl`), in a
//!   namespace or not, and child processes stopped on every exit path.
//! - [`node`]: a `brindle-node` process in a namespace: started with a log, waited for,
//!   its stats read, signalled, stopped.
//! - [`run`]: a tag for unique lab names, the host's load average.
//! - [`cni`]: invoking `brindle-cni` the way a container runtime does.
//! - [`etcd`]: etcd members on the loopback of the host or of a namespace.
//! - [`felix`]: Felix-style iptables, the policy of the kernel baselines.
//! - [`ping`]: one echo to see whether a path is up; RTTs from a ping run.
//! - [`iperf`]: one short iperf3 TCP run between namespaces and the bytes it delivered.
//! - [`udp`]: `sendmmsg`/`recvmmsg` generator and sink, bounded by duration.
//! - [`xdpgen`]: AF_XDP generator and sink with sequence numbers and one-way latency.

pub mod cmd;
pub mod cni;
pub mod etcd;
pub mod felix;
pub mod iperf;
pub mod multi;
pub mod netns;
pub mod node;
pub mod ping;
pub mod run;
pub mod udp;
mod wiring;
pub mod xdpgen;

pub use multi::*;
pub use netns::*;
