//! The pipeline's host endpoint path on synthetic frames: the node's own traffic, to it from
//! the uplink and from it out of the uplink (through the host port), policed with the host
//! endpoint's stages: untracked, then the flow table, then pre-DNAT and normal programs.

use std::net::Ipv4Addr;
use std::sync::Arc;

use fastpath::classifier::{
    protocol as proto, Action, ClassifierBuilder, EndpointMatch, EndpointRules, IpSets, Policy,
    PolicyProgram, PortRange, Rule, Tier, TierDefaultAction,
};
use fastpath::conntrack::{FlowTable, FlowTableConfig};
use fastpath::pipeline::harness::process_counted_policed;
use fastpath::pipeline::{Policing, PuntReason};
use fastpath::policy::{EndpointPolicy, HostPolicy, PolicyState, StagePrograms};
use fastpath::tables::HostPath;
use fastpath::wire::ethernet::{self, ethertype};
use fastpath::wire::ipv4::{self, protocol};
use fastpath::wire::{EthernetRepr, Ipv4Repr};
use fastpath::{
    DropReason, Fib, MacAddr, NextHop, NextHopKind, PipelineCounters, PortId, PortInfo, PortKind,
    Tables, Verdict,
};

const UPLINK: PortId = 0;
const HOST: PortId = 1;
const WORKLOAD: PortId = 2;
const WORKLOAD_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 5);
const WORKLOAD_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x05]);
const HOST_PORT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xaa]);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);
const PEER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x09]);
const UPLINK_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const KERNEL_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0xee]);

/// One tier, one policy of `rules`, ending in `default_action`; no profiles.
fn program(rules: Vec<Rule>, default_action: TierDefaultAction) -> PolicyProgram {
    let tiers = if rules.is_empty() && default_action == TierDefaultAction::Pass {
        Vec::new()
    } else {
        vec![Tier {
            name: "default".into(),
            order: None,
            default_action,
            policies: vec![Policy {
                name: "p".into(),
                order: Some(1.0),
                rules,
            }],
        }]
    };
    ClassifierBuilder::default()
        .compile(&EndpointRules {
            tiers,
            profiles: Vec::new(),
        })
        .unwrap()
}

fn tcp_to(port: u16, action: Action) -> Rule {
    Rule {
        protocol: Some(proto::TCP),
        dst: EndpointMatch {
            ports: vec![PortRange::single(port)],
            ..EndpointMatch::default()
        },
        ..Rule::any(action)
    }
}

/// Normal policy: TCP 8080 in, TCP 443 out; everything else denied (a host endpoint with
/// policy, as Calico: no allowing rule, no traffic).
fn normal() -> EndpointPolicy {
    EndpointPolicy {
        ingress: program(vec![tcp_to(8080, Action::Allow)], TierDefaultAction::Deny),
        egress: program(vec![tcp_to(443, Action::Allow)], TierDefaultAction::Deny),
        generation: 1,
        to_host: false,
    }
}

/// The workload takes TCP 80 only and may send anything, to its host too.
fn workload_policy() -> EndpointPolicy {
    EndpointPolicy {
        ingress: program(vec![tcp_to(80, Action::Allow)], TierDefaultAction::Deny),
        egress: program(vec![Rule::any(Action::Allow)], TierDefaultAction::Deny),
        generation: 1,
        to_host: true,
    }
}

/// An uplink, the host port and one policed workload; `policy`: the host endpoint's.
fn tables(policy: Option<HostPolicy>) -> Tables {
    let port = |name: &str, kind, mac, ip| PortInfo {
        name: name.into(),
        ifindex: 0,
        kind,
        mac,
        ip,
        mtu: 1500,
        policy: None,
        qos: None,
    };
    let next_hops = vec![
        NextHop::new(NextHopKind::Local, UPLINK, NODE_IP),
        NextHop::new(NextHopKind::Neighbor, UPLINK, PEER_IP),
        NextHop::new(NextHopKind::Neighbor, WORKLOAD, WORKLOAD_IP),
        NextHop::new(NextHopKind::Local, WORKLOAD, GATEWAY),
    ];
    next_hops[1].set_mac(Some(PEER_MAC));
    next_hops[2].set_mac(Some(WORKLOAD_MAC));
    let mut fib = Fib::new();
    fib.insert(NODE_IP, 32, 0).unwrap();
    fib.insert(Ipv4Addr::new(10, 0, 0, 0), 24, 1).unwrap();
    fib.insert(WORKLOAD_IP, 32, 2).unwrap();
    fib.insert(GATEWAY, 32, 3).unwrap();
    let workload = PortInfo {
        policy: Some(Arc::new(workload_policy())),
        ..port(
            "cali0",
            PortKind::Workload,
            MacAddr::CALICO_HOST_SIDE,
            GATEWAY,
        )
    };
    Tables {
        fib,
        next_hops,
        ports: vec![
            port("eth0", PortKind::Uplink, UPLINK_MAC, NODE_IP),
            port(
                "brhost0-vr",
                PortKind::Host,
                HOST_PORT_MAC,
                Ipv4Addr::UNSPECIFIED,
            ),
            workload,
        ],
        snat: None,
        floating: Default::default(),
        host: Some(HostPath {
            port: HOST,
            uplink: UPLINK,
            kernel_mac: KERNEL_MAC,
            policy: policy.map(Arc::new),
        }),
    }
}

