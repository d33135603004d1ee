//! The BGP speaker runtime: sessions over TCP (tokio) around the pure [`PeerFsm`] and
//! [`Rib`].
//!
//! Tasks:
//! - the **core** task owns the [`Rib`]; it hears from the handle (peers, local prefixes)
//!   and from the peer tasks (session up/down, UPDATEs received), and sends each peer task
//!   its Adj-RIB-Out changes and the dataplane its [`FibChange`]s;
//! - one **peer** task per configured peer ([`session`]) owns the FSM, the peer's
//!   connections and the timers;
//! - the **listener** accepts connections on the configured address (port 179 by default)
//!   and hands each to the peer with the source address; unknown sources are closed.
//!
//! API style: [`Speaker::start`] is async and must run inside a tokio runtime (it binds the
//! listener and spawns the tasks on it). Every [`SpeakerHandle`] method is a plain,
//! non-blocking call (a channel send or a snapshot), usable from async code and from
//! ordinary threads alike. The FIB changes come on a tokio unbounded channel: `recv().await`
//! from async code, `blocking_recv()` from a thread.
//!
//! [`SpeakerHandle::shutdown`] stops the speaker: each session is closed with Cease /
//! Administrative Shutdown. [`SpeakerHandle::stop_for_restart`] closes the connections
//! without a NOTIFICATION instead, so peers that do Graceful Restart keep our routes until
//! we are back (RFC 4724). (Dropping the handles does not stop anything: the peer tasks
//! keep the core alive; dropping the runtime ends everything without NOTIFICATIONs.)
//!
//! Graceful Restart, both roles: we advertise the capability per peer ([`PeerSpec`]); when
//! a peer that advertised it drops its session without a NOTIFICATION, the core keeps its
//! routes as stale ([`Rib::peer_restarting`]) for the restart time it announced, and sweeps
//! those it has not sent again once it sends End-of-RIB ([`STALE_PATHS_TIME`] at most).

mod connection;
mod session;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::fsm::{
    GracefulRestart, PeerConfig, PeerFsm, PeerRestart, State, DEFAULT_HOLD_TIME, DEFAULT_IDLE_HOLD,
    DEFAULT_PREFIX_LIMIT_IDLE_HOLD,
};
use crate::packet::{Ipv4Prefix, Update, AFI_IPV4, SAFI_UNICAST};
use crate::rib::{FibChange, OutChange, PeerInfo, PeerKey, Rib, RibChanges, RibConfig};
use session::{PeerMsg, PeerTaskArgs};

/// The BGP port (RFC 4271 section 8.2.1).
pub const BGP_PORT: u16 = 179;
/// The ConnectRetryTime the speaker uses unless told otherwise: shorter than RFC 4271's
/// suggested 120 s so that a node whose peer starts later connects within seconds.
pub const DEFAULT_CONNECT_RETRY: Duration = Duration::from_secs(5);
/// The Restart Time we advertise unless told otherwise: BIRD's default, which Calico's
/// BIRD configuration keeps.
pub const DEFAULT_RESTART_TIME: u16 = 120;
/// How long a restarted peer's stale routes may wait for its End-of-RIB (the local
/// "stalepath" time RFC 4724 section 4.2 allows).
pub const STALE_PATHS_TIME: Duration = Duration::from_secs(360);
/// How many prefixes a peer may have us hold unless told otherwise (RFC 4486 section 4's
/// "locally configured upper bound"). Calico's BGPPeer has no such field and BIRD as Calico
/// configures it has no limit; this one is far above what a Calico cluster announces (one
/// route per IPAM block, a few per node) and about a full Internet table, so that only a
/// peer gone wrong reaches it, while the memory it may take stays bounded.
pub const DEFAULT_MAX_PREFIXES: u32 = 1_000_000;

