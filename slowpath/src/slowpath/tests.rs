//! Unit tests of the slow path's frame handling against a fake kernel neighbour table.

use super::*;
use fastpath::wire::ethernet::ethertype;
use fastpath::wire::icmpv4::{msg_type, unreachable};
use fastpath::wire::ipv4::protocol;
use fastpath::wire::{EthernetRepr, Icmpv4Packet, Ipv4Repr};
use fastpath::{Fib, NextHop};

const WORKLOAD: PortId = 0;
const UPLINK: PortId = 1;
const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 20);
const A_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 7);
const A_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const UPLINK_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 1]);
const PEER_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0x20]);

/// A kernel that knows the peer node's MAC.
struct KnowsPeer;

impl KernelNeighbors for KnowsPeer {
    fn solicit(&mut self, _port: &PortInfo, _ip: Ipv4Addr) -> std::io::Result<()> {
        Ok(())
    }
    fn lookup(&mut self, _port: &PortInfo, ip: Ipv4Addr) -> std::io::Result<Option<MacAddr>> {
        Ok((ip == PEER_IP).then_some(PEER_MAC))
    }
}

fn tables() -> Tables {
    let port = |name: &str, kind, mac, ip| PortInfo {
        name: String::from(name),
        ifindex: 0,
        kind,
        mac,
        ip,
        mtu: 1500,
        policy: None,
        qos: None,
    };
    let mut fib = Fib::new();
    fib.insert(Ipv4Addr::new(192, 168, 1, 0), 26, 0).unwrap();
    Tables {
        fib,
        next_hops: vec![NextHop::remote(
            UPLINK,
            PEER_IP,
            Encap::Ipip {
                local: NODE_IP,
                remote: PEER_IP,
            },
        )],
        ports: vec![
            port(
                "caliA",
                PortKind::Workload,
                MacAddr::CALICO_HOST_SIDE,
                Ipv4Addr::new(169, 254, 1, 1),
            ),
            port("eth0", PortKind::Uplink, UPLINK_MAC, NODE_IP),
        ],
        snat: None,
        floating: Default::default(),
        host: None,
    }
}

fn slowpath() -> Slowpath<KnowsPeer> {
    let config = SlowpathConfig {
        node_ip: Some(NODE_IP),
        ..SlowpathConfig::default()
    };
    Slowpath::new(config, Arc::new(SlowpathCounters::default()), KnowsPeer)
}

/// A DF UDP frame from workload A to the remote workload, `total_len` bytes of IPv4.
fn frame(total_len: usize) -> Vec<u8> {
    let mut f = vec![0u8; 14 + total_len];
    EthernetRepr {
        src: A_MAC,
        dst: MacAddr::CALICO_HOST_SIDE,
        ethertype: ethertype::IPV4,
    }
    .emit(&mut f)
    .unwrap();
    Ipv4Repr::new(A_IP, REMOTE_IP, protocol::UDP, (total_len - 20) as u16)
        .emit(&mut f[14..])
        .unwrap();
    f
}

#[test]
fn fragmentation_needed_is_answered_with_the_next_hop_mtu() {
    let t = tables();
    let mut sp = slowpath();
    let mut out: Vec<(PortId, Vec<u8>)> = Vec::new();
    let f = frame(1500);
    sp.handle(
        &t,
        WORKLOAD,
        PuntReason::FragmentationNeeded { mtu: 1480 },
        &f,
        Instant::now(),
        &mut out,
    );
    assert_eq!(out.len(), 1, "one ICMP error");
    let (port, reply) = &out[0];
    assert_eq!(
        *port, WORKLOAD,
        "back out of the port the packet came in on"
    );
    let ip = Ipv4Packet::new_checked(&reply[14..]).unwrap();
    assert_eq!(
        (ip.src_addr(), ip.dst_addr(), ip.protocol()),
        (NODE_IP, A_IP, protocol::ICMP)
    );
    let icmp = Icmpv4Packet::new_checked(&reply[34..]).unwrap();
    assert_eq!(
        (icmp.msg_type(), icmp.msg_code()),
        (msg_type::DST_UNREACHABLE, unreachable::FRAG_NEEDED)
    );
    assert_eq!(icmp.next_hop_mtu(), 1480);
    assert!(icmp.verify_checksum());
    assert_eq!(sp.counters.snapshot().icmp_unreachable_sent, 1);
}

