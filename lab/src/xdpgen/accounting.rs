//! Accounting: sequence gaps, late frames, loss and one-way latency.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::LATENCY_MAX_NS;
/// Loss and reordering from sequence numbers, in constant memory.
///
/// A frame whose sequence number is below the highest seen so far arrived late: it counts as
/// reordered (and fills a gap counted as lost until then). Duplicates are not told apart
/// from late frames (that would need a bitmap of every sequence number); neither the
/// generator nor a router duplicates frames.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqTracker {
    received: u64,
    highest: Option<u64>,
    reordered: u64,
}

impl SeqTracker {
    pub fn record(&mut self, seq: u64) {
        self.received += 1;
        match self.highest {
            Some(h) if seq < h => self.reordered += 1,
            Some(h) if seq == h => self.reordered += 1,
            _ => self.highest = Some(seq),
        }
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Frames missing below the highest sequence number (tail losses are only visible to
    /// whoever knows how many were sent: see [`loss_against`]).
    pub fn lost_in_sequence(&self) -> u64 {
        self.highest
            .map_or(0, |h| (h + 1).saturating_sub(self.received))
    }
}

/// Frames sent but not received, and that as a fraction of those sent (0 when none were sent).
pub fn loss_against(sent: u64, received: u64) -> (u64, f64) {
    let lost = sent.saturating_sub(received);
    let fraction = if sent == 0 {
        0.0
    } else {
        lost as f64 / sent as f64
    };
    (lost, fraction)
}

/// One-way latency percentiles in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub samples: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// An hdrhistogram of nanoseconds, allocated once: recording never allocates.
pub struct LatencyRecorder {
    histogram: Histogram<u64>,
    /// Samples outside the histogram's range (a clock step, a garbage stamp).
    out_of_range: u64,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecorder {
    pub fn new() -> LatencyRecorder {
        // The bounds are constants that hdrhistogram accepts; `new_with_bounds` only fails
        // for low < 1, high < 2 * low or sigfig > 5.
        let histogram = Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3)
            .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()));
        LatencyRecorder {
            histogram,
            out_of_range: 0,
        }
    }

    /// Records `now_ns - sent_ns`; a stamp from the future or past the range is counted apart.
    pub fn record(&mut self, sent_ns: u64, now_ns: u64) {
        let Some(latency) = now_ns.checked_sub(sent_ns) else {
            self.out_of_range += 1;
            return;
        };
        if self.histogram.record(latency.max(1)).is_err() {
            self.out_of_range += 1;
        }
    }

    pub fn out_of_range(&self) -> u64 {
        self.out_of_range
    }

    pub fn summary(&self) -> Option<LatencySummary> {
        let h = &self.histogram;
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(LatencySummary {
            samples: h.len(),
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_tracker_counts_gaps_and_late_frames() {
        let mut t = SeqTracker::default();
        for seq in [0, 1, 2, 5, 3, 6, 9] {
            t.record(seq);
        }
        assert_eq!(t.received(), 7);
        assert_eq!(t.highest(), Some(9));
        // 10 numbered 0..=9, 7 arrived: 4, 7, 8 missing.
        assert_eq!(t.lost_in_sequence(), 3);
        // 3 arrived after 5.
        assert_eq!(t.reordered(), 1);
        assert_eq!(loss_against(12, 7), (5, 5.0 / 12.0));
        assert_eq!(loss_against(0, 0), (0, 0.0));
        assert_eq!(loss_against(3, 5), (0, 0.0));
        assert_eq!(SeqTracker::default().lost_in_sequence(), 0);
    }

    #[test]
    fn latency_percentiles_are_ordered_and_bad_stamps_counted_apart() {
        let mut r = LatencyRecorder::new();
        assert!(r.summary().is_none());
        for i in 1..=1000u64 {
            r.record(1_000_000, 1_000_000 + i * 1000);
        }
        r.record(2_000, 1_000); // from the future
        r.record(0, u64::MAX); // out of range
        let s = r.summary().unwrap();
        assert_eq!(s.samples, 1000);
        assert_eq!(r.out_of_range(), 2);
        assert!((s.p50_us - 500.0).abs() < 1.0, "{s:?}");
        assert!(
            s.p50_us <= s.p90_us
                && s.p90_us <= s.p99_us
                && s.p99_us <= s.p999_us
                && s.p999_us <= s.max_us
        );
        assert!((s.max_us - 1000.0).abs() < 1.0, "{s:?}");
    }
}
