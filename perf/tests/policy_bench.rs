//! The policy benchmark end to end at a small size: both sides come up (kernel with 1,000
//! Calico-style iptables rules and ipsets; brindle-node in agent mode with the same
//! GlobalNetworkPolicy), each proves the policy in force, and both traffic kinds run ~1 s per
//! side. Root: network namespaces, XDP, iptables.
//!
//! perf cannot depend on the control crate (control dev-depends on perf), so the node, CNI and
//! brindlectl binaries are taken from this test's own target directory (`cargo build -p
//! control` first) or from `BRINDLE_BIN_DIR`.

use std::path::PathBuf;
use std::time::Duration;

use perf::policy_bench::{self, IptablesBackend, PolicyOptions};

/// `target/<profile>`, where cargo put this crate's binaries and control's.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BRINDLE_BIN_DIR") {
        return dir.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .to_path_buf();
    for bin in ["brindle-node", "brindle-cni", "brindle-ipam", "brindlectl"] {
        assert!(
            dir.join(bin).is_file(),
            "{} missing: run `cargo build --release --workspace --bins` first (or set BRINDLE_BIN_DIR)",
            dir.join(bin).display()
        );
    }
    dir
}

#[test]
fn both_sides_enforce_1000_rules_and_carry_both_traffic_kinds() {
    let opts = PolicyOptions {
        bin_dir: bin_dir(),
        duration: Duration::from_secs(1),
        rounds: 1,
        frame_size: 64,
        batch: 64,
        port: 5201,
        rules: 1000,
        node_mode: "interrupt".into(),
        work_dir: std::env::temp_dir().join(format!("perf-policy-{}", std::process::id())),
        iptables: IptablesBackend::Legacy,
    };
    let report = policy_bench::run(&opts);
    let _ = std::fs::remove_dir_all(&opts.work_dir);
    let report = report.expect("policy benchmark");

    // The policy was in force on both sides before anything was measured.
    for (side, proof) in [
        ("kernel", &report.kernel_proof),
        ("brindle", &report.brindle_proof),
    ] {
        assert!(proof.holds(), "{side}: {proof:?}");
        assert!(
            proof.denied_counted >= proof.denied_sent,
            "{side}: {proof:?}"
        );
    }
    let kinds: Vec<&str> = report.kinds.iter().map(|k| k.kind).collect();
    assert_eq!(kinds, ["established", "new_flows"]);
    for kind in &report.kinds {
        for (side, summary) in [("kernel", &kind.kernel), ("brindle", &kind.brindle)] {
            assert_eq!(summary.rounds.len(), 1, "{} {side}", kind.kind);
            let m = &summary.rounds[0];
            assert!(m.sent > 0 && m.delivered > 0, "{} {side}: {m:?}", kind.kind);
            // Delivered counts the sink's eth0, which also sees the odd ARP or ICMP error.
            assert!(m.delivered <= m.sent + 100, "{} {side}: {m:?}", kind.kind);
        }
        let ratio = kind
            .ratio_delivered
            .expect("a ratio when both sides delivered");
        let expected = kind.brindle.pps_delivered.unwrap() / kind.kernel.pps_delivered.unwrap();
        assert!((ratio - expected).abs() < 1e-9, "{kind:?}");
    }
    let md = policy_bench::markdown(&report);
    assert!(
        md.contains("| established | 16 |") && md.contains("| new_flows | 66060288 |"),
        "{md}"
    );
}
