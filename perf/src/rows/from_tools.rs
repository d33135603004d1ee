//! Rows of the benchmarks of the other crates' machinery: IPAM allocations against etcd
//! (N clients against one) and BGP route learning (our speaker against BIRD 2).

use super::doc::{Doc, RowError};
use super::{Row, Summary};

/// `brindle-perf ipam`: median allocations/s of N parallel clients against one client.
pub(super) fn ipam_alloc(doc: &Doc, summary: &mut Summary) -> Result<(), RowError> {
    let clients = doc.number("/clients_parallel")?;
    let row = Row::compared(
        "etcd",
        "allocs_per_sec",
        Some(doc.number("/median_n_clients")?),
        "1 client",
        Some(doc.number("/median_1_client")?),
        doc.rounds(),
    );
    summary
        .rows
        .push(row.on_side(format!("{clients:.0} clients")));
    Ok(())
}

/// What `brindle-perf bgp-learn` reports of each learner: (field, metric of the row).
pub const BGP_LEARN_FIGURES: [(&str, &str); 4] = [
    ("time", "learn_secs"),
    ("after_established", "after_established_secs"),
    ("transfer", "transfer_secs"),
    ("memory", "vm_hwm_kib"),
];

/// `brindle-perf bgp-learn`: our speaker's medians against BIRD's, with the median of the
/// per-round ratios (each round is one pair of learners from the same loaded GoBGP).
pub(super) fn bgp_learn(doc: &Doc, summary: &mut Summary) -> Result<(), RowError> {
    let lab = format!("{:.0} prefixes from GoBGP", doc.number("/prefixes")?);
    for (figure, metric) in BGP_LEARN_FIGURES {
        let row = Row {
            ratio: doc.optional_number(&format!("/median_{figure}_ratio"))?,
            ..Row::compared(
                lab.clone(),
                metric,
                doc.optional_number(&format!("/ours/{metric}"))?,
                "BIRD 2",
                doc.optional_number(&format!("/bird/{metric}"))?,
                doc.rounds(),
            )
        };
        summary.rows.push(row);
    }
    Ok(())
}
