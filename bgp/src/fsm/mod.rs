//! The per-peer BGP finite state machine (RFC 4271 section 8).
//!
//! Pure: no sockets and no clock. The runtime feeds [`Event`]s (with the `now` they happened
//! at) into [`PeerFsm::handle`] and carries out the [`Action`]s it returns: open or close TCP
//! connections, send messages, tell the RIB a session came up or went down. Timers are
//! deadlines ([`PeerFsm::timers`]) the runtime arms; when one passes, the runtime feeds the
//! matching `*_Expires` event ([`PeerFsm::expired`] says which).
//!
//! States and events carry the names section 8 gives them, so the code can be read next to
//! the RFC. The optional session attributes of section 8.1.1 that are not implemented
//! (DelayOpen, DampPeerOscillations, ...) are simply absent.
//!
//! Connection collisions (section 6.8): a peer has at most two TCP connections, one we
//! initiated ([`ConnectionId::Outgoing`]) and one the peer initiated
//! ([`ConnectionId::Incoming`]). The first to come up drives the FSM; the other one, while
//! the first is not yet Established, is kept in OpenSent until an OPEN tells us the peer's
//! BGP Identifier, and then the connection initiated by the speaker with the higher BGP
//! Identifier is kept and the other closed with Cease / Connection Collision Resolution
//! (RFC 4486 subcode 7).
//!
//! This file holds the vocabulary (states, events, actions) and the dispatch of an event to
//! its transition; the transitions are grouped by the states they run in:
//! `idle_connect_active`, `open_established`, and `errors` for what any state does on an
//! error.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::packet::consts::{cease, error_code, fsm_error, open_message_error};
use crate::packet::{Notification, Open, AFI_IPV4, SAFI_UNICAST};

mod config;
mod errors;
mod idle_connect_active;
mod open_established;

pub use config::{GracefulRestart, PeerConfig, MAX_RESTART_TIME};
pub use errors::prefix_limit_notification;

/// ConnectRetryTime default (RFC 4271 section 10).
pub const DEFAULT_CONNECT_RETRY: Duration = Duration::from_secs(120);
/// HoldTime default (RFC 4271 section 10).
pub const DEFAULT_HOLD_TIME: u16 = 90;
/// The "large value" the HoldTimer is set to while waiting for the peer's OPEN
/// (RFC 4271 section 8.2.2, "suggested value for this timer is 4 minutes").
pub const OPEN_SENT_HOLD: Duration = Duration::from_secs(240);
/// How long a started peer rests in Idle after an error before it starts again by itself
/// (the IdleHoldTimer of RFC 4271 section 8.1.1, optional attribute DampPeerOscillations
/// without the damping: a fixed wait).
pub const DEFAULT_IDLE_HOLD: Duration = Duration::from_secs(5);
/// How long a peer rests in Idle after we closed its session for sending more prefixes than
/// allowed (RFC 4486 section 4): long enough that a peer stuck in the same state does not
/// flap the session (and the routes of everyone else) every few seconds; like BIRD's
/// `receive limit ... action restart`, the session then starts again by itself.
pub const DEFAULT_PREFIX_LIMIT_IDLE_HOLD: Duration = Duration::from_secs(120);

/// Section 8.2.2 states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Which side initiated a TCP connection; a peer has at most one of each. The runtime
/// closes a new connection from a side that already has one (e.g. a peer reconnecting while
/// its old connection is still held) without reporting it, and reports
/// `TcpConnectionFails` for the old one when it notices it is dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionId {
    /// We connected to the peer (its port 179).
    Outgoing,
    /// The peer connected to us.
    Incoming,
}

impl ConnectionId {
    fn other(self) -> Self {
        match self {
            Self::Outgoing => Self::Incoming,
            Self::Incoming => Self::Outgoing,
        }
    }
}

