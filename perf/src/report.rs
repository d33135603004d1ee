//! `brindle-perf report`: one Markdown report and SVG/PNG plots from every benchmark JSON in
//! a results directory.
//!
//! Every table and plot is built from the files' summaries ([`crate::rows`]): rows of one
//! metric each, brindle next to its baseline of the same run. Every brindle/kernel ratio is
//! from one file, that is of one run: the benchmarks measure both sides one after the other
//! in one invocation, and ratios across runs on these noisy machines would mean nothing.
//!
//! A file written before summaries existed is summarised from its fields by the same mapping
//! the benchmark uses when writing (its kind from its name: `e2e*.json`, `crossnode*.json`,
//! ...), and the report says which files were read that way.
//!
//! Text in the plots is laid out with `ab_glyph` from a TrueType font read at run time
//! (DejaVu Sans from Debian's `fonts-dejavu-core`, or `--font`), so that neither fontconfig
//! nor freetype is linked and no font is vendored into the repository.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::rows::{self, Benchmark, Cdf, Row, Summary};

pub use crate::report_plots::{register_font, FONT_CANDIDATES, MAX_FONT_BYTES};

/// Result files larger than this are not benchmark output; refusing them bounds memory.
const MAX_RESULT_BYTES: u64 = 64 << 20;

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

/// The summary of one results file.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// The results file's stem, e.g. `crossnode` or `e2e-interrupt`.
    pub name: String,
    pub summary: Summary,
}

/// Everything read from a results directory.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Every file with a summary, in name order.
    pub runs: Vec<Run>,
    /// Runs with at least one row, in order.
    pub sources: Vec<String>,
    /// Files or parts left out, with the reason.
    pub skipped: Vec<String>,
    /// Files written before summaries existed, summarised from their fields.
    pub derived: Vec<String>,
}

/// The benchmarks whose rows go to the "brindle vs the kernel dataplane" table.
pub const DATAPLANE: [Benchmark; 3] = [Benchmark::E2e, Benchmark::Crossnode, Benchmark::Policy];

impl Report {
    /// The rows of the runs of `benchmarks`, each with its run's name, in file order.
    pub fn rows_of<'a>(
        &'a self,
        benchmarks: &'a [Benchmark],
    ) -> impl Iterator<Item = (&'a str, &'a Row)> + 'a {
        self.runs
            .iter()
            .filter(|run| benchmarks.contains(&run.summary.benchmark))
            .flat_map(|run| run.summary.rows.iter().map(|row| (run.name.as_str(), row)))
    }

    /// The kernel comparisons of the dataplane benchmarks.
    pub fn comparisons(&self) -> impl Iterator<Item = (&str, &Row)> {
        self.rows_of(&DATAPLANE)
    }

    /// Adds the summary of the file `path`, named `name`.
    pub fn push(&mut self, name: String, path: &str, summary: Summary) {
        for note in &summary.left_out {
            self.skipped.push(format!("{path}: {note}"));
        }
        if !summary.rows.is_empty() {
            self.sources.push(name.clone());
        }
        self.runs.push(Run { name, summary });
    }

    /// The CDF lines of one run.
    pub fn cdfs_of<'a>(&'a self, run: &'a str) -> impl Iterator<Item = &'a Cdf> + 'a {
        self.runs
            .iter()
            .filter(move |r| r.name == run)
            .flat_map(|r| r.summary.cdfs.iter())
    }
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
    let plots = crate::report_plots::write_plots(&report, &opts.plots_dir)?;
    let plots_link = relative_to_report(&opts.plots_dir, &opts.out);
    let md = crate::report_markdown::markdown(&report, &plots, &plots_link);
    std::fs::write(&opts.out, md).map_err(|source| ReportError::Write {
        path: opts.out.clone(),
        source,
    })?;
    Ok((report, plots))
}

fn relative_to_report(plots_dir: &Path, report: &Path) -> String {
    let base = report.parent().unwrap_or(Path::new(""));
    plots_dir
        .strip_prefix(base)
        .unwrap_or(plots_dir)
        .display()
        .to_string()
}

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
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let doc = read_json(path)?;
    let Some(summary) = summary_of(path, &name, &doc, report)? else {
        report
            .skipped
            .push(format!("{}: not a known benchmark", path.display()));
        return Ok(());
    };
    report.push(name, &path.display().to_string(), summary);
    Ok(())
}

