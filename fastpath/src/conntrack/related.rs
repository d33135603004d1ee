//! ICMP errors that belong to a tracked flow (RFC 792; RFC 1122 section 3.2.2).
//!
//! A router that cannot deliver a packet of a flow (destination unreachable, including
//! "fragmentation needed" for path MTU discovery, RFC 1191), or drops it at TTL 0 (time
//! exceeded), or finds a bad header (parameter problem) answers the packet's source with an
//! ICMP error quoting the packet's IP header and at least its first 8 bytes of data. The
//! quoted packet travelled one way in a flow, so the error travels the other way: its flow is
//! found by looking up the quoted key reversed ([`related_key`]), and it passes if the flow is
//! allowed. For a translated flow the quote shows the packet as it left, after NAT, so
//! [`translate_error`] undoes the translation in the quote and readdresses the error.

use super::key::{Direction, FlowKey};
use super::rewrite::{update_addr, update_port};
use super::table::Flow;
use crate::wire::icmpv4::{self, msg_type};
use crate::wire::ipv4::{self, protocol};
use crate::wire::{check_len, WireError};

/// Bytes of the quoted packet's data the tracker reads: RFC 792 promises 64 bits.
const QUOTED_DATA: usize = 8;

/// The key of the packet an ICMP error quotes, or `None` when `icmp_message` (the IPv4
/// payload) is not an error about a trackable packet: not an error at all, an error about an
/// ICMP error (never sent, RFC 1122 section 3.2.2), or about a later fragment.
pub fn quoted_key(icmp_message: &[u8]) -> Result<Option<FlowKey>, WireError> {
    let Some((quoted, header_len)) = quoted_datagram(icmp_message)? else {
        return Ok(None);
    };
    let ip = ipv4::Packet::new_unchecked(quoted);
    if ip.frag_offset() != 0 {
        return Ok(None);
    }
    let data = &quoted[header_len..header_len + QUOTED_DATA];
    let word = |at: usize| u16::from_be_bytes([data[at], data[at + 1]]);
    let (src, dst, proto) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
    Ok(match proto {
        protocol::TCP | protocol::UDP => Some(FlowKey::new(src, dst, proto, word(0), word(2))),
        protocol::ICMP => match data[0] {
            msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY => {
                Some(FlowKey::icmp_echo(src, dst, word(4)))
            }
            _ => None,
        },
        _ => Some(FlowKey::new(src, dst, proto, 0, 0)),
    })
}

/// The key to look up for an ICMP error: the quoted key reversed, since the error travels
/// against the packet it quotes. The flow's direction from that lookup is the error's.
pub fn related_key(icmp_message: &[u8]) -> Result<Option<FlowKey>, WireError> {
    Ok(quoted_key(icmp_message)?.map(|k| k.reversed()))
}

/// Rewrites an ICMP error `datagram` (from its outer IP header on) that belongs to `flow` in
/// `direction` for a translated flow: the outer destination (and the outer source, when the
/// far end itself sent the error) become the translated ones, and the quoted packet becomes
/// the packet as it was before translation, with its IP header and transport checksums
/// patched (RFC 1624) and the ICMP checksum recomputed (errors are rare and short).
pub fn translate_error(
    datagram: &mut [u8],
    flow: &Flow,
    direction: Direction,
) -> Result<(), WireError> {
    let mut ip = ipv4::Packet::new_checked(&mut *datagram)?;
    if ip.frag_offset() != 0 || ip.more_frags() {
        return Err(WireError::BadValue {
            header: "ipv4",
            field: "fragment_offset",
            value: ip.frag_offset().into(),
        });
    }
    let Some((_, quoted_header_len)) = quoted_datagram(ip.payload())? else {
        return Err(WireError::BadValue {
            header: "icmpv4",
            field: "type",
            value: ip.payload()[0].into(),
        });
    };
    let current = *flow.key(direction);
    let outer = flow.translated(direction);
    let (old_src, old_dst) = (ip.src_addr(), ip.dst_addr());
    let new_src = if old_src == current.src {
        outer.src
    } else {
        old_src
    };
    let csum = update_addr(
        update_addr(ip.checksum(), old_src, new_src),
        old_dst,
        outer.dst,
    );
    ip.set_src_addr(new_src);
    ip.set_dst_addr(outer.dst);
    ip.set_checksum(csum);

    let mut msg = icmpv4::Packet::new_unchecked(ip.payload_mut());
    let quoted = msg.data_mut();
    // The quoted packet as it was received from its sender, before translation.
    let before = *flow.key(direction.opposite());
    untranslate_quote(quoted, quoted_header_len, &before);
    msg.fill_checksum();
    Ok(())
}

