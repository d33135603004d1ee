//! The dataplane programme: what the fastpath tables must hold for a given configuration.
//!
//! Pure functions of the configuration and the facts about the interfaces, so that they are
//! tested without any interface existing. [`tables`] builds a snapshot for ports at whatever
//! ids the live dataplane gave them (ids are stable for a port's life, so slots of removed
//! ports are holes).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use fastpath::tables::Encap;
use fastpath::{Fib, MacAddr, NextHop, NextHopKind, PortId, PortInfo, PortKind, Tables};

use crate::config::{RouteConfig, RouteEncap};
use crate::host::InterfaceFacts;

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
    }
}

/// What stands in `Tables::ports` for a slot without a port: no route points at it, and its
/// unspecified address is nobody's.
fn free_slot() -> PortInfo {
    PortInfo {
        name: String::new(),
        ifindex: 0,
        kind: PortKind::Workload,
        mac: MacAddr::CALICO_HOST_SIDE,
        ip: Ipv4Addr::UNSPECIFIED,
        mtu: 0,
        policy: None,
    }
}

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
    // The host's routes through gateways, first, so that configured and learned routes for the
    // same prefix replace them.
    if let (true, Some((id, addrs))) = (routing.route_underlay, routing.uplink) {
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
            host: None,
        },
        rejected,
    }
}

/// Whether `ip` is on one of the uplink's subnets.
fn on_link(addrs: &[(Ipv4Addr, u8)], ip: Ipv4Addr) -> bool {
    addrs.iter().any(|(own, len)| {
        let m = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
        u32::from(*own) & m == u32::from(ip) & m
    })
}

