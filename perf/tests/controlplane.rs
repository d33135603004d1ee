//! The control-plane benchmarks at small sizes: they run end to end (lab, etcd or the embedded
//! store, brindle-node in agent mode, brindle-cni) and report sane, complete numbers.
//! Root: network namespaces, XDP, a real etcd.
//!
//! perf cannot depend on the control crate (control dev-depends on perf), so the node and CNI
//! binaries are taken from this test's own target directory (`cargo build -p control` first) or
//! from `BRINDLE_BIN_DIR`.

use std::path::PathBuf;
use std::time::Duration;

use perf::controlplane::{self, CniLatencyOptions, ResyncOptions, StoreKind, Summary};
use serde_json::Value;

/// `target/<profile>`, where cargo put this crate's binaries and control's.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BRINDLE_BIN_DIR") {
        return dir.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/controlplane-<hash>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .to_path_buf();
    for bin in ["brindle-node", "brindle-cni", "brindle-ipam"] {
        assert!(
            dir.join(bin).is_file(),
            "{} missing: run `cargo build --release --workspace --bins` first (or set BRINDLE_BIN_DIR)",
            dir.join(bin).display()
        );
    }
    dir
}

fn assert_ordered(name: &str, s: &Summary, count: usize) {
    assert_eq!(s.count, count, "{name}: {s:?}");
    assert!(s.p50_ms > 0.0, "{name}: {s:?}");
    assert!(
        s.p50_ms <= s.p99_ms && s.p99_ms <= s.max_ms,
        "{name}: p50 <= p99 <= max: {s:?}"
    );
    assert!(s.mean_ms <= s.max_ms, "{name}: {s:?}");
}

fn assert_fields(json: &Value, fields: &[&str]) {
    for f in fields {
        assert!(json.get(f).is_some(), "field {f} missing from {json}");
    }
}

#[test]
fn cni_latency_of_five_workloads_on_etcd_reports_add_forwarding_and_del() {
    let opts = CniLatencyOptions {
        bin_dir: bin_dir(),
        workloads: 5,
        datastore: StoreKind::Etcd,
    };
    let report = controlplane::run_cni_latency(&opts).expect("cni-latency run");
    assert_eq!(report.unreachable, 0, "every workload answers: {report:?}");
    assert_ordered("add", &report.add, 5);
    assert_ordered("add_to_forwarding", &report.add_to_forwarding, 5);
    assert_ordered("del", &report.del, 5);
    // Each ADD-to-forwarding sample contains its ADD, so every order statistic does too.
    assert!(
        report.add_to_forwarding.p50_ms >= report.add.p50_ms,
        "{report:?}"
    );
    assert!(
        report.add_to_forwarding.max_ms >= report.add.max_ms,
        "{report:?}"
    );

    // The JSON written to --out carries the stable field names, and the Markdown sits beside it.
    let dir = std::env::temp_dir().join(format!("brindle-cp-test-{}", std::process::id()));
    let out = dir.join("cni-latency.json");
    let md = controlplane::write_report(
        perf::rows::Benchmark::CniLatency,
        &report,
        &controlplane::cni_latency_markdown(&report),
        &out,
    )
    .unwrap();
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_fields(
        &json,
        &[
            "benchmark",
            "datastore",
            "workloads",
            "add",
            "add_to_forwarding",
            "del",
            "unreachable",
        ],
    );
    assert_eq!(json["benchmark"], "cni-latency");
    assert_eq!(json["workloads"], 5);
    assert_fields(
        &json["add_to_forwarding"],
        &["count", "p50_ms", "p99_ms", "max_ms", "mean_ms"],
    );
    assert!(std::fs::read_to_string(&md)
        .unwrap()
        .contains("| ADD to forwarding | 5 |"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resync_of_200_endpoints_on_etcd_lists_and_applies_all_of_them_and_resyncs_after_a_cut() {
    let opts = ResyncOptions {
        bin_dir: bin_dir(),
        endpoints: 200,
        datastore: StoreKind::Etcd,
        writers: 4,
        reconnect: true,
        timeout: Duration::from_secs(60),
    };
    let report = controlplane::run_resync(&opts).expect("resync run");
    assert_eq!(report.node_error, None, "{report:?}");
    assert_eq!(
        report.synced_endpoints, 200,
        "the node listed every endpoint: {report:?}"
    );
    assert_eq!(
        report.missing_reported, 200,
        "and applied every one (as a missing interface): {report:?}"
    );
    let synced = report.synced_secs.expect("synced time");
    let programmed = report.programmed_secs.expect("programmed time");
    assert!(
        synced > 0.0 && synced <= programmed,
        "list before apply: {report:?}"
    );
    assert!(
        report.endpoints_per_sec.is_some_and(|r| r > 0.0),
        "{report:?}"
    );
    assert!(
        report.reconnect_resync_secs.is_some_and(|s| s > 0.0),
        "a resync after the cut: {report:?}"
    );
    // The node names the first missing interfaces and counts the rest in one line, instead of
    // a warning per endpoint per retry (200 endpoints would be 200 lines a second).
    assert!(
        report.node_log_warnings > 0 && report.node_log_warnings < 100,
        "bounded warnings: {report:?}"
    );
}

#[test]
fn resync_cli_on_the_embedded_store_writes_json_and_markdown() {
    let dir = std::env::temp_dir().join(format!("brindle-cp-cli-test-{}", std::process::id()));
    let out = dir.join("resync.json");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_brindle-perf"))
        .args([
            "resync",
            "--endpoints",
            "200",
            "--datastore",
            "embedded",
            "--timeout",
            "60",
        ])
        .arg("--brindle-bin-dir")
        .arg(bin_dir())
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run brindle-perf");
    assert!(status.success(), "brindle-perf resync failed");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_fields(
        &json,
        &[
            "benchmark",
            "datastore",
            "endpoints",
            "write_secs",
            "synced_secs",
            "programmed_secs",
            "missing_reported",
            "endpoints_per_sec",
        ],
    );
    assert_eq!(json["benchmark"], "resync");
    assert_eq!(json["datastore"], "embedded");
    assert_eq!(json["endpoints"], 200);
    assert_eq!(json["synced_endpoints"], 200);
    assert_eq!(json["missing_reported"], 200);
    assert!(
        json["reconnect_resync_secs"].is_null(),
        "no etcd connection to cut on the embedded store"
    );
    assert!(json["synced_secs"].as_f64().unwrap() <= json["programmed_secs"].as_f64().unwrap());
    assert!(std::fs::read_to_string(out.with_extension("md"))
        .unwrap()
        .contains("200 WorkloadEndpoints"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bounds_are_refused_with_the_field_named() {
    let opts = CniLatencyOptions {
        bin_dir: PathBuf::from("/nonexistent"),
        workloads: 0,
        datastore: StoreKind::Embedded,
    };
    let err = controlplane::run_cni_latency(&opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("workloads"), "{err}");
    let opts = ResyncOptions {
        bin_dir: PathBuf::from("/nonexistent"),
        endpoints: controlplane::MAX_ENDPOINTS + 1,
        datastore: StoreKind::Embedded,
        writers: 4,
        reconnect: false,
        timeout: Duration::from_secs(10),
    };
    let err = controlplane::run_resync(&opts).unwrap_err().to_string();
    assert!(err.contains("endpoints"), "{err}");
    let err = "mysql".parse::<StoreKind>().unwrap_err().to_string();
    assert!(err.contains("datastore") && err.contains("mysql"), "{err}");
}
