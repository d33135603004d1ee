//! Proxy ARP: which requests are answered and which are not.

use super::*;

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
