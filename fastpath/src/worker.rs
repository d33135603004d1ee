//! Fastpath workers: threads that move frames between AF_XDP ports and the pipeline.
//!
//! A worker owns its ports (each a socket on one interface queue). Per port and batch it loads
//! the current table snapshot once, runs every frame through `pipeline::process_frame`, and
//! acts on the verdict: copy to the egress port's TX ring, copy to the slow path, or drop. It
//! also sends the frames the slow path injects. Nothing is allocated or locked per packet.
//!
//! Counting keeps `rx_packets == forwarded + punted + drops`: the pipeline counts its verdicts,
//! and the worker corrects them when acting on a verdict fails (TX full, punt queue full).
//!
//! Ports come and go while the worker runs: control sends [`PortCommand`]s on a bounded channel
//! that the worker drains once per loop iteration (never per packet). Ports sit in a
//! `Vec<Option<Port>>` at their `PortId`, so an id stays valid for a port's whole life and the
//! tables never have to be renumbered. A frame the tables send to an empty slot (a port being
//! removed, whose route is already gone from the newest snapshot but not from the one this
//! batch loaded) is dropped and counted as `DropReason::TxFull`: there was nowhere to transmit
//! it.
//!
//! Hundreds of ports, most of them idle, must not make every packet slower. So a worker does
//! not look at every port on every loop: ports that had frames recently are *hot* and are
//! polled every loop; the others are *swept* a few per loop ([`PortSchedule`]), and a port the
//! sweep (or, when sleeping, epoll) finds busy becomes hot. After a batch only the ports that
//! were transmitted on are flushed ([`TxDirty`]). A sleeping worker waits in epoll(7), whose
//! cost does not grow with the ports registered, instead of poll(2) over all of them.
//!
//! Several workers ([`spawn_in_group`]) each serve one queue of the uplink and a share of the
//! other ports, and keep connection tracking right by handing frames to each other
//! (`crate::handoff`): a received frame whose flow another worker owns ([`flow_owner`]) goes to
//! that worker before the pipeline sees it, and a processed frame for a port another worker
//! owns goes to that worker to be transmitted. A lone worker has no handoff links and pays
//! nothing for them.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TryRecvError};

use crate::classifier::IpSetsReader;
use crate::conntrack::{FlowTable, FlowTableConfig, Millis};
use crate::counters::{DropReason, PipelineCounters, WorkerCounters};
use crate::frame_sizes::FRAME_BUF_SIZE;
use crate::handoff::{port_owner, HandoffKind, HandoffLinks, Outbox};
use crate::ids::{NextHopId, PortId};
use crate::modes::RxMode;
use crate::pipeline::{encapsulate_ipip, process_policed, Policing, PuntReason, Verdict};
use crate::policy::PolicyState;
use crate::port::Port;
use crate::punt::WorkerEnd;
use crate::tables::{Encap, Tables};

/// How long an adaptive worker keeps polling after its last frame before it sleeps.
pub const ADAPTIVE_SPIN: Duration = Duration::from_micros(200);

/// Everything a worker thread owns.
pub struct WorkerSpec {
    pub name: String,
    pub mode: RxMode,
    /// Core to pin the thread to.
    pub core: Option<usize>,
    /// The worker's ports at start; each is installed at its own `Port::id`.
    pub ports: Vec<Port>,
    pub tables: Arc<ArcSwap<Tables>>,
    /// Policy's address sets, updated in place by control.
    pub ip_sets: IpSetsReader,
    /// The worker's connection tracking table (allocated when the worker starts).
    pub flows: FlowTableConfig,
    pub punt: WorkerEnd,
    pub counters: Arc<WorkerCounters>,
    pub stop: Arc<AtomicBool>,
}

/// Flows each worker tracks at most, unless configured otherwise (about 100 bytes each).
pub const DEFAULT_FLOW_CAPACITY: usize = 65_536;
/// Flows the worker looks at for expiry per loop: spreads the cost over time.
const EXPIRE_BUDGET: usize = 64;

/// Cold ports the sweep looks at per loop: bounds the loop's cost whatever the port count,
/// while a port that starts receiving waits at most `ports / SWEEP_PER_LOOP` loops.
const SWEEP_PER_LOOP: usize = 16;
/// Empty polls after which a hot port goes back to the sweep.
const DEMOTE_AFTER: u32 = 1024;

/// How long an interrupt-mode worker sleeps at most, so that `stop` is noticed.
const IDLE_SLEEP: Duration = Duration::from_millis(100);
/// Counters are published at least this often, even when idle.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// A change to the set of ports a running worker serves.
// A Port is large, but commands are rare and the channel is bounded: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum PortCommand {
    /// Installs the port at its `PortId` (replacing, and dropping, whatever was there).
    AddPort(Port),
    /// Installs another queue's socket of a port at worker slot `slot` (a slot no `PortId`
    /// uses, e.g. the socket's XSKMAP slot). Its frames enter the pipeline as `port.id()`;
    /// what the tables send to that id leaves through the socket at the id's own slot.
    /// Removed with `RemovePort(slot)`.
    AddQueue { slot: PortId, port: Port },
    /// Takes the port out and sends it back (`None` if the slot was empty), so that the caller
    /// closes it after it has detached the XDP program from the interface.
    RemovePort(PortId, Sender<Option<Port>>),
    /// Answered once every command sent before it has been carried out: a barrier, so that
    /// control publishes routes to a new port only when the worker can transmit on it.
    Sync(Sender<()>),
}

impl std::fmt::Debug for PortCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortCommand::AddPort(p) => f.debug_tuple("AddPort").field(p).finish(),
            PortCommand::AddQueue { slot, port } => f
                .debug_struct("AddQueue")
                .field("slot", slot)
                .field("port", port)
                .finish(),
            PortCommand::RemovePort(id, _) => f.debug_tuple("RemovePort").field(id).finish(),
            PortCommand::Sync(_) => f.write_str("Sync"),
        }
    }
}

