//! BGP-4 messages on the wire (RFC 4271 section 4) and their codec.
//!
//! One file per message, as RFC 4271 section 4 lays them out: [`message`] holds the common
//! header and the dispatch on the message type, [`open`], [`update`], [`notification`],
//! [`keepalive`] and [`route_refresh`] the bodies, [`capability`] the OPEN capabilities
//! (RFC 5492) and [`attribute`] the UPDATE path attributes. [`error`] holds what decoding
//! returns when the bytes are not a valid message: the NOTIFICATION RFC 4271 section 6 says
//! to send.
//!
//! Every decoder checks each length against what remains of its input before reading, so no
//! input can make it panic, and nothing it allocates is larger than the message (at most
//! 4096 octets, RFC 4271 section 4.1).

pub mod attribute;
pub mod capability;
pub mod error;
pub mod keepalive;
pub mod message;
pub mod notification;
pub mod open;
pub mod prefix;
pub mod route_refresh;
pub mod stream;
pub mod update;
mod wire;

pub use attribute::{
    Aggregator, AsPath, AsPathSegment, AsPathSegmentType, MpReach, MpUnreach, Origin,
    PathAttributes, RawAttribute,
};
pub use capability::{Capability, GracefulRestartFamily};
pub use error::DecodeError;
pub use message::{DecodeContext, EncodeContext, Header, Message, MessageType};
pub use notification::Notification;
pub use open::Open;
pub use prefix::Ipv4Prefix;
pub use route_refresh::RouteRefresh;
pub use stream::{split_messages, MessageStream};

pub use update::Update;

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
