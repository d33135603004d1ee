//! The slow path's state machine, driven with synthetic frames and a test clock.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fastpath::wire::ethernet::ethertype;
use fastpath::wire::icmpv4::msg_type;
use fastpath::wire::ipv4::protocol;
use fastpath::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetPacket, Icmpv4Packet, Ipv4Packet};
use fastpath::{MacAddr, PortId, PuntReason, Tables};
use slowpath::{Slowpath, SlowpathConfig, SlowpathCounters, SlowpathCountersSnapshot};

type Sent = Vec<(PortId, Vec<u8>)>;

struct Harness {
    slowpath: Slowpath<FakeKernel>,
    counters: Arc<SlowpathCounters>,
    tables: Tables,
    t0: Instant,
}

impl Harness {
    fn new(config: SlowpathConfig) -> Harness {
        let counters = Arc::new(SlowpathCounters::default());
        Harness {
            slowpath: Slowpath::new(config, counters.clone(), FakeKernel::default()),
            counters,
            tables: tables(),
            t0: Instant::now(),
        }
    }

    fn default() -> Harness {
        Harness::new(SlowpathConfig::default())
    }

    /// Handles one frame at `t0 + at` and returns what was sent.
    fn punt(&mut self, port: PortId, reason: PuntReason, frame: &[u8], at: Duration) -> Sent {
        let mut out = Vec::new();
        self.slowpath
            .handle(&self.tables, port, reason, frame, self.t0 + at, &mut out);
        out
    }

    fn tick(&mut self, at: Duration) -> Sent {
        let mut out = Vec::new();
        self.slowpath.tick(&self.tables, self.t0 + at, &mut out);
        out
    }

    fn counters(&self) -> SlowpathCountersSnapshot {
        self.counters.snapshot()
    }
}

const T0: Duration = Duration::ZERO;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn arp_of(frame: &[u8]) -> (EthernetPacket<&[u8]>, ArpRepr) {
    let eth = EthernetPacket::new_checked(frame).unwrap();
    assert_eq!(eth.ethertype(), ethertype::ARP);
    let arp = ArpRepr::parse(&ArpPacket::new_checked(&frame[14..]).unwrap()).unwrap();
    (eth, arp)
}

type IcmpFrame<'a> = (
    EthernetPacket<&'a [u8]>,
    Ipv4Packet<&'a [u8]>,
    Icmpv4Packet<&'a [u8]>,
);

/// The Ethernet header, IPv4 header and ICMP message of a frame the slow path sent, with
/// every checksum checked.
fn icmp_of(frame: &[u8]) -> IcmpFrame<'_> {
    let eth = EthernetPacket::new_checked(frame).unwrap();
    assert_eq!(eth.ethertype(), ethertype::IPV4);
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    assert!(ip.verify_checksum(), "IPv4 header checksum");
    assert_eq!(ip.protocol(), protocol::ICMP);
    let icmp_bytes = &frame[14 + ip.header_len()..14 + usize::from(ip.total_len())];
    let icmp = Icmpv4Packet::new_checked(icmp_bytes).unwrap();
    assert!(icmp.verify_checksum(), "ICMP checksum");
    (eth, ip, icmp)
}

// ---- proxy ARP ------------------------------------------------------------------------------

#[test]
fn proxy_arp_answers_a_workload_asking_for_the_gateway() {
    let mut h = Harness::default();
    let sent = h.punt(
        WORKLOAD_A,
        PuntReason::Arp,
        &arp_request(A_MAC, A_IP, LINK_LOCAL_GW),
        T0,
    );
    assert_eq!(sent.len(), 1);
    let (port, frame) = &sent[0];
    assert_eq!(*port, WORKLOAD_A, "the reply leaves by the ingress port");
    let (eth, arp) = arp_of(frame);
    assert_eq!(eth.dst_addr(), A_MAC);
    assert_eq!(eth.src_addr(), MacAddr::CALICO_HOST_SIDE);
    assert_eq!(
        arp,
        ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: MacAddr::CALICO_HOST_SIDE,
            sender_ip: LINK_LOCAL_GW,
            target_mac: A_MAC,
            target_ip: A_IP,
        }
    );
    assert!(frame.len() >= 60, "padded to the Ethernet minimum");
    assert_eq!(h.counters().arp_requests_answered, 1);
}

#[test]
fn proxy_arp_answers_for_any_target_address() {
    let mut h = Harness::default();
    let sent = h.punt(
        WORKLOAD_A,
        PuntReason::Arp,
        &arp_request(A_MAC, A_IP, REMOTE_IP),
        T0,
    );
    let (_, arp) = arp_of(&sent[0].1);
    assert_eq!(
        (arp.sender_ip, arp.sender_mac),
        (REMOTE_IP, MacAddr::CALICO_HOST_SIDE)
    );
}

