//! How the slow path behaves; control fills this from the node's configuration.

use std::net::Ipv4Addr;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlowpathConfig {
    /// Source address of ICMP errors; when `None`, the ingress port's address is used.
    pub node_ip: Option<Ipv4Addr>,
    /// Sustained rate of ICMP errors (token bucket refill per second).
    pub icmp_rate_per_sec: u32,
    /// ICMP errors that may be sent at once after a quiet period.
    pub icmp_burst: u32,
    /// Frames held for one neighbour while it resolves (Linux's `unres_qlen` is similar).
    pub hold_per_neighbor: usize,
    /// Frames held over all neighbours.
    pub hold_total: usize,
    /// Time between resolution attempts; resolution is given up after [`ARP_ATTEMPTS`].
    pub arp_retry: Duration,
    /// Neighbours remembered by the slow path (learned from ARP or the kernel).
    pub max_neighbors: usize,
}

/// Resolution attempts before held frames are dropped and the sources told (RFC 1812
/// 4.3.3.1 allows a router to give up on a neighbour that does not answer).
pub const ARP_ATTEMPTS: u32 = 3;

impl Default for SlowpathConfig {
    fn default() -> Self {
        SlowpathConfig {
            node_ip: None,
            icmp_rate_per_sec: 100,
            icmp_burst: 50,
            hold_per_neighbor: 4,
            hold_total: 256,
            arp_retry: Duration::from_secs(1),
            max_neighbors: 16_384,
        }
    }
}
