//! The generator: raw IPv4/UDP with per-packet ports, sent from inside a namespace.

use super::*;

// The generator: raw IPv4/UDP with per-packet ports, from inside a namespace.

/// Source and destination port of the `index`-th packet when cycling over `flows` flows:
/// source ports first (1024..=65535), then destination ports from `base_port`.
pub fn flow_ports(index: u64, flows: u64, base_port: u16) -> (u16, u16) {
    let flow = index % flows.max(1);
    let src = 1024 + (flow % u64::from(SOURCE_PORTS)) as u16;
    let dst_offset = (flow / u64::from(SOURCE_PORTS)) % u64::from(PORT_SPAN);
    (src, base_port.wrapping_add(dst_offset as u16))
}

/// Flows of the "new flows" kind: every (source port, allowed destination port) pair.
pub const fn all_flows() -> u64 {
    SOURCE_PORTS as u64 * PORT_SPAN as u64
}

/// What one generator run did.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct SendCount {
    pub sent: u64,
    pub secs: f64,
    pub refused_batches: u64,
}

/// What to send.
#[derive(Clone, Copy, Debug)]
pub struct Flood {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub base_port: u16,
    pub flows: u64,
    pub frame_size: usize,
    pub batch: usize,
    pub duration: Duration,
    /// Stop after this many packets (probes); `u64::MAX` for a timed run.
    pub max_packets: u64,
    /// Send each flow's reply instead (ports swapped; `src` and `dst` given as the replier's).
    pub reverse: bool,
}

/// Sends `flood` from inside network namespace `netns`, on a thread pinned to
/// [`GENERATOR_CPU`].
pub fn flood_from(netns: &str, flood: Flood) -> Result<SendCount, BenchError> {
    let path = PathBuf::from(format!("/var/run/netns/{netns}"));
    let handle = std::thread::spawn(move || -> Result<SendCount, BenchError> {
        let ns =
            std::fs::File::open(&path).map_err(io_err(format!("opening {}", path.display())))?;
        // SAFETY: setns on a namespace file we hold open; it moves only this thread, which
        // ends with the run.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io_err(format!("setns {}", path.display()))(
                std::io::Error::last_os_error(),
            ));
        }
        pin_this_thread(GENERATOR_CPU);
        send_raw(&flood)
    });
    handle
        .join()
        .map_err(|_| BenchError::Run("the generator thread panicked".into()))?
}

pub(super) fn pin_this_thread(cpu: usize) {
    // Best effort: on a one-core machine the set would be refused and the run goes on.
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET and sched_setaffinity take it by pointer.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The IPv4 + UDP header and payload of one datagram; lengths filled, ports and checksums 0
/// (the kernel fills the IPv4 checksum on a raw socket; UDP's is optional over IPv4, RFC 768).
pub fn build_datagram(src: Ipv4Addr, dst: Ipv4Addr, payload_len: usize) -> Vec<u8> {
    let total = 20 + 8 + payload_len;
    let mut p = vec![0x5a_u8; total];
    p[..28].fill(0);
    p[0] = 0x45; // version 4, IHL 5 (RFC 791 section 3.1)
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64; // TTL
    p[9] = libc::IPPROTO_UDP as u8;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p[24..26].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    p
}

pub(super) fn set_ports(datagram: &mut [u8], (src, dst): (u16, u16)) {
    datagram[20..22].copy_from_slice(&src.to_be_bytes());
    datagram[22..24].copy_from_slice(&dst.to_be_bytes());
}

pub(super) fn send_raw(flood: &Flood) -> Result<SendCount, BenchError> {
    let payload =
        lab::udp::payload_len(flood.frame_size).map_err(|e| BenchError::Run(e.to_string()))?;
    // payload_len bounds the frame to 1518 bytes, so a datagram is at most 1500.
    if !(1..=lab::udp::MAX_BATCH).contains(&flood.batch) {
        return Err(BenchError::Invalid {
            field: "batch",
            value: flood.batch.to_string(),
            reason: format!("must be between 1 and {}", lab::udp::MAX_BATCH),
        });
    }
    // SAFETY: plain socket(2); the descriptor is owned from here on.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    if fd < 0 {
        return Err(io_err("raw socket")(std::io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let timeout = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: setsockopt with a pointer to a live timeval and its size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &timeout as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(flood.dst).to_be(),
        },
        sin_zero: [0; 8],
    };
    // All buffers, iovecs and headers are allocated here, once.
    let mut datagrams: Vec<Vec<u8>> = (0..flood.batch)
        .map(|_| build_datagram(flood.src, flood.dst, payload))
        .collect();
    let mut iovs: Vec<libc::iovec> = datagrams
        .iter_mut()
        .map(|d| libc::iovec {
            iov_base: d.as_mut_ptr() as *mut libc::c_void,
            iov_len: d.len(),
        })
        .collect();
    // SAFETY: all-zeroes is a valid empty mmsghdr.
    let mut messages: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; flood.batch];
    for (m, iov) in messages.iter_mut().zip(iovs.iter_mut()) {
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
        m.msg_hdr.msg_name = &addr as *const libc::sockaddr_in as *mut libc::c_void;
        m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    }

    let mut count = SendCount::default();
    let started = Instant::now();
    while started.elapsed() < flood.duration && count.sent < flood.max_packets {
        let n = (flood.max_packets - count.sent).min(flood.batch as u64) as usize;
        for (k, d) in datagrams[..n].iter_mut().enumerate() {
            let (src, dst) = flow_ports(count.sent + k as u64, flood.flows, flood.base_port);
            set_ports(
                d,
                if flood.reverse {
                    (dst, src)
                } else {
                    (src, dst)
                },
            );
        }
        // SAFETY: `messages[..n]` point at live iovecs, buffers and `addr`, all outliving the call.
        let sent = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                messages.as_mut_ptr(),
                n as libc::c_uint,
                0,
            )
        };
        if sent >= 0 {
            count.sent += sent as u64;
            continue;
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::ENOBUFS | libc::EAGAIN) => count.refused_batches += 1,
            _ => return Err(io_err("sendmmsg")(err)),
        }
    }
    count.secs = started.elapsed().as_secs_f64();
    Ok(count)
}

/// Packets `eth0` of namespace `netns` has received.
pub fn rx_packets(netns: &str) -> Result<u64, BenchError> {
    let out = cmd::run(
        &["ip", "-n", netns, "-s", "-j", "link", "show", "dev", "eth0"],
        Duration::from_secs(5),
    )?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| BenchError::Run(format!("ip -s -j link in {netns}: {e}")))?;
    v[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .ok_or_else(|| BenchError::Run(format!("no rx packet count for eth0 in {netns}: {v}")))
}
