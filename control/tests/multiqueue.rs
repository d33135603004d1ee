//! A multi-queue uplink (root: network namespaces, XDP): the node serves every RX queue its
//! NIC profile asks for, so traffic that the outside sends on queue 1 is forwarded as well as
//! traffic on queue 0; with `queue_policy = "one"` queue 1 is left to the kernel (which does
//! not forward here), proving the test can tell the difference.
//!
//! The uplink is a veth made with two queues on each side. A veth delivers on the RX queue
//! of the sender's TX queue, and the outside's TX queue is picked by XPS: queue 0 for CPU 0,
//! queue 1 for CPU 1, so a ping pinned to CPU `q` arrives on queue `q` (this kernel has no
//! tc `skbedit` to set the queue directly).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use perf::lab::{Lab, LabSpec};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");

struct Rig {
    lab: Lab,
    ext: String,
    dir: PathBuf,
    socket: PathBuf,
    node: Option<Child>,
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("run");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Rig {
    fn new(tag: &str) -> Rig {
        let name = format!("{tag}{}", std::process::id() % 100_000);
        let lab = Lab::up(&LabSpec { uplink: false, ..LabSpec::new(name.clone(), 1) }).expect("lab up");
        let ext = format!("{name}-x");
        let dir = std::env::temp_dir().join(format!("brindle-test-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("node.sock");
        let rig = Rig { lab, ext, dir, socket, node: None };
        let node = rig.lab.node_netns();
        let ext = rig.ext.as_str();
        sh(&["ip", "netns", "add", ext]);
        sh(&[
            "ip", "-n", &node, "link", "add", "eth0", "numtxqueues", "2", "numrxqueues", "2", "type", "veth", "peer", "name",
            "eth0", "numtxqueues", "2", "numrxqueues", "2", "netns", ext,
        ]);
        for ns in [node.as_str(), ext] {
            sh(&["ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off", "tso", "off", "gso", "off", "gro", "off"]);
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        sh(&["ip", "-n", &node, "addr", "add", "10.99.0.1/24", "dev", "eth0"]);
        sh(&["ip", "-n", ext, "addr", "add", "10.99.0.2/24", "dev", "eth0"]);
        sh(&["ip", "-n", &node, "link", "set", "eth0", "up"]);
        sh(&["ip", "-n", ext, "link", "set", "eth0", "up"]);
        sh(&["ip", "-n", ext, "route", "add", &rig.lab.spec().pool_cidr(), "via", "10.99.0.1"]);
        sh(&["ip", "netns", "exec", ext, "sh", "-c", "echo 1 > /sys/class/net/eth0/queues/tx-0/xps_cpus && echo 2 > /sys/class/net/eth0/queues/tx-1/xps_cpus"]);
        rig
    }

    fn start_node(&mut self, hw: &str) {
        let config = format!(
            "uplink = \"eth0\"\n{}\n[[route]]\nprefix = \"10.99.0.0/24\"\nvia = \"10.99.0.2\"\n\n[hw]\n{hw}\n",
            self.lab.node_config_toml("interrupt", &self.socket)
        );
        std::fs::write(self.dir.join("node.toml"), config).unwrap();
        let log = std::fs::File::create(self.dir.join("node.log")).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.lab.node_netns(), NODE_BIN, "--config"])
            .arg(self.dir.join("node.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn brindle-node");
        self.node = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if control::stats::fetch(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("brindle-node did not become ready; log:\n{}", self.log());
    }

    fn stop_node(&mut self) {
        if let Some(mut child) = self.node.take() {
            // SAFETY: kill(2) on our own child's pid (ip netns exec execs the node in place).
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "node did not stop on SIGTERM");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// Pings the workload from outside on the uplink's queue `queue`; true when replies
    /// came back.
    fn outside_reaches_workload_on(&self, queue: u32) -> bool {
        let target = self.lab.workloads()[0].ip.to_string();
        let cpu = queue.to_string();
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ext, "taskset", "-c", &cpu, "ping", "-c", "3", "-i", "0.2", "-W", "1", &target])
            .output()
            .expect("ping");
        out.status.success()
    }

    fn uplink_queues(&self) -> u64 {
        let stats = control::stats::fetch(&self.socket).expect("stats");
        let ports = stats["ports"].as_array().cloned().unwrap_or_default();
        let uplink = ports.iter().find(|p| p["kind"] == "uplink").unwrap_or_else(|| panic!("no uplink port in {stats}"));
        uplink["queues"].as_u64().unwrap_or_else(|| panic!("no queues in {uplink}"))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(mut child) = self.node.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ext]).output();
        let _ = self.lab.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn traffic_on_either_queue_of_the_uplink_is_forwarded_when_the_profile_serves_all_queues() {
    let mut rig = Rig::new("sqm");
    rig.start_node("queue_policy = \"all\"");
    assert_eq!(rig.uplink_queues(), 2, "both queues have a socket; log:\n{}", rig.log());
    for queue in [0, 1] {
        assert!(rig.outside_reaches_workload_on(queue), "ext -> w1 on queue {queue}; log:\n{}", rig.log());
    }
    rig.stop_node();

    // Serving queue 0 only, queue 1 goes to the kernel, which does not forward here.
    rig.start_node("queue_policy = \"one\"");
    assert_eq!(rig.uplink_queues(), 1);
    assert!(rig.outside_reaches_workload_on(0), "ext -> w1 on queue 0 with one queue served; log:\n{}", rig.log());
    assert!(!rig.outside_reaches_workload_on(1), "queue 1 is not served, so the kernel gets it and drops it");
}
