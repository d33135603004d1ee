//! The generator and sink binaries across a Kernel-mode lab, and the e2e benchmark's kernel
//! side. Root tests; every lab and child process is removed by its guard.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use perf::cmd::ChildGuard;
use perf::e2e::{self, E2eOptions};
use perf::lab::{Forwarding, Lab, LabSpec};
use perf::udp::{SendReport, SinkReport};

const PERF: &str = env!("CARGO_BIN_EXE_brindle-perf");

fn unique_name(letter: char) -> String {
    let mut pid = std::process::id();
    let mut digits = Vec::new();
    while pid > 0 {
        digits.push(std::char::from_digit(pid % 36, 36).unwrap());
        pid /= 36;
    }
    digits.push(letter);
    digits.iter().rev().collect()
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
        .args(["netns", "exec", &w2.netns, PERF, "udp-sink", "--port", "7001"])
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
            &[PERF, "udp-send", "--dst", &dst, "--port", "7001", "--duration", "1"],
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sent: SendReport = serde_json::from_slice(&out.stdout).unwrap();
    let sink_out = sink.wait_output(Duration::from_secs(15)).expect("sink did not exit");
    assert!(sink_out.status.success(), "{}", String::from_utf8_lossy(&sink_out.stderr));
    let got: SinkReport = serde_json::from_slice(&sink_out.stdout).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    assert!(sent.sent > 0, "{sent:?}");
    assert!(got.received > 0, "nothing crossed the kernel lab: {got:?}");
    assert!(got.received <= sent.sent, "{got:?} vs {sent:?}");
    assert_eq!(got.bytes, got.received * 18, "64-byte frames carry 18 bytes");
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
    };
    let report = e2e::run(&opts).unwrap();
    let out = dir.join("e2e.json");
    let md = e2e::write_report(&report, &out).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let table = std::fs::read_to_string(&md).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let k = &report.kernel;
    assert!(k.pps_delivered > 0.0 && k.pps_delivered <= k.pps_offered, "{k:?}");
    assert!(k.ping_replies > 0 && k.ping_replies <= 50, "{k:?}");
    let (p50, p99) = (k.rtt_p50_us.unwrap(), k.rtt_p99_us.unwrap());
    assert!(p50 > 0.0 && p50 <= p99, "{k:?}");
    assert!(k.busy_cores > 0.0 && k.busy_cores <= report.ncpus as f64 + 0.01, "{k:?}");
    assert!(report.brindle.is_none() && report.ratios.is_none());
    assert_eq!(json["kernel"]["forwarding"], "kernel");
    assert!(json["kernel"]["pps_per_busy_core"].as_f64().unwrap() > 0.0);
    assert!(table.contains("| pps_delivered |"), "{table}");
    // The lab is gone: e2e names it `ek<pid in base 36>`, this process being the runner.
    let lab_name = format!("ek{}", &unique_name('x')[1..]);
    assert!(!perf::lab::netns_exists(&format!("{lab_name}-node")));
    assert!(!perf::lab::netns_exists(&format!("{lab_name}-w1")));
}
