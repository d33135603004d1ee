//! The slow-path thread end to end through a real punt path.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use common::*;
use fastpath::punt::{punt_path, PuntConfig, WorkerEnd};
use fastpath::wire::{ArpOperation, ArpPacket, ArpRepr};
use fastpath::{MacAddr, PortId, PuntReason};
use slowpath::{spawn_with_kernel, SlowpathConfig, SlowpathCounters};

struct Running {
    worker: WorkerEnd,
    tables: Arc<ArcSwap<fastpath::Tables>>,
    counters: Arc<SlowpathCounters>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(punt: PuntConfig) -> Running {
        let (worker, end) = punt_path(punt).unwrap();
        let tables = Arc::new(ArcSwap::from_pointee(tables()));
        let counters = Arc::new(SlowpathCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let handle = spawn_with_kernel(
            SlowpathConfig::default(),
            tables.clone(),
            end,
            counters.clone(),
            stop.clone(),
            FakeKernel::default(),
        )
        .unwrap();
        Running {
            worker,
            tables,
            counters,
            stop,
            handle: Some(handle),
        }
    }

    /// Collects injected frames until `n` have arrived or two seconds pass.
    fn injected(&self, n: usize) -> Vec<(PortId, Vec<u8>)> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut out = Vec::new();
        while out.len() < n && Instant::now() < deadline {
            self.worker
                .drain_inject(|port, frame| out.push((port, frame.to_vec())));
            std::thread::sleep(Duration::from_millis(1));
        }
        out
    }

    fn wait_for(&self, what: &str, cond: impl Fn(&Running) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !cond(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[test]
fn a_punted_arp_request_is_answered_through_the_inject_path() {
    let run = Running::start(PuntConfig::default());
    assert!(run.worker.punt(
        WORKLOAD_A,
        PuntReason::Arp,
        &arp_request(A_MAC, A_IP, LINK_LOCAL_GW)
    ));
    let sent = run.injected(1);
    assert_eq!(sent.len(), 1, "one proxy ARP reply");
    let (port, frame) = &sent[0];
    assert_eq!(*port, WORKLOAD_A);
    let arp = ArpRepr::parse(&ArpPacket::new_checked(&frame[14..]).unwrap()).unwrap();
    assert_eq!(
        (arp.operation, arp.sender_mac, arp.sender_ip),
        (
            ArpOperation::Reply,
            MacAddr::CALICO_HOST_SIDE,
            LINK_LOCAL_GW
        )
    );
    assert_eq!(arp.target_mac, A_MAC);
    assert_eq!(
        run.tables.load().next_hops[NH_A as usize].mac(),
        Some(A_MAC)
    );
}

#[test]
fn a_newly_published_snapshot_gets_the_known_macs() {
    let run = Running::start(PuntConfig::default());
    assert!(run.worker.punt(
        WORKLOAD_A,
        PuntReason::Arp,
        &arp_request(A_MAC, A_IP, LINK_LOCAL_GW)
    ));
    assert_eq!(run.injected(1).len(), 1);
    run.tables.store(Arc::new(tables()));
    run.wait_for("the MAC in the new snapshot", |r| {
        r.tables.load().next_hops[NH_A as usize].mac() == Some(A_MAC)
    });
}

#[test]
fn every_punted_buffer_goes_back_to_the_pool() {
    // Four buffers in all: had the slow path kept even one per round, punts would soon be
    // refused for good. Junk frames of every reason are handled without injecting anything.
    let run = Running::start(PuntConfig {
        buffers: 4,
        queue_depth: 4,
    });
    let junk = [0u8; 10];
    let reasons = [
        PuntReason::Arp,
        PuntReason::TtlExpired,
        PuntReason::NoRoute,
        PuntReason::Local,
        PuntReason::Unresolved(NH_LOCAL),
    ];
    let mut punted = 0u64;
    for round in 0..40 {
        for reason in reasons {
            let deadline = Instant::now() + Duration::from_secs(2);
            while !run.worker.punt(WORKLOAD_A, reason, &junk) {
                assert!(
                    Instant::now() < deadline,
                    "round {round}: the pool stayed empty"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            punted += 1;
        }
    }
    run.wait_for("all frames", |r| {
        r.counters.snapshot().frames_received == punted
    });
    assert_eq!(
        run.worker.drain_inject(|_, _| {}),
        0,
        "junk is never answered"
    );
}

#[test]
fn the_thread_stops_when_asked() {
    let mut run = Running::start(PuntConfig::default());
    run.stop.store(true, Ordering::Relaxed);
    let handle = run.handle.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !handle.is_finished() {
        assert!(Instant::now() < deadline, "slow path thread did not stop");
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.join().unwrap();
}

#[test]
fn the_thread_stops_when_the_worker_goes_away() {
    let mut run = Running::start(PuntConfig::default());
    let handle = run.handle.take().unwrap();
    // Dropping the worker's end disconnects the punt channel.
    let worker = std::mem::replace(&mut run.worker, punt_path(PuntConfig::default()).unwrap().0);
    drop(worker);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "slow path thread did not notice the worker leaving"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.join().unwrap();
}
