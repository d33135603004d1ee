//! Parsing what ping, iperf3, ab and wrk print into the scenario suite's metrics.

use super::*;

pub(super) fn parse_err(tool: &'static str, reason: impl Into<String>) -> BenchError {
    BenchError::Parse {
        tool,
        reason: reason.into(),
    }
}

/// Ping: p50 and p99 of the replies (from e2e's histogram), and how many came back.
pub fn ping_metrics(latencies: &crate::stats::Latencies, sent: u32) -> Result<Metrics, BenchError> {
    let (Some(p50), Some(p99)) = (latencies.p50_us(), latencies.p99_us()) else {
        return Err(parse_err("ping", format!("no replies to {sent} pings")));
    };
    Ok(Metrics::from([
        ("rtt_p50_us".into(), p50),
        ("rtt_p99_us".into(), p99),
        ("replies".into(), latencies.len() as f64),
        ("sent".into(), f64::from(sent)),
    ]))
}

pub(super) fn json_number(doc: &serde_json::Value, pointer: &str) -> Option<f64> {
    doc.pointer(pointer).and_then(serde_json::Value::as_f64)
}

/// iperf3 `-J` of a TCP client: what the receiver got, in Gbit/s, and the sender's
/// retransmissions.
pub fn parse_iperf_tcp(json: &str) -> Result<Metrics, BenchError> {
    let doc: serde_json::Value =
        serde_json::from_str(json).map_err(|e| parse_err("iperf3", format!("not JSON: {e}")))?;
    if let Some(error) = doc.get("error").and_then(|e| e.as_str()) {
        return Err(parse_err("iperf3", format!("error: {error}")));
    }
    let bps = json_number(&doc, "/end/sum_received/bits_per_second")
        .ok_or_else(|| parse_err("iperf3", "no end.sum_received.bits_per_second"))?;
    let mut m = Metrics::from([("gbit_per_s".into(), bps / 1e9)]);
    if let Some(r) = json_number(&doc, "/end/sum_sent/retransmits") {
        m.insert("retransmits".into(), r);
    }
    Ok(m)
}

/// iperf3 `-J -u` of a UDP client: delivered Gbit/s and loss as the server reported them
/// (`end.sum`), next to the rate offered (`end.sum_sent` where this iperf3 has it).
pub fn parse_iperf_udp(json: &str) -> Result<Metrics, BenchError> {
    let doc: serde_json::Value =
        serde_json::from_str(json).map_err(|e| parse_err("iperf3", format!("not JSON: {e}")))?;
    if let Some(error) = doc.get("error").and_then(|e| e.as_str()) {
        return Err(parse_err("iperf3", format!("error: {error}")));
    }
    let sum = |field: &str| {
        json_number(&doc, &format!("/end/sum_received/{field}"))
            .or_else(|| json_number(&doc, &format!("/end/sum/{field}")))
    };
    let packets =
        sum("packets").ok_or_else(|| parse_err("iperf3", "no end.sum.packets (UDP run?)"))?;
    let lost = sum("lost_packets").ok_or_else(|| parse_err("iperf3", "no end.sum.lost_packets"))?;
    let bps =
        sum("bits_per_second").ok_or_else(|| parse_err("iperf3", "no end.sum.bits_per_second"))?;
    let lost_percent = if packets > 0.0 {
        100.0 * lost / packets
    } else {
        100.0
    };
    // The server's own figure counts what it received; iperf3 3.12 reports the sender's
    // rate in end.sum, so delivered = offered * (1 - loss).
    let delivered_bps = if doc.pointer("/end/sum_received").is_some() {
        bps
    } else {
        bps * (1.0 - lost_percent / 100.0)
    };
    let mut m = Metrics::from([
        ("gbit_per_s".into(), delivered_bps / 1e9),
        ("lost_percent".into(), lost_percent),
        ("packets".into(), packets),
    ]);
    if let Some(sent) = json_number(&doc, "/end/sum_sent/bits_per_second").or(Some(bps)) {
        m.insert("offered_gbit_per_s".into(), sent / 1e9);
    }
    if let Some(jitter) = sum("jitter_ms") {
        m.insert("jitter_ms".into(), jitter);
    }
    Ok(m)
}

/// The number after `label` on the line that starts with it (`Requests per second:  1.5`).
pub(super) fn labelled_number(text: &str, label: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.trim_start().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// ApacheBench: requests/s, completed and failed requests (non-2xx counted as failed), and
/// the 50% and 99% lines of "Percentage of the requests served within a certain time (ms)".
pub fn parse_ab(text: &str) -> Result<Metrics, BenchError> {
    let field = |label: &str| {
        labelled_number(text, label).ok_or_else(|| parse_err("ab", format!("no {label:?} line")))
    };
    let rps = field("Requests per second:")?;
    let complete = field("Complete requests:")?;
    let failed = field("Failed requests:")?;
    let non_2xx = labelled_number(text, "Non-2xx responses:").unwrap_or(0.0);
    let percentile = |p: &str| {
        let table = text
            .split("Percentage of the requests served within a certain time (ms)")
            .nth(1)?;
        table.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(p)).then(|| words.next()?.parse::<f64>().ok())?
        })
    };
    let p50 = percentile("50%").ok_or_else(|| parse_err("ab", "no 50% line"))?;
    let p99 = percentile("99%").ok_or_else(|| parse_err("ab", "no 99% line"))?;
    Ok(Metrics::from([
        ("requests_per_s".into(), rps),
        ("complete_requests".into(), complete),
        ("failed_requests".into(), failed + non_2xx),
        ("p50_ms".into(), p50),
        ("p99_ms".into(), p99),
    ]))
}

/// A wrk duration (`812.00us`, `1.20ms`, `2.01s`, `1.00m`) in milliseconds.
pub fn wrk_duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let factor = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => return None,
    };
    Some(value * factor)
}

/// wrk `--latency`: Requests/sec, requests completed, socket errors and non-2xx/3xx
/// responses (together as errors), and the 50%/99% lines of the Latency Distribution.
pub fn parse_wrk(text: &str) -> Result<Metrics, BenchError> {
    let rps = labelled_number(text, "Requests/sec:")
        .ok_or_else(|| parse_err("wrk", "no Requests/sec line"))?;
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .ok_or_else(|| parse_err("wrk", "no \"N requests in\" line"))?;
    let socket_errors: f64 = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Socket errors:"))
        .map(|rest| {
            rest.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0);
    let non_2xx = labelled_number(text, "Non-2xx or 3xx responses:").unwrap_or(0.0);
    let percentile = |p: &str| {
        let table = text.split("Latency Distribution").nth(1)?;
        table.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(p)).then(|| wrk_duration_ms(words.next()?))?
        })
    };
    let p50 = percentile("50%").ok_or_else(|| parse_err("wrk", "no 50% latency line"))?;
    let p99 = percentile("99%").ok_or_else(|| parse_err("wrk", "no 99% latency line"))?;
    Ok(Metrics::from([
        ("requests_per_s".into(), rps),
        ("requests".into(), requests),
        ("errors".into(), socket_errors + non_2xx),
        ("p50_ms".into(), p50),
        ("p99_ms".into(), p99),
    ]))
}
