//! The dataplane programme: what the fastpath tables must hold for a given configuration.
//!
//! Pure functions of the configuration and the facts about the interfaces, so that they are
//! tested without any interface existing. [`tables`] builds a snapshot for ports at whatever
//! ids the live dataplane gave them (ids are stable for a port's life, so slots of removed
//! ports are holes).

mod first_hop;
mod ports;
mod snapshot;
#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;

use fastpath::{PortId, PortInfo, Tables};

use crate::config::RouteConfig;

pub use ports::port_info;
pub use snapshot::tables;

/// The gateway address every workload routes through; nobody owns it, the node answers ARP
/// for it (see ARCHITECTURE.md, "How a workload is wired").
pub const WORKLOAD_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

#[derive(Debug, thiserror::Error)]
pub enum ProgrammeError {
    #[error("{0}")]
    Interface(#[from] crate::host::InterfaceError),
    #[error("too many ports ({0}); at most {max}", max = PortId::MAX)]
    TooManyPorts(usize),
    #[error("route {prefix} via {via}: {reason}")]
    Route {
        prefix: String,
        via: Ipv4Addr,
        reason: String,
    },
    #[error("FIB refused {prefix}: {reason}")]
    Fib { prefix: String, reason: String },
    #[error("workload address {ip} on {interface} is already routed to {owner}")]
    DuplicateAddress {
        ip: Ipv4Addr,
        interface: String,
        owner: String,
    },
}

/// What a snapshot is built from: ports at their ids, and what to route to them.
pub struct Routing<'a> {
    /// Ports by `PortId`; `None` for a free slot.
    pub ports: &'a [Option<PortInfo>],
    /// Each workload's port and addresses.
    pub workloads: Vec<(PortId, &'a [Ipv4Addr])>,
    /// The uplink's port and its IPv4 addresses with prefix lengths.
    pub uplink: Option<(PortId, &'a [(Ipv4Addr, u8)])>,
    pub routes: &'a [RouteConfig],
    /// The kernel's routes through gateways on the uplink: how the host itself reaches other
    /// subnets. Used only to find the first hop towards a next hop that is not on the
    /// uplink's subnet (a node behind a router); never installed.
    pub underlay: &'a [crate::host::GatewayRoute],
    /// Also route through `underlay` (agent mode, as calico-node's host does: workloads reach
    /// destinations outside the cluster by the host's routes). In file mode the configuration
    /// is the whole routing.
    pub route_underlay: bool,
    /// Prefixes to drop (the node's own IPAM blocks; workloads' /32s inside them win).
    pub blackholes: &'a [crate::host::Ipv4Prefix],
}

/// A snapshot and the entries that could not go into it (each named in its error), so that
/// one bad route or duplicated address does not keep every other change out.
pub struct BuiltTables {
    pub tables: Tables,
    pub rejected: Vec<ProgrammeError>,
}
