//! The XDP program, AF_XDP ports and workers on real veth pairs (needs root, as CI has).
//!
//! Every test builds its own pair of network namespaces: `node` holds the interfaces the XDP
//! program is attached to, `far` holds their veth peers and plays the workload or the rest of
//! the network. The test thread enters `node` with setns(2) (threads it spawns inherit it), and
//! frames are sent and captured on the far side with AF_PACKET sockets opened inside `far`
//! (a socket stays in the namespace it was created in).

mod support;

mod attach;
mod ports;
mod worker;
