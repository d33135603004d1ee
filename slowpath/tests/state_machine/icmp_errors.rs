//! ICMP errors (RFC 792, RFC 1812 section 4.3.2): which are sent, from which address, what
//! they quote, and the rate limit.

use super::*;

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
