//! The pipeline's policy stage on synthetic frames: anti-spoofing, per-endpoint programs in
//! both directions, connection tracking (replies pass, new flows are evaluated), related ICMP
//! errors, and IP sets that change without recompiling.

use std::net::Ipv4Addr;
use std::sync::Arc;

use fastpath::classifier::{
    protocol as proto, Action, ClassifierBuilder, EndpointMatch, EndpointRules, IpSetId, IpSets,
    IpSetsWriter, Policy, PortRange, Rule, Tier, TierDefaultAction,
};
use fastpath::conntrack::{FlowTable, FlowTableConfig};
use fastpath::offload::{Gso, GsoKind, Segmenter};
use fastpath::pipeline::harness::{process_counted, process_counted_policed};
use fastpath::pipeline::{process_offloaded, Policing};
use fastpath::policy::{EndpointPolicy, PolicyState};
use fastpath::wire::ethernet::{self, ethertype};
use fastpath::wire::ipv4::{self, protocol};
use fastpath::wire::{checksum, EthernetRepr, Ipv4Repr, TcpPacket, UdpRepr};
use fastpath::{
    DropReason, Fib, MacAddr, NextHop, NextHopKind, PipelineCounters, PortId, PortInfo, PortKind,
    PuntReason, Tables, Verdict,
};

const CLIENT: PortId = 0;
const WEB: PortId = 1;
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
const WEB_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 3);
const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const WEB_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
/// The IP set standing for the selector `role == 'client'`.
const CLIENTS: IpSetId = IpSetId(7);

fn rules(tier_rules: Vec<Rule>) -> EndpointRules {
    EndpointRules {
        tiers: vec![Tier {
            name: "default".into(),
            order: None,
            default_action: TierDefaultAction::Deny,
            policies: vec![Policy {
                name: "p".into(),
                order: Some(1.0),
                rules: tier_rules,
            }],
        }],
        profiles: Vec::new(),
    }
}

/// `web` takes TCP 80 from the CLIENTS set only and may send nothing on its own; `client` may
/// send anything and take nothing.
fn policies() -> (EndpointPolicy, EndpointPolicy) {
    let builder = ClassifierBuilder::default();
    let web_ingress = Rule {
        protocol: Some(proto::TCP),
        src: EndpointMatch {
            sets: vec![CLIENTS],
            ..EndpointMatch::default()
        },
        dst: EndpointMatch {
            ports: vec![PortRange::single(80)],
            ..EndpointMatch::default()
        },
        ..Rule::any(Action::Allow)
    };
    let web = EndpointPolicy {
        ingress: builder.compile(&rules(vec![web_ingress])).unwrap(),
        egress: builder.compile(&rules(Vec::new())).unwrap(),
        generation: 1,
        to_host: true,
    };
    let client = EndpointPolicy {
        ingress: builder.compile(&rules(Vec::new())).unwrap(),
        egress: builder
            .compile(&rules(vec![Rule::any(Action::Allow)]))
            .unwrap(),
        generation: 1,
        to_host: true,
    };
    (client, web)
}

fn tables() -> Tables {
    let (client, web) = policies();
    let port = |name: &str, policy: EndpointPolicy| PortInfo {
        name: name.into(),
        ifindex: 0,
        kind: PortKind::Workload,
        mac: MacAddr::CALICO_HOST_SIDE,
        ip: Ipv4Addr::new(169, 254, 1, 1),
        mtu: 1500,
        policy: Some(Arc::new(policy)),
        qos: None,
    };
    let next_hops = vec![
        NextHop::new(NextHopKind::Neighbor, CLIENT, CLIENT_IP),
        NextHop::new(NextHopKind::Neighbor, WEB, WEB_IP),
    ];
    next_hops[0].set_mac(Some(CLIENT_MAC));
    next_hops[1].set_mac(Some(WEB_MAC));
    let mut fib = Fib::new();
    fib.insert(CLIENT_IP, 32, 0).unwrap();
    fib.insert(WEB_IP, 32, 1).unwrap();
    Tables {
        fib,
        next_hops,
        ports: vec![port("caliclient", client), port("caliweb", web)],
        snat: None,
        floating: Default::default(),
        host: None,
    }
}

