//! The pipeline's rate limits (a workload's `qosControls` / CNI bandwidth) on synthetic frames
//! at a simulated time: what a workload sends is charged to its egress limit whatever the
//! destination, what is forwarded to it to its ingress limit once policy has allowed it, the
//! excess is dropped as `RateLimited`, and ports without limits are left alone.

use std::net::Ipv4Addr;
use std::sync::Arc;

use fastpath::classifier::{
    protocol as proto, Action, ClassifierBuilder, EndpointMatch, EndpointRules, IpSets, Policy,
    PortRange, Rule, Tier, TierDefaultAction,
};
use fastpath::conntrack::{FlowTable, FlowTableConfig};
use fastpath::offload::{Gso, GsoKind};
use fastpath::pipeline::harness::{process_counted_at, process_counted_policed};
use fastpath::pipeline::{process_offloaded, Policing};
use fastpath::policy::{EndpointPolicy, PolicyState};
use fastpath::qos::{DirectionLimits, PortQos, QosLimits, Rate};
use fastpath::tables::FloatingIps;
use fastpath::wire::ethernet::{self, ethertype};
use fastpath::wire::ipv4::{self, protocol};
use fastpath::wire::{ArpOperation, ArpRepr, EthernetRepr, Ipv4Repr, UdpRepr};
use fastpath::{
    DropReason, Fib, MacAddr, NextHop, NextHopKind, PipelineCounters, PortId, PortInfo, PortKind,
    PuntReason, Tables, Verdict,
};

const A: PortId = 0;
const B: PortId = 1;
const UPLINK: PortId = 2;
const A_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
const B_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 3);
const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
/// B's floating IP (in the floating IP test only).
const FLOATING_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
/// Another node, which tunnels to this one.
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 20);
const A_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const B_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
const UPLINK_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 1]);
const GATEWAY_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0xfe]);

const SECOND: u64 = 1_000_000_000;
/// The UDP port B's policy (when it has one) lets in; any other is denied.
const ALLOWED_PORT: u16 = 5201;
const DENIED_PORT: u16 = 9;

fn bandwidth(bits: u64, burst_bits: u64) -> DirectionLimits {
    DirectionLimits {
        bandwidth: Some(Rate {
            per_second: bits,
            burst: burst_bits,
        }),
        packets: None,
    }
}

fn packet_rate(per_second: u64, burst: u64) -> DirectionLimits {
    DirectionLimits {
        bandwidth: None,
        packets: Some(Rate { per_second, burst }),
    }
}

fn limited(ingress: DirectionLimits, egress: DirectionLimits) -> Option<Arc<PortQos>> {
    Some(Arc::new(PortQos::new(QosLimits { ingress, egress })))
}

/// B lets in UDP to [`ALLOWED_PORT`] only and may send anything.
fn b_policy() -> Arc<EndpointPolicy> {
    let builder = ClassifierBuilder::default();
    let rules = |rules: Vec<Rule>| EndpointRules {
        tiers: vec![Tier {
            name: "default".into(),
            order: None,
            default_action: TierDefaultAction::Deny,
            policies: vec![Policy {
                name: "p".into(),
                order: Some(1.0),
                rules,
            }],
        }],
        profiles: Vec::new(),
    };
    let allow_port = Rule {
        protocol: Some(proto::UDP),
        dst: EndpointMatch {
            ports: vec![PortRange::single(ALLOWED_PORT)],
            ..EndpointMatch::default()
        },
        ..Rule::any(Action::Allow)
    };
    Arc::new(EndpointPolicy {
        ingress: builder.compile(&rules(vec![allow_port])).unwrap(),
        egress: builder
            .compile(&rules(vec![Rule::any(Action::Allow)]))
            .unwrap(),
        generation: 1,
        to_host: true,
    })
}

/// Workloads A and B and an uplink to a gateway (the default route); each port's limits as
/// given.
fn tables(a: Option<Arc<PortQos>>, b: Option<Arc<PortQos>>) -> Tables {
    tables_with(a, b, None)
}

