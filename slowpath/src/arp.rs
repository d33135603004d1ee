//! ARP (RFC 826) as the slow path speaks it: proxy replies to workloads, requests to resolve
//! workload next hops, and what may be learned from a received packet.

use std::net::Ipv4Addr;

use fastpath::wire::ethernet::{self, ethertype, EthernetRepr};
use fastpath::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetPacket};
use fastpath::{MacAddr, PortInfo};

/// Frames shorter than this are padded: the minimum Ethernet frame without FCS (IEEE 802.3
/// section 3.2.8), which some NICs do not pad themselves.
pub const MIN_FRAME_LEN: usize = 60;

/// A received ARP packet and the Ethernet header it came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReceivedArp {
    pub ethernet: EthernetRepr,
    pub arp: ArpRepr,
}

/// Parses an Ethernet frame carrying Ethernet/IPv4 ARP; `None` for anything else.
pub fn parse(frame: &[u8]) -> Option<ReceivedArp> {
    let eth = EthernetPacket::new_checked(frame).ok()?;
    if eth.ethertype() != ethertype::ARP {
        return None;
    }
    let arp = ArpPacket::new_checked(eth.payload()).ok()?;
    Some(ReceivedArp {
        ethernet: EthernetRepr::parse(&eth),
        arp: ArpRepr::parse(&arp).ok()?,
    })
}

/// The (ip, mac) binding a received packet teaches, if it teaches one.
///
/// Every request and reply names its sender (RFC 826 "Packet Reception"), except probes with
/// sender 0.0.0.0 (RFC 5227 section 2.1.1), and a sender claiming a group or broadcast MAC is
/// not a neighbour one could send to.
pub fn sender_binding(received: &ReceivedArp) -> Option<(Ipv4Addr, MacAddr)> {
    let arp = &received.arp;
    if arp.sender_ip.is_unspecified()
        || arp.sender_ip.is_broadcast()
        || arp.sender_ip.is_multicast()
    {
        return None;
    }
    if is_group_mac(arp.sender_mac) || arp.sender_mac == MacAddr([0; 6]) {
        return None;
    }
    Some((arp.sender_ip, arp.sender_mac))
}

/// Whether proxy ARP answers `received` on a workload port: every request, as Calico's proxy
/// ARP does (the workload's only neighbour is the vRouter), except duplicate-address probes
/// (sender 0.0.0.0, RFC 5227 section 2.1.1) and gratuitous announcements (target = sender,
/// RFC 5227 section 2.3), which expect no answer.
pub fn should_proxy(received: &ReceivedArp) -> bool {
    let arp = &received.arp;
    arp.operation == ArpOperation::Request
        && !arp.sender_ip.is_unspecified()
        && arp.target_ip != arp.sender_ip
        && sender_binding(received).is_some()
}

/// Writes the proxy reply to `request` into `buf`: "`target_ip` is at `port.mac`", addressed
/// to the requester. Returns the frame length.
pub fn emit_proxy_reply(port: &PortInfo, request: &ReceivedArp, buf: &mut [u8]) -> Option<usize> {
    let reply = ArpRepr {
        operation: ArpOperation::Reply,
        sender_mac: port.mac,
        sender_ip: request.arp.target_ip,
        target_mac: request.arp.sender_mac,
        target_ip: request.arp.sender_ip,
    };
    emit_frame(request.arp.sender_mac, port.mac, &reply, buf)
}

/// Writes a broadcast request "who has `target_ip`? tell `port.ip`" into `buf`.
pub fn emit_request(port: &PortInfo, target_ip: Ipv4Addr, buf: &mut [u8]) -> Option<usize> {
    let request = ArpRepr {
        operation: ArpOperation::Request,
        sender_mac: port.mac,
        sender_ip: port.ip,
        target_mac: MacAddr([0; 6]),
        target_ip,
    };
    emit_frame(MacAddr::BROADCAST, port.mac, &request, buf)
}

fn emit_frame(dst: MacAddr, src: MacAddr, arp: &ArpRepr, buf: &mut [u8]) -> Option<usize> {
    let buf = buf.get_mut(..MIN_FRAME_LEN)?;
    buf.fill(0);
    let eth_len = EthernetRepr {
        src,
        dst,
        ethertype: ethertype::ARP,
    }
    .emit(buf)
    .ok()?;
    debug_assert_eq!(eth_len, ethernet::HEADER_LEN);
    arp.emit(&mut buf[eth_len..]).ok()?;
    Some(MIN_FRAME_LEN)
}

/// Group (multicast or broadcast) addresses have the I/G bit set (IEEE 802 section 8.2).
pub fn is_group_mac(mac: MacAddr) -> bool {
    mac.0[0] & 0x01 != 0
}
