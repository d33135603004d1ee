//! Rewriting a packet to its flow's translated key (NAT), patching checksums incrementally.
//!
//! Every checksum touched here covers the changed fields as 16-bit words, so each change is
//! an RFC 1624 equation 3 update ([`checksum::update_u16`]): the IPv4 header checksum for the
//! addresses (RFC 791), the TCP and UDP checksums for the addresses (through the pseudo
//! header, RFC 793 section 3.1, RFC 768) and the ports, the ICMP checksum for the echo
//! identifier (RFC 792; no pseudo header). The cost does not depend on the packet's length.

use std::net::Ipv4Addr;

use super::key::FlowKey;
use crate::wire::checksum;
use crate::wire::icmpv4::{self, msg_type};
use crate::wire::ipv4::{self, protocol};
use crate::wire::{tcp, udp, WireError};

/// RFC 1624 update of a checksum over a 32-bit field that changed from `old` to `new`.
#[inline]
pub fn update_u32(csum: u16, old: u32, new: u32) -> u16 {
    let csum = checksum::update_u16(csum, (old >> 16) as u16, (new >> 16) as u16);
    checksum::update_u16(csum, old as u16, new as u16)
}

/// RFC 1624 update for an IPv4 address that changed (a no-op when it did not).
#[inline]
pub fn update_addr(csum: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    if old == new {
        return csum;
    }
    update_u32(csum, u32::from(old), u32::from(new))
}

/// RFC 1624 update for a 16-bit field such as a port (a no-op when it did not change).
#[inline]
pub fn update_port(csum: u16, old: u16, new: u16) -> u16 {
    if old == new {
        return csum;
    }
    checksum::update_u16(csum, old, new)
}

