//! The frame pipeline (`fastpath::pipeline`) as a worker runs it, with real tables built as
//! the pipeline tests build them: workload ports (one policed, one with a small MTU), an
//! uplink, next hops of every kind (resolved, unresolved, local, blackhole, a missing port,
//! IPIP to a node, plain to a node, a known tunnel peer, the uplink's connected subnet, a
//! default gateway), NAT outgoing for the pool, a floating IP and a flow table.
//!
//! The input is one Ethernet frame, received on each port in turn with one flow table (so
//! that a flow opened from one port is tracked when the frame comes from the next).
//!
//! Holds for every frame: it is counted once with exactly one fate
//! (`rx_packets == forwarded + punted + drops`, bytes counted as received); a forwarded
//! frame leaves from a port that exists with that port's MAC as source, an IPv4 header that
//! verifies, a TTL left, and a TCP or UDP checksum that still verifies if it verified on
//! arrival (NAT rewrites it); an encapsulated frame names an IPIP next hop on its port and
//! wraps into a well-formed outer header; a frame punted as unresolved names a next hop whose
//! MAC is not known.

use std::net::Ipv4Addr;
use std::sync::{Arc, LazyLock};

use fastpath::classifier::{
    protocol as proto, Action, Cidr, ClassifierBuilder, EndpointMatch, EndpointRules, IpSets,
    Policy, PortRange, Rule, Tier, TierDefaultAction,
};
use fastpath::conntrack::{FlowTable, FlowTableConfig};
use fastpath::pipeline::harness::process_counted_policed;
use fastpath::pipeline::{encapsulate_ipip, Policing};
use fastpath::policy::{EndpointPolicy, PolicyState};
use fastpath::tables::{FloatingIps, SnatRules};
use fastpath::wire::ethernet::{self, ethertype};
use fastpath::wire::ipv4::protocol;
use fastpath::wire::{EthernetPacket, Ipv4Packet, TcpPacket, UdpPacket};
use fastpath::{
    Encap, Fib, MacAddr, NextHop, NextHopKind, PipelineCounters, PortInfo, PortKind, PuntReason,
    Tables, Verdict,
};

const POLICED: u16 = 0;
const PLAIN: u16 = 1;
const UPLINK: u16 = 2;
const SMALL: u16 = 3;

const POLICED_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
const PLAIN_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 3);
const UNRESOLVED_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 4);
const SMALL_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 5);
const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 20);
const PLAIN_PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 30);
const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const FLOATING_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

const POLICED_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const PLAIN_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
const SMALL_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0c]);
const UPLINK_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 1]);
const PEER_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0x20]);
const PLAIN_PEER_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0x30]);
const GATEWAY_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0xfe]);

/// Room for the largest frame plus an IPIP header.
const MAX_FRAME: usize = 65_536;

static TABLES: LazyLock<Tables> = LazyLock::new(tables);
static NO_SETS: LazyLock<IpSets> = LazyLock::new(IpSets::default);

