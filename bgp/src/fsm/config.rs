//! What the FSM is told about the session it runs: the local and peer AS, our BGP
//! Identifier and the timers (RFC 4271 section 8.1.1's mandatory session attributes).

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{DEFAULT_CONNECT_RETRY, DEFAULT_HOLD_TIME, DEFAULT_IDLE_HOLD};
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
