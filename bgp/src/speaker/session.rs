//! One peer's task: it owns the [`PeerFsm`], the peer's connections (at most one per side,
//! [`ConnectionId`]) and the timers, and carries out the FSM's actions. Routes go to and
//! come from the speaker's core task, which owns the RIB.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::connection::{ConnReport, Connection, Received};
use super::{CoreMsg, PeerStatus};
use crate::fsm::{Action, ConnectionId, Event, Negotiated, PeerFsm};
use crate::packet::consts::error_code;
use crate::packet::{EncodeContext, Message, PathAttributes, Update};
use crate::rib::{OutChange, PeerInfo, PeerKey};

/// How long an outgoing TCP connect may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a peer task is told.
pub(crate) enum PeerMsg {
    /// The listener accepted a connection from this peer's address.
    Incoming(TcpStream),
    /// Routes to send, computed for session `session`.
    Out {
        session: u64,
        changes: Vec<OutChange>,
        end_of_rib: bool,
    },
    /// The core holds more than `limit` prefixes from session `session` and dropped them
    /// (RFC 4486 section 4): close it.
    PrefixLimit { session: u64, limit: u32 },
    /// ManualStop, then end the task.
    Stop,
    /// End the task closing the connections without a NOTIFICATION, so that the peer
    /// keeps our routes while we restart (RFC 4724 section 4.2: it retains them when the
    /// TCP session ends).
    Abandon,
}

/// Internal: an outgoing connect finished.
struct Connected {
    generation: u64,
    result: std::io::Result<TcpStream>,
}

pub(crate) struct PeerTask {
    key: PeerKey,
    address: Ipv4Addr,
    port: u16,
    rr_client: bool,
    bind: Option<Ipv4Addr>,
    fsm: PeerFsm,
    connections: HashMap<ConnectionId, Connection>,
    connecting: Option<(u64, JoinHandle<()>)>,
    next_generation: u64,
    /// Counts Established sessions, so route batches computed for an earlier one are
    /// recognised and dropped.
    session: u64,
    /// What the current (or last) session negotiated.
    negotiated: Option<Negotiated>,
    encode: EncodeContext,
    status: Arc<Mutex<HashMap<Ipv4Addr, PeerStatus>>>,
    core: mpsc::UnboundedSender<CoreMsg>,
    reports_tx: mpsc::UnboundedSender<ConnReport>,
    connected_tx: mpsc::UnboundedSender<Connected>,
}

pub(crate) struct PeerTaskArgs {
    pub key: PeerKey,
    pub address: Ipv4Addr,
    pub port: u16,
    pub rr_client: bool,
    pub bind: Option<Ipv4Addr>,
    pub fsm: PeerFsm,
    pub status: Arc<Mutex<HashMap<Ipv4Addr, PeerStatus>>>,
    pub core: mpsc::UnboundedSender<CoreMsg>,
}

pub(crate) async fn run(args: PeerTaskArgs, mut inbox: mpsc::UnboundedReceiver<PeerMsg>) {
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let (connected_tx, mut connected) = mpsc::unbounded_channel();
    let mut task = PeerTask {
        key: args.key,
        address: args.address,
        port: args.port,
        rr_client: args.rr_client,
        bind: args.bind,
        fsm: args.fsm,
        connections: HashMap::new(),
        connecting: None,
        next_generation: 0,
        session: 0,
        negotiated: None,
        encode: EncodeContext::default(),
        status: args.status,
        core: args.core,
        reports_tx,
        connected_tx,
    };
    task.feed(Event::ManualStart);
    let abandoned = loop {
        let deadline = task.fsm.timers().next();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = inbox.recv() => match msg {
                None | Some(PeerMsg::Stop) => break false,
                Some(PeerMsg::Abandon) => break true,
                Some(PeerMsg::Incoming(stream)) => task.incoming(stream),
                Some(PeerMsg::Out { session, changes, end_of_rib }) => {
                    task.send_routes(session, changes, end_of_rib)
                }
                Some(PeerMsg::PrefixLimit { session, limit }) => {
                    if session == task.session {
                        task.feed(Event::PrefixLimitExceeded { limit });
                    }
                }
            },
            Some(report) = reports.recv() => task.report(report),
            Some(done) = connected.recv() => task.connected(done),
            _ = sleep => {
                if let Some(event) = task.fsm.expired(Instant::now()) {
                    task.feed(event);
                }
            }
        }
    };
    if !abandoned {
        task.feed(Event::ManualStop);
    }
    task.status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&task.address);
}

