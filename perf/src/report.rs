//! `brindle-perf report`: one Markdown report and SVG/PNG plots from every benchmark JSON in
//! a results directory.
//!
//! The kind of a results file is its name: `e2e*.json`, `crossnode*.json`, `policy*.json`,
//! `cni-latency*.json`, `resync*.json` (so variants such as `e2e-interrupt.json` are reported
//! too, under their own name). Every brindle/kernel ratio is computed from the two sides of
//! one file, that is of one run: the benchmarks measure both sides one after the other in one
//! invocation, and ratios across runs on these noisy machines would mean nothing.
//!
//! Fields are read through JSON pointers rather than the benchmarks' own types, so that the
//! report keeps reading older result files when a benchmark gains a field; a missing or
//! non-numeric field is an error naming the file and the field.
//!
//! Text in the plots is laid out with `ab_glyph` from a TrueType font read at run time
//! (DejaVu Sans from Debian's `fonts-dejavu-core`, or `--font`), so that neither fontconfig
//! nor freetype is linked and no font is vendored into the repository.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

/// Result files larger than this are not benchmark output; refusing them bounds memory.
const MAX_RESULT_BYTES: u64 = 64 << 20;
/// Latency samples drawn per CDF line; a CDF needs no more to look exact at plot resolution.
const MAX_CDF_SAMPLES: usize = 100_000;
/// Pixel size of every plot.
const PLOT_SIZE: (u32, u32) = (900, 540);
/// The family plotters asks for; the loaded font is registered under it.
const FONT_FAMILY: &str = "sans-serif";
/// Where Debian (and other distributions) install DejaVu Sans, tried in order.
pub const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];
const MAX_FONT_BYTES: u64 = 32 << 20;

const KERNEL_COLOR: RGBColor = RGBColor(0x8c, 0x8c, 0x8c);
const BRINDLE_COLOR: RGBColor = RGBColor(0xd9, 0x5f, 0x02);

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {size} bytes is more than the {MAX_RESULT_BYTES} a result file may have")]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: field {field}: {problem}")]
    Field {
        path: PathBuf,
        field: String,
        problem: String,
    },
    #[error("no benchmark results (*.json) in {0}")]
    NoResults(PathBuf),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("drawing {path}: {message}")]
    Plot { path: PathBuf, message: String },
    #[error("no font for the text in the plots: tried {tried}; install fonts-dejavu-core or pass --font")]
    NoFont { tried: String },
    #[error("font {path}: not a TrueType/OpenType font (or larger than {MAX_FONT_BYTES} bytes)")]
    InvalidFont { path: PathBuf },
}

/// Where to read results and write the report.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Directory whose `*.json` files are read (not recursively).
    pub results_dir: PathBuf,
    /// The Markdown report.
    pub out: PathBuf,
    /// Directory for `<run>-<plot>.svg` and `.png`.
    pub plots_dir: PathBuf,
    /// TrueType font for plot text; `None` tries [`FONT_CANDIDATES`].
    pub font: Option<PathBuf>,
}

impl ReportOptions {
    /// `report.md` and `plots/` inside the results directory.
    pub fn in_dir(results_dir: &Path) -> Self {
        ReportOptions {
            results_dir: results_dir.to_path_buf(),
            out: results_dir.join("report.md"),
            plots_dir: results_dir.join("plots"),
            font: None,
        }
    }
}

/// One metric of one run, brindle next to the kernel baseline of the same run.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The results file's stem, e.g. `crossnode` or `e2e-interrupt`.
    pub run: String,
    /// The traffic within the run: `plain`/`ipip` (crossnode), `established`/`new_flows`
    /// (policy); empty for e2e.
    pub traffic: String,
    /// The benchmark's own field name, unit included (`pps_delivered`, `rtt_p99_us`).
    pub metric: String,
    /// Set for the extra runs at other frame sizes (`e2e --sizes`); `None` for the run's
    /// main measurement.
    pub frame_size: Option<usize>,
    pub kernel: f64,
    pub brindle: f64,
}

impl Comparison {
    /// brindle/kernel; `None` when the kernel side measured zero.
    pub fn ratio(&self) -> Option<f64> {
        (self.kernel > 0.0).then(|| self.brindle / self.kernel)
    }

    fn is_latency(&self) -> bool {
        self.metric.starts_with("rtt_")
    }
}

/// One line of a latency CDF.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyCdf {
    pub run: String,
    /// `add_ms`, `add_to_forwarding_ms`, `del_ms` (cni-latency); `kernel`, `brindle` (e2e).
    pub series: String,
    /// `ms` or `us`: one unit per run.
    pub unit: &'static str,
    /// (latency, fraction of operations at or below it), ascending.
    pub points: Vec<(f64, f64)>,
}

/// Percentiles of one CNI operation (no kernel baseline: the kernel has no CNI).
#[derive(Clone, Debug, PartialEq)]
pub struct CniLatencyRow {
    pub run: String,
    pub operation: String,
    pub count: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The control-plane resync benchmark's headline numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct ResyncRow {
    pub run: String,
    pub endpoints: f64,
    pub synced_secs: f64,
    pub programmed_secs: f64,
    pub endpoints_per_sec: f64,
    pub reconnect_resync_secs: Option<f64>,
}

