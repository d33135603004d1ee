//! What the FSM is told about the session it runs: the local and peer AS, our BGP
//! Identifier and the timers (RFC 4271 section 8.1.1's mandatory session attributes).

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{
    DEFAULT_CONNECT_RETRY, DEFAULT_HOLD_TIME, DEFAULT_IDLE_HOLD, DEFAULT_PREFIX_LIMIT_IDLE_HOLD,
};
use crate::packet::Open;

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
    /// The rest in Idle after the session was closed for too many prefixes (RFC 4486
    /// section 4), instead of `idle_hold`.
    pub prefix_limit_idle_hold: Duration,
    /// Graceful Restart (RFC 4724), `None` when off for this peer.
    pub graceful_restart: Option<GracefulRestart>,
}

/// What we advertise in the Graceful Restart capability (RFC 4724 section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GracefulRestart {
    /// Seconds the peer should keep our routes after our session drops (at most 4095).
    pub restart_time: u16,
    /// The R bit: we have restarted. Sent until the first session is Established
    /// (section 4.1: it belongs to the OPENs that follow the restart).
    pub restarting: bool,
    /// The F bit for IPv4 unicast: our forwarding state survived the restart, so the peer
    /// may keep using our routes until we send End-of-RIB.
    pub forwarding_preserved: bool,
}

/// The Restart Time field is 12 bits (RFC 4724 section 3).
pub const MAX_RESTART_TIME: u16 = 0x0fff;

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
            prefix_limit_idle_hold: DEFAULT_PREFIX_LIMIT_IDLE_HOLD,
            graceful_restart: None,
        }
    }

    /// True for an internal peer (same AS).
    pub fn is_ibgp(&self) -> bool {
        self.local_as == self.peer_as
    }

    /// The OPEN we send: our AS (AS_TRANS plus the 4-octet capability when it does not fit,
    /// RFC 6793), the proposed Hold Time, IPv4 unicast (RFC 4760), route refresh
    /// (RFC 2918) and, when on, Graceful Restart for IPv4 unicast (RFC 4724).
    pub fn open(&self) -> Open {
        use crate::packet::{Capability, GracefulRestartFamily, AFI_IPV4, SAFI_UNICAST};
        let mut capabilities = vec![
            Capability::Multiprotocol {
                afi: AFI_IPV4,
                safi: SAFI_UNICAST,
            },
            Capability::RouteRefresh,
            Capability::FourOctetAs(self.local_as),
        ];
        if let Some(gr) = &self.graceful_restart {
            capabilities.push(Capability::GracefulRestart {
                restart_state: gr.restarting,
                restart_time: gr.restart_time.min(MAX_RESTART_TIME),
                families: vec![GracefulRestartFamily {
                    afi: AFI_IPV4,
                    safi: SAFI_UNICAST,
                    forwarding_state: gr.forwarding_preserved,
                }],
            });
        }
        Open::new(self.local_as, self.hold_time, self.local_id, capabilities)
    }
}