#[test]
fn no_reply_to_a_duplicate_address_probe_from_0_0_0_0() {
    let mut h = Harness::default();
    let sent = h.punt(
        WORKLOAD_A,
        PuntReason::Arp,
        &arp_request(A_MAC, Ipv4Addr::UNSPECIFIED, A_IP),
        T0,
    );
    assert!(sent.is_empty());
    assert_eq!(h.counters().arp_requests_answered, 0);
    assert!(h.slowpath.neighbors().is_empty(), "a probe teaches nothing");
}

#[test]
fn no_reply_to_a_gratuitous_arp_but_the_sender_is_learned() {
    let mut h = Harness::default();
    let sent = h.punt(
        WORKLOAD_A,
        PuntReason::Arp,
        &arp_request(A_MAC, A_IP, A_IP),
        T0,
    );
    assert!(sent.is_empty());
    assert_eq!(h.tables.next_hops[NH_A as usize].mac(), Some(A_MAC));
}

#[test]
fn no_proxy_reply_on_the_uplink_whose_arp_belongs_to_the_kernel() {
    let mut h = Harness::default();
    let sent = h.punt(
        UPLINK,
        PuntReason::Arp,
        &arp_request(GATEWAY_MAC, GATEWAY_IP, NODE_IP),
        T0,
    );
    assert!(sent.is_empty());
    assert_eq!(h.counters().arp_requests_answered, 0);
    assert_eq!(
        h.tables.next_hops[NH_GATEWAY as usize].mac(),
        Some(GATEWAY_MAC),
        "still learned"
    );
}

#[test]
fn no_reply_to_an_arp_reply() {
    let mut h = Harness::default();
    let reply = arp_frame(
        ArpOperation::Reply,
        MacAddr::CALICO_HOST_SIDE,
        A_MAC,
        A_IP,
        LINK_LOCAL_GW,
    );
    assert!(h.punt(WORKLOAD_A, PuntReason::Arp, &reply, T0).is_empty());
    assert_eq!(h.tables.next_hops[NH_A as usize].mac(), Some(A_MAC));
}

#[test]
fn no_reply_and_nothing_learned_from_a_broadcast_sender_mac() {
    let mut h = Harness::default();
    let sent = h.punt(
        WORKLOAD_A,
        PuntReason::Arp,
        &arp_request(MacAddr::BROADCAST, A_IP, LINK_LOCAL_GW),
        T0,
    );
    assert!(sent.is_empty());
    assert!(h.slowpath.neighbors().is_empty());
}

// ---- neighbour learning ---------------------------------------------------------------------

#[test]
fn learning_fills_every_next_hop_to_that_neighbor_on_that_port_only() {
    let mut h = Harness::default();
    h.punt(
        WORKLOAD_A,
        PuntReason::Arp,
        &arp_request(A_MAC, A_IP, LINK_LOCAL_GW),
        T0,
    );
    assert_eq!(h.tables.next_hops[NH_A as usize].mac(), Some(A_MAC));
    assert_eq!(h.tables.next_hops[NH_A_AGAIN as usize].mac(), Some(A_MAC));
    assert_eq!(h.tables.next_hops[NH_B as usize].mac(), None);
    // The same IP claimed on another port does not touch A's next hops.
    h.punt(
        WORKLOAD_B,
        PuntReason::Arp,
        &arp_request(B_MAC, A_IP, LINK_LOCAL_GW),
        T0,
    );
    assert_eq!(h.tables.next_hops[NH_A as usize].mac(), Some(A_MAC));
    assert_eq!(h.counters().arp_learned, 2);
}

#[test]
fn a_changed_mac_replaces_the_old_one() {
    let mut h = Harness::default();
    h.punt(
        WORKLOAD_A,
        PuntReason::Arp,
        &arp_request(A_MAC, A_IP, LINK_LOCAL_GW),
        T0,
    );
    h.punt(
        WORKLOAD_A,
        PuntReason::Arp,
        &arp_request(B_MAC, A_IP, LINK_LOCAL_GW),
        ms(10),
    );
    assert_eq!(h.tables.next_hops[NH_A as usize].mac(), Some(B_MAC));
}

#[test]
fn known_macs_are_reapplied_to_a_new_snapshot() {
    let mut h = Harness::default();
    h.punt(
        WORKLOAD_A,
        PuntReason::Arp,
        &arp_request(A_MAC, A_IP, LINK_LOCAL_GW),
        T0,
    );
    // Control publishes new tables: fresh next hops know nothing.
    h.tables = tables();
    assert_eq!(h.tables.next_hops[NH_A as usize].mac(), None);
    h.slowpath.tables_changed(&h.tables);
    assert_eq!(h.tables.next_hops[NH_A as usize].mac(), Some(A_MAC));
    assert_eq!(h.tables.next_hops[NH_A_AGAIN as usize].mac(), Some(A_MAC));
    assert_eq!(h.tables.next_hops[NH_B as usize].mac(), None);
}