/// The file's own summary, else one derived from its fields by the kind its name says.
fn summary_of(
    path: &Path,
    name: &str,
    doc: &Value,
    report: &mut Report,
) -> Result<Option<Summary>, ReportError> {
    let field_err = |e: rows::RowError| ReportError::Field {
        path: path.to_path_buf(),
        field: e.field,
        problem: e.problem,
    };
    if let Some(summary) = rows::read_summary(doc).map_err(field_err)? {
        return Ok(Some(summary));
    }
    let Some(benchmark) = Benchmark::from_file_stem(name) else {
        return Ok(None);
    };
    let summary = rows::summarise(benchmark, doc).map_err(field_err)?;
    report.derived.push(name.to_string());
    Ok(Some(summary))
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

    /// (run, traffic, metric, frame size, kernel, brindle) of every dataplane comparison.
    type Comparison = (String, String, String, Option<u64>, f64, f64);

    fn comparison(run: &str, traffic: &str, metric: &str, kernel: f64, brindle: f64) -> Comparison {
        (
            run.into(),
            traffic.into(),
            metric.into(),
            None,
            kernel,
            brindle,
        )
    }

    fn comparisons(report: &Report) -> Vec<Comparison> {
        report
            .comparisons()
            .map(|(run, r)| {
                (
                    run.to_string(),
                    r.lab.clone(),
                    r.metric.clone(),
                    r.size.as_ref().map(|s| s.value),
                    r.baseline.unwrap(),
                    r.brindle.unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn sample_results_give_one_comparison_per_side_pair_and_metric() {
        let report = load(&fixtures()).unwrap();
        let mut by_size = comparison(
            "e2e",
            "1500-byte frames",
            "pps_delivered",
            80000.0,
            100000.0,
        );
        by_size.3 = Some(1500);
        assert_eq!(
            comparisons(&report),
            vec![
                // crossnode: brindle_plain has no p99 (null) and brindle_ipip did not run.
                comparison("crossnode", "plain", "pps_delivered", 200000.0, 250000.0),
                comparison("crossnode", "plain", "rtt_p50_us", 5.0, 20.0),
                comparison("e2e", "", "pps_delivered", 100000.0, 150000.0),
                comparison("e2e", "", "rtt_p50_us", 3.0, 15.0),
                comparison("e2e", "", "rtt_p99_us", 17.0, 34.0),
                by_size,
                comparison("policy", "established", "pps_delivered", 600000.0, 900000.0),
                comparison("policy", "new_flows", "pps_delivered", 40000.0, 320000.0),
            ]
        );
        assert_eq!(report.comparisons().nth(2).unwrap().1.ratio, Some(1.5));
        assert_eq!(
            report.sources,
            ["cni-latency", "crossnode", "e2e", "policy", "resync"]
        );
        // The fixtures are older files without a summary: summarised from their fields.
        assert_eq!(
            report.derived,
            ["cni-latency", "crossnode", "e2e", "policy", "resync"]
        );
        assert_eq!(report.skipped.len(), 2, "{:?}", report.skipped);
        assert!(
            report.skipped[0].contains("brindle_ipip is absent or null, no comparison for ipip")
        );
        assert!(report.skipped[1].contains("notes.json: not a known benchmark"));
        let cni = &report.runs[0].summary;
        assert_eq!(cni.benchmark, Benchmark::CniLatency);
        assert_eq!(cni.rows.len(), 3 * 4, "three operations, four figures each");
        let p99 = cni
            .rows
            .iter()
            .find(|r| r.lab == "add_to_forwarding" && r.metric == "p99_ms");
        assert_eq!(p99.unwrap().brindle, Some(150.0));
        assert_eq!(
            cni.cdfs[0].points,
            [(52.0, 0.25), (55.0, 0.5), (56.0, 0.75), (70.0, 1.0)]
        );
        let e2e_cdf: Vec<&Cdf> = report.cdfs_of("e2e").collect();
        assert_eq!(e2e_cdf.len(), 2);
        assert_eq!(
            (e2e_cdf[1].series.as_str(), e2e_cdf[1].unit.as_str()),
            ("brindle", "us")
        );
        assert_eq!(e2e_cdf[1].points[1], (15.0, 0.5));
        let resync = &report.runs.last().unwrap().summary.rows;
        let figure = |m: &str| {
            resync
                .iter()
                .find(|r| r.metric == m)
                .and_then(|r| r.brindle)
        };
        assert_eq!(figure("endpoints_per_sec"), Some(57142.857));
        assert_eq!(figure("reconnect_resync_secs"), Some(0.118));
    }

    #[test]
    fn a_summary_in_the_file_is_read_as_it_is() {
        let dir = scratch("summary");
        let derived = load(&fixtures()).unwrap();
        for run in &derived.runs {
            let mut doc = serde_json::json!({"anything": "else"});
            doc["summary"] = serde_json::to_value(&run.summary).unwrap();
            // Named so that the name alone says nothing: the summary does.
            let path = dir.join(format!("renamed-{}.json", run.name));
            std::fs::write(path, doc.to_string()).unwrap();
        }
        let read = load(&dir).unwrap();
        assert!(read.derived.is_empty(), "{:?}", read.derived);
        assert_eq!(read.runs.len(), derived.runs.len());
        for (a, b) in read.runs.iter().zip(&derived.runs) {
            assert_eq!(a.summary, b.summary);
            assert_eq!(a.name, format!("renamed-{}", b.name));
        }
        std::fs::remove_dir_all(&dir).unwrap();
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
        let error =
            crate::report_plots::register_font_from(&[PathBuf::from("/nonexistent/brindle.ttf")]);
        let error = error.unwrap_err().to_string();
        assert!(error.contains("/nonexistent/brindle.ttf"), "{error}");
    }
}
