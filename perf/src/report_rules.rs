//! The "pps vs number of rules" part of the report: the rows of `rules-sweep*.json`
//! (`brindle-perf policy --rules a,b,c`), drawn as lines per side and traffic kind over a
//! logarithmic rule count axis, and tabled with the brindle/kernel ratio of the same run.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::{Report, ReportError};
use crate::report_plots::{BRINDLE_COLOR, FONT_FAMILY, KERNEL_COLOR, PLOT_SIZE};
use crate::rows::Benchmark;

/// Delivered pps of both sides at one rule count and traffic kind.
#[derive(Clone, Debug, PartialEq)]
pub struct RulesPoint {
    pub rules: usize,
    pub kind: String,
    pub kernel: f64,
    pub brindle: f64,
}

/// One sweep file.
#[derive(Clone, Debug, PartialEq)]
pub struct RulesSweep {
    /// File stem, e.g. `rules-sweep`.
    pub run: String,
    pub frame_size: Option<f64>,
    pub points: Vec<RulesPoint>,
}

/// The sweeps of the report, from their rows (one per rule count and kind, both sides).
pub fn sweeps(report: &Report) -> Vec<RulesSweep> {
    report
        .runs
        .iter()
        .filter(|run| run.summary.benchmark == Benchmark::RulesSweep)
        .map(|run| RulesSweep {
            run: run.name.clone(),
            frame_size: run.summary.frame_size.map(|f| f as f64),
            points: (run.summary.rows.iter())
                .filter_map(|r| {
                    Some(RulesPoint {
                        rules: r.size.as_ref()?.value as usize,
                        kind: r.lab.clone(),
                        kernel: r.baseline?,
                        brindle: r.brindle?,
                    })
                })
                .collect(),
        })
        .collect()
}

/// The traffic kinds of a sweep, in first-seen order.
fn kinds(sweep: &RulesSweep) -> Vec<&str> {
    let mut kinds: Vec<&str> = Vec::new();
    for p in &sweep.points {
        if !kinds.contains(&p.kind.as_str()) {
            kinds.push(&p.kind);
        }
    }
    kinds
}

/// `<run>-pps-vs-rules.svg` and `.png` per sweep with points.
pub fn write_plots(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    for sweep in sweeps(report).iter().filter(|s| !s.points.is_empty()) {
        let stem = dir.join(format!("{}-pps-vs-rules", sweep.run));
        let svg = stem.with_extension("svg");
        let png = stem.with_extension("png");
        let plot_err = |path: &Path| {
            let path = path.to_path_buf();
            move |message: String| ReportError::Plot { path, message }
        };
        draw(sweep, SVGBackend::new(&svg, PLOT_SIZE).into_drawing_area())
            .map_err(plot_err(&svg))?;
        draw(
            sweep,
            BitMapBackend::new(&png, PLOT_SIZE).into_drawing_area(),
        )
        .map_err(plot_err(&png))?;
        written.extend([svg, png]);
    }
    Ok(written)
}