// ---- resolution on workload ports -----------------------------------------------------------

fn assert_arp_request_for(sent: &(PortId, Vec<u8>), port: PortId, target: Ipv4Addr) {
    assert_eq!(sent.0, port);
    let (eth, arp) = arp_of(&sent.1);
    assert_eq!(eth.dst_addr(), MacAddr::BROADCAST);
    assert_eq!(eth.src_addr(), MacAddr::CALICO_HOST_SIDE);
    assert_eq!(arp.operation, ArpOperation::Request);
    assert_eq!(
        (arp.sender_mac, arp.sender_ip, arp.target_ip),
        (MacAddr::CALICO_HOST_SIDE, LINK_LOCAL_GW, target)
    );
}

fn frame_from_b_to_a(ttl: u8) -> Vec<u8> {
    ipv4_frame(
        B_MAC,
        MacAddr::CALICO_HOST_SIDE,
        B_IP,
        A_IP,
        ttl,
        protocol::UDP,
        b"payload!",
    )
}

#[test]
fn an_unresolved_frame_is_held_resolved_by_arp_and_forwarded() {
    let mut h = Harness::default();
    let frame = frame_from_b_to_a(64);
    let sent = h.punt(WORKLOAD_B, PuntReason::Unresolved(NH_A), &frame, T0);
    assert_eq!(sent.len(), 1);
    assert_arp_request_for(&sent[0], WORKLOAD_A, A_IP);
    assert_eq!(
        (
            h.slowpath.held(),
            h.counters().held,
            h.counters().arp_requests_sent
        ),
        (1, 1, 1)
    );

    // A second frame for the same neighbour is held without a second request.
    assert!(h
        .punt(WORKLOAD_B, PuntReason::Unresolved(NH_A), &frame, ms(1))
        .is_empty());

    // A answers.
    let reply = arp_frame(
        ArpOperation::Reply,
        MacAddr::CALICO_HOST_SIDE,
        A_MAC,
        A_IP,
        LINK_LOCAL_GW,
    );
    let sent = h.punt(WORKLOAD_A, PuntReason::Arp, &reply, ms(5));
    assert_eq!(sent.len(), 2);
    for (port, out) in &sent {
        assert_eq!(*port, WORKLOAD_A);
        let eth = EthernetPacket::new_checked(&out[..]).unwrap();
        assert_eq!(
            (eth.src_addr(), eth.dst_addr()),
            (MacAddr::CALICO_HOST_SIDE, A_MAC)
        );
        let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
        assert_eq!(ip.ttl(), 63);
        assert!(ip.verify_checksum());
        assert_eq!(ip.payload(), b"payload!");
    }
    assert_eq!(h.tables.next_hops[NH_A as usize].mac(), Some(A_MAC));
    assert_eq!((h.slowpath.held(), h.slowpath.resolving()), (0, 0));
    assert_eq!(h.counters().held_forwarded, 2);
    // Nothing left to retry.
    assert!(h.tick(Duration::from_secs(10)).is_empty());
}

#[test]
fn a_punt_for_an_already_known_neighbor_is_forwarded_at_once() {
    let mut h = Harness::default();
    h.punt(
        WORKLOAD_A,
        PuntReason::Arp,
        &arp_request(A_MAC, A_IP, LINK_LOCAL_GW),
        T0,
    );
    // Tables published after learning: the frame was punted before the MAC was re-applied.
    h.tables = tables();
    let sent = h.punt(
        WORKLOAD_B,
        PuntReason::Unresolved(NH_A),
        &frame_from_b_to_a(5),
        ms(1),
    );
    assert_eq!(sent.len(), 1);
    let eth = EthernetPacket::new_checked(&sent[0].1[..]).unwrap();
    assert_eq!(eth.dst_addr(), A_MAC);
    assert_eq!(Ipv4Packet::new_checked(&sent[0].1[14..]).unwrap().ttl(), 4);
    assert_eq!(h.tables.next_hops[NH_A as usize].mac(), Some(A_MAC));
    assert_eq!(h.slowpath.held(), 0);
}

