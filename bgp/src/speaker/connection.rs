//! One TCP connection of a session: a reader task that cuts the byte stream into messages
//! and a writer task that sends encoded messages in order.
//!
//! The reader reports to its peer task tagged with the connection's generation, so that
//! what a replaced connection still says is recognised and ignored.

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

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

/// How long a closed connection still reads (and discards) what the peer sends, waiting
/// for its end of the stream.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// The handles of a running connection; dropping it stops both tasks: the writer after it
/// has flushed what was queued (e.g. a final NOTIFICATION) and closed its side, the reader
/// after draining (see [`drain`]).
pub(crate) struct Connection {
    pub generation: u64,
    /// Our address on the connection: the NEXT_HOP we announce.
    pub local_address: Ipv4Addr,
    writer: mpsc::UnboundedSender<Vec<u8>>,
    /// Dropped with the connection: the reader stops reporting and drains.
    _closing: oneshot::Sender<()>,
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
        let (closing, mut closed) = oneshot::channel::<()>();
        tokio::spawn(async move {
            while let Some(bytes) = queue.recv().await {
                if write_half.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            let _ = write_half.shutdown().await;
        });
        tokio::spawn(async move {
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
                let read = tokio::select! {
                    read = read_half.read(stream.read_buffer()) => read,
                    _ = &mut closed => {
                        drain(read_half).await;
                        return;
                    }
                };
                let n = match read {
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
            _closing: closing,
        }
    }

    /// Queues encoded bytes; a dead connection drops them (its reader reports the loss).
    pub fn send(&self, bytes: Vec<u8>) {
        let _ = self.writer.send(bytes);
    }
}

/// Reads and discards until the peer ends its stream, for [`DRAIN_TIME`] at most, in a fixed
/// buffer. Closing a socket with unread data makes Linux reset the connection (RFC 2525
/// section 2.17), and a peer that is still sending (a flood of UPDATEs that hit the prefix
/// limit) may then lose the NOTIFICATION we just sent before reading it: RFC 4271 section 6
/// wants it delivered before the connection closes.
async fn drain(mut read_half: OwnedReadHalf) {
    let mut scratch = [0u8; 4096];
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Ok(n) = read_half.read(&mut scratch).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
