//! Splitting a TCP byte stream into messages.
//!
//! TCP delivers bytes, not messages: a read may end inside a message or hold several.
//! [`MessageStream`] buffers what was read and hands out whole messages; since no message
//! exceeds 4096 octets (RFC 4271 section 4.1) and a bad length is rejected from the header
//! alone, the buffer never holds more than one partial message beyond what the caller
//! pushed and has not yet drained.

use super::error::DecodeError;
use super::message::{DecodeContext, Message, MAX_MESSAGE_LEN};
use super::notification::Notification;

/// A reassembly buffer for one BGP connection.
#[derive(Debug, Default)]
pub struct MessageStream {
    buf: Vec<u8>,
    /// Set once a message was malformed: the connection is finished, nothing more is
    /// decoded.
    failed: bool,
}

impl MessageStream {
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(MAX_MESSAGE_LEN),
            failed: false,
        }
    }

    /// Appends bytes read from the connection. Call [`MessageStream::next_message`] until it
    /// returns `None` after each push, so the buffer stays within a message.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next whole message, `None` when more bytes are needed, or the NOTIFICATION to
    /// send before closing. After an error it returns `None` forever.
    pub fn next_message(&mut self, cx: &DecodeContext) -> Option<Result<Message, Notification>> {
        if self.failed {
            return None;
        }
        match Message::decode(&self.buf, cx) {
            Ok((message, used)) => {
                self.buf.drain(..used);
                Some(Ok(message))
            }
            Err(DecodeError::Incomplete) => None,
            Err(DecodeError::Malformed(n)) => {
                self.failed = true;
                self.buf = Vec::new();
                Some(Err(n))
            }
        }
    }

    /// Bytes buffered and not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// Splits `buf` into the whole messages it holds, stopping at the first incomplete or
/// malformed one; returns them with the bytes consumed and the error, if any.
pub fn split_messages(
    buf: &[u8],
    cx: &DecodeContext,
) -> (Vec<Message>, usize, Option<Notification>) {
    let mut messages = Vec::new();
    let mut used = 0;
    loop {
        match Message::decode(&buf[used..], cx) {
            Ok((m, n)) => {
                messages.push(m);
                used += n;
            }
            Err(DecodeError::Incomplete) => return (messages, used, None),
            Err(DecodeError::Malformed(n)) => return (messages, used, Some(n)),
        }
    }
}
