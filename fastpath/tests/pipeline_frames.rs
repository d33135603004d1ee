//! The pipeline on synthetic frames built with the wire Reprs, against tables built by hand:
//! two workload ports, an uplink, and one next hop of every kind.

use std::net::Ipv4Addr;

use fastpath::pipeline::forward_rewrite;
use fastpath::pipeline::harness::{process_batch, process_counted, Frame};
use fastpath::wire::ethernet::{self, ethertype};
use fastpath::wire::ipv4::{self, protocol};
use fastpath::wire::{
    checksum, ArpOperation, ArpRepr, EthernetPacket, EthernetRepr, Ipv4Packet, Ipv4Repr, UdpRepr,
};
use fastpath::{
    DropReason, Fib, MacAddr, NextHop, NextHopKind, PipelineCounters, PortInfo, PortKind,
    PuntReason, Tables, Verdict,
};

const WORKLOAD_A: u16 = 0;
const WORKLOAD_B: u16 = 1;
const UPLINK: u16 = 2;

const A_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
const B_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 3);
/// A workload whose MAC is not resolved yet.
const C_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 4);
const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
/// Inside the node's own /26 block but allocated to nobody.
const UNALLOCATED_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 50);
/// Routed to a next hop whose port does not exist.
const BROKEN_PORT_IP: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
/// Routed to a next hop id that does not exist.
const BROKEN_NH_IP: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);
const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 7);
const UNROUTED_IP: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);

const A_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const B_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
const UPLINK_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 1]);
const GATEWAY_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0xfe]);

const NH_B: u32 = 0;
const NH_C: u32 = 1;
const NH_LOCAL: u32 = 2;
const NH_BLACKHOLE: u32 = 3;
const NH_BAD_PORT: u32 = 4;
const NH_A: u32 = 5;
const NH_GATEWAY: u32 = 6;

fn port(name: &str, kind: PortKind, mac: MacAddr, ip: Ipv4Addr) -> PortInfo {
    PortInfo {
        name: name.into(),
        ifindex: 0,
        kind,
        mac,
        ip,
        mtu: 1500,
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
        ),
        port(
            "caliB",
            PortKind::Workload,
            MacAddr::CALICO_HOST_SIDE,
            link_local,
        ),
        port("uplink", PortKind::Uplink, UPLINK_MAC, NODE_IP),
    ];
    let next_hops = vec![
        NextHop::new(NextHopKind::Neighbor, WORKLOAD_B, B_IP),
        NextHop::new(NextHopKind::Neighbor, WORKLOAD_B, C_IP),
        NextHop::new(NextHopKind::Local, UPLINK, NODE_IP),
        NextHop::new(NextHopKind::Blackhole, 0, Ipv4Addr::UNSPECIFIED),
        NextHop::new(NextHopKind::Neighbor, 99, BROKEN_PORT_IP),
        NextHop::new(NextHopKind::Neighbor, WORKLOAD_A, A_IP),
        NextHop::new(NextHopKind::Neighbor, UPLINK, Ipv4Addr::new(10, 0, 0, 1)),
    ];
    next_hops[NH_B as usize].set_mac(Some(B_MAC));
    next_hops[NH_A as usize].set_mac(Some(A_MAC));
    next_hops[NH_BAD_PORT as usize].set_mac(Some(B_MAC));
    next_hops[NH_GATEWAY as usize].set_mac(Some(GATEWAY_MAC));
    let mut fib = Fib::new();
    let routes = [
        (A_IP, 32, NH_A),
        (B_IP, 32, NH_B),
        (C_IP, 32, NH_C),
        (NODE_IP, 32, NH_LOCAL),
        (Ipv4Addr::new(192, 168, 0, 0), 26, NH_BLACKHOLE),
        (Ipv4Addr::new(192, 168, 1, 0), 26, NH_GATEWAY),
        (Ipv4Addr::new(172, 16, 0, 0), 16, NH_BAD_PORT),
        (Ipv4Addr::new(172, 17, 0, 0), 16, 1000),
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

/// An Ethernet/IPv4/UDP frame from workload A to `dst`, sent (as Calico workloads do) to the
/// host-side MAC.
fn udp_frame(dst: Ipv4Addr, ttl: u8) -> Vec<u8> {
    let payload = b"brindle pipeline test";
    let udp_len = 8 + payload.len();
    let mut f = vec![0u8; ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp_len];
    EthernetRepr {
        src: A_MAC,
        dst: MacAddr::CALICO_HOST_SIDE,
        ethertype: ethertype::IPV4,
    }
    .emit(&mut f)
    .unwrap();
    let ip = Ipv4Repr {
        ttl,
        ident: 0x4242,
        ..Ipv4Repr::new(A_IP, dst, protocol::UDP, udp_len as u16)
    };
    ip.emit(&mut f[ethernet::HEADER_LEN..]).unwrap();
    UdpRepr {
        src_port: 40000,
        dst_port: 5201,
    }
    .emit(payload, A_IP, dst, &mut f[34..])
    .unwrap();
    f
}

fn arp_request() -> Vec<u8> {
    let mut f = vec![0u8; 42];
    EthernetRepr {
        src: A_MAC,
        dst: MacAddr::BROADCAST,
        ethertype: ethertype::ARP,
    }
    .emit(&mut f)
    .unwrap();
    ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: A_MAC,
        sender_ip: A_IP,
        target_mac: MacAddr([0; 6]),
        target_ip: Ipv4Addr::new(169, 254, 1, 1),
    }
    .emit(&mut f[14..])
    .unwrap();
    f
}

