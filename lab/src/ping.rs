//! `ping` from inside a namespace: one echo to see whether a path is up, and the RTTs of a
//! run read from iputils' output.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::cmd::{self, CmdError};

/// How long the one-echo `ping` may take in all (it waits a second for its reply).
const ECHO_TIMEOUT: Duration = Duration::from_secs(3);

/// One echo from namespace `ns` to `target`: whether the reply came within a second. Gives up
/// early once the process is [`cmd::interrupted`].
pub fn answers(ns: &str, target: Ipv4Addr) -> Result<bool, CmdError> {
    let target = target.to_string();
    let args = [
        "ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", &target,
    ];
    Ok(cmd::run_interruptible(&args, ECHO_TIMEOUT)?
        .status
        .success())
}

/// The RTT of one iputils `ping` reply line, e.g.
/// `64 bytes from 192.168.0.2: icmp_seq=1 ttl=63 time=0.045 ms`. Lines that are not replies
/// (header, summary, errors) give `None`. `time<1 ms` (old iputils) counts as the bound.
pub fn parse_ping_reply(line: &str) -> Option<Duration> {
    let start = line.find("time=").or_else(|| line.find("time<"))? + "time=".len();
    let rest = line.get(start..)?.trim_start();
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let value: f64 = rest.get(..number_end)?.parse().ok()?;
    let unit = rest.get(number_end..)?.trim_start();
    let seconds = if unit.starts_with("ms") {
        value / 1e3
    } else if unit.starts_with("us") || unit.starts_with("usec") {
        value / 1e6
    } else if unit.starts_with('s') {
        value
    } else {
        return None;
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(seconds).ok()
}

/// Every reply RTT in a ping run's output, in order.
pub fn parse_ping_output(output: &str) -> Vec<Duration> {
    output.lines().filter_map(parse_ping_reply).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING_OUTPUT: &str = "\
PING 192.168.0.2 (192.168.0.2) 56(84) bytes of data.
64 bytes from 192.168.0.2: icmp_seq=1 ttl=63 time=0.045 ms
64 bytes from 192.168.0.2: icmp_seq=2 ttl=63 time=1.50 ms
From 192.168.0.1 icmp_seq=3 Destination Host Unreachable
64 bytes from 192.168.0.2: icmp_seq=4 ttl=63 time=12 ms

--- 192.168.0.2 ping statistics ---
4 packets transmitted, 3 received, 25% packet loss, time 6ms
rtt min/avg/max/mdev = 0.045/4.515/12.000/5.300 ms
";

    #[test]
    fn ping_parser_reads_every_reply_and_nothing_else() {
        let rtts = parse_ping_output(PING_OUTPUT);
        assert_eq!(
            rtts,
            vec![
                Duration::from_micros(45),
                Duration::from_micros(1500),
                Duration::from_millis(12)
            ]
        );
    }

    #[test]
    fn ping_parser_handles_odd_lines_without_panicking() {
        assert_eq!(
            parse_ping_reply("time<1 ms"),
            Some(Duration::from_millis(1))
        );
        assert_eq!(
            parse_ping_reply("time=0.5 us"),
            Some(Duration::from_nanos(500))
        );
        for junk in [
            "time=",
            "time=abc ms",
            "time=1.2",
            "time=1.2 parsecs",
            "time=-1 ms",
            "tim",
            "",
        ] {
            assert_eq!(parse_ping_reply(junk), None, "{junk:?}");
        }
        assert_eq!(parse_ping_reply("time=1e999 s"), None);
    }
}