/// The local speaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeakerConfig {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// Where to accept sessions (`0.0.0.0:179` for every address). When the IP is a
    /// specific one, outgoing connections are made from it too.
    pub listen: SocketAddr,
    /// CLUSTER_ID when reflecting (RFC 4456); the router id when unset.
    pub cluster_id: Option<Ipv4Addr>,
    /// ConnectRetryTime of every peer.
    pub connect_retry: Duration,
    /// How long a peer rests in Idle after an error before reconnecting.
    pub idle_hold: Duration,
    /// How long a peer rests in Idle after its session was closed for too many prefixes
    /// ([`PeerSpec::max_prefixes`]).
    pub prefix_limit_idle_hold: Duration,
    /// This speaker has restarted: the first session with each peer says so (the R bit of
    /// Graceful Restart).
    pub restarting: bool,
    /// Our forwarding state survives a restart of the speaker (the F bit): peers may keep
    /// forwarding on our routes until our End-of-RIB.
    pub forwarding_preserved: bool,
}

impl SpeakerConfig {
    /// A speaker on `listen`, not a reflector, with the default timers.
    pub fn new(asn: u32, router_id: Ipv4Addr, listen: SocketAddr) -> Self {
        Self {
            asn,
            router_id,
            listen,
            cluster_id: None,
            connect_retry: DEFAULT_CONNECT_RETRY,
            idle_hold: DEFAULT_IDLE_HOLD,
            prefix_limit_idle_hold: DEFAULT_PREFIX_LIMIT_IDLE_HOLD,
            restarting: false,
            forwarding_preserved: false,
        }
    }
}

/// One peer to run a session with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    pub address: Ipv4Addr,
    pub asn: u32,
    /// Only wait for the peer to connect.
    pub passive: bool,
    /// The peer is our route reflector client (RFC 4456).
    pub rr_client: bool,
    /// Hold Time we propose (0, or 3 and more).
    pub hold_time: u16,
    /// The peer's BGP port; [`BGP_PORT`] normally.
    pub port: u16,
    /// Graceful Restart with this peer, advertising this Restart Time in seconds (at most
    /// 4095); `None`: off, its routes go as soon as its session does.
    pub restart_time: Option<u16>,
    /// Most prefixes held from the peer (RFC 4486 section 4); `None`: no limit. One more
    /// closes the session with Cease / Maximum Number of Prefixes Reached, drops its routes,
    /// and the peer rests in Idle for the FSM's `prefix_limit_idle_hold`.
    pub max_prefixes: Option<u32>,
}

impl PeerSpec {
    /// An active, non-client peer on port 179 with the default Hold Time and Graceful
    /// Restart on.
    pub fn new(address: Ipv4Addr, asn: u32) -> Self {
        Self {
            address,
            asn,
            passive: false,
            rr_client: false,
            hold_time: DEFAULT_HOLD_TIME,
            port: BGP_PORT,
            restart_time: Some(DEFAULT_RESTART_TIME),
            max_prefixes: Some(DEFAULT_MAX_PREFIXES),
        }
    }
}

/// One row of `brindlectl node status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    pub address: Ipv4Addr,
    pub asn: u32,
    /// RFC 4271 section 8.2.2 name (`Display` prints it).
    pub state: State,
    /// When the state last changed (None: never started).
    pub since: Option<SystemTime>,
    /// Why the session last went down or failed, e.g. "Hold timer expired".
    pub last_error: Option<String>,
    /// Prefixes currently held from the peer (its Adj-RIB-In).
    pub routes_received: u64,
    /// Of those, the ones kept from before the peer restarted and not sent again yet.
    pub routes_stale: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("bgp: cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("bgp: only IPv4 peers and addresses are supported")]
    NotIpv4,
    #[error("bgp: peer {0} is already configured")]
    PeerExists(Ipv4Addr),
    #[error("bgp: the speaker has stopped")]
    Stopped,
}

pub type Result<T, E = SpeakerError> = std::result::Result<T, E>;