/// Section 8.1 events. Message and TCP events name the connection they happened on.
#[allow(non_camel_case_types)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Event 1.
    ManualStart,
    /// Event 2.
    ManualStop,
    /// Event 3.
    AutomaticStart,
    /// Event 9.
    ConnectRetryTimer_Expires,
    /// Event 10.
    HoldTimer_Expires,
    /// Event 11.
    KeepaliveTimer_Expires,
    /// Event 13 (optional): the rest after an error is over; acts as AutomaticStart.
    IdleHoldTimer_Expires,
    /// Event 16: the TCP connection we initiated is up.
    Tcp_CR_Acked,
    /// Event 17: the peer connected to us.
    TcpConnectionConfirmed,
    /// Event 18.
    TcpConnectionFails(ConnectionId),
    /// Event 19: a valid OPEN arrived.
    BGPOpen(ConnectionId, Open),
    /// Event 21: the codec found a bad message header; it built the NOTIFICATION.
    BGPHeaderErr(ConnectionId, Notification),
    /// Event 22: the codec found a bad OPEN; it built the NOTIFICATION.
    BGPOpenMsgErr(ConnectionId, Notification),
    /// Event 23: collision resolution (section 6.8) chose to drop this connection.
    OpenCollisionDump(ConnectionId),
    /// Event 25: the peer sent a NOTIFICATION.
    NotifMsg(ConnectionId, Notification),
    /// Event 26.
    KeepAliveMsg(ConnectionId),
    /// Event 27: a valid UPDATE (the runtime hands it to the RIB; the FSM only restarts
    /// the HoldTimer).
    UpdateMsg(ConnectionId),
    /// Event 28: the codec found an UPDATE error that resets the session.
    UpdateMsgErr(ConnectionId, Notification),
    /// Not one of section 8.1's: the RIB holds more than `limit` prefixes from the peer
    /// (RFC 4486 section 4). Cease / Maximum Number of Prefixes Reached, then Idle for
    /// [`PeerConfig::prefix_limit_idle_hold`].
    PrefixLimitExceeded { limit: u32 },
}

/// What the session negotiated, for the RIB and for the runtime's encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_as: u32,
    pub peer_id: Ipv4Addr,
    /// Both sides support 4-octet AS numbers (RFC 6793): encode AS_PATH with 4 octets.
    pub four_octet_as: bool,
    /// The peer accepts ROUTE-REFRESH (RFC 2918).
    pub route_refresh: bool,
    /// Negotiated Hold Time in seconds (the smaller of the two proposals; 0 = none).
    pub hold_time: u16,
    /// Keepalive interval in seconds (hold / 3; 0 = no keepalives).
    pub keepalive: u16,
    /// Graceful Restart for IPv4 unicast, when both sides advertised it (RFC 4724).
    pub graceful_restart: Option<PeerRestart>,
}

/// The peer's Graceful Restart capability, for its IPv4 unicast routes (RFC 4724 section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerRestart {
    /// How long to keep its routes, as stale, after the session drops (section 4.2).
    pub restart_time: u16,
    /// The F bit: its forwarding state survived its restart, so the routes kept from the
    /// previous session may stay until its End-of-RIB. Clear: they go at once.
    pub forwarding_preserved: bool,
}

impl DownReason {
    /// RFC 4724 section 4.2: the peer's routes are kept when the TCP session ends (or the
    /// peer stops answering, as a restarting one does), not when either side closed it with
    /// a NOTIFICATION or we stopped the peer ourselves.
    pub fn keeps_routes(&self) -> bool {
        matches!(self, Self::ConnectionFailed | Self::HoldTimerExpired)
    }
}

/// Why a session went down (or failed to come up): the INFO column of `node status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    ManualStop,
    HoldTimerExpired,
    /// The peer sent this NOTIFICATION.
    NotificationReceived(Notification),
    /// We sent this NOTIFICATION (a bad message or an unexpected one).
    NotificationSent(Notification),
    ConnectionFailed,
    /// Collision resolution closed the connection the session ran on.
    ConnectionCollision,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ManualStop => write!(f, "Stopped"),
            Self::HoldTimerExpired => write!(f, "Hold timer expired"),
            Self::NotificationReceived(n) => write!(f, "Received: {n}"),
            Self::NotificationSent(n) => write!(f, "Sent: {n}"),
            Self::ConnectionFailed => write!(f, "Connection failed"),
            Self::ConnectionCollision => write!(f, "Connection collision"),
        }
    }
}

/// What the runtime must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Initiate a TCP connection to the peer; report Tcp_CR_Acked or
    /// TcpConnectionFails(Outgoing).
    Connect,
    SendOpen(ConnectionId, Open),
    SendKeepalive(ConnectionId),
    SendNotification(ConnectionId, Notification),
    /// Close (or abort, while connecting) that connection.
    CloseConnection(ConnectionId),
    /// The session is up: send the peer its Adj-RIB-Out. UPDATEs are sent by the runtime
    /// from the Adj-RIB-Out; it calls [`PeerFsm::update_sent`] so the KeepaliveTimer
    /// restarts (section 8.2.2).
    Established(Negotiated),
    /// The session left Established: drop every route learned from the peer.
    Down(DownReason),
}

