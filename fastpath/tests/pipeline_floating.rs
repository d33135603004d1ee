//! Floating IPs in the pipeline on synthetic frames (Calico's `ipNATs`, Felix's
//! `cali-fip-dnat` and `cali-fip-snat`): a flow from outside to a floating IP reaches the
//! workload, policed as addressed to it, and its replies leave from the floating IP; a
//! workload reaching its own floating IP comes back to itself from it; without a flow table
//! nothing is translated.

use std::net::Ipv4Addr;
use std::sync::Arc;

use fastpath::classifier::{
    protocol as proto, Action, ClassifierBuilder, EndpointMatch, EndpointRules, IpSets,
    IpSetsWriter, Policy, PortRange, Rule, Tier, TierDefaultAction,
};
use fastpath::conntrack::{FlowTable, FlowTableConfig};
use fastpath::pipeline::harness::process_counted_policed;
use fastpath::pipeline::Policing;
use fastpath::policy::{EndpointPolicy, PolicyState};
use fastpath::tables::FloatingIps;
use fastpath::wire::ethernet::{self, ethertype};
use fastpath::wire::ipv4::{self, protocol};
use fastpath::wire::{EthernetRepr, Ipv4Packet, Ipv4Repr, TcpPacket};
use fastpath::{
    DropReason, Fib, MacAddr, NextHop, NextHopKind, PipelineCounters, PortId, PortInfo, PortKind,
    Tables, Verdict,
};

const UPLINK: PortId = 0;
const WEB: PortId = 1;
const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 1);
const WEB_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 3);
const FLOATING: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 254);
const WEB_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
const GATEWAY_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xfe]);
const UPLINK_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);

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
    ClassifierBuilder::default().compile(&rules).unwrap()
}

/// `web` takes TCP 80 from anyone and may send anything.
fn tables(floating: FloatingIps) -> Tables {
    let web = EndpointPolicy {
        ingress: program(vec![Rule {
            protocol: Some(proto::TCP),
            dst: EndpointMatch {
                ports: vec![PortRange::single(80)],
                ..EndpointMatch::default()
            },
            ..Rule::any(Action::Allow)
        }]),
        egress: program(vec![Rule::any(Action::Allow)]),
        generation: 1,
        to_host: true,
    };
    let port = |name: &str, kind, mac, ip, policy| PortInfo {
        name: String::from(name),
        ifindex: 0,
        kind,
        mac,
        ip,
        mtu: 1500,
        policy,
        qos: None,
    };
    let next_hops = vec![
        NextHop::new(NextHopKind::Neighbor, WEB, WEB_IP),
        NextHop::remote(UPLINK, GATEWAY, Default::default()),
    ];
    next_hops[0].set_mac(Some(WEB_MAC));
    next_hops[1].set_mac(Some(GATEWAY_MAC));
    let mut fib = Fib::new();
    fib.insert(WEB_IP, 32, 0).unwrap();
    fib.insert(Ipv4Addr::UNSPECIFIED, 0, 1).unwrap();
    Tables {
        fib,
        next_hops,
        ports: vec![
            port("eth0", PortKind::Uplink, UPLINK_MAC, NODE_IP, None),
            port(
                "caliweb",
                PortKind::Workload,
                MacAddr::CALICO_HOST_SIDE,
                Ipv4Addr::new(169, 254, 1, 1),
                Some(Arc::new(web)),
            ),
        ],
        snat: None,
        host: None,
        floating,
    }
}

fn floating() -> FloatingIps {
    FloatingIps::new([(FLOATING, WEB_IP)])
}

/// A TCP segment with `flags` (SYN 0x02, ACK 0x10) and valid checksums.
fn tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u8) -> Vec<u8> {
    let mut f = vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN + 24];
    EthernetRepr {
        src: GATEWAY_MAC,
        dst: UPLINK_MAC,
        ethertype: ethertype::IPV4,
    }
    .emit(&mut f)
    .unwrap();
    Ipv4Repr::new(src, dst, protocol::TCP, 24)
        .emit(&mut f[ethernet::HEADER_LEN..])
        .unwrap();
    let mut t = TcpPacket::new_unchecked(&mut f[34..]);
    t.set_src_port(sport);
    t.set_dst_port(dport);
    t.set_header_len(20);
    t.set_flags(flags);
    t.payload_mut().copy_from_slice(b"fips");
    t.fill_checksum(src, dst);
    f
}

/// The pipeline with a flow table (or none), as a worker runs it.
struct Node {
    tables: Tables,
    sets: Arc<IpSets>,
    state: PolicyState,
    counters: PipelineCounters,
}

impl Node {
    fn new(tables: Tables, state: PolicyState) -> Node {
        Node {
            tables,
            sets: IpSetsWriter::new().publish(),
            state,
            counters: PipelineCounters::default(),
        }
    }