/// Sets the quoted packet's addresses and ports (or echo id) to `to`, patching its IP header
/// checksum and the transport checksum when the quote holds it.
fn untranslate_quote(quoted: &mut [u8], header_len: usize, to: &FlowKey) {
    let mut ip = ipv4::Packet::new_unchecked(&mut quoted[..header_len]);
    let (old_src, old_dst, proto) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
    let csum = update_addr(update_addr(ip.checksum(), old_src, to.src), old_dst, to.dst);
    ip.set_src_addr(to.src);
    ip.set_dst_addr(to.dst);
    ip.set_checksum(csum);
    if ip.frag_offset() != 0 {
        return;
    }
    let l4 = &mut quoted[header_len..];
    let read = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let pseudo = |csum: u16| update_addr(update_addr(csum, old_src, to.src), old_dst, to.dst);
    let ports = |l4: &mut [u8], csum: u16| {
        let csum = update_port(
            update_port(csum, read(l4, 0), to.src_port),
            read(l4, 2),
            to.dst_port,
        );
        l4[0..2].copy_from_slice(&to.src_port.to_be_bytes());
        l4[2..4].copy_from_slice(&to.dst_port.to_be_bytes());
        csum
    };
    match proto {
        protocol::UDP => {
            let old = read(l4, 6);
            let csum = ports(l4, pseudo(old));
            if old != 0 {
                l4[6..8].copy_from_slice(&(if csum == 0 { 0xffff } else { csum }).to_be_bytes());
            }
        }
        protocol::TCP => {
            // The TCP checksum sits at offset 16, inside the quote only when more than the
            // minimum 8 bytes were quoted.
            let has_csum = l4.len() >= 18;
            let old = if has_csum { read(l4, 16) } else { 0 };
            let csum = ports(l4, pseudo(old));
            if has_csum {
                l4[16..18].copy_from_slice(&csum.to_be_bytes());
            }
        }
        protocol::ICMP if matches!(l4[0], msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY) => {
            let csum = update_port(read(l4, 2), read(l4, 4), to.src_port);
            l4[4..6].copy_from_slice(&to.src_port.to_be_bytes());
            l4[2..4].copy_from_slice(&csum.to_be_bytes());
        }
        _ => {}
    }
}

