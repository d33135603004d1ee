//! The cross-node benchmark's kernel sides, end to end: a two-node lab forwarding with Linux,
//! plain and IP in IP, must carry the generator's traffic and pass the path proof (a capture
//! on the segment and the uplink's frame sizes). Root tests; labs are removed by their guards.
//! The brindle sides need `brindle-node`, whose forwarding between nodes is tested in
//! control/tests/two_nodes.rs.

use std::path::PathBuf;
use std::time::Duration;

use perf::crossnode::{self, CrossnodeOptions, Encap, Forwarder, KernelIpip, Side};

fn options(test: &str) -> CrossnodeOptions {
    CrossnodeOptions {
        // Not started by the kernel sides.
        brindle_node: PathBuf::from("/nonexistent/brindle-node"),
        perf_exe: PathBuf::from(env!("CARGO_BIN_EXE_brindle-perf")),
        duration: Duration::from_secs(1),
        pings: 20,
        frame_size: 64,
        batch: 64,
        port: 5201,
        work_dir: std::env::temp_dir().join(format!("perf-{test}-{}", std::process::id())),
        node_mode: "interrupt".into(),
        node_cpus: crossnode::DEFAULT_NODE_CPUS,
        clang: "clang".into(),
        rounds: 1,
    }
}

#[test]
fn kernel_plain_side_forwards_bare_frames_between_the_nodes() {
    let opts = options("crossnode-kp");
    let side = crossnode::run_side(&opts, Side::new(Forwarder::Kernel, Encap::Plain));
    let _ = std::fs::remove_dir_all(&opts.work_dir);
    let side = side.expect("kernel plain side");
    assert!(side.measured.received > 0, "{side:?}");
    assert_eq!(side.measured.ping_replies, 20, "{side:?}");
    let path = &side.path;
    assert_eq!((path.capture_bare, path.capture_ipip), (10, 0), "{path:?}");
    let mean = path.uplink_tx_bytes_per_packet.unwrap();
    assert!((mean - 60.0).abs() <= 4.0, "bare 64-byte frames: {path:?}");
    assert_eq!(side.kernel_ipip_method, None);
}

#[test]
fn kernel_ipip_side_wraps_every_frame_between_the_nodes() {
    let opts = options("crossnode-ki");
    let side = crossnode::run_side(&opts, Side::new(Forwarder::Kernel, Encap::Ipip));
    let _ = std::fs::remove_dir_all(&opts.work_dir);
    let side = side.expect("kernel IPIP side");
    assert!(side.measured.received > 0, "{side:?}");
    assert_eq!(side.measured.ping_replies, 20, "{side:?}");
    let path = &side.path;
    assert_eq!((path.capture_ipip, path.capture_bare), (10, 0), "{path:?}");
    let mean = path.uplink_tx_bytes_per_packet.unwrap();
    assert!(
        (mean - 80.0).abs() <= 4.0,
        "64-byte frames + 20 bytes of IPIP: {path:?}"
    );
    match side.kernel_ipip_method {
        Some(KernelIpip::Device) => {
            assert!(path.tunnel_tx_packets_node1.unwrap() >= side.measured.received);
        }
        Some(KernelIpip::LwtBpf) => assert_eq!(path.tunnel_tx_packets_node1, None),
        None => panic!("the IPIP side names its mechanism: {side:?}"),
    }
}