    fn tracked(floating: FloatingIps) -> Node {
        let flows = FlowTable::new(FlowTableConfig::with_capacity(64));
        Node::new(tables(floating), PolicyState::new(flows))
    }

    /// The verdict and the frame's (source, source port, destination, destination port);
    /// every checksum must still be right.
    fn send(
        &mut self,
        from: PortId,
        mut frame: Vec<u8>,
    ) -> (Verdict, (Ipv4Addr, u16, Ipv4Addr, u16)) {
        let mut policing = Policing {
            sets: &self.sets,
            state: &mut self.state,
        };
        let verdict = process_counted_policed(
            &mut frame,
            from,
            &self.tables,
            &mut self.counters,
            &mut policing,
        )
        .verdict;
        let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
        assert!(ip.verify_checksum(), "IPv4 checksum");
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let t = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(t.verify_checksum(src, dst), "TCP checksum");
        (verdict, (src, t.src_port(), dst, t.dst_port()))
    }
}

#[test]
fn a_flow_to_a_floating_ip_reaches_the_workload_and_its_replies_leave_from_the_floating_ip() {
    let mut node = Node::tracked(floating());
    assert_eq!(
        node.send(UPLINK, tcp(OUTSIDE, 40000, FLOATING, 80, 0x02)),
        (Verdict::Forward(WEB), (OUTSIDE, 40000, WEB_IP, 80)),
        "SYN to the floating IP: destination-NATed to the workload"
    );
    assert_eq!(
        node.send(WEB, tcp(WEB_IP, 80, OUTSIDE, 40000, 0x12)),
        (Verdict::Forward(UPLINK), (FLOATING, 80, OUTSIDE, 40000)),
        "SYN-ACK: leaves from the floating IP"
    );
    assert_eq!(
        node.send(UPLINK, tcp(OUTSIDE, 40000, FLOATING, 80, 0x10)),
        (Verdict::Forward(WEB), (OUTSIDE, 40000, WEB_IP, 80)),
        "ACK, from the flow table"
    );
    // The workload's ingress policy applies to the translated packet: port 22 is refused.
    assert_eq!(
        node.send(UPLINK, tcp(OUTSIDE, 40001, FLOATING, 22, 0x02)).0,
        Verdict::Drop(DropReason::PolicyDenied)
    );
    // The workload's own address is not translated, nor are its own connections out.
    assert_eq!(
        node.send(UPLINK, tcp(OUTSIDE, 40002, WEB_IP, 80, 0x02)),
        (Verdict::Forward(WEB), (OUTSIDE, 40002, WEB_IP, 80))
    );
    assert_eq!(
        node.send(WEB, tcp(WEB_IP, 80, OUTSIDE, 40002, 0x12)),
        (Verdict::Forward(UPLINK), (WEB_IP, 80, OUTSIDE, 40002)),
        "a reply of a flow to the workload's own address keeps it"
    );
    assert_eq!(
        node.send(WEB, tcp(WEB_IP, 5555, OUTSIDE, 443, 0x02)),
        (Verdict::Forward(UPLINK), (WEB_IP, 5555, OUTSIDE, 443)),
        "the workload's own connections leave from its address (Calico: natOutgoing decides)"
    );
    assert_eq!(node.counters.forwarded, 6);
    assert_eq!(node.counters.dropped(DropReason::PolicyDenied), 1);
}

#[test]
fn without_floating_ips_the_address_is_routed_as_any_other() {
    let mut node = Node::tracked(FloatingIps::default());
    assert_eq!(
        node.send(UPLINK, tcp(OUTSIDE, 40000, FLOATING, 80, 0x02)),
        (Verdict::Forward(UPLINK), (OUTSIDE, 40000, FLOATING, 80)),
        "out by the default route, untouched"
    );
}

#[test]
fn a_workload_reaching_its_own_floating_ip_comes_back_to_itself_from_it() {
    let mut node = Node::tracked(floating());
    assert_eq!(
        node.send(WEB, tcp(WEB_IP, 5000, FLOATING, 80, 0x02)),
        (Verdict::Forward(WEB), (FLOATING, 5000, WEB_IP, 80)),
        "hairpin: destination- and source-NATed"
    );
    assert_eq!(
        node.send(WEB, tcp(WEB_IP, 80, FLOATING, 5000, 0x12)),
        (Verdict::Forward(WEB), (FLOATING, 80, WEB_IP, 5000)),
        "the answer, translated back by the flow"
    );
}

#[test]
fn without_a_flow_table_a_floating_ip_is_refused_rather_than_translated_one_way() {
    let mut node = Node::new(tables(floating()), PolicyState::stateless());
    assert_eq!(
        node.send(UPLINK, tcp(OUTSIDE, 40000, FLOATING, 80, 0x02)),
        (
            Verdict::Drop(DropReason::NatFailed),
            (OUTSIDE, 40000, FLOATING, 80)
        )
    );
}
