//! The "pps vs number of rules" part of the report: read from `rules-sweep*.json`
//! (`brindle-perf policy --rules a,b,c`), drawn as lines per side and traffic kind over a
//! logarithmic rule count axis, and tabled with the brindle/kernel ratio of the same run.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

use crate::report::ReportError;

const PLOT_SIZE: (u32, u32) = (900, 540);
const FONT_FAMILY: &str = "sans-serif";
/// The report's colours for the two sides; the kinds are told apart by the line style.
const KERNEL_COLOR: RGBColor = RGBColor(0x8c, 0x8c, 0x8c);
const BRINDLE_COLOR: RGBColor = RGBColor(0xd9, 0x5f, 0x02);

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

fn field_err(path: &Path, field: String, problem: &str) -> ReportError {
    ReportError::Field {
        path: path.to_path_buf(),
        field,
        problem: problem.to_string(),
    }
}

/// Reads a sweep document. A count whose side has no median (no round completed) is left
/// out of the lines rather than drawn as zero.
pub fn read(path: &Path, doc: &Value, run: &str) -> Result<RulesSweep, ReportError> {
    let points = doc
        .pointer("/points")
        .and_then(Value::as_array)
        .ok_or_else(|| field_err(path, "/points".into(), "expected an array"))?;
    let mut out = RulesSweep {
        run: run.to_string(),
        frame_size: doc.pointer("/frame_size").and_then(Value::as_f64),
        points: Vec::new(),
    };
    for (i, point) in points.iter().enumerate() {
        let rules = point
            .get("rules")
            .and_then(Value::as_u64)
            .filter(|r| *r >= 1)
            .ok_or_else(|| {
                field_err(
                    path,
                    format!("/points/{i}/rules"),
                    "expected a positive integer",
                )
            })?;
        let kinds = point
            .get("kinds")
            .and_then(Value::as_array)
            .ok_or_else(|| field_err(path, format!("/points/{i}/kinds"), "expected an array"))?;
        for (j, kind) in kinds.iter().enumerate() {
            let name = kind.get("kind").and_then(Value::as_str).ok_or_else(|| {
                field_err(
                    path,
                    format!("/points/{i}/kinds/{j}/kind"),
                    "expected a string",
                )
            })?;
            let pps = |side: &str| -> Result<Option<f64>, ReportError> {
                match kind.pointer(&format!("/{side}/pps_delivered")) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v
                        .as_f64()
                        .filter(|v| v.is_finite() && *v >= 0.0)
                        .map(Some)
                        .ok_or_else(|| {
                            field_err(
                                path,
                                format!("/points/{i}/kinds/{j}/{side}/pps_delivered"),
                                "expected a number",
                            )
                        }),
                }
            };
            if let (Some(kernel), Some(brindle)) = (pps("kernel")?, pps("brindle")?) {
                out.points.push(RulesPoint {
                    rules: rules as usize,
                    kind: name.to_string(),
                    kernel,
                    brindle,
                });
            }
        }
    }
    Ok(out)
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
pub fn write_plots(sweeps: &[RulesSweep], dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    for sweep in sweeps.iter().filter(|s| !s.points.is_empty()) {
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
pub fn markdown(sweeps: &[RulesSweep], plots_link: &str) -> String {
    let mut md = String::new();
    for sweep in sweeps.iter().filter(|s| !s.points.is_empty()) {
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

    #[test]
    fn a_sweep_reads_into_points_and_skips_counts_without_a_median() {
        let sweep = read(Path::new("rules-sweep.json"), &sample(), "rules-sweep").unwrap();
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
        let md = markdown(&[sweep], "plots");
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
        let err = read(Path::new("rules-sweep.json"), &doc, "rules-sweep")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/points/1/kinds/0/brindle/pps_delivered"),
            "{err}"
        );
        doc["points"][0]["rules"] = serde_json::json!(0);
        let err = read(Path::new("rules-sweep.json"), &doc, "rules-sweep")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/points/0/rules"), "{err}");
    }

    #[test]
    fn the_policy_benchmarks_sweep_json_is_what_the_report_reads() {
        let doc = serde_json::to_value(crate::policy_bench::tests::sample_sweep()).unwrap();
        let sweep = read(Path::new("rules-sweep.json"), &doc, "rules-sweep").unwrap();
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
        let sweep = read(Path::new("rules-sweep.json"), &sample(), "rules-sweep").unwrap();
        let written = write_plots(&[sweep], &dir).unwrap();
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
