//! The snapshot builder: every route the configuration and the interfaces call for, in the
//! order that lets later ones replace earlier ones for the same prefix.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use fastpath::tables::Encap;
use fastpath::{Fib, NextHop, NextHopKind, PortId, Tables};

use super::first_hop::{first_hop_to, on_link};
use super::ports::free_slot;
use super::{BuiltTables, ProgrammeError, Routing, WORKLOAD_GATEWAY};
use crate::config::RouteEncap;

/// Builds one snapshot. Never fails as a whole: entries that cannot be routed are returned in
/// `rejected`.
pub fn tables(routing: &Routing) -> BuiltTables {
    let mut fib = Fib::new();
    let mut next_hops = Vec::new();
    let mut rejected = Vec::new();
    let mut add_route = |prefix: Ipv4Addr, len: u8, nh: NextHop| -> Result<(), ProgrammeError> {
        let id = next_hops.len() as u32;
        fib.insert(prefix, len, id)
            .map_err(|e| ProgrammeError::Fib {
                prefix: format!("{prefix}/{len}"),
                reason: e.to_string(),
            })?;
        next_hops.push(nh);
        Ok(())
    };
    let port_name = |id: PortId| {
        routing
            .ports
            .get(usize::from(id))
            .and_then(Option::as_ref)
            .map_or_else(|| format!("port {id}"), |p| p.name.clone())
    };

    // A /32 per workload address, delivered to the workload's MAC (learned by ARP). The first
    // workload to claim an address keeps it.
    let mut owners: HashMap<Ipv4Addr, PortId> = HashMap::new();
    for (port, ips) in &routing.workloads {
        for ip in ips.iter() {
            if let Some(owner) = owners.get(ip) {
                rejected.push(ProgrammeError::DuplicateAddress {
                    ip: *ip,
                    interface: port_name(*port),
                    owner: port_name(*owner),
                });
                continue;
            }
            match add_route(*ip, 32, NextHop::new(NextHopKind::Neighbor, *port, *ip)) {
                Ok(()) => {
                    owners.insert(*ip, *port);
                }
                Err(e) => rejected.push(e),
            }
        }
    }
    // The node's own addresses and the workloads' gateway go to the slow path.
    if let Err(e) = add_route(
        WORKLOAD_GATEWAY,
        32,
        NextHop::new(NextHopKind::Local, 0, WORKLOAD_GATEWAY),
    ) {
        rejected.push(e);
    }
    if let Some((id, addrs)) = routing.uplink {
        for (ip, _) in addrs {
            if let Err(e) = add_route(*ip, 32, NextHop::new(NextHopKind::Local, id, *ip)) {
                rejected.push(e);
            }
        }
    }
    // The host's connected routes and its routes through gateways, first, so that configured
    // and learned routes for the same prefix replace them.
    if let (true, Some((id, addrs))) = (routing.route_underlay, routing.uplink) {
        // The uplink's own subnets, as the kernel's connected routes: workloads reach any
        // host there (not only other nodes), each destination being its own neighbour. (A
        // /0 is no subnet: the host's default route is a gateway route.)
        for &(ip, len) in addrs.iter().filter(|(_, len)| (1..32).contains(len)) {
            let network = Ipv4Addr::from(u32::from(ip) & (u32::MAX << (32 - len)));
            if let Err(e) = add_route(network, len, NextHop::connected(id, network)) {
                rejected.push(e);
            }
        }
        for r in routing
            .underlay
            .iter()
            .filter(|r| on_link(addrs, r.gateway))
        {
            if let Err(e) = add_route(
                r.prefix.addr(),
                r.prefix.len(),
                NextHop::remote(id, r.gateway, Encap::None),
            ) {
                rejected.push(e);
            }
        }
    }
    // Static routes: through gateways or to other nodes on the uplink's subnet, or into IPIP
    // tunnels to other nodes; the nodes tunnelled to become known nodes.
    let mut tunnel_peers: Vec<(Ipv4Addr, Ipv4Addr)> = Vec::new();
    for r in routing.routes {
        let reject = |reason: String| ProgrammeError::Route {
            prefix: r.prefix.to_string(),
            via: r.via,
            reason,
        };
        let Some((id, addrs)) = routing.uplink else {
            rejected.push(reject("there is no uplink to reach the gateway on".into()));
            continue;
        };
        let next_hop = match r.encap {
            RouteEncap::None => {
                let Some(first_hop) = first_hop_to(addrs, routing, r.via) else {
                    rejected.push(reject(format!(
                        "gateway is neither on a subnet of uplink {} nor reached through a route of the kernel or the configuration",
                        port_name(id)
                    )));
                    continue;
                };
                NextHop::remote(id, first_hop, Encap::None)
            }
            RouteEncap::Ipip => {
                let Some(&(local, _)) = addrs.first() else {
                    rejected.push(reject(format!(
                        "uplink {} has no address to tunnel from",
                        port_name(id)
                    )));
                    continue;
                };
                let Some(first_hop) = first_hop_to(addrs, routing, r.via) else {
                    rejected.push(reject(format!(
                        "tunnel end is neither on a subnet of uplink {} nor reached through a route of the kernel or an unencapsulated static route",
                        port_name(id)
                    )));
                    continue;
                };
                if !tunnel_peers.iter().any(|(peer, _)| *peer == r.via) {
                    tunnel_peers.push((r.via, first_hop));
                }
                NextHop::remote(
                    id,
                    first_hop,
                    Encap::Ipip {
                        local,
                        remote: r.via,
                    },
                )
            }
        };
        if let Err(e) = add_route(r.prefix.addr(), r.prefix.len(), next_hop) {
            rejected.push(e);
        }
    }
    // A /32 to each known node marks it as a source IPIP is accepted from (the pipeline asks
    // the FIB). A route the configuration gives for exactly that address wins, unmarked.
    if let Some((id, addrs)) = routing.uplink {
        let configured = |ip: Ipv4Addr| {
            routing
                .routes
                .iter()
                .any(|r| r.prefix.len() == 32 && r.prefix.addr() == ip)
        };
        for &(peer, first_hop) in &tunnel_peers {
            if !configured(peer) {
                if let Err(e) = add_route(peer, 32, NextHop::tunnel_peer(id, first_hop)) {
                    rejected.push(e);
                }
            }
        }
        // Agent mode: the other nodes on the uplink's subnet that routes go through are
        // reachable themselves (a workload talking to another node's address), as through
        // the host's own connected route in Calico.
        if routing.route_underlay {
            let mut neighbours: Vec<Ipv4Addr> = Vec::new();
            for r in routing
                .routes
                .iter()
                .filter(|r| r.encap == RouteEncap::None && on_link(addrs, r.via))
            {
                let known = tunnel_peers.iter().any(|(peer, _)| *peer == r.via)
                    || addrs.iter().any(|(own, _)| *own == r.via);
                if !known && !configured(r.via) && !neighbours.contains(&r.via) {
                    neighbours.push(r.via);
                }
            }
            for via in neighbours {
                if let Err(e) = add_route(via, 32, NextHop::remote(id, via, Encap::None)) {
                    rejected.push(e);
                }
            }
        }
    }

    for b in routing.blackholes {
        if let Err(e) = add_route(
            b.addr(),
            b.len(),
            NextHop::new(NextHopKind::Blackhole, 0, b.addr()),
        ) {
            rejected.push(e);
        }
    }

    let ports = routing
        .ports
        .iter()
        .map(|p| p.clone().unwrap_or_else(free_slot))
        .collect();
    BuiltTables {
        tables: Tables {
            fib,
            next_hops,
            ports,
            snat: None,
            floating: Default::default(),
            host: None,
        },
        rejected,
    }
}
