//! The one result row every benchmark writes and the report reads.
//!
//! Each benchmark keeps its own detailed JSON (stable field names, read by people and older
//! tools) and adds a `summary` beside it: which benchmark wrote the file and its figures as
//! [`Row`]s (one metric of one lab, brindle next to its baseline, the ratio, the rounds), plus
//! the latency distributions the report draws as CDFs. The report builds every table and plot
//! from summaries only; it no longer knows any benchmark's layout.
//!
//! The summary is derived from the benchmark's own JSON ([`summarise`]), so the same mapping
//! serves a file being written and a file written before summaries existed.

mod doc;
mod from_controlplane;
mod from_dataplane;
mod from_scale;
mod from_scenarios;
mod from_tools;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rounds::ratio;
pub use doc::RowError;

/// Which benchmark wrote a results file; picks the report section its rows go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Benchmark {
    E2e,
    Crossnode,
    Policy,
    RulesSweep,
    CniLatency,
    Resync,
    Scale,
    Scenarios,
    IpamAlloc,
    BgpLearn,
}

impl Benchmark {
    /// Every benchmark, in the order their files' name prefixes must be tried
    /// (`rules-sweep` before anything shorter it could be mistaken for).
    pub const ALL: [Benchmark; 10] = [
        Benchmark::E2e,
        Benchmark::Crossnode,
        Benchmark::Policy,
        Benchmark::RulesSweep,
        Benchmark::CniLatency,
        Benchmark::Resync,
        Benchmark::Scale,
        Benchmark::Scenarios,
        Benchmark::IpamAlloc,
        Benchmark::BgpLearn,
    ];

    /// The results file name prefix, which is also the serialised name.
    pub fn name(self) -> &'static str {
        match self {
            Benchmark::E2e => "e2e",
            Benchmark::Crossnode => "crossnode",
            Benchmark::Policy => "policy",
            Benchmark::RulesSweep => "rules-sweep",
            Benchmark::CniLatency => "cni-latency",
            Benchmark::Resync => "resync",
            Benchmark::Scale => "scale",
            Benchmark::Scenarios => "scenarios",
            Benchmark::IpamAlloc => "ipam-alloc",
            Benchmark::BgpLearn => "bgp-learn",
        }
    }

    /// The benchmark of a file written without a summary, from its name (`e2e-xdp` is e2e).
    pub fn from_file_stem(stem: &str) -> Option<Benchmark> {
        Benchmark::ALL
            .into_iter()
            .find(|b| stem.starts_with(b.name()))
    }
}

/// What a size-like parameter of a row counts: frame bytes, rules, queues.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Size {
    pub of: String,
    pub value: u64,
}

/// One metric of one lab of one run: brindle's figure next to its baseline from the same run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The case within the run: traffic kind (`plain`, `established`), scenario
    /// (`one-node pod-to-pod ping`), CNI operation (`add`), what was scaled; empty when the
    /// run has a single case.
    #[serde(default)]
    pub lab: String,
    /// A parameter swept within the run (frame size, rule count), when the row is one point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Size>,
    /// The benchmark's own field name (`pps_delivered`, `rtt_p99_us`, `p50_ms`).
    pub metric: String,
    pub unit: String,
    /// How brindle's side was set up, where a run has several (`brindle-cni`, `2 + 500 idle`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub side: String,
    /// brindle's figure; `None` when its side did not produce one.
    pub brindle: Option<f64>,
    /// What brindle is compared with (`kernel`, `2 workloads`, `1 client`); empty when the
    /// figure has no baseline (CNI latency: the kernel has no CNI).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub baseline_side: String,
    pub baseline: Option<f64>,
    /// brindle / baseline, from the same run.
    pub ratio: Option<f64>,
    /// Rounds the figures are medians of (1: a single measurement).
    pub rounds: u32,
}

/// One line of a latency CDF.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cdf {
    /// `kernel`, `brindle` (ping RTT) or `add_ms` ... (CNI operations).
    pub series: String,
    /// `us` or `ms`: one unit per run.
    pub unit: String,
    /// (latency, fraction of operations at or below it), ascending.
    pub points: Vec<(f64, f64)>,
}

