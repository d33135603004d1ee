//! The scenario suite in `--quick` mode on the one-node lab, for real: kernel then brindle
//! (agent mode, workloads plugged by brindle-cni), iperf3 TCP pod-to-pod and pod-to-node and
//! HTTP with ab against nginx in a workload. Needs root (network namespaces, XDP) and the
//! release `brindle-node`, `brindle-cni` and `brindle-ipam` (built by `make test` before the
//! tests).

use std::path::PathBuf;

use perf::scenarios::{self, LabKind, PathKind, ScenarioOptions, TestKind, Wiring};

fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release")
}

#[test]
fn quick_one_node_run_measures_tcp_and_http_on_both_sides() {
    let work_dir = std::env::temp_dir().join(format!("sc-test-{}", std::process::id()));
    let mut opts = ScenarioOptions::defaults(bin_dir(), work_dir.clone(), true);
    opts.labs = vec![LabKind::OneNode];
    opts.tests = vec![TestKind::IperfTcp, TestKind::HttpAb];
    opts.http_requests = 200;
    let report = scenarios::run(&opts).expect("the suite runs");
    let _ = std::fs::remove_dir_all(&work_dir);

    // brindle's side ran as a cluster does: agent mode, brindle-cni.
    assert_eq!(report.labs.len(), 1, "{:?}", report.labs);
    assert_eq!(
        (report.labs[0].lab, report.labs[0].wiring),
        (LabKind::OneNode, Wiring::BrindleCni)
    );
    assert_eq!(report.labs[0].ipip_mode.as_deref(), Some("Never"));

    let find = |path: PathKind, test: TestKind| {
        report
            .scenarios
            .iter()
            .find(|s| s.path == path && s.test == test)
            .unwrap_or_else(|| panic!("no {path:?} {test:?} in {:?}", report.scenarios))
    };
    let pod_to_pod = |test: TestKind| find(PathKind::PodToPod, test);
    let tcp = pod_to_pod(TestKind::IperfTcp);
    for (side, metrics, error) in [
        ("kernel", &tcp.kernel, &tcp.kernel_error),
        ("brindle", &tcp.brindle, &tcp.brindle_error),
    ] {
        let m = metrics
            .as_ref()
            .unwrap_or_else(|| panic!("{side} TCP failed: {error:?}"));
        assert!(m["gbit_per_s"] > 0.0, "{side} TCP throughput {m:?}");
    }
    assert!(tcp.ratios.contains_key("gbit_per_s"), "{:?}", tcp.ratios);

    // Pod-to-node: a TCP connection from a workload to the node's own stack (through the
    // host port, with defaultEndpointToHostAction Accept) carries data on both sides.
    let to_node = find(PathKind::PodToNode, TestKind::IperfTcp);
    for (side, metrics, error) in [
        ("kernel", &to_node.kernel, &to_node.kernel_error),
        ("brindle", &to_node.brindle, &to_node.brindle_error),
    ] {
        let m = metrics
            .as_ref()
            .unwrap_or_else(|| panic!("{side} pod-to-node TCP failed: {error:?}"));
        assert!(
            m["gbit_per_s"] > 0.0,
            "{side} pod-to-node TCP throughput {m:?}"
        );
    }

    let http = pod_to_pod(TestKind::HttpAb);
    for (side, metrics, error) in [
        ("kernel", &http.kernel, &http.kernel_error),
        ("brindle", &http.brindle, &http.brindle_error),
    ] {
        let m = metrics
            .as_ref()
            .unwrap_or_else(|| panic!("{side} ab failed: {error:?}"));
        assert!(m["complete_requests"] > 0.0, "{side}: {m:?}");
        assert_eq!(m["failed_requests"], 0.0, "{side}: {m:?}");
        assert!(m["requests_per_s"] > 0.0, "{side}: {m:?}");
    }
    // Only what was asked for ran.
    assert!(report.scenarios.iter().all(|s| s.lab == LabKind::OneNode));
    // pod-to-pod TCP and ab, pod-to-node TCP.
    assert_eq!(report.scenarios.len(), 3, "{:?}", report.scenarios);
}