fn tables_with(
    a: Option<Arc<PortQos>>,
    b: Option<Arc<PortQos>>,
    b_policy: Option<Arc<EndpointPolicy>>,
) -> Tables {
    let port = |name: &str, kind, mac, ip, qos, policy| PortInfo {
        name: String::from(name),
        ifindex: 0,
        kind,
        mac,
        ip,
        mtu: 1500,
        policy,
        qos,
    };
    let link_local = Ipv4Addr::new(169, 254, 1, 1);
    let ports = vec![
        port(
            "caliA",
            PortKind::Workload,
            MacAddr::CALICO_HOST_SIDE,
            link_local,
            a,
            None,
        ),
        port(
            "caliB",
            PortKind::Workload,
            MacAddr::CALICO_HOST_SIDE,
            link_local,
            b,
            b_policy,
        ),
        port("uplink", PortKind::Uplink, UPLINK_MAC, NODE_IP, None, None),
    ];
    let next_hops = vec![
        NextHop::new(NextHopKind::Neighbor, A, A_IP),
        NextHop::new(NextHopKind::Neighbor, B, B_IP),
        NextHop::new(NextHopKind::Neighbor, UPLINK, Ipv4Addr::new(10, 0, 0, 1)),
        NextHop::new(NextHopKind::Local, UPLINK, NODE_IP),
        NextHop::tunnel_peer(UPLINK, PEER_IP),
    ];
    next_hops[0].set_mac(Some(A_MAC));
    next_hops[1].set_mac(Some(B_MAC));
    next_hops[2].set_mac(Some(GATEWAY_MAC));
    let mut fib = Fib::new();
    fib.insert(A_IP, 32, 0).unwrap();
    fib.insert(B_IP, 32, 1).unwrap();
    fib.insert(Ipv4Addr::UNSPECIFIED, 0, 2).unwrap();
    fib.insert(NODE_IP, 32, 3).unwrap();
    fib.insert(PEER_IP, 32, 4).unwrap();
    Tables {
        fib,
        next_hops,
        ports,
        snat: None,
        floating: Default::default(),
        host: None,
    }
}

/// A UDP frame of `len` bytes (Ethernet header included) from `src` to `dst:dport`.
fn udp(src: Ipv4Addr, dst: Ipv4Addr, dport: u16, len: usize) -> Vec<u8> {
    let udp_len = len - ethernet::HEADER_LEN - ipv4::HEADER_LEN;
    let mut f = vec![0u8; len];
    EthernetRepr {
        src: A_MAC,
        dst: MacAddr::CALICO_HOST_SIDE,
        ethertype: ethertype::IPV4,
    }
    .emit(&mut f)
    .unwrap();
    Ipv4Repr::new(src, dst, protocol::UDP, udp_len as u16)
        .emit(&mut f[ethernet::HEADER_LEN..])
        .unwrap();
    let payload = vec![0x5a; udp_len - 8];
    UdpRepr {
        src_port: 40000,
        dst_port: dport,
    }
    .emit(&payload, src, dst, &mut f[34..])
    .unwrap();
    f
}

/// What became of frames offered at a simulated rate.
#[derive(Debug, Default)]
struct Offered {
    frames: u64,
    forwarded: u64,
    forwarded_bytes: u64,
}

/// Offers a copy of `frame` from `from` every `gap_ns` from time `start_ns` for `duration_ns`,
/// counting in `counters`.
fn offer(
    tables: &Tables,
    counters: &mut PipelineCounters,
    from: PortId,
    frame: &[u8],
    (start_ns, gap_ns, duration_ns): (u64, u64, u64),
) -> Offered {
    let mut offered = Offered::default();
    let mut now = start_ns;
    while now < start_ns + duration_ns {
        let mut f = frame.to_vec();
        let verdict = process_counted_at(&mut f, from, tables, counters, now).verdict;
        offered.frames += 1;
        match verdict {
            Verdict::Forward(_) => {
                offered.forwarded += 1;
                offered.forwarded_bytes += f.len() as u64;
            }
            Verdict::Drop(DropReason::RateLimited) => {}
            other => panic!("unexpected verdict {other:?}"),
        }
        now += gap_ns;
    }
    offered
}

