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

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::packet::notification::{cease, error_code, fsm_error, open_message_error};
use crate::packet::{Notification, Open};

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

/// What the FSM needs to know about the session it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    pub local_as: u32,
    /// Our BGP Identifier.
    pub local_id: Ipv4Addr,
    /// The AS the peer must announce in its OPEN.
    pub peer_as: u32,
    /// Passive: never connect, only wait for the peer (section 8.1.1 PassiveTcpEstablishment).
    pub passive: bool,
    /// The Hold Time we propose: 0, or 3 and more.
    pub hold_time: u16,
    pub connect_retry: Duration,
    pub idle_hold: Duration,
}

impl PeerConfig {
    /// A peer with the RFC's default timers, active.
    pub fn new(local_as: u32, local_id: Ipv4Addr, peer_as: u32) -> Self {
        Self {
            local_as,
            local_id,
            peer_as,
            passive: false,
            hold_time: DEFAULT_HOLD_TIME,
            connect_retry: DEFAULT_CONNECT_RETRY,
            idle_hold: DEFAULT_IDLE_HOLD,
        }
    }

    /// True for an internal peer (same AS).
    pub fn is_ibgp(&self) -> bool {
        self.local_as == self.peer_as
    }

    /// The OPEN we send: our AS (AS_TRANS plus the 4-octet capability when it does not fit,
    /// RFC 6793), the proposed Hold Time, IPv4 unicast (RFC 4760) and route refresh
    /// (RFC 2918).
    pub fn open(&self) -> Open {
        use crate::packet::{Capability, AFI_IPV4, SAFI_UNICAST};
        Open::new(
            self.local_as,
            self.hold_time,
            self.local_id,
            vec![
                Capability::Multiprotocol {
                    afi: AFI_IPV4,
                    safi: SAFI_UNICAST,
                },
                Capability::RouteRefresh,
                Capability::FourOctetAs(self.local_as),
            ],
        )
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
        }
        if self.state != before {
            self.since = Some(now);
            tracing::debug!(from = %before, to = %self.state, "bgp fsm transition");
        }
        out
    }

    // --- Idle, Connect, Active -------------------------------------------------------------

    /// Events 1, 3 (and 13): in Idle, start connecting (or listening when passive); ignored
    /// in every other state (section 8.2.2).
    fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.started = true;
        self.timers.idle_hold = None;
        if self.state != State::Idle {
            return;
        }
        self.timers.connect_retry = Some(now + self.config.connect_retry);
        if self.config.passive {
            // A passive peer never connects, so it has no retry to run.
            self.timers.connect_retry = None;
            self.state = State::Active;
        } else {
            self.connection = Some(ConnectionId::Outgoing);
            out.push(Action::Connect);
            self.state = State::Connect;
        }
    }

    /// Event 2: Cease / Administrative Shutdown on an open session (RFC 4486), then Idle.
    fn manual_stop(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.started = false;
        let notify = matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        );
        if notify {
            if let Some(c) = self.connection {
                out.push(Action::SendNotification(
                    c,
                    Notification::cease(cease::ADMINISTRATIVE_SHUTDOWN),
                ));
            }
        }
        self.go_idle(DownReason::ManualStop, now, out);
    }

    /// Event 9: Connect retries the connection; Active (not passive) starts one; in OpenSent
    /// and later it is an FSM error, but the timer is never armed there.
    fn connect_retry_expires(&mut self, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            State::Connect => {
                out.push(Action::CloseConnection(ConnectionId::Outgoing));
                out.push(Action::Connect);
                self.timers.connect_retry = Some(now + self.config.connect_retry);
            }
            State::Active if !self.config.passive => {
                self.timers.connect_retry = Some(now + self.config.connect_retry);
                self.connection = Some(ConnectionId::Outgoing);
                out.push(Action::Connect);
                self.state = State::Connect;
            }
            _ => self.timers.connect_retry = None,
        }
    }

    /// Events 16 and 17: a TCP connection is up.
    fn tcp_up(&mut self, c: ConnectionId, now: Instant, out: &mut Vec<Action>) {
        match self.state {
            // Idle refuses connections (section 8.2.2).
            State::Idle => out.push(Action::CloseConnection(c)),
            State::Connect | State::Active => {
                // An incoming connection while our own attempt is pending: the attempt
                // may still complete and then collides (section 6.8).
                self.timers.connect_retry = None;
                self.connection = Some(c);
                out.push(Action::SendOpen(c, self.config.open()));
                self.timers.hold = Some(now + OPEN_SENT_HOLD);
                self.state = State::OpenSent;
            }
            State::OpenSent | State::OpenConfirm
                if self.connection != Some(c) && self.colliding.is_none() =>
            {
                // A second connection: run it to its OPEN, then resolve (section 6.8).
                self.colliding = Some(c);
                out.push(Action::SendOpen(c, self.config.open()));
            }
            State::Established if self.connection != Some(c) => {
                // A collision with an Established session closes the new connection
                // (section 6.8).
                out.push(Action::SendNotification(
                    c,
                    Notification::cease(cease::CONNECTION_COLLISION_RESOLUTION),
                ));
                out.push(Action::CloseConnection(c));
            }
            // A second connection from a side that has one already: the runtime refuses
            // those itself (see [`ConnectionId`]), so there is nothing to say about it here.
            _ => {}
        }
    }

    /// Event 18.
    fn tcp_fails(&mut self, c: ConnectionId, now: Instant, out: &mut Vec<Action>) {
        if self.colliding == Some(c) {
            self.colliding = None;
            return;
        }
        if self.connection != Some(c) {
            return;
        }
        match self.state {
            State::Idle => {}
            State::Connect => {
                // Keep listening, retry when ConnectRetryTimer fires.
                self.connection = None;
                self.timers.connect_retry = Some(now + self.config.connect_retry);
                self.last_error = Some(DownReason::ConnectionFailed);
                self.state = State::Active;
            }
            State::OpenSent if self.colliding.is_none() => {
                // Section 8.2.2 OpenSent: back to Active, listen and retry.
                self.connection = None;
                self.timers.hold = None;
                self.timers.connect_retry =
                    (!self.config.passive).then(|| now + self.config.connect_retry);
                self.last_error = Some(DownReason::ConnectionFailed);
                self.state = State::Active;
            }
            _ => {
                if self.promote_colliding(now) {
                    return;
                }
                self.connection = None;
                self.go_idle(DownReason::ConnectionFailed, now, out);
            }
        }
    }

    // --- OpenSent, OpenConfirm, Established -------------------------------------------------

    /// Event 19.
    fn bgp_open(&mut self, c: ConnectionId, open: Open, now: Instant, out: &mut Vec<Action>) {
        let on_colliding = self.colliding == Some(c);
        if !on_colliding && self.connection != Some(c) {
            return;
        }
        match self.state {
            State::OpenSent => {}
            State::OpenConfirm if on_colliding => {}
            State::OpenConfirm => {
                return self.fsm_error(c, fsm_error::UNEXPECTED_MESSAGE_IN_OPEN_CONFIRM, now, out)
            }
            State::Established => {
                return self.fsm_error(c, fsm_error::UNEXPECTED_MESSAGE_IN_ESTABLISHED, now, out)
            }
            _ => return,
        }
        let negotiated = match self.check_open(&open) {
            Ok(n) => n,
            Err(notification) => {
                if on_colliding {
                    self.colliding = None;
                    out.push(Action::SendNotification(c, notification));
                    out.push(Action::CloseConnection(c));
                    return;
                }
                return self.send_error_and_idle(c, notification, now, out);
            }
        };
        let other = if on_colliding {
            self.connection
        } else {
            self.colliding
        };
        if other.is_some() {
            // Section 6.8: keep the connection initiated by the higher BGP Identifier.
            let keep = if u32::from(self.config.local_id) > u32::from(negotiated.peer_id) {
                ConnectionId::Outgoing
            } else {
                ConnectionId::Incoming
            };
            let dump = keep.other();
            self.collision_dump(dump, now, out);
            if dump == c {
                return;
            }
        }
        // This connection carries the session now (it may have been the colliding one).
        self.connection = Some(c);
        self.colliding = None;
        self.negotiated = Some(negotiated);
        out.push(Action::SendKeepalive(c));
        self.arm_hold(now);
        self.arm_keepalive(now);
        self.state = State::OpenConfirm;
    }

    /// The OPEN checks of section 6.2 that need the session's configuration; the codec has
    /// already checked the version and the syntax.
    fn check_open(&self, open: &Open) -> Result<Negotiated, Notification> {
        let open_error =
            |subcode| Notification::new(error_code::OPEN_MESSAGE_ERROR, subcode, Vec::new());
        // RFC 6793 section 4.1: a 4-octet speaker puts its real AS in the capability and
        // AS_TRANS in My AS when the real one does not fit.
        let peer_as = open.asn();
        if peer_as != self.config.peer_as {
            // Section 6.2: the data is the 2-octet My AS field as received.
            let mut n = open_error(open_message_error::BAD_PEER_AS);
            n.data = open.my_as.to_be_bytes().to_vec();
            return Err(n);
        }
        // Section 6.2 (syntactically incorrect identifier) and RFC 6286 section 2.2 (for
        // iBGP the identifiers must differ).
        let id = open.bgp_identifier;
        if id.is_unspecified()
            || id.is_broadcast()
            || id.is_multicast()
            || (self.config.is_ibgp() && id == self.config.local_id)
        {
            return Err(open_error(open_message_error::BAD_BGP_IDENTIFIER));
        }
        // Section 6.2: 1 and 2 seconds are refused; 0 means no keepalives.
        if open.hold_time == 1 || open.hold_time == 2 {
            return Err(open_error(open_message_error::UNACCEPTABLE_HOLD_TIME));
        }
        let hold_time = open.hold_time.min(self.config.hold_time);
        Ok(Negotiated {
            peer_as,
            peer_id: id,
            four_octet_as: open.four_octet_as().is_some(),
            route_refresh: open.supports_route_refresh(),
            hold_time,
            keepalive: hold_time / 3,
        })
    }

    /// Event 23 (and collision resolution's own choice): Cease / Connection Collision
    /// Resolution on `c`, close it. If it carried the session, the other one takes over or
    /// the FSM goes Idle.
    fn collision_dump(&mut self, c: ConnectionId, now: Instant, out: &mut Vec<Action>) {
        let notification = Notification::cease(cease::CONNECTION_COLLISION_RESOLUTION);
        if self.colliding == Some(c) {
            self.colliding = None;
            out.push(Action::SendNotification(c, notification));
            out.push(Action::CloseConnection(c));
        } else if self.connection == Some(c) && self.state != State::Idle {
            out.push(Action::SendNotification(c, notification));
            out.push(Action::CloseConnection(c));
            if !self.promote_colliding(now) {
                self.go_idle(DownReason::ConnectionCollision, now, out);
            }
        }
    }

    /// The session's connection is gone and a colliding one exists: continue on it, in
    /// OpenSent (it has been sent our OPEN and not yet answered). False if there is none.
    fn promote_colliding(&mut self, now: Instant) -> bool {
        if self.state == State::Established {
            return false;
        }
        let Some(next) = self.colliding.take() else {
            return false;
        };
        self.connection = Some(next);
        self.negotiated = None;
        self.timers.keepalive = None;
        self.timers.hold = Some(now + OPEN_SENT_HOLD);
        self.state = State::OpenSent;
        true
    }

    /// Event 10: Hold Timer Expired (section 6.5), then Idle.
    fn hold_expires(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.timers.hold = None;
        if !matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            return;
        }
        if let Some(c) = self.connection {
            out.push(Action::SendNotification(
                c,
                Notification::hold_timer_expired(),
            ));
        }
        if let Some(c) = self.colliding.take() {
            out.push(Action::CloseConnection(c));
        }
        self.go_idle(DownReason::HoldTimerExpired, now, out);
    }

    /// Event 11.
    fn keepalive_expires(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.timers.keepalive = None;
        if let (State::OpenConfirm | State::Established, Some(c)) = (self.state, self.connection) {
            out.push(Action::SendKeepalive(c));
            self.arm_keepalive(now);
        }
    }

    /// Event 26: OpenConfirm -> Established; in Established it restarts the HoldTimer.
    fn keepalive_received(&mut self, c: ConnectionId, now: Instant, out: &mut Vec<Action>) {
        if self.colliding == Some(c) {
            // Before its OPEN: an FSM error on that connection only (RFC 6608).
            self.colliding = None;
            out.push(Action::SendNotification(
                c,
                Notification::fsm_error(fsm_error::UNEXPECTED_MESSAGE_IN_OPEN_SENT),
            ));
            out.push(Action::CloseConnection(c));
            return;
        }
        if self.connection != Some(c) {
            return;
        }
        match self.state {
            State::OpenSent => {
                self.fsm_error(c, fsm_error::UNEXPECTED_MESSAGE_IN_OPEN_SENT, now, out)
            }
            State::OpenConfirm => {
                // A collision with an Established session closes the other connection
                // (section 6.8).
                if let Some(other) = self.colliding.take() {
                    let n = Notification::cease(cease::CONNECTION_COLLISION_RESOLUTION);
                    out.push(Action::SendNotification(other, n));
                    out.push(Action::CloseConnection(other));
                }
                self.arm_hold(now);
                self.last_error = None;
                self.state = State::Established;
                if let Some(n) = self.negotiated {
                    out.push(Action::Established(n));
                }
            }
            State::Established => self.arm_hold(now),
            _ => {}
        }
    }

    /// Event 27: only Established accepts UPDATEs.
    fn update_received(&mut self, c: ConnectionId, now: Instant, out: &mut Vec<Action>) {
        if self.connection != Some(c) {
            return;
        }
        match self.state {
            State::Established => self.arm_hold(now),
            State::OpenSent => {
                self.fsm_error(c, fsm_error::UNEXPECTED_MESSAGE_IN_OPEN_SENT, now, out)
            }
            State::OpenConfirm => {
                self.fsm_error(c, fsm_error::UNEXPECTED_MESSAGE_IN_OPEN_CONFIRM, now, out)
            }
            _ => {}
        }
    }

    /// Event 25: the peer closes the session; no NOTIFICATION is sent back.
    fn notification_received(
        &mut self,
        c: ConnectionId,
        n: Notification,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.colliding == Some(c) {
            self.colliding = None;
            out.push(Action::CloseConnection(c));
            return;
        }
        if self.connection != Some(c) || self.state == State::Idle {
            return;
        }
        // The peer resolved a collision against this connection: carry on with the other.
        if n.code == error_code::CEASE
            && n.subcode == cease::CONNECTION_COLLISION_RESOLUTION
            && self.state != State::Established
        {
            out.push(Action::CloseConnection(c));
            if self.promote_colliding(now) {
                return;
            }
            self.connection = None;
        }
        self.go_idle(DownReason::NotificationReceived(n), now, out);
    }

    /// Events 21, 22, 28: send the NOTIFICATION the codec built, then Idle.
    fn message_error(
        &mut self,
        c: ConnectionId,
        n: Notification,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.colliding == Some(c) {
            self.colliding = None;
            out.push(Action::SendNotification(c, n));
            out.push(Action::CloseConnection(c));
            return;
        }
        if self.connection != Some(c) || self.state == State::Idle {
            return;
        }
        self.send_error_and_idle(c, n, now, out);
    }

    /// A message the current state does not expect (section 6.6, RFC 6608 subcodes).
    fn fsm_error(&mut self, c: ConnectionId, subcode: u8, now: Instant, out: &mut Vec<Action>) {
        self.send_error_and_idle(c, Notification::fsm_error(subcode), now, out)
    }

    fn send_error_and_idle(
        &mut self,
        c: ConnectionId,
        n: Notification,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        out.push(Action::SendNotification(c, n.clone()));
        if let Some(other) = self.colliding.take() {
            out.push(Action::CloseConnection(other));
        }
        self.go_idle(DownReason::NotificationSent(n), now, out);
    }

    /// Into Idle: close the session's connection, stop the timers, tell the RIB when a
    /// session is lost, and if the peer is still started, rest before starting again.
    fn go_idle(&mut self, reason: DownReason, now: Instant, out: &mut Vec<Action>) {
        if let Some(c) = self.connection.take() {
            out.push(Action::CloseConnection(c));
        }
        if let Some(c) = self.colliding.take() {
            out.push(Action::CloseConnection(c));
        }
        if self.state == State::Established {
            out.push(Action::Down(reason.clone()));
        }
        self.timers = Timers::default();
        if self.started {
            self.timers.idle_hold = Some(now + self.config.idle_hold);
        }
        self.negotiated = None;
        self.last_error = Some(reason);
        self.state = State::Idle;
    }

    fn arm_hold(&mut self, now: Instant) {
        self.timers.hold = self
            .negotiated
            .filter(|n| n.hold_time > 0)
            .map(|n| now + Duration::from_secs(n.hold_time.into()));
    }

    fn arm_keepalive(&mut self, now: Instant) {
        self.timers.keepalive = self
            .negotiated
            .filter(|n| n.keepalive > 0)
            .map(|n| now + Duration::from_secs(n.keepalive.into()));
    }
}
