//! The kernel's counts on the worker's AF_XDP sockets (`XDP_STATISTICS`) and TAPs (their queue
//! drops): frames lost before the pipeline saw them. Read with one syscall or two per port, a
//! few ports
//! per pass and no more often than [`READ_EVERY`], so that hundreds of idle ports add neither
//! a syscall per loop nor a long stall; a removed port's last reading is kept.

use std::time::{Duration, Instant};

use crate::counters::SocketCounters;
use crate::port::Port;

/// How often a pass reads sockets.
pub(super) const READ_EVERY: Duration = Duration::from_millis(100);
/// Sockets read per pass at most.
const SOCKETS_PER_PASS: usize = 16;

/// The last reading of every slot's socket, and what closed sockets had counted.
pub(super) struct SocketStats {
    /// Indexed like the worker's ports; a reading is cumulative for its socket.
    per_slot: Vec<SocketCounters>,
    retired: SocketCounters,
    cursor: usize,
    last_pass: Instant,
}

impl SocketStats {
    pub(super) fn new() -> SocketStats {
        SocketStats {
            per_slot: Vec::new(),
            retired: SocketCounters::default(),
            cursor: 0,
            last_pass: Instant::now(),
        }
    }

    /// Follows a change in the set of ports (only on a port command).
    pub(super) fn resize(&mut self, ports: &[Option<Port>]) {
        self.per_slot.resize(ports.len(), SocketCounters::default());
    }

    /// Takes the final reading of the socket of `slot`, about to be closed: its counts stay
    /// in the totals, and the slot starts from zero for the next socket.
    pub(super) fn retire(&mut self, slot: usize, port: &Port) {
        let last = read(port).unwrap_or_else(|| self.reading(slot));
        self.retired.add(&last);
        if let Some(reading) = self.per_slot.get_mut(slot) {
            *reading = SocketCounters::default();
        }
    }

    /// Reads the next few sockets when a pass is due; the totals when they may have changed.
    pub(super) fn poll(&mut self, ports: &[Option<Port>], now: Instant) -> Option<SocketCounters> {
        if now.duration_since(self.last_pass) < READ_EVERY || ports.is_empty() {
            return None;
        }
        self.last_pass = now;
        let len = ports.len().min(self.per_slot.len());
        for _ in 0..SOCKETS_PER_PASS.min(len) {
            self.cursor = (self.cursor + 1) % len;
            if let Some(reading) = ports[self.cursor].as_ref().and_then(read) {
                self.per_slot[self.cursor] = reading;
            }
        }
        Some(self.totals())
    }

    /// Reads every socket now (the worker is stopping); the totals.
    pub(super) fn read_all(&mut self, ports: &[Option<Port>]) -> SocketCounters {
        for (reading, port) in self.per_slot.iter_mut().zip(ports) {
            if let Some(now) = port.as_ref().and_then(read) {
                *reading = now;
            }
        }
        self.totals()
    }

    fn totals(&self) -> SocketCounters {
        let mut sum = self.retired;
        for reading in &self.per_slot {
            sum.add(reading);
        }
        sum
    }

    fn reading(&self, slot: usize) -> SocketCounters {
        self.per_slot.get(slot).copied().unwrap_or_default()
    }
}

fn read(port: &Port) -> Option<SocketCounters> {
    if let Port::Tap(tap) = port {
        return Some(SocketCounters {
            tap_queue_full: tap.queue_dropped().ok()?,
            ..SocketCounters::default()
        });
    }
    let s = port.statistics().ok()?;
    Some(SocketCounters {
        rx_dropped: s.rx_dropped(),
        rx_ring_full: s.rx_ring_full(),
        rx_invalid_descs: s.rx_invalid_descs(),
        rx_fill_ring_empty: s.rx_fill_ring_empty_descs(),
        tx_invalid_descs: s.tx_invalid_descs(),
        tx_ring_empty: s.tx_ring_empty_descs(),
        tap_queue_full: 0,
    })
}