#[test]
fn hold_queues_are_bounded_per_neighbor_and_in_total() {
    let mut h = Harness::new(SlowpathConfig {
        hold_per_neighbor: 2,
        hold_total: 3,
        ..Default::default()
    });
    for i in 0..3 {
        h.punt(
            WORKLOAD_B,
            PuntReason::Unresolved(NH_A),
            &frame_from_b_to_a(64 - i),
            ms(u64::from(i)),
        );
    }
    // Per neighbour: 2 kept (the oldest dropped), counted.
    assert_eq!(h.slowpath.held(), 2);
    assert_eq!((h.counters().held, h.counters().held_dropped), (3, 1));
    h.punt(
        WORKLOAD_A,
        PuntReason::Unresolved(NH_B),
        &datagram_from_a(B_IP, 64, 8),
        ms(3),
    );
    assert_eq!(h.slowpath.held(), 3);
    // In total: the fourth distinct frame is refused.
    h.punt(
        UPLINK,
        PuntReason::Unresolved(NH_GATEWAY),
        &datagram_from_a(REMOTE_IP, 64, 8),
        ms(4),
    );
    assert_eq!(h.slowpath.held(), 3);
    assert_eq!(h.counters().held_dropped, 2);
    // The queue kept the newest frames for A: TTLs 63 and 62 (after the decrement: 62, 61).
    let reply = arp_frame(
        ArpOperation::Reply,
        MacAddr::CALICO_HOST_SIDE,
        A_MAC,
        A_IP,
        LINK_LOCAL_GW,
    );
    let sent = h.punt(WORKLOAD_A, PuntReason::Arp, &reply, ms(5));
    let ttls: Vec<u8> = sent
        .iter()
        .map(|(_, f)| Ipv4Packet::new_checked(&f[14..]).unwrap().ttl())
        .collect();
    assert_eq!(ttls, vec![62, 61]);
}

#[test]
fn resolution_retries_every_interval_then_gives_up_with_host_unreachable() {
    let mut h = Harness::default();
    let frame = frame_from_b_to_a(64);
    assert_eq!(
        h.punt(WORKLOAD_B, PuntReason::Unresolved(NH_A), &frame, T0)
            .len(),
        1
    );
    assert!(h.tick(ms(999)).is_empty(), "not yet due");
    let sent = h.tick(ms(1000));
    assert_eq!(sent.len(), 1);
    assert_arp_request_for(&sent[0], WORKLOAD_A, A_IP);
    let sent = h.tick(ms(2000));
    assert_eq!(sent.len(), 1, "third and last request");
    assert_eq!(h.counters().arp_requests_sent, 3);
    assert_eq!(h.slowpath.held(), 1);

    let sent = h.tick(ms(3000));
    assert_eq!(sent.len(), 1, "one host unreachable for the one held frame");
    let (port, out) = &sent[0];
    assert_eq!(
        *port, WORKLOAD_B,
        "the error goes back out of the frame's ingress port"
    );
    let (eth, ip, icmp) = icmp_of(out);
    assert_eq!(eth.dst_addr(), B_MAC);
    assert_eq!(ip.dst_addr(), B_IP);
    assert_eq!(
        (icmp.msg_type(), icmp.msg_code()),
        (msg_type::DST_UNREACHABLE, 1)
    );
    assert_eq!(icmp.data(), &frame[14..], "quotes the original datagram");
    let c = h.counters();
    assert_eq!(
        (c.held_dropped, c.resolution_failed, c.icmp_unreachable_sent),
        (1, 1, 1)
    );
    assert_eq!((h.slowpath.held(), h.slowpath.resolving()), (0, 0));
    assert!(h.tick(ms(10_000)).is_empty());
    // A later frame starts a new resolution.
    assert_eq!(
        h.punt(WORKLOAD_B, PuntReason::Unresolved(NH_A), &frame, ms(10_001))
            .len(),
        1
    );
}

// ---- resolution on the uplink ---------------------------------------------------------------

#[test]
fn uplink_neighbors_are_resolved_by_the_kernel_not_by_our_arp() {
    let mut h = Harness::default();
    let frame = datagram_from_a(REMOTE_IP, 64, 16);
    let sent = h.punt(WORKLOAD_A, PuntReason::Unresolved(NH_GATEWAY), &frame, T0);
    assert!(sent.is_empty(), "no ARP of ours on the uplink");
    assert_eq!(
        h.slowpath.kernel_mut().solicited,
        vec![("eth0".to_string(), GATEWAY_IP)]
    );
    assert_eq!(h.slowpath.held(), 1);
    assert!(h.tick(ms(20)).is_empty(), "the kernel has no answer yet");

    h.slowpath
        .kernel_mut()
        .table
        .insert(("eth0".into(), GATEWAY_IP), GATEWAY_MAC);
    let sent = h.tick(ms(40));
    assert_eq!(sent.len(), 1);
    let (port, out) = &sent[0];
    assert_eq!(*port, UPLINK);
    let eth = EthernetPacket::new_checked(&out[..]).unwrap();
    assert_eq!((eth.src_addr(), eth.dst_addr()), (UPLINK_MAC, GATEWAY_MAC));
    assert_eq!(
        h.tables.next_hops[NH_GATEWAY as usize].mac(),
        Some(GATEWAY_MAC)
    );
    assert_eq!(h.slowpath.resolving(), 0);
}

