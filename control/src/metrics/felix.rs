//! Felix's metrics under Felix's names (`felix_*`), so that Calico's dashboards and alerts
//! read a brindle node as they read calico-node.
//!
//! Names, types, labels and meanings follow Felix's. Only what brindle can fill truthfully is
//! exported: the cluster and policy counts, `felix_resync*` and `felix_ipsets_*` only in
//! agent mode (a node run from a file has no datastore and no policy sets). docs/node.md
//! lists them, with the Felix metrics left out and why.
//!
//! The node's loop writes a [`FelixState`] through a [`FelixSource`]; the metrics endpoint
//! renders a copy of it.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::header;

/// How long an apply's duration counts towards the quantiles (as a Go summary's `MaxAge`).
const WINDOW: Duration = Duration::from_secs(600);
/// Durations kept at most within the window, so that a busy node's memory stays bounded.
const WINDOW_SAMPLES: usize = 4096;
/// The quantiles Felix's summaries report.
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// What the agent knows (agent mode only).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterCounts {
    pub local_endpoints: usize,
    pub active_local_policies: usize,
    pub active_local_selectors: usize,
    pub hosts: usize,
    pub workload_endpoints: usize,
    pub host_endpoints: usize,
    pub tiers: usize,
    pub policies: usize,
    pub profiles: usize,
    pub ipsets: usize,
    pub resyncs_started: u64,
    /// The datastore is listed and watched (Felix's `InSync`); otherwise the agent waits for
    /// it (`WaitForDatastore`).
    pub in_sync: bool,
}

/// Durations of applies: all-time count and sum, and the recent ones for quantiles.
#[derive(Clone, Debug, Default)]
pub struct ApplyTimes {
    count: u64,
    sum: f64,
    recent: VecDeque<(Instant, f64)>,
}

impl ApplyTimes {
    pub fn observe(&mut self, at: Instant, seconds: f64) {
        self.count += 1;
        self.sum += seconds;
        if self.recent.len() == WINDOW_SAMPLES {
            self.recent.pop_front();
        }
        self.recent.push_back((at, seconds));
    }

    /// The `q` quantile of the durations observed within the window before `now` (NaN
    /// without any, as a Go summary reports).
    fn quantile(&self, now: Instant, q: f64) -> f64 {
        let mut values: Vec<f64> = self
            .recent
            .iter()
            .filter(|(at, _)| now.saturating_duration_since(*at) <= WINDOW)
            .map(|(_, v)| *v)
            .collect();
        if values.is_empty() {
            return f64::NAN;
        }
        values.sort_by(f64::total_cmp);
        let rank = (q * values.len() as f64).ceil() as usize;
        values[rank.clamp(1, values.len()) - 1]
    }
}

/// The node's state as Felix's metrics report it.
#[derive(Clone, Debug, Default)]
pub struct FelixState {
    /// The node's name (Felix's `FelixHostname`).
    pub host: String,
    /// Workload and host endpoints of this node that the dataplane is given.
    pub local_endpoints: usize,
    /// `None` when the node runs from a file.
    pub cluster: Option<ClusterCounts>,
    /// Applies that left something unprogrammed, to be retried.
    pub dataplane_failures: u64,
    /// How long the first apply took.
    pub initial_apply_seconds: Option<f64>,
    /// The applies after the first.
    pub apply_times: ApplyTimes,
}

/// The node's loop writes, the metrics endpoint reads; cheap to clone.
#[derive(Clone, Default)]
pub struct FelixSource(Arc<Mutex<FelixState>>);

impl FelixSource {
    pub fn new(host: &str) -> FelixSource {
        FelixSource(Arc::new(Mutex::new(FelixState {
            host: host.to_owned(),
            ..FelixState::default()
        })))
    }

