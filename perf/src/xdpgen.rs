//! An AF_XDP UDP generator and sink, for offered vs delivered pps, loss, reordering and
//! one-way latency between two namespaces of one host.
//!
//! - The **generator** builds its Ethernet/IPv4/UDP frames once into the UMEM and, per frame,
//!   only writes an 18-byte stamp (magic, sequence number, CLOCK_MONOTONIC nanoseconds) and
//!   patches the UDP checksum incrementally (RFC 1624). It transmits on a TX-only AF_XDP
//!   socket bound to the workload's `eth0`, towards the next hop's MAC from the neighbour
//!   table (for a Calico workload: 169.254.1.1, answered by proxy ARP).
//! - The **sink** attaches fastpath's XDP program to its `eth0` as a workload port, so every
//!   frame goes to its AF_XDP socket(s), and answers ARP for its own address itself (the
//!   kernel no longer sees the interface's frames). It counts stamped frames, gaps and late
//!   arrivals by sequence number and records latency in an hdrhistogram. It sleeps in
//!   poll(2) when no frame is waiting, so that it leaves the cores to the generator and the
//!   vRouter.
//!
//! Every namespace of a host shares CLOCK_MONOTONIC, so `receive time - stamp` is the
//! one-way latency including the generator's own TX path.

use std::io::Write as _;
use std::net::{Ipv4Addr, UdpSocket};
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use xsk_rs::config::{BindFlags, FrameSize, LibxdpFlags, QueueSize, SocketConfig, UmemConfig};
use xsk_rs::{FrameDesc, Socket, Umem};

use crate::udp::{FRAME_OVERHEAD, MAX_FRAME};

/// The first two bytes of every stamped payload.
pub const STAMP_MAGIC: [u8; 2] = *b"BX";
/// Magic (2), sequence number (8), send time in ns (8): exactly the payload of a 64-byte frame.
pub const STAMP_LEN: usize = 18;
/// Smallest frame (FCS included) that holds a stamp.
pub const MIN_FRAME: usize = FRAME_OVERHEAD + STAMP_LEN;
/// UDP source port of generated frames.
pub const SOURCE_PORT: u16 = 40_000;
/// Most frames produced per TX ring round.
pub const MAX_BATCH: usize = 256;

const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const UDP_LEN: usize = 8;
/// Offset of the stamp in a frame, and of the UDP checksum.
const STAMP_AT: usize = ETH_LEN + IPV4_LEN + UDP_LEN;
const UDP_CSUM_AT: usize = ETH_LEN + IPV4_LEN + 6;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const PROTO_UDP: u8 = 17;

/// Generator UMEM: frames and ring entries (the TX ring holds every frame, so producing a
/// batch of free frames never fails).
const SEND_FRAMES: u32 = 2048;
const UMEM_FRAME_SIZE: u32 = 2048;
/// Latency histogram range: 1 ns to 60 s, 3 significant digits, allocated once.
const LATENCY_MAX_NS: u64 = 60_000_000_000;
/// How long the sink sleeps in poll(2) when no frame is waiting, so it notices its deadline.
const SINK_POLL_MS: i32 = 50;
/// How long the sink retries a queue that a just-closed socket still holds.
const SINK_BUSY_RETRY: Duration = Duration::from_secs(3);
/// Most RX queues the sink opens a socket on.
const MAX_SINK_QUEUES: u32 = 16;