/// A TCP segment with `flags` (SYN 0x02, ACK 0x10).
fn tcp(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    flags: u8,
    eth_dst: MacAddr,
) -> Vec<u8> {
    let mut f = vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN + 20];
    EthernetRepr {
        src: PEER_MAC,
        dst: eth_dst,
        ethertype: ethertype::IPV4,
    }
    .emit(&mut f)
    .unwrap();
    Ipv4Repr::new(src, dst, protocol::TCP, 20)
        .emit(&mut f[ethernet::HEADER_LEN..])
        .unwrap();
    let t = &mut f[34..];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = flags;
    f
}

const SYN: u8 = 0x02;
const SYN_ACK: u8 = 0x12;
const ACK: u8 = 0x10;

/// From the peer on the uplink to the node.
fn inbound(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    tcp(PEER_IP, sport, NODE_IP, dport, flags, UPLINK_MAC)
}

/// From the node (through the host port) to the peer, as the kernel wrote it.
fn outbound(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    tcp(NODE_IP, sport, PEER_IP, dport, flags, PEER_MAC)
}

struct Node {
    tables: Tables,
    sets: Arc<IpSets>,
    state: PolicyState,
    counters: PipelineCounters,
}

impl Node {
    fn new(policy: HostPolicy) -> Node {
        Node::with(Some(policy))
    }

    fn with(policy: Option<HostPolicy>) -> Node {
        Node {
            tables: tables(policy),
            sets: Arc::new(IpSets::default()),
            state: PolicyState::new(FlowTable::new(FlowTableConfig::with_capacity(64))),
            counters: PipelineCounters::default(),
        }
    }

    /// The verdict and the frame as the pipeline left it.
    fn send(&mut self, from: PortId, mut frame: Vec<u8>) -> (Verdict, Vec<u8>) {
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
        (verdict, frame)
    }

    fn verdict(&mut self, from: PortId, frame: Vec<u8>) -> Verdict {
        self.send(from, frame).0
    }
}

fn normal_only() -> HostPolicy {
    HostPolicy {
        normal: normal(),
        untracked: None,
        pre_dnat: None,
        forward_ingress: None,
        forward_egress: None,
    }
}

#[test]
fn allowed_inbound_goes_to_the_kernel_end_unrouted_and_its_replies_leave_by_the_uplink() {
    let mut node = Node::new(normal_only());
    let (verdict, frame) = node.send(UPLINK, inbound(40000, 8080, SYN));
    assert_eq!(verdict, Verdict::Forward(HOST));
    let eth = ethernet::Packet::new_checked(&frame[..]).unwrap();
    assert_eq!(eth.dst_addr(), KERNEL_MAC, "addressed to the kernel's end");
    let ip = fastpath::wire::Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert_eq!(ip.ttl(), 64, "delivered, not routed: TTL untouched");
    // The node's answer is not allowed by its egress program (only 443 out) but belongs to
    // the tracked flow.
    let (verdict, frame) = node.send(HOST, outbound(8080, 40000, SYN_ACK));
    assert_eq!(verdict, Verdict::Forward(UPLINK));
    assert_eq!(
        frame,
        outbound(8080, 40000, SYN_ACK),
        "sent as the kernel wrote it"
    );
    assert_eq!(
        node.verdict(UPLINK, inbound(40000, 8080, ACK)),
        Verdict::Forward(HOST)
    );
}

#[test]
fn inbound_the_policy_does_not_allow_is_dropped_and_nothing_is_tracked() {
    let mut node = Node::new(normal_only());
    assert_eq!(
        node.verdict(UPLINK, inbound(40000, 8081, SYN)),
        Verdict::Drop(DropReason::PolicyDenied)
    );
    // The node's packet matching the denied flow's reply is evaluated as new: denied too.
    assert_eq!(
        node.verdict(HOST, outbound(8081, 40000, SYN_ACK)),
        Verdict::Drop(DropReason::PolicyDenied)
    );
    assert_eq!(node.counters.drops[DropReason::PolicyDenied as usize], 2);
}