/// Rewrites the IPv4 `datagram` (from its IP header on) so that its addresses and ports are
/// those of `to` (for ICMP echo, the identifier becomes `to.src_port`), with all checksums
/// patched. A UDP checksum of 0 (none sent, RFC 768) stays 0.
///
/// Refuses non-first fragments (their transport header is elsewhere) and transport headers
/// that do not fit, naming the field; the datagram is then left as it was.
pub fn translate(datagram: &mut [u8], to: &FlowKey) -> Result<(), WireError> {
    let mut ip = ipv4::Packet::new_checked(&mut *datagram)?;
    if ip.frag_offset() != 0 {
        return Err(WireError::BadValue {
            header: "ipv4",
            field: "fragment_offset",
            value: ip.frag_offset().into(),
        });
    }
    let (old_src, old_dst, proto) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
    // Check the transport header before changing anything.
    match proto {
        protocol::TCP => {
            tcp::Packet::new_checked(ip.payload())?;
        }
        protocol::UDP => {
            udp::Packet::new_checked(ip.payload())?;
        }
        protocol::ICMP => {
            icmpv4::Packet::new_checked(ip.payload())?;
        }
        _ => {}
    }
    let ip_csum = update_addr(update_addr(ip.checksum(), old_src, to.src), old_dst, to.dst);
    ip.set_src_addr(to.src);
    ip.set_dst_addr(to.dst);
    ip.set_checksum(ip_csum);
    let pseudo = |csum: u16| update_addr(update_addr(csum, old_src, to.src), old_dst, to.dst);
    let payload = ip.payload_mut();
    match proto {
        protocol::TCP => {
            let mut seg = tcp::Packet::new_unchecked(payload);
            let csum = pseudo(seg.checksum());
            let csum = update_port(
                update_port(csum, seg.src_port(), to.src_port),
                seg.dst_port(),
                to.dst_port,
            );
            seg.set_src_port(to.src_port);
            seg.set_dst_port(to.dst_port);
            seg.set_checksum(csum);
        }
        protocol::UDP => {
            let mut dgram = udp::Packet::new_unchecked(payload);
            if dgram.checksum() != 0 {
                let csum = pseudo(dgram.checksum());
                let csum = update_port(
                    update_port(csum, dgram.src_port(), to.src_port),
                    dgram.dst_port(),
                    to.dst_port,
                );
                dgram.set_checksum(if csum == 0 { 0xffff } else { csum });
            }
            dgram.set_src_port(to.src_port);
            dgram.set_dst_port(to.dst_port);
        }
        protocol::ICMP => {
            let mut msg = icmpv4::Packet::new_unchecked(payload);
            if matches!(
                msg.msg_type(),
                msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY
            ) {
                let csum = update_port(msg.checksum(), msg.echo_ident(), to.src_port);
                msg.set_echo_ident(to.src_port);
                msg.set_checksum(csum);
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::test_rng::Rng;
    use crate::wire::Ipv4Repr;

    /// A random TCP, UDP or ICMP echo datagram with valid checksums; returns it and its key.
    pub(crate) fn random_datagram(rng: &mut Rng, proto: u8) -> (Vec<u8>, FlowKey) {
        let src = Ipv4Addr::from(rng.next_u64() as u32);
        let dst = Ipv4Addr::from(rng.next_u64() as u32);
        let (sp, dp) = (rng.next_u64() as u16, rng.next_u64() as u16);
        let l4_len = match proto {
            protocol::TCP => 20 + 4 * rng.below(11) + rng.below(200),
            _ => 8 + rng.below(200),
        };
        let mut buf = vec![0u8; ipv4::HEADER_LEN + l4_len];
        Ipv4Repr::new(src, dst, proto, l4_len as u16)
            .emit(&mut buf)
            .unwrap();
        let l4 = &mut buf[ipv4::HEADER_LEN..];
        rng.fill(l4);
        let key = match proto {
            protocol::TCP => {
                let data_offset = (20 + (l4_len - 20).min(40) / 4 * 4) / 4;
                l4[12] = (data_offset as u8) << 4;
                let mut p = tcp::Packet::new_unchecked(&mut *l4);
                p.set_src_port(sp);
                p.set_dst_port(dp);
                p.fill_checksum(src, dst);
                FlowKey::tcp(src, sp, dst, dp)
            }
            protocol::UDP => {
                let mut p = udp::Packet::new_unchecked(&mut *l4);
                p.set_src_port(sp);
                p.set_dst_port(dp);
                p.set_len(l4_len as u16);
                p.fill_checksum(src, dst);
                FlowKey::udp(src, sp, dst, dp)
            }
            _ => {
                let mut p = icmpv4::Packet::new_unchecked(&mut *l4);
                p.set_msg_type(if rng.below(2) == 0 {
                    msg_type::ECHO_REQUEST
                } else {
                    msg_type::ECHO_REPLY
                });
                p.set_msg_code(0);
                p.set_echo_ident(sp);
                p.fill_checksum();
                FlowKey::icmp_echo(src, dst, sp)
            }
        };
        (buf, key)
    }

    /// Asserts that every checksum in `datagram` verifies and equals a full recompute (up to
    /// the two representations of zero, 0x0000 and 0xffff, which both verify).
    pub(crate) fn assert_checksums_match_recompute(datagram: &[u8]) {
        let ip = ipv4::Packet::new_checked(datagram).unwrap();
        assert!(ip.verify_checksum(), "ip header {:x?}", ip.header());
        let mut fresh = datagram.to_vec();
        let mut fresh_ip = ipv4::Packet::new_unchecked(&mut fresh[..]);
        fresh_ip.fill_checksum();
        assert_same_checksum(ip.checksum(), fresh_ip.checksum(), "ipv4");
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let hl = ip.header_len();
        let l4 = &mut fresh[hl..];
        match ip.protocol() {
            protocol::TCP => {
                let got = tcp::Packet::new_checked(ip.payload()).unwrap();
                assert!(got.verify_checksum(src, dst));
                let mut want = tcp::Packet::new_unchecked(l4);
                want.fill_checksum(src, dst);
                assert_same_checksum(got.checksum(), want.checksum(), "tcp");
            }
            protocol::UDP => {
                let got = udp::Packet::new_checked(ip.payload()).unwrap();
                assert!(got.verify_checksum(src, dst));
                assert_ne!(
                    got.checksum(),
                    0,
                    "a computed UDP checksum is never sent as 0"
                );
                let mut want = udp::Packet::new_unchecked(l4);
                want.fill_checksum(src, dst);
                assert_same_checksum(got.checksum(), want.checksum(), "udp");
            }
            protocol::ICMP => {
                let got = icmpv4::Packet::new_checked(ip.payload()).unwrap();
                assert!(got.verify_checksum());
                let mut want = icmpv4::Packet::new_unchecked(l4);
                want.fill_checksum();
                assert_same_checksum(got.checksum(), want.checksum(), "icmp");
            }
            _ => {}
        }
    }

    fn assert_same_checksum(got: u16, want: u16, what: &str) {
        let zero = |c: u16| c == 0 || c == 0xffff;
        assert!(
            got == want || (zero(got) && zero(want)),
            "{what}: incremental {got:#06x}, recomputed {want:#06x}"
        );
    }

    fn key_of(datagram: &[u8]) -> FlowKey {
        let ip = ipv4::Packet::new_checked(datagram).unwrap();
        let p = ip.payload();
        let (sp, dp) = match ip.protocol() {
            protocol::ICMP => {
                let id = icmpv4::Packet::new_checked(p).unwrap().echo_ident();
                (id, id)
            }
            _ => (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            ),
        };
        FlowKey::new(ip.src_addr(), ip.dst_addr(), ip.protocol(), sp, dp)
    }

    #[test]
    fn update_u32_matches_recompute_on_random_headers() {
        let mut rng = Rng::new(21);
        for _ in 0..10_000 {
            let mut h = [0u8; 20];
            rng.fill(&mut h);
            h[10] = 0;
            h[11] = 0;
            let c = checksum::checksum(&h);
            let old = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
            let new = rng.next_u64() as u32;
            h[12..16].copy_from_slice(&new.to_be_bytes());
            h[10..12].copy_from_slice(&update_u32(c, old, new).to_be_bytes());
            assert_eq!(checksum::checksum(&h), 0, "{h:x?}");
        }
    }

    #[test]
    fn translate_matches_full_recompute_on_random_packets() {
        let mut rng = Rng::new(1624);
        for round in 0..6_000 {
            let proto = [protocol::TCP, protocol::UDP, protocol::ICMP][round % 3];
            let (mut buf, key) = random_datagram(&mut rng, proto);
            assert_eq!(key_of(&buf), key);
            // Change any subset of the four fields (NAT changes one address and one port).
            let mut to = key;
            if rng.below(2) == 0 {
                to.src = Ipv4Addr::from(rng.next_u64() as u32);
            }
            if rng.below(2) == 0 {
                to.dst = Ipv4Addr::from(rng.next_u64() as u32);
            }
            to.src_port = if rng.below(2) == 0 {
                rng.next_u64() as u16
            } else {
                key.src_port
            };
            to.dst_port = if proto == protocol::ICMP {
                to.src_port
            } else {
                rng.next_u64() as u16
            };
            translate(&mut buf, &to).unwrap();
            assert_eq!(key_of(&buf), to, "round {round}");
            assert_checksums_match_recompute(&buf);
        }
    }

    #[test]
    fn udp_without_checksum_stays_without() {
        let mut rng = Rng::new(3);
        let (mut buf, key) = random_datagram(&mut rng, protocol::UDP);
        buf[ipv4::HEADER_LEN + 6] = 0;
        buf[ipv4::HEADER_LEN + 7] = 0;
        let to = FlowKey {
            src: Ipv4Addr::new(172, 16, 0, 1),
            src_port: 40000,
            ..key
        };
        translate(&mut buf, &to).unwrap();
        assert_eq!(key_of(&buf), to);
        assert_eq!(&buf[ipv4::HEADER_LEN + 6..ipv4::HEADER_LEN + 8], &[0, 0]);
        assert!(ipv4::Packet::new_checked(&buf[..])
            .unwrap()
            .verify_checksum());
    }

    #[test]
    fn refuses_later_fragments_and_short_transport_headers_unchanged() {
        let mut rng = Rng::new(5);
        let (mut buf, key) = random_datagram(&mut rng, protocol::TCP);
        let to = FlowKey {
            src: Ipv4Addr::new(1, 2, 3, 4),
            ..key
        };
        let mut frag = buf.clone();
        ipv4::Packet::new_unchecked(&mut frag[..]).set_flags_and_frag_offset(false, false, 1480);
        ipv4::Packet::new_unchecked(&mut frag[..]).fill_checksum();
        let before = frag.clone();
        assert!(matches!(
            translate(&mut frag, &to),
            Err(WireError::BadValue {
                field: "fragment_offset",
                ..
            })
        ));
        assert_eq!(frag, before);
        // A TCP header cut short by Total Length.
        buf.truncate(ipv4::HEADER_LEN + 10);
        let mut ip = ipv4::Packet::new_unchecked(&mut buf[..]);
        ip.set_total_len((ipv4::HEADER_LEN + 10) as u16);
        ip.fill_checksum();
        let before = buf.clone();
        assert!(matches!(
            translate(&mut buf, &to),
            Err(WireError::Truncated { header: "tcp", .. })
        ));
        assert_eq!(buf, before);
        assert!(translate(&mut [0u8; 10], &to).is_err());
    }

    #[test]
    fn never_panics_on_hostile_input() {
        let mut rng = Rng::new(77);
        for proto in [protocol::TCP, protocol::UDP, protocol::ICMP] {
            let (valid, key) = random_datagram(&mut rng, proto);
            for mut input in crate::wire::test_rng::hostile_inputs(&valid, 1000, 8) {
                let _ = translate(&mut input, &key.reversed());
            }
        }
    }
}
