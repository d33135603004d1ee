//! The generator and sink binaries across a Kernel-mode lab, and the e2e benchmark's kernel
//! side. Root tests; every lab and child process is removed by its guard.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab::cmd::ChildGuard;
use lab::udp::{SendReport, SinkReport};
use lab::{Forwarding, Lab, LabSpec};
use perf::e2e::{self, E2eOptions};

const PERF: &str = env!("CARGO_BIN_EXE_brindle-perf");

/// `letter` and this process id in base 36: parallel test binaries never share namespaces.
fn unique_name(letter: char) -> String {
    format!("{letter}{}", lab::run::pid_tag(5))
}

fn kernel_lab(letter: char) -> Lab {
    let mut spec = LabSpec::new(unique_name(letter), 2);
    spec.forwarding = Forwarding::Kernel;
    Lab::up(&spec).unwrap()
}

fn work_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("perf-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn udp_send_and_sink_across_a_kernel_lab() {
    let lab = kernel_lab('u');
    let w1 = lab.workload(1).unwrap();
    let w2 = lab.workload(2).unwrap();
    let dir = work_dir("udp");
    let ready = dir.join("ready");
    let sink = Command::new("ip")
        .args([
            "netns", "exec", &w2.netns, PERF, "udp-sink", "--port", "7001",
        ])
        .args(["--duration", "10", "--idle-ms", "500", "--ready-file"])
        .arg(&ready)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sink = ChildGuard::new("udp-sink", sink);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "sink never became ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    let dst = w2.ip.to_string();
    let out = lab
        .exec_timeout(
            &w1.netns,
            &[
                PERF,
                "udp-send",
                "--dst",
                &dst,
                "--port",
                "7001",
                "--duration",
                "1",
            ],
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: SendReport = serde_json::from_slice(&out.stdout).unwrap();
    let sink_out = sink
        .wait_output(Duration::from_secs(15))
        .expect("sink did not exit");
    assert!(
        sink_out.status.success(),
        "{}",
        String::from_utf8_lossy(&sink_out.stderr)
    );
    let got: SinkReport = serde_json::from_slice(&sink_out.stdout).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    assert!(sent.sent > 0, "{sent:?}");
    assert!(got.received > 0, "nothing crossed the kernel lab: {got:?}");
    assert!(got.received <= sent.sent, "{got:?} vs {sent:?}");
    assert_eq!(
        got.bytes,
        got.received * 18,
        "64-byte frames carry 18 bytes"
    );
}

#[test]
fn e2e_kernel_side_measures_throughput_latency_and_cpu() {
    let dir = work_dir("e2e");
    let opts = E2eOptions {
        brindle_node: None,
        perf_exe: PathBuf::from(PERF),
        duration: Duration::from_secs(1),
        pings: 50,
        frame_size: 64,
        batch: 64,
        port: 7002,
        work_dir: dir.clone(),
        node_mode: "poll".into(),
        generator: perf::e2e_xdp::Generator::Socket,
        testpmd: None,
        workload_port: lab::WorkloadPort::Veth,
    };
    let report = e2e::run(&opts).unwrap();
    let out = dir.join("e2e.json");
    let md = e2e::write_report(&report, &out).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let table = std::fs::read_to_string(&md).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let k = &report.kernel;
    assert!(
        k.pps_delivered > 0.0 && k.pps_delivered <= k.pps_offered,
        "{k:?}"
    );
    assert!(k.ping_replies > 0 && k.ping_replies <= 50, "{k:?}");
    let (p50, p99) = (k.rtt_p50_us.unwrap(), k.rtt_p99_us.unwrap());
    assert!(p50 > 0.0 && p50 <= p99, "{k:?}");
    assert!(
        k.busy_cores > 0.0 && k.busy_cores <= report.ncpus as f64 + 0.01,
        "{k:?}"
    );
    assert!(report.brindle.is_none() && report.ratios.is_none());
    assert_eq!(json["kernel"]["forwarding"], "kernel");
    assert!(json["kernel"]["pps_per_busy_core"].as_f64().unwrap() > 0.0);
    assert!(table.contains("| pps_delivered |"), "{table}");
    // The lab is gone.
    let lab_name = &k.lab;
    assert!(!lab::netns_exists(&format!("{lab_name}-node")));
    assert!(!lab::netns_exists(&format!("{lab_name}-w1")));
}

/// Stands in for brindle-node until it exists: makes the node namespace's kernel forward like
/// the kernel dataplane would (from the workloads listed in the config it is given), then
/// waits, bounded, for SIGTERM and leaves a marker saying it got it.
const STUB_NODE: &str = r#"#!/bin/sh
[ "$1" = "--config" ] || exit 2
cfg="$2"
dir=$(dirname "$cfg")
sysctl -qw net.ipv4.ip_forward=1
awk '/^interface/ { gsub(/"/, "", $3); dev = $3 }
     /^ips/ { gsub(/[\["\]]/, "", $3); print dev, $3 }' "$cfg" |
while read dev ip; do
    sysctl -qw "net.ipv4.conf.$dev.proxy_arp=1" "net.ipv4.neigh.$dev.proxy_delay=0"
    ip route add "$ip/32" dev "$dev" scope link
done
trap 'echo stopped > "$dir/stub-stopped"; exit 0' TERM
i=0
while [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
exit 1
"#;

#[test]
fn e2e_brindle_side_starts_configures_and_stops_the_node() {
    use std::os::unix::fs::PermissionsExt;
    let dir = work_dir("stub");
    let stub = dir.join("stub-node.sh");
    std::fs::write(&stub, STUB_NODE).unwrap();
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let opts = E2eOptions {
        brindle_node: Some(stub),
        perf_exe: PathBuf::from(PERF),
        duration: Duration::from_secs(1),
        pings: 50,
        frame_size: 64,
        batch: 64,
        port: 7003,
        work_dir: dir.clone(),
        node_mode: "poll".into(),
        generator: perf::e2e_xdp::Generator::Socket,
        testpmd: None,
        workload_port: lab::WorkloadPort::Veth,
    };
    let report = e2e::run(&opts).unwrap();
    let config = std::fs::read_to_string(dir.join("node.toml")).unwrap();
    let stopped = dir.join("stub-stopped").exists();
    let _ = std::fs::remove_dir_all(&dir);

    let b = report.brindle.as_ref().expect("brindle side missing");
    assert_eq!(b.forwarding, "brindle");
    assert!(b.received > 0 && b.received <= b.sent, "{b:?}");
    assert!(b.ping_replies > 0, "{b:?}");
    let ratios = report.ratios.as_ref().expect("ratios missing");
    assert!(ratios.pps_delivered.unwrap() > 0.0, "{ratios:?}");
    assert!(config.contains("mode = \"poll\""), "{config}");
    assert!(config.contains("cores = [1]"), "{config}");
    assert!(config.contains("[[workload]]"), "{config}");
    assert!(stopped, "the node was not sent SIGTERM (or ignored it)");
    for lab in [&b.lab, &report.kernel.lab] {
        assert!(
            !lab::netns_exists(&format!("{lab}-node")),
            "{lab} left behind"
        );
    }
}

#[test]
fn e2e_raw_side_forwards_with_dpdk_testpmd_on_the_same_veths() {
    let testpmd = PathBuf::from("/usr/bin/dpdk-testpmd");
    assert!(
        testpmd.is_file(),
        "dpdk-testpmd is missing: scripts/deps.sh installs dpdk-dev and librte-net-af-xdp23"
    );
    let dir = work_dir("raw");
    let opts = E2eOptions {
        brindle_node: None,
        perf_exe: PathBuf::from(PERF),
        duration: Duration::from_secs(1),
        pings: 20,
        frame_size: 64,
        batch: 64,
        port: 7004,
        work_dir: dir.clone(),
        node_mode: "poll".into(),
        generator: perf::e2e_xdp::Generator::Socket,
        testpmd: Some(testpmd),
        workload_port: lab::WorkloadPort::Veth,
    };
    let report = e2e::run(&opts).unwrap();
    let log = std::fs::read_to_string(dir.join("testpmd.log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let raw = report.raw_afxdp.as_ref().expect("raw side missing");
    assert_eq!(raw.forwarding, "testpmd");
    assert!(
        raw.received > 0 && raw.received <= raw.sent,
        "{raw:?}\n{log}"
    );
    assert!(raw.ping_replies > 0, "{raw:?}\n{log}");
    assert!(report.raw_ratios.is_none(), "no brindle side, no ratio");
}