#[test]
fn outbound_connections_are_policed_and_their_replies_come_back_on_the_flow() {
    let mut node = Node::new(normal_only());
    assert_eq!(
        node.verdict(HOST, outbound(50000, 443, SYN)),
        Verdict::Forward(UPLINK)
    );
    assert_eq!(
        node.verdict(UPLINK, inbound(443, 50000, SYN_ACK)),
        Verdict::Forward(HOST),
        "reply on the flow table's word"
    );
    assert_eq!(
        node.verdict(HOST, outbound(50001, 80, SYN)),
        Verdict::Drop(DropReason::PolicyDenied)
    );
    assert_eq!(
        node.verdict(UPLINK, inbound(80, 50001, SYN_ACK)),
        Verdict::Drop(DropReason::PolicyDenied),
        "no flow, and 50001 is not open"
    );
}

#[test]
fn untracked_allow_passes_without_a_flow_and_untracked_deny_beats_an_established_flow() {
    let untracked = StagePrograms {
        // doNotTrack: TCP 9000 in allowed, TCP 8080 in denied; nothing said about the rest.
        ingress: program(
            vec![tcp_to(9000, Action::Allow), tcp_to(8080, Action::Deny)],
            TierDefaultAction::Pass,
        ),
        egress: program(Vec::new(), TierDefaultAction::Pass),
    };
    let mut node = Node::new(HostPolicy {
        normal: normal(),
        untracked: Some(untracked),
        pre_dnat: None,
        forward_ingress: None,
        forward_egress: None,
    });
    assert_eq!(
        node.verdict(UPLINK, inbound(40000, 9000, SYN)),
        Verdict::Forward(HOST),
        "untracked allow"
    );
    // Not tracked: the node's answer finds no flow and its egress program denies port 40000.
    assert_eq!(
        node.verdict(HOST, outbound(9000, 40000, SYN_ACK)),
        Verdict::Drop(DropReason::PolicyDenied)
    );
    // 8080 is allowed by the normal program, but the untracked stage denies it first.
    assert_eq!(
        node.verdict(UPLINK, inbound(40000, 8080, SYN)),
        Verdict::Drop(DropReason::PolicyDenied)
    );
    // An outbound flow (no untracked egress rule matches) goes on to the normal program.
    assert_eq!(
        node.verdict(HOST, outbound(50000, 443, SYN)),
        Verdict::Forward(UPLINK)
    );
}

#[test]
fn pre_dnat_allow_skips_the_normal_program_and_pre_dnat_deny_drops() {
    let pre_dnat = program(
        vec![tcp_to(7000, Action::Allow), tcp_to(8080, Action::Deny)],
        TierDefaultAction::Pass,
    );
    let mut node = Node::new(HostPolicy {
        normal: normal(),
        untracked: None,
        pre_dnat: Some(pre_dnat),
        forward_ingress: None,
        forward_egress: None,
    });
    assert_eq!(
        node.verdict(UPLINK, inbound(40000, 7000, SYN)),
        Verdict::Forward(HOST),
        "normal would deny 7000"
    );
    assert_eq!(
        node.verdict(HOST, outbound(7000, 40000, SYN_ACK)),
        Verdict::Forward(UPLINK),
        "pre-DNAT flows are tracked"
    );
    assert_eq!(
        node.verdict(UPLINK, inbound(40000, 8080, SYN)),
        Verdict::Drop(DropReason::PolicyDenied)
    );
    // Nothing in pre-DNAT about 8081: normal decides (deny). Pre-DNAT is ingress only.
    assert_eq!(
        node.verdict(UPLINK, inbound(40000, 8081, SYN)),
        Verdict::Drop(DropReason::PolicyDenied)
    );
}

#[test]
fn without_a_host_endpoint_packets_for_the_node_are_delivered_unpoliced() {
    let mut node = Node::with(None);
    assert_eq!(
        node.verdict(UPLINK, inbound(40000, 8081, SYN)),
        Verdict::Forward(HOST)
    );
    // And the node's traffic the kernel did not route to us leaves by the uplink as it is.
    assert_eq!(
        node.verdict(HOST, outbound(8081, 40000, SYN_ACK)),
        Verdict::Forward(UPLINK)
    );
    // Without a host port at all, the slow path has them, as before.
    node.tables.host = None;
    assert_eq!(
        node.verdict(UPLINK, inbound(40000, 8081, SYN)),
        Verdict::Punt(PuntReason::Local)
    );
}