/// One scale figure: pps in a base configuration and in a scaled one, from the same run.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleRow {
    pub run: String,
    /// What was scaled and how the worker ran, e.g. `idle workloads (poll)`, `uplink queues
    /// (interrupt)`.
    pub what: String,
    pub base_label: String,
    pub base_pps: f64,
    pub scaled_label: String,
    pub scaled_pps: f64,
    /// scaled / base, as the benchmark computed it.
    pub ratio: Option<f64>,
}

/// Everything read from a results directory.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub comparisons: Vec<Comparison>,
    pub latency_cdfs: Vec<LatencyCdf>,
    pub cni_latency: Vec<CniLatencyRow>,
    pub resync: Vec<ResyncRow>,
    /// `scale*.json`: idle workloads (2 vs 2 + N) and uplink queues (1 vs 2).
    pub scale: Vec<ScaleRow>,
    /// Files read, in order.
    pub sources: Vec<String>,
    /// Files or parts left out, with the reason.
    pub skipped: Vec<String>,
    /// `scenarios*.json` (see report_scenarios).
    pub scenarios: Vec<crate::report_scenarios::ScenarioRow>,
    /// `rules-sweep*.json` (see report_rules).
    pub rules_sweeps: Vec<crate::report_rules::RulesSweep>,
}

/// Reads the results, writes the plots then the Markdown report; returns what was read and
/// the plot files written.
pub fn run(opts: &ReportOptions) -> Result<(Report, Vec<PathBuf>), ReportError> {
    let report = load(&opts.results_dir)?;
    register_font(opts.font.as_deref())?;
    std::fs::create_dir_all(&opts.plots_dir).map_err(|source| ReportError::Write {
        path: opts.plots_dir.clone(),
        source,
    })?;
    let plots = write_plots(&report, &opts.plots_dir)?;
    let plots_link = relative_to_report(&opts.plots_dir, &opts.out);
    let md = markdown(&report, &plots, &plots_link);
    std::fs::write(&opts.out, md).map_err(|source| ReportError::Write {
        path: opts.out.clone(),
        source,
    })?;
    Ok((report, plots))
}

// ---------------------------------------------------------------------------------------
// Reading

/// Reads every `*.json` directly in `dir`, in name order.
pub fn load(dir: &Path) -> Result<Report, ReportError> {
    let read_err = |source| ReportError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(ReportError::NoResults(dir.to_path_buf()));
    }
    let mut report = Report::default();
    for path in &paths {
        add_file(&mut report, path)?;
    }
    Ok(report)
}