#[test]
fn an_uplink_neighbor_the_kernel_already_knows_is_used_at_once() {
    let mut h = Harness::default();
    h.slowpath
        .kernel_mut()
        .table
        .insert(("eth0".into(), GATEWAY_IP), GATEWAY_MAC);
    let sent = h.punt(
        WORKLOAD_A,
        PuntReason::Unresolved(NH_GATEWAY),
        &datagram_from_a(REMOTE_IP, 64, 16),
        T0,
    );
    assert_eq!(sent.len(), 1);
    assert_eq!(
        EthernetPacket::new_checked(&sent[0].1[..])
            .unwrap()
            .dst_addr(),
        GATEWAY_MAC
    );
    assert!(h.slowpath.kernel_mut().solicited.is_empty());
}

#[test]
fn an_uplink_neighbor_the_kernel_never_resolves_is_given_up() {
    let mut h = Harness::default();
    h.punt(
        WORKLOAD_A,
        PuntReason::Unresolved(NH_GATEWAY),
        &datagram_from_a(REMOTE_IP, 64, 16),
        T0,
    );
    let mut sent = Sent::new();
    for step in 1..=400u64 {
        sent.extend(h.tick(ms(step * 10)));
    }
    assert_eq!(h.slowpath.kernel_mut().solicited.len(), 3);
    assert_eq!(sent.len(), 1);
    let (_, ip, icmp) = icmp_of(&sent[0].1);
    assert_eq!(
        (ip.dst_addr(), icmp.msg_type(), icmp.msg_code()),
        (A_IP, msg_type::DST_UNREACHABLE, 1)
    );
}

#[test]
fn resolved_uplink_neighbors_follow_the_kernel() {
    let mut h = Harness::default();
    h.slowpath
        .kernel_mut()
        .table
        .insert(("eth0".into(), GATEWAY_IP), GATEWAY_MAC);
    h.punt(
        WORKLOAD_A,
        PuntReason::Unresolved(NH_GATEWAY),
        &datagram_from_a(REMOTE_IP, 64, 8),
        T0,
    );
    h.tick(T0);
    // The gateway is replaced by one with another MAC; the kernel learns it first.
    let new_mac = MacAddr([0x52, 0x54, 0, 0, 0, 0xfd]);
    h.slowpath
        .kernel_mut()
        .table
        .insert(("eth0".into(), GATEWAY_IP), new_mac);
    h.tick(Duration::from_secs(9));
    assert_eq!(
        h.tables.next_hops[NH_GATEWAY as usize].mac(),
        Some(GATEWAY_MAC),
        "not yet"
    );
    h.tick(Duration::from_secs(10));
    assert_eq!(h.tables.next_hops[NH_GATEWAY as usize].mac(), Some(new_mac));
    // The kernel forgets it: the MAC stays in use and the kernel is asked again.
    h.slowpath.kernel_mut().table.clear();
    h.tick(Duration::from_secs(20));
    assert_eq!(h.tables.next_hops[NH_GATEWAY as usize].mac(), Some(new_mac));
    assert_eq!(
        h.slowpath.kernel_mut().solicited,
        vec![("eth0".to_string(), GATEWAY_IP)]
    );
}

// ---- ICMP errors ----------------------------------------------------------------------------

#[test]
fn ttl_expired_gets_time_exceeded_from_the_ingress_port_address() {
    let mut h = Harness::default();
    let frame = datagram_from_a(REMOTE_IP, 1, 32);
    let sent = h.punt(WORKLOAD_A, PuntReason::TtlExpired, &frame, T0);
    assert_eq!(sent.len(), 1);
    let (port, out) = &sent[0];
    assert_eq!(*port, WORKLOAD_A);
    let (eth, ip, icmp) = icmp_of(out);
    assert_eq!(
        (eth.src_addr(), eth.dst_addr()),
        (MacAddr::CALICO_HOST_SIDE, A_MAC)
    );
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.ttl()),
        (LINK_LOCAL_GW, A_IP, 64)
    );
    assert_eq!(
        (icmp.msg_type(), icmp.msg_code()),
        (msg_type::TIME_EXCEEDED, 0)
    );
    assert_eq!(icmp.data(), &frame[14..]);
    assert_eq!(h.counters().icmp_time_exceeded_sent, 1);
}

