//! The IPIP tunnel's outer header (RFC 2003 section 3.1), written by the worker for an
//! `Encapsulate` verdict while it copies the frame to the TX ring.

use std::net::Ipv4Addr;

use crate::wire::ethernet;
use crate::wire::ipv4::{self, protocol};
use crate::wire::Ipv4Packet;

/// Writes `frame` (Ethernet + IPv4, as the pipeline left it for an `Encapsulate` verdict) into
/// `out` wrapped in IPIP from `local` to `remote` (RFC 2003 section 3.1): the frame's Ethernet
/// header, an outer IPv4 header without options (protocol 4, TTL 64, DSCP/ECN and DF copied
/// from the inner header, identification `ident`, checksum), then the inner packet up to its
/// total length (Ethernet padding is not carried). Returns the length written; `None` when
/// `frame` is not IPv4 or `out` is too small (nothing useful is written then).
pub fn encapsulate_ipip(
    frame: &[u8],
    local: Ipv4Addr,
    remote: Ipv4Addr,
    ident: u16,
    out: &mut [u8],
) -> Option<usize> {
    let eth = ethernet::Packet::new_checked(frame).ok()?;
    let inner = Ipv4Packet::new_checked(eth.payload()).ok()?;
    let inner_len = usize::from(inner.total_len());
    let outer_start = ethernet::HEADER_LEN;
    let inner_start = outer_start + ipv4::HEADER_LEN;
    let total = inner_start + inner_len;
    let out = out.get_mut(..total)?;
    let outer = ipv4::Ipv4Repr {
        ttl: OUTER_TTL,
        dscp: inner.dscp(),
        ecn: inner.ecn(),
        ident,
        dont_frag: inner.dont_frag(),
        ..ipv4::Ipv4Repr::new(local, remote, protocol::IPIP, inner.total_len())
    };
    out[..outer_start].copy_from_slice(&frame[..outer_start]);
    outer.emit(&mut out[outer_start..]).ok()?;
    out[inner_start..].copy_from_slice(inner.datagram());
    Some(total)
}

/// TTL of the outer header (RFC 2003 section 3.1: "the default TTL ... for IP datagrams").
const OUTER_TTL: u8 = 64;
