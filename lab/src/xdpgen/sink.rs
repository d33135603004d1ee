//! The sink: fastpath's XDP program on the interface, every frame to AF_XDP, ARP answered.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::accounting::{LatencyRecorder, LatencySummary, SeqTracker};
use super::frame::{monotonic_ns, parse_stamp};
use super::neigh::{check_dev, interface_ipv4, interface_mac};
use super::{
    invalid, io, XdpGenError, ETHERTYPE_ARP, ETH_LEN, MAX_SINK_QUEUES, SINK_BUSY_RETRY,
    SINK_POLL_MS, STAMP_AT,
};
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
        qos: None,
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
