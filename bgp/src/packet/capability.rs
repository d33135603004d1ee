//! Capabilities advertised in the OPEN message (RFC 5492).
//!
//! They travel in Optional Parameter type 2 (RFC 5492 section 4), each as a TLV:
//! ```text
//! +------------------------------+
//! | Capability Code (1 octet)    |
//! +------------------------------+
//! | Capability Length (1 octet)  |
//! +------------------------------+
//! | Capability Value (variable)  |
//! +------------------------------+
//! ```

// `is_multiple_of` is newer than the workspace's rust-version (1.80).
#![allow(unknown_lints, clippy::manual_is_multiple_of)]

/// Capability codes (IANA "Capability Codes").
pub mod code {
    /// RFC 4760 section 8.
    pub const MULTIPROTOCOL: u8 = 1;
    /// RFC 2918 section 2.
    pub const ROUTE_REFRESH: u8 = 2;
    /// RFC 4724 section 3.
    pub const GRACEFUL_RESTART: u8 = 64;
    /// RFC 6793 section 3.
    pub const FOUR_OCTET_AS: u8 = 65;
}

/// One capability of an OPEN.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Multiprotocol Extensions for one AFI/SAFI (RFC 4760 section 8).
    /// ```text
    /// 0       7      15      23      31
    /// +-------+-------+-------+-------+
    /// |      AFI      | Res.  | SAFI  |
    /// +-------+-------+-------+-------+
    /// ```
    Multiprotocol { afi: u16, safi: u8 },
    /// Route Refresh (RFC 2918 section 2): no value.
    RouteRefresh,
    /// Support for 4-octet AS numbers, carrying the speaker's AS (RFC 6793 section 3).
    FourOctetAs(u32),
    /// Graceful Restart (RFC 4724 section 3).
    /// ```text
    /// +--------------------------------------------------+
    /// | Restart Flags (4 bits)                           |
    /// +--------------------------------------------------+
    /// | Restart Time in seconds (12 bits)                |
    /// +--------------------------------------------------+
    /// | Address Family Identifier (16 bits)              |
    /// +--------------------------------------------------+
    /// | Subsequent Address Family Identifier (8 bits)    |
    /// +--------------------------------------------------+
    /// | Flags for Address Family (8 bits)                |
    /// +--------------------------------------------------+
    /// | ...                                              |
    /// ```
    GracefulRestart {
        /// The R bit: the sender has restarted.
        restart_state: bool,
        /// Seconds the peer should keep our routes after the session goes down (12 bits).
        restart_time: u16,
        families: Vec<GracefulRestartFamily>,
    },
    /// A capability this speaker does not implement, kept as it came.
    Unknown { code: u8, data: Vec<u8> },
}

/// One address family in the Graceful Restart capability (RFC 4724 section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestartFamily {
    pub afi: u16,
    pub safi: u8,
    /// The F bit: forwarding state for this family was preserved across the restart.
    pub forwarding_state: bool,
}

use super::consts::open_message_error;
use super::notification::Notification;
use super::wire::{Put, Reader};

/// The error for a capability we know whose value does not parse: RFC 4271 section 6.2
/// gives a recognized but malformed optional parameter the subcode 0 (Unspecific).
fn malformed() -> Notification {
    Notification::open(open_message_error::UNSPECIFIC, Vec::new())
}

impl Capability {
    /// Decodes the capabilities packed in one Optional Parameter of type 2.
    pub(crate) fn decode_all(buf: &[u8], out: &mut Vec<Capability>) -> Result<(), Notification> {
        let mut r = Reader::new(buf);
        while !r.is_empty() {
            let code = r.u8().ok_or_else(malformed)?;
            let len = r.u8().ok_or_else(malformed)?;
            let value = r.take(usize::from(len)).ok_or_else(malformed)?;
            out.push(Self::decode(code, value)?);
        }
        Ok(())
    }

    fn decode(code: u8, value: &[u8]) -> Result<Capability, Notification> {
        let mut r = Reader::new(value);
        let cap = match code {
            // RFC 4760 section 8: AFI, reserved, SAFI.
            code::MULTIPROTOCOL if value.len() == 4 => {
                let afi = r.u16().ok_or_else(malformed)?;
                let _reserved = r.u8();
                let safi = r.u8().ok_or_else(malformed)?;
                Capability::Multiprotocol { afi, safi }
            }
            // RFC 2918 section 2: length 0.
            code::ROUTE_REFRESH if value.is_empty() => Capability::RouteRefresh,
            // RFC 6793 section 3: the 4-octet AS.
            code::FOUR_OCTET_AS if value.len() == 4 => {
                Capability::FourOctetAs(r.u32().ok_or_else(malformed)?)
            }
            // RFC 4724 section 3: flags and time, then 4 octets per family.
            code::GRACEFUL_RESTART if value.len() >= 2 && (value.len() - 2) % 4 == 0 => {
                let flags_and_time = r.u16().ok_or_else(malformed)?;
                let mut families = Vec::with_capacity((value.len() - 2) / 4);
                while !r.is_empty() {
                    let afi = r.u16().ok_or_else(malformed)?;
                    let safi = r.u8().ok_or_else(malformed)?;
                    let flags = r.u8().ok_or_else(malformed)?;
                    families.push(GracefulRestartFamily {
                        afi,
                        safi,
                        forwarding_state: flags & 0x80 != 0,
                    });
                }
                Capability::GracefulRestart {
                    restart_state: flags_and_time & 0x8000 != 0,
                    restart_time: flags_and_time & 0x0fff,
                    families,
                }
            }
            code::MULTIPROTOCOL
            | code::ROUTE_REFRESH
            | code::FOUR_OCTET_AS
            | code::GRACEFUL_RESTART => return Err(malformed()),
            _ => Capability::Unknown {
                code,
                data: value.to_vec(),
            },
        };
        Ok(cap)
    }

    /// The capability code.
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol { .. } => code::MULTIPROTOCOL,
            Capability::RouteRefresh => code::ROUTE_REFRESH,
            Capability::FourOctetAs(_) => code::FOUR_OCTET_AS,
            Capability::GracefulRestart { .. } => code::GRACEFUL_RESTART,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// The TLV of this capability, or `None` when its value does not fit the one-octet
    /// length (an `Unknown` of more than 255 octets, or more than 63 graceful restart
    /// families): such a capability cannot be sent.
    pub(crate) fn encode(&self) -> Option<Vec<u8>> {
        let mut value = Vec::new();
        match self {
            Capability::Multiprotocol { afi, safi } => {
                value.put_u16(*afi);
                value.put_u8(0);
                value.put_u8(*safi);
            }
            Capability::RouteRefresh => {}
            Capability::FourOctetAs(asn) => value.put_u32(*asn),
            Capability::GracefulRestart {
                restart_state,
                restart_time,
                families,
            } => {
                let r_bit = if *restart_state { 0x8000 } else { 0 };
                value.put_u16(r_bit | (restart_time & 0x0fff));
                for f in families {
                    value.put_u16(f.afi);
                    value.put_u8(f.safi);
                    value.put_u8(if f.forwarding_state { 0x80 } else { 0 });
                }
            }
            Capability::Unknown { data, .. } => value.extend_from_slice(data),
        }
        let len = u8::try_from(value.len()).ok()?;
        let mut tlv = Vec::with_capacity(2 + value.len());
        tlv.put_u8(self.code());
        tlv.put_u8(len);
        tlv.extend_from_slice(&value);
        Some(tlv)
    }
}
