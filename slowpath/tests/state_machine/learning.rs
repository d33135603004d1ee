//! Neighbour learning: a learned MAC fills every next hop to that neighbour.

use super::*;

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
