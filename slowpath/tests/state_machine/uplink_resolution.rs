//! Resolution on the uplink, where the kernel's neighbour table is the authority.

use super::*;

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
