//! Errors in any state (RFC 4271 sections 6 and 8.2.2): sending the NOTIFICATION, going
//! back to Idle, and the Hold and Keepalive timers the transitions re-arm.

use std::time::{Duration, Instant};

use super::*;

impl PeerFsm {
    /// Events 21, 22, 28: send the NOTIFICATION the codec built, then Idle.
    pub(super) fn message_error(
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
    pub(super) fn fsm_error(
        &mut self,
        c: ConnectionId,
        subcode: u8,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.send_error_and_idle(c, Notification::fsm_error(subcode), now, out)
    }

    pub(super) fn send_error_and_idle(
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
    pub(super) fn go_idle(&mut self, reason: DownReason, now: Instant, out: &mut Vec<Action>) {
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

    pub(super) fn arm_hold(&mut self, now: Instant) {
        self.timers.hold = self
            .negotiated
            .filter(|n| n.hold_time > 0)
            .map(|n| now + Duration::from_secs(n.hold_time.into()));
    }

    pub(super) fn arm_keepalive(&mut self, now: Instant) {
        self.timers.keepalive = self
            .negotiated
            .filter(|n| n.keepalive > 0)
            .map(|n| now + Duration::from_secs(n.keepalive.into()));
    }
}
