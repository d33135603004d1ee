//! The node applies its uplink's NIC profile with node.toml's `[hw]` overrides (root: network
//! namespaces, XDP): generic XDP on the uplink, the worker's rx mode, and the NAPI settings
//! written to sysfs while it runs and restored when it stops; and it still forwards.

use std::path::PathBuf;
use std::time::Duration;

use lab::node::{NodeLaunch, NodeProcess};
use lab::{Lab, LabSpec};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");

struct Rig {
    lab: Lab,
    dir: PathBuf,
    socket: PathBuf,
    node: Option<NodeProcess>,
}

impl Rig {
    fn new(tag: &str, hw: &str) -> Rig {
        let name = format!("{tag}{}", std::process::id() % 100_000);
        let lab = Lab::up(&LabSpec::new(name.clone(), 1)).expect("lab up");
        let dir = std::env::temp_dir().join(format!("brindle-test-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("node.sock");
        // node.toml says poll; the [hw] override must win for the worker.
        let config = format!(
            "{}\n[[route]]\nprefix = \"10.99.0.0/24\"\nvia = \"10.99.0.2\"\n\n[hw]\n{hw}\n",
            lab.node_config_toml("poll", &socket)
        );
        std::fs::write(dir.join("node.toml"), config).unwrap();
        let node = NodeLaunch::file_mode(lab.node_netns(), NODE_BIN, &dir)
            .start(Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("brindle-node did not become ready: {e}"));
        Rig {
            lab,
            dir,
            socket,
            node: Some(node),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    fn node_sh(&self, args: &[&str]) -> String {
        let out = self
            .lab
            .exec_timeout(&self.lab.node_netns(), args, Duration::from_secs(10))
            .expect("exec");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn stop_node(&mut self) {
        let mut node = self.node.take().expect("node running");
        node.signal(libc::SIGTERM);
        let stopped = node.wait_exit(Duration::from_secs(10));
        assert!(stopped.is_some(), "node did not stop on SIGTERM");
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        drop(self.node.take());
        let _ = self.lab.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn generic_xdp_interrupt_worker_and_napi_overrides_are_applied_forward_and_are_undone_on_stop() {
    let hw = "xdp_mode = \"generic\"\nrx_mode = \"interrupt\"\nnapi_defer_hard_irqs = 3\ngro_flush_timeout_ns = 50000";
    let mut rig = Rig::new("sqh", hw);
    let uplink = rig.lab.uplink().expect("uplink").clone();
    let dev = uplink.node_interface.clone();
    let sysfs = |rig: &Rig, file: &str| {
        rig.node_sh(&["cat", &format!("/sys/class/net/{dev}/{file}")])
            .trim()
            .to_owned()
    };

    let link = rig.node_sh(&["ip", "-d", "link", "show", "dev", &dev]);
    assert!(
        link.contains("xdpgeneric"),
        "the uplink's program is in generic mode:\n{link}"
    );
    let stats = control::stats::fetch(&rig.socket).expect("stats");
    assert_eq!(
        stats["mode"], "interrupt",
        "[hw] rx_mode beats node.toml's mode"
    );
    let uplink_port = stats["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == dev.as_str())
        .cloned();
    assert_eq!(
        uplink_port.map(|p| p["xdp_mode"].clone()),
        Some(serde_json::json!("generic")),
        "{stats}"
    );
    assert_eq!(sysfs(&rig, "napi_defer_hard_irqs"), "3");
    assert_eq!(sysfs(&rig, "gro_flush_timeout"), "50000");

    // The workload reaches the outside through the uplink and back (ip_forward is off in
    // the node namespace: only brindle forwards).
    let w1 = rig.lab.workloads()[0].netns.clone();
    let out = rig
        .lab
        .exec_timeout(
            &w1,
            &[
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "2",
                &uplink.ext_ip.to_string(),
            ],
            Duration::from_secs(20),
        )
        .unwrap();
    assert!(
        out.status.success(),
        "w1 -> ext: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        rig.log()
    );

    rig.stop_node();
    assert_eq!(sysfs(&rig, "napi_defer_hard_irqs"), "0", "restored on stop");
    assert_eq!(sysfs(&rig, "gro_flush_timeout"), "0", "restored on stop");
}