/// What a results file adds beside its own fields, under `summary`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub benchmark: Benchmark,
    /// The UDP frame size of the run, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_size: Option<u64>,
    pub rows: Vec<Row>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cdfs: Vec<Cdf>,
    /// Parts of the run with no figure (a side that failed), and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

/// The key of the summary in a results file.
pub const SUMMARY_KEY: &str = "summary";

/// Latency samples kept per CDF line; a CDF needs no more to look exact at plot resolution.
pub const MAX_CDF_SAMPLES: usize = 100_000;

/// The unit of one of the benchmarks' metric names (they carry it as a suffix).
pub fn unit_of(metric: &str) -> &'static str {
    // Longer suffixes first: `requests_per_s` is not seconds.
    const SUFFIXES: [(&str, &str); 9] = [
        ("gbit_per_s", "Gbit/s"),
        ("requests_per_s", "requests/s"),
        ("per_sec", "1/s"),
        ("_us", "us"),
        ("_ms", "ms"),
        ("_secs", "s"),
        ("_s", "s"),
        ("_kib", "KiB"),
        ("pps_delivered", "pps"),
    ];
    SUFFIXES
        .iter()
        .find(|(suffix, _)| metric.ends_with(suffix))
        .map_or("count", |(_, unit)| unit)
}

impl Row {
    /// A row comparing brindle with `baseline_side`; the ratio computed here.
    pub fn compared(
        lab: impl Into<String>,
        metric: &str,
        brindle: Option<f64>,
        baseline_side: &str,
        baseline: Option<f64>,
        rounds: u32,
    ) -> Row {
        Row {
            lab: lab.into(),
            size: None,
            metric: metric.to_string(),
            unit: unit_of(metric).to_string(),
            side: String::new(),
            brindle,
            baseline_side: baseline_side.to_string(),
            baseline,
            ratio: ratio(brindle, baseline),
            rounds,
        }
    }

    /// A figure with no baseline.
    pub fn alone(lab: impl Into<String>, metric: &str, value: f64, rounds: u32) -> Row {
        Row::compared(lab, metric, Some(value), "", None, rounds)
    }

    pub fn at_size(mut self, of: &str, value: u64) -> Row {
        self.size = Some(Size {
            of: of.to_string(),
            value,
        });
        self
    }

    pub fn on_side(mut self, side: impl Into<String>) -> Row {
        self.side = side.into();
        self
    }
}

/// The summary of a benchmark's JSON document.
pub fn summarise(benchmark: Benchmark, doc: &Value) -> Result<Summary, RowError> {
    let doc = doc::Doc(doc);
    let mut summary = Summary {
        benchmark,
        frame_size: doc.value().get("frame_size").and_then(Value::as_u64),
        rows: Vec::new(),
        cdfs: Vec::new(),
        left_out: Vec::new(),
    };
    match benchmark {
        Benchmark::E2e => from_dataplane::e2e(&doc, &mut summary)?,
        Benchmark::Crossnode => from_dataplane::crossnode(&doc, &mut summary)?,
        Benchmark::Policy => from_dataplane::policy(&doc, &mut summary)?,
        Benchmark::RulesSweep => from_dataplane::rules_sweep(&doc, &mut summary)?,
        Benchmark::CniLatency => from_controlplane::cni_latency(&doc, &mut summary)?,
        Benchmark::Resync => from_controlplane::resync(&doc, &mut summary)?,
        Benchmark::Scale => from_scale::scale(&doc, &mut summary)?,
        Benchmark::Scenarios => from_scenarios::scenarios(&doc, &mut summary)?,
        Benchmark::IpamAlloc => from_tools::ipam_alloc(&doc, &mut summary)?,
        Benchmark::BgpLearn => from_tools::bgp_learn(&doc, &mut summary)?,
    }
    Ok(summary)
}

/// `json` as a document with its summary added under [`SUMMARY_KEY`].
pub fn with_summary(benchmark: Benchmark, json: Value) -> Result<Value, RowError> {
    let summary = summarise(benchmark, &json)?;
    let Value::Object(mut fields) = json else {
        return Err(RowError::new(
            "",
            "a results document must be a JSON object",
        ));
    };
    let summary = serde_json::to_value(summary).map_err(|e| RowError::new("", e.to_string()))?;
    fields.insert(SUMMARY_KEY.to_string(), summary);
    Ok(Value::Object(fields))
}

