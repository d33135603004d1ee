//! The ports of a snapshot: how an interface speaks, and what fills a slot without one.

use std::net::Ipv4Addr;

use fastpath::{MacAddr, PortInfo, PortKind};

use super::WORKLOAD_GATEWAY;
use crate::host::InterfaceFacts;

/// The `PortInfo` for an interface: workloads speak as `ee:ee:ee:ee:ee:ee` from 169.254.1.1,
/// the uplink with its own MAC from its first address.
pub fn port_info(f: &InterfaceFacts, kind: PortKind) -> PortInfo {
    // Workload ports always speak as ee:ee:ee:ee:ee:ee, whatever the veth reports, because that
    // is the MAC the workload has learned for its gateway.
    let (mac, ip) = match kind {
        PortKind::Workload => (MacAddr::CALICO_HOST_SIDE, WORKLOAD_GATEWAY),
        PortKind::Uplink => (
            f.mac,
            f.addrs.first().map_or(Ipv4Addr::UNSPECIFIED, |(ip, _)| *ip),
        ),
        // Frames to the node's stack keep the source the sender gave them.
        PortKind::Host => (f.mac, Ipv4Addr::UNSPECIFIED),
    };
    PortInfo {
        name: f.name.clone(),
        ifindex: f.ifindex,
        kind,
        mac,
        ip,
        mtu: f.mtu,
        policy: None,
        qos: None,
    }
}

/// What stands in `Tables::ports` for a slot without a port: no route points at it, and its
/// unspecified address is nobody's.
pub(super) fn free_slot() -> PortInfo {
    PortInfo {
        name: String::new(),
        ifindex: 0,
        kind: PortKind::Workload,
        mac: MacAddr::CALICO_HOST_SIDE,
        ip: Ipv4Addr::UNSPECIFIED,
        mtu: 0,
        policy: None,
        qos: None,
    }
}
