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
