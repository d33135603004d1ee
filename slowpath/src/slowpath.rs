//! The slow path's state machine: punted frames and timer ticks in, frames to inject out.
//!
//! Nothing here touches a socket or a clock: the caller passes the current tables, the time
//! and a [`FrameSink`], so every behaviour is tested with synthetic frames. The thread in
//! `thread.rs` only feeds it.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastpath::frame_sizes::FRAME_BUF_SIZE;
use fastpath::pipeline::{encapsulate_ipip, forward_rewrite};
use fastpath::tables::Encap;
use fastpath::wire::{ethernet, Ipv4Packet};
use fastpath::{MacAddr, NextHopKind, PortId, PortInfo, PortKind, PuntReason, Tables};

use crate::arp;
use crate::config::{SlowpathConfig, ARP_ATTEMPTS};
use crate::counters::SlowpathCounters;
use crate::hold_queue::{HoldOutcome, HoldQueue, NeighborKey};
use crate::icmp::{self, IcmpError};
use crate::kernel_neighbors::KernelNeighbors;
use crate::neighbors::{Learned, NeighborTable};
use crate::rate_limit::TokenBucket;

/// Where the slow path sends frames: the punt path's inject side, or a test's vector.
pub trait FrameSink {
    /// Sends `frame` out of `port`; false when it could not be queued.
    fn send(&mut self, port: PortId, frame: &[u8]) -> bool;
}

impl FrameSink for Vec<(PortId, Vec<u8>)> {
    fn send(&mut self, port: PortId, frame: &[u8]) -> bool {
        self.push((port, frame.to_vec()));
        true
    }
}

impl FrameSink for fastpath::punt::SlowpathEnd {
    fn send(&mut self, port: PortId, frame: &[u8]) -> bool {
        self.inject(port, frame)
    }
}

/// The IPv4 destination of an Ethernet frame, if it is a valid IPv4 frame.
fn frame_destination(frame: &[u8]) -> Option<Ipv4Addr> {
    let eth = ethernet::Packet::new_checked(frame).ok()?;
    if eth.ethertype() != ethernet::ethertype::IPV4 {
        return None;
    }
    Some(Ipv4Packet::new_checked(eth.payload()).ok()?.dst_addr())
}

/// How often uplink neighbours being resolved are looked up in the kernel's table: often
/// enough that the first packets to a new gateway wait milliseconds, not a whole retry.
const KERNEL_POLL: Duration = Duration::from_millis(20);

/// How often resolved uplink neighbours are compared with the kernel's table. The kernel
/// keeps them current (our forwarded traffic bypasses it, so it may also forget them, in which
/// case we ask it to resolve them again); a gateway that changes its MAC is followed within
/// this time.
const UPLINK_REFRESH: Duration = Duration::from_secs(10);

/// A neighbour being resolved.
#[derive(Clone, Copy, Debug)]
struct Resolution {
    /// Requests (or kernel solicitations) sent so far.
    attempts: u32,
    next_attempt: Instant,
}

pub struct Slowpath<K: KernelNeighbors> {
    config: SlowpathConfig,
    counters: Arc<SlowpathCounters>,
    neighbors: NeighborTable,
    holds: HoldQueue,
    resolutions: HashMap<NeighborKey, Resolution>,
    icmp_budget: TokenBucket,
    kernel: K,
    next_kernel_poll: Option<Instant>,
    next_uplink_refresh: Option<Instant>,
    /// Frames are built here before they are handed to the sink.
    scratch: Box<[u8; FRAME_BUF_SIZE]>,
    /// Held frames for a tunnel are wrapped in IPIP here.
    tunnel_scratch: Box<[u8; FRAME_BUF_SIZE]>,
    /// Reused list of resolutions due at a tick (bounded by the number of resolutions).
    due: Vec<NeighborKey>,
}