fn clients_set(members: &[Ipv4Addr]) -> Arc<IpSets> {
    let mut writer = IpSetsWriter::new();
    writer.replace_set(
        CLIENTS,
        members
            .iter()
            .map(|&ip| fastpath::classifier::Cidr::host(ip)),
    );
    writer.publish()
}

/// A TCP segment with `flags` (SYN 0x02, ACK 0x10) from `src:sport` to `dst:dport`.
fn tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u8) -> Vec<u8> {
    let mut f = vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN + 20];
    EthernetRepr {
        src: CLIENT_MAC,
        dst: MacAddr::CALICO_HOST_SIDE,
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

fn udp(src: Ipv4Addr, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let payload = b"policy";
    let len = 8 + payload.len();
    let mut f = vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN + len];
    EthernetRepr {
        src: CLIENT_MAC,
        dst: MacAddr::CALICO_HOST_SIDE,
        ethertype: ethertype::IPV4,
    }
    .emit(&mut f)
    .unwrap();
    Ipv4Repr::new(src, dst, protocol::UDP, len as u16)
        .emit(&mut f[ethernet::HEADER_LEN..])
        .unwrap();
    UdpRepr {
        src_port: 40000,
        dst_port: dport,
    }
    .emit(payload, src, dst, &mut f[34..])
    .unwrap();
    f
}

/// The pipeline with a flow table, as a worker runs it.
struct Node {
    tables: Tables,
    sets: Arc<IpSets>,
    state: PolicyState,
    counters: PipelineCounters,
}

impl Node {
    fn new() -> Node {
        Node {
            tables: tables(),
            sets: clients_set(&[CLIENT_IP]),
            state: PolicyState::new(FlowTable::new(FlowTableConfig::with_capacity(64))),
            counters: PipelineCounters::default(),
        }
    }

    fn send(&mut self, from: PortId, mut frame: Vec<u8>) -> Verdict {
        let mut policing = Policing {
            sets: &self.sets,
            state: &mut self.state,
        };
        process_counted_policed(
            &mut frame,
            from,
            &self.tables,
            &mut self.counters,
            &mut policing,
        )
        .verdict
    }
}

#[test]
fn an_allowed_connection_passes_both_ways_and_other_flows_are_denied() {
    let mut node = Node::new();
    assert_eq!(
        node.send(CLIENT, tcp(CLIENT_IP, 40000, WEB_IP, 80, 0x02)),
        Verdict::Forward(WEB),
        "SYN to web:80"
    );
    // The reply is web's egress and the client's ingress, both of which allow nothing: it
    // passes only because the flow is tracked.
    assert_eq!(
        node.send(WEB, tcp(WEB_IP, 80, CLIENT_IP, 40000, 0x12)),
        Verdict::Forward(CLIENT),
        "SYN-ACK"
    );
    assert_eq!(
        node.send(CLIENT, tcp(CLIENT_IP, 40000, WEB_IP, 80, 0x10)),
        Verdict::Forward(WEB),
        "ACK"
    );

    assert_eq!(
        node.send(CLIENT, tcp(CLIENT_IP, 40001, WEB_IP, 81, 0x02)),
        Verdict::Drop(DropReason::PolicyDenied),
        "port 81"
    );
    assert_eq!(
        node.send(CLIENT, udp(CLIENT_IP, WEB_IP, 80)),
        Verdict::Drop(DropReason::PolicyDenied),
        "UDP 80"
    );
    assert_eq!(
        node.send(WEB, tcp(WEB_IP, 50000, CLIENT_IP, 22, 0x02)),
        Verdict::Drop(DropReason::PolicyDenied),
        "web may not open connections"
    );
    assert_eq!(node.counters.dropped(DropReason::PolicyDenied), 3);
    assert_eq!(node.counters.forwarded, 3);
}

