//! Stage 1b, L4 checksum completion: a TCP or UDP segment sent by a process on this host
//! through a veth with checksum offload on (Linux's default) leaves its sender with the
//! checksum unfinished (CHECKSUM_PARTIAL): the field holds only the pseudo-header sum, and the
//! kernel would have finished it on the way out of a real NIC. AF_XDP carries no offload
//! metadata, so such a segment forwarded as it is reaches its receiver with a bad checksum and
//! is dropped there, silently (TCP gets nowhere). The stage recognises the signature and
//! completes the checksum, so that workloads and the node's own stack work with default
//! offloads.
//!
//! The signature: the checksum field equals the folded pseudo-header sum (RFC 793 section
//! 3.1, RFC 768) of the segment as it is, the value Linux's `tcp_v4_send_check` and
//! `udp4_hwcsum` leave. A finished checksum has that value with probability 2^-16; completing
//! it then recomputes the same, correct value, so a correct segment is never harmed.
//!
//! Reads the IPv4 header (protocol, fragment fields, addresses, lengths) and the L4 checksum;
//! sets the L4 checksum. No verdict: a segment too short for its header, a fragment or a UDP
//! datagram without checksum goes on untouched.

use crate::wire::checksum::{fold, pseudo_header};
use crate::wire::ipv4::protocol;
use crate::wire::{TcpPacket, UdpPacket};

use super::input::Ipv4Frame;

/// Where the checksum is in a TCP header (RFC 793 section 3.1) and a UDP header (RFC 768).
const TCP_CHECKSUM_AT: usize = 16;
const UDP_CHECKSUM_AT: usize = 6;