/// The neighbour on the uplink that packets to `node` go to: `node` itself on the uplink's
/// subnet, else the gateway of the longest route covering it, among the unencapsulated
/// static routes and the kernel's gateway routes (one level of recursion, RFC 1812 section
/// 5.2.1 style), if that gateway is on the subnet. A static route wins a tie.
fn first_hop_to(addrs: &[(Ipv4Addr, u8)], routing: &Routing, node: Ipv4Addr) -> Option<Ipv4Addr> {
    if on_link(addrs, node) {
        return Some(node);
    }
    let configured = routing
        .routes
        .iter()
        .filter(|r| r.encap == RouteEncap::None)
        .map(|r| (r.prefix, r.via, 1));
    let kernel = routing.underlay.iter().map(|r| (r.prefix, r.gateway, 0));
    configured
        .chain(kernel)
        .filter(|(prefix, via, _)| prefix.contains(node) && *via != node && on_link(addrs, *via))
        .max_by_key(|(prefix, _, configured)| (prefix.len(), *configured))
        .map(|(_, via, _)| via)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeConfig;
    // The whole configuration at once, ports numbered from 0 (workloads, then the uplink),
    // any rejected entry an error: a compact way to drive `tables` from node.toml text.

    /// A port with the facts needed to open it.
    #[derive(Clone, Debug)]
    struct PortPlan {
        info: PortInfo,
    }

    /// The tables and the ports they refer to.
    struct Programme {
        tables: Tables,
        ports: Vec<PortPlan>,
        /// The node's own address on the uplink, the source of its ICMP errors.
        node_ip: Option<Ipv4Addr>,
    }

    /// The whole programme for a configuration, ports numbered from 0; any entry that cannot be
    /// routed is an error.
    fn build(
        config: &NodeConfig,
        mut facts: impl FnMut(&str) -> Result<InterfaceFacts, crate::host::InterfaceError>,
    ) -> Result<Programme, ProgrammeError> {
        let mut ports = Vec::new();
        let port_count = config.workloads.len() + usize::from(config.uplink.is_some());
        if port_count > PortId::MAX as usize {
            return Err(ProgrammeError::TooManyPorts(port_count));
        }
        for w in &config.workloads {
            let f = facts(&w.interface)?;
            ports.push(PortPlan {
                info: port_info(&f, PortKind::Workload),
            });
        }
        let mut uplink = None;
        let mut node_ip = None;
        if let Some(name) = &config.uplink {
            let f = facts(name)?;
            node_ip = f.addrs.first().map(|(ip, _)| *ip);
            let id = ports.len() as PortId;
            ports.push(PortPlan {
                info: port_info(&f, PortKind::Uplink),
            });
            uplink = Some((id, f.addrs));
        }

        let infos: Vec<Option<PortInfo>> = ports.iter().map(|p| Some(p.info.clone())).collect();
        let routing = Routing {
            ports: &infos,
            workloads: config
                .workloads
                .iter()
                .enumerate()
                .map(|(i, w)| (i as PortId, w.ips.as_slice()))
                .collect(),
            uplink: uplink.as_ref().map(|(id, addrs)| (*id, addrs.as_slice())),
            routes: &config.routes,
            underlay: &[],
            route_underlay: false,
            blackholes: &[],
        };
        let built = tables(&routing);
        if let Some(first) = built.rejected.into_iter().next() {
            return Err(first);
        }
        Ok(Programme {
            tables: built.tables,
            ports,
            node_ip,
        })
    }

    use crate::host::InterfaceError;

    fn fake(name: &str) -> Result<InterfaceFacts, InterfaceError> {
        let addrs = if name == "eth0" {
            vec![(Ipv4Addr::new(10, 99, 0, 1), 24)]
        } else {
            vec![]
        };
        Ok(InterfaceFacts {
            name: name.into(),
            ifindex: 10 + name.len() as u32,
            mac: "02:00:00:00:00:01".parse().unwrap(),
            mtu: 1500,
            queues: 1,
            addrs,
        })
    }

    fn config(extra: &str) -> NodeConfig {
        NodeConfig::parse(&format!(
            "mode = \"interrupt\"\nuplink = \"eth0\"\n{extra}\n[[workload]]\ninterface = \"caliA\"\nips = [\"192.168.0.1\"]\n[[workload]]\ninterface = \"caliBB\"\nips = [\"192.168.0.2\", \"192.168.0.3\"]\n"
        ))
        .unwrap()
    }

    fn next_hop(p: &Programme, ip: [u8; 4]) -> Option<&NextHop> {
        let id = p.tables.fib.lookup(u32::from(Ipv4Addr::from(ip)))?;
        p.tables.next_hops.get(id as usize)
    }

    #[test]
    fn workloads_get_ports_and_host_routes() {
        let p = build(&config(""), fake).unwrap();
        assert_eq!(p.ports.len(), 3);
        assert_eq!(p.ports[0].info.mac, MacAddr::CALICO_HOST_SIDE);
        assert_eq!(p.ports[0].info.ip, WORKLOAD_GATEWAY);
        assert_eq!(p.ports[2].info.kind, PortKind::Uplink);
        assert_eq!(p.node_ip, Some(Ipv4Addr::new(10, 99, 0, 1)));
        let nh = next_hop(&p, [192, 168, 0, 3]).unwrap();
        assert_eq!(
            (nh.kind, nh.port, nh.ip),
            (NextHopKind::Neighbor, 1, Ipv4Addr::new(192, 168, 0, 3))
        );
        assert!(
            next_hop(&p, [192, 168, 0, 4]).is_none(),
            "no route for unassigned pool addresses"
        );
        assert_eq!(
            next_hop(&p, [169, 254, 1, 1]).unwrap().kind,
            NextHopKind::Local
        );
        assert_eq!(
            next_hop(&p, [10, 99, 0, 1]).unwrap().kind,
            NextHopKind::Local
        );
    }

    #[test]
    fn static_routes_go_through_the_uplink_gateway() {
        let p = build(
            &config("[[route]]\nprefix = \"10.99.0.0/24\"\nvia = \"10.99.0.2\""),
            fake,
        )
        .unwrap();
        let nh = next_hop(&p, [10, 99, 0, 77]).unwrap();
        assert_eq!(
            (nh.kind, nh.port, nh.ip),
            (NextHopKind::Neighbor, 2, Ipv4Addr::new(10, 99, 0, 2))
        );
    }

    #[test]
    fn ipip_routes_tunnel_to_the_node_and_make_it_a_known_node() {
        let p = build(
            &config(
                "[[route]]\nprefix = \"192.168.1.0/26\"\nvia = \"10.99.0.2\"\nencap = \"ipip\"\n\
                 [[route]]\nprefix = \"192.168.2.0/26\"\nvia = \"10.99.0.3\"",
            ),
            fake,
        )
        .unwrap();
        let (node, peer) = (Ipv4Addr::new(10, 99, 0, 1), Ipv4Addr::new(10, 99, 0, 2));
        let nh = next_hop(&p, [192, 168, 1, 9]).unwrap();
        assert_eq!(
            (nh.kind, nh.port, nh.ip),
            (NextHopKind::Neighbor, 2, peer),
            "frames go to the peer's MAC"
        );
        assert_eq!(
            nh.encap,
            Encap::Ipip {
                local: node,
                remote: peer
            }
        );
        let plain = next_hop(&p, [192, 168, 2, 9]).unwrap();
        assert_eq!(
            (plain.ip, plain.encap),
            (Ipv4Addr::new(10, 99, 0, 3), Encap::None)
        );
        assert!(
            p.tables.is_tunnel_peer(peer),
            "the ipip via is a known node"
        );
        assert!(
            !p.tables.is_tunnel_peer(Ipv4Addr::new(10, 99, 0, 3)),
            "a plain via is not"
        );
        assert!(!p.tables.is_tunnel_peer(Ipv4Addr::new(10, 99, 0, 77)));
        let to_peer = next_hop(&p, [10, 99, 0, 2]).unwrap();
        assert_eq!(
            (to_peer.ip, to_peer.encap),
            (peer, Encap::None),
            "the node itself is reached directly"
        );
    }

    #[test]
    fn a_tunnel_to_another_subnet_goes_through_the_gateway_of_a_static_route() {
        let p = build(
            &config(
                "[[route]]\nprefix = \"10.50.0.0/24\"\nvia = \"10.99.0.254\"\n\
                 [[route]]\nprefix = \"192.168.3.0/26\"\nvia = \"10.50.0.7\"\nencap = \"ipip\"",
            ),
            fake,
        )
        .unwrap();
        let nh = next_hop(&p, [192, 168, 3, 1]).unwrap();
        assert_eq!(
            nh.ip,
            Ipv4Addr::new(10, 99, 0, 254),
            "frames go to the router"
        );
        assert_eq!(
            nh.encap,
            Encap::Ipip {
                local: Ipv4Addr::new(10, 99, 0, 1),
                remote: Ipv4Addr::new(10, 50, 0, 7)
            }
        );
        assert!(p.tables.is_tunnel_peer(Ipv4Addr::new(10, 50, 0, 7)));

        let err = build(
            &config(
                "[[route]]\nprefix = \"192.168.3.0/26\"\nvia = \"10.50.0.7\"\nencap = \"ipip\"",
            ),
            fake,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("192.168.3.0/26")
                && err.contains("10.50.0.7")
                && err.contains("tunnel end"),
            "{err}"
        );
    }

    #[test]
    fn next_hops_behind_a_router_are_reached_through_the_kernels_gateway_routes() {
        // Learned routes (BGP) name other nodes; one behind the router is reached the way the
        // host reaches it, through the kernel's route to its subnet.
        let up = fake("eth0").unwrap();
        let ports = vec![Some(port_info(&up, PortKind::Uplink))];
        let far = Ipv4Addr::new(10, 50, 0, 7);
        let routes = vec![
            RouteConfig {
                prefix: "192.168.3.0/26".parse().unwrap(),
                via: far,
                encap: RouteEncap::Ipip,
            },
            RouteConfig {
                prefix: "192.168.4.0/26".parse().unwrap(),
                via: far,
                encap: RouteEncap::None,
            },
        ];
        let underlay = [
            crate::host::GatewayRoute {
                prefix: "0.0.0.0/0".parse().unwrap(),
                gateway: Ipv4Addr::new(10, 99, 0, 253),
            },
            crate::host::GatewayRoute {
                prefix: "10.50.0.0/24".parse().unwrap(),
                gateway: Ipv4Addr::new(10, 99, 0, 254),
            },
        ];
        let built = tables(&Routing {
            ports: &ports,
            workloads: Vec::new(),
            uplink: Some((0, &up.addrs)),
            routes: &routes,
            underlay: &underlay,
            route_underlay: true,
            blackholes: &[],
        });
        assert!(
            built.rejected.is_empty(),
            "{:?}",
            built
                .rejected
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        );
        let hop = |ip: [u8; 4]| {
            let id = built
                .tables
                .fib
                .lookup(u32::from(Ipv4Addr::from(ip)))
                .unwrap();
            &built.tables.next_hops[id as usize]
        };
        let tunnelled = hop([192, 168, 3, 1]);
        assert_eq!(
            tunnelled.ip,
            Ipv4Addr::new(10, 99, 0, 254),
            "the longest kernel route's gateway"
        );
        assert_eq!(
            tunnelled.encap,
            Encap::Ipip {
                local: Ipv4Addr::new(10, 99, 0, 1),
                remote: far
            }
        );
        let plain = hop([192, 168, 4, 1]);
        assert_eq!(
            (plain.ip, plain.encap),
            (Ipv4Addr::new(10, 99, 0, 254), Encap::None),
            "a plain route recurses too"
        );
        // route_underlay: the host's routes are routes too, below every configured one.
        assert_eq!(
            hop([8, 8, 8, 8]).ip,
            Ipv4Addr::new(10, 99, 0, 253),
            "the host's default route"
        );
        assert_eq!(hop([10, 50, 0, 9]).ip, Ipv4Addr::new(10, 99, 0, 254));
    }

    #[test]
    fn in_agent_mode_the_nodes_routes_go_through_are_reachable_themselves() {
        let up = fake("eth0").unwrap();
        let ports = vec![Some(port_info(&up, PortKind::Uplink))];
        let (plain, tunnelled) = (Ipv4Addr::new(10, 99, 0, 2), Ipv4Addr::new(10, 99, 0, 3));
        let routes = vec![
            RouteConfig {
                prefix: "192.168.1.0/26".parse().unwrap(),
                via: plain,
                encap: RouteEncap::None,
            },
            RouteConfig {
                prefix: "192.168.5.0/26".parse().unwrap(),
                via: plain,
                encap: RouteEncap::None,
            },
            RouteConfig {
                prefix: "192.168.2.0/26".parse().unwrap(),
                via: tunnelled,
                encap: RouteEncap::Ipip,
            },
        ];
        let build = |route_underlay| {
            tables(&Routing {
                ports: &ports,
                workloads: Vec::new(),
                uplink: Some((0, &up.addrs)),
                routes: &routes,
                underlay: &[],
                route_underlay,
                blackholes: &[],
            })
        };
        let built = build(true);
        assert!(
            built.rejected.is_empty(),
            "{:?}",
            built
                .rejected
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        );
        let t = &built.tables;
        let nh = |ip: Ipv4Addr| {
            t.fib
                .lookup(u32::from(ip))
                .map(|id| &t.next_hops[id as usize])
        };
        let to_plain = nh(plain).expect("a /32 to the node behind the plain routes");
        assert_eq!(
            (
                to_plain.kind,
                to_plain.ip,
                to_plain.encap,
                to_plain.tunnel_peer
            ),
            (NextHopKind::Neighbor, plain, Encap::None, false)
        );
        assert!(
            nh(tunnelled).unwrap().tunnel_peer,
            "the tunnelled node keeps its known-node route"
        );
        assert!(
            nh(Ipv4Addr::new(10, 99, 0, 9)).is_none(),
            "other hosts of the subnet are not routed"
        );
        assert!(
            build(false).tables.fib.lookup(u32::from(plain)).is_none(),
            "file mode routes what the file says"
        );
    }

    #[test]
    fn off_link_gateway_is_refused_with_the_route_named() {
        let err = build(
            &config("[[route]]\nprefix = \"10.5.0.0/16\"\nvia = \"172.16.0.1\""),
            fake,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("10.5.0.0/16") && err.contains("172.16.0.1"),
            "{err}"
        );
    }

    #[test]
    fn ports_keep_their_ids_across_holes_and_bad_entries_are_rejected_alone() {
        let w = fake("caliA").unwrap();
        let up = fake("eth0").unwrap();
        // Slot 0 was freed; workloads sit at 1 and 3, the uplink at 2.
        let ports = vec![
            None,
            Some(port_info(&w, PortKind::Workload)),
            Some(port_info(&up, PortKind::Uplink)),
            Some(port_info(&w, PortKind::Workload)),
        ];
        let a = [Ipv4Addr::new(192, 168, 0, 1)];
        let b = [Ipv4Addr::new(192, 168, 0, 1), Ipv4Addr::new(192, 168, 0, 9)];
        let routes = vec![
            RouteConfig {
                prefix: "10.5.0.0/16".parse().unwrap(),
                via: Ipv4Addr::new(172, 16, 0, 1),
                encap: RouteEncap::None,
            },
            RouteConfig {
                prefix: "10.99.0.0/24".parse().unwrap(),
                via: Ipv4Addr::new(10, 99, 0, 2),
                encap: RouteEncap::None,
            },
        ];
        let built = tables(&Routing {
            ports: &ports,
            workloads: vec![(1, &a[..]), (3, &b[..])],
            uplink: Some((2, &up.addrs)),
            routes: &routes,
            underlay: &[],
            route_underlay: false,
            blackholes: &["192.168.0.0/26".parse().unwrap()],
        });
        let t = &built.tables;
        assert_eq!(t.ports.len(), 4);
        assert_eq!(t.ports[0].ifindex, 0, "a free slot is a placeholder");
        assert_eq!(t.ports[0].ip, Ipv4Addr::UNSPECIFIED);
        let nh = |ip: [u8; 4]| {
            t.fib
                .lookup(u32::from(Ipv4Addr::from(ip)))
                .map(|id| &t.next_hops[id as usize])
        };
        assert_eq!(
            nh([192, 168, 0, 1]).unwrap().port,
            1,
            "the first claimant keeps a duplicated address"
        );
        assert_eq!(nh([192, 168, 0, 9]).unwrap().port, 3);
        assert_eq!(
            nh([192, 168, 0, 10]).unwrap().kind,
            NextHopKind::Blackhole,
            "unused space of an own block"
        );
        assert_eq!(nh([10, 99, 0, 7]).unwrap().port, 2);
        assert!(nh([10, 5, 0, 1]).is_none());
        let errors: Vec<String> = built.rejected.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| e.contains("192.168.0.1") && e.contains("already routed")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("10.5.0.0/16") && e.contains("172.16.0.1")),
            "{errors:?}"
        );
    }

    #[test]
    fn missing_interface_is_named() {
        let err = build(&config(""), |n: &str| {
            if n == "caliBB" {
                Err(InterfaceError::Missing(n.into()))
            } else {
                fake(n)
            }
        })
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("caliBB"), "{err}");
    }
}