#[test]
fn without_flow_tracking_the_reply_is_evaluated_and_denied() {
    let tables = tables();
    let mut counters = PipelineCounters::default();
    // `process_counted` is stateless, with every IP set empty: even the SYN's source is in no set.
    let syn = process_counted(
        &mut tcp(CLIENT_IP, 40000, WEB_IP, 80, 0x02),
        CLIENT,
        &tables,
        &mut counters,
    )
    .verdict;
    assert_eq!(syn, Verdict::Drop(DropReason::PolicyDenied));
    let reply = process_counted(
        &mut tcp(WEB_IP, 80, CLIENT_IP, 40000, 0x12),
        WEB,
        &tables,
        &mut counters,
    )
    .verdict;
    assert_eq!(reply, Verdict::Drop(DropReason::PolicyDenied));
}

#[test]
fn a_workload_sending_from_an_address_not_its_own_is_dropped() {
    let mut node = Node::new();
    let spoofed = Ipv4Addr::new(192, 168, 0, 99);
    assert_eq!(
        node.send(CLIENT, tcp(spoofed, 40000, WEB_IP, 80, 0x02)),
        Verdict::Drop(DropReason::SpoofedSource)
    );
    // Web's address, from the client's port.
    assert_eq!(
        node.send(CLIENT, tcp(WEB_IP, 40000, WEB_IP, 80, 0x02)),
        Verdict::Drop(DropReason::SpoofedSource)
    );
    assert_eq!(node.counters.dropped(DropReason::SpoofedSource), 2);
}

#[test]
fn ip_set_membership_decides_new_flows_without_recompiling() {
    let mut node = Node::new();
    node.sets = clients_set(&[]);
    assert_eq!(
        node.send(CLIENT, tcp(CLIENT_IP, 40000, WEB_IP, 80, 0x02)),
        Verdict::Drop(DropReason::PolicyDenied)
    );
    node.sets = clients_set(&[CLIENT_IP]);
    assert_eq!(
        node.send(CLIENT, tcp(CLIENT_IP, 40000, WEB_IP, 80, 0x02)),
        Verdict::Forward(WEB)
    );
    // Established flows keep working when the client leaves the set.
    node.sets = clients_set(&[]);
    assert_eq!(
        node.send(CLIENT, tcp(CLIENT_IP, 40000, WEB_IP, 80, 0x10)),
        Verdict::Forward(WEB)
    );
    assert_eq!(
        node.send(CLIENT, tcp(CLIENT_IP, 40002, WEB_IP, 80, 0x02)),
        Verdict::Drop(DropReason::PolicyDenied)
    );
}

#[test]
fn an_icmp_error_about_a_tracked_flow_passes_and_a_stray_one_does_not() {
    let mut node = Node::new();
    let syn = tcp(CLIENT_IP, 40000, WEB_IP, 80, 0x02);
    assert_eq!(node.send(CLIENT, syn.clone()), Verdict::Forward(WEB));
    // Web answers with port unreachable (type 3 code 3) quoting the SYN it received.
    let quote = &syn[ethernet::HEADER_LEN..ethernet::HEADER_LEN + ipv4::HEADER_LEN + 8];
    let error = |quote: &[u8]| {
        let icmp_len = 8 + quote.len();
        let mut f = vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN + icmp_len];
        EthernetRepr {
            src: WEB_MAC,
            dst: MacAddr::CALICO_HOST_SIDE,
            ethertype: ethertype::IPV4,
        }
        .emit(&mut f)
        .unwrap();
        Ipv4Repr::new(WEB_IP, CLIENT_IP, protocol::ICMP, icmp_len as u16)
            .emit(&mut f[ethernet::HEADER_LEN..])
            .unwrap();
        f[34] = 3;
        f[35] = 3;
        f[42..].copy_from_slice(quote);
        f
    };
    assert_eq!(
        node.send(WEB, error(quote)),
        Verdict::Forward(CLIENT),
        "related to the tracked flow"
    );
    let stray = tcp(CLIENT_IP, 40009, WEB_IP, 80, 0x02);
    let stray_quote = &stray[ethernet::HEADER_LEN..ethernet::HEADER_LEN + ipv4::HEADER_LEN + 8];
    assert_eq!(
        node.send(WEB, error(stray_quote)),
        Verdict::Drop(DropReason::PolicyDenied),
        "about no flow"
    );
}

