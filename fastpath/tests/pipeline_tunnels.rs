//! The pipeline between nodes, on synthetic frames: routes to other nodes' workloads with and
//! without IPIP (RFC 2003), decapsulation from known nodes only, and the egress MTU (RFC 1191).

use std::net::Ipv4Addr;

use fastpath::classifier::IpSets;
use fastpath::offload::{Gso, GsoKind, Segmenter};
use fastpath::pipeline::harness::process_counted;
use fastpath::pipeline::{encapsulate_ipip, process_offloaded, Outcome, Policing};
use fastpath::policy::PolicyState;
use fastpath::tables::{Encap, IPIP_OVERHEAD};
use fastpath::wire::ethernet::{self, ethertype};
use fastpath::wire::ipv4::{self, protocol};
use fastpath::wire::{
    checksum, EthernetPacket, EthernetRepr, Ipv4Packet, Ipv4Repr, TcpPacket, UdpRepr,
};
use fastpath::{
    DropReason, Fib, MacAddr, NextHop, NextHopKind, PipelineCounters, PortInfo, PortKind,
    PuntReason, Tables, Verdict,
};

const WORKLOAD_A: u16 = 0;
const UPLINK: u16 = 1;
/// A workload port with a small MTU, for the unencapsulated MTU check.
const WORKLOAD_SMALL: u16 = 2;

const A_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
const SMALL_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 3);
const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
/// Another node on the uplink's segment, reached through IPIP for 192.168.1.0/26.
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 20);
/// A node reached without encapsulation for 192.168.2.0/26.
const PLAIN_PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 30);
/// On the segment but not a known node.
const STRANGER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 99);
const REMOTE_WORKLOAD: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 7);
const PLAIN_REMOTE_WORKLOAD: Ipv4Addr = Ipv4Addr::new(192, 168, 2, 9);

const A_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const SMALL_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0c]);
const UPLINK_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 1]);
const PEER_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0x20]);
const PLAIN_PEER_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0x30]);

const NH_A: u32 = 0;
const NH_LOCAL: u32 = 1;
const NH_TUNNEL: u32 = 2;
const NH_PLAIN: u32 = 3;
const NH_PEER: u32 = 4;
const NH_SMALL: u32 = 5;
const NH_STRANGER: u32 = 6;

fn port(name: &str, kind: PortKind, mac: MacAddr, ip: Ipv4Addr, mtu: u16) -> PortInfo {
    PortInfo {
        name: name.into(),
        ifindex: 0,
        kind,
        mac,
        ip,
        mtu,
        policy: None,
        qos: None,
    }
}

fn tables() -> Tables {
    let link_local = Ipv4Addr::new(169, 254, 1, 1);
    let ports = vec![
        port(
            "caliA",
            PortKind::Workload,
            MacAddr::CALICO_HOST_SIDE,
            link_local,
            1500,
        ),
        port("uplink", PortKind::Uplink, UPLINK_MAC, NODE_IP, 1500),
        port(
            "caliS",
            PortKind::Workload,
            MacAddr::CALICO_HOST_SIDE,
            link_local,
            1400,
        ),
    ];
    let next_hops = vec![
        NextHop::new(NextHopKind::Neighbor, WORKLOAD_A, A_IP),
        NextHop::new(NextHopKind::Local, UPLINK, NODE_IP),
        NextHop::remote(
            UPLINK,
            PEER_IP,
            Encap::Ipip {
                local: NODE_IP,
                remote: PEER_IP,
            },
        ),
        NextHop::remote(UPLINK, PLAIN_PEER_IP, Encap::None),
        NextHop::tunnel_peer(UPLINK, PEER_IP),
        NextHop::new(NextHopKind::Neighbor, WORKLOAD_SMALL, SMALL_IP),
        // The stranger is routed (plainly), but it is no tunnel peer.
        NextHop::new(NextHopKind::Neighbor, UPLINK, STRANGER_IP),
    ];
    next_hops[NH_A as usize].set_mac(Some(A_MAC));
    next_hops[NH_TUNNEL as usize].set_mac(Some(PEER_MAC));
    next_hops[NH_PLAIN as usize].set_mac(Some(PLAIN_PEER_MAC));
    next_hops[NH_PEER as usize].set_mac(Some(PEER_MAC));
    next_hops[NH_SMALL as usize].set_mac(Some(SMALL_MAC));
    let mut fib = Fib::new();
    let routes = [
        (A_IP, 32, NH_A),
        (SMALL_IP, 32, NH_SMALL),
        (NODE_IP, 32, NH_LOCAL),
        (Ipv4Addr::new(192, 168, 1, 0), 26, NH_TUNNEL),
        (Ipv4Addr::new(192, 168, 2, 0), 26, NH_PLAIN),
        (PEER_IP, 32, NH_PEER),
        (STRANGER_IP, 32, NH_STRANGER),
    ];
    for (prefix, len, nh) in routes {
        fib.insert(prefix, len, nh).unwrap();
    }
    Tables {
        fib,
        next_hops,
        ports,
        snat: None,
        floating: Default::default(),
        host: None,
    }
}

