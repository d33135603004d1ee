//! Fixtures shared by the slow path's tests: a small topology and frame builders.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::net::Ipv4Addr;

use fastpath::wire::ethernet::{self, ethertype};
use fastpath::wire::ipv4::protocol;
use fastpath::wire::{ArpOperation, ArpRepr, EthernetRepr, Icmpv4Packet, Ipv4Packet, Ipv4Repr};
use fastpath::{MacAddr, NextHop, NextHopKind, PortId, PortInfo, PortKind, Tables};
use slowpath::KernelNeighbors;

pub const UPLINK: PortId = 0;
pub const WORKLOAD_A: PortId = 1;
pub const WORKLOAD_B: PortId = 2;

pub const UPLINK_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
pub const A_MAC: MacAddr = MacAddr([0x0a, 0x58, 0xc0, 0xa8, 0, 0x02]);
pub const B_MAC: MacAddr = MacAddr([0x0a, 0x58, 0xc0, 0xa8, 0, 0x03]);
pub const GATEWAY_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0xfe]);

pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const GATEWAY_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
pub const LINK_LOCAL_GW: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
pub const A_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
pub const B_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 3);
pub const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 7, 9);

pub const NH_A: u32 = 0;
pub const NH_B: u32 = 1;
pub const NH_GATEWAY: u32 = 2;
pub const NH_LOCAL: u32 = 3;
pub const NH_A_AGAIN: u32 = 4;

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

/// An uplink and two workloads, with next hops to each workload, to a gateway on the uplink,
/// a local one, and a second next hop to workload A (as two routes through it would have).
pub fn tables() -> Tables {
    Tables {
        fib: Default::default(),
        ports: vec![
            port("eth0", PortKind::Uplink, UPLINK_MAC, NODE_IP),
            port(
                "cali0000000a",
                PortKind::Workload,
                MacAddr::CALICO_HOST_SIDE,
                LINK_LOCAL_GW,
            ),
            port(
                "cali0000000b",
                PortKind::Workload,
                MacAddr::CALICO_HOST_SIDE,
                LINK_LOCAL_GW,
            ),
        ],
        next_hops: vec![
            NextHop::new(NextHopKind::Neighbor, WORKLOAD_A, A_IP),
            NextHop::new(NextHopKind::Neighbor, WORKLOAD_B, B_IP),
            NextHop::new(NextHopKind::Neighbor, UPLINK, GATEWAY_IP),
            NextHop::new(NextHopKind::Local, UPLINK, NODE_IP),
            NextHop::new(NextHopKind::Neighbor, WORKLOAD_A, A_IP),
        ],
        snat: None,
        floating: Default::default(),
        host: None,
    }
}

pub fn arp_frame(
    op: ArpOperation,
    eth_dst: MacAddr,
    sender_mac: MacAddr,
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> Vec<u8> {
    let mut buf = vec![0u8; 42];
    EthernetRepr {
        src: sender_mac,
        dst: eth_dst,
        ethertype: ethertype::ARP,
    }
    .emit(&mut buf)
    .unwrap();
    let target_mac = if op == ArpOperation::Reply {
        eth_dst
    } else {
        MacAddr([0; 6])
    };
    ArpRepr {
        operation: op,
        sender_mac,
        sender_ip,
        target_mac,
        target_ip,
    }
    .emit(&mut buf[14..])
    .unwrap();
    buf
}

/// A broadcast ARP request from `sender` asking for `target_ip`.
pub fn arp_request(sender_mac: MacAddr, sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        ArpOperation::Request,
        MacAddr::BROADCAST,
        sender_mac,
        sender_ip,
        target_ip,
    )
}

/// An Ethernet frame with an IPv4 datagram (TTL `ttl`, DF clear, no fragment) around `payload`.
pub fn ipv4_frame(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    proto: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut buf = vec![0u8; ethernet::HEADER_LEN + 20 + payload.len()];
    EthernetRepr {
        src: src_mac,
        dst: dst_mac,
        ethertype: ethertype::IPV4,
    }
    .emit(&mut buf)
    .unwrap();
    let mut repr = Ipv4Repr::new(src, dst, proto, payload.len() as u16);
    repr.ttl = ttl;
    repr.dont_frag = false;
    repr.ident = 0x4242;
    repr.emit(&mut buf[14..]).unwrap();
    buf[34..].copy_from_slice(payload);
    buf
}

/// A UDP-ish datagram from workload A to `dst` (the payload need not be valid UDP here).
pub fn datagram_from_a(dst: Ipv4Addr, ttl: u8, payload_len: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    ipv4_frame(
        A_MAC,
        MacAddr::CALICO_HOST_SIDE,
        A_IP,
        dst,
        ttl,
        protocol::UDP,
        &payload,
    )
}

/// An ICMP message of `msg_type`/`code` with a valid checksum and `data` after the header.
pub fn icmp_message(msg_type: u8, code: u8, rest: u32, data: &[u8]) -> Vec<u8> {
    let mut m = vec![msg_type, code, 0, 0];
    m.extend(rest.to_be_bytes());
    m.extend(data);
    Icmpv4Packet::new_checked(&mut m[..])
        .unwrap()
        .fill_checksum();
    m
}

/// Sets the fragment fields of an IPv4 frame built by [`ipv4_frame`] and fixes its checksum.
pub fn set_fragment(frame: &mut [u8], more_frags: bool, offset: u16) {
    let mut ip = Ipv4Packet::new_checked(&mut frame[14..]).unwrap();
    ip.set_flags_and_frag_offset(false, more_frags, offset);
    ip.fill_checksum();
}

/// A kernel neighbour table the test fills in.
#[derive(Default)]
pub struct FakeKernel {
    pub table: HashMap<(String, Ipv4Addr), MacAddr>,
    pub solicited: Vec<(String, Ipv4Addr)>,
}

impl KernelNeighbors for FakeKernel {
    fn solicit(&mut self, port: &PortInfo, ip: Ipv4Addr) -> io::Result<()> {
        self.solicited.push((port.name.clone(), ip));
        Ok(())
    }

    fn lookup(&mut self, port: &PortInfo, ip: Ipv4Addr) -> io::Result<Option<MacAddr>> {
        Ok(self.table.get(&(port.name.clone(), ip)).copied())
    }
}
