//! Following the node's own address, as calico-node's `monitor-addresses` does: the
//! autodetection the node started with runs again every `AUTODETECT_POLL_INTERVAL` (a Go
//! duration, 60 s by default); when it finds another address or interface, the node must take
//! it up.
//!
//! The address is wired through the whole node at start (the Node record, the BGP speaker's
//! router id and sessions, the dataplane's uplink and source NAT), so taking it up is a
//! restart: the node stops as for SIGTERM (Graceful Restart keeps its routes at its peers, the
//! flow files keep its connections) and starts again in place (`brindle-node` re-executes
//! itself: same pid, same environment, no supervisor needed) and registers the new address.
//! An address given with `IP=` is not watched: it is the administrator's.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::env::{autodetect, Autodetection, NodeAddress};

/// calico-node's default `AUTODETECT_POLL_INTERVAL`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);
pub const POLL_INTERVAL_ENV: &str = "AUTODETECT_POLL_INTERVAL";

/// The uplink, address and prefix length autodetection gives.
pub type Detected = (String, Ipv4Addr, u8);

pub struct AddressWatch {
    method: Option<Autodetection>,
    current: Detected,
    every: Duration,
    checked_at: Instant,
}

impl AddressWatch {
    /// Watches `address` (when autodetected) from `current`, every `every`.
    pub fn new(address: &NodeAddress, current: Detected, every: Duration) -> AddressWatch {
        AddressWatch {
            method: match address {
                NodeAddress::Autodetect(method) => Some(method.clone()),
                NodeAddress::Static(..) => None,
            },
            current,
            every,
            checked_at: Instant::now(),
        }
    }

    /// The address autodetection gives now, if it is due to run and gives another one. A
    /// failed detection (the uplink down, its address being replaced) is no change: the next
    /// poll looks again.
    pub fn changed(&mut self) -> Option<Detected> {
        let method = self.method.as_ref()?;
        if self.checked_at.elapsed() < self.every {
            return None;
        }
        self.checked_at = Instant::now();
        let now = autodetect(method).ok()?;
        (now != self.current).then_some(now)
    }
}

/// `AUTODETECT_POLL_INTERVAL` from `value`: a Go duration of at least a second; anything else
/// is reported and the default kept, as calico-node does.
pub fn poll_interval(value: Option<&str>) -> Duration {
    let Some(value) = value else {
        return DEFAULT_POLL_INTERVAL;
    };
    match resources::validate::parse_go_duration(value) {
        Some(seconds) if seconds >= 1.0 && seconds.is_finite() => {
            Duration::from_secs_f64(seconds.min(u32::MAX as f64))
        }
        _ => {
            tracing::error!(
                value,
                default = ?DEFAULT_POLL_INTERVAL,
                "{POLL_INTERVAL_ENV}: not a duration of a second or more; using the default"
            );
            DEFAULT_POLL_INTERVAL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_interval_is_a_go_duration_of_a_second_or_more_else_the_default() {
        assert_eq!(poll_interval(None), DEFAULT_POLL_INTERVAL);
        assert_eq!(poll_interval(Some("5s")), Duration::from_secs(5));
        assert_eq!(poll_interval(Some("1m30s")), Duration::from_secs(90));
        for bad in ["5", "500ms", "-1m", "soon", ""] {
            assert_eq!(poll_interval(Some(bad)), DEFAULT_POLL_INTERVAL, "{bad}");
        }
    }

    #[test]
    fn an_address_given_with_ip_is_never_watched() {
        let current = ("eth0".to_string(), Ipv4Addr::new(10, 0, 0, 1), 24);
        let address = NodeAddress::Static(current.1, current.2);
        let mut watch = AddressWatch::new(&address, current, Duration::ZERO);
        assert_eq!(watch.changed(), None);
    }
}
