//! Rows of `brindle-perf scale`: brindle in a scaled configuration against brindle in its
//! base configuration, from the same run (there is no kernel baseline).

use serde_json::Value;

use super::doc::{Doc, RowError};
use super::{Row, Summary};

/// Per mode, few vs many idle workloads (`/modes`), or per queue count against the first one
/// (`/results`).
pub(super) fn scale(doc: &Doc, summary: &mut Summary) -> Result<(), RowError> {
    let rounds = doc.rounds();
    // The ratio the benchmark computed from its means, not recomputed here; a mean of no
    // run is null, and its row shows `-`.
    let row = |lab: String, base: &str, base_pps, side: String, pps, ratio| Row {
        side,
        ratio,
        ..Row::compared(lab, "pps_delivered", pps, base, base_pps, rounds)
    };
    if let Some(modes) = doc.value().pointer("/modes").and_then(Value::as_array) {
        let idle = doc.number("/idle_workloads")?;
        for i in 0..modes.len() {
            let mode = doc.text(&format!("/modes/{i}/mode"))?;
            summary.rows.push(row(
                format!("idle workloads ({mode})"),
                "2 workloads",
                doc.optional_number(&format!("/modes/{i}/few_pps_delivered"))?,
                format!("2 + {idle:.0} idle"),
                doc.optional_number(&format!("/modes/{i}/many_pps_delivered"))?,
                doc.optional_number(&format!("/modes/{i}/ratio_many_to_few"))?,
            ));
        }
    } else if let Some(results) = doc.value().pointer("/results").and_then(Value::as_array) {
        let mode = doc
            .value()
            .pointer("/mode")
            .and_then(Value::as_str)
            .unwrap_or("?");
        if results.is_empty() {
            return Ok(());
        }
        let queues = |i: usize| doc.number(&format!("/results/{i}/queues"));
        let base = format!("{:.0} queue(s)", queues(0)?);
        let base_pps = doc.optional_number("/results/0/pps_delivered")?;
        for i in 1..results.len() {
            let scaled = queues(i)?;
            let r = row(
                format!("uplink queues ({mode})"),
                &base,
                base_pps,
                format!("{scaled:.0} queues"),
                doc.optional_number(&format!("/results/{i}/pps_delivered"))?,
                doc.optional_number(&format!("/results/{i}/ratio_to_first"))?,
            );
            summary.rows.push(r.at_size("queues", scaled as u64));
        }
    } else {
        return Err(RowError::new(
            "/modes",
            "neither /modes (idle workloads) nor /results (queues)",
        ));
    }
    Ok(())
}