#[test]
fn no_route_gets_net_unreachable_from_the_node_address_when_configured() {
    let mut h = Harness::new(SlowpathConfig {
        node_ip: Some(NODE_IP),
        ..Default::default()
    });
    let sent = h.punt(
        WORKLOAD_A,
        PuntReason::NoRoute,
        &datagram_from_a(REMOTE_IP, 64, 8),
        T0,
    );
    let (_, ip, icmp) = icmp_of(&sent[0].1);
    assert_eq!(ip.src_addr(), NODE_IP);
    assert_eq!(
        (icmp.msg_type(), icmp.msg_code()),
        (msg_type::DST_UNREACHABLE, 0)
    );
    assert_eq!(h.counters().icmp_unreachable_sent, 1);
}

#[test]
fn an_icmp_error_quotes_no_more_than_fits_in_576_bytes() {
    let mut h = Harness::default();
    let frame = datagram_from_a(REMOTE_IP, 64, 1400);
    let sent = h.punt(WORKLOAD_A, PuntReason::NoRoute, &frame, T0);
    let (_, ip, icmp) = icmp_of(&sent[0].1);
    assert_eq!(ip.total_len(), 576);
    assert_eq!(icmp.data(), &frame[14..14 + 548]);
}

#[test]
fn errors_are_sent_about_echo_requests_but_never_about_icmp_errors() {
    let mut h = Harness::default();
    let echo = icmp_message(msg_type::ECHO_REQUEST, 0, 0x0001_0001, b"ping");
    let frame = ipv4_frame(
        A_MAC,
        MacAddr::CALICO_HOST_SIDE,
        A_IP,
        REMOTE_IP,
        1,
        protocol::ICMP,
        &echo,
    );
    assert_eq!(
        h.punt(WORKLOAD_A, PuntReason::TtlExpired, &frame, T0).len(),
        1
    );

    let quoted = datagram_from_a(REMOTE_IP, 64, 8);
    for (t, code) in [
        (msg_type::DST_UNREACHABLE, 1),
        (msg_type::TIME_EXCEEDED, 0),
        (msg_type::REDIRECT, 0),
        (msg_type::PARAMETER_PROBLEM, 0),
        (4, 0),
    ] {
        let error = icmp_message(t, code, 0, &quoted[14..]);
        let frame = ipv4_frame(
            A_MAC,
            MacAddr::CALICO_HOST_SIDE,
            A_IP,
            REMOTE_IP,
            1,
            protocol::ICMP,
            &error,
        );
        assert!(
            h.punt(WORKLOAD_A, PuntReason::TtlExpired, &frame, T0)
                .is_empty(),
            "about ICMP type {t}"
        );
        assert!(
            h.punt(WORKLOAD_A, PuntReason::NoRoute, &frame, T0)
                .is_empty(),
            "about ICMP type {t}"
        );
    }
    // An ICMP message too short to show its type is not answered either.
    let frame = ipv4_frame(
        A_MAC,
        MacAddr::CALICO_HOST_SIDE,
        A_IP,
        REMOTE_IP,
        1,
        protocol::ICMP,
        &[8, 0],
    );
    assert!(h
        .punt(WORKLOAD_A, PuntReason::TtlExpired, &frame, T0)
        .is_empty());
    assert_eq!(h.counters().icmp_error_suppressed, 11);
}

#[test]
fn no_icmp_error_about_broadcast_multicast_or_unspecified_addresses() {
    let mut h = Harness::default();
    let cases = [
        ipv4_frame(
            A_MAC,
            MacAddr::CALICO_HOST_SIDE,
            A_IP,
            Ipv4Addr::BROADCAST,
            1,
            protocol::UDP,
            b"x",
        ),
        ipv4_frame(
            A_MAC,
            MacAddr::CALICO_HOST_SIDE,
            A_IP,
            Ipv4Addr::new(224, 0, 0, 5),
            1,
            protocol::UDP,
            b"x",
        ),
        ipv4_frame(
            A_MAC,
            MacAddr::CALICO_HOST_SIDE,
            A_IP,
            Ipv4Addr::UNSPECIFIED,
            1,
            protocol::UDP,
            b"x",
        ),
        ipv4_frame(
            A_MAC,
            MacAddr::CALICO_HOST_SIDE,
            Ipv4Addr::UNSPECIFIED,
            REMOTE_IP,
            1,
            protocol::UDP,
            b"x",
        ),
        ipv4_frame(
            A_MAC,
            MacAddr::CALICO_HOST_SIDE,
            Ipv4Addr::BROADCAST,
            REMOTE_IP,
            1,
            protocol::UDP,
            b"x",
        ),
        ipv4_frame(
            A_MAC,
            MacAddr::CALICO_HOST_SIDE,
            Ipv4Addr::new(239, 1, 1, 1),
            REMOTE_IP,
            1,
            protocol::UDP,
            b"x",
        ),
        ipv4_frame(
            A_MAC,
            MacAddr::CALICO_HOST_SIDE,
            Ipv4Addr::new(127, 0, 0, 1),
            REMOTE_IP,
            1,
            protocol::UDP,
            b"x",
        ),
        // Unicast IP but a link-layer broadcast or multicast frame.
        ipv4_frame(
            A_MAC,
            MacAddr::BROADCAST,
            A_IP,
            REMOTE_IP,
            1,
            protocol::UDP,
            b"x",
        ),
        ipv4_frame(
            A_MAC,
            MacAddr([0x01, 0x00, 0x5e, 0, 0, 5]),
            A_IP,
            REMOTE_IP,
            1,
            protocol::UDP,
            b"x",
        ),
    ];
    for (i, frame) in cases.iter().enumerate() {
        assert!(
            h.punt(WORKLOAD_A, PuntReason::TtlExpired, frame, T0)
                .is_empty(),
            "case {i}"
        );
        assert!(
            h.punt(WORKLOAD_A, PuntReason::NoRoute, frame, T0)
                .is_empty(),
            "case {i}"
        );
    }
    assert_eq!(h.counters().icmp_error_suppressed, 2 * cases.len() as u64);
}

