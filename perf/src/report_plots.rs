//! The report's plots: grouped kernel/brindle bars, ratio bars and latency CDFs, drawn with
//! plotters into SVG and PNG from the report's rows; and the font their text is laid out in.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::{Report, ReportError};
use crate::rows::{Benchmark, Cdf, Row};

/// Pixel size of every plot.
pub(crate) const PLOT_SIZE: (u32, u32) = (900, 540);
/// The family plotters asks for; the loaded font is registered under it.
pub(crate) const FONT_FAMILY: &str = "sans-serif";
/// Where Debian (and other distributions) install DejaVu Sans, tried in order.
pub const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];
pub const MAX_FONT_BYTES: u64 = 32 << 20;

pub(crate) const KERNEL_COLOR: RGBColor = RGBColor(0x8c, 0x8c, 0x8c);
pub(crate) const BRINDLE_COLOR: RGBColor = RGBColor(0xd9, 0x5f, 0x02);

/// Registers the plot font once per process: `explicit`, else the first of
/// [`FONT_CANDIDATES`] that exists.
pub fn register_font(explicit: Option<&Path>) -> Result<(), ReportError> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(path) => vec![path.to_path_buf()],
        None => FONT_CANDIDATES.iter().map(PathBuf::from).collect(),
    };
    register_font_from(&candidates)
}

pub(crate) fn register_font_from(candidates: &[PathBuf]) -> Result<(), ReportError> {
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

impl BarPair {
    /// The pair of a row that has both sides (the dataplane comparisons always do).
    pub(crate) fn of(label: String, row: &Row) -> BarPair {
        BarPair {
            label,
            kernel: row.baseline.unwrap_or(f64::NAN),
            brindle: row.brindle.unwrap_or(f64::NAN),
        }
    }
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
pub(crate) fn write_plots(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    for run in &report.sources {
        let comparisons = || {
            report
                .comparisons()
                .filter(|(r, _)| r == run)
                .map(|(_, c)| c)
        };
        let of_run = |latency: bool| -> Vec<BarPair> {
            comparisons()
                .filter(|c| c.size.is_none() && c.metric.starts_with("rtt_") == latency)
                .map(|c| {
                    let mut label = c.lab.clone();
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
                    BarPair::of(label, c)
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
        let by_size: Vec<BarPair> = comparisons()
            .filter_map(|c| Some(BarPair::of(format!("{} bytes", c.size.as_ref()?.value), c)))
            .collect();
        if !by_size.is_empty() {
            let chart = Chart::Bars {
                title: format!("{run}: delivered pps by UDP frame size"),
                y_desc: "pps delivered".to_string(),
                pairs: by_size,
            };
            written.extend(draw_both(&chart, &dir.join(format!("{run}-pps-by-size")))?);
        }
        let cdfs: Vec<&Cdf> = report
            .cdfs_of(run)
            .filter(|c| !c.points.is_empty())
            .collect();
        if let Some(first) = cdfs.first() {
            let (what, unit) = match first.unit.as_str() {
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
    let scale: Vec<(String, f64)> = report
        .rows_of(&[Benchmark::Scale])
        .map(|(_, r)| (format!("{}: {}", r.lab, r.side), r.ratio.unwrap_or(0.0)))
        .collect();
    if !scale.is_empty() {
        let chart = Chart::Ratios {
            title: "scaling: pps scaled / pps base (same run)".to_string(),
            bars: scale,
        };
        written.extend(draw_both(&chart, &dir.join("scale-ratios"))?);
    }
    written.extend(crate::report_scenarios::write_plots(report, dir)?);
    written.extend(crate::report_rules::write_plots(report, dir)?);
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
    let size = plot_size(chart);
    draw(chart, SVGBackend::new(&svg, size).into_drawing_area()).map_err(plot_err(&svg))?;
    draw(chart, BitMapBackend::new(&png, size).into_drawing_area()).map_err(plot_err(&png))?;
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

/// About how wide a character of a 15-pixel label is.
const LABEL_CHAR_PX: u32 = 8;

/// The canvas for `chart`: [`PLOT_SIZE`], wider for bars whose labels would not fit side by
/// side under it (the scenario suite's many pairs).
fn plot_size(chart: &Chart) -> (u32, u32) {
    let (width, height) = PLOT_SIZE;
    let Chart::Bars { pairs, .. } = chart else {
        return PLOT_SIZE;
    };
    let longest = pairs
        .iter()
        .map(|p| p.label.chars().count())
        .max()
        .unwrap_or(0);
    let slot = (longest as u32 + 2) * LABEL_CHAR_PX;
    let pairs = u32::try_from(pairs.len()).unwrap_or(u32::MAX);
    let needed = slot.saturating_mul(pairs).saturating_add(100);
    (width.max(needed.min(MAX_PLOT_WIDTH)), height)
}

/// Bounds a canvas however many pairs a chart has.
const MAX_PLOT_WIDTH: u32 = 4000;

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
