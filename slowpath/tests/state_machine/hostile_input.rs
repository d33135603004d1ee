//! Hostile input: malformed frames never panic and are never answered wrongly.

use super::*;

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
