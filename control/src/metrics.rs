//! Prometheus metrics (`/metrics`, text exposition format 0.0.4).
//!
//! Names, all counters ending in `_total`:
//! - `brindle_fastpath_<counter>_total` summed over workers, for `rx_packets`, `rx_bytes`,
//!   `forwarded`, `punted`, `injected`, `tx_packets`, `ipip_encapsulated`, `ipip_decapsulated`,
//!   `checksums_completed`, `gso_received`, `gso_cut`, `gro_merged`; `brindle_fastpath_drops_total{reason}`;
//! - the same per worker as `brindle_fastpath_worker_<counter>_total{worker}` and
//!   `brindle_fastpath_worker_drops_total{worker,reason}` (separate names, so that summing a
//!   metric never counts a packet twice);
//! - `brindle_fastpath_socket_total{counter}`: the kernel's counts on the AF_XDP sockets
//!   (`XDP_STATISTICS`: frames lost in the rings before the pipeline saw them, and ring-empty
//!   events), summed over workers;
//! - `brindle_slowpath_<counter>_total` for every slow-path counter;
//! - gauges `brindle_dataplane_ports{kind}`, `brindle_dataplane_port_info{id,name,kind,xdp_mode}`
//!   (always 1), `brindle_dataplane_apply_failures` and counter `brindle_dataplane_applies_total`;
//! - beside them, Felix's own metrics under Felix's names ([`felix`]).

pub mod felix;

use std::fmt::Write;
use std::time::Instant;

use fastpath::{DropReason, PipelineCounters};

use crate::dataplane::DataplaneObserver;

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The fastpath counters that are plain totals, with their help text.
const FASTPATH: [(&str, &str); 12] = [
    (
        "rx_packets",
        "Frames received from AF_XDP sockets and TAPs.",
    ),
    ("rx_bytes", "Bytes received from AF_XDP sockets and TAPs."),
    ("forwarded", "Frames forwarded by the fastpath."),
    ("punted", "Frames handed to the slow path."),
    ("injected", "Frames the slow path sent through a worker."),
    ("tx_packets", "Frames put on AF_XDP TX rings."),
    (
        "ipip_encapsulated",
        "Packets wrapped in IP-in-IP towards another node.",
    ),
    (
        "ipip_decapsulated",
        "IP-in-IP packets from known nodes unwrapped.",
    ),
    (
        "checksums_completed",
        "TCP/UDP checksums a local sender left to offload, completed.",
    ),
    (
        "gso_received",
        "Frames received whole as GSO segments (TAP ports).",
    ),
    (
        "gso_cut",
        "Packets cut from GSO frames for ports without offloads.",
    ),
    (
        "gro_merged",
        "Packets joined with others of their flow into GSO frames for TAP ports.",
    ),
];

fn value(c: &PipelineCounters, name: &str) -> u64 {
    match name {
        "rx_packets" => c.rx_packets,
        "rx_bytes" => c.rx_bytes,
        "forwarded" => c.forwarded,
        "punted" => c.punted,
        "injected" => c.injected,
        "tx_packets" => c.tx_packets,
        "ipip_encapsulated" => c.ipip_encapsulated,
        "ipip_decapsulated" => c.ipip_decapsulated,
        "checksums_completed" => c.checksums_completed,
        "gso_received" => c.gso_received,
        "gso_cut" => c.gso_cut,
        "gro_merged" => c.gro_merged,
        _ => 0,
    }
}

/// Renders every metric of the node: brindle's and Felix's.
pub fn render_node(dp: &DataplaneObserver, felix: &felix::FelixSource) -> String {
    let mut out = render(dp);
    felix::render(&mut out, &felix.snapshot(), Instant::now());
    out
}

