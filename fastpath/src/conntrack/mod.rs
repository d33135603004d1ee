//! Connection tracking and source NAT state for the fastpath (Calico's conntrack role).
//!
//! - [`key`]: the 5-tuple ([`FlowKey`]) naming one direction of a flow.
//! - [`state`]: TCP/UDP/ICMP state from the packets seen, and the timeouts per state.
//! - [`table`]: [`FlowTable`], a bounded two-way flow index with eviction and counters.
//! - [`snat`]: [`SnatPorts`], source port (and echo id) choice for NAT outgoing.
//! - [`rewrite`]: applying a flow's translation to a packet, with RFC 1624 checksum updates.
//! - [`related`]: ICMP errors (RFC 792) that belong to a tracked flow.
//! - [`persist`]: [`persist::FlowFile`], the flows kept in a mapped file across restarts.
//!
//! # How the pipeline uses it (per packet, no locks, no allocation)
//! 1. Build the [`FlowKey`] from the IPv4 header and the first 4 bytes of TCP/UDP (or the echo
//!    identifier); for an ICMP error, [`related::related_key`] instead.
//! 2. [`FlowTable::prefetch`] every key of the batch first (with a big table most of a lookup
//!    is one cache miss, which the prefetches overlap), then [`FlowTable::lookup`]: a hit gives the flow and the packet's [`Direction`]. The cached
//!    [`PolicyDecision`] applies to both directions, so a reply of an allowed flow passes
//!    without evaluating policy. [`FlowTable::track`] accounts the packet and moves its state.
//!    If the flow is translated, [`rewrite::translate`] rewrites the packet to
//!    [`Flow::translated`].
//! 3. A miss: evaluate policy; if allowed, choose the reply key (the original reversed, or a
//!    [`SnatPorts::allocate`]d one for NAT outgoing) and [`FlowTable::insert`].
//! 4. Once per batch, [`FlowTable::expire`] with a small budget.
//!
//! # Workers
//! Each worker owns one table (`&mut self`, no sharing). Both directions of a flow must reach
//! the same worker: a frame whose flow another worker owns is handed to it
//! (`crate::worker::flow_owner`, by the unordered address pair), and for source-NATed flows,
//! whose replies are addressed to the node, each worker allocates from its own slice of the
//! NAT port range (`crate::worker::nat_slice`), so that the reply's destination port names
//! the owner. Counters are per table and summed by the reader. [`persist`] keeps a worker's
//! table across restarts.

pub mod key;
pub mod persist;
pub mod related;
pub mod rewrite;
pub mod snat;
pub mod state;
pub mod table;

pub use key::{Direction, FlowKey};
pub use snat::{SnatError, SnatPorts, SnatPortsConfig};
pub use state::{FlowState, FlowValue, Millis, TcpState, Timeouts, UdpState};
pub use table::{
    ConntrackCounters, DirectionCounters, Flow, FlowHit, FlowId, FlowTable, FlowTableConfig,
    InsertError, Inserted, PolicyDecision,
};