/// A full-sized TCP segment whose sender left the checksum to offload (Linux's default on a
/// veth): only the pseudo-header sum is in the checksum field.
fn offloaded_tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u8) -> Vec<u8> {
    let payload_len = 1500 - ipv4::HEADER_LEN - 20;
    let mut f = tcp(src, sport, dst, dport, flags);
    f.extend((0..payload_len).map(|i| (i * 7) as u8));
    let ip_len = (f.len() - ethernet::HEADER_LEN) as u16;
    let mut ip = ipv4::Packet::new_unchecked(&mut f[ethernet::HEADER_LEN..]);
    ip.set_total_len(ip_len);
    ip.fill_checksum();
    let segment_len = u32::from(ip_len) - ipv4::HEADER_LEN as u32;
    let pseudo = checksum::fold(checksum::pseudo_header(
        src,
        dst,
        protocol::TCP,
        segment_len,
    ));
    f[34 + 16..34 + 18].copy_from_slice(&pseudo.to_be_bytes());
    f
}

#[test]
fn a_segment_left_to_checksum_offload_is_policed_once_and_leaves_with_its_checksum_done() {
    let mut node = Node::new();
    let mut syn = offloaded_tcp(CLIENT_IP, 40000, WEB_IP, 80, 0x02);
    let mut policing = Policing {
        sets: &node.sets,
        state: &mut node.state,
    };
    let outcome = process_counted_policed(
        &mut syn,
        CLIENT,
        &node.tables,
        &mut node.counters,
        &mut policing,
    );
    assert_eq!(outcome.verdict, Verdict::Forward(WEB));
    assert!(outcome.checksum_completed);
    let segment = &syn[ethernet::HEADER_LEN + ipv4::HEADER_LEN..];
    assert!(
        TcpPacket::new_checked(segment)
            .unwrap()
            .verify_checksum(CLIENT_IP, WEB_IP),
        "the receiver would drop a segment with an unfinished checksum"
    );
    assert_eq!(node.counters.checksums_completed, 1);

    // Denied segments are completed too (the counter says what the pipeline did), and the
    // drop is still counted as a drop.
    let denied = offloaded_tcp(CLIENT_IP, 40001, WEB_IP, 81, 0x02);
    assert_eq!(
        node.send(CLIENT, denied),
        Verdict::Drop(DropReason::PolicyDenied)
    );
    assert_eq!(node.counters.checksums_completed, 2);
    assert_eq!(node.counters.forwarded, 1);
}

/// A 64 KiB TCP segment as a workload's TAP hands it over with TSO: one frame standing for
/// `payload_len / 1448` packets, its checksum left to offload.
fn gso_tcp(src: Ipv4Addr, dst: Ipv4Addr, dport: u16, payload_len: usize) -> (Vec<u8>, Gso) {
    let mut f = tcp(src, 40000, dst, dport, 0x18);
    f.extend((0..payload_len).map(|i| (i * 13) as u8));
    let ip_len = (f.len() - ethernet::HEADER_LEN) as u16;
    let mut ip = ipv4::Packet::new_unchecked(&mut f[ethernet::HEADER_LEN..]);
    ip.set_total_len(ip_len);
    ip.fill_checksum();
    let pseudo = checksum::fold(checksum::pseudo_header(
        src,
        dst,
        protocol::TCP,
        u32::from(ip_len) - ipv4::HEADER_LEN as u32,
    ));
    f[34 + 16..34 + 18].copy_from_slice(&pseudo.to_be_bytes());
    let gso = Gso {
        kind: GsoKind::TcpV4,
        size: 1448,
        header_len: 54,
    };
    (f, gso)
}

