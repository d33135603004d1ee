//! What sets one run apart: a tag that keeps lab names unique across processes and across the
//! runs of one process, and the host's load average, recorded around a measurement because
//! other work on the machine skews it.

use std::sync::atomic::{AtomicU32, Ordering};

/// The lowest `max_digits` base-36 digits of this process id, most significant first and
/// without leading zeros (pids stay below 36^5, so 5 digits hold any of them).
pub fn pid_tag(max_digits: usize) -> String {
    base36(std::process::id(), max_digits)
}

/// [`pid_tag`] and one base-36 digit counting this process's runs (modulo 36): unique across
/// processes and across the runs of one process.
pub fn run_tag(max_digits: usize) -> String {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed) % 36;
    let mut tag = pid_tag(max_digits);
    tag.push(std::char::from_digit(run, 36).unwrap_or('0'));
    tag
}

fn base36(mut n: u32, max_digits: usize) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(std::char::from_digit(n % 36, 36).unwrap_or('0'));
        n /= 36;
        if n == 0 || digits.len() == max_digits {
            break;
        }
    }
    digits.iter().rev().collect()
}

/// `/proc/loadavg` as read once.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadAverage {
    /// The whole line, trimmed: `1min 5min 15min runnable/total last-pid`.
    pub line: String,
}

impl LoadAverage {
    /// `None` where `/proc/loadavg` cannot be read.
    pub fn read() -> Option<LoadAverage> {
        let text = std::fs::read_to_string("/proc/loadavg").ok()?;
        Some(LoadAverage {
            line: text.trim().to_string(),
        })
    }

    /// The 1, 5 and 15 minute averages.
    pub fn averages(&self) -> Option<[f64; 3]> {
        let mut fields = self.line.split_whitespace().map(|f| f.parse::<f64>().ok());
        Some([fields.next()??, fields.next()??, fields.next()??])
    }

    /// The three averages as `/proc/loadavg` writes them, e.g. `0.50 0.40 0.30`.
    pub fn minutes(&self) -> String {
        self.line
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_base36_bounded_and_differ_between_runs() {
        assert_eq!(base36(0, 5), "0");
        assert_eq!(base36(35, 5), "z");
        assert_eq!(base36(36 * 36 + 37, 5), "111");
        assert_eq!(base36(36 * 36 + 37, 2), "11");
        assert!(pid_tag(5).len() <= 5 && pid_tag(2).len() <= 2);
        let (a, b) = (run_tag(2), run_tag(2));
        assert_ne!(a, b);
        assert_eq!(a[..a.len() - 1], b[..b.len() - 1]);
    }

    #[test]
    fn the_load_average_line_gives_three_averages() {
        let load = LoadAverage {
            line: "0.50 0.40 0.30 1/100 1".into(),
        };
        assert_eq!(load.averages(), Some([0.5, 0.4, 0.3]));
        assert_eq!(load.minutes(), "0.50 0.40 0.30");
        let bad = LoadAverage { line: "x".into() };
        assert_eq!(bad.averages(), None);
        assert!(LoadAverage::read().is_some_and(|l| l.averages().is_some()));
    }
}
