//! What the slow path counts. Only the slow-path thread writes; anyone may read.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! slowpath_counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Live counters, shared with whoever reports statistics.
        #[derive(Debug, Default)]
        pub struct SlowpathCounters {
            $($(#[doc = $doc])* pub $name: AtomicU64,)*
        }

        /// A point-in-time copy of [`SlowpathCounters`].
        #[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        pub struct SlowpathCountersSnapshot {
            $($(#[doc = $doc])* pub $name: u64,)*
        }

        impl SlowpathCounters {
            pub fn snapshot(&self) -> SlowpathCountersSnapshot {
                SlowpathCountersSnapshot { $($name: self.$name.load(Ordering::Relaxed),)* }
            }
        }

        impl SlowpathCountersSnapshot {
            /// Every counter as `(name, value)`, in a stable order.
            pub fn pairs(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name),)*]
            }
        }
    };
}

slowpath_counters! {
    /// Punted frames received from the workers.
    frames_received,
    /// Proxy ARP replies sent to workloads.
    arp_requests_answered,
    /// Neighbour entries created or changed from ARP.
    arp_learned,
    /// ARP requests sent to resolve a next hop on a workload port.
    arp_requests_sent,
    /// Resolutions asked of the kernel for uplink neighbours.
    kernel_resolutions_requested,
    /// ICMP time exceeded messages sent.
    icmp_time_exceeded_sent,
    /// ICMP destination unreachable messages sent (net and host unreachable).
    icmp_unreachable_sent,
    /// ICMP errors suppressed by the rate limit.
    icmp_rate_limited,
    /// ICMP errors not sent because RFC 1812 4.3.2.7 forbids one about that packet.
    icmp_error_suppressed,
    /// ICMP echo replies sent.
    icmp_echo_replies_sent,
    /// Frames held while their next hop resolves.
    held,
    /// Held frames forwarded after resolution.
    held_forwarded,
    /// Frames dropped because a hold queue was full or the neighbour never answered.
    held_dropped,
    /// Resolutions given up after the last retry.
    resolution_failed,
    /// Frames for the node that the slow path does not answer.
    local_dropped,
    /// ARP frames that were malformed or needed no answer.
    arp_ignored,
    /// Frames that could not be parsed for what they were punted for.
    malformed,
    /// Frames the punt path refused to inject (pool or queue full).
    inject_failed,
}

impl SlowpathCounters {
    pub(crate) fn inc(counter: &AtomicU64) {
        // Single writer: a load and store is enough and avoids a locked read-modify-write.
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_reads_every_counter_by_name() {
        let c = SlowpathCounters::default();
        SlowpathCounters::inc(&c.held);
        SlowpathCounters::inc(&c.held);
        SlowpathCounters::inc(&c.icmp_rate_limited);
        let snap = c.snapshot();
        assert_eq!(snap.held, 2);
        let pairs = snap.pairs();
        assert!(pairs.contains(&("held", 2)));
        assert!(pairs.contains(&("icmp_rate_limited", 1)));
        assert!(pairs.contains(&("arp_learned", 0)));
    }
}
