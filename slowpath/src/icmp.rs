//! ICMP the slow path originates: errors about forwarded packets (RFC 792, RFC 1812 section
//! 4.3.2) and echo replies for the node's own addresses.

use std::net::Ipv4Addr;

use fastpath::wire::ethernet::{self, ethertype};
use fastpath::wire::icmpv4::{msg_type, time_exceeded, unreachable};
use fastpath::wire::ipv4::protocol;
use fastpath::wire::{
    EthernetPacket, EthernetRepr, Icmpv4Packet, Icmpv4Repr, Ipv4Packet, Ipv4Repr,
};
use fastpath::PortInfo;

use crate::arp::is_group_mac;

/// The errors the slow path sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    /// Type 11 code 0: TTL reached zero in transit.
    TimeExceeded,
    /// Type 3 code 0: no route to the destination network.
    NetUnreachable,
    /// Type 3 code 1: the next hop on the last link never answered ARP (RFC 1812 4.3.3.1).
    HostUnreachable,
    /// Type 3 code 4: too big for the next hop with DF set; `mtu` is the next-hop MTU the
    /// sender should use (RFC 1191 section 4; RFC 1812 section 5.2.6).
    FragmentationNeeded { mtu: u16 },
}

/// Why no error may be sent about a packet (RFC 1812 section 4.3.2.7, RFC 1122 3.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoError {
    /// Not an IPv4 datagram whose header can be read and whose checksum verifies.
    NotIpv4,
    /// Sent to a link-layer broadcast or multicast address, or from one.
    LinkLayerGroup,
    /// The source does not name a single host (0.0.0.0, broadcast, multicast, loopback,
    /// class E).
    SourceNotAHost,
    /// Addressed to a broadcast or multicast address.
    GroupDestination,
    /// A fragment other than the first.
    NonInitialFragment,
    /// An ICMP error message, or an ICMP message too short to tell.
    AboutIcmpError,
}

/// Whether RFC 1812 4.3.2.7 allows an ICMP error about `frame`.
pub fn may_send_error_about(frame: &[u8]) -> Result<(), NoError> {
    let eth = EthernetPacket::new_checked(frame).map_err(|_| NoError::NotIpv4)?;
    if eth.ethertype() != ethertype::IPV4 {
        return Err(NoError::NotIpv4);
    }
    if is_group_mac(eth.dst_addr()) || is_group_mac(eth.src_addr()) {
        return Err(NoError::LinkLayerGroup);
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|_| NoError::NotIpv4)?;
    if !ip.verify_checksum() {
        return Err(NoError::NotIpv4);
    }
    if !is_host_address(ip.src_addr()) {
        return Err(NoError::SourceNotAHost);
    }
    let dst = ip.dst_addr();
    if dst.is_broadcast() || dst.is_multicast() || dst.is_unspecified() {
        return Err(NoError::GroupDestination);
    }
    if ip.frag_offset() != 0 {
        return Err(NoError::NonInitialFragment);
    }
    if ip.protocol() == protocol::ICMP {
        // RFC 1122 3.2.2: errors only about queries; anything else is, or may be, an error.
        let icmp = Icmpv4Packet::new_checked(ip.payload()).map_err(|_| NoError::AboutIcmpError)?;
        if !is_query(icmp.msg_type()) {
            return Err(NoError::AboutIcmpError);
        }
    }
    Ok(())
}

/// Writes the Ethernet frame carrying `kind` about `frame` (which arrived on `port`) into
/// `buf`: back to the sender's MAC, from `source`, TTL 64, quoting as much of the original
/// datagram as keeps the ICMP datagram within 576 bytes (RFC 1812 4.3.2.3). The caller has
/// checked [`may_send_error_about`]. Returns the frame length.
pub fn emit_error(
    kind: IcmpError,
    port: &PortInfo,
    source: Ipv4Addr,
    frame: &[u8],
    buf: &mut [u8],
) -> Option<usize> {
    let eth = EthernetPacket::new_checked(frame).ok()?;
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let original = ip.datagram();
    let message = match kind {
        IcmpError::TimeExceeded => Icmpv4Repr::TimeExceeded {
            code: time_exceeded::TTL_IN_TRANSIT,
            original,
        },
        IcmpError::NetUnreachable => Icmpv4Repr::DstUnreachable {
            code: unreachable::NET,
            next_hop_mtu: 0,
            original,
        },
        IcmpError::HostUnreachable => Icmpv4Repr::DstUnreachable {
            code: unreachable::HOST,
            next_hop_mtu: 0,
            original,
        },
        IcmpError::FragmentationNeeded { mtu } => Icmpv4Repr::DstUnreachable {
            code: unreachable::FRAG_NEEDED,
            next_hop_mtu: mtu,
            original,
        },
    };
    let header = EthernetRepr {
        src: port.mac,
        dst: eth.src_addr(),
        ethertype: ethertype::IPV4,
    };
    let eth_len = header.emit(buf).ok()?;
    let ip_len = message
        .emit_in_ipv4(source, ip.src_addr(), buf.get_mut(eth_len..)?)
        .ok()?;
    Some(eth_len + ip_len)
}

/// Writes an echo reply to `frame` into `buf` if it is an echo request (RFC 792) to one of
/// the node's addresses (`is_ours`) from a host. Returns the frame length; `None` when the
/// frame is anything else.
pub fn emit_echo_reply(
    port: &PortInfo,
    frame: &[u8],
    is_ours: impl Fn(Ipv4Addr) -> bool,
    buf: &mut [u8],
) -> Option<usize> {
    let eth = EthernetPacket::new_checked(frame).ok()?;
    if eth.ethertype() != ethertype::IPV4 || is_group_mac(eth.src_addr()) {
        return None;
    }
    let ip_packet = Ipv4Packet::new_checked(eth.payload()).ok()?;
    // parse refuses bad checksums and fragments: a fragmented echo would need reassembly.
    let ip = Ipv4Repr::parse(&ip_packet).ok()?;
    if ip.protocol != protocol::ICMP || !is_ours(ip.dst) || !is_host_address(ip.src) {
        return None;
    }
    let icmp = Icmpv4Packet::new_checked(ip_packet.payload()).ok()?;
    let Icmpv4Repr::EchoRequest {
        ident,
        seq_no,
        data,
    } = Icmpv4Repr::parse(&icmp).ok()?
    else {
        return None;
    };
    let reply = Icmpv4Repr::EchoReply {
        ident,
        seq_no,
        data,
    };
    let header = EthernetRepr {
        src: port.mac,
        dst: eth.src_addr(),
        ethertype: ethertype::IPV4,
    };
    let eth_len = header.emit(buf).ok()?;
    debug_assert_eq!(eth_len, ethernet::HEADER_LEN);
    let ip_len = reply
        .emit_in_ipv4(ip.dst, ip.src, buf.get_mut(eth_len..)?)
        .ok()?;
    Some(eth_len + ip_len)
}

/// Query messages (RFC 792, RFC 1256, RFC 950): echo, router advertisement and solicitation,
/// timestamp, information and address mask requests and replies.
fn is_query(t: u8) -> bool {
    matches!(
        t,
        msg_type::ECHO_REPLY | msg_type::ECHO_REQUEST | 9 | 10 | 13..=18
    )
}

/// An address that names one host (RFC 1812 section 4.2.2.11 and 5.3.7).
fn is_host_address(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_loopback()
        || ip.octets()[0] >= 240)
}
