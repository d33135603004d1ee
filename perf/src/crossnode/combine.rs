//! Combining rounds into one figure per side, and brindle/kernel ratios.

use super::*;

/// One side over its rounds: medians of each metric, every round kept, the last proof.
pub fn combine_rounds(rounds: Vec<CrossSide>) -> Option<CrossSide> {
    let measured: Vec<SideResult> = rounds.iter().map(|r| r.measured.clone()).collect();
    let last = rounds.into_iter().last()?;
    Some(CrossSide {
        measured: median_side(&measured)?,
        rounds: measured,
        ..last
    })
}

/// Per metric, the median over `rounds`; counts are summed.
pub fn median_side(rounds: &[SideResult]) -> Option<SideResult> {
    let first = rounds.first()?;
    let of = |metric: fn(&SideResult) -> Option<f64>| median(rounds.iter().filter_map(metric));
    Some(SideResult {
        forwarding: first.forwarding,
        lab: first.lab.clone(),
        pps_offered: of(|r| Some(r.pps_offered)).unwrap_or(f64::NAN),
        pps_delivered: of(|r| Some(r.pps_delivered)).unwrap_or(f64::NAN),
        rtt_p50_us: of(|r| r.rtt_p50_us),
        rtt_p99_us: of(|r| r.rtt_p99_us),
        busy_cores: of(|r| Some(r.busy_cores)).unwrap_or(f64::NAN),
        pps_per_busy_core: of(|r| r.pps_per_busy_core),
        sent: rounds.iter().map(|r| r.sent).sum(),
        received: rounds.iter().map(|r| r.received).sum(),
        generator_secs: rounds.iter().map(|r| r.generator_secs).sum(),
        pings_sent: rounds.iter().map(|r| r.pings_sent).sum(),
        ping_replies: rounds.iter().map(|r| r.ping_replies).sum(),
    })
}

pub use crate::rounds::median;

/// brindle over kernel for each encapsulation where both sides produced a result.
pub fn cross_ratios(report: &CrossnodeReport) -> CrossRatios {
    let pair = |encap| {
        let kernel = report.side(Side::new(Forwarder::Kernel, encap))?;
        let brindle = report.side(Side::new(Forwarder::Brindle, encap))?;
        Some(e2e::ratios(&kernel.measured, &brindle.measured))
    };
    let by_round = |encap| -> Vec<Option<f64>> {
        let rounds = |forwarder| {
            report
                .side(Side::new(forwarder, encap))
                .map_or(&[][..], |s| s.rounds.as_slice())
        };
        let (kernel, brindle) = (rounds(Forwarder::Kernel), rounds(Forwarder::Brindle));
        kernel
            .iter()
            .zip(brindle)
            .map(|(k, b)| e2e::ratios(k, b).pps_delivered)
            .collect()
    };
    CrossRatios {
        plain: pair(Encap::Plain),
        ipip: pair(Encap::Ipip),
        plain_pps_delivered_by_round: by_round(Encap::Plain),
        ipip_pps_delivered_by_round: by_round(Encap::Ipip),
    }
}