pub fn run(data: &[u8]) {
    if data.len() > MAX_FRAME - 20 {
        return;
    }
    let tables = &*TABLES;
    let mut state = PolicyState::new(FlowTable::new(FlowTableConfig::with_capacity(64)));
    let mut counters = PipelineCounters::default();
    let mut frame = Vec::with_capacity(data.len());
    for ingress in 0..tables.ports.len() as u16 {
        frame.clear();
        frame.extend_from_slice(data);
        let l4_before = l4_checksum_verifies(&frame);
        let before = counters.clone();
        let mut policing = Policing {
            sets: &NO_SETS,
            state: &mut state,
        };
        let outcome =
            process_counted_policed(&mut frame, ingress, tables, &mut counters, &mut policing);
        assert_eq!(frame.len(), data.len());

        // Counted once, with one fate.
        assert_eq!(counters.rx_packets, before.rx_packets + 1);
        assert_eq!(counters.rx_bytes, before.rx_bytes + data.len() as u64);
        assert_eq!(
            counters.rx_packets,
            counters.forwarded + counters.punted + counters.total_drops(),
            "{counters:?}"
        );
        assert_eq!(
            counters.ipip_decapsulated - before.ipip_decapsulated,
            u64::from(outcome.decapsulated())
        );

        assert!(outcome.start < frame.len().max(1), "{outcome:?}");
        let out = &frame[outcome.start..];
        match outcome.verdict {
            Verdict::Forward(port) => {
                let info = tables
                    .ports
                    .get(usize::from(port))
                    .expect("the egress port exists");
                let l4_after = well_formed(out, info.mac);
                if l4_before == Some(true) && !outcome.decapsulated() {
                    assert_eq!(l4_after, Some(true), "a valid L4 checksum was broken");
                }
            }
            Verdict::Encapsulate { port, next_hop } => {
                let nh = &tables.next_hops[next_hop as usize];
                assert_eq!(nh.port, port);
                let Encap::Ipip { local, remote } = nh.encap else {
                    panic!("encapsulated through {nh:?}");
                };
                let info = &tables.ports[usize::from(port)];
                well_formed(out, info.mac);
                let mut wrapped = vec![0u8; out.len() + 20];
                let len = encapsulate_ipip(out, local, remote, 0x4242, &mut wrapped)
                    .expect("a forwarded frame wraps");
                let outer = Ipv4Packet::new_checked(&wrapped[ethernet::HEADER_LEN..len])
                    .expect("the outer header parses");
                assert!(outer.verify_checksum());
                assert_eq!(outer.protocol(), protocol::IPIP);
                assert_eq!((outer.src_addr(), outer.dst_addr()), (local, remote));
            }
            Verdict::Punt(PuntReason::Unresolved(nh)) => {
                let nh = tables
                    .next_hops
                    .get(nh as usize)
                    .expect("the next hop exists");
                assert!(nh.mac().is_none() || nh.connected, "{nh:?}");
            }
            Verdict::Punt(_) | Verdict::Drop(_) => {}
        }
    }
}

/// Checks a frame about to leave from a port with MAC `src`; returns whether its TCP or UDP
/// checksum verifies (`None`: no such checksum to check).
fn well_formed(out: &[u8], src: MacAddr) -> Option<bool> {
    let eth = EthernetPacket::new_checked(out).expect("the Ethernet header is whole");
    assert_eq!(eth.src_addr(), src, "not the egress port's MAC");
    assert_eq!(eth.ethertype(), ethertype::IPV4);
    let ip = Ipv4Packet::new_checked(eth.payload()).expect("the IPv4 header parses");
    assert!(ip.verify_checksum(), "the IPv4 checksum does not verify");
    assert!(ip.ttl() >= 1);
    l4_verifies(&ip)
}

/// Whether the frame's TCP or UDP checksum verifies (`None`: not an unfragmented TCP or UDP
/// packet in a valid IPv4 header).
fn l4_checksum_verifies(frame: &[u8]) -> Option<bool> {
    let eth = EthernetPacket::new_checked(frame).ok()?;
    if eth.ethertype() != ethertype::IPV4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if !ip.verify_checksum() {
        return None;
    }
    l4_verifies(&ip)
}

