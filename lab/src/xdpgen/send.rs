//! The generator: a TX-only AF_XDP socket, sending flat out or at a rate.

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use xsk_rs::config::{BindFlags, FrameSize, LibxdpFlags, QueueSize, SocketConfig, UmemConfig};
use xsk_rs::{FrameDesc, Socket, Umem};

use super::frame::{monotonic_ns, FrameSpec, FrameTemplate};
use super::neigh::{format_mac, interface_ipv4, interface_mac, resolve_next_hop};
use super::{invalid, XdpGenError, MAX_BATCH, SEND_FRAMES, SOURCE_PORT, UMEM_FRAME_SIZE};
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