/// What the core task hears.
// UPDATEs are the bulk of the traffic, so they stay inline rather than boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum CoreMsg {
    AddPeer(PeerSpec),
    RemovePeer(Ipv4Addr),
    Originate(Ipv4Prefix),
    Withdraw(Ipv4Prefix),
    Shutdown,
    /// Stop without NOTIFICATIONs (see [`SpeakerHandle::stop_for_restart`]).
    StopForRestart,
    /// From a peer task: the session is Established.
    Up {
        key: PeerKey,
        session: u64,
        info: PeerInfo,
        /// The peer's Graceful Restart capability, when both sides advertised it.
        restart: Option<PeerRestart>,
    },
    /// From a peer task: the session is gone; `keep_for`: keep its routes that long, as
    /// stale (the peer may be restarting).
    Down {
        key: PeerKey,
        keep_for: Option<Duration>,
    },
    /// A timer the core armed for the stale routes of `key` ran out; `epoch` tells whether
    /// it is still the current one.
    StaleTimer {
        key: PeerKey,
        epoch: u64,
    },
    Update {
        key: PeerKey,
        update: Update,
    },
    Refresh {
        key: PeerKey,
        session: u64,
    },
}

/// The running speaker.
pub struct Speaker;

/// Controls a running speaker; cheap to clone.
#[derive(Clone)]
pub struct SpeakerHandle {
    core: mpsc::UnboundedSender<CoreMsg>,
    status: Arc<Mutex<HashMap<Ipv4Addr, PeerStatus>>>,
    fib: Arc<Mutex<Option<mpsc::UnboundedReceiver<FibChange>>>>,
    local_addr: SocketAddr,
}

/// Peers by address, for the listener.
type PeerInboxes = Arc<Mutex<HashMap<Ipv4Addr, mpsc::UnboundedSender<PeerMsg>>>>;

impl Speaker {
    /// Binds the listener and starts the speaker's tasks on the current tokio runtime.
    pub async fn start(config: SpeakerConfig) -> Result<SpeakerHandle> {
        if !config.listen.is_ipv4() {
            return Err(SpeakerError::NotIpv4);
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| SpeakerError::Listen(config.listen, e))?;
        let local_addr = listener.local_addr().unwrap_or(config.listen);
        let (core_tx, core_rx) = mpsc::unbounded_channel();
        let (fib_tx, fib_rx) = mpsc::unbounded_channel();
        let status = Arc::new(Mutex::new(HashMap::new()));
        let inboxes: PeerInboxes = Arc::new(Mutex::new(HashMap::new()));
        let accept = tokio::spawn(listen(listener, Arc::clone(&inboxes)));
        let core = Core {
            rib: Rib::new(RibConfig {
                asn: config.asn,
                router_id: config.router_id,
                cluster_id: config.cluster_id,
            }),
            config,
            peers: HashMap::new(),
            next_key: 0,
            inboxes,
            status: Arc::clone(&status),
            fib: fib_tx,
            core_tx: core_tx.downgrade(),
        };
        tokio::spawn(async move {
            core.run(core_rx).await;
            accept.abort();
        });
        Ok(SpeakerHandle {
            core: core_tx,
            status,
            fib: Arc::new(Mutex::new(Some(fib_rx))),
            local_addr,
        })
    }
}

impl SpeakerHandle {
    fn tell(&self, msg: CoreMsg) -> Result<()> {
        self.core.send(msg).map_err(|_| SpeakerError::Stopped)
    }

    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Starts a session with `peer`. Adding an address twice is logged and ignored by the
    /// core task (remove it first to change it).
    pub fn add_peer(&self, peer: PeerSpec) -> Result<()> {
        self.tell(CoreMsg::AddPeer(peer))
    }

    /// Closes the session (Cease / Administrative Shutdown) and forgets the peer.
    pub fn remove_peer(&self, address: Ipv4Addr) -> Result<()> {
        self.tell(CoreMsg::RemovePeer(address))
    }

    /// Originates `prefix` (ORIGIN IGP, our address as NEXT_HOP).
    pub fn originate(&self, prefix: Ipv4Prefix) -> Result<()> {
        self.tell(CoreMsg::Originate(prefix))
    }

