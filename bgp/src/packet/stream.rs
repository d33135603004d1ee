//! Splitting a TCP byte stream into messages.
//!
//! TCP delivers bytes, not messages: a read may end inside a message or hold several.
//! [`MessageStream`] buffers what was read and hands out whole messages; since no message
//! exceeds 4096 octets (RFC 4271 section 4.1) and a bad length is rejected from the header
//! alone, the buffer never holds more than one partial message beyond what the caller
//! pushed and has not yet drained.

use super::consts::MAX_MESSAGE_LEN;
use super::context::DecodeContext;
use super::error::DecodeError;
use super::message::Message;
use super::notification::Notification;

/// A reassembly buffer for one BGP connection.
///
/// Bytes are read straight into it ([`MessageStream::read_buffer`]) and messages decoded
/// where they lie; what a decoded message used is dropped by moving `start`, and the bytes
/// left are moved to the front once per read, not once per message.
#[derive(Debug, Default)]
pub struct MessageStream {
    /// Initialised storage; `buf[start..end]` holds the bytes not yet returned.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Set once a message was malformed: the connection is finished, nothing more is
    /// decoded.
    failed: bool,
}

/// What the reader asks the socket for at once: several full-size messages, so that a table
/// transfer takes one read per several UPDATEs.
pub const READ_CHUNK: usize = 16 * MAX_MESSAGE_LEN;

impl MessageStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the connection. Call [`MessageStream::next_message`] until it
    /// returns `None` after each push, so the buffer stays within a message.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        self.room(bytes.len()).copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Room for [`READ_CHUNK`] octets to read into straight from the socket; say how many
    /// were read with [`MessageStream::filled`], then drain with
    /// [`MessageStream::next_message`]. The buffer never exceeds a partial message plus
    /// one chunk.
    pub fn read_buffer(&mut self) -> &mut [u8] {
        self.room(READ_CHUNK)
    }

    /// `n` octets were read into [`MessageStream::read_buffer`].
    pub fn filled(&mut self, n: usize) {
        if !self.failed {
            self.end = (self.end + n).min(self.buf.len());
        }
    }

    /// Moves the pending bytes to the front and makes `len` octets of room after them.
    fn room(&mut self, len: usize) -> &mut [u8] {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < self.end + len {
            self.buf.resize(self.end + len, 0);
        }
        &mut self.buf[self.end..self.end + len]
    }

    /// The next whole message, `None` when more bytes are needed, or the NOTIFICATION to
    /// send before closing. After an error it returns `None` forever.
    pub fn next_message(&mut self, cx: &DecodeContext) -> Option<Result<Message, Notification>> {
        if self.failed {
            return None;
        }
        match Message::decode(&self.buf[self.start..self.end], cx) {
            Ok((message, used)) => {
                self.start += used;
                if self.start == self.end {
                    // Everything consumed: the next read starts at the front, no move.
                    (self.start, self.end) = (0, 0);
                }
                Some(Ok(message))
            }
            Err(DecodeError::Incomplete) => None,
            Err(DecodeError::Malformed(n)) => {
                self.failed = true;
                self.buf = Vec::new();
                (self.start, self.end) = (0, 0);
                Some(Err(n))
            }
        }
    }

    /// Bytes buffered and not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.end - self.start
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{EncodeContext, Ipv4Prefix, PathAttributes, Update};

    /// Full-size UPDATEs and KEEPALIVEs, as in a table transfer.
    fn transfer() -> (Vec<Message>, Vec<u8>) {
        let nlri: Vec<Ipv4Prefix> = (0..20_000u32)
            .map(|i| Ipv4Prefix::containing((0x1400_0000 + (i << 8)).into(), 24).unwrap())
            .collect();
        let attrs = PathAttributes {
            next_hop: Some([192, 0, 2, 1].into()),
            ..Default::default()
        };
        let cx = EncodeContext::default();
        let mut messages: Vec<Message> = Update::pack(&[], &attrs, &nlri, &cx)
            .into_iter()
            .map(Message::Update)
            .collect();
        messages.insert(3, Message::Keepalive);
        let bytes = messages.iter().flat_map(|m| m.encode(&cx)).collect();
        (messages, bytes)
    }

    /// Reads of every size, straight into the stream's buffer: every message comes out
    /// once, in order, and the buffer never holds more than a partial message and a chunk.
    #[test]
    fn reads_into_the_buffer_split_messages_and_stay_bounded() {
        let (messages, bytes) = transfer();
        let cx = DecodeContext::default();
        for read_size in [1, 19, 4095, 4096, 4097, 10_000, READ_CHUNK, 3 * READ_CHUNK] {
            let mut stream = MessageStream::new();
            let mut got = Vec::new();
            let mut at = 0;
            while at < bytes.len() {
                let room = stream.read_buffer();
                assert_eq!(room.len(), READ_CHUNK);
                let n = read_size.min(room.len()).min(bytes.len() - at);
                room[..n].copy_from_slice(&bytes[at..at + n]);
                stream.filled(n);
                at += n;
                while let Some(m) = stream.next_message(&cx) {
                    got.push(m.expect("valid stream"));
                }
                assert!(stream.buffered() < MAX_MESSAGE_LEN);
                assert!(stream.buf.len() <= READ_CHUNK + MAX_MESSAGE_LEN);
            }
            assert_eq!(got, messages, "read size {read_size}");
            assert_eq!(stream.buffered(), 0);
        }
    }

    #[test]
    fn after_a_malformed_message_reads_are_ignored() {
        let mut stream = MessageStream::new();
        let garbage = [0u8; 19];
        stream.read_buffer()[..19].copy_from_slice(&garbage);
        stream.filled(19);
        let cx = DecodeContext::default();
        assert!(matches!(stream.next_message(&cx), Some(Err(_))));
        stream.read_buffer()[..19].copy_from_slice(&garbage);
        stream.filled(19);
        assert!(stream.next_message(&cx).is_none());
        assert_eq!(stream.buffered(), 0);
    }
}