/// The worker has stopped (or does not take commands).
#[derive(Debug, thiserror::Error)]
pub enum PortCommandError {
    #[error("the fastpath worker has stopped")]
    WorkerGone,
    #[error("the fastpath worker did not take the command within {0:?}")]
    Timeout(Duration),
}

/// Control's end of a worker's command channel.
#[derive(Clone)]
pub struct PortCommandSender {
    commands: Sender<PortCommand>,
    wake: Arc<OwnedFd>,
}

/// The worker's end: polled once per loop iteration, and an eventfd that wakes a sleeping
/// interrupt-mode worker.
pub struct PortCommandReceiver {
    commands: Receiver<PortCommand>,
    wake: Arc<OwnedFd>,
}

/// Creates a worker's command channel with room for `depth` commands.
pub fn port_commands(depth: usize) -> std::io::Result<(PortCommandSender, PortCommandReceiver)> {
    let (tx, rx) = crossbeam_channel::bounded(depth.max(1));
    // SAFETY: eventfd returns a new descriptor or -1, which we check.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a freshly created descriptor that nothing else owns.
    let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok((
        PortCommandSender {
            commands: tx,
            wake: wake.clone(),
        },
        PortCommandReceiver { commands: rx, wake },
    ))
}

impl PortCommandSender {
    /// Queues `command` and wakes the worker; waits up to `timeout` for room in the queue.
    pub fn send(&self, command: PortCommand, timeout: Duration) -> Result<(), PortCommandError> {
        match self.commands.send_timeout(command, timeout) {
            Ok(()) => {
                let one = 1u64;
                // SAFETY: writing 8 bytes from a u64 to a valid eventfd.
                unsafe {
                    libc::write(
                        self.wake.as_raw_fd(),
                        &one as *const u64 as *const libc::c_void,
                        8,
                    )
                };
                Ok(())
            }
            Err(SendTimeoutError::Timeout(_)) => Err(PortCommandError::Timeout(timeout)),
            Err(SendTimeoutError::Disconnected(_)) => Err(PortCommandError::WorkerGone),
        }
    }

    /// Removes port `id` from the worker and returns it (`None` if the worker had no such port).
    pub fn remove_port(
        &self,
        id: PortId,
        timeout: Duration,
    ) -> Result<Option<Port>, PortCommandError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(PortCommand::RemovePort(id, tx), timeout)?;
        rx.recv_timeout(timeout).map_err(|e| match e {
            crossbeam_channel::RecvTimeoutError::Timeout => PortCommandError::Timeout(timeout),
            crossbeam_channel::RecvTimeoutError::Disconnected => PortCommandError::WorkerGone,
        })
    }

    /// Waits until the worker has carried out every command sent before.
    pub fn sync(&self, timeout: Duration) -> Result<(), PortCommandError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(PortCommand::Sync(tx), timeout)?;
        rx.recv_timeout(timeout).map_err(|e| match e {
            crossbeam_channel::RecvTimeoutError::Timeout => PortCommandError::Timeout(timeout),
            crossbeam_channel::RecvTimeoutError::Disconnected => PortCommandError::WorkerGone,
        })
    }
}

impl PortCommandReceiver {
    fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// Carries out every waiting command; true when the set of ports changed.
    fn apply(&self, worker: &str, ports: &mut Vec<Option<Port>>) -> bool {
        let mut changed = false;
        let mut handled = 0;
        loop {
            let command = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            };
            handled += 1;
            match command {
                PortCommand::AddPort(port) => {
                    tracing::debug!(worker, port = %port.name(), id = port.id(), "port added");
                    let at = usize::from(port.id());
                    install(ports, at, port);
                    changed = true;
                }
                PortCommand::AddQueue { slot, port } => {
                    tracing::debug!(worker, port = %port.name(), id = port.id(), queue = port.queue(), slot, "queue added");
                    install(ports, usize::from(slot), port);
                    changed = true;
                }
                PortCommand::RemovePort(id, reply) => {
                    let port = ports.get_mut(usize::from(id)).and_then(Option::take);
                    tracing::debug!(worker, id, found = port.is_some(), "port removed");
                    changed |= port.is_some();
                    // The caller may have given up waiting; then the port is dropped here.
                    let _ = reply.send(port);
                }
                PortCommand::Sync(reply) => {
                    let _ = reply.send(());
                }
            }
        }
        if handled > 0 {
            let mut v = 0u64;
            // SAFETY: reading 8 bytes into a u64 from a valid nonblocking eventfd. A command
            // sent after the drain above re-arms it, so none sleeps unnoticed.
            unsafe {
                libc::read(
                    self.wake.as_raw_fd(),
                    &mut v as *mut u64 as *mut libc::c_void,
                    8,
                )
            };
        }
        changed
    }
}

/// Puts `port` in slot `at`, growing the table when needed (only on a command).
fn install(ports: &mut Vec<Option<Port>>, at: usize, port: Port) {
    if ports.len() <= at {
        ports.resize_with(at + 1, || None);
    }
    ports[at] = Some(port);
}

/// Starts the worker thread with a fixed set of ports.
pub fn spawn(spec: WorkerSpec) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(spec.name.clone())
        .spawn(move || run(spec, None, None))
}

/// Starts the worker thread; `commands` adds and removes ports while it runs.
pub fn spawn_with_commands(
    spec: WorkerSpec,
    commands: PortCommandReceiver,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(spec.name.clone())
        .spawn(move || run(spec, Some(commands), None))
}

/// Starts worker `links.out.worker` of a group of `links.out.workers`, which hand frames to
/// each other through `links` (see the module comment). The worker source-NATs from its own
/// [`nat_slice`], so that replies find their way back to its flow table. A group of one is
/// [`spawn_with_commands`].
pub fn spawn_in_group(
    spec: WorkerSpec,
    commands: PortCommandReceiver,
    links: HandoffLinks,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let links = (links.out.workers > 1).then_some(links);
    std::thread::Builder::new()
        .name(spec.name.clone())
        .spawn(move || run(spec, Some(commands), links))
}

/// Frames a worker takes from the other workers' rings per loop: bounds the loop like a batch.
const HANDOFF_BUDGET: usize = 256;