/// An IPv4 packet (no Ethernet) from `src` to `dst` with a UDP payload making its total
/// length `total_len` bytes.
fn ip_packet(src: Ipv4Addr, dst: Ipv4Addr, total_len: usize, ttl: u8, dont_frag: bool) -> Vec<u8> {
    let udp_len = total_len - ipv4::HEADER_LEN;
    let mut p = vec![0u8; total_len];
    let ip = Ipv4Repr {
        ttl,
        ident: 0x4242,
        dont_frag,
        dscp: 10,
        ..Ipv4Repr::new(src, dst, protocol::UDP, udp_len as u16)
    };
    ip.emit(&mut p).unwrap();
    let payload: Vec<u8> = (0..udp_len - 8).map(|i| i as u8).collect();
    UdpRepr {
        src_port: 40000,
        dst_port: 5201,
    }
    .emit(&payload, src, dst, &mut p[ipv4::HEADER_LEN..])
    .unwrap();
    p
}

fn frame(src_mac: MacAddr, dst_mac: MacAddr, packet: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; ethernet::HEADER_LEN];
    EthernetRepr {
        src: src_mac,
        dst: dst_mac,
        ethertype: ethertype::IPV4,
    }
    .emit(&mut f)
    .unwrap();
    f.extend_from_slice(packet);
    f
}

/// A frame from workload A to `dst` (as Calico workloads send: to the host-side MAC).
fn from_workload(dst: Ipv4Addr, total_len: usize, ttl: u8, dont_frag: bool) -> Vec<u8> {
    frame(
        A_MAC,
        MacAddr::CALICO_HOST_SIDE,
        &ip_packet(A_IP, dst, total_len, ttl, dont_frag),
    )
}

/// An IPIP frame arriving on the uplink from `outer_src` (whose MAC is PEER_MAC) to this node.
fn ipip_from(outer_src: Ipv4Addr, inner: &[u8]) -> Vec<u8> {
    let mut outer = vec![0u8; ipv4::HEADER_LEN];
    Ipv4Repr {
        ident: 7,
        ..Ipv4Repr::new(outer_src, NODE_IP, protocol::IPIP, inner.len() as u16)
    }
    .emit(&mut outer)
    .unwrap();
    outer.extend_from_slice(inner);
    frame(PEER_MAC, UPLINK_MAC, &outer)
}

fn run(tables: &Tables, ingress: u16, frame: &mut [u8]) -> (Outcome, PipelineCounters) {
    let mut counters = PipelineCounters::default();
    let outcome = process_counted(frame, ingress, tables, &mut counters);
    assert_eq!(counters.rx_packets, 1);
    assert_eq!(
        counters.forwarded + counters.punted + counters.total_drops(),
        1,
        "{outcome:?} counted once: {counters:?}"
    );
    assert!(outcome.start <= frame.len());
    (outcome, counters)
}

