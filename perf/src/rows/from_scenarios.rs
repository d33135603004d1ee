//! Rows of the scenario suite: the headline metrics of every scenario, brindle against the
//! kernel in the same lab. A side that failed has no figure and shows as `-`.

use serde_json::Value;

use super::doc::{Doc, RowError};
use super::{Row, Summary};
use crate::scenarios::{headline_metrics, TestKind};

pub(super) fn scenarios(doc: &Doc, summary: &mut Summary) -> Result<(), RowError> {
    let scenarios = doc
        .value()
        .get("scenarios")
        .and_then(Value::as_array)
        .ok_or_else(|| RowError::new("/scenarios", "missing or not a list"))?;
    // `labs`: [{lab, wiring, ...}], one per lab of the run; absent in older files.
    let wiring_of = |lab: &str| {
        doc.value()
            .get("labs")?
            .as_array()?
            .iter()
            .find(|l| l.get("lab").and_then(Value::as_str) == Some(lab))?
            .get("wiring")?
            .as_str()
            .map(str::to_string)
    };
    for (i, s) in scenarios.iter().enumerate() {
        let text = |name: &str| {
            s.get(name).and_then(Value::as_str).ok_or_else(|| {
                RowError::new(&format!("/scenarios/{i}/{name}"), "missing or not a string")
            })
        };
        let (lab, route, test) = (text("lab")?, text("path")?, text("test")?);
        let kind = TestKind::parse(test)
            .map_err(|_| RowError::new(&format!("/scenarios/{i}/test"), "not a known test"))?;
        for &metric in headline_metrics(kind) {
            let value = |side: &str| {
                s.get(side)
                    .and_then(|m| m.get(metric))
                    .and_then(Value::as_f64)
            };
            let (kernel, brindle) = (value("kernel"), value("brindle"));
            if kernel.is_none() && brindle.is_none() {
                continue;
            }
            let row = Row::compared(
                format!("{lab} {route} {test}"),
                metric,
                brindle,
                "kernel",
                kernel,
                1,
            );
            summary
                .rows
                .push(row.on_side(wiring_of(lab).unwrap_or_default()));
        }
    }
    Ok(())
}
