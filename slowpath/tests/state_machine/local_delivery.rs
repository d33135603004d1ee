//! Local delivery: echo requests to our addresses are answered, the rest counted and dropped.

use super::*;

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
