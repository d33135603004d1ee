//! Stage 1b for a GSO frame (a TCP segment of up to 64 KiB from a TAP port, standing for the
//! packets it will be cut into): the size of those packets, which is what the lookup stage
//! holds against the egress MTU, and their number, which is what it costs against a packet
//! rate limit (`rate_limit`). The checksum stays partial: whoever cuts the frame (the
//! egress TAP's kernel, or the worker for any other port) finishes it per packet.
//!
//! Reads the IPv4 header length, protocol and total length, the TCP data offset; sets nothing.
//! A frame that is not TCP, or whose TCP header is cut short, is measured whole, so that a
//! GSO frame the worker could not cut is refused by the MTU check rather than sent.

use crate::offload::Gso;
use crate::wire::ipv4::protocol;

use super::input::Ipv4Frame;

/// Where the data offset is in a TCP header (RFC 793 section 3.1), and the header's least size.
const TCP_DATA_OFFSET_AT: usize = 12;
const TCP_MIN_HEADER: usize = 20;

/// The IPv4 total length of the largest packet `packet` is cut into.
#[inline]
pub(super) fn of(packet: &Ipv4Frame<'_>, gso: Gso) -> u16 {
    let whole = packet.ip().total_len();
    let Some(headers) = headers_len(packet) else {
        return whole;
    };
    let cut = headers + usize::from(gso.size);
    u16::try_from(cut).map_or(whole, |cut| cut.min(whole))
}

/// How many packets `packet` is cut into (at least one): what it costs against a packet
/// rate limit.
#[inline]
pub(super) fn count(packet: &Ipv4Frame<'_>, gso: Gso) -> u64 {
    let whole = usize::from(packet.ip().total_len());
    match headers_len(packet) {
        Some(headers) if gso.size > 0 => {
            let payload = whole.saturating_sub(headers);
            payload.div_ceil(usize::from(gso.size)).max(1) as u64
        }
        _ => 1,
    }
}

/// The IPv4 and TCP headers' length, which every cut packet repeats; `None` when the frame is
/// not TCP or its TCP header is cut short.
#[inline]
fn headers_len(packet: &Ipv4Frame<'_>) -> Option<usize> {
    let ip = packet.ip();
    if ip.protocol() != protocol::TCP {
        return None;
    }
    let ip_header = ip.header_len();
    let offset = packet.ip_bytes().get(ip_header + TCP_DATA_OFFSET_AT)?;
    let tcp_header = usize::from(offset >> 4) * 4;
    (tcp_header >= TCP_MIN_HEADER).then_some(ip_header + tcp_header)
}
