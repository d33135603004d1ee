//! The worker's loop: port commands, then the hot ports, a few cold ones, the other workers'
//! handoffs, flow expiry, the slow path's injections and the flushes; counters published
//! (with the sockets' own counts, read now and then);
//! and, when a loop found nothing to do, a sleep (by [`RxMode`]).

use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::conntrack::persist::{FlowFile, SavedFlow};
use crate::conntrack::{FlowTable, Millis};
use crate::counters::PipelineCounters;
use crate::handoff::HandoffLinks;
use crate::offload::Segmenter;
use crate::pipeline::Policing;
use crate::policy::PolicyState;
use crate::port::Port;

use super::coalesce::Coalescing;
use super::commands::{install, PortCommandReceiver};
use super::flow_owner::nat_slice;
use super::schedule::PortSchedule;
use super::service::{inject, service_port, take_handoffs, Io};
use super::sleep::Sleeper;
use super::socket_stats::SocketStats;
use super::transmit::{TunnelScratch, TxDirty};
use super::{RxMode, WorkerSpec, ADAPTIVE_SPIN};

/// Flows the worker looks at for expiry per loop: spreads the cost over time.
const EXPIRE_BUDGET: usize = 64;
/// How long an interrupt-mode worker sleeps at most, so that `stop` is noticed.
const IDLE_SLEEP: Duration = Duration::from_millis(100);
/// Counters are published at least this often, even when idle.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

pub(super) fn run(
    spec: WorkerSpec,
    commands: Option<PortCommandReceiver>,
    mut links: Option<HandoffLinks>,
) {
    let WorkerSpec {
        name,
        mode,
        core,
        ports: initial_ports,
        tables,
        ip_sets,
        flows,
        flow_file,
        punt,
        counters: shared,
        stop,
    } = spec;
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            tracing::warn!(worker = %name, core = id, "cannot pin worker to core");
        }
    }
    tracing::info!(worker = %name, ?mode, ports = initial_ports.len(), "fastpath worker started");
    let mut ports: Vec<Option<Port>> = Vec::new();
    for port in initial_ports {
        let at = usize::from(port.id());
        install(&mut ports, at, port);
    }

    // The epoll set, schedule and dirty list are resized only when the ports change, never
    // per packet.
    let extra_fds: Vec<RawFd> = std::iter::once(punt.wake_fd())
        .chain(commands.as_ref().map(PortCommandReceiver::wake_fd))
        .chain(links.as_ref().map(HandoffLinks::wake_fd))
        .collect();
    let mut sleeper = Sleeper::new(&ports, &extra_fds);
    let mut schedule = PortSchedule::default();
    let mut dirty = TxDirty::default();
    let mut socket_stats = SocketStats::new();
    schedule.resize(&ports);
    dirty.resize(ports.len());
    socket_stats.resize(&ports);

    let mut counters = PipelineCounters::default();
    // Where encapsulated frames are assembled before the TX copy; allocated once, here.
    let mut tunnel = TunnelScratch::new();
    // Where GSO frames are cut into packets for ports that take no offload metadata.
    let mut segmenter = Segmenter::new();
    // Where a batch's segments of one flow are joined for a TAP port.
    let mut coalescing = Coalescing::new();
    let mut table = FlowTable::new(flows);
    if let Some((file, saved)) = flow_file {
        restore(&name, &mut table, file, &saved);
    }
    let mut policy = match &links {
        Some(l) => PolicyState::with_nat_ports(table, nat_slice(l.out.worker, l.out.workers)),
        None => PolicyState::new(table),
    };
    // Restored flows got their deadlines at time 0 of this clock.
    let clock = Instant::now();
    let mut last_publish = Instant::now();
    let mut last_work = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut work = 0;
        if let Some(commands) = &commands {
            let retire = |slot, port: &Port| socket_stats.retire(slot, port);
            if commands.apply(&name, &mut ports, retire) {
                sleeper = Sleeper::new(&ports, &extra_fds);
                schedule.resize(&ports);
                dirty.resize(ports.len());
                socket_stats.resize(&ports);
                work += 1;
            }
        }
        policy.now = clock.elapsed().as_millis() as Millis;
        policy.now_ns = crate::qos::now_ns();
        let sets = ip_sets.load();
        let mut io = Io {
            tables: &tables,
            punt: &punt,
            tunnel: &mut tunnel,
            segmenter: &mut segmenter,
            coalescing: &mut coalescing,
            counters: &mut counters,
            dirty: &mut dirty,
        };
        let mut policing = Policing {
            sets: &sets,
            state: &mut policy,
        };
        // Hot ports every loop, then a few cold ones.
        let mut k = 0;
        while let Some(slot) = schedule.hot(k) {
            let handoff = links.as_mut().map(|l| &mut l.out);
            let n = service_port(&mut ports, slot, &mut io, handoff, &mut policing);
            work += n;
            if schedule.keep_hot(k, n) {
                k += 1;
            }
        }
        for _ in 0..schedule.sweep_len() {
            let Some(slot) = schedule.next_cold() else {
                break;
            };
            let handoff = links.as_mut().map(|l| &mut l.out);
            let n = service_port(&mut ports, slot, &mut io, handoff, &mut policing);
            if n > 0 {
                schedule.promote(slot);
                work += n;
            }
        }
        if let Some(links) = links.as_mut() {
            work += take_handoffs(&mut ports, links, &mut io, &mut policing);
            if mode != RxMode::Poll {
                links.out.wake_peers();
            }
        }
        if let Some(flows) = policing.state.flows.as_mut() {
            flows.expire(policing.state.now, EXPIRE_BUDGET);
        }
        work += inject(&mut ports, &mut io, links.as_mut().map(|l| &mut l.out));
        // Frames the kernel could not take in the batch's flush go out now; until they have,
        // the worker does not go to sleep.
        if !dirty.is_empty() {
            dirty.flush(&mut ports);
            work += 1;
        }

        let now = Instant::now();
        if let Some(socket) = socket_stats.poll(&ports, now) {
            counters.socket = socket;
        }
        if work > 0 || now.duration_since(last_publish) >= PUBLISH_EVERY {
            shared.publish(&counters);
            if let Some(links) = &links {
                links.out.publish();
            }
            last_publish = now;
        }
        if work > 0 {
            if mode == RxMode::Adaptive {
                last_work = now;
            }
            continue;
        }
        let sleep = match mode {
            RxMode::Poll => false,
            RxMode::Interrupt => true,
            RxMode::Adaptive => last_work.elapsed() >= ADAPTIVE_SPIN,
        };
        if sleep {
            // The ports that woke us are hot from now on: no sweep needed to find them.
            sleeper.wait(IDLE_SLEEP, |slot| schedule.promote(slot));
        } else {
            std::hint::spin_loop();
        }
    }
    counters.socket = socket_stats.read_all(&ports);
    shared.publish(&counters);
    if let Some(links) = &links {
        links.out.publish();
    }
    tracing::info!(worker = %name, "fastpath worker stopped");
}

/// Makes `table` keep its flows in `file` and puts back the flows a previous process saved
/// there, before the first packet (so that no packet of theirs meets an empty table).
fn restore(name: &str, table: &mut FlowTable, file: FlowFile, saved: &[SavedFlow]) {
    let path = file.path().display().to_string();
    table.keep_in(file);
    let mut refused = 0usize;
    for flow in saved {
        if table.restore(flow, 0).is_err() {
            refused += 1;
        }
    }
    tracing::info!(worker = %name, file = %path, restored = saved.len() - refused, refused,
        "flows of the previous process restored");
}