/// The gap between `len`-byte frames offered at `bits_per_second`.
fn gap_at(bits_per_second: u64, len: usize) -> u64 {
    len as u64 * 8 * SECOND / bits_per_second
}

fn assert_near(forwarded_bytes: u64, limit_bits: u64, seconds: u64, burst_bits: u64) {
    let expected = (limit_bits * seconds + burst_bits) / 8;
    let low = expected * 97 / 100;
    let high = expected * 103 / 100;
    assert!(
        (low..=high).contains(&forwarded_bytes),
        "{forwarded_bytes} bytes forwarded where {limit_bits} bit/s for {seconds} s and a \
         {burst_bits}-bit burst let {expected} through"
    );
}

fn assert_counted(counters: &PipelineCounters) {
    assert_eq!(
        counters.rx_packets,
        counters.forwarded + counters.punted + counters.total_drops(),
        "every frame counted once: {counters:?}"
    );
}

const LIMIT: u64 = 10_000_000;
const BURST: u64 = 100_000;

#[test]
fn a_workloads_sends_over_its_egress_limit_are_dropped_whatever_their_destination() {
    let t = tables(
        limited(DirectionLimits::default(), bandwidth(LIMIT, BURST)),
        None,
    );
    let mut counters = PipelineCounters::default();
    // 1500-byte frames at 10x the limit for 2 s, half to B and half to the uplink, both
    // charged to the same limit.
    let to_b = udp(A_IP, B_IP, ALLOWED_PORT, 1500);
    let out = udp(A_IP, REMOTE_IP, ALLOWED_PORT, 1500);
    let gap = gap_at(10 * LIMIT, 1500);
    let mut total = Offered::default();
    for (k, frame) in [&to_b, &out].into_iter().enumerate() {
        // Interleaved: the uplink's frames half a gap after B's, each stream at 5x.
        let o = offer(
            &t,
            &mut counters,
            A,
            frame,
            (k as u64 * gap, 2 * gap, 2 * SECOND),
        );
        assert!(o.forwarded > 0, "frames to {k} forwarded: {o:?}");
        total.frames += o.frames;
        total.forwarded += o.forwarded;
        total.forwarded_bytes += o.forwarded_bytes;
    }
    assert_near(total.forwarded_bytes, LIMIT, 2, BURST);
    assert_eq!(
        counters.dropped(DropReason::RateLimited),
        total.frames - total.forwarded
    );
    assert!(counters.dropped(DropReason::RateLimited) > total.frames * 8 / 10);
    assert_counted(&counters);
}

#[test]
fn frames_to_a_workload_over_its_ingress_limit_are_dropped() {
    let t = tables(
        None,
        limited(bandwidth(LIMIT, BURST), DirectionLimits::default()),
    );
    let mut counters = PipelineCounters::default();
    // From the other workload and from the uplink, 5x the limit each, for 2 s.
    let from_a = udp(A_IP, B_IP, ALLOWED_PORT, 1500);
    let from_out = udp(REMOTE_IP, B_IP, ALLOWED_PORT, 1500);
    let gap = gap_at(5 * LIMIT, 1500);
    let a = offer(&t, &mut counters, A, &from_a, (0, gap, 2 * SECOND));
    let out = offer(
        &t,
        &mut counters,
        UPLINK,
        &from_out,
        (gap / 2, gap, 2 * SECOND),
    );
    assert_near(a.forwarded_bytes + out.forwarded_bytes, LIMIT, 2, BURST);
    assert_eq!(
        counters.dropped(DropReason::RateLimited),
        a.frames + out.frames - a.forwarded - out.forwarded
    );
    assert_counted(&counters);
}

