//! The numbers of the BGP-4 protocol that every message module shares: the header's lengths
//! and type codes, address families, path attribute flags and type codes, and the
//! NOTIFICATION error codes and subcodes. A leaf: it depends on nothing in the crate, so
//! the message modules can all use it without depending on each other.

/// The marker: sixteen octets of all ones (RFC 4271 section 4.1).
pub const MARKER: [u8; 16] = [0xff; 16];
/// Length of the header: marker, length, type.
pub const HEADER_LEN: usize = 19;
/// Largest message, header included (RFC 4271 section 4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Message type codes (RFC 4271 section 4.1, RFC 2918 section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageType {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
}

impl MessageType {
    pub fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            1 => Self::Open,
            2 => Self::Update,
            3 => Self::Notification,
            4 => Self::Keepalive,
            5 => Self::RouteRefresh,
            _ => return None,
        })
    }
}

/// Address Family Identifier for IPv4 (IANA "Address Family Numbers").
pub const AFI_IPV4: u16 = 1;
/// Address Family Identifier for IPv6.
pub const AFI_IPV6: u16 = 2;
/// Subsequent Address Family Identifier for unicast forwarding (RFC 4760 section 6).
pub const SAFI_UNICAST: u8 = 1;
/// Subsequent Address Family Identifier for multicast forwarding (RFC 4760 section 6).
pub const SAFI_MULTICAST: u8 = 2;

/// 2-octet placeholder AS number sent in place of a 4-octet one to peers that do not
/// support 4-octet AS numbers (RFC 6793 section 9).
pub const AS_TRANS: u16 = 23456;

/// Attribute flag bits (RFC 4271 section 4.3).
pub mod attribute_flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes (IANA "BGP Path Attributes").
pub mod attribute_type_code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    /// RFC 1997.
    pub const COMMUNITIES: u8 = 8;
    /// RFC 4456 section 8.
    pub const ORIGINATOR_ID: u8 = 9;
    /// RFC 4456 section 8.
    pub const CLUSTER_LIST: u8 = 10;
    /// RFC 4760 section 3.
    pub const MP_REACH_NLRI: u8 = 14;
    /// RFC 4760 section 4.
    pub const MP_UNREACH_NLRI: u8 = 15;
    /// RFC 6793 section 3.
    pub const AS4_PATH: u8 = 17;
    /// RFC 6793 section 3.
    pub const AS4_AGGREGATOR: u8 = 18;
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