#[test]
fn a_held_frame_for_a_tunnel_leaves_wrapped_in_ipip() {
    let t = tables();
    let mut sp = slowpath();
    let mut out: Vec<(PortId, Vec<u8>)> = Vec::new();
    let f = frame(100);
    // The kernel already knows the peer: the frame goes out at once, as the worker would
    // have sent it.
    sp.handle(
        &t,
        WORKLOAD,
        PuntReason::Unresolved(0),
        &f,
        Instant::now(),
        &mut out,
    );
    assert_eq!(out.len(), 1, "{out:?}");
    let (port, sent) = &out[0];
    assert_eq!(*port, UPLINK);
    assert_eq!(&sent[0..6], &PEER_MAC.0);
    assert_eq!(sent.len(), 14 + 20 + 100);
    let outer = Ipv4Packet::new_checked(&sent[14..]).unwrap();
    assert_eq!(
        (outer.src_addr(), outer.dst_addr(), outer.protocol()),
        (NODE_IP, PEER_IP, protocol::IPIP)
    );
    assert!(outer.verify_checksum());
    let inner = Ipv4Packet::new_checked(&sent[34..]).unwrap();
    assert_eq!((inner.dst_addr(), inner.ttl()), (REMOTE_IP, 63));
    assert_eq!(
        t.next_hops[0].mac(),
        Some(PEER_MAC),
        "the next hop learned the MAC too"
    );
}

/// A UDP frame from workload A to `dst`.
fn frame_to(dst: Ipv4Addr) -> Vec<u8> {
    let mut f = frame(100);
    Ipv4Repr::new(A_IP, dst, protocol::UDP, 80)
        .emit(&mut f[14..])
        .unwrap();
    f
}

#[test]
fn a_frame_on_a_connected_route_goes_to_its_own_destination() {
    let mut t = tables();
    t.next_hops = vec![NextHop::connected(UPLINK, Ipv4Addr::new(10, 0, 0, 0))];
    let mut sp = slowpath();
    let mut out: Vec<(PortId, Vec<u8>)> = Vec::new();
    // The kernel knows PEER_IP (a host on the uplink's subnet): sent at once, to its MAC.
    let f = frame_to(PEER_IP);
    sp.handle(
        &t,
        WORKLOAD,
        PuntReason::Unresolved(0),
        &f,
        Instant::now(),
        &mut out,
    );
    assert_eq!(out.len(), 1, "{out:?}");
    let (port, sent) = &out[0];
    assert_eq!(*port, UPLINK);
    assert_eq!(&sent[0..6], &PEER_MAC.0, "to the destination's MAC");
    assert_eq!(&sent[6..12], &UPLINK_MAC.0);
    let ip = Ipv4Packet::new_checked(&sent[14..]).unwrap();
    assert_eq!((ip.dst_addr(), ip.ttl()), (PEER_IP, 63));
    assert_eq!(
        t.next_hops[0].mac(),
        None,
        "a connected next hop has no MAC of its own: every destination is resolved apart"
    );
    // Another host on the subnet, unknown yet: held while that address (not the subnet's)
    // resolves.
    let other = Ipv4Addr::new(10, 0, 0, 77);
    sp.handle(
        &t,
        WORKLOAD,
        PuntReason::Unresolved(0),
        &frame_to(other),
        Instant::now(),
        &mut out,
    );
    assert_eq!(out.len(), 1, "nothing sent before it resolves");
    assert_eq!((sp.held(), sp.resolving()), (1, 1));
    assert!(sp.resolutions.contains_key(&(UPLINK, other)));
}