#[derive(Debug, thiserror::Error)]
pub enum XdpGenError {
    #[error("invalid {field} {value}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("AF_XDP on {dev}: {reason}")]
    Socket { dev: String, reason: String },
    #[error("no neighbour entry for {next_hop} on {dev} after {waited:?} (is the next hop answering ARP?)")]
    NoNeighbour {
        next_hop: Ipv4Addr,
        dev: String,
        waited: Duration,
    },
    #[error(transparent)]
    Port(#[from] fastpath::port::PortError),
    #[error(transparent)]
    Xdp(#[from] fastpath::xdp::XdpError),
}

fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> XdpGenError {
    let op = op.into();
    move |source| XdpGenError::Io { op, source }
}

fn invalid(field: &'static str, value: impl ToString, reason: impl Into<String>) -> XdpGenError {
    XdpGenError::Invalid {
        field,
        value: value.to_string(),
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/// Addresses and size of the generated frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSpec {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    /// Ethernet frame size, FCS included (the RFC 2544 way, like `udp-send --size`); the
    /// frame in memory is 4 bytes shorter.
    pub frame_size: usize,
}

/// One frame, built once, and the UDP checksum sum of everything but the stamp, so that
/// stamping a copy costs a few additions instead of a pass over the payload.
#[derive(Clone, Debug)]
pub struct FrameTemplate {
    bytes: Vec<u8>,
    /// One's complement sum (unfolded, not inverted) of the pseudo header and the UDP
    /// datagram with the checksum field and the stamp's sequence and time zeroed.
    base_sum: u32,
}

impl FrameTemplate {
    pub fn new(spec: &FrameSpec) -> Result<FrameTemplate, XdpGenError> {
        if !(MIN_FRAME..=MAX_FRAME).contains(&spec.frame_size) {
            return Err(invalid(
                "size",
                spec.frame_size,
                format!(
                    "frame size must be between {MIN_FRAME} and {MAX_FRAME} bytes (FCS included)"
                ),
            ));
        }
        let len = spec.frame_size - 4;
        let udp_len = len - ETH_LEN - IPV4_LEN;
        let mut f = vec![0u8; len];
        // Ethernet II.
        f[0..6].copy_from_slice(&spec.dst_mac);
        f[6..12].copy_from_slice(&spec.src_mac);
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        // IPv4 (RFC 791 section 3.1): no options, DF, TTL 64; the ID is constant (DF set, so
        // RFC 6864 section 4.1 lets it be anything).
        let ip = &mut f[ETH_LEN..ETH_LEN + IPV4_LEN];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((IPV4_LEN + udp_len) as u16).to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = PROTO_UDP;
        ip[12..16].copy_from_slice(&spec.src_ip.octets());
        ip[16..20].copy_from_slice(&spec.dst_ip.octets());
        let ip_csum = !fold(sum_words(0, ip));
        ip[10..12].copy_from_slice(&ip_csum.to_be_bytes());
        // UDP (RFC 768); the payload after the stamp is a fixed pattern.
        let udp_at = ETH_LEN + IPV4_LEN;
        f[udp_at..udp_at + 2].copy_from_slice(&spec.src_port.to_be_bytes());
        f[udp_at + 2..udp_at + 4].copy_from_slice(&spec.dst_port.to_be_bytes());
        f[udp_at + 4..udp_at + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        f[STAMP_AT..STAMP_AT + 2].copy_from_slice(&STAMP_MAGIC);
        for b in &mut f[STAMP_AT + STAMP_LEN..] {
            *b = 0x5a;
        }
        // Pseudo header (RFC 768): source, destination, zero + protocol, UDP length.
        let mut sum = sum_words(0, &spec.src_ip.octets());
        sum = sum_words(sum, &spec.dst_ip.octets());
        sum = sum_words(sum, &[0, PROTO_UDP]);
        sum = sum_words(sum, &(udp_len as u16).to_be_bytes());
        sum = sum_words(sum, &f[udp_at..]);
        let mut template = FrameTemplate {
            bytes: f,
            base_sum: sum,
        };
        // The template itself carries a valid stamp (sequence 0, time 0).
        let mut bytes = std::mem::take(&mut template.bytes);
        template.stamp(&mut bytes, 0, 0);
        template.bytes = bytes;
        Ok(template)
    }

    /// The frame as it goes on the wire (without FCS).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Writes `seq` and `sent_ns` into a copy of the template and fixes its UDP checksum.
    /// Does nothing to a buffer shorter than the template.
    pub fn stamp(&self, frame: &mut [u8], seq: u64, sent_ns: u64) {
        let Some(stamp) = frame.get_mut(STAMP_AT + 2..STAMP_AT + STAMP_LEN) else {
            return;
        };
        stamp[..8].copy_from_slice(&seq.to_be_bytes());
        stamp[8..].copy_from_slice(&sent_ns.to_be_bytes());
        // The stamp starts at an even offset of the UDP datagram, so its words line up with
        // the checksum's 16-bit words (RFC 1071 section 2).
        let sum = sum_words(self.base_sum, stamp);
        let mut csum = !fold(sum);
        if csum == 0 {
            // RFC 768: a computed 0 is sent as all ones (0 means "no checksum").
            csum = 0xffff;
        }
        if let Some(field) = frame.get_mut(UDP_CSUM_AT..UDP_CSUM_AT + 2) {
            field.copy_from_slice(&csum.to_be_bytes());
        }
    }
}

/// Adds big-endian 16-bit words of `data` to `acc` (RFC 1071); an odd last byte is padded.
fn sum_words(mut acc: u32, data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc = fold_once(acc + u32::from(u16::from_be_bytes([w[0], w[1]])));
    }
    if let [last] = words.remainder() {
        acc = fold_once(acc + (u32::from(*last) << 8));
    }
    acc
}

/// Keeps the running sum within 17 bits so that it can never overflow.
fn fold_once(acc: u32) -> u32 {
    (acc & 0xffff) + (acc >> 16)
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// What a stamped frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub seq: u64,
    pub sent_ns: u64,
}

/// The stamp of an Ethernet/IPv4/UDP frame to `dst_port`; `None` for anything else (other
/// traffic, truncated frames, a payload without the magic). Never panics.
pub fn parse_stamp(frame: &[u8], dst_port: u16) -> Option<Stamp> {
    if frame.get(12..14)? != ETHERTYPE_IPV4.to_be_bytes() {
        return None;
    }
    let ip = frame.get(ETH_LEN..)?;
    let first = *ip.first()?;
    if first >> 4 != 4 || *ip.get(9)? != PROTO_UDP {
        return None;
    }
    // Fragments other than the first carry no UDP header.
    let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
    if frag & 0x1fff != 0 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < IPV4_LEN {
        return None;
    }
    let udp = ip.get(ihl..)?;
    if u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]) != dst_port {
        return None;
    }
    let stamp = udp.get(UDP_LEN..UDP_LEN + STAMP_LEN)?;
    if stamp[..2] != STAMP_MAGIC {
        return None;
    }
    let seq = u64::from_be_bytes(stamp[2..10].try_into().ok()?);
    let sent_ns = u64::from_be_bytes(stamp[10..18].try_into().ok()?);
    Some(Stamp { seq, sent_ns })
}

/// CLOCK_MONOTONIC in nanoseconds (shared by every namespace of the host).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

// ---------------------------------------------------------------------------------------------
// Accounting
// ---------------------------------------------------------------------------------------------

/// Loss and reordering from sequence numbers, in constant memory.
///
/// A frame whose sequence number is below the highest seen so far arrived late: it counts as
/// reordered (and fills a gap counted as lost until then). Duplicates are not told apart
/// from late frames (that would need a bitmap of every sequence number); neither the
/// generator nor a router duplicates frames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqTracker {
    received: u64,
    highest: Option<u64>,
    reordered: u64,
}