#[test]
fn an_unlimited_port_is_untouched() {
    // B's ingress is limited; A sends to the uplink, and A (limits given, none set) and the
    // uplink are not limited: everything they send elsewhere than B passes, at any rate.
    let t = tables(
        limited(DirectionLimits::default(), DirectionLimits::default()),
        limited(bandwidth(1_000, 1_000), DirectionLimits::default()),
    );
    let mut counters = PipelineCounters::default();
    let out = udp(A_IP, REMOTE_IP, ALLOWED_PORT, 1500);
    let to_a = udp(REMOTE_IP, A_IP, ALLOWED_PORT, 1500);
    let gap = gap_at(100 * LIMIT, 1500);
    let sent = offer(&t, &mut counters, A, &out, (0, gap, SECOND / 10));
    let received = offer(&t, &mut counters, UPLINK, &to_a, (0, gap, SECOND / 10));
    assert_eq!(sent.forwarded, sent.frames);
    assert_eq!(received.forwarded, received.frames);
    assert_eq!(counters.dropped(DropReason::RateLimited), 0);
    // ...and the same frames to the limited B are limited (the setup does limit).
    let to_b = udp(A_IP, B_IP, ALLOWED_PORT, 1500);
    let limited = offer(&t, &mut counters, A, &to_b, (0, gap, SECOND / 10));
    assert!(limited.forwarded < limited.frames, "{limited:?}");
}

#[test]
fn a_frame_policy_denies_costs_the_receiver_nothing() {
    // B takes one 1500-byte frame's worth of burst beyond the first frame (GCRA admits a
    // frame while the backlog before it is within the burst): 2 frames at one instant.
    let t = tables_with(
        None,
        limited(bandwidth(LIMIT, 12_000), DirectionLimits::default()),
        Some(b_policy()),
    );
    let mut counters = PipelineCounters::default();
    let denied = udp(A_IP, B_IP, DENIED_PORT, 1500);
    for _ in 0..100 {
        let mut f = denied.clone();
        let verdict = process_counted_at(&mut f, A, &t, &mut counters, SECOND).verdict;
        assert_eq!(verdict, Verdict::Drop(DropReason::PolicyDenied));
    }
    let allowed = udp(A_IP, B_IP, ALLOWED_PORT, 1500);
    let passed = (0..10)
        .filter(|_| {
            let mut f = allowed.clone();
            let verdict = process_counted_at(&mut f, A, &t, &mut counters, SECOND).verdict;
            verdict == Verdict::Forward(B)
        })
        .count();
    assert_eq!(
        passed, 2,
        "allowed frames through a burst the denied ones left whole"
    );
    assert_eq!(counters.dropped(DropReason::PolicyDenied), 100);
    assert_eq!(counters.dropped(DropReason::RateLimited), 8);
    assert_counted(&counters);
}

#[test]
fn a_packet_rate_limits_packets_whatever_their_size() {
    // 100 packets/s with a burst of 5, offered 64-byte frames at 1,000/s for 2 s.
    let t = tables(
        limited(DirectionLimits::default(), packet_rate(100, 5)),
        None,
    );
    let mut counters = PipelineCounters::default();
    let small = udp(A_IP, B_IP, ALLOWED_PORT, 64);
    let o = offer(
        &t,
        &mut counters,
        A,
        &small,
        (0, SECOND / 1_000, 2 * SECOND),
    );
    assert_eq!(o.frames, 2_000);
    assert!(
        (200..=206).contains(&o.forwarded),
        "{} packets through 100 packets/s in 2 s",
        o.forwarded
    );
    assert_eq!(
        counters.dropped(DropReason::RateLimited),
        2_000 - o.forwarded
    );
    assert_counted(&counters);
}

