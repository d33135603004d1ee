//! One TCP connection of a session: a reader task that cuts the byte stream into messages
//! and a writer task that sends encoded messages in order.
//!
//! The reader reports to its peer task tagged with the connection's generation, so that
//! what a replaced connection still says is recognised and ignored.

use std::net::Ipv4Addr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::packet::{DecodeContext, Message, MessageStream, Notification};

/// What a connection's reader reports.
// UPDATEs are the bulk of what is read, so they stay inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Received {
    Message(Message),
    /// The codec rejected a message: send this NOTIFICATION and close (RFC 4271 section 6).
    Malformed(Notification),
    /// The peer closed the connection or it failed.
    Closed,
}

/// A connection's reader report, tagged with its generation.
#[derive(Debug)]
pub(crate) struct ConnReport {
    pub generation: u64,
    pub received: Received,
}

/// The handles of a running connection; dropping it stops both tasks (the writer after it
/// has flushed what was queued, e.g. a final NOTIFICATION).
pub(crate) struct Connection {
    pub generation: u64,
    /// Our address on the connection: the NEXT_HOP we announce.
    pub local_address: Ipv4Addr,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    reader: JoinHandle<()>,
}

impl Connection {
    /// Starts the reader and writer tasks of `stream`.
    pub fn spawn(
        stream: TcpStream,
        generation: u64,
        reports: mpsc::UnboundedSender<ConnReport>,
    ) -> Connection {
        let local_address = match stream.local_addr() {
            Ok(std::net::SocketAddr::V4(a)) => *a.ip(),
            _ => Ipv4Addr::UNSPECIFIED,
        };
        let _ = stream.set_nodelay(true);
        let (mut read_half, mut write_half) = stream.into_split();
        let (writer, mut queue) = mpsc::unbounded_channel::<Vec<u8>>();
        tokio::spawn(async move {
            while let Some(bytes) = queue.recv().await {
                if write_half.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            let _ = write_half.shutdown().await;
        });
        let reader = tokio::spawn(async move {
            let mut stream = MessageStream::new();
            // Before the OPEN exchange AS numbers are 2 octets; we always advertise 4-octet
            // AS, so the peer's OPEN alone decides (RFC 6793 section 4).
            let mut cx = DecodeContext::default();
            let report = |received| {
                reports
                    .send(ConnReport {
                        generation,
                        received,
                    })
                    .is_ok()
            };
            loop {
                // Straight into the reassembly buffer: one copy, kernel to it.
                let n = match read_half.read(stream.read_buffer()).await {
                    Ok(0) | Err(_) => {
                        report(Received::Closed);
                        return;
                    }
                    Ok(n) => n,
                };
                stream.filled(n);
                while let Some(decoded) = stream.next_message(&cx) {
                    match decoded {
                        Ok(message) => {
                            if let Message::Open(open) = &message {
                                cx.four_octet_as = open.four_octet_as().is_some();
                            }
                            if !report(Received::Message(message)) {
                                return;
                            }
                        }
                        Err(notification) => {
                            report(Received::Malformed(notification));
                            return;
                        }
                    }
                }
            }
        });
        Connection {
            generation,
            local_address,
            writer,
            reader,
        }
    }

    /// Queues encoded bytes; a dead connection drops them (its reader reports the loss).
    pub fn send(&self, bytes: Vec<u8>) {
        let _ = self.writer.send(bytes);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
