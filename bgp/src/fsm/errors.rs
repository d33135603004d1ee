//! Errors in any state (RFC 4271 sections 6 and 8.2.2): sending the NOTIFICATION, going
//! back to Idle, and the Hold and Keepalive timers the transitions re-arm.

use std::time::{Duration, Instant};

use super::*;

/// Cease / Maximum Number of Prefixes Reached (RFC 4486 section 4), with the optional data:
/// AFI (2 octets), SAFI (1 octet) and the upper bound (4 octets).
pub fn prefix_limit_notification(limit: u32) -> Notification {
    let mut data = Vec::with_capacity(7);
    data.extend_from_slice(&AFI_IPV4.to_be_bytes());
    data.push(SAFI_UNICAST);
    data.extend_from_slice(&limit.to_be_bytes());
    Notification::new(
        error_code::CEASE,
        cease::MAXIMUM_NUMBER_OF_PREFIXES_REACHED,
        data,
    )
}

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

    /// The RIB holds more prefixes from the peer than allowed (RFC 4486 section 4): in
    /// Established, Cease / Maximum Number of Prefixes Reached, then Idle, resting
    /// `prefix_limit_idle_hold` rather than `idle_hold` so that the peer is not taken back
    /// at once. Elsewhere there is no session whose prefixes could be counted: nothing.
    pub(super) fn prefix_limit_exceeded(
        &mut self,
        limit: u32,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let Some(c) = self.connection.filter(|_| self.state == State::Established) else {
            return;
        };
        self.send_error_and_idle(c, prefix_limit_notification(limit), now, out);
        if self.started {
            self.timers.idle_hold = Some(now + self.config.prefix_limit_idle_hold);
        }
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
            // RFC 4724 section 4.2: a peer that restarts gracefully (its TCP session gone, no
            // NOTIFICATION) is back within moments and its routes wait, stale, until it is:
            // resting before taking it back would only lengthen that. Errors still rest.
            let graceful = reason.keeps_routes()
                && self
                    .negotiated
                    .as_ref()
                    .is_some_and(|n| n.graceful_restart.is_some());
            let rest = if graceful {
                Duration::ZERO
            } else {
                self.config.idle_hold
            };
            self.timers.idle_hold = Some(now + rest);
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