/// The deadlines the runtime arms (section 8.1.3 timers as instants).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timers {
    pub connect_retry: Option<Instant>,
    pub hold: Option<Instant>,
    pub keepalive: Option<Instant>,
    pub idle_hold: Option<Instant>,
}

impl Timers {
    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        [
            self.connect_retry,
            self.hold,
            self.keepalive,
            self.idle_hold,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// One peer's FSM.
#[derive(Clone, Debug)]
pub struct PeerFsm {
    config: PeerConfig,
    state: State,
    /// Set by ManualStart/AutomaticStart, cleared by ManualStop: a started peer comes back
    /// by itself after an error (IdleHoldTimer).
    started: bool,
    /// The connection the FSM runs on, from OpenSent onwards; in Connect it is the
    /// connection being attempted (Outgoing).
    connection: Option<ConnectionId>,
    /// A second connection in OpenSent, waiting for collision resolution (section 6.8).
    colliding: Option<ConnectionId>,
    timers: Timers,
    negotiated: Option<Negotiated>,
    last_error: Option<DownReason>,
    /// When the state last changed (the SINCE column of `node status`).
    since: Option<Instant>,
}

impl PeerFsm {
    pub fn new(config: PeerConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            started: false,
            connection: None,
            colliding: None,
            timers: Timers::default(),
            negotiated: None,
            last_error: None,
            since: None,
        }
    }

    pub fn config(&self) -> &PeerConfig {
        &self.config
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// The connection the session runs on (OpenSent and later).
    pub fn connection(&self) -> Option<ConnectionId> {
        self.connection
    }

    /// What the session negotiated; `Some` from OpenConfirm on.
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.negotiated
    }

    /// Why the session last went down or failed to come up.
    pub fn last_error(&self) -> Option<&DownReason> {
        self.last_error.as_ref()
    }

    /// When the FSM last changed state.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// The timer event whose deadline has passed at `now`, if any (earliest first).
    pub fn expired(&self, now: Instant) -> Option<Event> {
        let t = &self.timers;
        let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
        if due(t.hold) {
            Some(Event::HoldTimer_Expires)
        } else if due(t.keepalive) {
            Some(Event::KeepaliveTimer_Expires)
        } else if due(t.connect_retry) {
            Some(Event::ConnectRetryTimer_Expires)
        } else if due(t.idle_hold) {
            Some(Event::IdleHoldTimer_Expires)
        } else {
            None
        }
    }

    /// The runtime sent an UPDATE: restart the KeepaliveTimer (section 8.2.2, Established).
    pub fn update_sent(&mut self, now: Instant) {
        if self.state == State::Established {
            self.arm_keepalive(now);
        }
    }

    /// Feed one event; returns what the runtime must do, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let before = self.state;
        match event {
            Event::ManualStart | Event::AutomaticStart | Event::IdleHoldTimer_Expires => {
                self.start(now, &mut out)
            }
            Event::ManualStop => self.manual_stop(now, &mut out),
            Event::ConnectRetryTimer_Expires => self.connect_retry_expires(now, &mut out),
            Event::HoldTimer_Expires => self.hold_expires(now, &mut out),
            Event::KeepaliveTimer_Expires => self.keepalive_expires(now, &mut out),
            Event::Tcp_CR_Acked => self.tcp_up(ConnectionId::Outgoing, now, &mut out),
            Event::TcpConnectionConfirmed => self.tcp_up(ConnectionId::Incoming, now, &mut out),
            Event::TcpConnectionFails(c) => self.tcp_fails(c, now, &mut out),
            Event::BGPOpen(c, open) => self.bgp_open(c, open, now, &mut out),
            Event::BGPHeaderErr(c, n) | Event::BGPOpenMsgErr(c, n) | Event::UpdateMsgErr(c, n) => {
                self.message_error(c, n, now, &mut out)
            }
            Event::OpenCollisionDump(c) => self.collision_dump(c, now, &mut out),
            Event::NotifMsg(c, n) => self.notification_received(c, n, now, &mut out),
            Event::KeepAliveMsg(c) => self.keepalive_received(c, now, &mut out),
            Event::UpdateMsg(c) => self.update_received(c, now, &mut out),
            Event::PrefixLimitExceeded { limit } => {
                self.prefix_limit_exceeded(limit, now, &mut out)
            }
        }
        if self.state != before {
            self.since = Some(now);
            tracing::debug!(from = %before, to = %self.state, "bgp fsm transition");
        }
        out
    }
}
