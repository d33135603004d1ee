//! Rows of the control-plane benchmarks, which have no kernel baseline: CNI operation
//! latency (with a CDF per operation) and the datastore resync.

use super::doc::{Doc, RowError};
use super::{Cdf, Row, Summary, MAX_CDF_SAMPLES};

/// The CNI operations, in the report's order.
const OPERATIONS: [&str; 3] = ["add", "add_to_forwarding", "del"];
/// What each operation reports, in the report's column order.
pub const CNI_METRICS: [&str; 4] = ["count", "p50_ms", "p99_ms", "max_ms"];
/// The resync figures, in the report's column order; all but the first may be null.
pub const RESYNC_METRICS: [&str; 5] = [
    "endpoints",
    "synced_secs",
    "programmed_secs",
    "endpoints_per_sec",
    "reconnect_resync_secs",
];

pub(super) fn cni_latency(doc: &Doc, summary: &mut Summary) -> Result<(), RowError> {
    for operation in OPERATIONS {
        if !doc.is_present(&format!("/{operation}")) {
            continue;
        }
        for metric in CNI_METRICS {
            // Percentiles of no sample are null (NaN in the benchmark).
            if let Some(value) = doc.optional_number(&format!("/{operation}/{metric}"))? {
                summary.rows.push(Row::alone(operation, metric, value, 1));
            }
        }
        let field = format!("/samples/{operation}_ms");
        let Ok(samples) = doc.array(&field) else {
            continue;
        };
        let mut samples_ms = Vec::with_capacity(samples.len().min(MAX_CDF_SAMPLES));
        for (i, sample) in samples.iter().take(MAX_CDF_SAMPLES).enumerate() {
            let value = sample.as_f64().filter(|v| v.is_finite()).ok_or_else(|| {
                RowError::new(
                    &format!("{field}/{i}"),
                    format!("expected a number, found {sample}"),
                )
            })?;
            samples_ms.push(value);
        }
        samples_ms.sort_by(f64::total_cmp);
        let n = samples_ms.len() as f64;
        summary.cdfs.push(Cdf {
            series: format!("{operation}_ms"),
            unit: "ms".to_string(),
            points: (samples_ms.iter().enumerate())
                .map(|(j, &v)| (v, (j + 1) as f64 / n))
                .collect(),
        });
    }
    Ok(())
}

/// The endpoint count always; the times are null when the node did not sync (its error is
/// in the file), and their rows left out.
pub(super) fn resync(doc: &Doc, summary: &mut Summary) -> Result<(), RowError> {
    let (required, optional) = RESYNC_METRICS.split_at(1);
    for metric in required {
        let value = doc.number(&format!("/{metric}"))?;
        summary.rows.push(Row::alone("", metric, value, 1));
    }
    for metric in optional {
        if let Some(value) = doc.optional_number(&format!("/{metric}"))? {
            summary.rows.push(Row::alone("", metric, value, 1));
        }
    }
    Ok(())
}