/// Completes a partial TCP or UDP checksum; true when it did.
#[inline(always)]
pub(super) fn complete(packet: &mut Ipv4Frame<'_>) -> bool {
    let ip = packet.ip();
    let proto = ip.protocol();
    let checksum_at = match proto {
        protocol::TCP => TCP_CHECKSUM_AT,
        protocol::UDP => UDP_CHECKSUM_AT,
        _ => return false,
    };
    // A sender that fragments has finished its checksum (offload needs the whole segment).
    if ip.is_fragment() {
        return false;
    }
    // Read in place first: the common segment (finished, or UDP without checksum: 0, which
    // no pseudo-header sum folds to) costs a pseudo-header sum and nothing more. Past the
    // total length is Ethernet padding at worst; `finish` checks the segment properly.
    let header_len = ip.header_len();
    let word = |at: usize| {
        let at = header_len + at;
        packet
            .ip_bytes()
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let Some(found) = word(checksum_at).filter(|&c| c != 0) else {
        return false;
    };
    let covered = if proto == protocol::UDP {
        // The UDP Length field.
        word(4).unwrap_or(0)
    } else {
        ip.total_len().wrapping_sub(header_len as u16)
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if found != fold(pseudo_header(src, dst, proto, u32::from(covered))) {
        return false;
    }
    finish(packet, proto)
}

/// Computes the whole checksum of a segment found partial: out of line, off the common path.
#[cold]
#[inline(never)]
fn finish(packet: &mut Ipv4Frame<'_>, proto: u8) -> bool {
    let ip = packet.ip();
    let (src, dst, header_len) = (ip.src_addr(), ip.dst_addr(), ip.header_len());
    // The checked view guarantees header_len <= total length; never panic should it change.
    let Some(segment) = packet.datagram_mut().get_mut(header_len..) else {
        return false;
    };
    if proto == protocol::TCP {
        let Ok(mut tcp) = TcpPacket::new_checked(segment) else {
            return false;
        };
        tcp.fill_checksum(src, dst);
    } else {
        let Ok(mut udp) = UdpPacket::new_checked(segment) else {
            return false;
        };
        udp.fill_checksum(src, dst);
    }
    true
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::wire::checksum;
    use crate::wire::ethernet::HEADER_LEN as ETH;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 3);

    /// Ethernet, IPv4 (checksum filled), then `l4` as the segment of protocol `proto`.
    fn frame(proto: u8, l4: &[u8], frag: u16) -> Vec<u8> {
        let mut f = vec![0u8; ETH];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
        ip[6..8].copy_from_slice(&frag.to_be_bytes());
        ip[8] = 64;
        ip[9] = proto;
        ip[12..16].copy_from_slice(&SRC.octets());
        ip[16..20].copy_from_slice(&DST.octets());
        let c = checksum::checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        f
    }

    /// A TCP segment with `payload` whose checksum is what a sender with offload leaves.
    fn partial_tcp(payload: &[u8]) -> Vec<u8> {
        let mut l4 = vec![0u8; 20];
        l4[0..2].copy_from_slice(&40000u16.to_be_bytes());
        l4[2..4].copy_from_slice(&80u16.to_be_bytes());
        l4[12] = 5 << 4;
        l4[13] = 0x18;
        l4.extend_from_slice(payload);
        let pseudo = fold(pseudo_header(SRC, DST, protocol::TCP, l4.len() as u32));
        l4[16..18].copy_from_slice(&pseudo.to_be_bytes());
        l4
    }

    fn partial_udp(payload: &[u8]) -> Vec<u8> {
        let len = (8 + payload.len()) as u16;
        let mut l4 = vec![0u8; 8];
        l4[0..2].copy_from_slice(&5353u16.to_be_bytes());
        l4[2..4].copy_from_slice(&5201u16.to_be_bytes());
        l4[4..6].copy_from_slice(&len.to_be_bytes());
        l4.extend_from_slice(payload);
        let pseudo = fold(pseudo_header(SRC, DST, protocol::UDP, u32::from(len)));
        l4[6..8].copy_from_slice(&pseudo.to_be_bytes());
        l4
    }

    fn run(f: &mut [u8]) -> bool {
        let mut packet = Ipv4Frame::new_checked(f).expect("valid frame");
        complete(&mut packet)
    }

    fn tcp_ok(f: &[u8]) -> bool {
        TcpPacket::new_checked(&f[ETH + 20..])
            .unwrap()
            .verify_checksum(SRC, DST)
    }

    #[test]
    fn a_partial_tcp_checksum_is_completed() {
        let mut f = frame(protocol::TCP, &partial_tcp(b"odd-length payload!"), 0);
        assert!(!tcp_ok(&f), "the partial checksum does not verify");
        assert!(run(&mut f));
        assert!(tcp_ok(&f), "completed");
    }

    #[test]
    fn a_partial_udp_checksum_is_completed() {
        let mut f = frame(protocol::UDP, &partial_udp(b"datagram"), 0);
        assert!(run(&mut f));
        let udp = UdpPacket::new_checked(&f[ETH + 20..]).unwrap();
        assert_ne!(udp.checksum(), 0);
        assert!(udp.verify_checksum(SRC, DST));
    }

    #[test]
    fn finished_checksums_fragments_and_udp_without_checksum_are_left_alone() {
        let mut done = frame(protocol::TCP, &partial_tcp(b"payload"), 0);
        let l4 = ETH + 20;
        TcpPacket::new_unchecked(&mut done[l4..]).fill_checksum(SRC, DST);
        let before = done.clone();
        assert!(!run(&mut done));
        assert_eq!(done, before);

        let mut fragment = frame(protocol::TCP, &partial_tcp(b"payload"), 0x2000);
        let before = fragment.clone();
        assert!(!run(&mut fragment), "more fragments");
        assert_eq!(fragment, before);

        let mut none = partial_udp(b"x");
        none[6..8].copy_from_slice(&[0, 0]);
        let mut none = frame(protocol::UDP, &none, 0);
        assert!(!run(&mut none));
        assert_eq!(UdpPacket::new_checked(&none[l4..]).unwrap().checksum(), 0);

        let mut icmp = frame(1, &[8, 0, 0, 0, 0, 1, 0, 1], 0);
        assert!(!run(&mut icmp));
    }

    #[test]
    fn truncated_segments_are_left_alone_without_panicking() {
        for len in 0..20 {
            let mut f = frame(protocol::TCP, &partial_tcp(b"")[..len], 0);
            assert!(!run(&mut f), "{len} bytes of TCP header");
        }
        let mut bad_udp_len = partial_udp(b"abc");
        bad_udp_len[4..6].copy_from_slice(&100u16.to_be_bytes());
        let mut f = frame(protocol::UDP, &bad_udp_len, 0);
        assert!(!run(&mut f), "UDP length past the datagram");
    }
}