impl SeqTracker {
    pub fn record(&mut self, seq: u64) {
        self.received += 1;
        match self.highest {
            Some(h) if seq < h => self.reordered += 1,
            Some(h) if seq == h => self.reordered += 1,
            _ => self.highest = Some(seq),
        }
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Frames missing below the highest sequence number (tail losses are only visible to
    /// whoever knows how many were sent: see [`loss_against`]).
    pub fn lost_in_sequence(&self) -> u64 {
        self.highest
            .map_or(0, |h| (h + 1).saturating_sub(self.received))
    }
}

/// Frames sent but not received, and that as a fraction of those sent (0 when none were sent).
pub fn loss_against(sent: u64, received: u64) -> (u64, f64) {
    let lost = sent.saturating_sub(received);
    let fraction = if sent == 0 {
        0.0
    } else {
        lost as f64 / sent as f64
    };
    (lost, fraction)
}

/// One-way latency percentiles in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub samples: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// An hdrhistogram of nanoseconds, allocated once: recording never allocates.
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
    /// Samples outside the histogram's range (a clock step, a garbage stamp).
    out_of_range: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    pub fn new() -> LatencyRecorder {
        // The bounds are constants that hdrhistogram accepts; `new_with_bounds` only fails
        // for low < 1, high < 2 * low or sigfig > 5.
        let histogram = Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
            .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()));
        LatencyRecorder {
            histogram,
            out_of_range: 0,
        }
    }

    /// Records `now_ns - sent_ns`; a stamp from the future or past the range is counted apart.
    pub fn record(&mut self, sent_ns: u64, now_ns: u64) {
        let Some(latency) = now_ns.checked_sub(sent_ns) else {
            self.out_of_range += 1;
            return;
        };
        if self.histogram.record(latency.max(1)).is_err() {
            self.out_of_range += 1;
        }
    }

    pub fn out_of_range(&self) -> u64 {
        self.out_of_range
    }

    pub fn summary(&self) -> Option<LatencySummary> {
        let h = &self.histogram;
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(LatencySummary {
            samples: h.len(),
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Interfaces and neighbours
// ---------------------------------------------------------------------------------------------

fn check_dev(dev: &str) -> Result<(), XdpGenError> {
    let ok = !dev.is_empty()
        && dev.len() < libc::IFNAMSIZ
        && dev
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid("dev", dev, "not an interface name"))
    }
}

/// The interface's MAC from sysfs.
pub fn interface_mac(dev: &str) -> Result<[u8; 6], XdpGenError> {
    check_dev(dev)?;
    let path = format!("/sys/class/net/{dev}/address");
    let text = std::fs::read_to_string(&path).map_err(io(format!("reading {path}")))?;
    parse_mac(text.trim())
        .ok_or_else(|| invalid("dev", dev, format!("unreadable MAC {:?}", text.trim())))
}

pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The interface's IPv4 address (SIOCGIFADDR).
pub fn interface_ipv4(dev: &str) -> Result<Ipv4Addr, XdpGenError> {
    check_dev(dev)?;
    #[repr(C)]
    struct IfReqAddr {
        name: [libc::c_char; libc::IFNAMSIZ],
        addr: libc::sockaddr_in,
        _pad: [u8; 8],
    }
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(io("socket for SIOCGIFADDR"))?;
    // SAFETY: all-zeroes is a valid ifreq.
    let mut req: IfReqAddr = unsafe { std::mem::zeroed() };
    for (d, s) in req.name.iter_mut().zip(dev.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: SIOCGIFADDR reads the name and writes a sockaddr into our ifreq-sized struct.
    let ret = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFADDR, &mut req) };
    if ret != 0 {
        return Err(XdpGenError::Io {
            op: format!("SIOCGIFADDR on {dev} (does it have an IPv4 address?)"),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(Ipv4Addr::from(u32::from_be(req.addr.sin_addr.s_addr)))
}

/// The next hop towards `dst` out of `dev` from a `/proc/net/route` table: the gateway of the
/// longest matching route on `dev`, or `dst` itself for an on-link route.
pub fn next_hop_from_routes(table: &str, dev: &str, dst: Ipv4Addr) -> Option<Ipv4Addr> {
    let hex = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(u32::from_be)
            .map(Ipv4Addr::from)
    };
    let dst_bits = u32::from(dst);
    let mut best: Option<(u32, Ipv4Addr)> = None;
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (Some(iface), Some(dest), Some(gw), Some(mask)) = (
            cols.first(),
            cols.get(1).and_then(|s| hex(s)),
            cols.get(2).and_then(|s| hex(s)),
            cols.get(7).and_then(|s| hex(s)),
        ) else {
            continue;
        };
        let mask_bits = u32::from(mask);
        if *iface != dev || dst_bits & mask_bits != u32::from(dest) & mask_bits {
            continue;
        }
        let len = mask_bits.count_ones();
        if best.is_none_or(|(l, _)| len > l) {
            let hop = if gw.is_unspecified() { dst } else { gw };
            best = Some((len, hop));
        }
    }
    best.map(|(_, hop)| hop)
}

/// The complete neighbour entry of `ip` on `dev` in a `/proc/net/arp` table.
pub fn neighbour_from_arp(table: &str, dev: &str, ip: Ipv4Addr) -> Option<[u8; 6]> {
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [addr, _hw_type, flags, mac, _mask, iface] = cols[..] else {
            continue;
        };
        // ATF_COM (0x2): the entry is resolved.
        let complete =
            u32::from_str_radix(flags.trim_start_matches("0x"), 16).is_ok_and(|f| f & 0x2 != 0);
        if iface == dev && complete && addr.parse() == Ok(ip) {
            return parse_mac(mac).filter(|m| *m != [0; 6]);
        }
    }
    None
}