impl PeerTask {
    fn feed(&mut self, event: Event) {
        let actions = self.fsm.handle(event, Instant::now());
        for action in actions {
            self.act(action);
        }
        self.publish_status();
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Connect => self.connect(),
            Action::SendOpen(c, open) => self.send(c, &Message::Open(open)),
            Action::SendKeepalive(c) => self.send(c, &Message::Keepalive),
            Action::SendNotification(c, n) => {
                tracing::info!(peer = %self.address, notification = %n, "bgp: sending NOTIFICATION");
                self.send(c, &Message::Notification(n))
            }
            Action::CloseConnection(c) => {
                if c == ConnectionId::Outgoing {
                    if let Some((_, attempt)) = self.connecting.take() {
                        attempt.abort();
                    }
                }
                self.connections.remove(&c);
            }
            Action::Established(n) => {
                self.session += 1;
                self.negotiated = Some(n);
                self.encode = EncodeContext {
                    four_octet_as: n.four_octet_as,
                };
                let local_address = self
                    .fsm
                    .connection()
                    .and_then(|c| self.connections.get(&c))
                    .map_or(Ipv4Addr::UNSPECIFIED, |c| c.local_address);
                tracing::info!(peer = %self.address, "bgp: session Established");
                let info = PeerInfo {
                    address: self.address,
                    asn: n.peer_as,
                    router_id: n.peer_id,
                    local_address,
                    rr_client: self.rr_client,
                };
                let _ = self.core.send(CoreMsg::Up {
                    key: self.key,
                    session: self.session,
                    info,
                    restart: n.graceful_restart,
                });
            }
            Action::Down(reason) => {
                let keep_for = self
                    .negotiated
                    .and_then(|n| n.graceful_restart)
                    .filter(|_| reason.keeps_routes())
                    .map(|r| Duration::from_secs(r.restart_time.into()));
                tracing::info!(peer = %self.address, %reason, ?keep_for, "bgp: session down");
                let _ = self.core.send(CoreMsg::Down {
                    key: self.key,
                    keep_for,
                });
            }
        }
    }

    fn send(&self, c: ConnectionId, message: &Message) {
        if let Some(conn) = self.connections.get(&c) {
            conn.send(message.encode(&self.encode));
        }
    }

    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// Action::Connect: start a TCP connect to the peer; its result comes back as
    /// [`Connected`].
    fn connect(&mut self) {
        if let Some((_, attempt)) = self.connecting.take() {
            attempt.abort();
        }
        let generation = self.generation();
        let target = SocketAddr::new(IpAddr::V4(self.address), self.port);
        let bind = self.bind;
        let done = self.connected_tx.clone();
        let attempt = tokio::spawn(async move {
            let result = tokio::time::timeout(CONNECT_TIMEOUT, async {
                let socket = TcpSocket::new_v4()?;
                if let Some(ip) = bind {
                    socket.bind(SocketAddr::new(IpAddr::V4(ip), 0))?;
                }
                socket.connect(target).await
            })
            .await
            .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
            let _ = done.send(Connected { generation, result });
        });
        self.connecting = Some((generation, attempt));
    }

    fn connected(&mut self, done: Connected) {
        match &self.connecting {
            Some((g, _)) if *g == done.generation => self.connecting = None,
            _ => return,
        }
        match done.result {
            Ok(stream) => {
                let generation = self.generation();
                let conn = Connection::spawn(stream, generation, self.reports_tx.clone());
                self.connections.insert(ConnectionId::Outgoing, conn);
                self.feed(Event::Tcp_CR_Acked);
            }
            Err(e) => {
                tracing::debug!(peer = %self.address, error = %e, "bgp: connect failed");
                self.feed(Event::TcpConnectionFails(ConnectionId::Outgoing));
            }
        }
    }

    /// The listener handed us a connection from the peer. A second one from the peer's side
    /// is refused (see [`ConnectionId`]).
    fn incoming(&mut self, stream: TcpStream) {
        if self.connections.contains_key(&ConnectionId::Incoming) {
            tracing::debug!(peer = %self.address, "bgp: refusing a second incoming connection");
            return;
        }
        let generation = self.generation();
        let conn = Connection::spawn(stream, generation, self.reports_tx.clone());
        self.connections.insert(ConnectionId::Incoming, conn);
        self.feed(Event::TcpConnectionConfirmed);
    }

    fn report(&mut self, report: ConnReport) {
        let Some(c) = self
            .connections
            .iter()
            .find(|(_, conn)| conn.generation == report.generation)
            .map(|(c, _)| *c)
        else {
            return;
        };
        let event = match report.received {
            Received::Closed => {
                self.connections.remove(&c);
                Event::TcpConnectionFails(c)
            }
            Received::Malformed(n) => match n.code {
                error_code::OPEN_MESSAGE_ERROR => Event::BGPOpenMsgErr(c, n),
                error_code::UPDATE_MESSAGE_ERROR => Event::UpdateMsgErr(c, n),
                _ => Event::BGPHeaderErr(c, n),
            },
            Received::Message(Message::Open(open)) => Event::BGPOpen(c, open),
            Received::Message(Message::Keepalive) => Event::KeepAliveMsg(c),
            Received::Message(Message::Notification(n)) => {
                tracing::info!(peer = %self.address, notification = %n, "bgp: received NOTIFICATION");
                Event::NotifMsg(c, n)
            }
            Received::Message(Message::Update(update)) => {
                self.feed(Event::UpdateMsg(c));
                if self.fsm.state() == crate::fsm::State::Established
                    && self.fsm.connection() == Some(c)
                {
                    if let Some(m) = &update.malformation {
                        tracing::warn!(peer = %self.address, error = %m, "bgp: malformed UPDATE handled per RFC 7606");
                    }
                    let _ = self.core.send(CoreMsg::Update {
                        key: self.key,
                        update,
                    });
                }
                return;
            }
            Received::Message(Message::RouteRefresh(_)) => {
                // RFC 2918 section 4: send the Adj-RIB-Out again.
                if self.fsm.state() == crate::fsm::State::Established {
                    let _ = self.core.send(CoreMsg::Refresh {
                        key: self.key,
                        session: self.session,
                    });
                }
                return;
            }
        };
        self.feed(event);
    }

    /// Sends a batch of Adj-RIB-Out changes as packed UPDATEs: withdrawals together, then
    /// the announcements grouped by shared attribute set.
    fn send_routes(&mut self, session: u64, changes: Vec<OutChange>, end_of_rib: bool) {
        if session != self.session || self.fsm.state() != crate::fsm::State::Established {
            return;
        }
        let Some(c) = self.fsm.connection() else {
            return;
        };
        let mut withdrawn = Vec::new();
        let mut groups: Vec<(Arc<PathAttributes>, Vec<_>)> = Vec::new();
        let mut index: HashMap<*const PathAttributes, usize> = HashMap::new();
        for change in changes {
            match change {
                OutChange::Withdraw(p) => withdrawn.push(p),
                OutChange::Announce(p, attrs) => {
                    let slot = *index.entry(Arc::as_ptr(&attrs)).or_insert_with(|| {
                        groups.push((Arc::clone(&attrs), Vec::new()));
                        groups.len() - 1
                    });
                    groups[slot].1.push(p);
                }
            }
        }
        let mut updates = Update::pack(&withdrawn, &PathAttributes::default(), &[], &self.encode);
        for (attrs, nlri) in &groups {
            updates.extend(Update::pack(&[], attrs, nlri, &self.encode));
        }
        if end_of_rib {
            updates.push(Update::end_of_rib());
        }
        if updates.is_empty() {
            return;
        }
        for update in updates {
            self.send(c, &Message::Update(update));
        }
        self.fsm.update_sent(Instant::now());
    }

    fn publish_status(&self) {
        let since = self.fsm.since().map(|at| {
            SystemTime::now()
                .checked_sub(at.elapsed())
                .unwrap_or(SystemTime::now())
        });
        let mut table = self.status.lock().unwrap_or_else(|e| e.into_inner());
        // The core task counts the routes (it owns the Adj-RIB-In); keep its counts.
        let (routes_received, routes_stale) = table
            .get(&self.address)
            .map_or((0, 0), |old| (old.routes_received, old.routes_stale));
        let status = PeerStatus {
            address: self.address,
            asn: self.fsm.config().peer_as,
            state: self.fsm.state(),
            since,
            last_error: self.fsm.last_error().map(|e| e.to_string()),
            routes_received,
            routes_stale,
        };
        table.insert(self.address, status);
    }
}