/// For an error message, its quote and the quoted IP header's length, after checking that
/// the quote holds the whole header and [`QUOTED_DATA`] bytes after it; `None` for messages
/// that are not errors about a trackable packet.
fn quoted_datagram(icmp_message: &[u8]) -> Result<Option<(&[u8], usize)>, WireError> {
    let msg = icmpv4::Packet::new_checked(icmp_message)?;
    match msg.msg_type() {
        msg_type::DST_UNREACHABLE | msg_type::TIME_EXCEEDED | msg_type::PARAMETER_PROBLEM => {}
        _ => return Ok(None),
    }
    let quoted = &icmp_message[icmpv4::HEADER_LEN..];
    check_len("icmpv4", "quoted_header", quoted.len(), ipv4::HEADER_LEN)?;
    let version = quoted[0] >> 4;
    if version != 4 {
        return Err(WireError::BadValue {
            header: "icmpv4",
            field: "quoted_version",
            value: version.into(),
        });
    }
    let header_len = usize::from(quoted[0] & 0x0f) * 4;
    if header_len < ipv4::HEADER_LEN {
        return Err(WireError::BadValue {
            header: "icmpv4",
            field: "quoted_ihl",
            value: (header_len / 4) as u32,
        });
    }
    check_len(
        "icmpv4",
        "quoted_data",
        quoted.len(),
        header_len + QUOTED_DATA,
    )?;
    if quoted[9] == protocol::ICMP
        && !matches!(
            quoted[header_len],
            msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY
        )
    {
        return Ok(None);
    }
    Ok(Some((quoted, header_len)))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::conntrack::rewrite::{self, tests::assert_checksums_match_recompute};
    use crate::conntrack::table::{FlowTable, FlowTableConfig, PolicyDecision};
    use crate::wire::icmpv4::{time_exceeded, unreachable};
    use crate::wire::{udp, Icmpv4Repr, Ipv4Repr};

    const POD: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 2);
    const NODE: Ipv4Addr = Ipv4Addr::new(172, 16, 0, 1);
    const REMOTE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
    const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

    fn allowed() -> PolicyDecision {
        PolicyDecision {
            allowed: true,
            ..PolicyDecision::default()
        }
    }

    fn udp_datagram(key: &FlowKey, payload_len: usize) -> Vec<u8> {
        let len = 8 + payload_len;
        let mut buf = vec![0x5au8; 20 + len];
        Ipv4Repr::new(key.src, key.dst, protocol::UDP, len as u16)
            .emit(&mut buf)
            .unwrap();
        let mut p = udp::Packet::new_unchecked(&mut buf[20..]);
        p.set_src_port(key.src_port);
        p.set_dst_port(key.dst_port);
        p.set_len(len as u16);
        p.fill_checksum(key.src, key.dst);
        buf
    }

    fn error_about(from: Ipv4Addr, to: Ipv4Addr, repr: Icmpv4Repr) -> Vec<u8> {
        let mut buf = vec![0u8; 600];
        let n = repr.emit_in_ipv4(from, to, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn port_unreachable_for_a_snat_flow_is_found_and_untranslated() {
        let mut table = FlowTable::new(FlowTableConfig::with_capacity(16));
        let original = FlowKey::udp(POD, 5353, REMOTE, 53);
        let reply = FlowKey::udp(REMOTE, 53, NODE, 40001);
        let id = table
            .insert(original, reply, 0, 40, allowed(), 0)
            .unwrap()
            .id;
        // The datagram as the pod sent it, and as it left the node.
        let sent = udp_datagram(&original, 12);
        let mut left = sent.clone();
        rewrite::translate(&mut left, &table.flow(id).translated(Direction::Original)).unwrap();
        let mut err = error_about(
            REMOTE,
            NODE,
            Icmpv4Repr::DstUnreachable {
                code: unreachable::PORT,
                next_hop_mtu: 0,
                original: &left,
            },
        );
        let icmp = ipv4::Packet::new_checked(&err[..])
            .unwrap()
            .payload()
            .to_vec();
        assert_eq!(
            quoted_key(&icmp).unwrap(),
            Some(FlowKey::udp(NODE, 40001, REMOTE, 53))
        );
        let lookup = related_key(&icmp).unwrap().unwrap();
        let hit = table.lookup(&lookup, 1).unwrap();
        assert_eq!((hit.id, hit.direction), (id, Direction::Reply));

        translate_error(&mut err, table.flow(id), hit.direction).unwrap();
        let ip = ipv4::Packet::new_checked(&err[..]).unwrap();
        assert_eq!(
            (ip.src_addr(), ip.dst_addr()),
            (REMOTE, POD),
            "the remote itself answered: source kept"
        );
        assert!(ip.verify_checksum());
        let msg = icmpv4::Packet::new_checked(ip.payload()).unwrap();
        assert!(msg.verify_checksum());
        assert_eq!(
            (msg.msg_type(), msg.msg_code()),
            (msg_type::DST_UNREACHABLE, unreachable::PORT)
        );
        // The quote is now exactly what the pod sent, checksums included.
        assert_eq!(msg.data(), &sent[..]);
    }

    #[test]
    fn frag_needed_from_a_router_for_snat_tcp_keeps_router_source_and_mtu() {
        let mut table = FlowTable::new(FlowTableConfig::with_capacity(16));
        let original = FlowKey::tcp(POD, 33000, REMOTE, 443);
        let reply = FlowKey::tcp(REMOTE, 443, NODE, 50000);
        let id = table
            .insert(original, reply, 0x02, 60, allowed(), 0)
            .unwrap()
            .id;
        let mut rng = crate::wire::test_rng::Rng::new(4);
        let (mut sent, _) = rewrite::tests::random_datagram(&mut rng, protocol::TCP);
        rewrite::translate(&mut sent, &original).unwrap();
        let mut left = sent.clone();
        rewrite::translate(&mut left, &table.flow(id).translated(Direction::Original)).unwrap();
        // Only the IP header and 8 bytes quoted (RFC 792 minimum): no TCP checksum in the quote.
        let quote = &left[..28];
        let mut err = error_about(
            ROUTER,
            NODE,
            Icmpv4Repr::DstUnreachable {
                code: unreachable::FRAG_NEEDED,
                next_hop_mtu: 1400,
                original: quote,
            },
        );
        let icmp = ipv4::Packet::new_checked(&err[..])
            .unwrap()
            .payload()
            .to_vec();
        let hit = table
            .lookup(&related_key(&icmp).unwrap().unwrap(), 1)
            .unwrap();
        assert_eq!(hit.direction, Direction::Reply);
        translate_error(&mut err, table.flow(id), hit.direction).unwrap();
        let ip = ipv4::Packet::new_checked(&err[..]).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (ROUTER, POD));
        assert_checksums_match_recompute(&err);
        let msg = icmpv4::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(msg.next_hop_mtu(), 1400);
        assert_eq!(msg.data(), &sent[..28]);
    }

    #[test]
    fn time_exceeded_for_an_untranslated_flow_and_echo_quotes() {
        let mut table = FlowTable::new(FlowTableConfig::with_capacity(16));
        let echo = FlowKey::icmp_echo(POD, REMOTE, 77);
        let id = table
            .insert(echo, echo.reversed(), 0, 84, allowed(), 0)
            .unwrap()
            .id;
        let mut request = vec![0u8; 20 + 16];
        Icmpv4Repr::EchoRequest {
            ident: 77,
            seq_no: 1,
            data: b"pingpong",
        }
        .emit_in_ipv4(POD, REMOTE, &mut request)
        .unwrap();
        let err = error_about(
            ROUTER,
            POD,
            Icmpv4Repr::TimeExceeded {
                code: time_exceeded::TTL_IN_TRANSIT,
                original: &request,
            },
        );
        let icmp = ipv4::Packet::new_checked(&err[..])
            .unwrap()
            .payload()
            .to_vec();
        assert_eq!(quoted_key(&icmp).unwrap(), Some(echo));
        let hit = table
            .lookup(&related_key(&icmp).unwrap().unwrap(), 1)
            .unwrap();
        assert_eq!((hit.id, hit.direction), (id, Direction::Reply));
        // Untranslated: translate_error changes nothing.
        let mut copy = err.clone();
        translate_error(&mut copy, table.flow(id), hit.direction).unwrap();
        assert_eq!(copy, err);
    }

    #[test]
    fn non_errors_errors_about_errors_and_bad_quotes() {
        let mut echo = vec![0u8; 16];
        Icmpv4Repr::EchoRequest {
            ident: 1,
            seq_no: 1,
            data: b"12345678",
        }
        .emit(&mut echo)
        .unwrap();
        assert_eq!(quoted_key(&echo).unwrap(), None);
        // An error quoting an error.
        let inner = error_about(
            ROUTER,
            POD,
            Icmpv4Repr::TimeExceeded {
                code: 0,
                original: &udp_datagram(&FlowKey::udp(POD, 1, REMOTE, 2), 0),
            },
        );
        let outer = error_about(
            REMOTE,
            ROUTER,
            Icmpv4Repr::DstUnreachable {
                code: 1,
                next_hop_mtu: 0,
                original: &inner,
            },
        );
        assert_eq!(
            quoted_key(ipv4::Packet::new_checked(&outer[..]).unwrap().payload()).unwrap(),
            None
        );
        // A quote too short for the transport ports.
        let d = udp_datagram(&FlowKey::udp(POD, 1, REMOTE, 2), 0);
        let short = error_about(
            REMOTE,
            POD,
            Icmpv4Repr::DstUnreachable {
                code: 3,
                next_hop_mtu: 0,
                original: &d[..24],
            },
        );
        let icmp = ipv4::Packet::new_checked(&short[..])
            .unwrap()
            .payload()
            .to_vec();
        assert_eq!(
            quoted_key(&icmp),
            Err(WireError::Truncated {
                header: "icmpv4",
                field: "quoted_data",
                len: 24,
                need: 28
            })
        );
        // A quote that is not IPv4.
        let mut bad = icmp.clone();
        bad[8] = 0x65;
        assert!(matches!(
            quoted_key(&bad),
            Err(WireError::BadValue {
                field: "quoted_version",
                value: 6,
                ..
            })
        ));
    }

    #[test]
    fn never_panics_on_hostile_input() {
        let d = udp_datagram(&FlowKey::udp(POD, 1, REMOTE, 2), 4);
        let err = error_about(
            REMOTE,
            POD,
            Icmpv4Repr::DstUnreachable {
                code: 3,
                next_hop_mtu: 0,
                original: &d,
            },
        );
        let mut table = FlowTable::new(FlowTableConfig::with_capacity(4));
        let id = table
            .insert(
                FlowKey::udp(POD, 1, REMOTE, 2),
                FlowKey::udp(REMOTE, 2, NODE, 9),
                0,
                0,
                allowed(),
                0,
            )
            .unwrap()
            .id;
        for mut input in crate::wire::test_rng::hostile_inputs(&err, 3000, 12) {
            let icmp = input.get(20..).unwrap_or_default().to_vec();
            let _ = quoted_key(&icmp);
            let _ = translate_error(&mut input, table.flow(id), Direction::Reply);
        }
    }
}