impl<K: KernelNeighbors> Slowpath<K> {
    pub fn new(config: SlowpathConfig, counters: Arc<SlowpathCounters>, kernel: K) -> Slowpath<K> {
        Slowpath {
            neighbors: NeighborTable::new(config.max_neighbors),
            holds: HoldQueue::new(config.hold_per_neighbor, config.hold_total),
            resolutions: HashMap::new(),
            icmp_budget: TokenBucket::new(config.icmp_rate_per_sec, config.icmp_burst),
            kernel,
            next_kernel_poll: None,
            next_uplink_refresh: None,
            scratch: Box::new([0u8; FRAME_BUF_SIZE]),
            tunnel_scratch: Box::new([0u8; FRAME_BUF_SIZE]),
            due: Vec::new(),
            counters,
            config,
        }
    }

    /// The kernel neighbour source (tests inspect their fake through this).
    pub fn kernel_mut(&mut self) -> &mut K {
        &mut self.kernel
    }

    pub fn neighbors(&self) -> &NeighborTable {
        &self.neighbors
    }

    /// Frames held while their neighbours resolve.
    pub fn held(&self) -> usize {
        self.holds.len()
    }

    /// Neighbours being resolved.
    pub fn resolving(&self) -> usize {
        self.resolutions.len()
    }

    /// When [`Slowpath::tick`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let retry = self.resolutions.values().map(|r| r.next_attempt).min();
        match (retry, self.next_kernel_poll) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Control published a new snapshot: give its next hops the MACs already known.
    pub fn tables_changed(&mut self, tables: &Tables) {
        let set = self.neighbors.apply_to(tables);
        tracing::debug!(next_hops = set, "re-applied known neighbours to new tables");
    }

    /// Handles one punted frame that arrived on `port`.
    pub fn handle(
        &mut self,
        tables: &Tables,
        port: PortId,
        reason: PuntReason,
        frame: &[u8],
        now: Instant,
        out: &mut impl FrameSink,
    ) {
        SlowpathCounters::inc(&self.counters.frames_received);
        match reason {
            PuntReason::Arp => self.on_arp(tables, port, frame, now, out),
            PuntReason::TtlExpired => {
                self.send_icmp_error(tables, port, IcmpError::TimeExceeded, frame, now, out)
            }
            PuntReason::NoRoute => {
                self.send_icmp_error(tables, port, IcmpError::NetUnreachable, frame, now, out)
            }
            PuntReason::Unresolved(nh) => self.on_unresolved(tables, nh, port, frame, now, out),
            PuntReason::Local => self.on_local(tables, port, frame, out),
            PuntReason::FragmentationNeeded { mtu } => self.send_icmp_error(
                tables,
                port,
                IcmpError::FragmentationNeeded { mtu },
                frame,
                now,
                out,
            ),
        }
    }

    /// Retries and gives up resolutions that are due, and polls the kernel for uplink ones.
    pub fn tick(&mut self, tables: &Tables, now: Instant, out: &mut impl FrameSink) {
        if self.next_kernel_poll.is_some_and(|t| now >= t) {
            self.poll_kernel(tables, now, out);
        }
        match self.next_uplink_refresh {
            None => self.next_uplink_refresh = Some(now + UPLINK_REFRESH),
            Some(t) if now >= t => {
                self.refresh_uplink_neighbors(tables, now, out);
                self.next_uplink_refresh = Some(now + UPLINK_REFRESH);
            }
            Some(_) => {}
        }
        self.due.clear();
        self.due.extend(
            self.resolutions
                .iter()
                .filter(|(_, r)| now >= r.next_attempt)
                .map(|(k, _)| *k),
        );
        for i in 0..self.due.len() {
            let key = self.due[i];
            let Some(resolution) = self.resolutions.get(&key).copied() else {
                continue;
            };
            if resolution.attempts >= ARP_ATTEMPTS {
                self.give_up(tables, key, now, out);
            } else {
                self.solicit(tables, key, out);
                self.resolutions.insert(
                    key,
                    Resolution {
                        attempts: resolution.attempts + 1,
                        next_attempt: now + self.config.arp_retry,
                    },
                );
            }
        }
    }

