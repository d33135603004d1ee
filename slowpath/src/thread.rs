//! The slow-path thread: feeds punted frames and timer ticks to the [`Slowpath`] state
//! machine and notices when control publishes new tables.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use fastpath::punt::SlowpathEnd;
use fastpath::Tables;

use crate::config::SlowpathConfig;
use crate::counters::SlowpathCounters;
use crate::kernel_neighbors::{KernelNeighbors, ProcNetArp};
use crate::slowpath::Slowpath;

/// Longest the thread sleeps without looking at `stop` and the tables.
const MAX_WAIT: Duration = Duration::from_millis(50);

/// Starts the slow path with the kernel's real neighbour table for uplink resolution.
pub fn spawn(
    config: SlowpathConfig,
    tables: Arc<ArcSwap<Tables>>,
    end: SlowpathEnd,
    counters: Arc<SlowpathCounters>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    spawn_with_kernel(config, tables, end, counters, stop, ProcNetArp::new())
}

/// As [`spawn`], with another source of kernel neighbours (tests).
pub fn spawn_with_kernel<K: KernelNeighbors + Send + 'static>(
    config: SlowpathConfig,
    tables: Arc<ArcSwap<Tables>>,
    end: SlowpathEnd,
    counters: Arc<SlowpathCounters>,
    stop: Arc<AtomicBool>,
    kernel: K,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("brindle-slowpath".into())
        .spawn(move || run(Slowpath::new(config, counters, kernel), &tables, end, &stop))
}

fn run<K: KernelNeighbors>(
    mut slowpath: Slowpath<K>,
    tables: &ArcSwap<Tables>,
    mut end: SlowpathEnd,
    stop: &AtomicBool,
) {
    // Holding the last snapshot seen (not just its address) means a new snapshot can never be
    // mistaken for it by reusing its memory.
    let mut seen: Option<Arc<Tables>> = None;
    tracing::info!("slow path started");
    while !stop.load(Ordering::Relaxed) {
        let current = tables.load_full();
        if !seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &current)) {
            slowpath.tables_changed(&current);
            seen = Some(current.clone());
        }
        let now = Instant::now();
        let wait = slowpath
            .next_deadline()
            .map_or(MAX_WAIT, |d| d.saturating_duration_since(now).min(MAX_WAIT));
        match end.recv_timeout(wait) {
            Ok(Some(frame)) => {
                match frame.reason {
                    Some(reason) => slowpath.handle(
                        &current,
                        frame.port,
                        reason,
                        frame.data(),
                        Instant::now(),
                        &mut end,
                    ),
                    None => tracing::warn!(port = frame.port, "punted frame without a reason"),
                }
                end.recycle(frame);
            }
            Ok(None) => {}
            Err(fastpath::punt::WorkerGone) => {
                tracing::info!("fastpath worker gone; slow path stopping");
                break;
            }
        }
        slowpath.tick(&current, Instant::now(), &mut end);
    }
    tracing::info!("slow path stopped");
}
