//! BGP-4 messages on the wire (RFC 4271 section 4) and their codec.
//!
//! One file per message, as RFC 4271 section 4 lays them out: [`message`] holds the common
//! header and the dispatch on the message type, [`open`], [`update`], [`notification`],
//! [`keepalive`] and [`route_refresh`] the bodies, [`capability`] the OPEN capabilities
//! (RFC 5492) and [`attribute`] the UPDATE path attributes. [`error`] holds what decoding
//! returns when the bytes are not a valid message: the NOTIFICATION RFC 4271 section 6 says
//! to send. The numbers they share (lengths, type codes, AFI/SAFI, attribute flags, error
//! codes and subcodes) are in the leaf [`consts`], what the session negotiated in the leaf
//! [`context`], so the message modules form no cycle: [`message`] dispatches to the bodies,
//! never the other way round.
//!
//! Every decoder checks each length against what remains of its input before reading, so no
//! input can make it panic, and nothing it allocates is larger than the message (at most
//! 4096 octets, RFC 4271 section 4.1).

pub mod attribute;
pub mod capability;
pub mod consts;
pub mod context;
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
pub use consts::{MessageType, AFI_IPV4, AFI_IPV6, AS_TRANS, SAFI_MULTICAST, SAFI_UNICAST};
pub use context::{DecodeContext, EncodeContext};
pub use error::DecodeError;
pub use message::{Header, Message};
pub use notification::Notification;
pub use open::Open;
pub use prefix::{Ipv4Prefix, Nlri};
pub use route_refresh::RouteRefresh;
pub use stream::{split_messages, MessageStream};

pub use update::Update;
