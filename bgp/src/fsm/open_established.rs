//! OpenSent, OpenConfirm and Established (RFC 4271 section 8.2.2): the OPEN exchange,
//! connection collisions (section 6.8), and keeping the session alive.

use std::time::Instant;

use super::*;

impl PeerFsm {
    /// Event 19.
    pub(super) fn bgp_open(
        &mut self,
        c: ConnectionId,
        open: Open,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
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
    pub(super) fn check_open(&self, open: &Open) -> Result<Negotiated, Notification> {
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
        // RFC 4724 section 3: the peer keeps our routes only if it lists the family; we
        // keep its only if we offered the capability too.
        let graceful_restart = self
            .config
            .graceful_restart
            .and_then(|_| open.graceful_restart())
            .and_then(|(_, restart_time, families)| {
                let ipv4 = families
                    .iter()
                    .find(|f| (f.afi, f.safi) == (AFI_IPV4, SAFI_UNICAST))?;
                Some(PeerRestart {
                    restart_time,
                    forwarding_preserved: ipv4.forwarding_state,
                })
            });
        Ok(Negotiated {
            peer_as,
            peer_id: id,
            four_octet_as: open.four_octet_as().is_some(),
            route_refresh: open.supports_route_refresh(),
            hold_time,
            keepalive: hold_time / 3,
            graceful_restart,
        })
    }

    /// Event 23 (and collision resolution's own choice): Cease / Connection Collision
    /// Resolution on `c`, close it. If it carried the session, the other one takes over or
    /// the FSM goes Idle.
    pub(super) fn collision_dump(&mut self, c: ConnectionId, now: Instant, out: &mut Vec<Action>) {
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
    pub(super) fn promote_colliding(&mut self, now: Instant) -> bool {
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
    pub(super) fn hold_expires(&mut self, now: Instant, out: &mut Vec<Action>) {
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
    pub(super) fn keepalive_expires(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.timers.keepalive = None;
        if let (State::OpenConfirm | State::Established, Some(c)) = (self.state, self.connection) {
            out.push(Action::SendKeepalive(c));
            self.arm_keepalive(now);
        }
    }

    /// Event 26: OpenConfirm -> Established; in Established it restarts the HoldTimer.
    pub(super) fn keepalive_received(
        &mut self,
        c: ConnectionId,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
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
                // The R bit belongs to the OPENs after a restart, not to later sessions
                // (RFC 4724 section 4.1).
                if let Some(gr) = &mut self.config.graceful_restart {
                    gr.restarting = false;
                }
                if let Some(n) = self.negotiated {
                    out.push(Action::Established(n));
                }
            }
            State::Established => self.arm_hold(now),
            _ => {}
        }
    }

    /// Event 27: only Established accepts UPDATEs.
    pub(super) fn update_received(&mut self, c: ConnectionId, now: Instant, out: &mut Vec<Action>) {
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
    pub(super) fn notification_received(
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
}
