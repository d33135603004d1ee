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

use super::consts::{message_header_error, HEADER_LEN};
use super::notification::Notification;
use super::wire::{Put, Reader};

impl RouteRefresh {
    pub(crate) fn decode(body: &[u8]) -> Result<RouteRefresh, Notification> {
        let bad_len = || {
            let len = (HEADER_LEN + body.len()) as u16; // <= 4096 by the header check
            Notification::header(
                message_header_error::BAD_MESSAGE_LENGTH,
                len.to_be_bytes().to_vec(),
            )
        };
        if body.len() != ROUTE_REFRESH_BODY_LEN {
            return Err(bad_len());
        }
        let mut r = Reader::new(body);
        let afi = r.u16().ok_or_else(bad_len)?;
        let _reserved = r.u8();
        let safi = r.u8().ok_or_else(bad_len)?;
        Ok(RouteRefresh { afi, safi })
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.afi);
        out.put_u8(0);
        out.put_u8(self.safi);
    }
}
