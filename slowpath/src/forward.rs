//! Sending a held frame on once its neighbour is known.

use fastpath::wire::ethernet::ethertype;
use fastpath::wire::{EthernetPacket, Ipv4Packet};
use fastpath::MacAddr;

/// What the pipeline would have done had the MAC been known: TTL - 1 (RFC 1812 section
/// 5.3.1) and the MAC rewrite. False when the frame must not be forwarded (not IPv4, or TTL
/// too low).
pub fn forward_rewrite(frame: &mut [u8], src_mac: MacAddr, dst_mac: MacAddr) -> bool {
    let Ok(mut eth) = EthernetPacket::new_checked(&mut frame[..]) else { return false };
    if eth.ethertype() != ethertype::IPV4 {
        return false;
    }
    let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) else { return false };
    if ip.ttl() <= 1 {
        return false;
    }
    ip.decrement_ttl();
    eth.set_src_addr(src_mac);
    eth.set_dst_addr(dst_mac);
    true
}
