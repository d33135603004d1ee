//! Stage 1, input: Ethernet, IPv4 and the header checksum, in that order; what passes is an
//! [`Ipv4Frame`], the checked view every later stage reads and writes.
//!
//! Reads the frame. Verdicts: `Drop(BadEthernet)` (shorter than an Ethernet header),
//! `Punt(Arp)`, `Drop(UnsupportedEtherType)` (neither IPv4 nor ARP), `Drop(BadIpv4Header)`
//! (fixed header truncated, version not 4, IHL below 5, options past the frame),
//! `Drop(BadIpv4Length)` (total length below IHL*4 or past the frame), `Drop(BadIpv4Checksum)`.

use std::net::Ipv4Addr;

use crate::counters::DropReason;
use crate::wire::ethernet::MacAddr;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::{Ipv4Packet, WireError};

use super::{PuntReason, Verdict};

/// The checked IPv4 frame, or the verdict for a frame that is not one.
#[inline(always)]
pub(super) fn ipv4(frame: &mut [u8]) -> Result<Ipv4Frame<'_>, Verdict> {
    let packet = Ipv4Frame::new_checked(frame)?;
    if !packet.ip().verify_checksum() {
        return Err(Verdict::Drop(DropReason::BadIpv4Checksum));
    }
    Ok(packet)
}

/// The IPv4 header fields routing decides on.
#[derive(Clone, Copy, Debug)]
pub struct RoutingFields {
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub total_len: u16,
    pub dont_frag: bool,
}

/// An Ethernet frame carrying IPv4 whose headers have been checked once, as
/// `wire::ipv4::Packet::new_checked` does (IHL*4 <= total length <= what follows the Ethernet
/// header), so that no accessor can panic and no stage parses them again. Not the checksum:
/// [`ipv4`] checks that.
pub struct Ipv4Frame<'a> {
    frame: &'a mut [u8],
}

impl<'a> Ipv4Frame<'a> {
    /// Checks the Ethernet header, the EtherType and the IPv4 header of `frame`.
    #[inline(always)]
    pub fn new_checked(frame: &'a mut [u8]) -> Result<Ipv4Frame<'a>, Verdict> {
        let eth = ethernet::Packet::new_checked(&*frame)
            .map_err(|_| Verdict::Drop(DropReason::BadEthernet))?;
        match eth.ethertype() {
            ethertype::IPV4 => {}
            ethertype::ARP => return Err(Verdict::Punt(PuntReason::Arp)),
            _ => return Err(Verdict::Drop(DropReason::UnsupportedEtherType)),
        }
        match Ipv4Packet::new_checked(eth.into_payload()) {
            Ok(_) => Ok(Ipv4Frame { frame }),
            Err(WireError::BadLength { .. }) => Err(Verdict::Drop(DropReason::BadIpv4Length)),
            Err(WireError::Truncated { .. } | WireError::BadValue { .. }) => {
                Err(Verdict::Drop(DropReason::BadIpv4Header))
            }
        }
    }

    /// The IPv4 header (and what follows it, Ethernet padding included).
    #[inline(always)]
    pub fn ip(&self) -> Ipv4Packet<&[u8]> {
        Ipv4Packet::new_unchecked(&self.frame[ethernet::HEADER_LEN..])
    }

    /// The bytes from the IPv4 header on (Ethernet padding included).
    #[inline(always)]
    pub fn ip_bytes(&self) -> &[u8] {
        &self.frame[ethernet::HEADER_LEN..]
    }

    /// The header fields the lookup stage reads, copied out in one go (read where they are
    /// needed, the accessors are not always inlined on the hot path).
    #[inline(always)]
    pub fn routing_fields(&self) -> RoutingFields {
        let ip = self.ip();
        RoutingFields {
            dst: ip.dst_addr(),
            ttl: ip.ttl(),
            total_len: ip.total_len(),
            dont_frag: ip.dont_frag(),
        }
    }

    #[inline(always)]
    pub fn eth_dst(&self) -> MacAddr {
        ethernet::Packet::new_unchecked(&*self.frame).dst_addr()
    }

    #[inline(always)]
    pub fn set_eth_dst(&mut self, mac: MacAddr) {
        ethernet::Packet::new_unchecked(&mut *self.frame).set_dst_addr(mac);
    }

    /// The IPv4 datagram, from its header to its total length (without Ethernet padding), to
    /// rewrite addresses and ports in place.
    #[inline(always)]
    pub fn datagram_mut(&mut self) -> &mut [u8] {
        let end = ethernet::HEADER_LEN + usize::from(self.ip().total_len());
        &mut self.frame[ethernet::HEADER_LEN..end]
    }

    /// What a router does to a frame it forwards (RFC 1812 section 5.3.1): TTL - 1 with an
    /// incremental checksum update (RFC 1624), Ethernet source `src`, destination `dst`.
    #[inline(always)]
    pub fn forward_rewrite(&mut self, src: MacAddr, dst: MacAddr) {
        let (eth, ip) = self.frame.split_at_mut(ethernet::HEADER_LEN);
        let mut eth = ethernet::Packet::new_unchecked(eth);
        eth.set_dst_addr(dst);
        eth.set_src_addr(src);
        Ipv4Packet::new_unchecked(ip).decrement_ttl();
    }

    /// The whole frame, for a stage that takes it apart (IPIP decapsulation).
    #[inline(always)]
    pub fn into_frame(self) -> &'a mut [u8] {
        self.frame
    }
}
