//! A kernel-socket UDP generator (`sendmmsg`) and sink (`recvmmsg`), each bounded by a
//! duration. Both allocate their message arrays once, before the loop.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Ethernet header (14) + FCS (4) + IPv4 header (20) + UDP header (8). Frame sizes are given
/// the RFC 2544 way, FCS included, so a "64-byte frame" carries 18 bytes of UDP payload.
pub const FRAME_OVERHEAD: usize = 14 + 4 + 20 + 8;
/// Largest frame without jumbo frames (1500-byte MTU + 14 + 4).
pub const MAX_FRAME: usize = 1518;
/// Largest batch per system call; bounds the arrays allocated up front.
pub const MAX_BATCH: usize = 1024;
/// How long a single blocking system call may wait, so that loops notice their deadline.
const SOCKET_TIMEOUT: Duration = Duration::from_millis(100);
/// Receive buffers sized for the largest non-jumbo datagram.
const RECV_BUF: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum UdpError {
    #[error("invalid {field} {value}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> UdpError {
    move |source| UdpError::Io { op, source }
}

/// What the generator did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SendReport {
    /// Datagrams the kernel accepted.
    pub sent: u64,
    /// Seconds the generator ran.
    pub secs: f64,
    /// Batches refused by the kernel (ENOBUFS, EAGAIN, ECONNREFUSED after an ICMP error).
    pub refused_batches: u64,
}

/// What the sink saw.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SinkReport {
    pub received: u64,
    /// UDP payload bytes received.
    pub bytes: u64,
    /// Seconds the sink ran.
    pub secs: f64,
}

/// UDP payload length for a frame of `frame_size` bytes (FCS included).
pub fn payload_len(frame_size: usize) -> Result<usize, UdpError> {
    if !(FRAME_OVERHEAD..=MAX_FRAME).contains(&frame_size) {
        return Err(UdpError::Invalid {
            field: "size",
            value: frame_size.to_string(),
            reason: "frame size must be between 46 and 1518 bytes (FCS included)",
        });
    }
    Ok(frame_size - FRAME_OVERHEAD)
}

fn check_batch(batch: usize) -> Result<(), UdpError> {
    if batch == 0 || batch > MAX_BATCH {
        return Err(UdpError::Invalid {
            field: "batch",
            value: batch.to_string(),
            reason: "batch must be between 1 and 1024",
        });
    }
    Ok(())
}

/// Sends `frame_size`-byte frames to `dst` in batches of `batch` for `duration`.
pub fn udp_send(
    dst: SocketAddrV4,
    frame_size: usize,
    duration: Duration,
    batch: usize,
) -> Result<SendReport, UdpError> {
    let payload = vec![0x5a_u8; payload_len(frame_size)?];
    check_batch(batch)?;
    let socket =
        UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).map_err(io("bind"))?;
    socket.connect(dst).map_err(io("connect"))?;
    socket
        .set_write_timeout(Some(SOCKET_TIMEOUT))
        .map_err(io("SO_SNDTIMEO"))?;

    // Every message points at the same payload: the content does not matter, only the count.
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    // SAFETY: mmsghdr is plain data for which all-zeroes is a valid (empty) value.
    let mut messages: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; batch];
    for m in &mut messages {
        m.msg_hdr.msg_iov = &mut iov;
        m.msg_hdr.msg_iovlen = 1;
    }

    let mut report = SendReport::default();
    let started = Instant::now();
    while started.elapsed() < duration {
        // SAFETY: `messages` holds `batch` initialised headers whose iovec points at
        // `payload`; both outlive the call. The socket is connected, so no address is needed.
        let n = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                messages.as_mut_ptr(),
                batch as libc::c_uint,
                0,
            )
        };
        if n >= 0 {
            report.sent += n as u64;
            continue;
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::ENOBUFS | libc::EAGAIN | libc::ECONNREFUSED) => report.refused_batches += 1,
            _ => {
                return Err(UdpError::Io {
                    op: "sendmmsg",
                    source: err,
                })
            }
        }
    }
    report.secs = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Receives on `port` (all addresses; 0 picks a free one) for `duration`, or until `idle`
/// has passed without a datagram after the first one arrived. `on_ready` gets the bound port
/// once the socket can receive.
pub fn udp_sink(
    port: u16,
    duration: Duration,
    idle: Option<Duration>,
    on_ready: impl FnOnce(u16),
) -> Result<SinkReport, UdpError> {
    let batch = 64;
    let socket =
        UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).map_err(io("bind"))?;
    socket
        .set_read_timeout(Some(SOCKET_TIMEOUT))
        .map_err(io("SO_RCVTIMEO"))?;
    set_receive_buffer(&socket, 4 << 20);

    let mut buffers = vec![[0u8; RECV_BUF]; batch];
    let mut iovs: Vec<libc::iovec> = buffers
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        })
        .collect();
    // SAFETY: all-zeroes is a valid empty mmsghdr.
    let mut messages: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; batch];
    for (m, iov) in messages.iter_mut().zip(iovs.iter_mut()) {
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
    }

    let bound = socket.local_addr().map_err(io("getsockname"))?.port();
    on_ready(bound);
    let mut report = SinkReport::default();
    let started = Instant::now();
    let mut last_packet: Option<Instant> = None;
    while started.elapsed() < duration {
        if let (Some(idle), Some(last)) = (idle, last_packet) {
            if last.elapsed() >= idle {
                break;
            }
        }
        // SAFETY: `messages` holds `batch` headers, each pointing at its own iovec and buffer,
        // all alive for the call. MSG_WAITFORONE returns as soon as one datagram is in; the
        // wait for the first is bounded by SO_RCVTIMEO.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                messages.as_mut_ptr(),
                batch as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n > 0 {
            let n = n as usize;
            report.received += n as u64;
            report.bytes += messages[..n]
                .iter()
                .map(|m| u64::from(m.msg_len))
                .sum::<u64>();
            last_packet = Some(Instant::now());
            continue;
        }
        if n < 0 {
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR | libc::EAGAIN) => {}
                _ => {
                    return Err(UdpError::Io {
                        op: "recvmmsg",
                        source: err,
                    })
                }
            }
        }
    }
    report.secs = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Best effort: a bigger buffer absorbs bursts; the kernel caps it at rmem_max anyway.
fn set_receive_buffer(socket: &UdpSocket, bytes: libc::c_int) {
    // SAFETY: setsockopt with a pointer to a live c_int and its size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &bytes as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_four_byte_frames_carry_eighteen_bytes() {
        assert_eq!(payload_len(64).unwrap(), 18);
        assert_eq!(payload_len(1518).unwrap(), 1472);
        assert!(payload_len(45).is_err());
        assert!(payload_len(1519).is_err());
    }

    #[test]
    fn generator_and_sink_over_loopback() {
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = std::thread::spawn(move || {
            udp_sink(
                0,
                Duration::from_secs(5),
                Some(Duration::from_millis(300)),
                |port| tx.send(port).unwrap(),
            )
        });
        let port = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let sent = udp_send(
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
            64,
            Duration::from_millis(200),
            32,
        )
        .unwrap();
        let got = sink.join().unwrap().unwrap();
        assert!(sent.sent > 0, "{sent:?}");
        assert!(
            got.received > 0 && got.received <= sent.sent,
            "{got:?} vs {sent:?}"
        );
        assert_eq!(got.bytes, got.received * 18);
    }
}
