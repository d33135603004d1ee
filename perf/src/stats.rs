//! Measurements: ping round-trip times into a latency histogram, and CPU use from
//! `/proc/stat` deltas.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Round-trip times of one ping run, recorded in nanoseconds.
pub struct Latencies {
    histogram: Histogram<u64>,
}

/// Longest RTT the histogram keeps exactly; anything slower is clamped (a 60 s ping reply is
/// a failure for our purposes, not a data point).
const MAX_RTT_NS: u64 = 60_000_000_000;

impl Latencies {
    pub fn new() -> Self {
        // 3 significant digits: 0.1% resolution, enough for p50/p99 and small.
        let histogram = Histogram::new_with_bounds(1, MAX_RTT_NS, 3)
            .expect("bounds 1..60e9 with 3 digits are valid");
        Self { histogram }
    }

    pub fn record(&mut self, rtt: Duration) {
        let ns = u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(ns.clamp(1, MAX_RTT_NS));
    }

    pub fn len(&self) -> u64 {
        self.histogram.len()
    }

    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// The RTT at `quantile` (0.0..=1.0) in microseconds; `None` with no samples.
    pub fn quantile_us(&self, quantile: f64) -> Option<f64> {
        if self.histogram.is_empty() {
            return None;
        }
        Some(self.histogram.value_at_quantile(quantile) as f64 / 1000.0)
    }

    pub fn p50_us(&self) -> Option<f64> {
        self.quantile_us(0.50)
    }

    pub fn p99_us(&self) -> Option<f64> {
        self.quantile_us(0.99)
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

/// Cumulative CPU time of the whole machine, from the `cpu` line of `/proc/stat`
/// (in USER_HZ ticks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuTimes {
    pub total: u64,
    /// `idle + iowait`: time no task wanted the CPU.
    pub idle: u64,
}

impl CpuTimes {
    pub fn read() -> std::io::Result<CpuTimes> {
        let text = std::fs::read_to_string("/proc/stat")?;
        Self::parse(&text).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no cpu line in /proc/stat")
        })
    }

    /// Parses the aggregate `cpu  user nice system idle iowait irq softirq steal guest
    /// guest_nice` line. Guest time is already part of user time (proc(5)), so the total is
    /// the sum of the first eight fields.
    pub fn parse(proc_stat: &str) -> Option<CpuTimes> {
        let line = proc_stat
            .lines()
            .find(|l| l.split_whitespace().next() == Some("cpu"))?;
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        if fields.len() < 5 {
            return None;
        }
        Some(CpuTimes {
            total: fields.iter().sum(),
            idle: fields[3] + fields[4],
        })
    }

    /// Busy cores between `self` (earlier) and `later`:
    /// `(total - idle - iowait) / total * ncpus`.
    pub fn busy_cores_until(&self, later: &CpuTimes, ncpus: usize) -> f64 {
        let total = later.total.saturating_sub(self.total);
        let idle = later.idle.saturating_sub(self.idle);
        if total == 0 {
            return 0.0;
        }
        let busy = total.saturating_sub(idle);
        busy as f64 / total as f64 * ncpus as f64
    }
}

/// CPUs online, as the kernel counts them for `/proc/stat`.
pub fn online_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_a_hundred_ms() {
        let mut lat = Latencies::new();
        assert_eq!(lat.p50_us(), None);
        for ms in 1..=100u64 {
            lat.record(Duration::from_millis(ms));
        }
        assert_eq!(lat.len(), 100);
        let p50 = lat.p50_us().unwrap();
        let p99 = lat.p99_us().unwrap();
        // 3 significant digits: within 0.1% of the exact order statistic.
        assert!((p50 - 50_000.0).abs() <= 50.0, "p50 {p50}");
        assert!((p99 - 99_000.0).abs() <= 99.0, "p99 {p99}");
        let max = lat.quantile_us(1.0).unwrap();
        assert!((max - 100_000.0).abs() <= 100.0, "max {max}");
    }

    #[test]
    fn percentiles_of_a_skewed_sample() {
        let mut lat = Latencies::new();
        for _ in 0..98 {
            lat.record(Duration::from_micros(40));
        }
        lat.record(Duration::from_millis(5));
        lat.record(Duration::from_millis(5));
        let p50 = lat.p50_us().unwrap();
        let p99 = lat.p99_us().unwrap();
        assert!((p50 - 40.0).abs() < 0.1, "p50 {p50}");
        assert!((p99 - 5000.0).abs() < 5.0, "p99 {p99}");
    }

    #[test]
    fn busy_cores_from_proc_stat_deltas() {
        let before = CpuTimes::parse("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n").unwrap();
        assert_eq!(
            before,
            CpuTimes {
                total: 1000,
                idle: 800
            }
        );
        // +1000 ticks, of which 250 idle and 250 iowait: half the time busy on 2 CPUs.
        let after = CpuTimes::parse("cpu  500 0 200 950 350 0 0 0 0 0\n").unwrap();
        assert_eq!(before.busy_cores_until(&after, 2), 1.0);
        assert_eq!(before.busy_cores_until(&before, 2), 0.0);
        assert_eq!(CpuTimes::parse("intr 1 2 3\n"), None);
        assert_eq!(CpuTimes::parse("cpu 1 x 3 4 5\n"), None);
    }
}