/// From the workload to `dst:dport`, as the workload sends it (to the gateway's MAC).
fn from_workload(dst: Ipv4Addr, dport: u16, flags: u8) -> Vec<u8> {
    let mut f = tcp(
        WORKLOAD_IP,
        33000,
        dst,
        dport,
        flags,
        MacAddr::CALICO_HOST_SIDE,
    );
    f[6..12].copy_from_slice(&WORKLOAD_MAC.0);
    f
}

/// From the node's stack to the workload, as the kernel sends it on its route through the pair.
fn from_kernel_to_workload(sport: u16, dport: u16, flags: u8) -> Vec<u8> {
    tcp(NODE_IP, sport, WORKLOAD_IP, dport, flags, HOST_PORT_MAC)
}

#[test]
fn workloads_reach_the_node_through_the_host_port_and_the_answers_come_back_on_the_flow() {
    let mut node = Node::with(None);
    let (verdict, frame) = node.send(WORKLOAD, from_workload(NODE_IP, 9000, SYN));
    assert_eq!(
        verdict,
        Verdict::Forward(HOST),
        "delivered to the node's stack"
    );
    assert_eq!(
        ethernet::Packet::new_checked(&frame[..])
            .unwrap()
            .dst_addr(),
        KERNEL_MAC
    );
    // The node answers from 9000: the workload's ingress (TCP 80 only) would refuse it as a
    // new flow; it is the reply of a tracked one.
    let (verdict, frame) = node.send(HOST, from_kernel_to_workload(9000, 33000, SYN_ACK));
    assert_eq!(verdict, Verdict::Forward(WORKLOAD));
    let eth = ethernet::Packet::new_checked(&frame[..]).unwrap();
    assert_eq!(
        (eth.src_addr(), eth.dst_addr()),
        (MacAddr::CALICO_HOST_SIDE, WORKLOAD_MAC),
        "routed: MACs rewritten"
    );
    // The node opens connections to its workloads whatever their ingress policy says (TCP 80
    // only here), as Felix lets the host reach its workloads; the workload's answer passes
    // on the flow, not on its defaultEndpointToHostAction.
    assert_eq!(
        node.verdict(HOST, from_kernel_to_workload(41001, 22, SYN)),
        Verdict::Forward(WORKLOAD)
    );
    assert_eq!(
        node.verdict(
            WORKLOAD,
            tcp(
                WORKLOAD_IP,
                22,
                NODE_IP,
                41001,
                SYN_ACK,
                MacAddr::CALICO_HOST_SIDE
            )
        ),
        Verdict::Forward(HOST)
    );
    // What is addressed to the gateway stays with the slow path (it answers pings for it).
    assert_eq!(
        node.verdict(WORKLOAD, from_workload(GATEWAY, 53, SYN)),
        Verdict::Punt(PuntReason::Local)
    );
}

#[test]
fn replies_of_flows_the_nodes_stack_sent_in_go_back_to_it_to_have_its_nat_undone() {
    // A client on the uplink's side reached a hostPort; the node's stack DNATed it to the
    // workload and routed it through the pair: source the client, destination the workload.
    let client = Ipv4Addr::new(10, 0, 0, 9);
    let mut node = Node::with(None);
    assert_eq!(
        node.verdict(
            HOST,
            tcp(client, 40000, WORKLOAD_IP, 80, SYN, HOST_PORT_MAC)
        ),
        Verdict::Forward(WORKLOAD)
    );
    // The answer is routed towards the client (out of the uplink), but it must go back
    // through the stack, whose conntrack gives it the node's address and the hostPort.
    let answer = tcp(
        WORKLOAD_IP,
        80,
        client,
        40000,
        SYN_ACK,
        MacAddr::CALICO_HOST_SIDE,
    );
    let (verdict, frame) = node.send(WORKLOAD, answer);
    assert_eq!(verdict, Verdict::Forward(HOST), "to the node's stack");
    assert_eq!(
        ethernet::Packet::new_checked(&frame[..])
            .unwrap()
            .dst_addr(),
        KERNEL_MAC,
        "addressed to the kernel's end"
    );
    // The workload's own connections to the same client still leave by the uplink.
    assert_eq!(
        node.verdict(
            WORKLOAD,
            tcp(
                WORKLOAD_IP,
                5555,
                client,
                443,
                SYN,
                MacAddr::CALICO_HOST_SIDE
            )
        ),
        Verdict::Forward(UPLINK)
    );
    // And so do the answers of flows that came in by the uplink.
    assert_eq!(
        node.verdict(UPLINK, tcp(client, 40001, WORKLOAD_IP, 80, SYN, UPLINK_MAC)),
        Verdict::Forward(WORKLOAD)
    );
    assert_eq!(
        node.verdict(
            WORKLOAD,
            tcp(
                WORKLOAD_IP,
                80,
                client,
                40001,
                SYN_ACK,
                MacAddr::CALICO_HOST_SIDE
            )
        ),
        Verdict::Forward(UPLINK)
    );
}

