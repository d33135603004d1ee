//! A running node changes its dataplane live: workloads attached and detached on SIGHUP,
//! interfaces that appear late, health and metrics endpoints (root: network namespaces, XDP).
//!
//! Each test builds its own lab (namespaces named after the test and this process), starts the
//! real `brindle-node` in the node namespace with a node.toml naming only some workloads, then
//! rewrites the file and sends SIGHUP.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab::node::{NodeLaunch, NodeProcess};
use lab::{Lab, LabSpec};
use serde_json::Value;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");

/// A lab plus a running node; both are torn down on drop.
struct Rig {
    lab: Lab,
    dir: PathBuf,
    socket: PathBuf,
    node: Option<NodeProcess>,
}

impl Rig {
    /// A lab of `workloads` workloads, with a node started for the workloads in `attached`.
    /// `tag` is at most 3 characters; our pid keeps parallel test binaries apart.
    fn new(tag: &str, workloads: usize, attached: &[usize]) -> Rig {
        let name = format!("{tag}{}", std::process::id() % 100_000);
        let lab = Lab::up(&LabSpec::new(name.clone(), workloads)).expect("lab up");
        let dir = std::env::temp_dir().join(format!("brindle-test-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("node.sock");
        let mut rig = Rig {
            lab,
            dir,
            socket,
            node: None,
        };
        rig.write_config(attached);
        rig.start_node();
        rig
    }

    /// Writes node.toml naming only the workloads in `attached`.
    fn write_config(&self, attached: &[usize]) {
        let full = self.lab.node_config_toml("interrupt", &self.socket);
        let head = full.split("\n[[workload]]").next().unwrap().to_owned();
        let mut text = head;
        for &i in attached {
            let w = &self.lab.workloads()[i];
            text.push_str(&format!(
                "\n[[workload]]\ninterface = \"{}\"\nips = [\"{}\"]\n",
                w.host_interface, w.ip
            ));
        }
        std::fs::write(self.dir.join("node.toml"), text).unwrap();
    }

    fn start_node(&mut self) {
        let node = NodeLaunch::file_mode(self.lab.node_netns(), NODE_BIN, &self.dir)
            .start(Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("timed out waiting for the node's control socket: {e}"));
        self.node = Some(node);
    }

    /// Waits (at most 15 s) until `ready(self)` holds.
    fn wait_for(&self, what: &str, ready: impl Fn(&Rig) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if ready(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}; log:\n{}", self.log());
    }

    fn sighup(&self) {
        assert!(self.node.as_ref().expect("node running").reload());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    fn stats(&self) -> Value {
        let node = self.node.as_ref().expect("node running");
        node.stats().expect("stats")
    }

    fn port_names(&self) -> Vec<String> {
        self.stats()["ports"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn iface(&self, i: usize) -> String {
        self.lab.workloads()[i].host_interface.clone()
    }

    fn ip(&self, i: usize) -> String {
        self.lab.workloads()[i].ip.to_string()
    }

    fn ns(&self, i: usize) -> String {
        self.lab.workloads()[i].netns.clone()
    }

    fn run(&self, ns: &str, args: &[&str]) -> std::process::Output {
        self.lab
            .exec_timeout(ns, args, Duration::from_secs(30))
            .expect("exec")
    }

    fn ping(&self, from: usize, to: &str) -> (bool, String) {
        let out = self.run(
            &self.ns(from),
            &["ping", "-c", "3", "-i", "0.2", "-W", "2", to],
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn xdp_attached(&self, dev: &str) -> bool {
        let out = self.run(
            &self.lab.node_netns(),
            &["ip", "-d", "link", "show", "dev", dev],
        );
        String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
    }

    fn node_cmd(&self, args: &[&str]) {
        let out = self.run(&self.lab.node_netns(), args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        drop(self.node.take());
        let _ = self.lab.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// "N packets transmitted, M received" from ping's summary.
fn transmitted_received(out: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no summary:\n{out}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|t| t.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

#[test]
fn workloads_attach_and_detach_on_sighup_without_disturbing_a_running_ping() {
    let rig = Rig::new("lda", 3, &[0]);
    rig.wait_for("workload 0 attached", |r| {
        r.port_names().contains(&r.iface(0))
    });
    assert!(
        !rig.xdp_attached(&rig.iface(1)),
        "workload 1 is not in node.toml yet"
    );

    // Workload 0 pings its gateway (answered by the slow path, through its port) all along.
    let background = Command::new("ip")
        .args([
            "netns",
            "exec",
            &rig.ns(0),
            "ping",
            "-c",
            "50",
            "-i",
            "0.1",
            "-W",
            "1",
            "169.254.1.1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("background ping");
    std::thread::sleep(Duration::from_millis(1000));

    rig.write_config(&[0, 1, 2]);
    rig.sighup();
    rig.wait_for("workloads 1 and 2 attached", |r| {
        let names = r.port_names();
        names.contains(&r.iface(1)) && names.contains(&r.iface(2))
    });
    for i in 1..3 {
        assert!(
            rig.xdp_attached(&rig.iface(i)),
            "workload {i} has XDP after SIGHUP"
        );
    }
    for from in 0..3 {
        for to in 0..3 {
            if from != to {
                let (ok, out) = rig.ping(from, &rig.ip(to));
                assert!(
                    ok,
                    "ping w{from} -> w{to} after the add:\n{out}\n{}",
                    rig.log()
                );
            }
        }
    }

    let out = background
        .wait_with_output()
        .expect("background ping output");
    let (sent, received) = transmitted_received(&String::from_utf8_lossy(&out.stdout));
    assert!(sent >= 40, "the background ping ran: {sent} sent");
    assert!(
        sent - received <= 2,
        "workload 0 lost {} of {sent} pings while others were added",
        sent - received
    );

    // Remove workload 2: detached, and traffic to it is answered with ICMP unreachable.
    rig.write_config(&[0, 1]);
    rig.sighup();
    rig.wait_for("workload 2 detached", |r| {
        !r.port_names().contains(&r.iface(2))
    });
    assert!(
        !rig.xdp_attached(&rig.iface(2)),
        "workload 2 still has XDP after its removal"
    );
    let (ok, out) = rig.ping(0, &rig.ip(2));
    assert!(!ok, "a removed workload must not be reachable:\n{out}");
    assert!(
        out.contains("Destination Net Unreachable"),
        "expected ICMP unreachable:\n{out}"
    );
    let (ok, out) = rig.ping(0, &rig.ip(1));
    assert!(ok, "w0 -> w1 after w2's removal:\n{out}\n{}", rig.log());
}

#[test]
fn a_missing_interface_is_reported_and_attached_once_it_appears() {
    let parked = format!("ldbx{}", std::process::id() % 100_000);
    let rig = Rig::new("ldb", 2, &[]);
    // Take workload 1's veth out of sight (as if the CNI plugin had not created it yet).
    let cali = rig.iface(1);
    rig.node_cmd(&["ip", "link", "set", "dev", &cali, "down"]);
    rig.node_cmd(&["ip", "link", "set", "dev", &cali, "name", &parked]);
    rig.write_config(&[0, 1]);
    rig.sighup();
    rig.wait_for("workload 0 attached", |r| {
        r.port_names().contains(&r.iface(0))
    });
    let stats = rig.stats();
    let failures = stats["failures"].as_array().cloned().unwrap_or_default();
    assert!(
        failures
            .iter()
            .any(|f| f["item"] == cali.as_str() && f["kind"] == "missing"),
        "the missing interface is reported: {stats}"
    );
    assert!(
        rig.log().contains(&cali),
        "the log names the missing interface:\n{}",
        rig.log()
    );
    let (ok, _) = rig.ping(0, &rig.ip(1));
    assert!(
        !ok,
        "workload 1 is not reachable while its interface is missing"
    );

    // The interface appears: the node's retry attaches it without another SIGHUP.
    rig.node_cmd(&["ip", "link", "set", "dev", &parked, "name", &cali]);
    rig.node_cmd(&["ip", "link", "set", "dev", &cali, "up"]);
    rig.wait_for("workload 1 attached after its interface appeared", |r| {
        r.port_names().contains(&r.iface(1))
    });
    assert!(
        rig.stats()["failures"]
            .as_array()
            .is_some_and(|a| a.is_empty()),
        "{}",
        rig.stats()
    );
    let (ok, out) = rig.ping(0, &rig.ip(1));
    assert!(
        ok,
        "w0 -> w1 once its interface exists:\n{out}\n{}",
        rig.log()
    );
}

/// GET `path` from `addr` inside network namespace `ns` (a thread of its own does the setns).
fn http_get_in(ns: &str, addr: &str, path: &str) -> (u16, String) {
    let (ns, addr, path) = (
        ns.to_owned(),
        addr.parse::<SocketAddr>().unwrap(),
        path.to_owned(),
    );
    std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("netns file");
        // SAFETY: setns on this thread with a valid namespace descriptor.
        assert_eq!(
            unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) },
            0,
            "setns"
        );
        control::health::get(addr, &path).expect("HTTP GET")
    })
    .join()
    .unwrap()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

#[test]
fn health_and_metrics_answer_inside_the_node_namespace() {
    let rig = Rig::new("ldc", 2, &[0, 1]);
    let ns = rig.lab.node_netns();
    rig.wait_for("readiness", |r| {
        http_get_in(&r.lab.node_netns(), "127.0.0.1:9099", "/readiness").0 == 200
    });
    assert_eq!(http_get_in(&ns, "127.0.0.1:9099", "/liveness").0, 200);
    assert_eq!(http_get_in(&ns, "127.0.0.1:9099", "/nothing").0, 404);

    let (status, before) = http_get_in(&ns, "127.0.0.1:9091", "/metrics");
    assert_eq!(status, 200);
    assert!(
        before.contains("# TYPE brindle_fastpath_forwarded_total counter"),
        "{before}"
    );
    assert!(
        before.contains("brindle_dataplane_ports{kind=\"workload\"} 2"),
        "{before}"
    );
    // Felix's metrics beside brindle's: the two workloads node.toml names are the active
    // local endpoints; a node run from a file has no datastore, so no cluster counts.
    assert!(
        before.contains("# TYPE felix_active_local_endpoints gauge"),
        "{before}"
    );
    assert_eq!(metric(&before, "felix_active_local_endpoints"), 2);
    assert!(
        before
            .lines()
            .any(|l| l.starts_with("felix_host{host=\"") && l.ends_with("\"} 1")),
        "{before}"
    );
    assert!(!before.contains("felix_cluster_num_hosts"), "{before}");
    let forwarded_before = metric(&before, "brindle_fastpath_forwarded_total");
    let (ok, out) = rig.ping(0, &rig.ip(1));
    assert!(ok, "{out}");
    // Counters are published at least every 100 ms; wait (bounded) for the pings to show.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut after = forwarded_before;
    while Instant::now() < deadline && after < forwarded_before + 4 {
        std::thread::sleep(Duration::from_millis(100));
        after = metric(
            &http_get_in(&ns, "127.0.0.1:9091", "/metrics").1,
            "brindle_fastpath_forwarded_total",
        );
    }
    assert!(
        after >= forwarded_before + 4,
        "forwarded grew from {forwarded_before} to {after} only"
    );
}