#[test]
fn the_two_directions_of_a_workload_are_limited_independently() {
    // A may send 10 Mbit/s and receive 2 Mbit/s; both ways are offered 10x their limit at the
    // same instants: each gets its own limit, neither eats into the other.
    let ingress = 2_000_000;
    let t = tables(
        limited(bandwidth(ingress, BURST), bandwidth(LIMIT, BURST)),
        None,
    );
    let mut counters = PipelineCounters::default();
    let sent = udp(A_IP, B_IP, ALLOWED_PORT, 1500);
    let received = udp(B_IP, A_IP, ALLOWED_PORT, 1500);
    let gap_out = gap_at(10 * LIMIT, 1500);
    let gap_in = gap_at(10 * ingress, 1500);
    let (mut out_bytes, mut in_bytes) = (0, 0);
    let (mut now_out, mut now_in) = (0, 0);
    while now_out < 2 * SECOND || now_in < 2 * SECOND {
        let (from, frame, now) = if now_out <= now_in {
            now_out += gap_out;
            (A, &sent, now_out - gap_out)
        } else {
            now_in += gap_in;
            (B, &received, now_in - gap_in)
        };
        let mut f = frame.clone();
        match process_counted_at(&mut f, from, &t, &mut counters, now).verdict {
            Verdict::Forward(B) => out_bytes += f.len() as u64,
            Verdict::Forward(A) => in_bytes += f.len() as u64,
            Verdict::Drop(DropReason::RateLimited) => {}
            other => panic!("unexpected verdict {other:?}"),
        }
    }
    assert_near(out_bytes, LIMIT, 2, BURST);
    assert_near(in_bytes, ingress, 2, BURST);
    assert_counted(&counters);
}

/// A TCP frame from A to B carrying `payload` bytes in one GSO frame (as a TAP port hands it).
fn gso_frame(payload: usize) -> Vec<u8> {
    let tcp_len = 20 + payload;
    let mut f = vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN + tcp_len];
    EthernetRepr {
        src: A_MAC,
        dst: MacAddr::CALICO_HOST_SIDE,
        ethertype: ethertype::IPV4,
    }
    .emit(&mut f)
    .unwrap();
    Ipv4Repr::new(A_IP, B_IP, protocol::TCP, tcp_len as u16)
        .emit(&mut f[ethernet::HEADER_LEN..])
        .unwrap();
    let t = &mut f[34..];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&ALLOWED_PORT.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x10;
    f
}

#[test]
fn a_gso_frame_costs_the_packets_it_stands_for() {
    // 10 packets/s, burst 5: a GSO frame of 10 MSS-sized segments passes (the bucket was
    // empty) and leaves a backlog of 10 packets, so a single packet right after it waits a
    // second, not a tenth of one.
    let t = tables(
        limited(DirectionLimits::default(), packet_rate(10, 5)),
        None,
    );
    let sets = IpSets::default();
    let mut state = PolicyState::stateless();
    let gso = Gso {
        kind: GsoKind::TcpV4,
        size: 1_000,
        header_len: 54,
    };
    let mut send = |frame: &mut Vec<u8>, now_ns, gso| {
        state.now_ns = now_ns;
        let mut policing = Policing {
            sets: &sets,
            state: &mut state,
        };
        process_offloaded(frame, A, &t, &mut policing, gso).verdict
    };
    assert_eq!(
        send(&mut gso_frame(10_000), SECOND, Some(gso)),
        Verdict::Forward(B)
    );
    let single = udp(A_IP, B_IP, ALLOWED_PORT, 64);
    // A single packet passes once the backlog before it is down to the burst of 5 packets,
    // half a second on; just before that it does not (charged as one packet, the GSO frame
    // would have drained after a tenth of a second).
    assert_eq!(
        send(
            &mut single.clone(),
            SECOND + SECOND / 2 - SECOND / 100,
            None
        ),
        Verdict::Drop(DropReason::RateLimited)
    );
    assert_eq!(
        send(&mut single.clone(), SECOND + SECOND / 2, None),
        Verdict::Forward(B)
    );
}