    pub fn update(&self, f: impl FnOnce(&mut FelixState)) {
        // A panic elsewhere while holding it leaves plain counts behind: still usable.
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state);
    }

    /// Records an apply that took `took` and left `failed` items unprogrammed.
    pub fn record_apply(&self, took: Duration, failed: bool) {
        self.update(|s| {
            if failed {
                s.dataplane_failures += 1;
            }
            let seconds = took.as_secs_f64();
            if s.initial_apply_seconds.is_none() {
                s.initial_apply_seconds = Some(seconds);
            } else {
                s.apply_times.observe(Instant::now(), seconds);
            }
        });
    }

    pub fn snapshot(&self) -> FelixState {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Appends Felix's metrics for `state` to `out`.
pub fn render(out: &mut String, state: &FelixState, now: Instant) {
    header(
        out,
        "felix_host",
        "The node's name as label host, for grouping; always 1.",
        "gauge",
    );
    let _ = writeln!(
        out,
        "felix_host{{host=\"{}\"}} 1",
        super::escape(&state.host)
    );
    gauge(
        out,
        "felix_active_local_endpoints",
        "Number of active endpoints on this host.",
        state.local_endpoints,
    );

    header(
        out,
        "felix_int_dataplane_failures",
        "Number of times dataplane updates failed and will be retried.",
        "counter",
    );
    let _ = writeln!(
        out,
        "felix_int_dataplane_failures {}",
        state.dataplane_failures
    );
    if let Some(seconds) = state.initial_apply_seconds {
        header(
            out,
            "felix_int_dataplane_initial_resync_time_seconds",
            "Time in seconds the first programming of the dataplane took.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "felix_int_dataplane_initial_resync_time_seconds {seconds}"
        );
    }
    let name = "felix_int_dataplane_apply_time_seconds";
    header(
        out,
        name,
        "Time in seconds for each update to the dataplane after the first.",
        "summary",
    );
    let times = &state.apply_times;
    for q in QUANTILES {
        let _ = writeln!(
            out,
            "{name}{{quantile=\"{q}\"}} {}",
            number(times.quantile(now, q))
        );
    }
    let _ = writeln!(out, "{name}_sum {}", number(times.sum));
    let _ = writeln!(out, "{name}_count {}", times.count);

    let Some(c) = &state.cluster else { return };
    gauge(
        out,
        "felix_active_local_policies",
        "Number of active policies on this host.",
        c.active_local_policies,
    );
    gauge(
        out,
        "felix_active_local_selectors",
        "Number of active selectors on this host.",
        c.active_local_selectors,
    );
    for (name, help, v) in [
        (
            "felix_cluster_num_hosts",
            "Total number of calico hosts in the cluster.",
            c.hosts,
        ),
        (
            "felix_cluster_num_workload_endpoints",
            "Total number of workload endpoints cluster-wide.",
            c.workload_endpoints,
        ),
        (
            "felix_cluster_num_host_endpoints",
            "Total number of host endpoints cluster-wide.",
            c.host_endpoints,
        ),
        (
            "felix_cluster_num_tiers",
            "Total number of tiers cluster-wide.",
            c.tiers,
        ),
        (
            "felix_cluster_num_policies",
            "Total number of policies cluster-wide.",
            c.policies,
        ),
        (
            "felix_cluster_num_profiles",
            "Total number of profiles cluster-wide.",
            c.profiles,
        ),
    ] {
        gauge(out, name, help, v);
    }
    header(
        out,
        "felix_resync_state",
        "Current datastore state: 1 waiting for the datastore, 3 in sync.",
        "gauge",
    );
    let _ = writeln!(out, "felix_resync_state {}", if c.in_sync { 3 } else { 1 });
    header(
        out,
        "felix_resyncs_started",
        "Number of datastore resyncs started.",
        "counter",
    );
    let _ = writeln!(out, "felix_resyncs_started {}", c.resyncs_started);
    header(
        out,
        "felix_ipsets_calico",
        "Number of active Calico IP sets.",
        "gauge",
    );
    // The policy address sets are IPv4 only.
    let _ = writeln!(out, "felix_ipsets_calico{{ip_version=\"4\"}} {}", c.ipsets);
    gauge(
        out,
        "felix_ipsets_total",
        "Total number of active IP sets.",
        c.ipsets,
    );
}

fn gauge(out: &mut String, name: &str, help: &str, v: usize) {
    header(out, name, help, "gauge");
    let _ = writeln!(out, "{name} {v}");
}

/// A float as the exposition format spells it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, type) of every `# TYPE` line, and every sample line.
    fn parse(text: &str) -> (Vec<(&str, &str)>, Vec<&str>) {
        let types = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split_once(' ').unwrap())
            .collect();
        let samples = text.lines().filter(|l| !l.starts_with('#')).collect();
        (types, samples)
    }

    fn rendered(state: &FelixState, now: Instant) -> String {
        let mut out = String::new();
        render(&mut out, state, now);
        out
    }

    #[test]
    fn a_node_from_a_file_exports_only_what_applies_without_a_datastore() {
        let felix = FelixSource::new("node-\"a\"");
        felix.update(|s| s.local_endpoints = 2);
        let text = rendered(&felix.snapshot(), Instant::now());
        let (types, samples) = parse(&text);
        assert_eq!(
            types,
            [
                ("felix_host", "gauge"),
                ("felix_active_local_endpoints", "gauge"),
                ("felix_int_dataplane_failures", "counter"),
                ("felix_int_dataplane_apply_time_seconds", "summary"),
            ],
            "{text}"
        );
        assert_eq!(
            samples,
            [
                "felix_host{host=\"node-\\\"a\\\"\"} 1",
                "felix_active_local_endpoints 2",
                "felix_int_dataplane_failures 0",
                "felix_int_dataplane_apply_time_seconds{quantile=\"0.5\"} NaN",
                "felix_int_dataplane_apply_time_seconds{quantile=\"0.9\"} NaN",
                "felix_int_dataplane_apply_time_seconds{quantile=\"0.99\"} NaN",
                "felix_int_dataplane_apply_time_seconds_sum 0",
                "felix_int_dataplane_apply_time_seconds_count 0",
            ],
            "{text}"
        );
        // Every metric has its HELP line before its TYPE line.
        for (name, _) in types {
            let help = text.find(&format!("# HELP {name} ")).expect(name);
            assert!(
                help < text.find(&format!("# TYPE {name} ")).unwrap(),
                "{name}"
            );
        }
    }

    #[test]
    fn an_agent_exports_the_cluster_counts_resync_state_and_ip_sets() {
        let felix = FelixSource::new("n1");
        felix.update(|s| {
            s.local_endpoints = 3;
            s.cluster = Some(ClusterCounts {
                local_endpoints: 3,
                active_local_policies: 4,
                active_local_selectors: 5,
                hosts: 2,
                workload_endpoints: 7,
                host_endpoints: 1,
                tiers: 2,
                policies: 9,
                profiles: 6,
                ipsets: 8,
                resyncs_started: 2,
                in_sync: true,
            })
        });
        let text = rendered(&felix.snapshot(), Instant::now());
        let (types, samples) = parse(&text);
        for (name, kind, sample) in [
            ("felix_active_local_policies", "gauge", "4"),
            ("felix_active_local_selectors", "gauge", "5"),
            ("felix_cluster_num_hosts", "gauge", "2"),
            ("felix_cluster_num_workload_endpoints", "gauge", "7"),
            ("felix_cluster_num_host_endpoints", "gauge", "1"),
            ("felix_cluster_num_tiers", "gauge", "2"),
            ("felix_cluster_num_policies", "gauge", "9"),
            ("felix_cluster_num_profiles", "gauge", "6"),
            ("felix_resync_state", "gauge", "3"),
            ("felix_resyncs_started", "counter", "2"),
            ("felix_ipsets_total", "gauge", "8"),
        ] {
            assert!(types.contains(&(name, kind)), "{name} {kind}: {text}");
            assert!(
                samples.contains(&format!("{name} {sample}").as_str()),
                "{text}"
            );
        }
        assert!(types.contains(&("felix_ipsets_calico", "gauge")), "{text}");
        assert!(
            samples.contains(&"felix_ipsets_calico{ip_version=\"4\"} 8"),
            "{text}"
        );
        assert!(
            samples.contains(&"felix_active_local_endpoints 3"),
            "{text}"
        );

        felix.update(|s| s.cluster.as_mut().unwrap().in_sync = false);
        let text = rendered(&felix.snapshot(), Instant::now());
        assert!(text.lines().any(|l| l == "felix_resync_state 1"), "{text}");
    }

    #[test]
    fn applies_after_the_first_make_the_summary_and_failed_ones_are_counted() {
        let felix = FelixSource::new("n1");
        felix.record_apply(Duration::from_millis(700), true);
        for ms in 1..=100 {
            felix.record_apply(Duration::from_millis(ms), ms == 50);
        }
        let state = felix.snapshot();
        let text = rendered(&state, Instant::now());
        let lines: Vec<&str> = text.lines().collect();
        for line in [
            "felix_int_dataplane_failures 2",
            "felix_int_dataplane_initial_resync_time_seconds 0.7",
            "felix_int_dataplane_apply_time_seconds{quantile=\"0.5\"} 0.05",
            "felix_int_dataplane_apply_time_seconds{quantile=\"0.9\"} 0.09",
            "felix_int_dataplane_apply_time_seconds{quantile=\"0.99\"} 0.099",
            "felix_int_dataplane_apply_time_seconds_count 100",
        ] {
            assert!(lines.contains(&line), "{line}: {text}");
        }
        let sum: f64 = lines
            .iter()
            .find_map(|l| l.strip_prefix("felix_int_dataplane_apply_time_seconds_sum "))
            .unwrap()
            .parse()
            .unwrap();
        assert!((sum - 5.05).abs() < 1e-9, "{sum}");
        // Quantiles cover the recent window only; count and sum are for all time.
        let later = Instant::now() + WINDOW + Duration::from_secs(1);
        let text = rendered(&state, later);
        assert!(
            text.contains("felix_int_dataplane_apply_time_seconds{quantile=\"0.5\"} NaN"),
            "{text}"
        );
        assert!(text.contains("felix_int_dataplane_apply_time_seconds_count 100"));
    }
}