#[test]
fn a_64_kib_gso_segment_is_routed_and_policed_once_and_cuts_into_packets_that_fit() {
    let mut node = Node::new();
    assert_eq!(
        node.send(CLIENT, tcp(CLIENT_IP, 40000, WEB_IP, 80, 0x02)),
        Verdict::Forward(WEB),
        "the SYN opens the flow"
    );
    let mut policing = Policing {
        sets: &node.sets,
        state: &mut node.state,
    };
    let (mut frame, gso) = gso_tcp(CLIENT_IP, WEB_IP, 80, 64_000);
    let seed = frame[34 + 16..34 + 18].to_vec();
    let outcome = process_offloaded(&mut frame, CLIENT, &node.tables, &mut policing, Some(gso));
    assert_eq!(
        outcome.verdict,
        Verdict::Forward(WEB),
        "allowed, and not too big"
    );
    assert!(!outcome.checksum_completed);
    assert_eq!(
        frame[34 + 16..34 + 18],
        seed[..],
        "the checksum stays partial for whoever cuts the frame"
    );
    assert_eq!(
        &frame[..6],
        &WEB_MAC.0,
        "rewritten once, as one packet would be"
    );

    // Cut for a port without offloads: packets of at most the MTU, every checksum done,
    // the payload whole and in order.
    let mut segmenter = Segmenter::new();
    let mut payload = Vec::new();
    let cut = segmenter
        .segment(&frame, gso, |packet| {
            let ip = ipv4::Packet::new_checked(&packet[ethernet::HEADER_LEN..]).unwrap();
            assert!(usize::from(ip.total_len()) <= 1500);
            assert!(ip.verify_checksum());
            assert_eq!(ip.ttl(), 63, "TTL lowered once, for every packet");
            let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum(CLIENT_IP, WEB_IP));
            payload.extend_from_slice(tcp.payload());
            true
        })
        .unwrap();
    assert_eq!(cut, 64_000usize.div_ceil(1448));
    assert!(payload
        .iter()
        .enumerate()
        .all(|(i, b)| *b == (i * 13) as u8));
    assert_eq!(payload.len(), 64_000);

    // Policy applies to the frame as to the packets it stands for.
    let (mut denied, gso) = gso_tcp(CLIENT_IP, WEB_IP, 81, 64_000);
    let outcome = process_offloaded(&mut denied, CLIENT, &node.tables, &mut policing, Some(gso));
    assert_eq!(outcome.verdict, Verdict::Drop(DropReason::PolicyDenied));

    // Without its metadata the same frame is a 64 KiB packet, far over the MTU.
    let (mut whole, _) = gso_tcp(CLIENT_IP, WEB_IP, 80, 64_000);
    let outcome = process_offloaded(&mut whole, CLIENT, &node.tables, &mut policing, None);
    assert!(
        matches!(
            outcome.verdict,
            Verdict::Punt(PuntReason::FragmentationNeeded { mtu: 1500 })
                | Verdict::Drop(DropReason::TooBig)
        ),
        "{:?}",
        outcome.verdict
    );
    // And packets cut larger than the MTU are refused as such.
    let (mut oversized, mut gso) = gso_tcp(CLIENT_IP, WEB_IP, 80, 64_000);
    gso.size = 1480;
    let outcome = process_offloaded(
        &mut oversized,
        CLIENT,
        &node.tables,
        &mut policing,
        Some(gso),
    );
    assert!(
        matches!(
            outcome.verdict,
            Verdict::Punt(PuntReason::FragmentationNeeded { mtu: 1500 })
                | Verdict::Drop(DropReason::TooBig)
        ),
        "{:?}",
        outcome.verdict
    );
}

