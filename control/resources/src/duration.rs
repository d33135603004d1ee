//! Durations as Calico writes them. Its duration fields are Kubernetes `metav1.Duration`,
//! which prints Go's `time.Duration.String()`: `125s` is read and printed back as `2m5s`,
//! `1h` as `1h0m0s`, `0.5s` as `500ms`.

use serde::Deserialize;

use crate::validate::parse_go_duration;

/// Go's `time.Duration.String()` of a number of nanoseconds.
pub fn format_go_duration(nanos: i128) -> String {
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    const MICRO: u128 = 1_000;
    const MILLI: u128 = 1_000_000;
    const SECOND: u128 = 1_000_000_000;
    if u < SECOND {
        // Below a second Go picks the largest unit that keeps an integer part.
        let (unit, scale, digits) = if u < MICRO {
            ("ns", 1, 0)
        } else if u < MILLI {
            ("µs", MICRO, 3)
        } else {
            ("ms", MILLI, 6)
        };
        return format!(
            "{sign}{}{unit}",
            with_fraction(u / scale, u % scale, digits)
        );
    }
    let seconds = with_fraction(u / SECOND % 60, u % SECOND, 9);
    let minutes = u / SECOND / 60;
    let out = if minutes == 0 {
        format!("{seconds}s")
    } else if minutes < 60 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{}h{}m{seconds}s", minutes / 60, minutes % 60)
    };
    format!("{sign}{out}")
}

/// `whole.fraction` with the fraction's trailing zeros dropped (and no dot if none remain).
fn with_fraction(whole: u128, fraction: u128, digits: usize) -> String {
    if digits == 0 || fraction == 0 {
        return whole.to_string();
    }
    let f = format!("{fraction:0digits$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// Reads a `metav1.Duration` field: a valid duration is kept in Go's form, anything else as
/// written, so that validation names the value the user gave.
#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct GoDuration(Option<String>);

impl From<GoDuration> for Option<String> {
    fn from(d: GoDuration) -> Option<String> {
        d.0.map(|s| match parse_go_duration(&s) {
            Some(seconds) => format_go_duration((seconds * 1e9).round() as i128),
            None => s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(s: &str) -> String {
        format_go_duration((parse_go_duration(s).unwrap() * 1e9).round() as i128)
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        assert_eq!(go("125s"), "2m5s");
        assert_eq!(go("1h"), "1h0m0s");
        assert_eq!(go("90m"), "1h30m0s");
        assert_eq!(go("60s"), "1m0s");
        assert_eq!(go("0"), "0s");
        assert_eq!(go("0.5s"), "500ms");
        assert_eq!(go("1.5ms"), "1.5ms");
        assert_eq!(go("1500us"), "1.5ms");
        assert_eq!(go("42ns"), "42ns");
        assert_eq!(go("2.25s"), "2.25s");
        assert_eq!(go("1h1.1s"), "1h0m1.1s");
        assert_eq!(go("-5s"), "-5s");
    }
}
