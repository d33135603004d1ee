//! Per-workload rate limits (Calico's WorkloadEndpoint `qosControls`, and the limits the CNI
//! `bandwidth` plugin sets on a workload's veth): a bandwidth and a packet rate in each
//! direction, each with its burst.
//!
//! Felix enforces these with tc qdiscs on the workload's veth, which the vRouter bypasses (it
//! takes frames off the veth with AF_XDP before tc ingress and puts them on it with AF_XDP,
//! which skips the qdisc). So the vRouter enforces them itself, in the pipeline, as a policer:
//! a frame over the limit is dropped, not queued (no worker ever holds a frame back).
//!
//! Each limit is a GCRA (the generic cell rate algorithm, ITU-T I.371 annex A: a token bucket
//! kept as one "theoretical arrival time"), one `AtomicU64` updated by compare-and-swap: the
//! workers that send to the same workload share its ingress limit without a lock, and nothing
//! is allocated per packet. A frame conforms while the bucket's backlog before it is within
//! the burst, so a frame larger than the burst (a 64 KiB GSO segment) still passes and the
//! ones after it wait for its cost to drain: the long-run rate is the limit either way.
//!
//! Directions are the workload's, as in Calico: `ingress` limits what is delivered to the
//! workload, `egress` what it sends. Where the pipeline charges them: `pipeline::rate_limit`
//! (what a workload sends right after input, what is delivered to it after policy).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Calico's default burst when a bandwidth is given without one: 4 Gi bits.
pub const DEFAULT_BURST_BITS: u64 = 4 * 1024 * 1024 * 1024;
/// Calico's default packet burst when a packet rate is given without one.
pub const DEFAULT_PACKET_BURST: u64 = 5;

/// A rate and the burst allowed above it, in one unit (bits for bandwidth, packets for a
/// packet rate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u64,
    pub burst: u64,
}

/// The limits of one direction; `None`: not limited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionLimits {
    /// Bits per second, burst in bits (Calico's `ingressBandwidth`/`ingressBurst`).
    pub bandwidth: Option<Rate>,
    /// Packets per second, burst in packets (Calico's `ingressPacketRate`/`ingressPacketBurst`).
    pub packets: Option<Rate>,
}

/// What a workload is limited to: plain values, compared by the control plane to decide
/// whether a port's limiters (and their state) can be kept across a table publish.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QosLimits {
    /// What is delivered to the workload.
    pub ingress: DirectionLimits,
    /// What the workload sends.
    pub egress: DirectionLimits,
}

impl QosLimits {
    pub fn is_unlimited(&self) -> bool {
        *self == QosLimits::default()
    }
}

/// The limiters of one port, shared by every worker through [`crate::PortInfo::qos`].
#[derive(Debug)]
pub struct PortQos {
    limits: QosLimits,
    pub ingress: DirectionLimiter,
    pub egress: DirectionLimiter,
}

impl PortQos {
    pub fn new(limits: QosLimits) -> PortQos {
        PortQos {
            limits,
            ingress: DirectionLimiter::new(&limits.ingress),
            egress: DirectionLimiter::new(&limits.egress),
        }
    }

    pub fn limits(&self) -> QosLimits {
        self.limits
    }
}

/// The limiters of one direction.
#[derive(Debug)]
pub struct DirectionLimiter {
    bandwidth: Option<Gcra>,
    packets: Option<Gcra>,
}

impl DirectionLimiter {
    fn new(limits: &DirectionLimits) -> DirectionLimiter {
        DirectionLimiter {
            // Bits in the limit, bytes in the frame: one byte costs eight bits' time.
            bandwidth: limits
                .bandwidth
                .map(|r| Gcra::new(r.per_second, r.burst, 8)),
            packets: limits.packets.map(|r| Gcra::new(r.per_second, r.burst, 1)),
        }
    }

    /// Whether a frame of `bytes` at `now_ns` (see [`now_ns`]) is within the limits; a
    /// conforming frame is charged to them. The packet rate is asked first: a frame it
    /// admits and the bandwidth then refuses has used one packet of the burst.
    #[inline]
    pub fn admit(&self, now_ns: u64, bytes: usize) -> bool {
        self.admit_segments(now_ns, bytes, 1)
    }