#[test]
fn no_icmp_error_about_a_non_initial_fragment_but_one_about_the_first() {
    let mut h = Harness::default();
    let mut later = datagram_from_a(REMOTE_IP, 1, 64);
    set_fragment(&mut later, true, 1480);
    assert!(h
        .punt(WORKLOAD_A, PuntReason::TtlExpired, &later, T0)
        .is_empty());
    let mut first = datagram_from_a(REMOTE_IP, 1, 64);
    set_fragment(&mut first, true, 0);
    assert_eq!(
        h.punt(WORKLOAD_A, PuntReason::TtlExpired, &first, T0).len(),
        1
    );
}

#[test]
fn icmp_errors_are_rate_limited_by_a_token_bucket() {
    let mut h = Harness::new(SlowpathConfig {
        icmp_rate_per_sec: 10,
        icmp_burst: 3,
        ..Default::default()
    });
    let frame = datagram_from_a(REMOTE_IP, 1, 8);
    let sent: usize = (0..10)
        .map(|_| h.punt(WORKLOAD_A, PuntReason::TtlExpired, &frame, T0).len())
        .sum();
    assert_eq!(sent, 3, "the burst");
    assert_eq!(h.counters().icmp_rate_limited, 7);
    // 10 per second: one more token after 100 ms.
    assert!(h
        .punt(WORKLOAD_A, PuntReason::TtlExpired, &frame, ms(99))
        .is_empty());
    assert_eq!(
        h.punt(WORKLOAD_A, PuntReason::TtlExpired, &frame, ms(100))
            .len(),
        1
    );
    assert!(h
        .punt(WORKLOAD_A, PuntReason::TtlExpired, &frame, ms(100))
        .is_empty());
    assert_eq!(h.counters().icmp_time_exceeded_sent, 4);
}

#[test]
fn suppressed_errors_do_not_use_up_the_rate_limit() {
    let mut h = Harness::new(SlowpathConfig {
        icmp_rate_per_sec: 0,
        icmp_burst: 1,
        ..Default::default()
    });
    let broadcast = datagram_from_a(Ipv4Addr::BROADCAST, 1, 8);
    assert!(h
        .punt(WORKLOAD_A, PuntReason::TtlExpired, &broadcast, T0)
        .is_empty());
    assert_eq!(
        h.punt(
            WORKLOAD_A,
            PuntReason::TtlExpired,
            &datagram_from_a(REMOTE_IP, 1, 8),
            T0
        )
        .len(),
        1
    );
    assert_eq!(h.counters().icmp_rate_limited, 0);
}

// ---- local delivery -------------------------------------------------------------------------

fn echo_request_from_a(dst: Ipv4Addr) -> (Vec<u8>, Vec<u8>) {
    let echo = icmp_message(msg_type::ECHO_REQUEST, 0, 0x1234_0007, b"abcdefghijklmnop");
    (
        ipv4_frame(
            A_MAC,
            MacAddr::CALICO_HOST_SIDE,
            A_IP,
            dst,
            64,
            protocol::ICMP,
            &echo,
        ),
        echo,
    )
}