/// Resolves the MAC of the next hop towards `dst`: from the neighbour table, or, if absent,
/// after making the kernel resolve it (a datagram to the discard port of the next hop),
/// waiting up to `wait`.
pub fn resolve_next_hop(
    dev: &str,
    dst: Ipv4Addr,
    wait: Duration,
) -> Result<(Ipv4Addr, [u8; 6]), XdpGenError> {
    check_dev(dev)?;
    let routes =
        std::fs::read_to_string("/proc/net/route").map_err(io("reading /proc/net/route"))?;
    let next_hop = next_hop_from_routes(&routes, dev, dst)
        .ok_or_else(|| invalid("dst", dst, format!("no route to it out of {dev}")))?;
    let started = Instant::now();
    let mut last_trigger: Option<Instant> = None;
    loop {
        let arp = std::fs::read_to_string("/proc/net/arp").map_err(io("reading /proc/net/arp"))?;
        if let Some(mac) = neighbour_from_arp(&arp, dev, next_hop) {
            return Ok((next_hop, mac));
        }
        if started.elapsed() >= wait {
            return Err(XdpGenError::NoNeighbour {
                next_hop,
                dev: dev.to_string(),
                waited: wait,
            });
        }
        if last_trigger.is_none_or(|t| t.elapsed() >= Duration::from_millis(500)) {
            // Port 9 (discard): the kernel must resolve the next hop to send it. Failure is
            // fine: the next read of the table tells.
            if let Ok(s) = UdpSocket::bind("0.0.0.0:0") {
                let _ = s.send_to(&[0], (dst, 9));
            }
            last_trigger = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct SendOptions {
    pub dev: String,
    pub dst: Ipv4Addr,
    pub port: u16,
    pub frame_size: usize,
    pub duration: Duration,
    /// Stop after this many frames; 0: only the duration bounds the run.
    pub count: u64,
    /// Frames per second; 0: as fast as the TX path takes them.
    pub rate_pps: u64,
    pub batch: usize,
}

/// What the generator did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct XdpSendReport {
    /// Frames the kernel took from the TX ring (completed).
    pub sent: u64,
    /// Seconds from the first frame produced to the last.
    pub secs: f64,
    pub pps_offered: f64,
    pub rate_pps: u64,
    pub frame_size: usize,
    pub src_ip: String,
    pub dst_ip: String,
    pub next_hop: String,
    pub next_hop_mac: String,
    /// Frames still on the TX ring when the run ended (not counted in `sent`).
    pub unsent: u64,
}

/// The generator: a TX-only AF_XDP socket on `dev` queue 0 (no XDP program is needed to
/// transmit, and the interface's receive path stays with the kernel).
pub fn xdp_send(opts: &SendOptions) -> Result<XdpSendReport, XdpGenError> {
    if opts.batch == 0 || opts.batch > MAX_BATCH {
        return Err(invalid(
            "batch",
            opts.batch,
            format!("must be between 1 and {MAX_BATCH}"),
        ));
    }
    let src_ip = interface_ipv4(&opts.dev)?;
    let src_mac = interface_mac(&opts.dev)?;
    let (next_hop, dst_mac) = resolve_next_hop(&opts.dev, opts.dst, Duration::from_secs(3))?;
    let template = FrameTemplate::new(&FrameSpec {
        src_mac,
        dst_mac,
        src_ip,
        dst_ip: opts.dst,
        src_port: SOURCE_PORT,
        dst_port: opts.port,
        frame_size: opts.frame_size,
    })?;

    let socket_err = |reason: String| XdpGenError::Socket {
        dev: opts.dev.clone(),
        reason,
    };
    let frame_size =
        FrameSize::new(UMEM_FRAME_SIZE).map_err(|e| socket_err(format!("frame size: {e}")))?;
    let ring = QueueSize::new(SEND_FRAMES).map_err(|e| socket_err(format!("ring size: {e}")))?;
    let small = QueueSize::new(64).map_err(|e| socket_err(format!("ring size: {e}")))?;
    let umem_config = UmemConfig::builder()
        .frame_size(frame_size)
        .fill_queue_size(small)
        .comp_queue_size(ring)
        .build()
        .map_err(|e| socket_err(format!("UMEM config: {e}")))?;
    let count = NonZeroU32::new(SEND_FRAMES).ok_or_else(|| socket_err("no frames".into()))?;
    let (umem, mut frames) =
        Umem::new(umem_config, count, false).map_err(|e| socket_err(format!("UMEM: {e}")))?;
    let socket_config = SocketConfig::builder()
        .rx_queue_size(small)
        .tx_queue_size(ring)
        .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
        .bind_flags(BindFlags::XDP_USE_NEED_WAKEUP)
        .build();
    let ifname = opts
        .dev
        .parse()
        .map_err(|_| invalid("dev", &opts.dev, "contains a NUL byte"))?;
    // SAFETY: the UMEM is used by this socket only.
    let (mut tx, _rx, fill_comp) = unsafe { Socket::new(socket_config, &umem, &ifname, 0) }
        .map_err(|e| socket_err(format!("socket on queue 0: {e}")))?;
    let (_fill, mut comp) = fill_comp.ok_or_else(|| socket_err("no completion ring".into()))?;
    let fd = tx.fd().as_raw_fd();

    // Every frame gets the template once; afterwards only stamps are written.
    for desc in &mut frames {
        // SAFETY: the frame is ours; nothing is on any ring yet.
        let mut data = unsafe { umem.data_mut(desc) };
        let mut cursor = data.cursor();
        cursor
            .write_all(template.bytes())
            .map_err(|e| socket_err(format!("writing the template: {e}")))?;
    }
    let base_addr = frames.first().map_or(0, FrameDesc::addr);
    let stride = UMEM_FRAME_SIZE as usize;
    let mut free: Vec<u32> = (0..frames.len() as u32).rev().collect();
    let mut completed = vec![FrameDesc::default(); frames.len()];
    let mut batch = vec![FrameDesc::default(); opts.batch];

    let mut next_seq: u64 = 0;
    let mut done: u64 = 0;
    let started = Instant::now();
    let mut last_produce = started;
    loop {
        let elapsed = started.elapsed();
        if elapsed >= opts.duration || (opts.count > 0 && next_seq >= opts.count) {
            break;
        }
        done += reclaim(
            &mut comp,
            &mut completed,
            &mut free,
            base_addr,
            stride,
            frames.len(),
        );
        let mut want = opts.batch as u64;
        if opts.count > 0 {
            want = want.min(opts.count - next_seq);
        }
        if opts.rate_pps > 0 {
            let due = (elapsed.as_secs_f64() * opts.rate_pps as f64) as u64 + 1;
            let ahead = due.saturating_sub(next_seq);
            if ahead == 0 {
                // Ahead of schedule: sleep until the next frame is due (at most 1 ms, so the
                // deadline is noticed).
                let next_at = Duration::from_secs_f64((next_seq as f64) / opts.rate_pps as f64);
                std::thread::sleep(
                    next_at
                        .saturating_sub(elapsed)
                        .min(Duration::from_millis(1)),
                );
                continue;
            }
            want = want.min(ahead);
        }
        let n = (want as usize).min(free.len());
        if n == 0 {
            // Every frame is on the TX ring: make the kernel send some.
            kick(fd);
            continue;
        }
        for slot in batch.iter_mut().take(n) {
            let Some(idx) = free.pop() else { break };
            let mut desc = frames[idx as usize];
            // SAFETY: the frame is on our free list: not on any ring, no other reference.
            let mut data = unsafe { umem.data_mut(&mut desc) };
            template.stamp(data.contents_mut(), next_seq, monotonic_ns());
            next_seq += 1;
            *slot = desc;
        }
        // SAFETY: the descriptors are frames of this UMEM; the TX ring has room for every
        // frame of the UMEM, so it takes the whole batch.
        let produced = unsafe { tx.produce(&batch[..n]) };
        if produced < n {
            return Err(socket_err(format!("TX ring took {produced} of {n} frames")));
        }
        last_produce = Instant::now();
        if tx.needs_wakeup() {
            kick(fd);
        }
    }
    let secs = last_produce.duration_since(started).as_secs_f64();
    // Drain: whatever is still on the ring gets a bounded number of kicks to go out.
    let drain_by = Instant::now() + Duration::from_millis(500);
    while done < next_seq && Instant::now() < drain_by {
        kick(fd);
        done += reclaim(
            &mut comp,
            &mut completed,
            &mut free,
            base_addr,
            stride,
            frames.len(),
        );
    }
    Ok(XdpSendReport {
        sent: done,
        secs,
        pps_offered: if secs > 0.0 { done as f64 / secs } else { 0.0 },
        rate_pps: opts.rate_pps,
        frame_size: opts.frame_size,
        src_ip: src_ip.to_string(),
        dst_ip: opts.dst.to_string(),
        next_hop: next_hop.to_string(),
        next_hop_mac: format_mac(&dst_mac),
        unsent: next_seq - done,
    })
}

/// Takes completed frames back onto the free list; returns how many.
fn reclaim(
    comp: &mut xsk_rs::CompQueue,
    completed: &mut [FrameDesc],
    free: &mut Vec<u32>,
    base_addr: usize,
    stride: usize,
    frames: usize,
) -> u64 {
    // SAFETY: the completion ring returns frames of our UMEM that we sent.
    let n = unsafe { comp.consume(completed) };
    for desc in &completed[..n] {
        let idx = desc.addr().saturating_sub(base_addr) / stride;
        // `free` was built with room for every frame, so this never reallocates.
        if idx < frames {
            free.push(idx as u32);
        }
    }
    n as u64
}

/// In copy mode the kernel transmits inside sendto(2), 32 frames per call; EAGAIN means
/// more are waiting, which the next round's kick takes care of.
fn kick(fd: std::os::fd::RawFd) {
    // SAFETY: a zero-length sendto on our own AF_XDP socket.
    unsafe {
        libc::sendto(
            fd,
            std::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    };
}

// ---------------------------------------------------------------------------------------------
// Sink
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct SinkOptions {
    pub dev: String,
    pub port: u16,
    pub duration: Duration,
    /// Stop once traffic has stopped for this long (after the first stamped frame).
    pub idle: Option<Duration>,
    /// Stop after this many stamped frames; 0: no limit.
    pub count: u64,
}

/// What the sink saw.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct XdpSinkReport {
    /// Stamped frames to the port.
    pub received: u64,
    /// UDP payload bytes of those frames.
    pub bytes: u64,
    /// Seconds from the first stamped frame to the last.
    pub secs: f64,
    pub pps_delivered: f64,
    /// Gaps below the highest sequence number seen.
    pub lost_in_sequence: u64,
    /// Frames that arrived after a frame with a higher sequence number.
    pub reordered: u64,
    pub highest_seq: Option<u64>,
    pub latency: Option<LatencySummary>,
    /// Latencies outside 1 ns..60 s (clock steps, foreign stamps).
    pub latency_out_of_range: u64,
    pub arp_replies: u64,
    /// Frames that were neither stamped traffic nor ARP for us.
    pub other_frames: u64,
    /// The kernel's count of frames dropped for want of room on the RX or fill ring.
    pub rx_dropped: u64,
    pub queues: u32,
}

/// The sink: fastpath's XDP program on `dev` as a workload port (every frame to userspace),
/// one AF_XDP socket per RX queue; `on_ready` runs once the sockets are in the XSKMAP.
pub fn xdp_sink(opts: &SinkOptions, on_ready: impl FnOnce()) -> Result<XdpSinkReport, XdpGenError> {
    use fastpath::port::{Port, PortConfig};
    use fastpath::{MacAddr, PortInfo, PortKind};
    check_dev(&opts.dev)?;
    let our_ip = interface_ipv4(&opts.dev)?;
    let our_mac = interface_mac(&opts.dev)?;
    let cname = std::ffi::CString::new(opts.dev.as_str())
        .map_err(|_| invalid("dev", &opts.dev, "contains a NUL byte"))?;
    // SAFETY: a valid NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        return Err(invalid("dev", &opts.dev, "no such interface"));
    }
    let queues = rx_queue_count(&opts.dev).clamp(1, MAX_SINK_QUEUES);
    let program = fastpath::xdp::XdpProgram::load()?;
    let info = PortInfo {
        name: opts.dev.clone(),
        ifindex,
        kind: PortKind::Workload,
        mac: MacAddr(our_mac),
        ip: our_ip,
        mtu: 1500,
        policy: None,
    };
    let mut ports = Vec::with_capacity(queues as usize);
    for queue in 0..queues {
        // The kernel releases a closed socket's hold on its queue in deferred work, so a sink
        // started right after another on the same interface can find the queue busy for a
        // moment: retry for a bounded time.
        let retry_until = Instant::now() + SINK_BUSY_RETRY;
        let port = loop {
            match Port::open(
                queue as u16,
                &info,
                queue,
                &PortConfig::default(),
                &program,
                queue,
            ) {
                Err(e) if is_busy(&e) && Instant::now() < retry_until => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => break other?,
            }
        };
        ports.push(port);
    }
    // Attach last: until the sockets are registered, frames would be dropped by the redirect.
    let _attachment = program.attach(ifindex, PortKind::Workload, queues, 0)?;
    let mut pollfds: Vec<libc::pollfd> = ports
        .iter()
        .map(|p| libc::pollfd {
            fd: p.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    on_ready();

    let mut tracker = SeqTracker::default();
    let mut latency = LatencyRecorder::new();
    let mut report = XdpSinkReport {
        queues,
        ..XdpSinkReport::default()
    };
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let mut last: Option<Instant> = None;
    while started.elapsed() < opts.duration {
        if let (Some(idle), Some(l)) = (opts.idle, last) {
            if l.elapsed() >= idle {
                break;
            }
        }
        if opts.count > 0 && tracker.received() >= opts.count {
            break;
        }
        let mut got = 0;
        let stamped_before = tracker.received();
        for port in &mut ports {
            let n = port.receive();
            got += n;
            let mut reply: Option<[u8; ARP_FRAME_LEN]> = None;
            let now = monotonic_ns();
            for i in 0..n {
                let frame = port.received_frame(i);
                if let Some(stamp) = parse_stamp(frame, opts.port) {
                    tracker.record(stamp.seq);
                    latency.record(stamp.sent_ns, now);
                    report.bytes += (frame.len() - STAMP_AT) as u64;
                } else if let Some(r) = arp_reply(frame, our_mac, our_ip) {
                    reply = Some(r);
                } else {
                    report.other_frames += 1;
                }
            }
            port.release_received();
            if let Some(r) = reply {
                if port.transmit(&r) {
                    report.arp_replies += 1;
                }
                port.flush();
            }
        }
        if tracker.received() > stamped_before {
            let now = Instant::now();
            first.get_or_insert(now);
            last = Some(now);
        }
        if got > 0 {
            continue;
        }
        // SAFETY: `pollfds` holds one valid pollfd per port.
        unsafe {
            libc::poll(
                pollfds.as_mut_ptr(),
                pollfds.len() as libc::nfds_t,
                SINK_POLL_MS,
            )
        };
    }
    for port in &ports {
        if let Ok(stats) = port.statistics() {
            report.rx_dropped +=
                stats.rx_dropped() + stats.rx_ring_full() + stats.rx_fill_ring_empty_descs();
        }
    }
    report.received = tracker.received();
    report.secs = match (first, last) {
        (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
        _ => 0.0,
    };
    report.pps_delivered = if report.secs > 0.0 {
        report.received as f64 / report.secs
    } else {
        0.0
    };
    report.lost_in_sequence = tracker.lost_in_sequence();
    report.reordered = tracker.reordered();
    report.highest_seq = tracker.highest();
    report.latency = latency.summary();
    report.latency_out_of_range = latency.out_of_range();
    Ok(report)
}

/// The queue still has a socket bound (EBUSY somewhere in the error's chain).
fn is_busy(error: &fastpath::port::PortError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
            == Some(libc::EBUSY)
        {
            return true;
        }
        source = e.source();
    }
    false
}

fn rx_queue_count(dev: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{dev}/queues"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
}

const ARP_FRAME_LEN: usize = 42;

/// The reply to an ARP request for `our_ip` (RFC 826), or `None` for any other frame.
pub fn arp_reply(frame: &[u8], our_mac: [u8; 6], our_ip: Ipv4Addr) -> Option<[u8; ARP_FRAME_LEN]> {
    if frame.get(12..14)? != ETHERTYPE_ARP.to_be_bytes() {
        return None;
    }
    let arp = frame.get(ETH_LEN..ETH_LEN + 28)?;
    // Ethernet (1), IPv4, 6-byte hardware and 4-byte protocol addresses, op request (1).
    if arp[0..8] != [0, 1, 8, 0, 6, 4, 0, 1] || arp[24..28] != our_ip.octets() {
        return None;
    }
    let (sender_mac, sender_ip) = (&arp[8..14], &arp[14..18]);
    let mut r = [0u8; ARP_FRAME_LEN];
    r[0..6].copy_from_slice(sender_mac);
    r[6..12].copy_from_slice(&our_mac);
    r[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    r[14..20].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
    r[20..22].copy_from_slice(&2u16.to_be_bytes());
    r[22..28].copy_from_slice(&our_mac);
    r[28..32].copy_from_slice(&our_ip.octets());
    r[32..38].copy_from_slice(sender_mac);
    r[38..42].copy_from_slice(sender_ip);
    Some(r)
}

/// Creates `path` (the "ready" signal a driver waits for).
pub fn touch(path: &Path) -> Result<(), XdpGenError> {
    std::fs::write(path, b"").map_err(io(format!("creating {}", path.display())))
}

// ---------------------------------------------------------------------------------------------
// In the end-to-end benchmark
// ---------------------------------------------------------------------------------------------

/// Which generator and sink the end-to-end UDP runs use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    /// `udp-send`/`udp-sink`: sendmmsg/recvmmsg through each workload's kernel stack.
    #[default]
    Socket,
    /// `xdp-send`/`xdp-sink`: AF_XDP on each workload's eth0, with loss and latency.
    Xdp,
}

impl std::str::FromStr for Generator {
    type Err = XdpGenError;
    fn from_str(s: &str) -> Result<Generator, XdpGenError> {
        match s {
            "socket" => Ok(Generator::Socket),
            "xdp" => Ok(Generator::Xdp),
            _ => Err(invalid("generator", s, "must be socket or xdp")),
        }
    }
}

/// One UDP run with the AF_XDP generator, as the end-to-end report keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct XdpUdp {
    pub frame_size: usize,
    /// Frames the generator's TX path took, per second of generator time.
    pub pps_offered: f64,
    /// Frames the sink received, per second of generator time.
    pub pps_delivered: f64,
    pub sent: u64,
    pub received: u64,
    /// `sent - received`, and that over `sent`.
    pub lost: u64,
    pub loss_fraction: f64,
    pub reordered: u64,
    /// One-way latency, generator TX ring to sink RX ring.
    pub latency: Option<LatencySummary>,
    /// Frames the sink's kernel dropped for want of ring room (the sink was too slow).
    pub sink_rx_dropped: u64,
}

impl XdpUdp {
    pub fn of(send: &XdpSendReport, sink: &XdpSinkReport) -> XdpUdp {
        let (lost, loss_fraction) = loss_against(send.sent, sink.received);
        let per_sec = |n: u64| {
            if send.secs > 0.0 {
                n as f64 / send.secs
            } else {
                0.0
            }
        };
        XdpUdp {
            frame_size: send.frame_size,
            pps_offered: per_sec(send.sent),
            pps_delivered: per_sec(sink.received),
            sent: send.sent,
            received: sink.received,
            lost,
            loss_fraction,
            reordered: sink.reordered,
            latency: sink.latency.clone(),
            sink_rx_dropped: sink.rx_dropped,
        }
    }
}

/// [`crate::e2e::udp_between`] with the AF_XDP generator and sink: the sink on `to_ns`'s
/// eth0 (ready when `ready` exists), the generator flat out on `from_ns`'s eth0 pinned to
/// [`crate::e2e::GENERATOR_CPU`], busy cores sampled around it. Returns the socket-style
/// reports (for the shared pps columns), the busy cores and the AF_XDP details.
pub fn xdp_between(
    from_ns: &str,
    to_ns: &str,
    to_ip: Ipv4Addr,
    ready: &Path,
    p: &crate::e2e::UdpParams,
) -> Result<(crate::udp::SendReport, crate::udp::SinkReport, f64, XdpUdp), crate::e2e::E2eError> {
    use crate::cmd::{self, ChildGuard};
    use crate::e2e::E2eError;
    let run_err = |what: String| E2eError::Run(what);
    let exe = p.perf_exe.to_string_lossy().to_string();
    let _ = std::fs::remove_file(ready);
    let sink_secs = (p.duration + Duration::from_secs(5)).as_secs().to_string();
    let port = p.port.to_string();
    let sink_child = std::process::Command::new("ip")
        .args([
            "netns", "exec", to_ns, &exe, "xdp-sink", "--dev", "eth0", "--port", &port,
        ])
        .args([
            "--duration",
            &sink_secs,
            "--idle-ms",
            "1000",
            "--ready-file",
        ])
        .arg(ready)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| run_err(format!("starting xdp-sink: {e}")))?;
    let mut sink = ChildGuard::new("xdp-sink", sink_child);
    let ready_by = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        if let Some(status) = sink.try_wait() {
            let out = sink.wait_output(Duration::from_secs(1));
            let stderr = out
                .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
                .unwrap_or_default();
            return Err(run_err(format!(
                "xdp-sink exited ({status}) before it was ready: {stderr}"
            )));
        }
        if Instant::now() >= ready_by || cmd::interrupted() {
            return Err(run_err("xdp-sink did not become ready within 10 s".into()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }

    let cpu = crate::e2e::GENERATOR_CPU.to_string();
    let size = p.frame_size.to_string();
    let batch = p.batch.min(MAX_BATCH).to_string();
    let duration = format!("{}", p.duration.as_secs_f64());
    let dst = to_ip.to_string();
    let before =
        crate::stats::CpuTimes::read().map_err(|e| run_err(format!("reading /proc/stat: {e}")))?;
    let out = cmd::run_interruptible(
        &[
            "ip",
            "netns",
            "exec",
            from_ns,
            "taskset",
            "-c",
            &cpu,
            &exe,
            "xdp-send",
            "--dev",
            "eth0",
            "--dst",
            &dst,
            "--port",
            &port,
            "--size",
            &size,
            "--duration",
            &duration,
            "--batch",
            &batch,
        ],
        p.duration + Duration::from_secs(15),
    )?;
    let after =
        crate::stats::CpuTimes::read().map_err(|e| run_err(format!("reading /proc/stat: {e}")))?;
    if cmd::interrupted() {
        return Err(run_err("interrupted by a signal".into()));
    }
    if !out.status.success() {
        return Err(run_err(format!(
            "xdp-send failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let send: XdpSendReport = serde_json::from_slice(&out.stdout).map_err(|e| {
        run_err(format!(
            "xdp-send printed unexpected output ({e}): {}",
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    })?;
    let busy = before.busy_cores_until(&after, crate::stats::online_cpus());
    let sink_out = sink
        .wait_output(Duration::from_secs(15) + p.duration)
        .ok_or_else(|| run_err("xdp-sink did not finish".into()))?;
    let _ = std::fs::remove_file(ready);
    if !sink_out.status.success() {
        return Err(run_err(format!(
            "xdp-sink failed: {}",
            String::from_utf8_lossy(&sink_out.stderr).trim()
        )));
    }
    let sink: XdpSinkReport = serde_json::from_slice(&sink_out.stdout).map_err(|e| {
        run_err(format!(
            "xdp-sink printed unexpected output ({e}): {}",
            String::from_utf8_lossy(&sink_out.stdout).trim()
        ))
    })?;
    let details = XdpUdp::of(&send, &sink);
    let send_report = crate::udp::SendReport {
        sent: send.sent,
        secs: send.secs,
        refused_batches: 0,
    };
    let sink_report = crate::udp::SinkReport {
        received: sink.received,
        bytes: sink.bytes,
        secs: sink.secs,
    };
    Ok((send_report, sink_report, busy, details))
}

/// The AF_XDP generator's details of an end-to-end report as Markdown (empty for the
/// socket generator): loss, reordering and one-way latency per side and frame size.
pub fn markdown_details(report: &crate::e2e::E2eReport) -> String {
    let mut rows: Vec<(String, &str, &XdpUdp)> = Vec::new();
    for (name, side) in [
        ("kernel", &report.udp_xdp_kernel),
        ("brindle", &report.udp_xdp_brindle),
    ] {
        if let Some(x) = side {
            rows.push((x.frame_size.to_string(), name, x));
        }
    }
    for size in &report.by_size {
        for (name, side) in [
            ("kernel", Some(&size.kernel)),
            ("brindle", size.brindle.as_ref()),
        ] {
            if let Some(x) = side.and_then(|s| s.xdp.as_ref()) {
                rows.push((size.frame_size.to_string(), name, x));
            }
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nAF_XDP generator (flat out) and sink: loss and one-way latency (generator TX ring to sink RX ring):\n\n\
         | frame bytes | side | pps offered | pps delivered | loss % | reordered | p50 us | p90 us | p99 us | p99.9 us | max us |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (size, side, x) in rows {
        let lat = |f: fn(&LatencySummary) -> f64| {
            x.latency
                .as_ref()
                .map_or("-".to_string(), |l| format!("{:.1}", f(l)))
        };
        out.push_str(&format!(
            "| {size} | {side} | {:.0} | {:.0} | {:.2} | {} | {} | {} | {} | {} | {} |\n",
            x.pps_offered,
            x.pps_delivered,
            x.loss_fraction * 100.0,
            x.reordered,
            lat(|l| l.p50_us),
            lat(|l| l.p90_us),
            lat(|l| l.p99_us),
            lat(|l| l.p999_us),
            lat(|l| l.max_us),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastpath::wire::{ipv4, udp};

    fn spec(frame_size: usize) -> FrameSpec {
        FrameSpec {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [0xee; 6],
            src_ip: Ipv4Addr::new(192, 168, 0, 1),
            dst_ip: Ipv4Addr::new(192, 168, 0, 2),
            src_port: SOURCE_PORT,
            dst_port: 5201,
            frame_size,
        }
    }

    fn assert_valid(frame: &[u8], s: &FrameSpec) {
        let ip = ipv4::Packet::new_checked(&frame[ETH_LEN..]).unwrap();
        assert!(ip.verify_checksum(), "IPv4 checksum");
        assert_eq!(ip.src_addr(), s.src_ip);
        assert_eq!(ip.dst_addr(), s.dst_ip);
        assert_eq!(usize::from(ip.total_len()), frame.len() - ETH_LEN);
        let u = udp::Packet::new_checked(ip.payload()).unwrap();
        assert_ne!(u.checksum(), 0, "a checksum is computed, not left out");
        assert!(u.verify_checksum(s.src_ip, s.dst_ip), "UDP checksum");
        assert_eq!(u.dst_port(), s.dst_port);
        assert_eq!(usize::from(u.len()), frame.len() - ETH_LEN - IPV4_LEN);
    }

    #[test]
    fn frames_of_every_size_carry_valid_checksums_after_stamping() {
        for size in [64, 65, 128, 512, 1000, 1500, 1518] {
            let s = spec(size);
            let t = FrameTemplate::new(&s).unwrap();
            assert_eq!(t.bytes().len(), size - 4);
            assert_valid(t.bytes(), &s);
            let mut frame = t.bytes().to_vec();
            for (seq, ns) in [
                (1, 2),
                (u64::MAX, u64::MAX),
                (0x1234_5678_9abc, 987_654_321_000),
                (0, 0),
            ] {
                t.stamp(&mut frame, seq, ns);
                assert_valid(&frame, &s);
                assert_eq!(parse_stamp(&frame, 5201), Some(Stamp { seq, sent_ns: ns }));
            }
        }
    }

    #[test]
    fn sixty_four_byte_frames_hold_exactly_the_stamp() {
        let t = FrameTemplate::new(&spec(64)).unwrap();
        assert_eq!(t.bytes().len() - STAMP_AT, STAMP_LEN);
        assert!(FrameTemplate::new(&spec(63)).is_err());
        let err = FrameTemplate::new(&spec(1519)).unwrap_err().to_string();
        assert!(err.contains("size 1519"), "{err}");
    }

    #[test]
    fn truncated_and_garbage_frames_have_no_stamp() {
        let t = FrameTemplate::new(&spec(128)).unwrap();
        let mut frame = t.bytes().to_vec();
        t.stamp(&mut frame, 7, 9);
        for len in 0..STAMP_AT + STAMP_LEN {
            assert_eq!(parse_stamp(&frame[..len], 5201), None, "length {len}");
        }
        assert!(parse_stamp(&frame, 5201).is_some());
        assert_eq!(parse_stamp(&frame, 5202), None, "other port");
        let mut bad = frame.clone();
        bad[STAMP_AT] = b'X';
        assert_eq!(parse_stamp(&bad, 5201), None, "no magic");
        let mut bad = frame.clone();
        bad[ETH_LEN] = 0x41; // IHL 1
        assert_eq!(parse_stamp(&bad, 5201), None, "short IHL");
        let mut bad = frame.clone();
        bad[ETH_LEN] = 0x4f; // IHL 15: the "UDP header" lands in the payload pattern
        assert_eq!(parse_stamp(&bad, 5201), None, "long IHL");
        // Pseudo-random garbage never panics.
        let mut x: u32 = 0x1234_5678;
        for len in 0..200 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = parse_stamp(&buf, 5201);
            let _ = arp_reply(&buf, [1; 6], Ipv4Addr::new(1, 2, 3, 4));
        }
    }

    #[test]
    fn sequence_tracker_counts_gaps_and_late_frames() {
        let mut t = SeqTracker::default();
        for seq in [0, 1, 2, 5, 3, 6, 9] {
            t.record(seq);
        }
        assert_eq!(t.received(), 7);
        assert_eq!(t.highest(), Some(9));
        // 10 numbered 0..=9, 7 arrived: 4, 7, 8 missing.
        assert_eq!(t.lost_in_sequence(), 3);
        // 3 arrived after 5.
        assert_eq!(t.reordered(), 1);
        assert_eq!(loss_against(12, 7), (5, 5.0 / 12.0));
        assert_eq!(loss_against(0, 0), (0, 0.0));
        assert_eq!(loss_against(3, 5), (0, 0.0));
        assert_eq!(SeqTracker::default().lost_in_sequence(), 0);
    }

    #[test]
    fn latency_percentiles_are_ordered_and_bad_stamps_counted_apart() {
        let mut r = LatencyRecorder::new();
        assert!(r.summary().is_none());
        for i in 1..=1000u64 {
            r.record(1_000_000, 1_000_000 + i * 1000);
        }
        r.record(2_000, 1_000); // from the future
        r.record(0, u64::MAX); // out of range
        let s = r.summary().unwrap();
        assert_eq!(s.samples, 1000);
        assert_eq!(r.out_of_range(), 2);
        assert!((s.p50_us - 500.0).abs() < 1.0, "{s:?}");
        assert!(
            s.p50_us <= s.p90_us
                && s.p90_us <= s.p99_us
                && s.p99_us <= s.p999_us
                && s.p999_us <= s.max_us
        );
        assert!((s.max_us - 1000.0).abs() < 1.0, "{s:?}");
    }

    #[test]
    fn next_hop_is_the_gateway_of_the_longest_route_on_the_device() {
        // Calico wiring: 169.254.1.1 on link, default via it.
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t00000000\t0101FEA9\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     eth0\t0101FEA9\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n\
                     eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let gw = Ipv4Addr::new(169, 254, 1, 1);
        assert_eq!(
            next_hop_from_routes(table, "eth0", Ipv4Addr::new(192, 168, 0, 2)),
            Some(gw)
        );
        assert_eq!(next_hop_from_routes(table, "eth0", gw), Some(gw));
        let onlink = Ipv4Addr::new(192, 168, 3, 4);
        assert_eq!(next_hop_from_routes(table, "eth1", onlink), Some(onlink));
        assert_eq!(next_hop_from_routes(table, "eth2", onlink), None);
        assert_eq!(next_hop_from_routes("garbage\nx y z", "eth0", onlink), None);
    }

    #[test]
    fn neighbour_entries_must_be_complete() {
        let table = "IP address       HW type     Flags       HW address            Mask     Device\n\
                     169.254.1.1      0x1         0x2         ee:ee:ee:ee:ee:ee     *        eth0\n\
                     10.0.0.9         0x1         0x0         00:00:00:00:00:00     *        eth0\n";
        assert_eq!(
            neighbour_from_arp(table, "eth0", Ipv4Addr::new(169, 254, 1, 1)),
            Some([0xee; 6])
        );
        assert_eq!(
            neighbour_from_arp(table, "eth1", Ipv4Addr::new(169, 254, 1, 1)),
            None
        );
        assert_eq!(
            neighbour_from_arp(table, "eth0", Ipv4Addr::new(10, 0, 0, 9)),
            None
        );
        assert_eq!(parse_mac("ee:ee:ee:ee:ee:ee:ee"), None);
        assert_eq!(parse_mac("zz:ee:ee:ee:ee:ee"), None);
    }

    #[test]
    fn arp_requests_for_us_get_a_reply_and_others_do_not() {
        let ours = Ipv4Addr::new(10, 0, 0, 2);
        let mut req = [0u8; 42];
        req[0..6].copy_from_slice(&[0xff; 6]);
        req[6..12].copy_from_slice(&[0xee; 6]);
        req[12..14].copy_from_slice(&[8, 6]);
        req[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        req[22..28].copy_from_slice(&[0xee; 6]);
        req[28..32].copy_from_slice(&[10, 0, 0, 1]);
        req[38..42].copy_from_slice(&ours.octets());
        let r = arp_reply(&req, [2; 6], ours).unwrap();
        assert_eq!(&r[0..6], &[0xee; 6]);
        assert_eq!(&r[20..22], &[0, 2]);
        assert_eq!(&r[22..28], &[2; 6]);
        assert_eq!(&r[28..32], &ours.octets());
        assert_eq!(&r[38..42], &[10, 0, 0, 1]);
        assert_eq!(arp_reply(&req, [2; 6], Ipv4Addr::new(10, 0, 0, 3)), None);
        assert_eq!(arp_reply(&req[..30], [2; 6], ours), None);
    }

    #[test]
    fn end_to_end_details_count_loss_against_what_was_sent() {
        let send = XdpSendReport {
            sent: 1000,
            secs: 2.0,
            frame_size: 64,
            ..XdpSendReport::default()
        };
        let sink = XdpSinkReport {
            received: 900,
            reordered: 3,
            ..XdpSinkReport::default()
        };
        let d = XdpUdp::of(&send, &sink);
        assert_eq!((d.pps_offered, d.pps_delivered), (500.0, 450.0));
        assert_eq!((d.lost, d.loss_fraction, d.reordered), (100, 0.1, 3));
        assert_eq!("xdp".parse::<Generator>().unwrap(), Generator::Xdp);
        assert_eq!("socket".parse::<Generator>().unwrap(), Generator::Socket);
        let err = "dpdk".parse::<Generator>().unwrap_err().to_string();
        assert!(err.contains("generator dpdk"), "{err}");
    }
}
