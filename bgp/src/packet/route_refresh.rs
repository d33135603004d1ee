//! ROUTE-REFRESH message (RFC 2918 section 3).
//!
//! ```text
//!  0       7      15      23      31
//! +-------+-------+-------+-------+
//! |      AFI      | Res.  | SAFI  |
//! +-------+-------+-------+-------+
//! ```
//! Sent only to peers that advertised the Route Refresh capability; asks the peer to send
//! its Adj-RIB-Out for the family again.

/// A request to re-advertise every route of one address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub afi: u16,
    pub safi: u8,
}

/// Length of the ROUTE-REFRESH body.
pub const ROUTE_REFRESH_BODY_LEN: usize = 4;