    fn on_arp(
        &mut self,
        tables: &Tables,
        port_id: PortId,
        frame: &[u8],
        now: Instant,
        out: &mut impl FrameSink,
    ) {
        let (Some(port), Some(received)) =
            (tables.ports.get(usize::from(port_id)), arp::parse(frame))
        else {
            SlowpathCounters::inc(&self.counters.arp_ignored);
            return;
        };
        if let Some((ip, mac)) = arp::sender_binding(&received) {
            self.learn(tables, port_id, ip, mac, now, out);
        }
        if port.kind != PortKind::Workload || !arp::should_proxy(&received) {
            // The uplink's ARP belongs to the kernel; replies and probes want no answer.
            if received.arp.operation == fastpath::wire::ArpOperation::Request {
                SlowpathCounters::inc(&self.counters.arp_ignored);
            }
            return;
        }
        let Some(len) = arp::emit_proxy_reply(port, &received, &mut self.scratch[..]) else {
            return;
        };
        if send(out, &self.counters, port_id, &self.scratch[..len]) {
            SlowpathCounters::inc(&self.counters.arp_requests_answered);
        }
    }

    /// Records a neighbour, fills the next hops that lead to it and sends what waited for it.
    fn learn(
        &mut self,
        tables: &Tables,
        port: PortId,
        ip: Ipv4Addr,
        mac: MacAddr,
        now: Instant,
        out: &mut impl FrameSink,
    ) {
        if self.neighbors.learn(port, ip, mac, now) != Learned::Refreshed {
            SlowpathCounters::inc(&self.counters.arp_learned);
            tracing::debug!(port, %ip, %mac, "learned neighbour");
        }
        for nh in tables.next_hops_to(port, ip) {
            if nh.mac() != Some(mac) {
                nh.set_mac(Some(mac));
            }
        }
        if self.resolutions.remove(&(port, ip)).is_some() {
            self.release_held(tables, (port, ip), mac, out);
        }
    }

    fn release_held(
        &mut self,
        tables: &Tables,
        key: NeighborKey,
        mac: MacAddr,
        out: &mut impl FrameSink,
    ) {
        let Some(port) = tables.ports.get(usize::from(key.0)) else {
            let n = self.holds.release(key, |_, _| {});
            add(&self.counters.held_dropped, n);
            return;
        };
        let counters = &self.counters;
        let tunnel_scratch = &mut self.tunnel_scratch;
        self.holds.release(key, |_ingress, frame| {
            if forward_rewrite(frame, port.mac, mac) {
                if send_forwarded(out, counters, tables, key.0, frame, &mut tunnel_scratch[..]) {
                    SlowpathCounters::inc(&counters.held_forwarded);
                }
            } else {
                SlowpathCounters::inc(&counters.held_dropped);
            }
        });
    }

