//! What the `brindle-perf` benchmarks share of their options: the UDP traffic arguments,
//! the checks every option gets before a run starts, and where a run keeps its files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lab::udp;

/// An option out of its range, refused before anything is set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {option} {value}: {expected}")]
pub struct OptionError {
    pub option: &'static str,
    pub value: String,
    pub expected: String,
}

fn invalid(option: &'static str, value: impl ToString, expected: impl Into<String>) -> OptionError {
    OptionError {
        option,
        value: value.to_string(),
        expected: expected.into(),
    }
}

/// The UDP stream of the pps benchmarks (`--size`, `--batch`, `--port`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::Args)]
pub struct TrafficArgs {
    /// Ethernet frame size in bytes, FCS included (64 = 18 bytes of payload).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Datagrams per sendmmsg/recvmmsg call.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// UDP destination port (the first one, where a benchmark uses several).
    #[arg(long, default_value_t = 5201)]
    pub port: u16,
}

impl TrafficArgs {
    /// A batch the generator takes and a frame size that holds its header.
    pub fn check(&self) -> Result<(), OptionError> {
        if !(1..=udp::MAX_BATCH).contains(&self.batch) {
            return Err(invalid(
                "batch",
                self.batch,
                format!("between 1 and {}", udp::MAX_BATCH),
            ));
        }
        udp::payload_len(self.size).map_err(|e| invalid("size", self.size, e.to_string()))?;
        Ok(())
    }
}

/// `value` seconds, bounded so that a typo cannot start a run of days.
pub fn seconds(option: &'static str, value: f64) -> Result<Duration, OptionError> {
    if !(value.is_finite() && (0.0..=3600.0).contains(&value)) {
        return Err(invalid(option, value, "must be between 0 and 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

/// A whole number of seconds within `range`.
pub fn whole_seconds(
    option: &'static str,
    value: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, OptionError> {
    if !range.contains(&value) {
        return Err(invalid(
            option,
            value,
            format!("between {} and {} s", range.start(), range.end()),
        ));
    }
    Ok(Duration::from_secs(value))
}

/// brindle-node's worker mode: `poll` or `interrupt`.
pub fn node_mode(mode: &str) -> Result<(), OptionError> {
    match mode {
        "poll" | "interrupt" => Ok(()),
        _ => Err(invalid(
            "node-mode",
            format!("{mode:?}"),
            "expected poll or interrupt",
        )),
    }
}

/// Pings per side: at most 100,000.
pub fn pings(count: u32) -> Result<(), OptionError> {
    match count {
        0..=100_000 => Ok(()),
        _ => Err(invalid("pings", count, "at most 100000")),
    }
}

/// Rounds within `range`.
pub fn rounds(count: usize, range: std::ops::RangeInclusive<usize>) -> Result<(), OptionError> {
    if !range.contains(&count) {
        return Err(invalid(
            "rounds",
            count,
            format!("between {} and {}", range.start(), range.end()),
        ));
    }
    Ok(())
}

/// A run's private directory under the temporary directory: `<prefix>-<pid>`. Benchmarks
/// keep it (node configs and logs) when they fail, for the post-mortem.
pub fn work_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()))
}

/// This executable, which the benchmarks start again as generator and sink.
pub fn perf_exe() -> std::io::Result<PathBuf> {
    std::env::current_exe()
}

/// Prints a written report's Markdown and where both files went.
pub fn announce(out: &Path, md_path: &Path, markdown: &str) {
    print!("{markdown}");
    eprintln!("wrote {} and {}", out.display(), md_path.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_out_of_range_are_refused_with_what_is_expected() {
        let ok = TrafficArgs {
            size: 64,
            batch: 64,
            port: 5201,
        };
        assert_eq!(ok.check(), Ok(()));
        let err = TrafficArgs { batch: 0, ..ok }.check().unwrap_err();
        assert_eq!(err.option, "batch");
        assert!(
            err.to_string()
                .starts_with("invalid batch 0: between 1 and"),
            "{err}"
        );
        assert_eq!(
            TrafficArgs { size: 10, ..ok }.check().unwrap_err().option,
            "size"
        );
        assert_eq!(seconds("duration", 2.5), Ok(Duration::from_millis(2500)));
        for bad in [-1.0, 3601.0, f64::NAN] {
            assert!(seconds("duration", bad).is_err(), "{bad}");
        }
        assert_eq!(
            whole_seconds("duration", 0, 1..=600)
                .unwrap_err()
                .to_string(),
            "invalid duration 0: between 1 and 600 s"
        );
        assert!(node_mode("poll").is_ok() && node_mode("interrupt").is_ok());
        assert_eq!(
            node_mode("busy").unwrap_err().to_string(),
            "invalid node-mode \"busy\": expected poll or interrupt"
        );
        assert!(pings(100_000).is_ok() && pings(100_001).is_err());
        assert!(rounds(3, 1..=20).is_ok() && rounds(0, 1..=20).is_err());
    }
}