/// RFC 1071 one's complement sum, written out here rather than taken from the crate, so that
/// the test checks the checksum the pipeline writes against an independent computation.
fn rfc1071(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        let word = u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
        sum += word;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn a_tunnel_route_yields_encapsulate_and_the_outer_header_is_exact() {
    let t = tables();
    let mut f = from_workload(REMOTE_WORKLOAD, 100, 64, true);
    let (outcome, counters) = run(&t, WORKLOAD_A, &mut f);
    assert_eq!(
        outcome,
        Outcome {
            verdict: Verdict::Encapsulate {
                port: UPLINK,
                next_hop: NH_TUNNEL
            },
            start: 0,
            checksum_completed: false,
        }
    );
    assert_eq!(counters.forwarded, 1);
    assert_eq!(
        counters.ipip_encapsulated, 0,
        "the worker counts encapsulation once it has sent into the tunnel; the harness does not"
    );

    let mut out = [0u8; 256];
    let len = encapsulate_ipip(&f, NODE_IP, PEER_IP, 0x1234, &mut out).unwrap();
    assert_eq!(len, 14 + 20 + 100);
    let out = &out[..len];
    // Outer Ethernet: from the uplink to the peer node.
    assert_eq!(&out[0..6], &PEER_MAC.0);
    assert_eq!(&out[6..12], &UPLINK_MAC.0);
    assert_eq!(&out[12..14], &[0x08, 0x00]);
    // Outer IPv4 (RFC 2003 section 3.1), field by field, checksum zeroed for now.
    let outer = &out[14..34];
    let mut expected = vec![
        0x45,
        10 << 2,
        0,
        120, // version/IHL, DSCP copied from the inner header, total 20 + 100
        0x12,
        0x34,
        0x40,
        0x00, // identification, DF copied, no fragment offset
        64,
        4,
        0,
        0, // TTL 64, protocol 4 (IP in IP), checksum below
        10,
        0,
        0,
        10, // our node
        10,
        0,
        0,
        20, // the peer node
    ];
    let csum = rfc1071(&expected);
    expected[10..12].copy_from_slice(&csum.to_be_bytes());
    assert_eq!(outer, &expected[..], "outer header");
    assert_eq!(rfc1071(outer), 0, "the outer checksum verifies");
    // The inner packet: the original with TTL - 1 and a still valid checksum.
    let inner = Ipv4Packet::new_checked(&out[34..]).unwrap();
    assert_eq!(inner.ttl(), 63);
    assert!(inner.verify_checksum());
    let original = ip_packet(A_IP, REMOTE_WORKLOAD, 100, 64, true);
    assert_eq!(
        &out[34 + 12..],
        &original[12..],
        "addresses and payload untouched"
    );
}

#[test]
fn the_outer_header_copies_a_clear_df_and_leaves_ethernet_padding_behind() {
    let t = tables();
    // 46 bytes of IPv4 in a 64-byte frame: 4 bytes of padding after the packet.
    let mut f = from_workload(REMOTE_WORKLOAD, 46, 9, false);
    f.extend_from_slice(&[0xaa; 4]);
    let (outcome, _) = run(&t, WORKLOAD_A, &mut f);
    assert_eq!(
        outcome.verdict,
        Verdict::Encapsulate {
            port: UPLINK,
            next_hop: NH_TUNNEL
        }
    );
    let mut out = [0u8; 256];
    let len = encapsulate_ipip(&f, NODE_IP, PEER_IP, 1, &mut out).unwrap();
    assert_eq!(len, 14 + 20 + 46, "padding is not carried into the tunnel");
    let outer = Ipv4Packet::new_checked(&out[14..len]).unwrap();
    assert!(!outer.dont_frag());
    assert_eq!(
        outer.ttl(),
        64,
        "the outer TTL does not inherit the inner one"
    );
    assert_eq!(usize::from(outer.total_len()), 66);
    assert!(outer.verify_checksum());
    // Too small a buffer is refused, not overrun.
    assert_eq!(
        encapsulate_ipip(&f, NODE_IP, PEER_IP, 1, &mut [0u8; 79]),
        None
    );
    assert!(encapsulate_ipip(&f, NODE_IP, PEER_IP, 1, &mut [0u8; 80]).is_some());
}

#[test]
fn a_plain_remote_route_forwards_to_the_other_nodes_mac() {
    let t = tables();
    let mut f = from_workload(PLAIN_REMOTE_WORKLOAD, 100, 64, true);
    let (outcome, _) = run(&t, WORKLOAD_A, &mut f);
    assert_eq!(
        outcome,
        Outcome {
            verdict: Verdict::Forward(UPLINK),
            start: 0,
            checksum_completed: false,
        }
    );
    let eth = EthernetPacket::new_checked(&f[..]).unwrap();
    assert_eq!(
        (eth.dst_addr(), eth.src_addr()),
        (PLAIN_PEER_MAC, UPLINK_MAC)
    );
    assert_eq!(Ipv4Packet::new_checked(&f[14..]).unwrap().ttl(), 63);
}

#[test]
fn ipip_from_a_known_node_is_decapsulated_and_the_inner_packet_routed_with_ttl_minus_one() {
    let t = tables();
    let inner = ip_packet(REMOTE_WORKLOAD, A_IP, 84, 64, true);
    let mut f = ipip_from(PEER_IP, &inner);
    let (outcome, counters) = run(&t, UPLINK, &mut f);
    assert_eq!(
        outcome,
        Outcome {
            verdict: Verdict::Forward(WORKLOAD_A),
            start: 20,
            checksum_completed: false,
        }
    );
    assert_eq!(counters.ipip_decapsulated, 1);
    assert_eq!(counters.forwarded, 1);
    let out = &f[outcome.start..];
    assert_eq!(out.len(), 14 + 84);
    let eth = EthernetPacket::new_checked(out).unwrap();
    assert_eq!(
        (eth.dst_addr(), eth.src_addr(), eth.ethertype()),
        (A_MAC, MacAddr::CALICO_HOST_SIDE, ethertype::IPV4)
    );
    let ip = Ipv4Packet::new_checked(&out[14..]).unwrap();
    assert_eq!(
        ip.ttl(),
        63,
        "decremented once, by the forwarding of the inner packet"
    );
    assert!(ip.verify_checksum());
    assert_eq!((ip.src_addr(), ip.dst_addr()), (REMOTE_WORKLOAD, A_IP));
    assert_eq!(&out[14 + 12..], &inner[12..]);
}

#[test]
fn ipip_from_an_unknown_source_is_dropped_and_counted() {
    let t = tables();
    let inner = ip_packet(REMOTE_WORKLOAD, A_IP, 84, 64, true);
    for src in [STRANGER_IP, PLAIN_PEER_IP, Ipv4Addr::new(203, 0, 113, 5)] {
        let mut f = ipip_from(src, &inner);
        let before = f.clone();
        let (outcome, counters) = run(&t, UPLINK, &mut f);
        assert_eq!(
            outcome,
            Outcome {
                verdict: Verdict::Drop(DropReason::IpipUnknownSource),
                start: 0,
                checksum_completed: false,
            },
            "from {src}"
        );
        assert_eq!(counters.dropped(DropReason::IpipUnknownSource), 1);
        assert_eq!(counters.ipip_decapsulated, 0);
        assert_eq!(f, before, "a dropped frame is not rewritten");
    }
}

#[test]
fn ipip_is_unwrapped_only_on_the_uplink_and_only_when_addressed_to_the_node() {
    let t = tables();
    let inner = ip_packet(REMOTE_WORKLOAD, A_IP, 84, 64, true);
    // From a workload: it is a packet to the node like any other.
    let mut f = ipip_from(PEER_IP, &inner);
    let (outcome, counters) = run(&t, WORKLOAD_A, &mut f);
    assert_eq!(outcome.verdict, Verdict::Punt(PuntReason::Local));
    assert_eq!(counters.ipip_decapsulated, 0);
    // On the uplink but to a workload: routed as it is, not unwrapped.
    let mut outer = vec![0u8; 20];
    Ipv4Repr::new(PEER_IP, A_IP, protocol::IPIP, inner.len() as u16)
        .emit(&mut outer)
        .unwrap();
    outer.extend_from_slice(&inner);
    let mut f = frame(PEER_MAC, UPLINK_MAC, &outer);
    let (outcome, counters) = run(&t, UPLINK, &mut f);
    assert_eq!(
        outcome,
        Outcome {
            verdict: Verdict::Forward(WORKLOAD_A),
            start: 0,
            checksum_completed: false,
        }
    );
    assert_eq!(counters.ipip_decapsulated, 0);
}

#[test]
fn outer_fragments_and_broken_inner_packets_are_dropped() {
    let t = tables();
    let inner = ip_packet(REMOTE_WORKLOAD, A_IP, 84, 64, true);
    let mut f = ipip_from(PEER_IP, &inner);
    // More fragments set on the outer header.
    let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
    ip.set_flags_and_frag_offset(false, true, 0);
    ip.fill_checksum();
    let (outcome, _) = run(&t, UPLINK, &mut f);
    assert_eq!(outcome.verdict, Verdict::Drop(DropReason::IpipFragment));

    let mut bad_checksum = inner.clone();
    bad_checksum[10] ^= 0xff;
    let mut f = ipip_from(PEER_IP, &bad_checksum);
    let (outcome, counters) = run(&t, UPLINK, &mut f);
    assert_eq!(outcome.verdict, Verdict::Drop(DropReason::BadIpv4Checksum));
    assert_eq!(counters.ipip_decapsulated, 1);

    let mut f = ipip_from(PEER_IP, &inner[..10]);
    let (outcome, _) = run(&t, UPLINK, &mut f);
    assert_eq!(
        outcome.verdict,
        Verdict::Drop(DropReason::BadIpv4Header),
        "inner header cut short"
    );
}

#[test]
fn ttl_rules_apply_to_the_inner_packet_on_both_ends_of_a_tunnel() {
    let t = tables();
    let mut f = from_workload(REMOTE_WORKLOAD, 100, 1, true);
    let (outcome, counters) = run(&t, WORKLOAD_A, &mut f);
    assert_eq!(outcome.verdict, Verdict::Punt(PuntReason::TtlExpired));
    assert_eq!(counters.dropped(DropReason::TtlExpired), 1);

    let mut f = from_workload(REMOTE_WORKLOAD, 100, 2, true);
    let (outcome, _) = run(&t, WORKLOAD_A, &mut f);
    assert!(
        matches!(outcome.verdict, Verdict::Encapsulate { .. }),
        "TTL 2 still goes one hop"
    );

    // Decapsulated with TTL 1: expired here; the slow path gets the inner frame.
    let inner = ip_packet(REMOTE_WORKLOAD, A_IP, 84, 1, true);
    let mut f = ipip_from(PEER_IP, &inner);
    let (outcome, _) = run(&t, UPLINK, &mut f);
    assert_eq!(
        outcome,
        Outcome {
            verdict: Verdict::Punt(PuntReason::TtlExpired),
            start: 20,
            checksum_completed: false,
        }
    );
    let punted = Ipv4Packet::new_checked(&f[outcome.start + 14..]).unwrap();
    assert_eq!((punted.src_addr(), punted.ttl()), (REMOTE_WORKLOAD, 1));
}

#[test]
fn too_big_with_df_is_punted_with_the_tunnel_mtu_and_without_df_dropped() {
    let t = tables();
    let mtu = 1500 - IPIP_OVERHEAD;
    assert_eq!(mtu, 1480);

    let mut f = from_workload(REMOTE_WORKLOAD, 1480, 64, true);
    let (outcome, _) = run(&t, WORKLOAD_A, &mut f);
    assert!(
        matches!(outcome.verdict, Verdict::Encapsulate { .. }),
        "1480 + 20 fits a 1500 uplink"
    );

    for size in [1481, 1500] {
        let mut f = from_workload(REMOTE_WORKLOAD, size, 64, true);
        let before = f.clone();
        let (outcome, counters) = run(&t, WORKLOAD_A, &mut f);
        assert_eq!(
            outcome.verdict,
            Verdict::Punt(PuntReason::FragmentationNeeded { mtu: 1480 }),
            "{size} bytes"
        );
        assert_eq!(counters.dropped(DropReason::FragmentationNeeded), 1);
        assert_eq!(f, before, "the slow path quotes the packet as it was sent");

        let mut f = from_workload(REMOTE_WORKLOAD, size, 64, false);
        let (outcome, counters) = run(&t, WORKLOAD_A, &mut f);
        assert_eq!(
            outcome.verdict,
            Verdict::Drop(DropReason::TooBig),
            "{size} bytes without DF"
        );
        assert_eq!(counters.dropped(DropReason::TooBig), 1);
    }

    // Unencapsulated routes use the egress port's MTU as it is.
    let mut f = from_workload(PLAIN_REMOTE_WORKLOAD, 1500, 64, true);
    assert_eq!(
        run(&t, WORKLOAD_A, &mut f).0.verdict,
        Verdict::Forward(UPLINK)
    );
    let mut f = from_workload(SMALL_IP, 1401, 64, true);
    assert_eq!(
        run(&t, WORKLOAD_A, &mut f).0.verdict,
        Verdict::Punt(PuntReason::FragmentationNeeded { mtu: 1400 })
    );
    let mut f = from_workload(SMALL_IP, 1400, 64, true);
    assert_eq!(
        run(&t, WORKLOAD_A, &mut f).0.verdict,
        Verdict::Forward(WORKLOAD_SMALL)
    );
}

#[test]
fn mangled_ipip_frames_never_panic_and_are_counted_once() {
    let t = tables();
    let inner = ip_packet(REMOTE_WORKLOAD, A_IP, 84, 64, true);
    let valid = ipip_from(PEER_IP, &inner);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut totals = PipelineCounters::default();
    for round in 0..5000 {
        let mut f = valid.clone();
        let len = if round % 3 == 0 {
            (next() as usize) % (f.len() + 1)
        } else {
            f.len()
        };
        f.truncate(len);
        for _ in 0..(next() % 4) {
            if !f.is_empty() {
                let at = (next() as usize) % f.len();
                f[at] = next() as u8;
            }
        }
        // Keep the outer checksum valid half of the time, so that decapsulation is reached.
        if round % 2 == 0 && f.len() >= 34 && Ipv4Packet::new_checked(&f[14..]).is_ok() {
            Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
        }
        let outcome = process_counted(&mut f, UPLINK, &t, &mut totals);
        assert!(outcome.start <= f.len());
    }
    assert_eq!(totals.rx_packets, 5000);
    assert_eq!(
        totals.rx_packets,
        totals.forwarded + totals.punted + totals.total_drops()
    );
    assert!(
        totals.ipip_decapsulated > 0,
        "some rounds reach decapsulation: {totals:?}"
    );
}

/// A 30,000-byte TCP segment from workload A as its TAP hands it over with TSO (DF set, the
/// checksum left to offload), standing for packets of `mss` payload bytes.
fn gso_tcp_from_workload(dst: Ipv4Addr, mss: u16) -> (Vec<u8>, Gso) {
    let payload: Vec<u8> = (0..30_000).map(|i| (i * 7) as u8).collect();
    let tcp_len = 20 + payload.len();
    let mut p = vec![0u8; ipv4::HEADER_LEN + tcp_len];
    Ipv4Repr {
        dont_frag: true,
        ..Ipv4Repr::new(A_IP, dst, protocol::TCP, tcp_len as u16)
    }
    .emit(&mut p)
    .unwrap();
    let t = &mut p[ipv4::HEADER_LEN..];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&5201u16.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x18;
    t[20..].copy_from_slice(&payload);
    let seed = checksum::fold(checksum::pseudo_header(
        A_IP,
        dst,
        protocol::TCP,
        tcp_len as u32,
    ));
    t[16..18].copy_from_slice(&seed.to_be_bytes());
    let gso = Gso {
        kind: GsoKind::TcpV4,
        size: mss,
        header_len: 54,
    };
    (frame(A_MAC, MacAddr::CALICO_HOST_SIDE, &p), gso)
}

#[test]
fn a_gso_segment_into_an_ipip_tunnel_is_cut_to_packets_that_fit_once_wrapped() {
    let t = tables();
    let mut state = PolicyState::stateless();
    let sets = IpSets::default();
    let mut policing = Policing {
        sets: &sets,
        state: &mut state,
    };
    // Packets of 20 + 20 + 1440 bytes fit the uplink's 1500 once wrapped (20 more).
    let (mut f, gso) = gso_tcp_from_workload(REMOTE_WORKLOAD, 1440);
    let outcome = process_offloaded(&mut f, WORKLOAD_A, &t, &mut policing, Some(gso));
    assert_eq!(
        outcome.verdict,
        Verdict::Encapsulate {
            port: UPLINK,
            next_hop: NH_TUNNEL
        }
    );
    let mut segmenter = Segmenter::new();
    let mut wrapped = vec![0u8; 4096];
    let mut payload = 0;
    let mut packets = 0;
    segmenter
        .segment(&f, gso, |packet| {
            let len = encapsulate_ipip(packet, NODE_IP, PEER_IP, 1, &mut wrapped).unwrap();
            let outer = Ipv4Packet::new_checked(&wrapped[ethernet::HEADER_LEN..len]).unwrap();
            assert!(
                usize::from(outer.total_len()) <= 1500,
                "{}",
                outer.total_len()
            );
            assert_eq!(
                rfc1071(&wrapped[ethernet::HEADER_LEN..][..20]),
                0,
                "outer header checksum"
            );
            let inner = Ipv4Packet::new_checked(outer.payload()).unwrap();
            assert!(inner.dont_frag() && inner.verify_checksum());
            let tcp = TcpPacket::new_checked(inner.payload()).unwrap();
            assert!(tcp.verify_checksum(A_IP, REMOTE_WORKLOAD));
            payload += tcp.payload().len();
            packets += 1;
            true
        })
        .unwrap();
    assert_eq!((payload, packets), (30_000, 30_000usize.div_ceil(1440)));

    // Packets of 1460 bytes would not fit once wrapped: with DF the sender learns the MTU
    // the tunnel leaves (RFC 1191), as for a single packet of that size.
    let (mut f, gso) = gso_tcp_from_workload(REMOTE_WORKLOAD, 1460);
    let outcome = process_offloaded(&mut f, WORKLOAD_A, &t, &mut policing, Some(gso));
    assert_eq!(
        outcome.verdict,
        Verdict::Punt(PuntReason::FragmentationNeeded {
            mtu: 1500 - IPIP_OVERHEAD
        })
    );
    // Unencapsulated, the same packets fit.
    let (mut f, gso) = gso_tcp_from_workload(PLAIN_REMOTE_WORKLOAD, 1460);
    let outcome = process_offloaded(&mut f, WORKLOAD_A, &t, &mut policing, Some(gso));
    assert_eq!(outcome.verdict, Verdict::Forward(UPLINK));
}