#[test]
fn default_endpoint_to_host_drop_keeps_workloads_from_the_node_but_not_the_nodes_own_flows() {
    let mut node = Node::with(None);
    let mut policy = workload_policy();
    policy.to_host = false;
    node.tables.ports[usize::from(WORKLOAD)].policy = Some(Arc::new(policy));
    assert_eq!(
        node.verdict(WORKLOAD, from_workload(NODE_IP, 9000, SYN)),
        Verdict::Drop(DropReason::ToHostDenied)
    );
    // A connection the node opens to the workload is answered (the flow table decides).
    assert_eq!(
        node.verdict(HOST, from_kernel_to_workload(41000, 80, SYN)),
        Verdict::Forward(WORKLOAD)
    );
    assert_eq!(
        node.verdict(
            WORKLOAD,
            tcp(
                WORKLOAD_IP,
                80,
                NODE_IP,
                41000,
                SYN_ACK,
                MacAddr::CALICO_HOST_SIDE
            )
        ),
        Verdict::Forward(HOST)
    );
}

/// From the peer on the uplink to the workload (forwarded through the host endpoint).
fn peer_to_workload(dport: u16, flags: u8) -> Vec<u8> {
    tcp(PEER_IP, 40000, WORKLOAD_IP, dport, flags, UPLINK_MAC)
}

#[test]
fn apply_on_forward_policies_police_forwarded_traffic_and_without_them_it_passes() {
    // No applyOnForward policy: forwarded traffic is the workload's policy's business only.
    let mut node = Node::new(normal_only());
    assert_eq!(
        node.verdict(UPLINK, peer_to_workload(80, SYN)),
        Verdict::Forward(WORKLOAD)
    );
    // applyOnForward ingress that allows TCP 8080 only: the workload's port 80 is closed from
    // outside; egress that denies TCP 443: workloads cannot leave for it.
    let policy = HostPolicy {
        forward_ingress: Some(program(
            vec![tcp_to(8080, Action::Allow)],
            TierDefaultAction::Deny,
        )),
        forward_egress: Some(program(
            vec![tcp_to(443, Action::Deny), Rule::any(Action::Allow)],
            TierDefaultAction::Deny,
        )),
        ..normal_only()
    };
    let mut node = Node::new(policy);
    assert_eq!(
        node.verdict(UPLINK, peer_to_workload(80, SYN)),
        Verdict::Drop(DropReason::PolicyDenied)
    );
    assert_eq!(
        node.verdict(WORKLOAD, from_workload(PEER_IP, 443, SYN)),
        Verdict::Drop(DropReason::PolicyDenied)
    );
    assert_eq!(
        node.verdict(WORKLOAD, from_workload(PEER_IP, 80, SYN)),
        Verdict::Forward(UPLINK)
    );
    // Its reply comes back in on the flow table's word, whatever the forward ingress says.
    assert_eq!(
        node.verdict(
            UPLINK,
            tcp(PEER_IP, 80, WORKLOAD_IP, 33000, SYN_ACK, UPLINK_MAC)
        ),
        Verdict::Forward(WORKLOAD)
    );
    // Pre-DNAT decides before them: an explicit allow skips the forward program.
    let policy = HostPolicy {
        pre_dnat: Some(program(
            vec![tcp_to(80, Action::Allow)],
            TierDefaultAction::Pass,
        )),
        forward_ingress: Some(program(Vec::new(), TierDefaultAction::Deny)),
        ..normal_only()
    };
    let mut node = Node::new(policy);
    assert_eq!(
        node.verdict(UPLINK, peer_to_workload(80, SYN)),
        Verdict::Forward(WORKLOAD)
    );
}

#[test]
fn forwarded_traffic_is_not_the_host_endpoints_business() {
    // A packet from the uplink to another address (not the node) is routed, unpoliced:
    // Calico applies host endpoint policy to forwarded traffic only with applyOnForward.
    let mut node = Node::new(normal_only());
    let frame = tcp(
        Ipv4Addr::new(10, 0, 1, 5),
        40000,
        PEER_IP,
        8081,
        SYN,
        UPLINK_MAC,
    );
    assert_eq!(node.verdict(UPLINK, frame), Verdict::Forward(UPLINK));
}
