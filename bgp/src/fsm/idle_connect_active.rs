//! Idle, Connect and Active (RFC 4271 section 8.2.2): starting and stopping the peer and
//! bringing up its TCP connection.

use std::time::Instant;

use super::*;

impl PeerFsm {
    /// Events 1, 3 (and 13): in Idle, start connecting (or listening when passive); ignored
    /// in every other state (section 8.2.2).
    pub(super) fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
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
    pub(super) fn manual_stop(&mut self, now: Instant, out: &mut Vec<Action>) {
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
    pub(super) fn connect_retry_expires(&mut self, now: Instant, out: &mut Vec<Action>) {
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
    pub(super) fn tcp_up(&mut self, c: ConnectionId, now: Instant, out: &mut Vec<Action>) {
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
    pub(super) fn tcp_fails(&mut self, c: ConnectionId, now: Instant, out: &mut Vec<Action>) {
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
}