fn run(spec: WorkerSpec, commands: Option<PortCommandReceiver>, mut links: Option<HandoffLinks>) {
    let WorkerSpec {
        name,
        mode,
        core,
        ports: initial_ports,
        tables,
        ip_sets,
        flows,
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
    schedule.resize(&ports);
    dirty.resize(ports.len());

    let mut counters = PipelineCounters::default();
    // Where encapsulated frames are assembled before the TX copy; allocated once, here.
    let mut tunnel = TunnelScratch::new();
    let mut policy = match &links {
        Some(l) => PolicyState::with_nat_ports(
            FlowTable::new(flows),
            nat_slice(l.out.worker, l.out.workers),
        ),
        None => PolicyState::new(FlowTable::new(flows)),
    };
    let clock = Instant::now();
    let mut last_publish = Instant::now();
    let mut last_work = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut work = 0;
        if let Some(commands) = &commands {
            if commands.apply(&name, &mut ports) {
                sleeper = Sleeper::new(&ports, &extra_fds);
                schedule.resize(&ports);
                dirty.resize(ports.len());
                work += 1;
            }
        }
        policy.now = clock.elapsed().as_millis() as Millis;
        let sets = ip_sets.load();
        let mut io = Io {
            tables: &tables,
            punt: &punt,
            tunnel: &mut tunnel,
            counters: &mut counters,
            dirty: &mut dirty,
            handoff: links.as_mut().map(|l| &mut l.out),
        };
        // Hot ports every loop, then a few cold ones.
        let mut k = 0;
        while let Some(&slot) = schedule.hot.get(k) {
            let mut policing = Policing {
                sets: &sets,
                state: &mut policy,
            };
            let n = service_port(&mut ports, slot, &mut io, &mut policing);
            work += n;
            if schedule.keep_hot(k, n) {
                k += 1;
            }
        }
        for _ in 0..SWEEP_PER_LOOP.min(schedule.occupied.len()) {
            let Some(slot) = schedule.next_cold() else {
                break;
            };
            let mut policing = Policing {
                sets: &sets,
                state: &mut policy,
            };
            let n = service_port(&mut ports, slot, &mut io, &mut policing);
            if n > 0 {
                schedule.promote(slot);
                work += n;
            }
        }
        if let Some(links) = links.as_mut() {
            let mut policing = Policing {
                sets: &sets,
                state: &mut policy,
            };
            work += take_handoffs(
                &mut ports,
                links,
                &tables,
                &punt,
                &mut tunnel,
                &mut counters,
                &mut dirty,
                &mut policing,
            );
            if mode != RxMode::Poll {
                links.out.wake_peers();
            }
        }
        if let Some(flows) = policy.flows.as_mut() {
            flows.expire(policy.now, EXPIRE_BUDGET);
        }
        work += inject(
            &mut ports,
            &punt,
            links.as_mut().map(|l| &mut l.out),
            &mut counters,
            &mut dirty,
        );
        // Frames the kernel could not take in the batch's flush go out now; until they have,
        // the worker does not go to sleep.
        if !dirty.is_empty() {
            dirty.flush(&mut ports);
            work += 1;
        }

        if work > 0 || last_publish.elapsed() >= PUBLISH_EVERY {
            shared.publish(&counters);
            if let Some(links) = &links {
                links.out.publish();
            }
            last_publish = Instant::now();
        }
        if work > 0 {
            if mode == RxMode::Adaptive {
                last_work = Instant::now();
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
    shared.publish(&counters);
    if let Some(links) = &links {
        links.out.publish();
    }
    tracing::info!(worker = %name, "fastpath worker stopped");
}

/// Which ports a loop looks at: the hot ones (recent traffic) every loop, and the next
/// [`SWEEP_PER_LOOP`] of the rest.
#[derive(Debug, Default)]
struct PortSchedule {
    /// Slots of the hot ports; capacity for every slot, so promoting never allocates.
    hot: Vec<usize>,
    /// Per slot: hot, and how many polls in a row found nothing.
    is_hot: Vec<bool>,
    quiet: Vec<u32>,
    /// The slots that hold a port, in the order the sweep visits them (slots may be sparse:
    /// another queue's socket sits far from the ids).
    occupied: Vec<usize>,
    /// Where the sweep goes on in `occupied`.
    cursor: usize,
}

impl PortSchedule {
    /// Starts over for `ports` (on a port change only). Every port starts cold.
    fn resize<T>(&mut self, ports: &[Option<T>]) {
        let slots = ports.len();
        self.hot.clear();
        self.hot.reserve(slots);
        self.is_hot.clear();
        self.is_hot.resize(slots, false);
        self.quiet.clear();
        self.quiet.resize(slots, 0);
        self.occupied.clear();
        self.occupied.extend(
            ports
                .iter()
                .enumerate()
                .filter(|(_, p)| p.is_some())
                .map(|(slot, _)| slot),
        );
        self.cursor = 0;
    }

    fn promote(&mut self, slot: usize) {
        if let Some(hot) = self.is_hot.get_mut(slot) {
            if !*hot {
                *hot = true;
                self.quiet[slot] = 0;
                self.hot.push(slot);
            }
        }
    }

    /// After hot port `hot[k]` received `n` frames: true if it stays hot; otherwise it has
    /// been moved back to the sweep (and `hot[k]` is now another port).
    fn keep_hot(&mut self, k: usize, n: usize) -> bool {
        let slot = self.hot[k];
        if n > 0 {
            self.quiet[slot] = 0;
            return true;
        }
        self.quiet[slot] += 1;
        if self.quiet[slot] < DEMOTE_AFTER {
            return true;
        }
        self.is_hot[slot] = false;
        self.hot.swap_remove(k);
        false
    }

    /// The next occupied cold slot, looking at most at every occupied slot once.
    fn next_cold(&mut self) -> Option<usize> {
        let n = self.occupied.len();
        for _ in 0..n {
            let slot = self.occupied[self.cursor % n];
            self.cursor = (self.cursor + 1) % n;
            if !self.is_hot[slot] {
                return Some(slot);
            }
        }
        None
    }
}

/// Ports with frames on their TX ring since their last flush, so that a batch flushes only
/// those instead of every port.
#[derive(Debug, Default)]
struct TxDirty {
    slots: Vec<usize>,
    marked: Vec<bool>,
}

impl TxDirty {
    fn resize(&mut self, slots: usize) {
        // Ports may have left; whatever they had pending went with them.
        self.slots.retain(|s| *s < slots);
        self.slots.reserve(slots);
        self.marked.resize(slots, false);
        for (slot, m) in self.marked.iter_mut().enumerate() {
            *m = self.slots.contains(&slot);
        }
    }

    fn mark(&mut self, slot: usize) {
        if let Some(m) = self.marked.get_mut(slot) {
            if !*m {
                *m = true;
                // Capacity for every slot was reserved in resize: no allocation.
                self.slots.push(slot);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Flushes every marked port; those the kernel could not drain stay marked.
    fn flush(&mut self, ports: &mut [Option<Port>]) {
        let marked = &mut self.marked;
        self.slots.retain(|&slot| {
            let pending = match ports.get_mut(slot).and_then(Option::as_mut) {
                Some(port) => {
                    port.flush();
                    port.tx_pending()
                }
                None => false,
            };
            marked[slot] = pending;
            pending
        });
    }
}

/// Where a sleeping worker waits: one epoll set with every port's socket and the worker's
/// eventfds, rebuilt when the ports change. epoll_wait's cost follows the ready sockets,
/// not the registered ones (poll(2) scans its whole array on every call).
struct Sleeper {
    epoll: Option<OwnedFd>,
    events: Vec<libc::epoll_event>,
}

/// epoll data of the worker's own eventfds; port sockets carry their slot.
const EVENTFD_TOKEN: u64 = u64::MAX;

impl Sleeper {
    fn new(ports: &[Option<Port>], extra: &[RawFd]) -> Sleeper {
        // SAFETY: epoll_create1 returns a new descriptor or -1, which we check.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "epoll_create1 failed; idle workers sleep blind");
            return Sleeper {
                epoll: None,
                events: Vec::new(),
            };
        }
        // SAFETY: a fresh descriptor nobody else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        let sockets = ports
            .iter()
            .enumerate()
            .filter_map(|(slot, p)| p.as_ref().map(|p| (p.raw_fd(), slot as u64)));
        let wakers = extra.iter().map(|fd| (*fd, EVENTFD_TOKEN));
        let mut registered = 0;
        for (fd, token) in sockets.chain(wakers) {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: token,
            };
            // SAFETY: valid epoll descriptor, a descriptor we hold open, a valid event.
            if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) }
                == 0
            {
                registered += 1;
            } else {
                tracing::warn!(fd, error = %std::io::Error::last_os_error(), "cannot add to the worker's epoll set");
            }
        }
        let events = vec![libc::epoll_event { events: 0, u64: 0 }; registered.clamp(1, 256)];
        Sleeper {
            epoll: Some(epoll),
            events,
        }
    }

    /// Sleeps until a socket has frames, an eventfd fires, or `timeout` passes; calls `ready`
    /// with the slot of every port that has frames.
    fn wait(&mut self, timeout: Duration, mut ready: impl FnMut(usize)) {
        let Some(epoll) = &self.epoll else {
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
            return;
        };
        // SAFETY: events is a valid writable array of its length.
        let n = unsafe {
            libc::epoll_wait(
                epoll.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                timeout.as_millis() as i32,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                // Never spin hot on a persistent error: fall back to a plain sleep.
                tracing::debug!(error = %e, "epoll_wait failed");
                std::thread::sleep(timeout);
            }
            return;
        }
        for event in &self.events[..n as usize] {
            let token = event.u64;
            if token != EVENTFD_TOKEN {
                ready(token as usize);
            }
        }
    }
}

/// What servicing a port needs besides the ports and the policy state.
struct Io<'a> {
    tables: &'a ArcSwap<Tables>,
    punt: &'a WorkerEnd,
    tunnel: &'a mut TunnelScratch,
    counters: &'a mut PipelineCounters,
    dirty: &'a mut TxDirty,
    /// The other workers, when there are any.
    handoff: Option<&'a mut Outbox>,
}

/// A worker's buffer for building IPIP frames, and the identification field of the outer
/// headers it writes.
///
/// `Port::transmit` copies one contiguous slice into a TX frame, so the outer header and the
/// packet are put together here first (one extra copy of the packet per encapsulated frame).
/// The identification counts up per worker: unique enough for non-DF packets over the
/// reassembly lifetime (RFC 6864 section 4.2), ignored for DF ones.
struct TunnelScratch {
    buf: Box<[u8; FRAME_BUF_SIZE]>,
    ident: u16,
}

impl TunnelScratch {
    fn new() -> TunnelScratch {
        TunnelScratch {
            buf: Box::new([0u8; FRAME_BUF_SIZE]),
            ident: 0,
        }
    }

    /// Wraps `frame` in the IPIP tunnel of next hop `nh`; the frame to send, or `None` when
    /// the next hop is not a tunnel (any more) or the result would not fit a buffer.
    fn wrap(&mut self, frame: &[u8], nh: NextHopId, tables: &Tables) -> Option<&[u8]> {
        let Encap::Ipip { local, remote } = tables.next_hops.get(nh as usize)?.encap else {
            return None;
        };
        self.ident = self.ident.wrapping_add(1);
        let len = encapsulate_ipip(frame, local, remote, self.ident, &mut self.buf[..])?;
        Some(&self.buf[..len])
    }
}

/// Receives one batch on `ports[ingress]`, runs it through the pipeline and acts on the
/// verdicts; returns the number of frames received.
fn service_port(
    ports: &mut [Option<Port>],
    ingress: usize,
    io: &mut Io<'_>,
    policing: &mut Policing<'_>,
) -> usize {
    let Some(port) = ports.get_mut(ingress).and_then(Option::as_mut) else {
        return 0;
    };
    let n = port.receive();
    if n == 0 {
        return 0;
    }
    // The port's id, not its slot: another queue's socket of a port sits in a slot of its own.
    let ingress_id = port.id();
    let snapshot = io.tables.load();
    let counters = &mut *io.counters;
    // NAT replies are owned by the slice their port is in (see `flow_owner`).
    let nat = snapshot.snat.as_ref().map(|r| r.node.octets());
    for i in 0..n {
        let Some(port) = ports[ingress].as_mut() else {
            break;
        };
        if let Some(out) = io.handoff.as_deref_mut() {
            let owner = flow_owner(port.received_frame(i), out.workers, nat);
            if owner != out.worker {
                // Not counted as received here: the owner's pipeline counts it. A full ring
                // drops it, counted as `full`.
                out.send(
                    owner,
                    HandoffKind::Process,
                    ingress_id,
                    port.received_frame(i),
                );
                continue;
            }
        }
        let outcome = process_policed(
            port.received_frame_mut(i),
            ingress_id,
            &snapshot,
            counters,
            policing,
        );
        let start = outcome.start;
        match outcome.verdict {
            Verdict::Forward(egress)
                if io.handoff.is_some() && !is_local(ports, usize::from(egress)) =>
            {
                let frame = ports[ingress]
                    .as_ref()
                    .map_or(&[][..], |p| p.received_frame(i));
                let sent = frame
                    .get(start..)
                    .is_some_and(|f| hand_to_owner(io.handoff.as_deref_mut(), egress, f));
                note_transmit(sent, counters);
            }
            Verdict::Forward(egress) => {
                let sent = forward(ports, ingress, i, start, egress as usize);
                if sent {
                    io.dirty.mark(egress as usize);
                }
                note_transmit(sent, counters);
            }
            Verdict::Encapsulate {
                port: egress,
                next_hop,
            } => {
                let frame = ports[ingress]
                    .as_ref()
                    .map_or(&[][..], |p| p.received_frame(i));
                let sent = match frame
                    .get(start..)
                    .and_then(|f| io.tunnel.wrap(f, next_hop, &snapshot))
                {
                    Some(wrapped)
                        if io.handoff.is_some() && !is_local(ports, usize::from(egress)) =>
                    {
                        hand_to_owner(io.handoff.as_deref_mut(), egress, wrapped)
                    }
                    Some(wrapped) => ports
                        .get_mut(usize::from(egress))
                        .and_then(Option::as_mut)
                        .is_some_and(|p| p.transmit(wrapped)),
                    None => false,
                };
                if sent {
                    counters.ipip_encapsulated += 1;
                    io.dirty.mark(usize::from(egress));
                }
                note_transmit(sent, counters);
            }
            Verdict::Punt(reason) => {
                let frame = ports[ingress]
                    .as_ref()
                    .map_or(&[][..], |p| p.received_frame(i));
                if !io
                    .punt
                    .punt(ingress_id, reason, frame.get(start..).unwrap_or_default())
                {
                    note_punt_failure(reason, counters);
                }
            }
            Verdict::Drop(_) => {}
        }
    }
    if let Some(port) = ports[ingress].as_mut() {
        port.release_received();
    }
    io.dirty.flush(ports);
    n
}

/// Whether this worker has a socket at port slot `slot`.
fn is_local(ports: &[Option<Port>], slot: usize) -> bool {
    ports.get(slot).is_some_and(Option::is_some)
}

/// Hands processed frame `data` to the worker that owns port `egress`, to transmit it there.
/// False when there is no other owner (the port is gone) or its ring is full.
fn hand_to_owner(out: Option<&mut Outbox>, egress: PortId, data: &[u8]) -> bool {
    let Some(out) = out else { return false };
    let owner = port_owner(egress, out.workers);
    owner != out.worker && out.send(owner, HandoffKind::Transmit, egress, data)
}

/// Takes the frames the other workers handed over: flows this worker owns go through the
/// pipeline as if received on their port; processed frames are transmitted on the port they
/// name. Returns how many frames were taken.
#[allow(clippy::too_many_arguments)]
fn take_handoffs(
    ports: &mut [Option<Port>],
    links: &mut HandoffLinks,
    tables: &ArcSwap<Tables>,
    punt: &WorkerEnd,
    tunnel: &mut TunnelScratch,
    counters: &mut PipelineCounters,
    dirty: &mut TxDirty,
    policing: &mut Policing<'_>,
) -> usize {
    let snapshot = tables.load();
    let mut transmit_failed = 0;
    let n = links.receive(HANDOFF_BUDGET, |out, kind, port, frame| match kind {
        // Counted as sent by the worker that processed it; only a failure is counted here.
        HandoffKind::Transmit => {
            if !transmit_on(ports, dirty, port, frame) {
                transmit_failed += 1;
            }
        }
        HandoffKind::Process => {
            let outcome = process_policed(frame, port, &snapshot, counters, policing);
            let start = outcome.start;
            let frame = frame.get(start..).unwrap_or_default();
            match outcome.verdict {
                Verdict::Forward(egress) => {
                    let sent = if is_local(ports, usize::from(egress)) {
                        transmit_on(ports, dirty, egress, frame)
                    } else {
                        hand_to_owner(Some(out), egress, frame)
                    };
                    note_transmit(sent, counters);
                }
                Verdict::Encapsulate {
                    port: egress,
                    next_hop,
                } => {
                    let sent = match tunnel.wrap(frame, next_hop, &snapshot) {
                        Some(wrapped) if is_local(ports, usize::from(egress)) => {
                            transmit_on(ports, dirty, egress, wrapped)
                        }
                        Some(wrapped) => hand_to_owner(Some(out), egress, wrapped),
                        None => false,
                    };
                    if sent {
                        counters.ipip_encapsulated += 1;
                    }
                    note_transmit(sent, counters);
                }
                Verdict::Punt(reason) => {
                    if !punt.punt(port, reason, frame) {
                        note_punt_failure(reason, counters);
                    }
                }
                Verdict::Drop(_) => {}
            }
        }
    });
    links.out.stats.transmit_failed += transmit_failed;
    if n > 0 {
        dirty.flush(ports);
    }
    n
}

/// Copies `frame` to the TX ring of local port `port`; marks it for the flush.
fn transmit_on(
    ports: &mut [Option<Port>],
    dirty: &mut TxDirty,
    port: PortId,
    frame: &[u8],
) -> bool {
    let sent = ports
        .get_mut(usize::from(port))
        .and_then(Option::as_mut)
        .is_some_and(|p| p.transmit(frame));
    if sent {
        dirty.mark(usize::from(port));
    }
    sent
}

/// Counts a forwarded frame as sent, or turns it into a `TxFull` drop (the pipeline counted
/// it as forwarded), keeping `rx == forwarded + punted + drops`.
fn note_transmit(sent: bool, counters: &mut PipelineCounters) {
    if sent {
        counters.tx_packets += 1;
    } else {
        counters.forwarded = counters.forwarded.saturating_sub(1);
        counters.drop(DropReason::TxFull);
    }
}

/// Copies received frame `i` of `ports[ingress]`, from byte `start` on (past a stripped tunnel
/// header), to the TX ring of `ports[egress]`, which may be the ingress port itself. False when
/// the ring is full or the tables name a slot without a port (see the module comment).
fn forward(
    ports: &mut [Option<Port>],
    ingress: usize,
    i: usize,
    start: usize,
    egress: usize,
) -> bool {
    if egress == ingress {
        return ports[ingress]
            .as_mut()
            .is_some_and(|p| p.transmit_received(i, start));
    }
    if egress >= ports.len() {
        return false;
    }
    let (from, to) = if ingress < egress {
        let (a, b) = ports.split_at_mut(egress);
        (&a[ingress], &mut b[0])
    } else {
        let (a, b) = ports.split_at_mut(ingress);
        (&b[0], &mut a[egress])
    };
    match (from, to) {
        (Some(from), Some(to)) => from
            .received_frame(i)
            .get(start..)
            .is_some_and(|data| to.transmit(data)),
        _ => false,
    }
}

/// Keeps `rx == forwarded + punted + drops` when the slow path cannot take a frame.
fn note_punt_failure(reason: PuntReason, counters: &mut PipelineCounters) {
    match reason {
        // The pipeline counted these as punted: they become drops.
        PuntReason::Arp | PuntReason::Local | PuntReason::Unresolved(_) => {
            counters.punted = counters.punted.saturating_sub(1);
            counters.drop(DropReason::PuntQueueFull);
        }
        // The pipeline already counted these as drops (NoRoute, TtlExpired,
        // FragmentationNeeded); only the ICMP error the slow path would have sent is lost,
        // and counting a second drop for the same frame would break the sum.
        PuntReason::NoRoute | PuntReason::TtlExpired | PuntReason::FragmentationNeeded { .. } => {}
    }
}

/// Sends the frames the slow path injected; returns how many it handled.
fn inject(
    ports: &mut [Option<Port>],
    punt: &WorkerEnd,
    mut handoff: Option<&mut Outbox>,
    counters: &mut PipelineCounters,
    dirty: &mut TxDirty,
) -> usize {
    let n = punt.drain_inject(|port, data| {
        // The slow path injects to the port's owner; a port that moved meanwhile is handed on.
        let sent = if handoff.is_some() && !is_local(ports, usize::from(port)) {
            hand_to_owner(handoff.as_deref_mut(), port, data)
        } else {
            ports
                .get_mut(port as usize)
                .and_then(Option::as_mut)
                .is_some_and(|p| p.transmit(data))
        };
        if sent {
            counters.injected += 1;
            counters.tx_packets += 1;
            dirty.mark(port as usize);
        } else {
            // Injected frames are not part of rx; a failed one is still a visible drop.
            counters.drop(DropReason::TxFull);
        }
    });
    if n > 0 {
        dirty.flush(ports);
    }
    n
}

// ---------------------------------------------------------------------------------------------
// Flow ownership between several workers
// ---------------------------------------------------------------------------------------------
//
// When several workers run, connection tracking stays right only if both directions of a flow meet
// the same worker's flow table. The owner of a frame is the same for both directions: a
// symmetric hash of its 5-tuple (the inner one for IP-in-IP), or, for replies to source-NATed
// flows, the worker whose slice of the NAT ports holds the destination port (each worker then
// allocates NAT ports from its own slice). A worker that receives a frame it does not own
// hands it to the owner (VPP calls this handoff).

/// The worker (of `workers`) that owns the flow of Ethernet `frame`. Frames that are not
/// IPv4, or too short to read, belong to worker 0. `nat` is the node's address when NAT
/// outgoing is on: frames to it on a NAT port belong to that port's slice.
pub fn flow_owner(frame: &[u8], workers: usize, nat: Option<[u8; 4]>) -> usize {
    if workers <= 1 {
        return 0;
    }
    let Some(t) = FiveTuple::of(frame) else {
        return 0;
    };
    if let (Some(node), Some(port)) = (nat, t.dst_port) {
        if t.dst == node && crate::policy::NAT_PORTS.contains(&port) {
            return nat_slice_owner(port, workers);
        }
    }
    (t.symmetric_hash() % workers as u64) as usize
}

/// The NAT ports worker `worker` of `workers` allocates from: consecutive, equal slices of
/// [`crate::policy::NAT_PORTS`] (the last one takes the remainder).
pub fn nat_slice(worker: usize, workers: usize) -> std::ops::RangeInclusive<u16> {
    let (first, last) = (
        u32::from(*crate::policy::NAT_PORTS.start()),
        u32::from(*crate::policy::NAT_PORTS.end()),
    );
    let workers = workers.max(1) as u32;
    let worker = (worker as u32).min(workers - 1);
    let size = (last - first + 1) / workers;
    let start = first + worker * size;
    let end = if worker == workers - 1 {
        last
    } else {
        start + size - 1
    };
    start as u16..=end as u16
}

/// The worker whose [`nat_slice`] holds NAT port `port`.
fn nat_slice_owner(port: u16, workers: usize) -> usize {
    let first = u32::from(*crate::policy::NAT_PORTS.start());
    let size = (u32::from(*crate::policy::NAT_PORTS.end()) - first + 1) / workers as u32;
    ((u32::from(port).saturating_sub(first) / size.max(1)) as usize).min(workers - 1)
}

/// Addresses, protocol and ports (echo identifier for ICMP echo) of an IPv4 frame.
#[derive(Debug, PartialEq, Eq)]
struct FiveTuple {
    src: [u8; 4],
    dst: [u8; 4],
    protocol: u8,
    src_port: Option<u16>,
    dst_port: Option<u16>,
}

impl FiveTuple {
    fn of(frame: &[u8]) -> Option<FiveTuple> {
        if frame.get(12..14)? != [0x08, 0x00] {
            return None;
        }
        let mut ip = frame.get(14..)?;
        // IP-in-IP (RFC 2003): the flow is the inner packet's, as the flow table sees it.
        for _ in 0..2 {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if ip.first()? >> 4 != 4 || ihl < 20 || ip.len() < ihl {
                return None;
            }
            let protocol = ip[9];
            if protocol == 4 {
                ip = &ip[ihl..];
                continue;
            }
            let later_fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0;
            let l4 = &ip[ihl..];
            let ports = match protocol {
                6 | 17 if !later_fragment => l4.get(0..4).map(|p| {
                    (
                        u16::from_be_bytes([p[0], p[1]]),
                        u16::from_be_bytes([p[2], p[3]]),
                    )
                }),
                // Echo request and reply (RFC 792): the identifier stands for both ports.
                1 if !later_fragment && matches!(l4.first(), Some(0) | Some(8)) => l4
                    .get(4..6)
                    .map(|i| u16::from_be_bytes([i[0], i[1]]))
                    .map(|id| (id, id)),
                _ => None,
            };
            return Some(FiveTuple {
                src: ip[12..16].try_into().ok()?,
                dst: ip[16..20].try_into().ok()?,
                protocol,
                src_port: ports.map(|p| p.0),
                dst_port: ports.map(|p| p.1),
            });
        }
        None
    }

    /// The same value for both directions: the two (address, port) ends are ordered first.
    fn symmetric_hash(&self) -> u64 {
        let a =
            (u64::from(u32::from_be_bytes(self.src)) << 16) | u64::from(self.src_port.unwrap_or(0));
        let b =
            (u64::from(u32::from_be_bytes(self.dst)) << 16) | u64::from(self.dst_port.unwrap_or(0));
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut h =
            lo.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ hi.rotate_left(29) ^ u64::from(self.protocol);
        // MurmurHash3's finaliser spreads the bits so that `% workers` is even.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_commands_wake_the_worker_and_are_answered_in_order() {
        let (tx, rx) = port_commands(4).unwrap();
        let mut ports: Vec<Option<Port>> = Vec::new();
        let (removed_tx, removed_rx) = crossbeam_channel::bounded(1);
        let (sync_tx, sync_rx) = crossbeam_channel::bounded(1);
        tx.send(
            PortCommand::RemovePort(7, removed_tx),
            Duration::from_millis(10),
        )
        .unwrap();
        tx.send(PortCommand::Sync(sync_tx), Duration::from_millis(10))
            .unwrap();
        let mut pfd = libc::pollfd {
            fd: rx.wake_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        assert_eq!(
            unsafe { libc::poll(&mut pfd, 1, 0) },
            1,
            "a command makes the eventfd readable"
        );
        assert!(
            !rx.apply("test", &mut ports),
            "removing an empty slot changes nothing"
        );
        assert!(
            removed_rx.try_recv().unwrap().is_none(),
            "an empty slot gives back no port"
        );
        assert!(sync_rx.try_recv().is_ok(), "the barrier is answered");
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::poll(&mut pfd, 1, 0) },
            0,
            "the eventfd is reset after the drain"
        );
    }

    #[test]
    fn commands_to_a_stopped_worker_fail_and_a_full_queue_times_out() {
        let (tx, rx) = port_commands(1).unwrap();
        let (sync_tx, _sync_rx) = crossbeam_channel::bounded(1);
        tx.send(PortCommand::Sync(sync_tx), Duration::from_millis(10))
            .unwrap();
        assert!(matches!(
            tx.sync(Duration::from_millis(20)),
            Err(PortCommandError::Timeout(_))
        ));
        drop(rx);
        assert!(matches!(
            tx.sync(Duration::from_millis(20)),
            Err(PortCommandError::WorkerGone)
        ));
    }

    #[test]
    fn the_sweep_visits_every_cold_port_and_skips_hot_ones() {
        let mut s = PortSchedule::default();
        s.resize(&[Some(()), Some(()), Some(()), None, Some(()), Some(())]);
        s.promote(2);
        s.promote(2);
        assert_eq!(s.hot, vec![2], "promoting twice lists a port once");
        let visited: Vec<usize> = (0..8).filter_map(|_| s.next_cold()).collect();
        assert_eq!(
            visited,
            vec![0, 1, 4, 5, 0, 1, 4, 5],
            "hot and empty slots are skipped"
        );
        s.promote(9); // out of range: ignored, no panic
        assert_eq!(s.hot, vec![2]);
    }

    #[test]
    fn a_hot_port_goes_cold_after_enough_empty_polls_and_traffic_keeps_it_hot() {
        let mut s = PortSchedule::default();
        s.resize(&[Some(()), Some(()), Some(())]);
        s.promote(1);
        for _ in 0..DEMOTE_AFTER - 1 {
            assert!(s.keep_hot(0, 0));
        }
        assert!(s.keep_hot(0, 5), "frames reset the count");
        for _ in 0..DEMOTE_AFTER - 1 {
            assert!(s.keep_hot(0, 0));
        }
        assert!(!s.keep_hot(0, 0), "the last empty poll demotes");
        assert!(s.hot.is_empty());
        assert_eq!(s.next_cold(), Some(0));
        assert_eq!(s.next_cold(), Some(1), "the demoted port is swept again");
    }

    #[test]
    fn only_marked_ports_are_flushed_and_empty_slots_unmark() {
        let mut d = TxDirty::default();
        d.resize(4);
        d.mark(3);
        d.mark(3);
        d.mark(1);
        d.mark(17); // out of range: ignored
        assert_eq!(d.slots, vec![3, 1]);
        let mut ports: Vec<Option<Port>> = (0..4).map(|_| None).collect();
        d.flush(&mut ports);
        assert!(d.is_empty(), "slots without a port have nothing pending");
        assert!(d.marked.iter().all(|m| !m));
        d.mark(3);
        d.resize(2);
        assert!(d.is_empty(), "a slot beyond the new size is forgotten");
    }

    #[test]
    fn an_idle_sleeper_returns_after_its_timeout_and_an_eventfd_wakes_it_without_a_port() {
        let (tx, rx) = port_commands(1).unwrap();
        let mut sleeper = Sleeper::new(&[], &[rx.wake_fd()]);
        let mut woken = Vec::new();
        sleeper.wait(Duration::from_millis(1), |slot| woken.push(slot));
        assert!(woken.is_empty());
        let (sync_tx, _sync_rx) = crossbeam_channel::bounded(1);
        tx.send(PortCommand::Sync(sync_tx), Duration::from_millis(10))
            .unwrap();
        let started = Instant::now();
        sleeper.wait(Duration::from_secs(5), |slot| woken.push(slot));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the eventfd ended the sleep"
        );
        assert!(woken.is_empty(), "an eventfd is not a port");
    }

    /// An Ethernet + IPv4 frame with a 4-byte L4 header start (ports) or ICMP echo.
    fn ipv4_frame(protocol: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + l4.len()) as u16;
        f.extend_from_slice(&[
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0x40,
            0,
            64,
            protocol,
            0,
            0,
        ]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(l4);
        f
    }

    fn udp(sport: u16, dport: u16) -> Vec<u8> {
        [sport.to_be_bytes(), dport.to_be_bytes(), [0, 8], [0, 0]].concat()
    }

    #[test]
    fn both_directions_of_a_flow_have_the_same_owner_and_flows_spread_over_workers() {
        let (a, b) = ([192, 168, 0, 1], [192, 168, 0, 2]);
        let mut owners = [0usize; 4];
        for sport in 1000..1400u16 {
            let there = ipv4_frame(17, a, b, &udp(sport, 80));
            let back = ipv4_frame(17, b, a, &udp(80, sport));
            let owner = flow_owner(&there, 4, None);
            assert_eq!(owner, flow_owner(&back, 4, None), "sport {sport}");
            owners[owner] += 1;
        }
        assert!(
            owners.iter().all(|n| *n > 50),
            "400 flows over 4 workers: {owners:?}"
        );
        // Echo request and reply share the identifier.
        let request = ipv4_frame(1, a, b, &[8, 0, 0, 0, 0x12, 0x34, 0, 1]);
        let reply = ipv4_frame(1, b, a, &[0, 0, 0, 0, 0x12, 0x34, 0, 1]);
        assert_eq!(flow_owner(&request, 7, None), flow_owner(&reply, 7, None));
        // IP-in-IP is owned by its inner flow.
        let inner = ipv4_frame(17, a, b, &udp(5000, 53));
        let mut outer = ipv4_frame(4, [10, 0, 0, 1], [10, 0, 0, 2], &inner[14..]);
        outer[16] = 0; // the outer total length is not read
        assert_eq!(flow_owner(&outer, 5, None), flow_owner(&inner, 5, None));
    }

    #[test]
    fn one_worker_owns_everything_and_junk_belongs_to_worker_zero() {
        let frame = ipv4_frame(17, [1, 2, 3, 4], [5, 6, 7, 8], &udp(1, 2));
        assert_eq!(flow_owner(&frame, 1, None), 0);
        assert_eq!(flow_owner(&[], 4, None), 0);
        assert_eq!(
            flow_owner(&frame[..20], 4, None),
            0,
            "truncated IPv4 header"
        );
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(flow_owner(&arp, 4, None), 0);
        let mut bad_ihl = frame.clone();
        bad_ihl[14] = 0x4f; // 60-byte header in a shorter packet
        assert_eq!(flow_owner(&bad_ihl, 4, None), 0);
    }

    #[test]
    fn nat_replies_go_to_the_worker_whose_slice_holds_the_port_and_slices_tile_the_range() {
        let node = [10, 99, 0, 1];
        for workers in 1..=5 {
            let mut next = *crate::policy::NAT_PORTS.start();
            for w in 0..workers {
                let slice = nat_slice(w, workers);
                assert_eq!(*slice.start(), next, "slices are contiguous");
                next = slice.end().wrapping_add(1);
                for port in [*slice.start(), *slice.end()] {
                    let reply = ipv4_frame(17, [8, 8, 8, 8], node, &udp(53, port));
                    assert_eq!(
                        flow_owner(&reply, workers, Some(node)),
                        w,
                        "port {port} of {workers} workers"
                    );
                }
            }
            assert_eq!(
                next.wrapping_sub(1),
                *crate::policy::NAT_PORTS.end(),
                "the last slice ends the range"
            );
        }
        // Not to the node, or not a NAT port: the hash decides, symmetrically.
        let other = ipv4_frame(17, [8, 8, 8, 8], [10, 99, 0, 9], &udp(53, 61000));
        let back = ipv4_frame(17, [10, 99, 0, 9], [8, 8, 8, 8], &udp(61000, 53));
        assert_eq!(
            flow_owner(&other, 3, Some(node)),
            flow_owner(&back, 3, Some(node))
        );
    }

    #[test]
    fn forwarding_to_an_empty_slot_fails_instead_of_panicking() {
        let mut ports: Vec<Option<Port>> = vec![None, None];
        assert!(!forward(&mut ports, 0, 0, 0, 1));
        assert!(!forward(&mut ports, 0, 0, 0, 0));
        assert!(!forward(&mut ports, 1, 0, 0, 9));
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
