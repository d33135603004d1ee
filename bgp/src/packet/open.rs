//! OPEN message (RFC 4271 section 4.2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+
//! |    Version    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     My Autonomous System      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           Hold Time           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         BGP Identifier                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Opt Parm Len  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Optional Parameters (variable)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv4Addr;

use super::capability::Capability;
use super::AS_TRANS;

/// The only BGP version there is (RFC 4271 section 4.2).
pub const BGP_VERSION: u8 = 4;
/// Length of the fixed part of the OPEN body, before the optional parameters.
pub const OPEN_FIXED_LEN: usize = 10;
/// Optional Parameter type that carries capabilities (RFC 5492 section 4).
pub const PARAM_CAPABILITIES: u8 = 2;

/// An OPEN: the first message of a session, with what each side proposes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Open {
    /// Always [`BGP_VERSION`] when sent; decoding rejects any other.
    pub version: u8,
    /// The sender's AS, or [`AS_TRANS`] when it does not fit 16 bits (the real one is then
    /// in [`Capability::FourOctetAs`]); use [`Open::asn`] for the sender's real AS.
    pub my_as: u16,
    /// Proposed Hold Time in seconds: 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    pub bgp_identifier: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// An OPEN for `asn` that fills `my_as` per RFC 6793 section 4.1 (AS_TRANS when
    /// `asn > 65535`) and advertises the 4-octet AS capability in any case: a speaker that
    /// supports 4-octet AS numbers always says so.
    pub fn new(
        asn: u32,
        hold_time: u16,
        bgp_identifier: Ipv4Addr,
        mut capabilities: Vec<Capability>,
    ) -> Self {
        if !capabilities.iter().any(|c| matches!(c, Capability::FourOctetAs(_))) {
            capabilities.push(Capability::FourOctetAs(asn));
        }
        Self {
            version: BGP_VERSION,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_identifier,
            capabilities,
        }
    }

    /// The 4-octet AS the sender advertised, if it supports 4-octet AS numbers (RFC 6793).
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    /// The sender's AS: the 4-octet capability's when present, else `my_as`.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// True if the sender can receive ROUTE-REFRESH (RFC 2918).
    pub fn supports_route_refresh(&self) -> bool {
        self.capabilities.iter().any(|c| matches!(c, Capability::RouteRefresh))
    }

    /// True if the sender advertised Multiprotocol support for `afi`/`safi` (RFC 4760).
    pub fn supports_family(&self, afi: u16, safi: u8) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::Multiprotocol { afi: a, safi: s } if *a == afi && *s == safi))
    }
}
