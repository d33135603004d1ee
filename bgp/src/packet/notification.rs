//! NOTIFICATION message (RFC 4271 section 4.5) and the error codes of section 6.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | Error code    | Error subcode |   Data (variable)             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::fmt;

use super::consts::{error_code, message_header_error, HEADER_LEN, MAX_MESSAGE_LEN};
use super::wire::Reader;

/// A NOTIFICATION: the error that closes a BGP connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Notification {
    /// Error code, one of [`error_code`].
    pub code: u8,
    /// Error subcode; its meaning depends on `code` (see the modules named after the codes).
    pub subcode: u8,
    /// Diagnostic data, whose content section 6 prescribes per error.
    pub data: Vec<u8>,
}

impl Notification {
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Self {
        Self {
            code,
            subcode,
            data,
        }
    }

    /// Hold Timer Expired (RFC 4271 section 6.5); it has no subcode.
    pub fn hold_timer_expired() -> Self {
        Self::new(error_code::HOLD_TIMER_EXPIRED, 0, Vec::new())
    }

    /// A Cease with one of the [`cease`] subcodes (RFC 4486).
    pub fn cease(subcode: u8) -> Self {
        Self::new(error_code::CEASE, subcode, Vec::new())
    }

    /// Finite State Machine Error (RFC 4271 section 6.6) with an [`fsm_error`](super::consts::fsm_error) subcode.
    pub fn fsm_error(subcode: u8) -> Self {
        Self::new(error_code::FINITE_STATE_MACHINE_ERROR, subcode, Vec::new())
    }

    pub(crate) fn header(subcode: u8, data: Vec<u8>) -> Self {
        Self::new(error_code::MESSAGE_HEADER_ERROR, subcode, data)
    }

    pub(crate) fn open(subcode: u8, data: Vec<u8>) -> Self {
        Self::new(error_code::OPEN_MESSAGE_ERROR, subcode, data)
    }

    pub(crate) fn update(subcode: u8, data: Vec<u8>) -> Self {
        Self::new(error_code::UPDATE_MESSAGE_ERROR, subcode, data)
    }

    /// The error code's name as RFC 4271 section 4.5 spells it, for logs and status.
    pub fn code_name(&self) -> &'static str {
        match self.code {
            error_code::MESSAGE_HEADER_ERROR => "Message Header Error",
            error_code::OPEN_MESSAGE_ERROR => "OPEN Message Error",
            error_code::UPDATE_MESSAGE_ERROR => "UPDATE Message Error",
            error_code::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            error_code::FINITE_STATE_MACHINE_ERROR => "Finite State Machine Error",
            error_code::CEASE => "Cease",
            error_code::ROUTE_REFRESH_MESSAGE_ERROR => "ROUTE-REFRESH Message Error",
            _ => "Unknown error",
        }
    }

    /// The subcode's name, or "" when the code has no named subcode of that value.
    pub fn subcode_name(&self) -> &'static str {
        use error_code::*;
        match (self.code, self.subcode) {
            (MESSAGE_HEADER_ERROR, 1) => "Connection Not Synchronized",
            (MESSAGE_HEADER_ERROR, 2) => "Bad Message Length",
            (MESSAGE_HEADER_ERROR, 3) => "Bad Message Type",
            (OPEN_MESSAGE_ERROR, 0) => "Unspecific",
            (OPEN_MESSAGE_ERROR, 1) => "Unsupported Version Number",
            (OPEN_MESSAGE_ERROR, 2) => "Bad Peer AS",
            (OPEN_MESSAGE_ERROR, 3) => "Bad BGP Identifier",
            (OPEN_MESSAGE_ERROR, 4) => "Unsupported Optional Parameter",
            (OPEN_MESSAGE_ERROR, 6) => "Unacceptable Hold Time",
            (OPEN_MESSAGE_ERROR, 7) => "Unsupported Capability",
            (UPDATE_MESSAGE_ERROR, 1) => "Malformed Attribute List",
            (UPDATE_MESSAGE_ERROR, 2) => "Unrecognized Well-known Attribute",
            (UPDATE_MESSAGE_ERROR, 3) => "Missing Well-known Attribute",
            (UPDATE_MESSAGE_ERROR, 4) => "Attribute Flags Error",
            (UPDATE_MESSAGE_ERROR, 5) => "Attribute Length Error",
            (UPDATE_MESSAGE_ERROR, 6) => "Invalid ORIGIN Attribute",
            (UPDATE_MESSAGE_ERROR, 8) => "Invalid NEXT_HOP Attribute",
            (UPDATE_MESSAGE_ERROR, 9) => "Optional Attribute Error",
            (UPDATE_MESSAGE_ERROR, 10) => "Invalid Network Field",
            (UPDATE_MESSAGE_ERROR, 11) => "Malformed AS_PATH",
            (FINITE_STATE_MACHINE_ERROR, 1) => "Receive Unexpected Message in OpenSent State",
            (FINITE_STATE_MACHINE_ERROR, 2) => "Receive Unexpected Message in OpenConfirm State",
            (FINITE_STATE_MACHINE_ERROR, 3) => "Receive Unexpected Message in Established State",
            (CEASE, 1) => "Maximum Number of Prefixes Reached",
            (CEASE, 2) => "Administrative Shutdown",
            (CEASE, 3) => "Peer De-configured",
            (CEASE, 4) => "Administrative Reset",
            (CEASE, 5) => "Connection Rejected",
            (CEASE, 6) => "Other Configuration Change",
            (CEASE, 7) => "Connection Collision Resolution",
            (CEASE, 8) => "Out of Resources",
            (ROUTE_REFRESH_MESSAGE_ERROR, 1) => "Invalid Message Length",
            _ => "",
        }
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code_name(), self.code)?;
        match self.subcode_name() {
            "" => write!(f, " subcode {}", self.subcode),
            name => write!(f, " / {} ({})", name, self.subcode),
        }
    }
}

impl Notification {
    /// Decodes a NOTIFICATION body; any code is accepted, since a peer's error is reported,
    /// never answered (RFC 4271 section 6.1 requires a body of at least two octets, which
    /// the header check has ensured).
    pub(crate) fn decode(body: &[u8]) -> Result<Notification, Notification> {
        let mut r = Reader::new(body);
        let short = || Notification::header(message_header_error::BAD_MESSAGE_LENGTH, Vec::new());
        let code = r.u8().ok_or_else(short)?;
        let subcode = r.u8().ok_or_else(short)?;
        Ok(Notification {
            code,
            subcode,
            data: r.rest().to_vec(),
        })
    }

    /// Appends the body. Data longer than a message can hold is cut to fit 4096 octets.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.push(self.subcode);
        let room = MAX_MESSAGE_LEN - HEADER_LEN - 2;
        out.extend_from_slice(&self.data[..self.data.len().min(room)]);
    }
}