/// Runs one frame on fresh counters; returns the verdict and the counters.
fn run(tables: &Tables, frame: &mut [u8]) -> (Verdict, PipelineCounters) {
    let mut counters = PipelineCounters::default();
    let verdict = process_counted(frame, WORKLOAD_A, tables, &mut counters).verdict;
    assert_eq!(counters.rx_packets, 1);
    assert_eq!(counters.rx_bytes, frame.len() as u64);
    assert_eq!(
        counters.forwarded + counters.punted + counters.total_drops(),
        1,
        "{verdict:?} counted once: {counters:?}"
    );
    (verdict, counters)
}

fn assert_dropped(tables: &Tables, frame: &mut [u8], reason: DropReason) {
    let before = frame.to_vec();
    let (verdict, counters) = run(tables, frame);
    assert_eq!(verdict, Verdict::Drop(reason));
    assert_eq!(counters.dropped(reason), 1);
    assert_eq!(frame, &before[..], "a dropped frame is not rewritten");
}

fn set_ip_byte(frame: &mut [u8], at: usize, value: u8, refill_checksum: bool) {
    frame[14 + at] = value;
    if refill_checksum {
        Ipv4Packet::new_unchecked(&mut frame[14..]).fill_checksum();
    }
}

#[test]
fn forwards_between_workload_ports_with_rewritten_macs_and_ttl() {
    let t = tables();
    let mut f = udp_frame(B_IP, 64);
    let original = f.clone();
    let (verdict, counters) = run(&t, &mut f);
    assert_eq!(verdict, Verdict::Forward(WORKLOAD_B));
    assert_eq!(counters.forwarded, 1);
    let eth = EthernetPacket::new_checked(&f[..]).unwrap();
    assert_eq!(
        eth.src_addr(),
        MacAddr::CALICO_HOST_SIDE,
        "source is the egress port's MAC"
    );
    assert_eq!(eth.dst_addr(), B_MAC, "destination is the neighbour's MAC");
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert_eq!(ip.ttl(), 63);
    assert!(ip.verify_checksum());
    assert_eq!(
        checksum::checksum(ip.header()),
        0,
        "full recompute agrees with the incremental update"
    );
    // Nothing but the MACs, TTL and checksum changed.
    let changed: Vec<usize> = (0..f.len()).filter(|&i| f[i] != original[i]).collect();
    assert!(
        changed
            .iter()
            .all(|&i| i < 12 || i == 22 || i == 24 || i == 25),
        "changed bytes {changed:?}"
    );
}

#[test]
fn forwards_to_the_uplink_gateway() {
    let t = tables();
    let mut f = udp_frame(REMOTE_IP, 2);
    assert_eq!(run(&t, &mut f).0, Verdict::Forward(UPLINK));
    let eth = EthernetPacket::new_checked(&f[..]).unwrap();
    assert_eq!((eth.src_addr(), eth.dst_addr()), (UPLINK_MAC, GATEWAY_MAC));
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert_eq!(ip.ttl(), 1);
    assert!(ip.verify_checksum());
}

