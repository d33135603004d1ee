//! The pipeline with a worker's counting, for tests and benchmarks: each frame is processed
//! and recorded as a worker records it when every send and punt succeeds.

use std::sync::LazyLock;

use crate::classifier::IpSets;
use crate::counters::{Fate, PipelineCounters};
use crate::ids::PortId;
use crate::policy::PolicyState;
use crate::tables::Tables;

use super::{process, Outcome, Policing, Verdict};

/// A frame and the port it arrived on.
pub struct Frame<'a> {
    pub data: &'a mut [u8],
    pub ingress: PortId,
}

/// [`process`]es one frame with `policing` and records it in `counters`.
#[inline(always)]
pub fn process_counted_policed(
    frame: &mut [u8],
    ingress: PortId,
    tables: &Tables,
    counters: &mut PipelineCounters,
    policing: &mut Policing<'_>,
) -> Outcome {
    let bytes = frame.len();
    let outcome = process(frame, ingress, tables, policing);
    counters.record(bytes, outcome.marks(), fate_when_delivered(outcome.verdict));
    outcome
}

/// [`process_counted_policed`] without IP sets or flow tracking: policed ports are checked
/// packet by packet (replies too), with every IP set empty. Rate limits are charged at time
/// 0 (see [`process_counted_at`]).
#[inline(always)]
pub fn process_counted(
    frame: &mut [u8],
    ingress: PortId,
    tables: &Tables,
    counters: &mut PipelineCounters,
) -> Outcome {
    process_counted_at(frame, ingress, tables, counters, 0)
}

/// [`process_counted`] at `now_ns` on the rate limits' clock (`PolicyState::now_ns`, which a
/// worker sets from [`crate::qos::now_ns`] once per batch): a simulated time for tests and
/// benchmarks.
#[inline(always)]
pub fn process_counted_at(
    frame: &mut [u8],
    ingress: PortId,
    tables: &Tables,
    counters: &mut PipelineCounters,
    now_ns: u64,
) -> Outcome {
    static NO_SETS: LazyLock<IpSets> = LazyLock::new(IpSets::default);
    let mut state = PolicyState::stateless();
    state.now_ns = now_ns;
    let mut policing = Policing {
        sets: &NO_SETS,
        state: &mut state,
    };
    process_counted_policed(frame, ingress, tables, counters, &mut policing)
}

/// Runs a batch through [`process_counted`]; `verdicts[i]` is the verdict for `frames[i]`
/// (extra entries of either slice are left alone).
pub fn process_batch(
    frames: &mut [Frame<'_>],
    tables: &Tables,
    counters: &mut PipelineCounters,
    verdicts: &mut [Verdict],
) {
    for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
        *verdict = process_counted(frame.data, frame.ingress, tables, counters).verdict;
    }
}

/// The fate of a frame whose send or punt succeeded.
fn fate_when_delivered(verdict: Verdict) -> Fate {
    match verdict {
        // Nothing here builds the tunnel's outer header (the worker does, as it sends), so no
        // frame is counted as encapsulated.
        Verdict::Forward(_) | Verdict::Encapsulate { .. } => Fate::Sent { tunnelled: false },
        Verdict::Punt(reason) => reason.fate(true),
        Verdict::Drop(reason) => Fate::Dropped(reason),
    }
}