#[test]
fn echo_requests_to_the_gateway_address_are_answered() {
    let mut h = Harness::default();
    let (frame, _) = echo_request_from_a(LINK_LOCAL_GW);
    let sent = h.punt(WORKLOAD_A, PuntReason::Local, &frame, T0);
    assert_eq!(sent.len(), 1);
    let (port, out) = &sent[0];
    assert_eq!(*port, WORKLOAD_A);
    let (eth, ip, icmp) = icmp_of(out);
    assert_eq!(
        (eth.src_addr(), eth.dst_addr()),
        (MacAddr::CALICO_HOST_SIDE, A_MAC)
    );
    assert_eq!((ip.src_addr(), ip.dst_addr()), (LINK_LOCAL_GW, A_IP));
    assert_eq!(
        (icmp.msg_type(), icmp.echo_ident(), icmp.echo_seq_no()),
        (msg_type::ECHO_REPLY, 0x1234, 7)
    );
    assert_eq!(icmp.data(), b"abcdefghijklmnop");
    assert_eq!(h.counters().icmp_echo_replies_sent, 1);
}

#[test]
fn echo_requests_to_the_node_address_are_answered() {
    let mut h = Harness::new(SlowpathConfig {
        node_ip: Some(Ipv4Addr::new(172, 16, 0, 1)),
        ..Default::default()
    });
    let (frame, _) = echo_request_from_a(Ipv4Addr::new(172, 16, 0, 1));
    let sent = h.punt(WORKLOAD_A, PuntReason::Local, &frame, T0);
    let (_, ip, _) = icmp_of(&sent[0].1);
    assert_eq!(ip.src_addr(), Ipv4Addr::new(172, 16, 0, 1));
}

#[test]
fn other_local_traffic_is_counted_and_dropped() {
    let mut h = Harness::default();
    let (to_stranger, _) = echo_request_from_a(REMOTE_IP);
    let udp = datagram_from_a(LINK_LOCAL_GW, 64, 8);
    let reply = ipv4_frame(
        A_MAC,
        MacAddr::CALICO_HOST_SIDE,
        A_IP,
        LINK_LOCAL_GW,
        64,
        protocol::ICMP,
        &icmp_message(msg_type::ECHO_REPLY, 0, 0, b"x"),
    );
    for frame in [to_stranger, udp, reply] {
        assert!(h.punt(WORKLOAD_A, PuntReason::Local, &frame, T0).is_empty());
    }
    assert_eq!(h.counters().local_dropped, 3);
}

// ---- hostile input --------------------------------------------------------------------------

#[test]
fn malformed_frames_never_panic_and_are_never_answered_wrongly() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut h = Harness::new(SlowpathConfig {
        icmp_rate_per_sec: 1_000_000,
        icmp_burst: 1_000_000,
        ..Default::default()
    });
    let reasons = [
        PuntReason::Arp,
        PuntReason::TtlExpired,
        PuntReason::NoRoute,
        PuntReason::Local,
        PuntReason::Unresolved(NH_A),
        PuntReason::Unresolved(NH_GATEWAY),
        PuntReason::Unresolved(NH_LOCAL),
        PuntReason::Unresolved(u32::MAX),
    ];
    let valid = [
        arp_request(A_MAC, A_IP, LINK_LOCAL_GW),
        datagram_from_a(REMOTE_IP, 1, 40),
        echo_request_from_a(LINK_LOCAL_GW).0,
    ];
    let mut inputs: Vec<Vec<u8>> = Vec::new();
    for v in &valid {
        // Every truncation, including a truncated ARP.
        inputs.extend((0..v.len()).map(|n| v[..n].to_vec()));
        for _ in 0..300 {
            let mut b = v.clone();
            let at = rng.gen_range(0..b.len());
            b[at] = rng.gen();
            inputs.push(b);
        }
    }
    for _ in 0..1000 {
        let len = rng.gen_range(0..200);
        inputs.push((0..len).map(|_| rng.gen()).collect());
    }
    let ports = [UPLINK, WORKLOAD_A, WORKLOAD_B, 999];
    let mut sent = 0;
    for (i, input) in inputs.iter().enumerate() {
        let reason = reasons[i % reasons.len()];
        let port = ports[i % ports.len()];
        sent += h.punt(port, reason, input, ms(i as u64)).len();
        sent += h.tick(ms(i as u64)).len();
    }
    assert_eq!(h.counters().frames_received, inputs.len() as u64);
    assert!(h.slowpath.held() <= SlowpathConfig::default().hold_total);
    assert!(
        sent > 0,
        "some mutated frames are still valid and get answers"
    );
}

#[test]
fn truncated_arp_is_ignored_without_an_answer() {
    let mut h = Harness::default();
    let request = arp_request(A_MAC, A_IP, LINK_LOCAL_GW);
    for n in 0..request.len() {
        assert!(
            h.punt(WORKLOAD_A, PuntReason::Arp, &request[..n], T0)
                .is_empty(),
            "{n} bytes"
        );
    }
    assert_eq!(h.counters().arp_ignored, request.len() as u64);
    assert!(h.slowpath.neighbors().is_empty());
}
