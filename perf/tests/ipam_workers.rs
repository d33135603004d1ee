//! IPAM under concurrency, against both real backends (the embedded store and an etcd the
//! test starts on 127.0.0.1): `brindle-perf ipam-worker` in several OS processes against the
//! same store never hands out an address twice. Moved here from control/ipam's suite with the
//! worker, which is now a `brindle-perf` subcommand.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../../control/ipam/tests/common/mod.rs"]
mod common;

use common::{embedded, etcd, json_at, pool, Fixture};
use datastore::keys;
use ipam::Ipam;

fn parallel_processes_never_share_an_address(f: &Fixture) {
    const WORKERS: usize = 6;
    const EACH: usize = 100;
    const NODES: usize = 3;
    // 6 processes x 100 allocations from 3 nodes in a /22 of /26 blocks (16 blocks): the nodes
    // race for blocks and for addresses in shared blocks, and every 10th allocation is released
    // again at once.
    let pools = [pool("10.11.0.0/22", 26)];
    let mut children: Vec<_> = (0..WORKERS)
        .map(|w| {
            Command::new(env!("CARGO_BIN_EXE_brindle-perf"))
                .args([
                    "ipam-worker",
                    "--store",
                    &f.worker_spec,
                    "--pool",
                    "10.11.0.0/22",
                    "--block-size",
                    "26",
                ])
                .args([
                    "--host",
                    &format!("node-{}", w % NODES),
                    "--count",
                    &EACH.to_string(),
                ])
                .args(["--handle-prefix", &format!("w{w}"), "--release-every", "10"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawning a worker")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(180);
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        if Instant::now() > deadline {
            for c in &mut children {
                let _ = c.kill();
                let _ = c.wait();
            }
            panic!("workers did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut kept = Vec::new();
    let mut released = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "worker failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("worker prints JSON");
        let ips = |k: &str| -> Vec<Ipv4Addr> { serde_json::from_value(report[k].clone()).unwrap() };
        kept.extend(ips("kept"));
        released += ips("released").len();
    }
    assert_eq!(
        kept.len() + released,
        WORKERS * EACH,
        "every allocation got an address"
    );
    assert_eq!(released, WORKERS * EACH / 10);
    let distinct: BTreeSet<Ipv4Addr> = kept.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        kept.len(),
        "no address was handed out twice"
    );

    let ipam = Ipam::new(f.store.clone());
    let in_use: u64 = ipam.blocks().unwrap().iter().map(|b| b.in_use).sum();
    assert_eq!(
        in_use,
        kept.len() as u64,
        "blocks hold exactly the kept addresses"
    );
    assert_eq!(ipam.usage(&pools).unwrap()[0].in_use, kept.len() as u64);
    for ip in &kept {
        assert!(
            ipam.get_assignment_attrs(*ip).unwrap().is_some(),
            "{ip} is recorded"
        );
    }
    let nodes: Vec<String> = (0..NODES).map(|n| format!("node-{n}")).collect();
    let report = ipam.check(&nodes).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(
        report.handles_checked,
        kept.len(),
        "one handle per kept allocation"
    );
    // Each claimed block is affine to exactly one node with one confirmed affinity record.
    for b in ipam.blocks().unwrap() {
        let host = b
            .affinity
            .expect("blocks claimed by the workers are affine");
        let affinity = json_at(&*f.store, &keys::ipam_affinity(&host, &b.cidr.to_string()));
        assert_eq!(affinity["state"], "confirmed");
        for other in nodes.iter().filter(|n| **n != host) {
            assert!(f
                .store
                .get(&keys::ipam_affinity(other, &b.cidr.to_string()))
                .unwrap()
                .is_none());
        }
    }
}

#[test]
fn embedded_parallel_processes_never_share_an_address() {
    parallel_processes_never_share_an_address(&embedded("parallel"));
}

#[test]
fn etcd_parallel_processes_never_share_an_address() {
    parallel_processes_never_share_an_address(&etcd("parallel"));
}