    fn on_unresolved(
        &mut self,
        tables: &Tables,
        nh_id: fastpath::NextHopId,
        ingress: PortId,
        frame: &[u8],
        now: Instant,
        out: &mut impl FrameSink,
    ) {
        let Some(nh) = tables
            .next_hops
            .get(nh_id as usize)
            .filter(|nh| nh.kind == NextHopKind::Neighbor)
        else {
            SlowpathCounters::inc(&self.counters.malformed);
            return;
        };
        let Some(port) = tables.ports.get(usize::from(nh.port)) else {
            SlowpathCounters::inc(&self.counters.malformed);
            return;
        };
        // A connected route's neighbour is the packet's own destination.
        let neighbor = if nh.connected {
            match frame_destination(frame) {
                Some(dst) => dst,
                None => {
                    SlowpathCounters::inc(&self.counters.malformed);
                    return;
                }
            }
        } else {
            nh.ip
        };
        let key = (nh.port, neighbor);
        // Already known (the snapshot was published before we learned it, or the frame was
        // punted before the MAC was set): fill the next hop and send the frame on.
        let known = match self.neighbors.get(key.0, key.1) {
            Some(n) => Some(n.mac),
            None if port.kind == PortKind::Uplink => self.kernel_lookup(port, key.1),
            None => None,
        };
        if let Some(mac) = known {
            self.learn(tables, key.0, key.1, mac, now, out);
            let len = frame.len().min(FRAME_BUF_SIZE);
            self.scratch[..len].copy_from_slice(&frame[..len]);
            if len == frame.len() && forward_rewrite(&mut self.scratch[..len], port.mac, mac) {
                if send_forwarded(
                    out,
                    &self.counters,
                    tables,
                    key.0,
                    &self.scratch[..len],
                    &mut self.tunnel_scratch[..],
                ) {
                    SlowpathCounters::inc(&self.counters.held_forwarded);
                }
            } else {
                SlowpathCounters::inc(&self.counters.held_dropped);
            }
            return;
        }
        let new_resolution = !self.resolutions.contains_key(&key);
        // Every held frame needs a resolution to release it; refuse rather than strand it.
        if new_resolution && self.resolutions.len() >= self.config.hold_total.max(1) {
            SlowpathCounters::inc(&self.counters.held_dropped);
            return;
        }
        match self.holds.hold(key, ingress, frame) {
            HoldOutcome::Held => SlowpathCounters::inc(&self.counters.held),
            HoldOutcome::HeldDroppedOldest => {
                SlowpathCounters::inc(&self.counters.held);
                SlowpathCounters::inc(&self.counters.held_dropped);
            }
            HoldOutcome::TotalFull | HoldOutcome::TooLarge => {
                SlowpathCounters::inc(&self.counters.held_dropped)
            }
        }
        if new_resolution {
            self.solicit(tables, key, out);
            self.resolutions.insert(
                key,
                Resolution {
                    attempts: 1,
                    next_attempt: now + self.config.arp_retry,
                },
            );
            if port.kind == PortKind::Uplink && self.next_kernel_poll.is_none() {
                self.next_kernel_poll = Some(now + KERNEL_POLL.min(self.config.arp_retry));
            }
        }
    }

    /// Asks for `key`'s MAC: an ARP request on workload ports, the kernel on the uplink.
    fn solicit(&mut self, tables: &Tables, key: NeighborKey, out: &mut impl FrameSink) {
        let Some(port) = tables.ports.get(usize::from(key.0)) else {
            return;
        };
        match port.kind {
            PortKind::Workload => {
                let Some(len) = arp::emit_request(port, key.1, &mut self.scratch[..]) else {
                    return;
                };
                if send(out, &self.counters, key.0, &self.scratch[..len]) {
                    SlowpathCounters::inc(&self.counters.arp_requests_sent);
                }
            }
            // Nothing is routed to the host port: the kernel's end takes what it is sent.
            PortKind::Host => {}
            PortKind::Uplink => {
                SlowpathCounters::inc(&self.counters.kernel_resolutions_requested);
                if let Err(e) = self.kernel.solicit(port, key.1) {
                    tracing::warn!(port = %port.name, ip = %key.1, error = %e, "kernel neighbour solicitation failed");
                }
            }
        }
    }

    fn kernel_lookup(&mut self, port: &PortInfo, ip: Ipv4Addr) -> Option<MacAddr> {
        match self.kernel.lookup(port, ip) {
            Ok(mac) => mac,
            Err(e) => {
                tracing::warn!(port = %port.name, %ip, error = %e, "reading the kernel neighbour table failed");
                None
            }
        }
    }

