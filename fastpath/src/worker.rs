//! Fastpath workers: threads that move frames between AF_XDP ports and the pipeline.
//!
//! A worker owns its ports (each a socket on one interface queue). Per port and batch it loads
//! the current table snapshot once, runs every frame through `pipeline::process_frame`, and
//! acts on the verdict: copy to the egress port's TX ring, copy to the slow path, or drop. It
//! also sends the frames the slow path injects. Nothing is allocated or locked per packet.
//!
//! Counting keeps `rx_packets == forwarded + punted + drops`: the pipeline counts its verdicts,
//! and the worker corrects them when acting on a verdict fails (TX full, punt queue full).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::counters::{DropReason, PipelineCounters, WorkerCounters};
use crate::pipeline::{process_frame, PuntReason, Verdict};
use crate::port::Port;
use crate::punt::WorkerEnd;
use crate::tables::{PortId, Tables};

/// How a worker waits for frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxMode {
    /// Busy-poll the rings: lowest latency, one core per worker at 100%.
    Poll,
    /// Sleep in poll(2) when a full pass found nothing, so several workers (or a lab of
    /// several nodes) can share cores.
    Interrupt,
}

impl std::str::FromStr for RxMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "poll" => Ok(RxMode::Poll),
            "interrupt" => Ok(RxMode::Interrupt),
            other => Err(format!(
                "rx mode {other:?} is neither \"poll\" nor \"interrupt\""
            )),
        }
    }
}

/// Everything a worker thread owns.
pub struct WorkerSpec {
    pub name: String,
    pub mode: RxMode,
    /// Core to pin the thread to.
    pub core: Option<usize>,
    /// The worker's ports; the index in this Vec is the `PortId` the pipeline uses.
    pub ports: Vec<Port>,
    pub tables: Arc<ArcSwap<Tables>>,
    pub punt: WorkerEnd,
    pub counters: Arc<WorkerCounters>,
    pub stop: Arc<AtomicBool>,
}

/// How long an interrupt-mode worker sleeps at most, so that `stop` is noticed.
const IDLE_SLEEP: Duration = Duration::from_millis(100);
/// Counters are published at least this often, even when idle.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Starts the worker thread.
pub fn spawn(spec: WorkerSpec) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(spec.name.clone())
        .spawn(move || run(spec))
}

fn run(spec: WorkerSpec) {
    let WorkerSpec {
        name,
        mode,
        core,
        mut ports,
        tables,
        punt,
        counters: shared,
        stop,
    } = spec;
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            tracing::warn!(worker = %name, core = id, "cannot pin worker to core");
        }
    }
    tracing::info!(worker = %name, ?mode, ports = ports.len(), "fastpath worker started");

    // Preallocated poll set: every port's socket, then the slow path's inject eventfd.
    let mut pollfds: Vec<libc::pollfd> = ports
        .iter()
        .map(|p| p.raw_fd())
        .chain(std::iter::once(punt.wake_fd()))
        .map(|fd: RawFd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();

    let mut counters = PipelineCounters::default();
    let mut last_publish = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut work = 0;
        for ingress in 0..ports.len() {
            work += service_port(&mut ports, ingress, &tables, &punt, &mut counters);
        }
        work += inject(&mut ports, &punt, &mut counters);
        // Frames the kernel could not take in the batch's flush go out now; until they have,
        // the worker does not go to sleep.
        for port in ports.iter_mut().filter(|p| p.tx_pending()) {
            port.flush();
            work += 1;
        }

        if work > 0 || last_publish.elapsed() >= PUBLISH_EVERY {
            shared.publish(&counters);
            last_publish = Instant::now();
        }
        if work == 0 {
            match mode {
                RxMode::Poll => std::hint::spin_loop(),
                RxMode::Interrupt => sleep_until_ready(&mut pollfds),
            }
        }
    }
    shared.publish(&counters);
    tracing::info!(worker = %name, "fastpath worker stopped");
}