    /// Stops originating `prefix`.
    pub fn withdraw(&self, prefix: Ipv4Prefix) -> Result<()> {
        self.tell(CoreMsg::Withdraw(prefix))
    }

    /// Every configured peer, sorted by address.
    pub fn status(&self) -> Vec<PeerStatus> {
        let table = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<PeerStatus> = table.values().cloned().collect();
        rows.sort_by_key(|r| r.address);
        rows
    }

    /// The learned best routes for the dataplane, in order. Returns the receiver once.
    pub fn fib_changes(&self) -> Option<mpsc::UnboundedReceiver<FibChange>> {
        self.fib.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Closes every session and stops the speaker.
    pub fn shutdown(&self) {
        let _ = self.core.send(CoreMsg::Shutdown);
    }

    /// Stops the speaker for a restart: the connections close without a NOTIFICATION, so
    /// peers doing Graceful Restart keep our routes (and forward on them) until the
    /// restarted speaker has sent them again.
    pub fn stop_for_restart(&self) {
        let _ = self.core.send(CoreMsg::StopForRestart);
    }
}

/// Accepts connections and hands them to the peer with the source address.
async fn listen(listener: TcpListener, inboxes: PeerInboxes) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "bgp: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let IpAddr::V4(source) = from.ip() else {
            continue;
        };
        let inbox = inboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&source)
            .cloned();
        match inbox {
            Some(inbox) => {
                let _ = inbox.send(PeerMsg::Incoming(stream));
            }
            None => tracing::info!(%source, "bgp: closing a connection from an unknown peer"),
        }
    }
}

struct PeerEntry {
    key: PeerKey,
    inbox: mpsc::UnboundedSender<PeerMsg>,
    /// The Established session the RIB holds for this peer, if any.
    session: Option<u64>,
    /// Counts the stale-route timers armed for the peer; only the latest one acts.
    stale_epoch: u64,
    /// [`PeerSpec::max_prefixes`].
    max_prefixes: Option<u32>,
}

struct Core {
    config: SpeakerConfig,
    rib: Rib,
    peers: HashMap<Ipv4Addr, PeerEntry>,
    next_key: u32,
    inboxes: PeerInboxes,
    status: Arc<Mutex<HashMap<Ipv4Addr, PeerStatus>>>,
    fib: mpsc::UnboundedSender<FibChange>,
    /// Given to peer tasks; weak so that dropping every handle ends the core.
    core_tx: mpsc::WeakUnboundedSender<CoreMsg>,
}