    fn poll_kernel(&mut self, tables: &Tables, now: Instant, out: &mut impl FrameSink) {
        self.due.clear();
        self.due.extend(self.resolutions.keys().copied());
        let mut uplink_pending = false;
        for i in 0..self.due.len() {
            let key = self.due[i];
            let Some(port) = tables
                .ports
                .get(usize::from(key.0))
                .filter(|p| p.kind == PortKind::Uplink)
            else {
                continue;
            };
            match self.kernel_lookup(port, key.1) {
                Some(mac) => self.learn(tables, key.0, key.1, mac, now, out),
                None => uplink_pending = true,
            }
        }
        self.next_kernel_poll =
            uplink_pending.then(|| now + KERNEL_POLL.min(self.config.arp_retry));
    }

    fn refresh_uplink_neighbors(
        &mut self,
        tables: &Tables,
        now: Instant,
        out: &mut impl FrameSink,
    ) {
        self.due.clear();
        let on_uplink = |port: PortId| {
            tables
                .ports
                .get(usize::from(port))
                .is_some_and(|p| p.kind == PortKind::Uplink)
        };
        self.due.extend(
            self.neighbors
                .iter()
                .map(|(key, _)| key)
                .filter(|(port, _)| on_uplink(*port)),
        );
        for i in 0..self.due.len() {
            let (port_id, ip) = self.due[i];
            let Some(port) = tables.ports.get(usize::from(port_id)) else {
                continue;
            };
            match self.kernel_lookup(port, ip) {
                Some(mac) => self.learn(tables, port_id, ip, mac, now, out),
                // Keep using the MAC we have while the kernel resolves it again.
                None => self.solicit(tables, (port_id, ip), out),
            }
        }
    }

    /// The neighbour never answered: drop what waited for it and tell each sender (RFC 1812
    /// 4.3.3.1: host unreachable when the router cannot resolve the next hop).
    fn give_up(
        &mut self,
        tables: &Tables,
        key: NeighborKey,
        now: Instant,
        out: &mut impl FrameSink,
    ) {
        self.resolutions.remove(&key);
        SlowpathCounters::inc(&self.counters.resolution_failed);
        tracing::debug!(port = key.0, ip = %key.1, "neighbour did not resolve; dropping held frames");
        // Frames are copied out first: sending an ICMP error needs the scratch buffer and the
        // rate limiter, which the hold queue's borrow would otherwise block.
        let mut errors = IcmpErrorSender {
            config: &self.config,
            counters: &self.counters,
            budget: &mut self.icmp_budget,
            scratch: &mut self.scratch,
        };
        let n = self.holds.release(key, |ingress, frame| {
            errors.send(tables, ingress, IcmpError::HostUnreachable, frame, now, out);
        });
        add(&self.counters.held_dropped, n);
    }

    fn send_icmp_error(
        &mut self,
        tables: &Tables,
        ingress: PortId,
        kind: IcmpError,
        frame: &[u8],
        now: Instant,
        out: &mut impl FrameSink,
    ) {
        IcmpErrorSender {
            config: &self.config,
            counters: &self.counters,
            budget: &mut self.icmp_budget,
            scratch: &mut self.scratch,
        }
        .send(tables, ingress, kind, frame, now, out);
    }

    fn on_local(
        &mut self,
        tables: &Tables,
        port_id: PortId,
        frame: &[u8],
        out: &mut impl FrameSink,
    ) {
        let Some(port) = tables.ports.get(usize::from(port_id)) else {
            SlowpathCounters::inc(&self.counters.local_dropped);
            return;
        };
        let node_ip = self.config.node_ip;
        let is_ours = |ip: Ipv4Addr| Some(ip) == node_ip || tables.ports.iter().any(|p| p.ip == ip);
        match icmp::emit_echo_reply(port, frame, is_ours, &mut self.scratch[..]) {
            Some(len) => {
                if send(out, &self.counters, port_id, &self.scratch[..len]) {
                    SlowpathCounters::inc(&self.counters.icmp_echo_replies_sent);
                }
            }
            None => SlowpathCounters::inc(&self.counters.local_dropped),
        }
    }
}

