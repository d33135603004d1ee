//! A read-only view of the running dataplane for stats and metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use fastpath::handoff::{HandoffCounters, HandoffStats};
use fastpath::{PipelineCounters, PortId, WorkerCounters};
use serde::Serialize;
use slowpath::{SlowpathCounters, SlowpathCountersSnapshot};

use super::ApplyFailure;

/// A port as it appears in stats and metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortStatus {
    pub id: PortId,
    pub name: String,
    pub kind: String,
    pub ifindex: u32,
    pub xdp_mode: String,
    /// RX queues with a socket (the uplink may serve several).
    pub queues: u32,
}

/// A read-only view of the running dataplane for stats and metrics, cheap to clone and safe
/// to read from any thread.
#[derive(Clone)]
pub struct DataplaneObserver {
    pub(super) inner: Arc<Observed>,
}

pub(super) struct Observed {
    pub(super) workers: Vec<(String, Arc<WorkerCounters>)>,
    /// Each worker's handoff counters (empty with one worker, which hands nothing off).
    pub(super) handoff: Vec<Arc<HandoffCounters>>,
    pub(super) slowpath: Arc<SlowpathCounters>,
    pub(super) ports: ArcSwap<Vec<PortStatus>>,
    pub(super) failures: ArcSwap<Vec<ApplyFailure>>,
    pub(super) applies: AtomicU64,
}

impl DataplaneObserver {
    /// An observer of counters alone, with no ports (for rendering tests and tools).
    pub fn for_counters(
        workers: Vec<(String, Arc<WorkerCounters>)>,
        slowpath: Arc<SlowpathCounters>,
    ) -> DataplaneObserver {
        DataplaneObserver {
            inner: Arc::new(Observed {
                workers,
                handoff: Vec::new(),
                slowpath,
                ports: ArcSwap::from_pointee(Vec::new()),
                failures: ArcSwap::from_pointee(Vec::new()),
                applies: AtomicU64::new(0),
            }),
        }
    }

    /// Fastpath counters summed over workers.
    pub fn fastpath(&self) -> PipelineCounters {
        let mut total = PipelineCounters::default();
        for (_, w) in &self.inner.workers {
            total.add(&w.snapshot());
        }
        total
    }

    /// Each worker's name and counters.
    pub fn workers(&self) -> Vec<(String, PipelineCounters)> {
        self.inner
            .workers
            .iter()
            .map(|(n, w)| (n.clone(), w.snapshot()))
            .collect()
    }

    /// Each worker's handoff counters, by worker; all zero for a lone worker.
    pub fn handoff(&self) -> Vec<HandoffStats> {
        (0..self.inner.workers.len())
            .map(|i| {
                self.inner
                    .handoff
                    .get(i)
                    .map(|h| h.snapshot())
                    .unwrap_or_default()
            })
            .collect()
    }

    pub fn slowpath(&self) -> SlowpathCountersSnapshot {
        self.inner.slowpath.snapshot()
    }

    pub fn ports(&self) -> Arc<Vec<PortStatus>> {
        self.inner.ports.load_full()
    }

    /// What the last apply could not program.
    pub fn failures(&self) -> Arc<Vec<ApplyFailure>> {
        self.inner.failures.load_full()
    }

    /// Applies completed so far.
    pub fn applies(&self) -> u64 {
        self.inner.applies.load(Ordering::Relaxed)
    }
}
