//! A progress display on stderr for benchmarks made of steps: `[i/N] name  elapsed  ETA`.
//!
//! On a terminal one line is rewritten in place (`\r`, cleared to the end); anywhere else
//! (CI logs, a file) each step gets a line of its own, so that a log shows when each step
//! started. The ETA assumes the remaining steps take as long as the finished ones did on
//! average: crude, but the steps of one benchmark are of similar length.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Reports steps of a run of known length.
pub struct Progress {
    what: String,
    total: usize,
    done: usize,
    started: Instant,
    in_place: bool,
}

impl Progress {
    /// A reporter for `total` steps of `what` (e.g. `scenarios`); in place when stderr is a
    /// terminal.
    pub fn new(what: impl Into<String>, total: usize) -> Progress {
        Progress::with_terminal(what, total, std::io::stderr().is_terminal())
    }

    /// Same, saying whether to rewrite one line (`in_place`) or print a line per step.
    pub fn with_terminal(what: impl Into<String>, total: usize, in_place: bool) -> Progress {
        Progress {
            what: what.into(),
            total,
            done: 0,
            started: Instant::now(),
            in_place,
        }
    }

    /// Announces the next step, `name`; the previous one counts as done.
    pub fn step(&mut self, name: &str) {
        let line = self.line_for_step(name, self.started.elapsed());
        self.done = (self.done + 1).min(self.total.max(1));
        self.print(&line);
    }

    /// The text of the next step's line, without printing it.
    pub fn line_for_step(&self, name: &str, elapsed: Duration) -> String {
        format_line(
            &self.what,
            self.done + 1,
            self.total,
            name,
            elapsed,
            self.done,
        )
    }

    /// Ends the display: the last line stays, followed by the total time.
    pub fn finish(&mut self) {
        let elapsed = self.started.elapsed();
        let line = format!(
            "{}: {} steps done in {}",
            self.what,
            self.total,
            format_duration(elapsed)
        );
        self.print(&line);
        if self.in_place {
            eprintln!();
        }
    }

    fn print(&self, line: &str) {
        let mut err = std::io::stderr().lock();
        // A progress line that cannot be written is not worth failing a benchmark for.
        let _ = if self.in_place {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}

/// `scenarios [3/12] one-node kernel ping  elapsed 1m05s  ETA 3m15s`: `steps_done` steps
/// took `elapsed`, so each of the remaining `total - steps_done` is expected to take as long
/// on average. No ETA before the first step has finished.
pub fn format_line(
    what: &str,
    index: usize,
    total: usize,
    name: &str,
    elapsed: Duration,
    steps_done: usize,
) -> String {
    let eta = eta(elapsed, steps_done, total)
        .map(|d| format!("  ETA {}", format_duration(d)))
        .unwrap_or_default();
    format!(
        "{what} [{index}/{total}] {name}  elapsed {}{eta}",
        format_duration(elapsed)
    )
}

/// Time left if each remaining step takes the mean of the `done` ones.
pub fn eta(elapsed: Duration, done: usize, total: usize) -> Option<Duration> {
    if done == 0 || done >= total {
        return None;
    }
    let per_step = elapsed.as_secs_f64() / done as f64;
    Some(Duration::from_secs_f64(per_step * (total - done) as f64))
}

/// `7s`, `1m05s`, `1h02m`: seconds resolution is all a human watching a benchmark needs.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds_minutes_hours() {
        assert_eq!(format_duration(Duration::from_millis(7_900)), "7s");
        assert_eq!(format_duration(Duration::from_secs(65)), "1m05s");
        assert_eq!(format_duration(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn eta_is_the_mean_step_time_the_remaining_steps() {
        assert_eq!(eta(Duration::from_secs(30), 0, 4), None, "no step done yet");
        assert_eq!(
            eta(Duration::from_secs(30), 3, 4),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            eta(Duration::from_secs(20), 1, 5),
            Some(Duration::from_secs(80))
        );
        assert_eq!(eta(Duration::from_secs(30), 4, 4), None, "all done");
    }

    #[test]
    fn a_line_names_the_step_its_index_elapsed_and_eta() {
        let line = format_line(
            "scenarios",
            3,
            4,
            "l2 kernel ping",
            Duration::from_secs(60),
            2,
        );
        assert_eq!(
            line,
            "scenarios [3/4] l2 kernel ping  elapsed 1m00s  ETA 1m00s"
        );
        let first = format_line("e2e", 1, 2, "kernel", Duration::ZERO, 0);
        assert_eq!(first, "e2e [1/2] kernel  elapsed 0s");
    }

    #[test]
    fn steps_advance_the_index_and_never_pass_the_total() {
        let mut p = Progress::with_terminal("t", 2, false);
        assert!(p
            .line_for_step("a", Duration::ZERO)
            .starts_with("t [1/2] a"));
        p.step("a");
        assert!(p
            .line_for_step("b", Duration::ZERO)
            .starts_with("t [2/2] b"));
        p.step("b");
        p.step("extra");
        assert_eq!(p.done, 2);
    }
}
