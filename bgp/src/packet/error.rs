//! What decoding returns when the bytes are not (yet) a message.

use super::notification::Notification;

/// Why [`Message::decode`](super::Message::decode) produced no message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer holds the start of a message that looks valid so far: read more bytes.
    #[error("incomplete message: more bytes needed")]
    Incomplete,
    /// The message is malformed; the peer must be sent this NOTIFICATION and the connection
    /// closed (RFC 4271 section 6).
    #[error("malformed message: {0}")]
    Malformed(Notification),
}
