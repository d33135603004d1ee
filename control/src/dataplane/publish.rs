//! Building and publishing the tables the threads read: the ports at their ids (with their
//! policy programs and rate limiters), the routes `programme` makes of them, NAT outgoing, the
//! way to the node's stack, and the neighbour MACs already resolved.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use fastpath::classifier::{Cidr, ClassifierBuilder, EndpointRules};
use fastpath::policy::EndpointPolicy;
use fastpath::tables::{FloatingIps, HostPath, SnatRules};
use fastpath::{MacAddr, NextHopKind, PortId, PortInfo, PortKind, Tables};

use super::ports::LivePort;
use super::{refused, ApplyReport, Dataplane, DesiredState};
use crate::host::Ipv4Prefix;
use crate::programme::{self, Routing};

impl Dataplane {
    /// Builds and publishes tables for the live ports plus `fresh`, with the MACs already
    /// resolved carried over; rejected entries go into `report`.
    pub(super) fn publish(
        &mut self,
        desired: &DesiredState,
        fresh: &[LivePort],
        report: &mut ApplyReport,
    ) {
        let all: Vec<&LivePort> = self.ports.values().chain(fresh.iter()).collect();
        let slots = all.iter().map(|p| usize::from(p.id) + 1).max().unwrap_or(0);
        let mut infos: Vec<Option<PortInfo>> = vec![None; slots];
        for p in &all {
            let mut info = p.info.clone();
            if info.kind == PortKind::Workload && desired.enforce_policy {
                let program = desired.policies.get(&info.name).map(|h| h.0.clone());
                info.policy = Some(program.unwrap_or_else(|| self.deny_all.clone()));
            }
            infos[usize::from(p.id)] = Some(info);
        }
        self.limiters.assign(desired, &mut infos);
        let uplink = all.iter().find(|p| p.info.kind == PortKind::Uplink);
        // Workloads in the desired order, so that a duplicated address stays with the first.
        let by_name: HashMap<&str, &LivePort> =
            all.iter().map(|p| (p.info.name.as_str(), *p)).collect();
        let workloads = desired
            .workloads
            .iter()
            .filter_map(|w| by_name.get(w.interface.as_str()))
            .filter(|p| p.info.kind == PortKind::Workload)
            .map(|p| (p.id, p.ips.as_slice()))
            .collect();
        // Read at every publish: cheap, and the host's routes may change under us.
        let underlay = uplink
            .map(|p| crate::host::gateway_routes(&p.info.name))
            .unwrap_or_default();
        self.underlay = underlay.clone();
        let mut built = programme::tables(&Routing {
            ports: &infos,
            workloads,
            uplink: uplink.map(|p| (p.id, p.addrs.as_slice())),
            routes: &desired.routes,
            underlay: &underlay,
            route_underlay: desired.route_underlay,
            blackholes: &desired.blackholes,
        });
        built.tables.snat = snat_rules(
            desired,
            uplink.and_then(|p| p.addrs.first()).map(|(ip, _)| *ip),
        );
        built.tables.floating = FloatingIps::new(desired.floating_ips.iter().copied());
        built.tables.host = self
            .host_kernel_end
            .as_ref()
            .and_then(|kernel| host_path(desired, &all, kernel.mac));
        for e in built.rejected {
            let item = match &e {
                programme::ProgrammeError::Route { prefix, .. } => prefix.clone(),
                programme::ProgrammeError::DuplicateAddress { ip, .. } => ip.to_string(),
                programme::ProgrammeError::Fib { prefix, .. } => prefix.clone(),
                other => other.to_string(),
            };
            let failure = refused(&item, e.to_string());
            if !report.failures.contains(&failure) {
                report.failures.push(failure);
            }
        }
        carry_over_macs(&self.tables.load(), &built.tables);
        let snat = built
            .tables
            .snat
            .as_ref()
            .map(|r| (r.node, fastpath::policy::NAT_PORTS));
        self.tables.store(Arc::new(built.tables));
        if self.snat.as_ref() != Some(&snat) {
            match self.program.set_snat(snat.clone()) {
                Ok(()) => self.snat = Some(snat),
                Err(e) => report.failures.push(refused("natOutgoing", e.to_string())),
            }
        }
    }
}

/// Copies every resolved neighbour MAC of `old` into the next hops of `new` that deliver to
/// the same address out of the same port.
fn carry_over_macs(old: &Tables, new: &Tables) {
    let known: HashMap<(PortId, Ipv4Addr), MacAddr> = old
        .next_hops
        .iter()
        .filter(|nh| nh.kind == NextHopKind::Neighbor)
        .filter_map(|nh| nh.mac().map(|m| ((nh.port, nh.ip), m)))
        .collect();
    for nh in new
        .next_hops
        .iter()
        .filter(|nh| nh.kind == NextHopKind::Neighbor)
    {
        if let Some(mac) = known.get(&(nh.port, nh.ip)) {
            nh.set_mac(Some(*mac));
        }
    }
}

/// NAT outgoing for the tables: from the NAT pools, to outside every pool, as `node` (the
/// uplink's address); none without NAT pools or an address.
fn snat_rules(desired: &DesiredState, node: Option<Ipv4Addr>) -> Option<SnatRules> {
    let node = node?;
    if desired.nat_pools.is_empty() {
        return None;
    }
    let cidr = |p: &Ipv4Prefix| Cidr::from(*p);
    Some(SnatRules {
        node,
        nat_pools: desired.nat_pools.iter().map(cidr).collect(),
        pools: desired.pools.iter().map(cidr).collect(),
    })
}

/// The way to the node's stack when both its ports are in `ports`, with the host endpoint's
/// programs when one is wanted.
fn host_path(desired: &DesiredState, ports: &[&LivePort], kernel_mac: MacAddr) -> Option<HostPath> {
    let port = ports.iter().find(|p| p.info.kind == PortKind::Host)?;
    let uplink = ports.iter().find(|p| p.info.kind == PortKind::Uplink)?;
    let policy = desired.host_endpoint.as_ref().map(|h| h.policy.0.clone());
    Some(HostPath {
        port: port.id,
        uplink: uplink.id,
        kernel_mac,
        policy,
    })
}

/// The program of a policed workload nobody compiled one for: nothing in, nothing out.
pub(super) fn deny_all_policy() -> EndpointPolicy {
    let builder = ClassifierBuilder::default();
    let deny = || {
        builder
            .compile(&EndpointRules::default())
            .expect("an empty rule set always compiles")
    };
    EndpointPolicy {
        ingress: deny(),
        egress: deny(),
        generation: 0,
        to_host: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastpath::NextHop;

    #[test]
    fn resolved_macs_carry_over_to_the_same_port_and_address_only() {
        let ip = Ipv4Addr::new(192, 168, 0, 5);
        let mac: MacAddr = "02:00:00:00:00:05".parse().unwrap();
        let old = Tables {
            next_hops: vec![NextHop::new(NextHopKind::Neighbor, 3, ip)],
            ..Tables::default()
        };
        old.next_hops[0].set_mac(Some(mac));
        let new = Tables {
            next_hops: vec![
                NextHop::new(NextHopKind::Neighbor, 4, ip),
                NextHop::new(NextHopKind::Neighbor, 3, ip),
                NextHop::new(NextHopKind::Neighbor, 3, Ipv4Addr::new(192, 168, 0, 6)),
            ],
            ..Tables::default()
        };
        carry_over_macs(&old, &new);
        assert_eq!(new.next_hops[0].mac(), None, "another port");
        assert_eq!(new.next_hops[1].mac(), Some(mac));
        assert_eq!(new.next_hops[2].mac(), None, "another address");
    }
}