fn add_file(report: &mut Report, path: &Path) -> Result<(), ReportError> {
    let run = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let doc = read_json(path)?;
    let file = Doc { path, value: &doc };
    let before = report.comparisons.len() + report.cni_latency.len() + report.resync.len();
    if run.starts_with("e2e") {
        add_sides(report, &file, &run, "", "/kernel", "/brindle")?;
        add_e2e_sizes_and_cdf(report, &file, &run)?;
    } else if run.starts_with("crossnode") {
        for encap in ["plain", "ipip"] {
            let (k, b) = (format!("/kernel_{encap}"), format!("/brindle_{encap}"));
            add_sides(report, &file, &run, encap, &k, &b)?;
        }
    } else if run.starts_with("policy") {
        add_policy(report, &file, &run)?;
    } else if run.starts_with("cni-latency") {
        add_cni_latency(report, &file, &run)?;
    } else if run.starts_with("scenarios") {
        let rows = crate::report_scenarios::rows(path, &doc, &run)?;
        report
            .sources
            .extend((!rows.is_empty()).then(|| run.clone()));
        report.scenarios.extend(rows);
        return Ok(());
    } else if run.starts_with("scale") {
        let rows = scale_rows(&file, &run)?;
        report
            .sources
            .extend((!rows.is_empty()).then(|| run.clone()));
        report.scale.extend(rows);
        return Ok(());
    } else if run.starts_with("rules-sweep") {
        let sweep = crate::report_rules::read(path, &doc, &run)?;
        report
            .sources
            .extend((!sweep.points.is_empty()).then(|| run.clone()));
        report.rules_sweeps.push(sweep);
        return Ok(());
    } else if run.starts_with("resync") {
        report.resync.push(ResyncRow {
            run: run.clone(),
            endpoints: file.number("/endpoints")?,
            synced_secs: file.number("/synced_secs")?,
            programmed_secs: file.number("/programmed_secs")?,
            endpoints_per_sec: file.number("/endpoints_per_sec")?,
            reconnect_resync_secs: file.optional_number("/reconnect_resync_secs")?,
        });
    } else {
        report
            .skipped
            .push(format!("{}: not a known benchmark", path.display()));
        return Ok(());
    }
    let after = report.comparisons.len() + report.cni_latency.len() + report.resync.len();
    if after > before {
        report.sources.push(run);
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value, ReportError> {
    let read_err = |source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > MAX_RESULT_BYTES {
        return Err(ReportError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let bytes = std::fs::read(path).map_err(read_err)?;
    serde_json::from_slice(&bytes).map_err(|source| ReportError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// One parsed results file, with errors that name it.
struct Doc<'a> {
    path: &'a Path,
    value: &'a Value,
}

impl Doc<'_> {
    fn error(&self, field: &str, problem: impl Into<String>) -> ReportError {
        ReportError::Field {
            path: self.path.to_path_buf(),
            field: field.to_string(),
            problem: problem.into(),
        }
    }

    /// `None` when the field is absent or null (a side that did not run).
    fn optional_number(&self, pointer: &str) -> Result<Option<f64>, ReportError> {
        match self.value.pointer(pointer) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| self.error(pointer, format!("{n} is not a finite number"))),
            Some(other) => Err(self.error(pointer, format!("expected a number, found {other}"))),
        }
    }

    fn number(&self, pointer: &str) -> Result<f64, ReportError> {
        self.optional_number(pointer)?
            .ok_or_else(|| self.error(pointer, "missing"))
    }

    fn is_present(&self, pointer: &str) -> bool {
        !matches!(self.value.pointer(pointer), None | Some(Value::Null))
    }
}

/// pps and ping percentiles of a kernel side and a brindle side of the same run.
fn add_sides(
    report: &mut Report,
    file: &Doc,
    run: &str,
    traffic: &str,
    kernel: &str,
    brindle: &str,
) -> Result<(), ReportError> {
    for side in [kernel, brindle] {
        if !file.is_present(side) {
            // e2e without --brindle-node, or a crossnode side that failed: nothing to compare.
            report.skipped.push(format!(
                "{}: {} is absent or null, no comparison for {}",
                file.path.display(),
                &side[1..],
                if traffic.is_empty() { run } else { traffic }
            ));
            return Ok(());
        }
    }
    for metric in ["pps_delivered", "rtt_p50_us", "rtt_p99_us"] {
        let k = file.optional_number(&format!("{kernel}/{metric}"))?;
        let b = file.optional_number(&format!("{brindle}/{metric}"))?;
        // A latency is null when no ping came back; the pps rows still stand.
        if let (Some(kernel), Some(brindle)) = (k, b) {
            report.comparisons.push(Comparison {
                run: run.to_string(),
                traffic: traffic.to_string(),
                metric: metric.to_string(),
                frame_size: None,
                kernel,
                brindle,
            });
        }
    }
    Ok(())
}

/// `e2e --sizes` pps per frame size, and the ping RTT CDF of each side (newer e2e files).
fn add_e2e_sizes_and_cdf(report: &mut Report, file: &Doc, run: &str) -> Result<(), ReportError> {
    let sizes = file.value.pointer("/by_size").and_then(Value::as_array);
    for i in 0..sizes.map_or(0, Vec::len) {
        let kernel = file.number(&format!("/by_size/{i}/kernel/pps_delivered"))?;
        let brindle = file.optional_number(&format!("/by_size/{i}/brindle/pps_delivered"))?;
        let size = file.number(&format!("/by_size/{i}/frame_size"))?;
        if let Some(brindle) = brindle {
            report.comparisons.push(Comparison {
                run: run.to_string(),
                traffic: format!("{size:.0}-byte frames"),
                metric: "pps_delivered".to_string(),
                frame_size: Some(size as usize),
                kernel,
                brindle,
            });
        }
    }
    for side in ["kernel", "brindle"] {
        let field = format!("/rtt_cdf_{side}");
        let Some(points) = file.value.pointer(&field).and_then(Value::as_array) else {
            continue;
        };
        let mut cdf = Vec::with_capacity(points.len().min(MAX_CDF_SAMPLES));
        for i in 0..points.len().min(MAX_CDF_SAMPLES) {
            cdf.push((
                file.number(&format!("{field}/{i}/rtt_us"))?,
                file.number(&format!("{field}/{i}/fraction"))?,
            ));
        }
        if !cdf.is_empty() {
            report.latency_cdfs.push(LatencyCdf {
                run: run.to_string(),
                series: side.to_string(),
                unit: "us",
                points: cdf,
            });
        }
    }
    Ok(())
}

/// The rows of a `brindle-perf scale` file: per mode, few vs many idle workloads
/// (`ScaleReport`), or per queue count against the first one (`QueuesReport`).
fn scale_rows(file: &Doc, run: &str) -> Result<Vec<ScaleRow>, ReportError> {
    let mut rows = Vec::new();
    if let Some(modes) = file.value.pointer("/modes").and_then(Value::as_array) {
        let idle = file.number("/idle_workloads")?;
        for (i, m) in modes.iter().enumerate() {
            let mode = m
                .get("mode")
                .and_then(Value::as_str)
                .ok_or_else(|| file.error(&format!("/modes/{i}/mode"), "expected a string"))?;
            rows.push(ScaleRow {
                run: run.to_string(),
                what: format!("idle workloads ({mode})"),
                base_label: "2 workloads".into(),
                base_pps: file.number(&format!("/modes/{i}/few_pps_delivered"))?,
                scaled_label: format!("2 + {idle:.0} idle"),
                scaled_pps: file.number(&format!("/modes/{i}/many_pps_delivered"))?,
                ratio: file.optional_number(&format!("/modes/{i}/ratio_many_to_few"))?,
            });
        }
    } else if let Some(results) = file.value.pointer("/results").and_then(Value::as_array) {
        let mode = file
            .value
            .pointer("/mode")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let queues = |i: usize| file.number(&format!("/results/{i}/queues"));
        let Some(_) = results.first() else {
            return Ok(rows);
        };
        let (base_q, base_pps) = (queues(0)?, file.number("/results/0/pps_delivered")?);
        for i in 1..results.len() {
            rows.push(ScaleRow {
                run: run.to_string(),
                what: format!("uplink queues ({mode})"),
                base_label: format!("{base_q:.0} queue(s)"),
                base_pps,
                scaled_label: format!("{:.0} queues", queues(i)?),
                scaled_pps: file.number(&format!("/results/{i}/pps_delivered"))?,
                ratio: file.optional_number(&format!("/results/{i}/ratio_to_first"))?,
            });
        }
    } else {
        return Err(file.error(
            "/modes",
            "neither /modes (idle workloads) nor /results (queues)",
        ));
    }
    Ok(rows)
}

fn add_policy(report: &mut Report, file: &Doc, run: &str) -> Result<(), ReportError> {
    let kinds = file
        .value
        .pointer("/kinds")
        .and_then(Value::as_array)
        .ok_or_else(|| file.error("/kinds", "expected an array"))?;
    for (i, entry) in kinds.iter().enumerate() {
        let kind = entry
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| file.error(&format!("/kinds/{i}/kind"), "expected a string"))?;
        report.comparisons.push(Comparison {
            run: run.to_string(),
            traffic: kind.to_string(),
            metric: "pps_delivered".to_string(),
            frame_size: None,
            kernel: file.number(&format!("/kinds/{i}/kernel/pps_delivered"))?,
            brindle: file.number(&format!("/kinds/{i}/brindle/pps_delivered"))?,
        });
    }
    Ok(())
}

fn add_cni_latency(report: &mut Report, file: &Doc, run: &str) -> Result<(), ReportError> {
    for operation in ["add", "add_to_forwarding", "del"] {
        if !file.is_present(&format!("/{operation}")) {
            continue;
        }
        report.cni_latency.push(CniLatencyRow {
            run: run.to_string(),
            operation: operation.to_string(),
            count: file.number(&format!("/{operation}/count"))?,
            p50_ms: file.number(&format!("/{operation}/p50_ms"))?,
            p99_ms: file.number(&format!("/{operation}/p99_ms"))?,
            max_ms: file.number(&format!("/{operation}/max_ms"))?,
        });
        let field = format!("/samples/{operation}_ms");
        let Some(samples) = file.value.pointer(&field).and_then(Value::as_array) else {
            continue;
        };
        let mut samples_ms = Vec::with_capacity(samples.len().min(MAX_CDF_SAMPLES));
        for (i, sample) in samples.iter().take(MAX_CDF_SAMPLES).enumerate() {
            let value = sample.as_f64().filter(|v| v.is_finite()).ok_or_else(|| {
                file.error(
                    &format!("{field}/{i}"),
                    format!("expected a number, found {sample}"),
                )
            })?;
            samples_ms.push(value);
        }
        samples_ms.sort_by(f64::total_cmp);
        let n = samples_ms.len() as f64;
        report.latency_cdfs.push(LatencyCdf {
            run: run.to_string(),
            series: format!("{operation}_ms"),
            unit: "ms",
            points: (samples_ms.iter().enumerate())
                .map(|(j, &v)| (v, (j + 1) as f64 / n))
                .collect(),
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Markdown

fn relative_to_report(plots_dir: &Path, report: &Path) -> String {
    let base = report.parent().unwrap_or(Path::new(""));
    plots_dir
        .strip_prefix(base)
        .unwrap_or(plots_dir)
        .display()
        .to_string()
}

fn format_value(metric: &str, value: f64) -> String {
    if metric.starts_with("pps") {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// The report: comparison table, plots (linked under `plots_link`), control-plane tables.
pub fn markdown(report: &Report, plots: &[PathBuf], plots_link: &str) -> String {
    let mut md = String::from("# Brindle benchmark report\n\n");
    md.push_str(&format!(
        "Produced by `brindle-perf report` from {}. Every ratio is brindle/kernel from the same \
         file, that is from one run in which both sides were measured one after the other on \
         the same machine. pps: higher is better; latencies (`rtt_*_us`, ping round trip in \
         microseconds): lower is better.\n\n",
        report
            .sources
            .iter()
            .map(|s| format!("`{s}.json`"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if !report.comparisons.is_empty() {
        md.push_str("## Brindle vs the kernel dataplane\n\n");
        md.push_str("| run | traffic | metric | kernel | brindle | brindle/kernel |\n");
        md.push_str("|---|---|---|---:|---:|---:|\n");
        for c in &report.comparisons {
            let ratio = c.ratio().map_or("-".to_string(), |r| format!("{r:.2}"));
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                c.run,
                if c.traffic.is_empty() {
                    "-"
                } else {
                    &c.traffic
                },
                c.metric,
                format_value(&c.metric, c.kernel),
                format_value(&c.metric, c.brindle),
                ratio
            ));
        }
        md.push('\n');
    }
    if !report.cni_latency.is_empty() {
        md.push_str("## CNI latency (no kernel baseline)\n\n");
        md.push_str("| run | operation | count | p50 ms | p99 ms | max ms |\n");
        md.push_str("|---|---|---:|---:|---:|---:|\n");
        for r in &report.cni_latency {
            md.push_str(&format!(
                "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} |\n",
                r.run, r.operation, r.count, r.p50_ms, r.p99_ms, r.max_ms
            ));
        }
        md.push('\n');
    }
    if !report.resync.is_empty() {
        md.push_str("## Datastore resync (no kernel baseline)\n\n");
        md.push_str(
            "| run | endpoints | synced s | programmed s | endpoints/s | reconnect resync s |\n",
        );
        md.push_str("|---|---:|---:|---:|---:|---:|\n");
        for r in &report.resync {
            md.push_str(&format!(
                "| {} | {:.0} | {:.3} | {:.3} | {:.0} | {} |\n",
                r.run,
                r.endpoints,
                r.synced_secs,
                r.programmed_secs,
                r.endpoints_per_sec,
                r.reconnect_resync_secs
                    .map_or("-".to_string(), |s| format!("{s:.3}"))
            ));
        }
        md.push('\n');
    }
    if !report.scale.is_empty() {
        md.push_str("## Scaling (no kernel baseline)\n\n");
        md.push_str("Both sides of each ratio come from one `brindle-perf scale` run. Idle workloads: goal >= 0.8.\n\n");
        md.push_str("| run | scaled | base | pps | scaled to | pps | ratio |\n");
        md.push_str("|---|---|---|---:|---|---:|---:|\n");
        for r in &report.scale {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                r.run,
                r.what,
                r.base_label,
                format_value("pps", r.base_pps),
                r.scaled_label,
                format_value("pps", r.scaled_pps),
                r.ratio.map_or("-".to_string(), |x| format!("{x:.2}"))
            ));
        }
        md.push('\n');
    }
    let svgs: Vec<&PathBuf> = plots
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    if !svgs.is_empty() {
        md.push_str("## Plots\n\nEach plot also exists as PNG next to the SVG.\n\n");
        for svg in svgs {
            let name = svg.file_name().unwrap_or_default().to_string_lossy();
            let stem = svg.file_stem().unwrap_or_default().to_string_lossy();
            let link = if plots_link.is_empty() {
                name.to_string()
            } else {
                format!("{plots_link}/{name}")
            };
            md.push_str(&format!("![{stem}]({link})\n\n"));
        }
    }
    md.push_str(&crate::report_scenarios::markdown(&report.scenarios));
    md.push_str(&crate::report_rules::markdown(
        &report.rules_sweeps,
        plots_link,
    ));
    if !report.skipped.is_empty() {
        md.push_str("## Left out\n\n");
        for s in &report.skipped {
            md.push_str(&format!("- {s}\n"));
        }
        md.push('\n');
    }
    md.push_str(
        "pps vs packet size and the ping RTT CDF come from `brindle-perf e2e --sizes ...` \
         (e2e files written before that option have neither); pps vs number of rules from \
         `brindle-perf policy --rules a,b,c` (`rules-sweep.json`).\n",
    );
    md
}

// ---------------------------------------------------------------------------------------
// Plots

/// Registers the plot font once per process: `explicit`, else the first of
/// [`FONT_CANDIDATES`] that exists.
pub fn register_font(explicit: Option<&Path>) -> Result<(), ReportError> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(path) => vec![path.to_path_buf()],
        None => FONT_CANDIDATES.iter().map(PathBuf::from).collect(),
    };
    register_font_from(&candidates)
}

fn register_font_from(candidates: &[PathBuf]) -> Result<(), ReportError> {
    static REGISTERED: Mutex<bool> = Mutex::new(false);
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        return Err(ReportError::NoFont {
            tried: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let mut registered = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    if *registered {
        return Ok(());
    }
    let invalid = || ReportError::InvalidFont { path: path.clone() };
    let size = std::fs::metadata(path)
        .map_err(|source| ReportError::Read {
            path: path.clone(),
            source,
        })?
        .len();
    if size > MAX_FONT_BYTES {
        return Err(invalid());
    }
    let bytes = std::fs::read(path).map_err(|source| ReportError::Read {
        path: path.clone(),
        source,
    })?;
    // plotters keeps fonts for the life of the process; leaked once, guarded by REGISTERED.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, bytes).map_err(|_| invalid())?;
    *registered = true;
    Ok(())
}

/// One bar pair: kernel and brindle.
#[derive(Clone, Debug)]
pub(crate) struct BarPair {
    pub(crate) label: String,
    pub(crate) kernel: f64,
    pub(crate) brindle: f64,
}

pub(crate) enum Chart {
    Bars {
        title: String,
        y_desc: String,
        pairs: Vec<BarPair>,
    },
    Cdf {
        title: String,
        x_desc: String,
        series: Vec<(String, Vec<(f64, f64)>)>,
    },
    /// One bar per (label, ratio), with the line at 1.0 (no change).
    Ratios {
        title: String,
        bars: Vec<(String, f64)>,
    },
}

/// Per run: pps bars, latency bars, and CDFs where there are samples; SVG and PNG each.
fn write_plots(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    for run in &report.sources {
        let of_run = |latency: bool| -> Vec<BarPair> {
            report
                .comparisons
                .iter()
                .filter(|c| &c.run == run && c.frame_size.is_none() && c.is_latency() == latency)
                .map(|c| {
                    let mut label = c.traffic.clone();
                    if latency {
                        let p = c.metric.trim_start_matches("rtt_").trim_end_matches("_us");
                        label = if label.is_empty() {
                            p.to_string()
                        } else {
                            format!("{label} {p}")
                        };
                    } else if label.is_empty() {
                        label = c.metric.clone();
                    }
                    BarPair {
                        label,
                        kernel: c.kernel,
                        brindle: c.brindle,
                    }
                })
                .collect()
        };
        let pps = of_run(false);
        if !pps.is_empty() {
            let chart = Chart::Bars {
                title: format!("{run}: delivered packets per second"),
                y_desc: "pps delivered".to_string(),
                pairs: pps,
            };
            written.extend(draw_both(&chart, &dir.join(format!("{run}-pps")))?);
        }
        let latency = of_run(true);
        if !latency.is_empty() {
            let chart = Chart::Bars {
                title: format!("{run}: ping round trip (lower is better)"),
                y_desc: "microseconds".to_string(),
                pairs: latency,
            };
            written.extend(draw_both(&chart, &dir.join(format!("{run}-latency")))?);
        }
        let by_size: Vec<BarPair> = report
            .comparisons
            .iter()
            .filter(|c| &c.run == run && c.frame_size.is_some())
            .map(|c| BarPair {
                label: format!("{} bytes", c.frame_size.unwrap_or_default()),
                kernel: c.kernel,
                brindle: c.brindle,
            })
            .collect();
        if !by_size.is_empty() {
            let chart = Chart::Bars {
                title: format!("{run}: delivered pps by UDP frame size"),
                y_desc: "pps delivered".to_string(),
                pairs: by_size,
            };
            written.extend(draw_both(&chart, &dir.join(format!("{run}-pps-by-size")))?);
        }
        let cdfs: Vec<&LatencyCdf> = report
            .latency_cdfs
            .iter()
            .filter(|s| &s.run == run && !s.points.is_empty())
            .collect();
        if let Some(first) = cdfs.first() {
            let (what, unit) = match first.unit {
                "us" => ("ping round trip", "microseconds"),
                _ => ("latency", "milliseconds"),
            };
            let chart = Chart::Cdf {
                title: format!("{run}: {what} CDF"),
                x_desc: unit.to_string(),
                series: cdfs
                    .iter()
                    .map(|c| (c.series.clone(), c.points.clone()))
                    .collect(),
            };
            written.extend(draw_both(&chart, &dir.join(format!("{run}-cdf")))?);
        }
    }
    if !report.scale.is_empty() {
        let chart = Chart::Ratios {
            title: "scaling: pps scaled / pps base (same run)".to_string(),
            bars: report
                .scale
                .iter()
                .map(|r| {
                    (
                        format!("{}: {}", r.what, r.scaled_label),
                        r.ratio.unwrap_or(0.0),
                    )
                })
                .collect(),
        };
        written.extend(draw_both(&chart, &dir.join("scale-ratios"))?);
    }
    written.extend(crate::report_scenarios::write_plots(
        &report.scenarios,
        dir,
    )?);
    written.extend(crate::report_rules::write_plots(&report.rules_sweeps, dir)?);
    Ok(written)
}

/// `<stem>.svg` and `<stem>.png`.
pub(crate) fn draw_both(chart: &Chart, stem: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let svg = stem.with_extension("svg");
    let png = stem.with_extension("png");
    let plot_err = |path: &Path| {
        let path = path.to_path_buf();
        move |message: String| ReportError::Plot { path, message }
    };
    draw(chart, SVGBackend::new(&svg, PLOT_SIZE).into_drawing_area()).map_err(plot_err(&svg))?;
    draw(
        chart,
        BitMapBackend::new(&png, PLOT_SIZE).into_drawing_area(),
    )
    .map_err(plot_err(&png))?;
    Ok(vec![svg, png])
}

fn draw<DB: DrawingBackend>(chart: &Chart, root: DrawingArea<DB, Shift>) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    match chart {
        Chart::Bars {
            title,
            y_desc,
            pairs,
        } => draw_bars(&root, title, y_desc, pairs).map_err(e)?,
        Chart::Cdf {
            title,
            x_desc,
            series,
        } => draw_cdf(&root, title, x_desc, series).map_err(e)?,
        Chart::Ratios { title, bars } => draw_ratios(&root, title, bars).map_err(e)?,
    }
    root.present().map_err(e)
}

/// Short pps/latency axis labels: 1.2M, 450k, 17.
fn si(value: f64) -> String {
    match value.abs() {
        v if v >= 1e6 => format!("{:.1}M", value / 1e6),
        v if v >= 1e3 => format!("{:.0}k", value / 1e3),
        v if v >= 10.0 || v == 0.0 => format!("{value:.0}"),
        _ => format!("{value:.1}"),
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Grouped bars, kernel then brindle, with brindle/kernel written over the brindle bar.
fn draw_bars<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    pairs: &[BarPair],
) -> DrawResult<DB> {
    let n = pairs.len();
    let top = pairs
        .iter()
        .flat_map(|p| [p.kernel, p.brindle])
        .fold(0.0, f64::max);
    let top = if top > 0.0 { top * 1.2 } else { 1.0 };
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT_FAMILY, 22))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..top)?;
    // Pair i is centred on x = i; asking for n labels over a range n wide makes plotters put
    // its key points on the integers, which get the pair's label.
    let label_of = |x: &f64| {
        bar_index(*x)
            .and_then(|i| pairs.get(i))
            .map_or(String::new(), |p| p.label.clone())
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&label_of)
        .y_desc(y_desc)
        .y_label_formatter(&|y| si(*y))
        .label_style((FONT_FAMILY, 15))
        .draw()?;
    for (name, color, from, to) in [
        ("kernel", KERNEL_COLOR, -0.38, -0.01),
        ("brindle", BRINDLE_COLOR, 0.01, 0.38),
    ] {
        let value = |p: &BarPair| {
            if name == "kernel" {
                p.kernel
            } else {
                p.brindle
            }
        };
        chart
            .draw_series(pairs.iter().enumerate().map(|(i, p)| {
                let x = i as f64;
                Rectangle::new([(x + from, 0.0), (x + to, value(p))], color.filled())
            }))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], color.filled()));
    }
    chart.draw_series(pairs.iter().enumerate().filter_map(|(i, p)| {
        let ratio = (p.kernel > 0.0).then(|| p.brindle / p.kernel)?;
        Some(
            EmptyElement::at((i as f64 + 0.195, p.brindle))
                + Text::new(format!("{ratio:.2}x"), (-16, -20), (FONT_FAMILY, 16)),
        )
    }))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT_FAMILY, 15))
        .draw()
}