#[test]
fn checksum_stays_valid_for_every_ttl_and_many_headers() {
    let t = tables();
    for ttl in 2..=255u8 {
        for ident in [0u16, 1, 0x00ff, 0x7fff, 0xfffe, 0xffff] {
            let mut f = udp_frame(B_IP, ttl);
            Ipv4Packet::new_unchecked(&mut f[14..]).set_ident(ident);
            Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
            assert_eq!(run(&t, &mut f).0, Verdict::Forward(WORKLOAD_B));
            assert_eq!(
                checksum::checksum(&f[14..34]),
                0,
                "ttl {ttl} ident {ident:#x}"
            );
        }
    }
}

#[test]
fn ttl_one_is_punted_as_ttl_expired_and_counted_as_drop() {
    let t = tables();
    for ttl in [0, 1] {
        let mut f = udp_frame(B_IP, ttl);
        let before = f.clone();
        let (verdict, counters) = run(&t, &mut f);
        assert_eq!(verdict, Verdict::Punt(PuntReason::TtlExpired));
        assert_eq!(
            (counters.dropped(DropReason::TtlExpired), counters.punted),
            (1, 0)
        );
        assert_eq!(f, before, "the slow path quotes the frame as it arrived");
    }
}

#[test]
fn no_route_is_punted_and_counted_as_drop() {
    let t = tables();
    let (verdict, counters) = run(&t, &mut udp_frame(UNROUTED_IP, 64));
    assert_eq!(verdict, Verdict::Punt(PuntReason::NoRoute));
    assert_eq!(
        (counters.dropped(DropReason::NoRoute), counters.punted),
        (1, 0)
    );
}

#[test]
fn unresolved_neighbor_is_punted_with_its_next_hop() {
    let t = tables();
    let mut f = udp_frame(C_IP, 64);
    let before = f.clone();
    let (verdict, counters) = run(&t, &mut f);
    assert_eq!(verdict, Verdict::Punt(PuntReason::Unresolved(NH_C)));
    assert_eq!(counters.punted, 1);
    assert_eq!(f, before, "the slow path rewrites held frames itself");
    // Once ARP resolves it, the same frame is forwarded.
    t.next_hops[NH_C as usize].set_mac(Some(MacAddr([2, 0, 0, 0, 0, 0x0c])));
    assert_eq!(run(&t, &mut f).0, Verdict::Forward(WORKLOAD_B));
}

#[test]
fn blackhole_is_dropped() {
    assert_dropped(
        &tables(),
        &mut udp_frame(UNALLOCATED_IP, 64),
        DropReason::Blackhole,
    );
}

#[test]
fn local_is_punted_even_with_ttl_one() {
    let t = tables();
    for ttl in [64, 1] {
        let (verdict, counters) = run(&t, &mut udp_frame(NODE_IP, ttl));
        assert_eq!(verdict, Verdict::Punt(PuntReason::Local));
        assert_eq!(counters.punted, 1);
    }
}

#[test]
fn next_hop_on_a_missing_port_or_missing_next_hop_is_dropped_as_no_route() {
    let t = tables();
    assert_dropped(&t, &mut udp_frame(BROKEN_PORT_IP, 64), DropReason::NoRoute);
    assert_dropped(&t, &mut udp_frame(BROKEN_NH_IP, 64), DropReason::NoRoute);
}

#[test]
fn arp_is_punted() {
    let (verdict, counters) = run(&tables(), &mut arp_request());
    assert_eq!(verdict, Verdict::Punt(PuntReason::Arp));
    assert_eq!(counters.punted, 1);
}

#[test]
fn ipv6_and_other_ethertypes_are_dropped() {
    let t = tables();
    for et in [ethertype::IPV6, 0x8100, 0x0000] {
        let mut f = udp_frame(B_IP, 64);
        EthernetPacket::new_unchecked(&mut f[..]).set_ethertype(et);
        assert_dropped(&t, &mut f, DropReason::UnsupportedEtherType);
    }
}

#[test]
fn truncated_ethernet_is_dropped() {
    let t = tables();
    let f = udp_frame(B_IP, 64);
    for n in 0..14 {
        assert_dropped(&t, &mut f[..n].to_vec(), DropReason::BadEthernet);
    }
}