/// An ICMP echo (`request`: type 8, else 0) with identifier `ident`, from the port whose
/// address `src` is.
fn echo(src: Ipv4Addr, dst: Ipv4Addr, request: bool, ident: u16) -> Vec<u8> {
    let mut icmp = vec![if request { 8 } else { 0 }, 0, 0, 0];
    icmp.extend_from_slice(&ident.to_be_bytes());
    icmp.extend_from_slice(&[0, 1]);
    icmp.extend_from_slice(b"ping");
    let sum = checksum::checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut f = vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN];
    let src_mac = if src == CLIENT_IP {
        CLIENT_MAC
    } else {
        WEB_MAC
    };
    EthernetRepr {
        src: src_mac,
        dst: MacAddr::CALICO_HOST_SIDE,
        ethertype: ethertype::IPV4,
    }
    .emit(&mut f)
    .unwrap();
    Ipv4Repr::new(src, dst, protocol::ICMP, icmp.len() as u16)
        .emit(&mut f[ethernet::HEADER_LEN..])
        .unwrap();
    f.extend_from_slice(&icmp);
    f
}

/// Linux conntrack keys ICMP echo by type too: after the client pings web, web's own echo
/// request with the same identifier is not a reply of that flow but a new flow, which web's
/// egress (nothing allowed) denies.
#[test]
fn an_echo_request_with_a_tracked_pings_identifier_is_policed_as_new() {
    let mut node = Node::new();
    let (mut client, mut web) = policies();
    let builder = ClassifierBuilder::default();
    web.ingress = builder
        .compile(&rules(vec![Rule::any(Action::Allow)]))
        .unwrap();
    client.egress = builder
        .compile(&rules(vec![Rule::any(Action::Allow)]))
        .unwrap();
    node.tables.ports[CLIENT as usize].policy = Some(Arc::new(client));
    node.tables.ports[WEB as usize].policy = Some(Arc::new(web));

    assert_eq!(
        node.send(CLIENT, echo(CLIENT_IP, WEB_IP, true, 7)),
        Verdict::Forward(WEB),
        "the client's ping"
    );
    assert_eq!(
        node.send(WEB, echo(WEB_IP, CLIENT_IP, false, 7)),
        Verdict::Forward(CLIENT),
        "its reply, on the flow's word"
    );
    assert_eq!(
        node.send(WEB, echo(WEB_IP, CLIENT_IP, true, 7)),
        Verdict::Drop(DropReason::PolicyDenied),
        "web's own ping with the same identifier"
    );
    // The client's flow goes on.
    assert_eq!(
        node.send(CLIENT, echo(CLIENT_IP, WEB_IP, true, 7)),
        Verdict::Forward(WEB)
    );
}

/// A flood of new flows (issue 14 item 6): a workload opening connections as fast as it can
/// fills the table, whose room is fixed (no memory grows); the flood's unanswered flows evict
/// each other, an established connection is never evicted and keeps passing both ways (web's
/// replies pass only because it is tracked), and the evictions are counted.
#[test]
fn a_flood_of_new_flows_never_evicts_an_established_connection() {
    let mut node = Node::new();
    let capacity = node.state.flows.as_ref().unwrap().config().capacity;
    node.send(CLIENT, tcp(CLIENT_IP, 40000, WEB_IP, 80, 0x02));
    node.send(WEB, tcp(WEB_IP, 80, CLIENT_IP, 40000, 0x12));
    node.send(CLIENT, tcp(CLIENT_IP, 40000, WEB_IP, 80, 0x10));

    let flood = 100 * capacity as u16;
    for port in 0..flood {
        node.send(CLIENT, tcp(CLIENT_IP, 1024 + port, WEB_IP, 80, 0x02));
    }
    let table = node.state.flows.as_ref().unwrap();
    assert_eq!(table.len(), capacity, "the table is full, and no larger");
    assert!(
        table.counters().evicted >= u64::from(flood) - capacity as u64,
        "{:?}",
        table.counters()
    );

    assert_eq!(
        node.send(CLIENT, tcp(CLIENT_IP, 40000, WEB_IP, 80, 0x10)),
        Verdict::Forward(WEB),
        "the established connection's data"
    );
    assert_eq!(
        node.send(WEB, tcp(WEB_IP, 80, CLIENT_IP, 40000, 0x10)),
        Verdict::Forward(CLIENT),
        "its reply, which only its flow lets through"
    );
}