    /// [`Self::admit`] for a frame that stands for `packets` packets (a GSO frame, charged
    /// whole: its bytes to the bandwidth, its packets to the packet rate).
    #[inline]
    pub fn admit_segments(&self, now_ns: u64, bytes: usize, packets: u64) -> bool {
        if let Some(limit) = &self.packets {
            if !limit.admit(now_ns, packets) {
                return false;
            }
        }
        match &self.bandwidth {
            Some(bandwidth) => bandwidth.admit(now_ns, bytes as u64),
            None => true,
        }
    }

    pub fn is_limited(&self) -> bool {
        self.bandwidth.is_some() || self.packets.is_some()
    }
}

/// One GCRA limiter. Times are nanoseconds on [`now_ns`]'s clock. Public for the benchmark
/// that holds it against the `governor` crate; the pipeline uses it through [`PortQos`].
#[derive(Debug)]
pub struct Gcra {
    /// Nanoseconds one unit of cost takes at the rate, as a 32.32 fixed-point number (a byte
    /// at 10 Gbit/s takes 0.8 ns).
    unit_ns_q32: u128,
    /// How far ahead of now the theoretical arrival time may run: the burst's duration.
    burst_ns: u64,
    /// The theoretical arrival time: when the bucket will be empty again.
    tat: AtomicU64,
}

impl Gcra {
    /// `per_second` limit units (bits, packets) per second, `burst` such units, each unit of
    /// cost (a byte, a packet) being `units_per_cost` limit units.
    pub fn new(per_second: u64, burst: u64, units_per_cost: u64) -> Gcra {
        let per_second = u128::from(per_second.max(1));
        let unit_ns_q32 = ((u128::from(units_per_cost) * 1_000_000_000) << 32) / per_second;
        let burst_ns = (u128::from(burst) * 1_000_000_000 / per_second).min(u128::from(u64::MAX));
        Gcra {
            unit_ns_q32,
            burst_ns: burst_ns as u64,
            tat: AtomicU64::new(0),
        }
    }

    /// Whether `cost` units at `now_ns` conform; if so they are charged.
    #[inline]
    pub fn admit(&self, now_ns: u64, cost: u64) -> bool {
        // No frame costs 2^32 units (bytes or packets), and the unit is below 2^66 (8 bits a
        // byte at 1 bit/s, in 32.32): the product fits in 128 bits without a saturating
        // multiply on the packet path.
        let cost = u128::from(cost.min(u64::from(u32::MAX)));
        let cost_ns = ((cost * self.unit_ns_q32) >> 32).min(u128::from(u64::MAX)) as u64;
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now_ns);
            if start - now_ns > self.burst_ns {
                return false;
            }
            match self.tat.compare_exchange_weak(
                tat,
                start.saturating_add(cost_ns),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => tat = seen,
            }
        }
    }
}

