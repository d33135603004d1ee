//! The dataplane programme: what the fastpath tables must hold for a given configuration.
//!
//! A pure function of the configuration and the facts about the interfaces, so that it is
//! tested without any interface existing. Port ids: workloads in configuration order, then the
//! uplink.

use std::net::Ipv4Addr;

use fastpath::{Fib, MacAddr, NextHop, NextHopKind, PortId, PortInfo, PortKind, Tables};

use crate::config::NodeConfig;
use crate::host::InterfaceFacts;

/// The gateway address every workload routes through; nobody owns it, the node answers ARP
/// for it (see MISSION.md, "How a workload is wired").
pub const WORKLOAD_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// A port with the facts needed to open it.
#[derive(Clone, Debug)]
pub struct PortPlan {
    pub id: PortId,
    pub info: PortInfo,
    pub queues: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ProgrammeError {
    #[error("{0}")]
    Interface(#[from] crate::host::InterfaceError),
    #[error("too many ports ({0}); at most {max}", max = PortId::MAX)]
    TooManyPorts(usize),
    #[error("route {prefix} via {via}: {reason}")]
    Route { prefix: String, via: Ipv4Addr, reason: String },
    #[error("FIB refused {prefix}: {reason}")]
    Fib { prefix: String, reason: String },
}

/// The tables and the ports they refer to.
pub struct Programme {
    pub tables: Tables,
    pub ports: Vec<PortPlan>,
    /// The node's own address on the uplink, the source of its ICMP errors.
    pub node_ip: Option<Ipv4Addr>,
}

pub fn build(
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
        ports.push(plan(ports.len(), &f, PortKind::Workload, WORKLOAD_GATEWAY));
    }
    let mut uplink = None;
    let mut node_ip = None;
    if let Some(name) = &config.uplink {
        let f = facts(name)?;
        node_ip = f.addrs.first().map(|(ip, _)| *ip);
        let id = ports.len() as PortId;
        ports.push(plan(ports.len(), &f, PortKind::Uplink, node_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)));
        uplink = Some((id, f));
    }

    let mut fib = Fib::new();
    let mut next_hops = Vec::new();
    let mut add_route = |prefix: Ipv4Addr, len: u8, nh: NextHop| -> Result<(), ProgrammeError> {
        let id = next_hops.len() as u32;
        next_hops.push(nh);
        fib.insert(prefix, len, id)
            .map(|_| ())
            .map_err(|e| ProgrammeError::Fib { prefix: format!("{prefix}/{len}"), reason: e.to_string() })
    };

    // A /32 per workload address, delivered to the workload's MAC (learned by ARP).
    for (port, w) in config.workloads.iter().enumerate() {
        for ip in &w.ips {
            add_route(*ip, 32, NextHop::new(NextHopKind::Neighbor, port as PortId, *ip))?;
        }
    }
    // The node's own addresses and the workloads' gateway go to the slow path.
    add_route(WORKLOAD_GATEWAY, 32, NextHop::new(NextHopKind::Local, 0, WORKLOAD_GATEWAY))?;
    if let Some((id, f)) = &uplink {
        for (ip, _) in &f.addrs {
            add_route(*ip, 32, NextHop::new(NextHopKind::Local, *id, *ip))?;
        }
    }
    // Static routes through gateways on the uplink's subnet.
    for r in &config.routes {
        let Some((id, f)) = &uplink else { unreachable!("config validation requires an uplink for routes") };
        let on_link = f.addrs.iter().any(|(ip, len)| {
            let m = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(*ip) & m == u32::from(r.via) & m
        });
        if !on_link {
            return Err(ProgrammeError::Route {
                prefix: r.prefix.to_string(),
                via: r.via,
                reason: format!("gateway is not on a subnet of uplink {}", f.name),
            });
        }
        add_route(r.prefix.addr, r.prefix.len, NextHop::new(NextHopKind::Neighbor, *id, r.via))?;
    }

    let tables = Tables { fib, next_hops, ports: ports.iter().map(|p| p.info.clone()).collect() };
    Ok(Programme { tables, ports, node_ip })
}

fn plan(id: usize, f: &InterfaceFacts, kind: PortKind, ip: Ipv4Addr) -> PortPlan {
    // Workload ports always speak as ee:ee:ee:ee:ee:ee, whatever the veth reports, because that
    // is the MAC the workload has learned for its gateway.
    let mac = if kind == PortKind::Workload { MacAddr::CALICO_HOST_SIDE } else { f.mac };
    PortPlan {
        id: id as PortId,
        info: PortInfo { name: f.name.clone(), ifindex: f.ifindex, kind, mac, ip, mtu: f.mtu },
        queues: f.queues,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::InterfaceError;

    fn fake(name: &str) -> Result<InterfaceFacts, InterfaceError> {
        let addrs = if name == "eth0" { vec![(Ipv4Addr::new(10, 99, 0, 1), 24)] } else { vec![] };
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
        assert_eq!((nh.kind, nh.port, nh.ip), (NextHopKind::Neighbor, 1, Ipv4Addr::new(192, 168, 0, 3)));
        assert!(next_hop(&p, [192, 168, 0, 4]).is_none(), "no route for unassigned pool addresses");
        assert_eq!(next_hop(&p, [169, 254, 1, 1]).unwrap().kind, NextHopKind::Local);
        assert_eq!(next_hop(&p, [10, 99, 0, 1]).unwrap().kind, NextHopKind::Local);
    }

    #[test]
    fn static_routes_go_through_the_uplink_gateway() {
        let p = build(&config("[[route]]\nprefix = \"10.99.0.0/24\"\nvia = \"10.99.0.2\""), fake).unwrap();
        let nh = next_hop(&p, [10, 99, 0, 77]).unwrap();
        assert_eq!((nh.kind, nh.port, nh.ip), (NextHopKind::Neighbor, 2, Ipv4Addr::new(10, 99, 0, 2)));
    }

    #[test]
    fn off_link_gateway_is_refused_with_the_route_named() {
        let err = build(&config("[[route]]\nprefix = \"10.5.0.0/16\"\nvia = \"172.16.0.1\""), fake)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("10.5.0.0/16") && err.contains("172.16.0.1"), "{err}");
    }

    #[test]
    fn missing_interface_is_named() {
        let err = build(&config(""), |n: &str| {
            if n == "caliBB" { Err(InterfaceError::Missing(n.into())) } else { fake(n) }
        })
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("caliBB"), "{err}");
    }
}
