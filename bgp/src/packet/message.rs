//! The message header (RFC 4271 section 4.1) and the dispatch on the message type.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                                                               +
//! |                                                               |
//! +                                                               +
//! |                           Marker                              |
//! +                                                               +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Length               |      Type     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::consts::{MessageType, HEADER_LEN, MARKER, MAX_MESSAGE_LEN};
use super::context::{DecodeContext, EncodeContext};
use super::notification::Notification;
use super::open::Open;
use super::route_refresh::RouteRefresh;
use super::update::Update;

/// A BGP message.
// UPDATE is the message that matters for volume, so it stays inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The type code this message is sent with.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }
}

use super::consts::message_header_error;
use super::error::DecodeError;
use super::open::OPEN_FIXED_LEN;
use super::route_refresh::ROUTE_REFRESH_BODY_LEN;
use super::wire::Put;

/// Shortest message of each type, header included (RFC 4271 section 6.1; RFC 2918 for
/// ROUTE-REFRESH), and whether that is also its only length.
fn length_bounds(kind: MessageType) -> (usize, bool) {
    match kind {
        MessageType::Open => (HEADER_LEN + OPEN_FIXED_LEN, false),
        MessageType::Update => (HEADER_LEN + 4, false),
        MessageType::Notification => (HEADER_LEN + 2, false),
        MessageType::Keepalive => (HEADER_LEN, true),
        MessageType::RouteRefresh => (HEADER_LEN + ROUTE_REFRESH_BODY_LEN, true),
    }
}

impl Message {
    /// Decodes the message at the start of `buf` and returns it with the number of bytes it
    /// took. `Err(Incomplete)` asks for more bytes; it is returned only while everything
    /// received so far is a valid start of a message, so a bad header is reported as soon
    /// as its 19 octets are in. `Err(Malformed(n))`: send `n` and close (RFC 4271 section 6).
    pub fn decode(buf: &[u8], cx: &DecodeContext) -> Result<(Message, usize), DecodeError> {
        let header = Header::new_checked(buf)?;
        let (kind, length) = (header.message_type(), header.length());
        let Some(message) = buf.get(..length) else {
            return Err(DecodeError::Incomplete);
        };
        let body = &message[HEADER_LEN..];
        let decoded = match kind {
            MessageType::Open => Open::decode(body).map(Message::Open),
            MessageType::Update => Update::decode(body, cx.four_octet_as).map(Message::Update),
            MessageType::Notification => Notification::decode(body).map(Message::Notification),
            MessageType::Keepalive => Ok(Message::Keepalive),
            MessageType::RouteRefresh => RouteRefresh::decode(body).map(Message::RouteRefresh),
        };
        decoded.map(|m| (m, length)).map_err(DecodeError::Malformed)
    }

    /// Encodes the message with its header. An UPDATE is written as given: keep it within
    /// 4096 octets (see [`Update::pack`]); a longer one is logged.
    pub fn encode(&self, cx: &EncodeContext) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&MARKER);
        out.put_u16(0);
        out.put_u8(self.message_type() as u8);
        match self {
            Message::Open(open) => open.encode(&mut out),
            Message::Update(update) => update.encode(cx.four_octet_as, &mut out),
            Message::Notification(n) => n.encode(&mut out),
            Message::Keepalive => {}
            Message::RouteRefresh(rr) => rr.encode(&mut out),
        }
        if out.len() > MAX_MESSAGE_LEN {
            tracing::warn!(len = out.len(), "encoded a BGP message above 4096 octets");
        }
        // The length field counts the whole message, header included.
        let total = u16::try_from(out.len()).unwrap_or(u16::MAX);
        out[MARKER.len()..MARKER.len() + 2].copy_from_slice(&total.to_be_bytes());
        out
    }
}

/// A view of the message header, checked once by [`Header::new_checked`] so that its
/// accessors cannot fail afterwards.
#[derive(Clone, Copy, Debug)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
    message_type: MessageType,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Checks the header at the start of `buffer` (RFC 4271 section 6.1): the marker, the
    /// length against 19..=4096 and against the type's own bounds, and the type.
    /// `Incomplete` while fewer than 19 octets have arrived and the marker is right so far;
    /// a wrong marker fails at once, so a stream that is not BGP is not waited on.
    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let buf = buffer.as_ref();
        let malformed = |subcode, data| DecodeError::Malformed(Notification::header(subcode, data));
        let marker_seen = buf.len().min(MARKER.len());
        if buf[..marker_seen] != MARKER[..marker_seen] {
            return Err(malformed(
                message_header_error::CONNECTION_NOT_SYNCHRONIZED,
                Vec::new(),
            ));
        }
        let Some(header) = buf.get(..HEADER_LEN) else {
            return Err(DecodeError::Incomplete);
        };
        // Data of Bad Message Length: the erroneous Length field.
        let length_field = [header[16], header[17]];
        let length = usize::from(u16::from_be_bytes(length_field));
        let bad_length = message_header_error::BAD_MESSAGE_LENGTH;
        if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&length) {
            return Err(malformed(bad_length, length_field.to_vec()));
        }
        let Some(message_type) = MessageType::from_u8(header[18]) else {
            return Err(malformed(
                message_header_error::BAD_MESSAGE_TYPE,
                vec![header[18]],
            ));
        };
        let (min, exact) = length_bounds(message_type);
        if length < min || (exact && length != min) {
            return Err(malformed(bad_length, length_field.to_vec()));
        }
        Ok(Self {
            buffer,
            message_type,
        })
    }

    /// The whole message's length, header included: 19 to 4096.
    pub fn length(&self) -> usize {
        let b = self.buffer.as_ref();
        usize::from(u16::from_be_bytes([b[16], b[17]]))
    }

    pub fn message_type(&self) -> MessageType {
        self.message_type
    }
}