#[test]
fn a_frame_out_of_a_tunnel_costs_the_receiver_its_inner_length() {
    // 8,000 bit/s (a byte per ms), no burst: after a frame of n bytes the next passes n ms
    // later. The inner frame (Ethernet header and inner packet) is 20 bytes shorter than the
    // IPIP frame that brought it.
    let t = tables(
        None,
        limited(bandwidth(8_000, 0), DirectionLimits::default()),
    );
    let inner = udp(REMOTE_IP, B_IP, ALLOWED_PORT, 114);
    let mut outer = inner[..ethernet::HEADER_LEN].to_vec();
    outer.extend_from_slice(&[0; ipv4::HEADER_LEN]);
    Ipv4Repr::new(PEER_IP, NODE_IP, protocol::IPIP, 100)
        .emit(&mut outer[ethernet::HEADER_LEN..])
        .unwrap();
    outer.extend_from_slice(&inner[ethernet::HEADER_LEN..]);
    let mut counters = PipelineCounters::default();
    let mut send = |now_ms: u64| {
        let mut f = outer.clone();
        let outcome = process_counted_at(&mut f, UPLINK, &t, &mut counters, now_ms * 1_000_000);
        assert_eq!(outcome.start, ipv4::HEADER_LEN, "decapsulated");
        outcome.verdict
    };
    assert_eq!(send(1_000), Verdict::Forward(B));
    assert_eq!(send(1_113), Verdict::Drop(DropReason::RateLimited));
    assert_eq!(send(1_114), Verdict::Forward(B));
    assert_eq!(counters.ipip_decapsulated, 3);
    assert_eq!(counters.dropped(DropReason::RateLimited), 1);
}

#[test]
fn frames_for_the_slow_path_are_not_charged() {
    // A's egress allows one frame now; ARP (answered by the slow path) still goes there,
    // and costs nothing: the IPv4 frame after it is the one the limit allows.
    let t = tables(limited(DirectionLimits::default(), packet_rate(1, 0)), None);
    let mut arp = vec![0u8; 42];
    EthernetRepr {
        src: A_MAC,
        dst: MacAddr::BROADCAST,
        ethertype: ethertype::ARP,
    }
    .emit(&mut arp)
    .unwrap();
    ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: A_MAC,
        sender_ip: A_IP,
        target_mac: MacAddr([0; 6]),
        target_ip: Ipv4Addr::new(169, 254, 1, 1),
    }
    .emit(&mut arp[14..])
    .unwrap();
    let mut counters = PipelineCounters::default();
    for _ in 0..10 {
        let verdict = process_counted_at(&mut arp.clone(), A, &t, &mut counters, SECOND).verdict;
        assert_eq!(verdict, Verdict::Punt(PuntReason::Arp));
    }
    let to_b = udp(A_IP, B_IP, ALLOWED_PORT, 64);
    let mut send = || process_counted_at(&mut to_b.clone(), A, &t, &mut counters, SECOND).verdict;
    assert_eq!(send(), Verdict::Forward(B));
    assert_eq!(send(), Verdict::Drop(DropReason::RateLimited));
}

#[test]
fn frames_to_a_workloads_floating_ip_are_charged_to_the_workload() {
    // One packet a second, no burst, into B; B reached from outside through a floating IP,
    // its flow tracked (the packets after the first skip the policy stage).
    let mut t = tables(None, limited(packet_rate(1, 0), DirectionLimits::default()));
    t.floating = FloatingIps::new([(FLOATING_IP, B_IP)]);
    let sets = IpSets::default();
    let mut state = PolicyState::new(FlowTable::new(FlowTableConfig::with_capacity(64)));
    let mut counters = PipelineCounters::default();
    let mut send = |now_ns| {
        state.now_ns = now_ns;
        let mut policing = Policing {
            sets: &sets,
            state: &mut state,
        };
        let mut f = udp(REMOTE_IP, FLOATING_IP, ALLOWED_PORT, 100);
        process_counted_policed(&mut f, UPLINK, &t, &mut counters, &mut policing).verdict
    };
    assert_eq!(send(SECOND), Verdict::Forward(B), "the flow's first packet");
    assert_eq!(
        send(SECOND + SECOND / 2),
        Verdict::Drop(DropReason::RateLimited),
        "the next, tracked, within the second"
    );
    assert_eq!(send(2 * SECOND), Verdict::Forward(B), "a second later");
    assert_eq!(counters.dropped(DropReason::RateLimited), 1);
}