fn l4_verifies(ip: &Ipv4Packet<&[u8]>) -> Option<bool> {
    if ip.is_fragment() {
        return None;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    match ip.protocol() {
        protocol::TCP => Some(
            TcpPacket::new_checked(ip.payload())
                .ok()?
                .verify_checksum(src, dst),
        ),
        protocol::UDP => Some(
            UdpPacket::new_checked(ip.payload())
                .ok()?
                .verify_checksum(src, dst),
        ),
        _ => None,
    }
}

fn program(rules: Vec<Rule>) -> fastpath::classifier::PolicyProgram {
    let rules = EndpointRules {
        tiers: vec![Tier {
            name: "default".into(),
            order: None,
            default_action: TierDefaultAction::Deny,
            policies: vec![Policy {
                name: "p".into(),
                order: Some(1.0),
                rules,
            }],
        }],
        profiles: Vec::new(),
    };
    ClassifierBuilder::default()
        .compile(&rules)
        .expect("the policy compiles")
}

/// The policed workload takes TCP 80 and ICMP from anyone and may send anything.
fn policed() -> EndpointPolicy {
    EndpointPolicy {
        ingress: program(vec![
            Rule {
                protocol: Some(proto::TCP),
                dst: EndpointMatch {
                    ports: vec![PortRange::single(80)],
                    ..EndpointMatch::default()
                },
                ..Rule::any(Action::Allow)
            },
            Rule {
                protocol: Some(proto::ICMP),
                ..Rule::any(Action::Allow)
            },
        ]),
        egress: program(vec![Rule::any(Action::Allow)]),
        generation: 1,
        to_host: true,
    }
}

/// A next hop, its MAC (`None`: unresolved) and the routes to it.
type Hop = (NextHop, Option<MacAddr>, Vec<(Ipv4Addr, u8)>);

fn tables() -> Tables {
    let link_local = Ipv4Addr::new(169, 254, 1, 1);
    let port = |name: &str, kind, mac, ip, mtu, policy| PortInfo {
        name: String::from(name),
        ifindex: 0,
        kind,
        mac,
        ip,
        mtu,
        policy,
        qos: None,
    };
    let host_side = MacAddr::CALICO_HOST_SIDE;
    let ports = vec![
        port(
            "caliP",
            PortKind::Workload,
            host_side,
            link_local,
            1500,
            Some(Arc::new(policed())),
        ),
        port(
            "caliB",
            PortKind::Workload,
            host_side,
            link_local,
            1500,
            None,
        ),
        port("eth0", PortKind::Uplink, UPLINK_MAC, NODE_IP, 1500, None),
        port(
            "caliS",
            PortKind::Workload,
            host_side,
            link_local,
            1400,
            None,
        ),
    ];
    let ipip = Encap::Ipip {
        local: NODE_IP,
        remote: PEER_IP,
    };
    let hops: Vec<Hop> = vec![
        (
            NextHop::new(NextHopKind::Neighbor, POLICED, POLICED_IP),
            Some(POLICED_MAC),
            vec![(POLICED_IP, 32)],
        ),
        (
            NextHop::new(NextHopKind::Neighbor, PLAIN, PLAIN_IP),
            Some(PLAIN_MAC),
            vec![(PLAIN_IP, 32)],
        ),
        (
            NextHop::new(NextHopKind::Neighbor, PLAIN, UNRESOLVED_IP),
            None,
            vec![(UNRESOLVED_IP, 32)],
        ),
        (
            NextHop::new(NextHopKind::Neighbor, SMALL, SMALL_IP),
            Some(SMALL_MAC),
            vec![(SMALL_IP, 32)],
        ),
        (
            NextHop::new(NextHopKind::Local, UPLINK, NODE_IP),
            None,
            vec![(NODE_IP, 32)],
        ),
        // The rest of the node's block: allocated to nobody.
        (
            NextHop::new(NextHopKind::Blackhole, 0, Ipv4Addr::UNSPECIFIED),
            None,
            vec![(Ipv4Addr::new(192, 168, 0, 0), 26)],
        ),
        (
            NextHop::new(NextHopKind::Neighbor, 99, Ipv4Addr::new(172, 16, 0, 1)),
            Some(PLAIN_MAC),
            vec![(Ipv4Addr::new(172, 16, 0, 0), 16)],
        ),
        (
            NextHop::remote(UPLINK, PEER_IP, ipip),
            Some(PEER_MAC),
            vec![(Ipv4Addr::new(192, 168, 1, 0), 26)],
        ),
        (
            NextHop::remote(UPLINK, PLAIN_PEER_IP, Encap::None),
            Some(PLAIN_PEER_MAC),
            vec![(Ipv4Addr::new(192, 168, 2, 0), 26)],
        ),
        (
            NextHop::tunnel_peer(UPLINK, PEER_IP),
            Some(PEER_MAC),
            vec![(PEER_IP, 32)],
        ),
        (
            NextHop::connected(UPLINK, Ipv4Addr::new(10, 0, 0, 0)),
            None,
            vec![(Ipv4Addr::new(10, 0, 0, 0), 24)],
        ),
        (
            NextHop::remote(UPLINK, GATEWAY_IP, Encap::None),
            Some(GATEWAY_MAC),
            vec![(Ipv4Addr::UNSPECIFIED, 0)],
        ),
    ];
    let mut fib = Fib::new();
    let mut next_hops = Vec::new();
    for (id, (hop, mac, routes)) in hops.into_iter().enumerate() {
        hop.set_mac(mac);
        for (prefix, len) in routes {
            fib.insert(prefix, len, id as u32).expect("a route");
        }
        next_hops.push(hop);
    }
    // A route to a next hop id that does not exist.
    fib.insert(Ipv4Addr::new(172, 17, 0, 0), 16, 1000)
        .expect("a route");
    let pool = Cidr::new(Ipv4Addr::new(192, 168, 0, 0), 16).expect("a CIDR");
    Tables {
        fib,
        next_hops,
        ports,
        snat: Some(SnatRules {
            node: NODE_IP,
            nat_pools: vec![pool],
            pools: vec![pool],
        }),
        host: None,
        floating: FloatingIps::new([(FLOATING_IP, POLICED_IP)]),
    }
}
