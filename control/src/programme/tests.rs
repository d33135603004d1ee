//! The programme from node.toml text and fake interface facts, and the snapshot builder
//! driven directly for agent-mode inputs (holes, the kernel's routes, blackholes).

use std::net::Ipv4Addr;

use fastpath::tables::Encap;
use fastpath::{MacAddr, NextHop, NextHopKind, PortId, PortInfo, PortKind, Tables};

use super::{port_info, tables, ProgrammeError, Routing, WORKLOAD_GATEWAY};
use crate::config::{NodeConfig, RouteConfig, RouteEncap};
use crate::host::{InterfaceError, InterfaceFacts};

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
        &config("[[route]]\nprefix = \"192.168.3.0/26\"\nvia = \"10.50.0.7\"\nencap = \"ipip\""),
        fake,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("192.168.3.0/26") && err.contains("10.50.0.7") && err.contains("tunnel end"),
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
fn in_agent_mode_the_uplinks_subnet_and_the_nodes_routes_go_through_are_reachable() {
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
    let connected = nh(Ipv4Addr::new(10, 99, 0, 9)).expect("other hosts of the subnet");
    assert_eq!(
        (connected.kind, connected.port, connected.connected),
        (NextHopKind::Neighbor, 0, true),
        "go by the uplink's connected route, each to its own address"
    );
    assert!(
        !to_plain.connected && nh(Ipv4Addr::new(10, 98, 0, 9)).is_none(),
        "the connected route covers the uplink's subnet only"
    );
    assert!(
        build(false)
            .tables
            .fib
            .lookup(u32::from(Ipv4Addr::new(10, 99, 0, 9)))
            .is_none(),
        "file mode has no connected route"
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
