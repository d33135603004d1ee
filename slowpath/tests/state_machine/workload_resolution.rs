//! Resolution on workload ports: held frames, our own ARP requests, retries and giving up.

use super::*;

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
