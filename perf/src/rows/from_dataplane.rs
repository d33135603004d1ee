//! Rows of the dataplane benchmarks that measure the kernel then brindle in one run:
//! `e2e`, `crossnode`, `policy` and its rules sweep. The baseline is always the kernel.

use serde_json::Value;

use super::doc::{Doc, RowError};
use super::{Cdf, Row, Summary, MAX_CDF_SAMPLES};

const KERNEL: &str = "kernel";
/// What both sides of e2e and crossnode report, in the order of the report's table.
const SIDE_METRICS: [&str; 3] = ["pps_delivered", "rtt_p50_us", "rtt_p99_us"];

/// pps and ping percentiles of a kernel side and a brindle side of the same run.
fn sides(
    doc: &Doc,
    summary: &mut Summary,
    lab: &str,
    kernel: &str,
    brindle: &str,
) -> Result<(), RowError> {
    for side in [kernel, brindle] {
        if !doc.is_present(side) {
            // e2e without --brindle-node, or a crossnode side that failed: nothing to compare.
            let case = if lab.is_empty() {
                summary.benchmark.name()
            } else {
                lab
            };
            summary.left_out.push(format!(
                "{} is absent or null, no comparison for {case}",
                &side[1..]
            ));
            return Ok(());
        }
    }
    let rounds = doc.rounds();
    for metric in SIDE_METRICS {
        let k = doc.optional_number(&format!("{kernel}/{metric}"))?;
        let b = doc.optional_number(&format!("{brindle}/{metric}"))?;
        // A latency is null when no ping came back; the pps rows still stand.
        if k.is_some() && b.is_some() {
            summary
                .rows
                .push(Row::compared(lab, metric, b, KERNEL, k, rounds));
        }
    }
    Ok(())
}

/// e2e: both sides, `--sizes` pps per frame size, and the ping RTT CDF of each side.
pub(super) fn e2e(doc: &Doc, summary: &mut Summary) -> Result<(), RowError> {
    sides(doc, summary, "", "/kernel", "/brindle")?;
    let sizes = doc.value().pointer("/by_size").and_then(Value::as_array);
    for i in 0..sizes.map_or(0, Vec::len) {
        let kernel = doc.optional_number(&format!("/by_size/{i}/kernel/pps_delivered"))?;
        let brindle = doc.optional_number(&format!("/by_size/{i}/brindle/pps_delivered"))?;
        let size = doc.number(&format!("/by_size/{i}/frame_size"))?;
        if kernel.is_some() && brindle.is_some() {
            let lab = format!("{size:.0}-byte frames");
            let row = Row::compared(lab, "pps_delivered", brindle, KERNEL, kernel, 1);
            summary.rows.push(row.at_size("frame_bytes", size as u64));
        }
    }
    for side in ["kernel", "brindle"] {
        let field = format!("/rtt_cdf_{side}");
        let Some(points) = doc.value().pointer(&field).and_then(Value::as_array) else {
            continue;
        };
        let mut cdf = Vec::with_capacity(points.len().min(MAX_CDF_SAMPLES));
        for i in 0..points.len().min(MAX_CDF_SAMPLES) {
            cdf.push((
                doc.number(&format!("{field}/{i}/rtt_us"))?,
                doc.number(&format!("{field}/{i}/fraction"))?,
            ));
        }
        if !cdf.is_empty() {
            summary.cdfs.push(Cdf {
                series: side.to_string(),
                unit: "us".to_string(),
                points: cdf,
            });
        }
    }
    Ok(())
}

/// crossnode: kernel and brindle per encapsulation.
pub(super) fn crossnode(doc: &Doc, summary: &mut Summary) -> Result<(), RowError> {
    for encap in ["plain", "ipip"] {
        let (k, b) = (format!("/kernel_{encap}"), format!("/brindle_{encap}"));
        sides(doc, summary, encap, &k, &b)?;
    }
    Ok(())
}

/// policy: delivered pps per traffic kind.
pub(super) fn policy(doc: &Doc, summary: &mut Summary) -> Result<(), RowError> {
    let rounds = doc.rounds();
    for i in 0..doc.array("/kinds")?.len() {
        let kind = doc.text(&format!("/kinds/{i}/kind"))?;
        let kernel = doc.optional_number(&format!("/kinds/{i}/kernel/pps_delivered"))?;
        let brindle = doc.optional_number(&format!("/kinds/{i}/brindle/pps_delivered"))?;
        if kernel.is_none() || brindle.is_none() {
            // No round of that side completed: no median to compare.
            summary
                .left_out
                .push(format!("{kind}: a side has no median, no comparison"));
            continue;
        }
        let row = Row::compared(kind, "pps_delivered", brindle, KERNEL, kernel, rounds);
        summary.rows.push(row);
    }
    Ok(())
}

/// The policy rules sweep: delivered pps per rule count and traffic kind. A count whose
/// side has no median (no round completed) is left out rather than shown as zero.
pub(super) fn rules_sweep(doc: &Doc, summary: &mut Summary) -> Result<(), RowError> {
    let rounds = doc.rounds();
    for (i, point) in doc.array("/points")?.iter().enumerate() {
        let rules = point
            .get("rules")
            .and_then(Value::as_u64)
            .filter(|r| *r >= 1)
            .ok_or_else(|| {
                RowError::new(&format!("/points/{i}/rules"), "expected a positive integer")
            })?;
        for (j, kind) in doc.array(&format!("/points/{i}/kinds"))?.iter().enumerate() {
            let name = doc.text(&format!("/points/{i}/kinds/{j}/kind"))?;
            let pps = |side: &str| -> Result<Option<f64>, RowError> {
                match kind.pointer(&format!("/{side}/pps_delivered")) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v
                        .as_f64()
                        .filter(|v| v.is_finite() && *v >= 0.0)
                        .map(Some)
                        .ok_or_else(|| {
                            RowError::new(
                                &format!("/points/{i}/kinds/{j}/{side}/pps_delivered"),
                                "expected a number",
                            )
                        }),
                }
            };
            let (kernel, brindle) = (pps("kernel")?, pps("brindle")?);
            if kernel.is_some() && brindle.is_some() {
                let row = Row::compared(name, "pps_delivered", brindle, KERNEL, kernel, rounds);
                summary.rows.push(row.at_size("rules", rules));
            }
        }
    }
    Ok(())
}
