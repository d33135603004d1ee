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

use super::capability::{Capability, GracefulRestartFamily};
use super::consts::AS_TRANS;

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
        if !capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
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
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::RouteRefresh))
    }

    /// The sender's Graceful Restart capability (RFC 4724 section 3), if it sent one.
    pub fn graceful_restart(&self) -> Option<(bool, u16, &[GracefulRestartFamily])> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart {
                restart_state,
                restart_time,
                families,
            } => Some((*restart_state, *restart_time, families.as_slice())),
            _ => None,
        })
    }

    /// True if the sender advertised Multiprotocol support for `afi`/`safi` (RFC 4760).
    pub fn supports_family(&self, afi: u16, safi: u8) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::Multiprotocol { afi: a, safi: s } if *a == afi && *s == safi))
    }
}

use super::consts::open_message_error;
use super::notification::Notification;
use super::wire::{Put, Reader};

impl Open {
    /// Decodes an OPEN body (after the header) and checks it as RFC 4271 section 6.2 says,
    /// in the order the section lists the checks. What needs the session's configuration
    /// (the expected peer AS, our own identifier) is left to the FSM.
    pub(crate) fn decode(body: &[u8]) -> Result<Open, Notification> {
        // The header check guarantees the fixed part; a short body is still handled.
        let unspecific = || Notification::open(open_message_error::UNSPECIFIC, Vec::new());
        let mut r = Reader::new(body);
        let version = r.u8().ok_or_else(unspecific)?;
        if version != BGP_VERSION {
            // Data: the largest version we support (RFC 4271 section 6.2).
            return Err(Notification::open(
                open_message_error::UNSUPPORTED_VERSION_NUMBER,
                u16::from(BGP_VERSION).to_be_bytes().to_vec(),
            ));
        }
        let my_as = r.u16().ok_or_else(unspecific)?;
        let hold_time = r.u16().ok_or_else(unspecific)?;
        let bgp_identifier = r.ipv4().ok_or_else(unspecific)?;
        let params_len = r.u8().ok_or_else(unspecific)?;
        // The optional parameters must fill the rest of the message exactly.
        if usize::from(params_len) != r.remaining() {
            return Err(unspecific());
        }

        // AS 0 is reserved and never a peer's AS (RFC 7607 section 2).
        if my_as == 0 {
            return Err(Notification::open(
                open_message_error::BAD_PEER_AS,
                Vec::new(),
            ));
        }
        // Hold Time: zero or at least three seconds (RFC 4271 section 4.2).
        if hold_time == 1 || hold_time == 2 {
            return Err(Notification::open(
                open_message_error::UNACCEPTABLE_HOLD_TIME,
                Vec::new(),
            ));
        }
        // Any non-zero value is a valid identifier (RFC 6286 section 2.1).
        if bgp_identifier.is_unspecified() {
            return Err(Notification::open(
                open_message_error::BAD_BGP_IDENTIFIER,
                Vec::new(),
            ));
        }

        let mut capabilities = Vec::new();
        while !r.is_empty() {
            let param_type = r.u8().ok_or_else(unspecific)?;
            let len = r.u8().ok_or_else(unspecific)?;
            let value = r.take(usize::from(len)).ok_or_else(unspecific)?;
            if param_type != PARAM_CAPABILITIES {
                return Err(Notification::open(
                    open_message_error::UNSUPPORTED_OPTIONAL_PARAMETER,
                    Vec::new(),
                ));
            }
            Capability::decode_all(value, &mut capabilities)?;
        }
        if capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(0)))
        {
            // RFC 7607 section 2: AS 0 in the 4-octet AS capability is a Bad Peer AS too.
            return Err(Notification::open(
                open_message_error::BAD_PEER_AS,
                Vec::new(),
            ));
        }
        Ok(Open {
            version,
            my_as,
            hold_time,
            bgp_identifier,
            capabilities,
        })
    }

    /// Appends the OPEN body. Capabilities are packed into as few Optional Parameters as
    /// fit 255 octets each; a capability that cannot be encoded, or that would push the
    /// parameters past 255 octets, is left out (and logged).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.version);
        out.put_u16(self.my_as);
        out.put_u16(self.hold_time);
        out.extend_from_slice(&self.bgp_identifier.octets());

        let mut params: Vec<Vec<u8>> = Vec::new();
        let mut total = 0usize;
        for cap in &self.capabilities {
            let Some(tlv) = cap.encode() else {
                tracing::warn!(
                    code = cap.code(),
                    "capability too long for an OPEN, left out"
                );
                continue;
            };
            let fits_last = params.last().is_some_and(|p| p.len() + tlv.len() <= 255);
            let added = if fits_last { tlv.len() } else { 2 + tlv.len() };
            if total + added > 255 {
                tracing::warn!(
                    code = cap.code(),
                    "optional parameters full, capability left out"
                );
                continue;
            }
            total += added;
            match params.last_mut() {
                Some(p) if fits_last => p.extend_from_slice(&tlv),
                _ => params.push(tlv),
            }
        }
        out.put_u8(total as u8); // total <= 255, checked above
        for p in params {
            out.put_u8(PARAM_CAPABILITIES);
            out.put_u8(p.len() as u8); // p.len() <= 255, checked above
            out.extend_from_slice(&p);
        }
    }
}