/// The summary a file carries, `None` when it was written before summaries existed.
pub fn read_summary(doc: &Value) -> Result<Option<Summary>, RowError> {
    match doc.get(SUMMARY_KEY) {
        None | Some(Value::Null) => Ok(None),
        Some(summary) => serde_json::from_value(summary.clone())
            .map(Some)
            .map_err(|e| RowError::new(&format!("/{SUMMARY_KEY}"), e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_come_from_the_metric_names() {
        assert_eq!(unit_of("pps_delivered"), "pps");
        assert_eq!(unit_of("rtt_p99_us"), "us");
        assert_eq!(unit_of("p50_ms"), "ms");
        assert_eq!(unit_of("synced_secs"), "s");
        assert_eq!(unit_of("endpoints_per_sec"), "1/s");
        assert_eq!(unit_of("gbit_per_s"), "Gbit/s");
        assert_eq!(unit_of("requests_per_s"), "requests/s");
        assert_eq!(unit_of("count"), "count");
    }

    #[test]
    fn file_stems_name_their_benchmark() {
        assert_eq!(Benchmark::from_file_stem("e2e-xdp"), Some(Benchmark::E2e));
        assert_eq!(
            Benchmark::from_file_stem("rules-sweep"),
            Some(Benchmark::RulesSweep)
        );
        assert_eq!(
            Benchmark::from_file_stem("scale-queues"),
            Some(Benchmark::Scale)
        );
        assert_eq!(Benchmark::from_file_stem("notes"), None);
        for b in Benchmark::ALL {
            let json = serde_json::to_value(b).unwrap();
            assert_eq!(json, Value::String(b.name().into()));
        }
    }

    #[test]
    fn figures_a_failed_run_left_null_are_left_out_not_an_error() {
        // A node that never synced: only the endpoint count is there.
        let resync = serde_json::json!({"endpoints": 10, "synced_secs": null,
            "programmed_secs": null, "endpoints_per_sec": null, "node_error": "timeout"});
        let summary = summarise(Benchmark::Resync, &resync).unwrap();
        assert_eq!(summary.rows.len(), 1);
        let policy = serde_json::json!({"rounds": 3, "kinds": [
            {"kind": "established", "kernel": {"pps_delivered": 5.0}, "brindle": {"pps_delivered": null}},
            {"kind": "new_flows", "kernel": {"pps_delivered": 5.0}, "brindle": {"pps_delivered": 10.0}}]});
        let summary = summarise(Benchmark::Policy, &policy).unwrap();
        assert_eq!(summary.rows.len(), 1);
        assert_eq!(
            (summary.rows[0].ratio, summary.rows[0].rounds),
            (Some(2.0), 3)
        );
        assert!(
            summary.left_out[0].starts_with("established"),
            "{:?}",
            summary.left_out
        );
        let scale = serde_json::json!({"mode": "poll", "results": [
            {"queues": 1, "pps_delivered": null}, {"queues": 2, "pps_delivered": 4.0}]});
        let summary = summarise(Benchmark::Scale, &scale).unwrap();
        assert_eq!(summary.rows[0].baseline, None);
        // A field of the wrong type is still an error naming it.
        let bad = serde_json::json!({"endpoints": "ten"});
        let err = summarise(Benchmark::Resync, &bad).unwrap_err();
        assert_eq!(err.field, "/endpoints");
    }

    #[test]
    fn a_summary_is_added_beside_the_fields_and_read_back() {
        let json = serde_json::json!({"endpoints": 10, "synced_secs": 1.0,
            "programmed_secs": 2.0, "endpoints_per_sec": 5.0});
        let doc = with_summary(Benchmark::Resync, json).unwrap();
        assert_eq!(doc["endpoints"], 10);
        let summary = read_summary(&doc).unwrap().unwrap();
        assert_eq!(summary.benchmark, Benchmark::Resync);
        assert_eq!(summary.rows.len(), 4);
        assert_eq!(read_summary(&serde_json::json!({})).unwrap(), None);
        let err = read_summary(&serde_json::json!({"summary": {"rows": 1}})).unwrap_err();
        assert!(err.to_string().contains("/summary"), "{err}");
        assert!(with_summary(Benchmark::Resync, serde_json::json!([1])).is_err());
    }
}
