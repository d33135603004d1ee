//! Frames the far side sends, built by hand.

use std::net::Ipv4Addr;

use fastpath::MacAddr;

use super::lab::ip;

pub const FAR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xfa, 0x01];

/// An Ethernet frame with a local experimental EtherType (IEEE 802 0x88B5) carrying `marker`.
pub fn experimental_frame(marker: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&FAR_MAC);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(marker);
    f.resize(f.len().max(60), 0);
    f
}

/// An IPv4 frame (protocol `proto`, UDP-shaped payload) to `dst`, carrying `marker`.
pub fn ipv4_frame(
    dst_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    marker: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&FAR_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + 8 + marker.len();
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let mut sum = 0u32;
    for c in ip.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    // UDP header 40000 -> 40001, no checksum (allowed over IPv4, RFC 768).
    f.extend_from_slice(&[0x9c, 0x40, 0x9c, 0x41]);
    f.extend_from_slice(&((8 + marker.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(marker);
    f
}

/// An ARP request (RFC 826) from the far side: who has `target`? tell `sender`.
pub fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&FAR_MAC);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f.extend_from_slice(&FAR_MAC);
    f.extend_from_slice(&sender.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f.resize(60, 0);
    f
}

pub fn mac_of(ns: &str, ifname: &str) -> [u8; 6] {
    let out = ip(&["-n", ns, "-br", "link", "show", "dev", ifname]);
    let mac: MacAddr = out
        .split_whitespace()
        .nth(2)
        .expect("MAC column")
        .parse()
        .expect("MAC");
    mac.0
}
