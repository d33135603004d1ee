//! The ids of ports and next hops: indices into the forwarding tables that every layer passes
//! around (workers, hand-off, punting, the FIB). They live here, not with the tables, so that
//! naming a port does not make a module depend on the tables.

/// Index of a port (an interface the node forwards on) in `Tables::ports`.
pub type PortId = u16;

/// Index of a next hop in `Tables::next_hops`; this is what the FIB stores.
pub type NextHopId = u32;