#[test]
fn truncated_ipv4_header_is_dropped() {
    let t = tables();
    let f = udp_frame(B_IP, 64);
    for n in 14..34 {
        assert_dropped(&t, &mut f[..n].to_vec(), DropReason::BadIpv4Header);
    }
}

#[test]
fn ihl_below_five_or_past_the_frame_is_a_bad_header() {
    let t = tables();
    for ihl in 0..5 {
        let mut f = udp_frame(B_IP, 64);
        set_ip_byte(&mut f, 0, 0x40 | ihl, true);
        assert_dropped(&t, &mut f, DropReason::BadIpv4Header);
    }
    // IHL 15 (60 bytes) in a frame with 49 bytes of IPv4.
    let mut f = udp_frame(B_IP, 64);
    set_ip_byte(&mut f, 0, 0x4f, false);
    assert_dropped(&t, &mut f, DropReason::BadIpv4Header);
}

#[test]
fn version_six_in_an_ipv4_frame_is_a_bad_header() {
    let mut f = udp_frame(B_IP, 64);
    set_ip_byte(&mut f, 0, 0x65, true);
    assert_dropped(&tables(), &mut f, DropReason::BadIpv4Header);
}

#[test]
fn total_length_too_long_or_too_short_is_a_bad_length() {
    let t = tables();
    let ip_len = udp_frame(B_IP, 64).len() - 14;
    for total in [ip_len + 1, 1500, 65535, 19, 0] {
        let mut f = udp_frame(B_IP, 64);
        let mut ip = Ipv4Packet::new_unchecked(&mut f[14..]);
        ip.set_total_len(total as u16);
        ip.fill_checksum();
        assert_dropped(&t, &mut f, DropReason::BadIpv4Length);
    }
}

#[test]
fn ethernet_padding_after_the_datagram_is_forwarded() {
    let mut f = udp_frame(B_IP, 64);
    f.extend([0u8; 8]);
    assert_eq!(run(&tables(), &mut f).0, Verdict::Forward(WORKLOAD_B));
}

#[test]
fn bad_checksum_is_dropped() {
    let mut f = udp_frame(B_IP, 64);
    f[24] ^= 0x01;
    assert_dropped(&tables(), &mut f, DropReason::BadIpv4Checksum);
}

#[test]
fn validation_runs_in_the_documented_order() {
    let t = tables();
    // Bad version and bad length and bad checksum: the header check wins.
    let mut f = udp_frame(B_IP, 64);
    f[14] = 0x65;
    f[16] = 0xff;
    assert_dropped(&t, &mut f, DropReason::BadIpv4Header);
    // Bad length and bad checksum: the length check wins.
    let mut f = udp_frame(B_IP, 64);
    f[16] = 0xff;
    assert_dropped(&t, &mut f, DropReason::BadIpv4Length);
    // Bad checksum on an unroutable packet: dropped before the FIB is asked.
    let mut f = udp_frame(UNROUTED_IP, 64);
    f[24] ^= 0xff;
    assert_dropped(&t, &mut f, DropReason::BadIpv4Checksum);
}

#[test]
fn batch_verdicts_line_up_with_frames() {
    let t = tables();
    let mut a = udp_frame(B_IP, 64);
    let mut b = arp_request();
    let mut c = udp_frame(UNROUTED_IP, 64);
    let mut d = udp_frame(B_IP, 64);
    d[24] ^= 1;
    let mut frames = [
        Frame {
            data: &mut a,
            ingress: WORKLOAD_A,
        },
        Frame {
            data: &mut b,
            ingress: WORKLOAD_A,
        },
        Frame {
            data: &mut c,
            ingress: WORKLOAD_A,
        },
        Frame {
            data: &mut d,
            ingress: WORKLOAD_A,
        },
    ];
    let mut verdicts = [Verdict::Drop(DropReason::TxFull); 4];
    let mut counters = PipelineCounters::default();
    process_batch(&mut frames, &t, &mut counters, &mut verdicts);
    assert_eq!(
        verdicts,
        [
            Verdict::Forward(WORKLOAD_B),
            Verdict::Punt(PuntReason::Arp),
            Verdict::Punt(PuntReason::NoRoute),
            Verdict::Drop(DropReason::BadIpv4Checksum),
        ]
    );
    assert_eq!(
        (
            counters.rx_packets,
            counters.forwarded,
            counters.punted,
            counters.total_drops()
        ),
        (4, 1, 1, 2)
    );
}