/// Receives one batch on `ports[ingress]`, runs it through the pipeline and acts on the
/// verdicts; returns the number of frames received.
fn service_port(
    ports: &mut [Port],
    ingress: usize,
    tables: &ArcSwap<Tables>,
    punt: &WorkerEnd,
    counters: &mut PipelineCounters,
) -> usize {
    let n = ports[ingress].receive();
    if n == 0 {
        return 0;
    }
    let snapshot = tables.load();
    let ingress_id = ingress as PortId;
    for i in 0..n {
        let verdict = process_frame(
            ports[ingress].received_frame_mut(i),
            ingress_id,
            &snapshot,
            counters,
        );
        match verdict {
            Verdict::Forward(egress) => {
                if forward(ports, ingress, i, egress as usize) {
                    counters.tx_packets += 1;
                } else {
                    counters.forwarded = counters.forwarded.saturating_sub(1);
                    counters.drop(DropReason::TxFull);
                }
            }
            Verdict::Punt(reason) => {
                if !punt.punt(ingress_id, reason, ports[ingress].received_frame(i)) {
                    note_punt_failure(reason, counters);
                }
            }
            Verdict::Drop(_) => {}
        }
    }
    ports[ingress].release_received();
    for port in ports.iter_mut() {
        port.flush();
    }
    n
}

/// Copies received frame `i` of `ports[ingress]` to the TX ring of `ports[egress]`.
fn forward(ports: &mut [Port], ingress: usize, i: usize, egress: usize) -> bool {
    if egress == ingress {
        return ports[ingress].transmit_received(i);
    }
    if egress >= ports.len() {
        // The tables name a port this worker does not have: nothing to send it on.
        return false;
    }
    let (from, to) = if ingress < egress {
        let (a, b) = ports.split_at_mut(egress);
        (&a[ingress], &mut b[0])
    } else {
        let (a, b) = ports.split_at_mut(ingress);
        (&b[0], &mut a[egress])
    };
    to.transmit(from.received_frame(i))
}

/// Keeps `rx == forwarded + punted + drops` when the slow path cannot take a frame.
fn note_punt_failure(reason: PuntReason, counters: &mut PipelineCounters) {
    match reason {
        // The pipeline counted these as punted: they become drops.
        PuntReason::Arp | PuntReason::Local | PuntReason::Unresolved(_) => {
            counters.punted = counters.punted.saturating_sub(1);
            counters.drop(DropReason::PuntQueueFull);
        }
        // The pipeline already counted these as drops (NoRoute, TtlExpired); only the ICMP
        // error the slow path would have sent is lost, and counting a second drop for the
        // same frame would break the sum.
        PuntReason::NoRoute | PuntReason::TtlExpired => {}
    }
}

/// Sends the frames the slow path injected; returns how many it handled.
fn inject(ports: &mut [Port], punt: &WorkerEnd, counters: &mut PipelineCounters) -> usize {
    let n = punt.drain_inject(|port, data| {
        let sent = ports
            .get_mut(port as usize)
            .is_some_and(|p| p.transmit(data));
        if sent {
            counters.injected += 1;
            counters.tx_packets += 1;
        } else {
            // Injected frames are not part of rx; a failed one is still a visible drop.
            counters.drop(DropReason::TxFull);
        }
    });
    if n > 0 {
        for port in ports.iter_mut() {
            port.flush();
        }
    }
    n
}

/// Sleeps until a socket has frames, the slow path injects, or IDLE_SLEEP passes.
fn sleep_until_ready(pollfds: &mut [libc::pollfd]) {
    for p in pollfds.iter_mut() {
        p.revents = 0;
    }
    // SAFETY: pollfds is a valid, initialised array of pollfd of the given length.
    let r = unsafe {
        libc::poll(
            pollfds.as_mut_ptr(),
            pollfds.len() as libc::nfds_t,
            IDLE_SLEEP.as_millis() as i32,
        )
    };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            // Never spin hot on a persistent error: fall back to a plain sleep.
            tracing::debug!(error = %e, "poll failed");
            std::thread::sleep(IDLE_SLEEP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_mode_parses_its_two_names_and_rejects_others() {
        assert_eq!("poll".parse::<RxMode>(), Ok(RxMode::Poll));
        assert_eq!("interrupt".parse::<RxMode>(), Ok(RxMode::Interrupt));
        assert!("busy".parse::<RxMode>().is_err());
    }

    #[test]
    fn failed_punts_turn_punted_frames_into_drops_and_leave_drops_alone() {
        let mut c = PipelineCounters {
            rx_packets: 3,
            punted: 2,
            ..Default::default()
        };
        c.drop(DropReason::NoRoute);
        note_punt_failure(PuntReason::Arp, &mut c);
        note_punt_failure(PuntReason::NoRoute, &mut c);
        assert_eq!(c.punted, 1);
        assert_eq!(c.dropped(DropReason::PuntQueueFull), 1);
        assert_eq!(c.rx_packets, c.forwarded + c.punted + c.total_drops());
    }
}