fn draw<DB: DrawingBackend>(
    sweep: &RulesSweep,
    root: DrawingArea<DB, Shift>,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let min_rules = sweep.points.iter().map(|p| p.rules).min().unwrap_or(1) as f64;
    let max_rules = sweep.points.iter().map(|p| p.rules).max().unwrap_or(10) as f64;
    let max_pps = sweep
        .points
        .iter()
        .flat_map(|p| [p.kernel, p.brindle])
        .fold(0.0, f64::max)
        .max(1.0);
    let title = match sweep.frame_size {
        Some(size) => format!(
            "{}: delivered pps vs number of rules ({size:.0}-byte UDP)",
            sweep.run
        ),
        None => format!("{}: delivered pps vs number of rules", sweep.run),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT_FAMILY, 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(
            ((min_rules / 1.5)..(max_rules * 1.5)).log_scale(),
            0.0..max_pps * 1.15,
        )
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("rules in the policy (log scale)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc("pps delivered")
        .y_label_formatter(&|y| si(*y))
        .label_style((FONT_FAMILY, 15))
        .draw()
        .map_err(e)?;
    for (k, kind) in kinds(sweep).into_iter().enumerate() {
        for (side, color) in [("kernel", KERNEL_COLOR), ("brindle", BRINDLE_COLOR)] {
            let mut line: Vec<(f64, f64)> = sweep
                .points
                .iter()
                .filter(|p| p.kind == kind)
                .map(|p| {
                    (
                        p.rules as f64,
                        if side == "kernel" {
                            p.kernel
                        } else {
                            p.brindle
                        },
                    )
                })
                .collect();
            line.sort_by(|a, b| a.0.total_cmp(&b.0));
            // The first kind solid and thick, the others thinner: two kinds stay readable in
            // two colours.
            let style = color.stroke_width(if k == 0 { 3 } else { 1 });
            chart
                .draw_series(LineSeries::new(line.iter().copied(), style))
                .map_err(e)?
                .label(format!("{side} {kind}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], style));
            chart
                .draw_series(
                    line.iter()
                        .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
                )
                .map_err(e)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT_FAMILY, 15))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

/// Short pps axis labels: 1.2M, 450k, 17.
fn si(value: f64) -> String {
    match value.abs() {
        v if v >= 1e6 => format!("{:.1}M", value / 1e6),
        v if v >= 1e3 => format!("{:.0}k", value / 1e3),
        _ => format!("{value:.0}"),
    }
}

/// The report's section: one table per sweep, rows per rule count and kind.
pub fn markdown(report: &Report, plots_link: &str) -> String {
    let mut md = String::new();
    for sweep in sweeps(report).iter().filter(|s| !s.points.is_empty()) {
        let plot = format!("{}-pps-vs-rules.svg", sweep.run);
        let link = if plots_link.is_empty() {
            plot
        } else {
            format!("{plots_link}/{plot}")
        };
        md.push_str(&format!(
            "## pps vs number of rules (`{}.json`)\n\n\
             ![pps vs number of rules]({link})\n\n\
             | rules | traffic | kernel pps | brindle pps | brindle/kernel |\n\
             |---:|---|---:|---:|---:|\n",
            sweep.run
        ));
        let mut points = sweep.points.clone();
        points.sort_by(|a, b| a.rules.cmp(&b.rules).then(a.kind.cmp(&b.kind)));
        for p in &points {
            let ratio = if p.kernel > 0.0 {
                format!("{:.2}", p.brindle / p.kernel)
            } else {
                "-".to_string()
            };
            md.push_str(&format!(
                "| {} | {} | {:.0} | {:.0} | {ratio} |\n",
                p.rules, p.kind, p.kernel, p.brindle
            ));
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::summarise;
    use serde_json::Value;

    fn sample() -> Value {
        serde_json::json!({
            "rule_counts": [10, 1000],
            "frame_size": 64,
            "points": [
                {"rules": 10, "kinds": [
                    {"kind": "established", "kernel": {"pps_delivered": 400000.0}, "brindle": {"pps_delivered": 300000.0}},
                    {"kind": "new_flows", "kernel": {"pps_delivered": null}, "brindle": {"pps_delivered": 1.0}}
                ]},
                {"rules": 1000, "kinds": [
                    {"kind": "established", "kernel": {"pps_delivered": 40000.0}, "brindle": {"pps_delivered": 280000.0}}
                ]}
            ]
        })
    }

    fn report_of(doc: &Value) -> Report {
        let mut report = Report::default();
        let summary = summarise(Benchmark::RulesSweep, doc).unwrap();
        report.push("rules-sweep".into(), "rules-sweep.json", summary);
        report
    }

    #[test]
    fn a_sweep_reads_into_points_and_skips_counts_without_a_median() {
        let report = report_of(&sample());
        let sweep = &sweeps(&report)[0];
        assert_eq!(sweep.frame_size, Some(64.0));
        assert_eq!(
            sweep.points,
            vec![
                RulesPoint {
                    rules: 10,
                    kind: "established".into(),
                    kernel: 400000.0,
                    brindle: 300000.0
                },
                RulesPoint {
                    rules: 1000,
                    kind: "established".into(),
                    kernel: 40000.0,
                    brindle: 280000.0
                },
            ]
        );
        let md = markdown(&report, "plots");
        assert!(
            md.contains("| 1000 | established | 40000 | 280000 | 7.00 |"),
            "{md}"
        );
        assert!(md.contains("plots/rules-sweep-pps-vs-rules.svg"), "{md}");
    }

    #[test]
    fn a_wrong_field_is_an_error_naming_it() {
        let mut doc = sample();
        doc["points"][1]["kinds"][0]["brindle"]["pps_delivered"] = serde_json::json!("fast");
        let err = summarise(Benchmark::RulesSweep, &doc)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/points/1/kinds/0/brindle/pps_delivered"),
            "{err}"
        );
        doc["points"][0]["rules"] = serde_json::json!(0);
        let err = summarise(Benchmark::RulesSweep, &doc)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/points/0/rules"), "{err}");
    }

    #[test]
    fn the_policy_benchmarks_sweep_json_is_what_the_report_reads() {
        let doc = serde_json::to_value(crate::policy_bench::tests::sample_sweep()).unwrap();
        let sweep = sweeps(&report_of(&doc)).remove(0);
        assert_eq!(sweep.points.len(), 4);
        assert!(sweep
            .points
            .iter()
            .any(|p| p.rules == 10_000 && p.kind == "established" && p.brindle == 280_000.0));
    }

    #[test]
    fn plots_are_written_as_svg_and_png() {
        crate::report::register_font(None).unwrap();
        let dir = std::env::temp_dir().join(format!("xg-report-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let written = write_plots(&report_of(&sample()), &dir).unwrap();
        assert_eq!(written.len(), 2);
        let svg = std::fs::read_to_string(&written[0]).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("kernel established"),
            "{}",
            &svg[..200.min(svg.len())]
        );
        let png = std::fs::read(&written[1]).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