/// Renders every metric of the running dataplane.
pub fn render(dp: &DataplaneObserver) -> String {
    let mut out = String::with_capacity(8 * 1024);
    let total = dp.fastpath();
    let workers = dp.workers();

    for (name, help) in FASTPATH {
        header(
            &mut out,
            &format!("brindle_fastpath_{name}_total"),
            help,
            "counter",
        );
        let _ = writeln!(out, "brindle_fastpath_{name}_total {}", value(&total, name));
    }
    header(
        &mut out,
        "brindle_fastpath_drops_total",
        "Frames dropped, by reason.",
        "counter",
    );
    for reason in DropReason::ALL {
        let _ = writeln!(
            out,
            "brindle_fastpath_drops_total{{reason=\"{}\"}} {}",
            reason.name(),
            total.dropped(reason)
        );
    }

    header(
        &mut out,
        "brindle_fastpath_socket_total",
        "The kernel's AF_XDP socket counts (XDP_STATISTICS), by counter.",
        "counter",
    );
    for (counter, v) in total.socket.named() {
        let _ = writeln!(
            out,
            "brindle_fastpath_socket_total{{counter=\"{counter}\"}} {v}"
        );
    }

    for (name, help) in FASTPATH {
        header(
            &mut out,
            &format!("brindle_fastpath_worker_{name}_total"),
            help,
            "counter",
        );
        for (worker, c) in &workers {
            let _ = writeln!(
                out,
                "brindle_fastpath_worker_{name}_total{{worker=\"{}\"}} {}",
                escape(worker),
                value(c, name)
            );
        }
    }
    header(
        &mut out,
        "brindle_fastpath_worker_drops_total",
        "Frames dropped, by worker and reason.",
        "counter",
    );
    for (worker, c) in &workers {
        for reason in DropReason::ALL {
            let _ = writeln!(
                out,
                "brindle_fastpath_worker_drops_total{{worker=\"{}\",reason=\"{}\"}} {}",
                escape(worker),
                reason.name(),
                c.dropped(reason)
            );
        }
    }

    for (name, v) in dp.slowpath().pairs() {
        let metric = format!("brindle_slowpath_{name}_total");
        header(
            &mut out,
            &metric,
            "Slow path counter (see slowpath::SlowpathCounters).",
            "counter",
        );
        let _ = writeln!(out, "{metric} {v}");
    }

    let ports = dp.ports();
    header(
        &mut out,
        "brindle_dataplane_ports",
        "Ports the dataplane serves, by kind.",
        "gauge",
    );
    for kind in ["workload", "uplink"] {
        let n = ports.iter().filter(|p| p.kind == kind).count();
        let _ = writeln!(out, "brindle_dataplane_ports{{kind=\"{kind}\"}} {n}");
    }
    header(
        &mut out,
        "brindle_dataplane_port_info",
        "One series per port, always 1.",
        "gauge",
    );
    for p in ports.iter() {
        let _ = writeln!(
            out,
            "brindle_dataplane_port_info{{id=\"{}\",name=\"{}\",kind=\"{}\",xdp_mode=\"{}\"}} 1",
            p.id,
            escape(&p.name),
            p.kind,
            p.xdp_mode
        );
    }
    header(
        &mut out,
        "brindle_dataplane_apply_failures",
        "Items the last apply could not program.",
        "gauge",
    );
    let _ = writeln!(
        out,
        "brindle_dataplane_apply_failures {}",
        dp.failures().len()
    );
    header(
        &mut out,
        "brindle_dataplane_applies_total",
        "Applies of a desired state.",
        "counter",
    );
    let _ = writeln!(out, "brindle_dataplane_applies_total {}", dp.applies());
    out
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, quote, newline), as the format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    use fastpath::WorkerCounters;
    use slowpath::SlowpathCounters;
    use std::sync::Arc;

    #[test]
    fn counters_render_summed_per_worker_and_by_drop_reason() {
        let (a, b) = (
            Arc::new(WorkerCounters::default()),
            Arc::new(WorkerCounters::default()),
        );
        let mut c = PipelineCounters {
            forwarded: 5,
            ..Default::default()
        };
        c.drop(DropReason::NoRoute);
        c.socket.rx_ring_full = 4;
        a.publish(&c);
        let mut d = PipelineCounters {
            forwarded: 2,
            ..Default::default()
        };
        d.socket.rx_ring_full = 1;
        b.publish(&d);
        let dp = DataplaneObserver::for_counters(
            vec![("worker-0".into(), a), ("worker-1".into(), b)],
            Arc::new(SlowpathCounters::default()),
        );
        let text = render(&dp);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines.contains(&"brindle_fastpath_forwarded_total 7"),
            "{text}"
        );
        assert!(
            lines.contains(&"brindle_fastpath_worker_forwarded_total{worker=\"worker-1\"} 2"),
            "{text}"
        );
        assert!(
            lines.contains(&"brindle_fastpath_drops_total{reason=\"no_route\"} 1"),
            "{text}"
        );
        assert!(
            lines.contains(&"brindle_fastpath_socket_total{counter=\"rx_ring_full\"} 5"),
            "{text}"
        );
        assert!(lines.contains(&"brindle_slowpath_held_total 0"), "{text}");
        assert!(
            lines.contains(&"brindle_dataplane_ports{kind=\"workload\"} 0"),
            "{text}"
        );
        // Every sample has a TYPE line for its metric.
        for line in lines.iter().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "no TYPE for {name}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
