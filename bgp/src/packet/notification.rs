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

/// Error codes (RFC 4271 section 4.5, RFC 7313 section 5).
pub mod error_code {
    pub const MESSAGE_HEADER_ERROR: u8 = 1;
    pub const OPEN_MESSAGE_ERROR: u8 = 2;
    pub const UPDATE_MESSAGE_ERROR: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FINITE_STATE_MACHINE_ERROR: u8 = 5;
    pub const CEASE: u8 = 6;
    /// RFC 7313 section 5.
    pub const ROUTE_REFRESH_MESSAGE_ERROR: u8 = 7;
}

/// Subcodes of Message Header Error (RFC 4271 sections 4.5 and 6.1).
pub mod message_header_error {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// Subcodes of OPEN Message Error (RFC 4271 sections 4.5 and 6.2, RFC 5492 section 5).
pub mod open_message_error {
    /// A recognized optional parameter that is malformed (RFC 4271 section 6.2).
    pub const UNSPECIFIC: u8 = 0;
    pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    // 5 (Authentication Failure) is deprecated.
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// RFC 5492 section 5.
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
}

/// Subcodes of UPDATE Message Error (RFC 4271 sections 4.5 and 6.3).
pub mod update_message_error {
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    // 7 (AS Routing Loop) is deprecated.
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Subcodes of Finite State Machine Error (RFC 6608 section 4).
pub mod fsm_error {
    pub const UNSPECIFIED: u8 = 0;
    pub const UNEXPECTED_MESSAGE_IN_OPEN_SENT: u8 = 1;
    pub const UNEXPECTED_MESSAGE_IN_OPEN_CONFIRM: u8 = 2;
    pub const UNEXPECTED_MESSAGE_IN_ESTABLISHED: u8 = 3;
}

/// Subcodes of Cease (RFC 4486 section 4, RFC 8203 for the shutdown communication).
pub mod cease {
    pub const MAXIMUM_NUMBER_OF_PREFIXES_REACHED: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DE_CONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
}

/// Subcodes of ROUTE-REFRESH Message Error (RFC 7313 section 5).
pub mod route_refresh_message_error {
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
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

    /// Finite State Machine Error (RFC 4271 section 6.6) with an [`fsm_error`] subcode.
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
        let mut r = super::wire::Reader::new(body);
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
        let room = super::message::MAX_MESSAGE_LEN - super::message::HEADER_LEN - 2;
        out.extend_from_slice(&self.data[..self.data.len().min(room)]);
    }
}