impl Core {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<CoreMsg>) {
        let mut last = PeerMsg::Stop;
        while let Some(msg) = inbox.recv().await {
            match msg {
                CoreMsg::Shutdown => break,
                CoreMsg::StopForRestart => {
                    last = PeerMsg::Abandon;
                    break;
                }
                msg => self.handle(msg),
            }
        }
        let abandon = matches!(last, PeerMsg::Abandon);
        for (_, peer) in self.peers.drain() {
            let _ = peer.inbox.send(if abandon {
                PeerMsg::Abandon
            } else {
                PeerMsg::Stop
            });
        }
    }

    fn handle(&mut self, msg: CoreMsg) {
        let mut changes = RibChanges::default();
        let mut end_of_rib = None;
        // Whose route counts to refresh, once the FIB has been told: a status never runs
        // ahead of the routes it counts.
        let mut counted = None;
        match msg {
            CoreMsg::AddPeer(spec) => self.add_peer(spec),
            CoreMsg::RemovePeer(address) => {
                if let Some(peer) = self.peers.remove(&address) {
                    self.inboxes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&address);
                    let _ = peer.inbox.send(PeerMsg::Stop);
                    if peer.session.is_some() || self.rib.is_restarting(peer.key) {
                        let _ = self.rib.peer_down(peer.key, &mut changes);
                    }
                }
            }
            CoreMsg::Originate(prefix) => self.rib.originate(prefix, &mut changes),
            CoreMsg::Withdraw(prefix) => self.rib.withdraw_local(prefix, &mut changes),
            CoreMsg::Shutdown | CoreMsg::StopForRestart => {}
            CoreMsg::Up {
                key,
                session,
                info,
                restart,
            } => {
                let Some(peer) = self.peers.get_mut(&info.address) else {
                    return;
                };
                if peer.key != key {
                    return;
                }
                if peer.session.take().is_some() {
                    let _ = self.rib.peer_down(key, &mut changes);
                }
                peer.session = Some(session);
                let restarted = self.rib.is_restarting(key);
                if self.rib.peer_up(key, info, &mut changes).is_ok() {
                    end_of_rib = Some(key);
                }
                if restarted {
                    // RFC 4724 section 4.2: without the capability, or with the F bit clear,
                    // the kept routes go now; else they wait for the peer's End-of-RIB.
                    if restart.is_some_and(|r| r.forwarding_preserved) {
                        self.arm_stale_timer(key, STALE_PATHS_TIME);
                    } else {
                        self.sweep_stale(key, &mut changes);
                    }
                }
                counted = Some(key);
            }
            CoreMsg::Down { key, keep_for } => {
                if let Some(peer) = self.peers.values_mut().find(|p| p.key == key) {
                    if peer.session.take().is_some() {
                        let kept = keep_for.filter(|_| self.rib.peer_restarting(key).is_ok());
                        match kept {
                            Some(time) => self.arm_stale_timer(key, time),
                            None => {
                                let _ = self.rib.peer_down(key, &mut changes);
                            }
                        }
                        counted = Some(key);
                    }
                }
            }
            CoreMsg::StaleTimer { key, epoch } => {
                let current = self
                    .peers
                    .values()
                    .any(|p| p.key == key && p.stale_epoch == epoch);
                if current {
                    self.sweep_stale(key, &mut changes);
                    counted = Some(key);
                }
            }
            CoreMsg::Update { key, update } => {
                if self.rib.update(key, &update, &mut changes).is_ok() {
                    if update.end_of_rib_family() == Some((AFI_IPV4, SAFI_UNICAST)) {
                        self.sweep_stale(key, &mut changes);
                    }
                    self.enforce_prefix_limit(key, &mut changes);
                    counted = Some(key);
                }
            }
            CoreMsg::Refresh { key, session } => {
                if let Some(out) = self.rib.adj_rib_out(key) {
                    let all = out
                        .iter()
                        .map(|(p, a)| OutChange::Announce(p, Arc::clone(a)))
                        .collect();
                    self.send_out(key, session, all, false);
                }
            }
        }
        self.apply(changes, end_of_rib);
        if let Some(key) = counted {
            self.count_routes(key);
        }
    }

    fn add_peer(&mut self, spec: PeerSpec) {
        if self.peers.contains_key(&spec.address) {
            tracing::warn!(peer = %spec.address, "bgp: peer already configured");
            return;
        }
        let Some(core) = self.core_tx.upgrade() else {
            return;
        };
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        let mut config = PeerConfig::new(self.config.asn, self.config.router_id, spec.asn);
        config.graceful_restart = spec.restart_time.map(|restart_time| GracefulRestart {
            restart_time,
            restarting: self.config.restarting,
            forwarding_preserved: self.config.forwarding_preserved,
        });
        config.passive = spec.passive;
        config.hold_time = spec.hold_time;
        config.connect_retry = self.config.connect_retry;
        config.idle_hold = self.config.idle_hold;
        config.prefix_limit_idle_hold = self.config.prefix_limit_idle_hold;
        let bind = match self.config.listen.ip() {
            IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
            _ => None,
        };
        let (inbox, rx) = mpsc::unbounded_channel();
        let args = PeerTaskArgs {
            key,
            address: spec.address,
            port: spec.port,
            rr_client: spec.rr_client,
            bind,
            fsm: PeerFsm::new(config),
            status: Arc::clone(&self.status),
            core,
        };
        tokio::spawn(session::run(args, rx));
        self.inboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.address, inbox.clone());
        self.peers.insert(
            spec.address,
            PeerEntry {
                key,
                inbox,
                session: None,
                stale_epoch: 0,
                max_prefixes: spec.max_prefixes,
            },
        );
    }

    /// RFC 4486 section 4: a peer holding more than its [`PeerSpec::max_prefixes`] loses its
    /// routes at once (the RIB forgets the session, so UPDATEs still queued for it are
    /// dropped) and its task closes the session with Cease / Maximum Number of Prefixes
    /// Reached. What is held never exceeds the limit by more than one UPDATE's prefixes
    /// (at most about a thousand in 4096 octets).
    fn enforce_prefix_limit(&mut self, key: PeerKey, changes: &mut RibChanges) {
        let held = self.rib.adj_rib_in(key).map_or(0, |a| a.len());
        let Some(peer) = self.peers.values_mut().find(|p| p.key == key) else {
            return;
        };
        let Some(limit) = peer.max_prefixes.filter(|&l| held > l as usize) else {
            return;
        };
        let Some(session) = peer.session.take() else {
            return;
        };
        tracing::warn!(
            ?key,
            held,
            limit,
            "bgp: peer sent more prefixes than allowed; closing its session"
        );
        let _ = peer.inbox.send(PeerMsg::PrefixLimit { session, limit });
        let _ = self.rib.peer_down(key, changes);
    }

    /// Arms (or re-arms: an earlier timer of the peer no longer acts) the time `key`'s
    /// stale routes may stay.
    fn arm_stale_timer(&mut self, key: PeerKey, after: Duration) {
        let Some(peer) = self.peers.values_mut().find(|p| p.key == key) else {
            return;
        };
        peer.stale_epoch += 1;
        let epoch = peer.stale_epoch;
        let core = self.core_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            if let Some(core) = core.upgrade() {
                let _ = core.send(CoreMsg::StaleTimer { key, epoch });
            }
        });
    }

    /// Sweeps `key`'s stale routes, if it has any, and disarms its timer.
    fn sweep_stale(&mut self, key: PeerKey, changes: &mut RibChanges) {
        if let Some(peer) = self.peers.values_mut().find(|p| p.key == key) {
            peer.stale_epoch += 1;
        }
        let swept = self.rib.sweep_stale(key, changes);
        if swept > 0 {
            tracing::info!(?key, swept, "bgp: stale routes of a restarted peer swept");
        }
    }

    fn count_routes(&self, key: PeerKey) {
        let Some((address, _)) = self.peers.iter().find(|(_, p)| p.key == key) else {
            return;
        };
        let held = self.rib.adj_rib_in(key).map_or(0, |a| a.len() as u64);
        let stale = self.rib.stale_count(key) as u64;
        if let Some(row) = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(address)
        {
            row.routes_received = held;
            row.routes_stale = stale;
        }
    }

    /// Hands the FIB changes to the dataplane and each peer its Adj-RIB-Out changes.
    fn apply(&mut self, changes: RibChanges, end_of_rib: Option<PeerKey>) {
        for change in changes.fib {
            let _ = self.fib.send(change);
        }
        let mut per_peer: HashMap<PeerKey, Vec<OutChange>> = HashMap::new();
        for (key, change) in changes.out {
            per_peer.entry(key).or_default().push(change);
        }
        if let Some(key) = end_of_rib {
            per_peer.entry(key).or_default();
        }
        for (key, out) in per_peer {
            let Some(session) = self
                .peers
                .values()
                .find(|p| p.key == key)
                .and_then(|p| p.session)
            else {
                continue;
            };
            self.send_out(key, session, out, end_of_rib == Some(key));
        }
    }

    fn send_out(&self, key: PeerKey, session: u64, changes: Vec<OutChange>, end_of_rib: bool) {
        if let Some(peer) = self.peers.values().find(|p| p.key == key) {
            let _ = peer.inbox.send(PeerMsg::Out {
                session,
                changes,
                end_of_rib,
            });
        }
    }
}
