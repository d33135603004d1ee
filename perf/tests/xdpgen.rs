//! The AF_XDP generator and sink between two namespaces joined by a veth pair: every frame
//! sent arrives, in order, with a latency sample. Needs root (as every lab test does).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab::xdpgen::{XdpSendReport, XdpSinkReport};

const EXE: &str = env!("CARGO_BIN_EXE_brindle-perf");

/// Two namespaces `xg<pid><tag>a`/`b` with `eth0` each, 10.213.<n>.1/24 and .2/24; removed
/// on drop.
struct VethPair {
    a: String,
    b: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl VethPair {
    fn up(tag: &str) -> VethPair {
        let base = format!("xg{}{tag}", std::process::id());
        let pair = VethPair {
            a: format!("{base}a"),
            b: format!("{base}b"),
        };
        ip(&["netns", "add", &pair.a]);
        ip(&["netns", "add", &pair.b]);
        ip(&[
            "-n", &pair.a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
            &pair.b,
        ]);
        for (ns, addr) in [(&pair.a, "10.213.0.1/24"), (&pair.b, "10.213.0.2/24")] {
            ip(&["-n", ns, "addr", "add", addr, "dev", "eth0"]);
            ip(&["-n", ns, "link", "set", "eth0", "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn frames_between_two_namespaces_arrive_in_order_with_latency() {
    let pair = VethPair::up("s");
    let count: u64 = 3000;
    let ready = std::env::temp_dir().join(format!("xg-sink-ready-{}", std::process::id()));
    let _ = std::fs::remove_file(&ready);
    let count_arg = count.to_string();
    let sink = Command::new("ip")
        .args([
            "netns", "exec", &pair.b, EXE, "xdp-sink", "--dev", "eth0", "--port", "7777",
        ])
        .args([
            "--duration",
            "20",
            "--idle-ms",
            "2000",
            "--count",
            &count_arg,
            "--ready-file",
        ])
        .arg(&ready)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting xdp-sink");
    let started = Instant::now();
    while !ready.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "xdp-sink not ready within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // 20,000 frames/s: far below what a veth takes, so none may be lost.
    let send = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.a,
            EXE,
            "xdp-send",
            "--dev",
            "eth0",
            "--dst",
            "10.213.0.2",
        ])
        .args([
            "--port",
            "7777",
            "--size",
            "128",
            "--duration",
            "10",
            "--rate",
            "20000",
            "--count",
            &count_arg,
        ])
        .output()
        .expect("running xdp-send");
    let sink = sink.wait_with_output().expect("waiting for xdp-sink");
    let _ = std::fs::remove_file(&ready);
    assert!(
        send.status.success(),
        "xdp-send: {}",
        String::from_utf8_lossy(&send.stderr)
    );
    assert!(
        sink.status.success(),
        "xdp-sink: {}",
        String::from_utf8_lossy(&sink.stderr)
    );
    let send: XdpSendReport = serde_json::from_slice(&send.stdout).expect("xdp-send JSON");
    let sink: XdpSinkReport = serde_json::from_slice(&sink.stdout).expect("xdp-sink JSON");

    assert_eq!(send.sent, count, "{send:?}");
    assert_eq!(
        send.next_hop, "10.213.0.2",
        "on-link: the next hop is the destination"
    );
    assert!(
        sink.arp_replies >= 1,
        "the sender resolved the sink through the sink's ARP reply: {sink:?}"
    );
    assert_eq!(sink.received, count, "{sink:?}");
    assert_eq!(sink.highest_seq, Some(count - 1));
    assert_eq!(sink.lost_in_sequence, 0);
    assert_eq!(sink.reordered, 0);
    assert_eq!(sink.bytes, count * (128 - 46) as u64);
    // The rate limit shows: 3,000 frames at 20,000/s take about 150 ms.
    assert!(send.secs > 0.1, "{send:?}");
    let lat = sink.latency.expect("latency percentiles");
    assert_eq!(lat.samples, count);
    assert!(lat.p50_us > 0.0, "{lat:?}");
    assert!(
        lat.p50_us <= lat.p90_us
            && lat.p90_us <= lat.p99_us
            && lat.p99_us <= lat.p999_us
            && lat.p999_us <= lat.max_us,
        "{lat:?}"
    );
}
