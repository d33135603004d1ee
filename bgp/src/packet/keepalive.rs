//! KEEPALIVE message (RFC 4271 section 4.4).
//!
//! A KEEPALIVE is the 19-octet header alone: message type 4, no body. It is sent often
//! enough that the peer's Hold Timer never expires (a third of the Hold Time is the
//! suggested interval) and a message of any other length is a Bad Message Length
//! (RFC 4271 section 6.1).

/// Length of a KEEPALIVE: the header and nothing else.
pub const KEEPALIVE_LEN: usize = super::consts::HEADER_LEN;