/// Nanoseconds on one monotonic clock for the whole process, so that every worker charges a
/// shared limiter on the same time line. Read once per batch, not per packet.
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn bandwidth(bits: u64, burst_bits: u64) -> DirectionLimiter {
        DirectionLimiter::new(&DirectionLimits {
            bandwidth: Some(Rate {
                per_second: bits,
                burst: burst_bits,
            }),
            packets: None,
        })
    }

    /// Bytes admitted when `frame`-byte frames are offered back to back every `gap_ns` for
    /// `seconds`.
    fn admitted_bytes(limiter: &DirectionLimiter, frame: usize, gap_ns: u64, seconds: u64) -> u64 {
        let mut admitted = 0;
        let mut now = 0;
        while now < seconds * SECOND {
            if limiter.admit(now, frame) {
                admitted += frame as u64;
            }
            now += gap_ns;
        }
        admitted
    }

    #[test]
    fn bandwidth_holds_the_rate_over_time() {
        // 10 Mbit/s with a 100 kbit burst, offered 1500-byte frames at ~120 Mbit/s for 10 s.
        let limiter = bandwidth(10_000_000, 100_000);
        let bytes = admitted_bytes(&limiter, 1500, 100_000, 10);
        let bits_per_second = bytes * 8 / 10;
        assert!(
            (9_900_000..=10_200_000).contains(&bits_per_second),
            "{bits_per_second} bit/s through a 10 Mbit/s limit"
        );
    }

    #[test]
    fn a_burst_passes_at_once_then_the_rate_applies() {
        // 1 Mbit/s, 120,000-bit burst: ten 1500-byte frames at the same instant fit (the
        // backlog before the tenth is 9 frames = 108,000 bits), the next ones do not.
        let limiter = bandwidth(1_000_000, 120_000);
        let passed = (0..20).filter(|_| limiter.admit(SECOND, 1500)).count();
        assert_eq!(passed, 11, "frames of a burst admitted at one instant");
        // 12 ms of 1 Mbit/s drain one frame's 12,000 bits.
        assert!(!limiter.admit(SECOND + 1_000_000, 1500));
        assert!(limiter.admit(SECOND + 13_000_000, 1500));
    }

    #[test]
    fn a_frame_larger_than_the_burst_passes_alone() {
        // A 64 KiB GSO frame through a 1,000-bit burst: it passes, then its cost drains.
        let limiter = bandwidth(1_000_000, 1_000);
        assert!(limiter.admit(SECOND, 65_536));
        assert!(!limiter.admit(SECOND, 64));
        let drained = SECOND + 65_536 * 8 * 1_000; // 524 ms at 1 Mbit/s
        assert!(limiter.admit(drained, 64));
    }

    #[test]
    fn packet_rate_holds_and_bursts() {
        let limiter = DirectionLimiter::new(&DirectionLimits {
            bandwidth: None,
            packets: Some(Rate {
                per_second: 100,
                burst: DEFAULT_PACKET_BURST,
            }),
        });
        // 64-byte frames every 100 us for 10 s: 100,000 offered, about 1,000 (+ the burst) pass.
        let packets = admitted_bytes(&limiter, 64, 100_000, 10) / 64;
        assert!(
            (1_000..=1_007).contains(&packets),
            "{packets} packets at 100/s"
        );
    }

    #[test]
    fn unlimited_directions_admit_everything() {
        let qos = PortQos::new(QosLimits {
            ingress: DirectionLimits {
                bandwidth: Some(Rate {
                    per_second: 1_000,
                    burst: 1_000,
                }),
                packets: None,
            },
            egress: DirectionLimits::default(),
        });
        assert!(!qos.egress.is_limited());
        assert!((0..10_000).all(|_| qos.egress.admit(0, 9000)));
        assert!(qos.ingress.is_limited());
    }

    #[test]
    fn extreme_rates_neither_overflow_nor_panic() {
        for (rate, burst) in [
            (1, 0),
            (u64::MAX, u64::MAX),
            (1_000, u64::MAX),
            (u64::MAX, 0),
        ] {
            let limiter = bandwidth(rate, burst);
            for now in [0, 1, SECOND, u64::MAX / 2, u64::MAX] {
                let _ = limiter.admit(now, usize::MAX >> 1);
                let _ = limiter.admit(now, 0);
            }
        }
    }

    #[test]
    fn workers_sharing_a_limit_get_the_rate_between_them() {
        // Two threads offering the same clock's frames: together they get the rate, not twice it.
        let limiter = std::sync::Arc::new(bandwidth(10_000_000, 100_000));
        let per_thread: Vec<u64> = (0..2)
            .map(|_| {
                let limiter = limiter.clone();
                std::thread::spawn(move || admitted_bytes(&limiter, 1500, 100_000, 10))
            })
            .map(|t| t.join().unwrap())
            .collect();
        let bits_per_second = per_thread.iter().sum::<u64>() * 8 / 10;
        assert!(
            bits_per_second <= 10_200_000,
            "{bits_per_second} bit/s through one shared 10 Mbit/s limit"
        );
    }
}