/// The parts of the slow path an ICMP error needs, borrowed separately from the hold queue.
struct IcmpErrorSender<'a> {
    config: &'a SlowpathConfig,
    counters: &'a SlowpathCounters,
    budget: &'a mut TokenBucket,
    scratch: &'a mut [u8; FRAME_BUF_SIZE],
}

impl IcmpErrorSender<'_> {
    fn send(
        &mut self,
        tables: &Tables,
        ingress: PortId,
        kind: IcmpError,
        frame: &[u8],
        now: Instant,
        out: &mut impl FrameSink,
    ) {
        let Some(port) = tables.ports.get(usize::from(ingress)) else {
            SlowpathCounters::inc(&self.counters.malformed);
            return;
        };
        // Check what may be answered before taking a token, so that suppressed packets do not
        // use up the budget.
        if let Err(reason) = icmp::may_send_error_about(frame) {
            tracing::trace!(?reason, "no ICMP error");
            SlowpathCounters::inc(&self.counters.icmp_error_suppressed);
            return;
        }
        if !self.budget.try_take(now) {
            SlowpathCounters::inc(&self.counters.icmp_rate_limited);
            return;
        }
        let source = self.config.node_ip.unwrap_or(port.ip);
        let Some(len) = icmp::emit_error(kind, port, source, frame, &mut self.scratch[..]) else {
            SlowpathCounters::inc(&self.counters.malformed);
            return;
        };
        if send(out, self.counters, ingress, &self.scratch[..len]) {
            match kind {
                IcmpError::TimeExceeded => {
                    SlowpathCounters::inc(&self.counters.icmp_time_exceeded_sent)
                }
                IcmpError::NetUnreachable
                | IcmpError::HostUnreachable
                | IcmpError::FragmentationNeeded { .. } => {
                    SlowpathCounters::inc(&self.counters.icmp_unreachable_sent)
                }
            }
        }
    }
}

/// Sends a held frame the pipeline would have forwarded (already rewritten by
/// `forward_rewrite`) out of `port`, wrapped in IPIP first when the route to its destination
/// is a tunnel, as the worker would have done (identification 0: held frames are few).
fn send_forwarded(
    out: &mut impl FrameSink,
    counters: &SlowpathCounters,
    tables: &Tables,
    port: PortId,
    frame: &[u8],
    tunnel_scratch: &mut [u8],
) -> bool {
    let Some((local, remote)) = tunnel_of(tables, frame) else {
        return send(out, counters, port, frame);
    };
    match encapsulate_ipip(frame, local, remote, 0, tunnel_scratch) {
        Some(len) => send(out, counters, port, &tunnel_scratch[..len]),
        None => false,
    }
}

/// The IPIP tunnel (local, remote) the FIB sends `frame`'s destination into, if any.
fn tunnel_of(tables: &Tables, frame: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let ip = Ipv4Packet::new_checked(frame.get(ethernet::HEADER_LEN..)?).ok()?;
    let nh = tables.fib.lookup(u32::from(ip.dst_addr()))?;
    match tables.next_hops.get(nh as usize)?.encap {
        Encap::Ipip { local, remote } => Some((local, remote)),
        Encap::None => None,
    }
}

fn send(out: &mut impl FrameSink, counters: &SlowpathCounters, port: PortId, frame: &[u8]) -> bool {
    let sent = out.send(port, frame);
    if !sent {
        SlowpathCounters::inc(&counters.inject_failed);
    }
    sent
}

fn add(counter: &std::sync::atomic::AtomicU64, n: usize) {
    use std::sync::atomic::Ordering::Relaxed;
    counter.store(counter.load(Relaxed) + n as u64, Relaxed);
}

#[cfg(test)]
mod tests;