#[test]
fn forward_rewrite_does_what_the_pipeline_does() {
    let t = tables();
    let mut by_pipeline = udp_frame(B_IP, 64);
    let mut by_slowpath = by_pipeline.clone();
    run(&t, &mut by_pipeline);
    assert!(forward_rewrite(
        &mut by_slowpath,
        MacAddr::CALICO_HOST_SIDE,
        B_MAC
    ));
    assert_eq!(by_slowpath, by_pipeline);
}

#[test]
fn forward_rewrite_refuses_frames_it_must_not_forward() {
    let mut ttl_one = udp_frame(B_IP, 1);
    let mut arp = arp_request();
    let mut short = udp_frame(B_IP, 64)[..30].to_vec();
    for f in [&mut ttl_one, &mut arp, &mut short] {
        let before = f.clone();
        assert!(!forward_rewrite(f, MacAddr::CALICO_HOST_SIDE, B_MAC));
        assert_eq!(*f, before);
    }
}

/// Recomputes the IPv4 header checksum of a possibly mangled frame, whatever its IHL says,
/// as long as the header it announces is inside the frame.
fn repair_ipv4_checksum(f: &mut [u8]) {
    let Some(&ver_ihl) = f.get(14) else { return };
    let end = 14 + usize::from(ver_ihl & 0x0f) * 4;
    if end < 34 || end > f.len() {
        return;
    }
    f[24..26].fill(0);
    let c = checksum::checksum(&f[14..end]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_and_truncated_frames_never_panic_and_are_counted_exactly_once() {
    let t = tables();
    let valid = [
        udp_frame(B_IP, 64),
        udp_frame(C_IP, 1),
        udp_frame(NODE_IP, 64),
        udp_frame(REMOTE_IP, 5),
        arp_request(),
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut counters = PipelineCounters::default();
    let mut frames = 0u64;
    let mut bytes = 0u64;
    let mut forwarded = 0u64;
    let mut check = |frame: &mut Vec<u8>, counters: &mut PipelineCounters| {
        let before = counters.clone();
        let verdict = process_counted(frame, WORKLOAD_A, &t, counters).verdict;
        frames += 1;
        bytes += frame.len() as u64;
        if let Verdict::Forward(_) = verdict {
            forwarded += 1;
            // Whatever got through is a valid IPv4 frame that still checksums.
            assert!(Ipv4Packet::new_checked(&frame[14..])
                .unwrap()
                .verify_checksum());
        }
        let grew = (counters.forwarded - before.forwarded)
            + (counters.punted - before.punted)
            + (counters.total_drops() - before.total_drops());
        assert_eq!(grew, 1, "{verdict:?} on {frame:x?}");
    };
    for v in &valid {
        // Every prefix.
        for n in 0..=v.len() {
            check(&mut v[..n].to_vec(), &mut counters);
        }
        // Random single and multiple byte changes, some with a repaired checksum so they get
        // past validation.
        for round in 0..3000 {
            let mut f = v.clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = (rng.next() % f.len() as u64) as usize;
                f[at] = rng.next() as u8;
            }
            if round % 2 == 0 {
                repair_ipv4_checksum(&mut f);
            }
            if round % 3 == 0 {
                f.truncate((rng.next() % (f.len() as u64 + 1)) as usize);
            }
            check(&mut f, &mut counters);
        }
    }
    // Pure noise, with a valid Ethernet/IPv4 prefix half of the time.
    for round in 0..5000 {
        let mut f: Vec<u8> = (0..rng.next() % 128).map(|_| rng.next() as u8).collect();
        if round % 2 == 0 && f.len() >= 34 {
            f[12..14].copy_from_slice(&ethertype::IPV4.to_be_bytes());
            f[14] = 0x45;
        }
        check(&mut f, &mut counters);
    }
    assert_eq!(counters.rx_packets, frames);
    assert_eq!(counters.rx_bytes, bytes);
    assert_eq!(counters.forwarded, forwarded);
    assert_eq!(
        counters.rx_packets,
        counters.forwarded + counters.punted + counters.total_drops()
    );
    assert!(
        forwarded > 0,
        "some mutated frames should still be forwardable"
    );
}