/// The bar a key point of the x axis stands for: bars are centred on the integers.
fn bar_index(x: f64) -> Option<usize> {
    let i = x.round();
    ((x - i).abs() <= 1e-6 && i >= 0.0).then_some(i as usize)
}

/// One bar per ratio, labelled with its value, and a dashed line at 1.0.
fn draw_ratios<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    bars: &[(String, f64)],
) -> DrawResult<DB> {
    let n = bars.len();
    let top = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.25;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT_FAMILY, 22))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..top)?;
    let label_of = |x: &f64| {
        bar_index(*x)
            .and_then(|i| bars.get(i))
            .map_or(String::new(), |b| b.0.clone())
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&label_of)
        .y_desc("ratio")
        .label_style((FONT_FAMILY, 13))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        Rectangle::new(
            [(i as f64 - 0.3, 0.0), (i as f64 + 0.3, b.1)],
            BRINDLE_COLOR.filled(),
        )
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
        EmptyElement::at((i as f64, b.1))
            + Text::new(format!("{:.2}x", b.1), (-16, -20), (FONT_FAMILY, 16))
    }))?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(-0.5, 1.0), (n as f64 - 0.5, 1.0)],
        BLACK,
    )))?;
    Ok(())
}

/// CDF per series: latency on x (logarithmic: tails are orders of magnitude above the
/// median), fraction of operations at or below it on y.
fn draw_cdf<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    x_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> DrawResult<DB> {
    let positive = || {
        series
            .iter()
            .flat_map(|(_, points)| points.iter().map(|&(x, _)| x))
            .filter(|&x| x > 0.0)
    };
    let max = positive().fold(0.0, f64::max);
    let min = positive().fold(f64::INFINITY, f64::min);
    let (left, right) = if max > 0.0 {
        (min * 0.8, max * 1.25)
    } else {
        (0.1, 1.0)
    };
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT_FAMILY, 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((left..right).log_scale(), 0.0..1.0)?;
    chart
        .configure_mesh()
        .x_desc(format!("{x_desc} (log scale)"))
        .x_label_formatter(&|x| si(*x))
        .y_desc("fraction of operations")
        .label_style((FONT_FAMILY, 15))
        .draw()?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = match name.as_str() {
            "kernel" => KERNEL_COLOR.to_rgba(),
            "brindle" => BRINDLE_COLOR.to_rgba(),
            _ => Palette99::pick(i).to_rgba(),
        };
        chart
            .draw_series(LineSeries::new(
                points.iter().copied().filter(|&(x, _)| x > 0.0),
                color.stroke_width(2),
            ))?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT_FAMILY, 15))
        .draw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report")
    }

    /// A fresh directory per test (tests run in parallel), removed by the caller.
    fn scratch(tag: &str) -> PathBuf {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "brindle-report-test-{}-{tag}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn comparison(run: &str, traffic: &str, metric: &str, kernel: f64, brindle: f64) -> Comparison {
        Comparison {
            run: run.into(),
            traffic: traffic.into(),
            metric: metric.into(),
            frame_size: None,
            kernel,
            brindle,
        }
    }

    #[test]
    fn sample_results_give_one_comparison_per_side_pair_and_metric() {
        let report = load(&fixtures()).unwrap();
        assert_eq!(
            report.comparisons,
            vec![
                // crossnode: brindle_plain has no p99 (null) and brindle_ipip did not run.
                comparison("crossnode", "plain", "pps_delivered", 200000.0, 250000.0),
                comparison("crossnode", "plain", "rtt_p50_us", 5.0, 20.0),
                comparison("e2e", "", "pps_delivered", 100000.0, 150000.0),
                comparison("e2e", "", "rtt_p50_us", 3.0, 15.0),
                comparison("e2e", "", "rtt_p99_us", 17.0, 34.0),
                Comparison {
                    frame_size: Some(1500),
                    ..comparison(
                        "e2e",
                        "1500-byte frames",
                        "pps_delivered",
                        80000.0,
                        100000.0
                    )
                },
                comparison("policy", "established", "pps_delivered", 600000.0, 900000.0),
                comparison("policy", "new_flows", "pps_delivered", 40000.0, 320000.0),
            ]
        );
        assert_eq!(report.comparisons[2].ratio(), Some(1.5));
        assert_eq!(
            report.sources,
            ["cni-latency", "crossnode", "e2e", "policy", "resync"]
        );
        assert_eq!(report.skipped.len(), 2, "{:?}", report.skipped);
        assert!(
            report.skipped[0].contains("brindle_ipip is absent or null, no comparison for ipip")
        );
        assert!(report.skipped[1].contains("notes.json: not a known benchmark"));
        assert_eq!(report.cni_latency.len(), 3);
        assert_eq!(report.cni_latency[1].operation, "add_to_forwarding");
        assert_eq!(report.cni_latency[1].p99_ms, 150.0);
        assert_eq!(
            report.latency_cdfs[0].points,
            [(52.0, 0.25), (55.0, 0.5), (56.0, 0.75), (70.0, 1.0)]
        );
        let e2e_cdf: Vec<&LatencyCdf> = report
            .latency_cdfs
            .iter()
            .filter(|c| c.run == "e2e")
            .collect();
        assert_eq!(e2e_cdf.len(), 2);
        assert_eq!(
            (e2e_cdf[1].series.as_str(), e2e_cdf[1].unit),
            ("brindle", "us")
        );
        assert_eq!(e2e_cdf[1].points[1], (15.0, 0.5));
        assert_eq!(report.resync[0].endpoints_per_sec, 57142.857);
        assert_eq!(report.resync[0].reconnect_resync_secs, Some(0.118));
    }

    #[test]
    fn run_writes_the_markdown_rows_and_non_empty_svg_and_png_plots() {
        let dir = scratch("run");
        let opts = ReportOptions {
            results_dir: fixtures(),
            out: dir.join("report.md"),
            plots_dir: dir.join("plots"),
            font: None,
        };
        let (_, plots) = run(&opts).unwrap();
        let md = std::fs::read_to_string(&opts.out).unwrap();
        for row in [
            "| e2e | - | pps_delivered | 100000 | 150000 | 1.50 |",
            "| e2e | - | rtt_p99_us | 17.0 | 34.0 | 2.00 |",
            "| e2e | 1500-byte frames | pps_delivered | 80000 | 100000 | 1.25 |",
            "| crossnode | plain | pps_delivered | 200000 | 250000 | 1.25 |",
            "| policy | new_flows | pps_delivered | 40000 | 320000 | 8.00 |",
            "| cni-latency | del | 4 | 38.0 | 60.0 | 60.0 |",
            "| resync | 10000 | 0.093 | 0.175 | 57143 | 0.118 |",
            "![e2e-pps](plots/e2e-pps.svg)",
            "![cni-latency-cdf](plots/cni-latency-cdf.svg)",
        ] {
            assert!(md.contains(row), "missing {row:?} in:\n{md}");
        }
        let mut names: Vec<String> = plots
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut expected: Vec<String> = [
            "cni-latency-cdf",
            "crossnode-latency",
            "crossnode-pps",
            "e2e-cdf",
            "e2e-latency",
            "e2e-pps",
            "e2e-pps-by-size",
            "policy-pps",
        ]
        .iter()
        .flat_map(|s| [format!("{s}.png"), format!("{s}.svg")])
        .collect();
        expected.sort();
        assert_eq!(names, expected);
        for plot in &plots {
            let bytes = std::fs::read(plot).unwrap();
            if plot.extension().unwrap() == "png" {
                assert!(
                    bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
                    "{}",
                    plot.display()
                );
                assert!(
                    bytes.len() > 1000,
                    "{} is {} bytes",
                    plot.display(),
                    bytes.len()
                );
            } else {
                let svg = String::from_utf8(bytes).unwrap();
                assert!(svg.starts_with("<svg"), "{}", plot.display());
                // The ratio label and the legend made it into the picture.
                if plot.ends_with("e2e-pps.svg") {
                    assert!(svg.contains("1.50x") && svg.contains("brindle"), "{svg}");
                }
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_field_of_the_wrong_type_is_an_error_naming_file_and_field() {
        let dir = scratch("bad");
        std::fs::write(
            dir.join("e2e.json"),
            r#"{"kernel": {"pps_delivered": 1.0}, "brindle": {"pps_delivered": "fast"}}"#,
        )
        .unwrap();
        let error = load(&dir).unwrap_err().to_string();
        assert!(error.contains("e2e.json"), "{error}");
        assert!(error.contains("field /brindle/pps_delivered"), "{error}");
        assert!(error.contains("\"fast\""), "{error}");
        std::fs::write(dir.join("e2e.json"), "{not json").unwrap();
        let error = load(&dir).unwrap_err().to_string();
        assert!(error.contains("invalid JSON"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_without_results_is_an_error() {
        let dir = scratch("empty");
        assert!(matches!(load(&dir), Err(ReportError::NoResults(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_font_is_an_error_naming_the_path() {
        // Only this test passes an explicit path that does not exist; registration is once
        // per process, so it must fail before looking at whether a font is registered.
        let error = register_font_from(&[PathBuf::from("/nonexistent/brindle.ttf")]);
        let error = error.unwrap_err().to_string();
        assert!(error.contains("/nonexistent/brindle.ttf"), "{error}");
    }
}
