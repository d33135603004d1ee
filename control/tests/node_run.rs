//! `brindlectl node run` starting a real brindle-node, detached with a pid file and a log (PID
//! 1 here is not systemd), inside a lab's node namespace, against a real etcd in that
//! namespace or the embedded store; then `node status`, the node's registration, the default
//! pool, a refused second start, and a stop by the pid file's pid.
//! Root: network namespaces, XDP, etcd.

use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use lab::etcd::EtcdMemberSpec;
use lab::{Lab, LabSpec};
use serde_json::Value;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");

/// The node's namespace, a directory for its files, and the etcd (if any) it uses.
struct Host {
    lab: Lab,
    dir: PathBuf,
    config: PathBuf,
    etcd: Option<Child>,
}

impl Host {
    fn new(tag: &str, etcd: bool) -> Host {
        // `node run` leaves the node to whoever adopts orphans: make that this test process,
        // so that it can reap the node it stops (and no zombie outlives the test).
        // SAFETY: prctl with integer arguments only.
        assert_eq!(
            unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
            0
        );
        let name = format!("{tag}{}", std::process::id() % 100_000);
        let lab = Lab::up(&LabSpec::new(name.clone(), 0)).expect("lab up");
        let dir = std::env::temp_dir().join(format!("brindle-node-run-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("brindlectl.cfg");
        let (spec, etcd) = if etcd {
            let client = "http://127.0.0.1:23790";
            let member = EtcdMemberSpec::single(
                lab.node_netns(),
                "m0",
                dir.join("etcd"),
                client,
                "http://127.0.0.1:23800",
                dir.join("etcd.log"),
            )
            .spawn()
            .expect("start etcd");
            (
                format!("  datastoreType: etcdv3\n  etcdEndpoints: {client}\n"),
                Some(member),
            )
        } else {
            (
                format!(
                    "  datastoreType: embedded\n  embeddedPath: {}\n",
                    dir.join("store.redb").display()
                ),
                None,
            )
        };
        std::fs::write(
            &config,
            format!(
                "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n{spec}"
            ),
        )
        .unwrap();
        Host {
            lab,
            dir,
            config,
            etcd,
        }
    }

    fn name(&self) -> String {
        format!("node-{}", self.lab.spec().name)
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("run/brindle-node.pid")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("node.sock")
    }

    /// brindlectl in the node's namespace with the host's config file. Only the variables
    /// below reach it (and through it the node): the test's own environment stays out.
    fn brindlectl(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.lab.node_netns()])
            .arg(testkit::workspace_bin("brindlectl"))
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("BRINDLE_CONTROL_SOCKET", self.socket())
            .env("BRINDLE_TAP_DIR", self.dir.join("taps"))
            .env("CALICO_IPV4POOL_IPIP", "Never")
            .output()
            .unwrap()
    }

    /// `node run` with the test's pid file and log directory, plus `args`.
    fn node_run(&self, args: &[&str]) -> Output {
        let pid_file = self.pid_file().display().to_string();
        let log_dir = self.dir.join("log").display().to_string();
        let mut all = vec![
            "node",
            "run",
            "--pid-file",
            &pid_file,
            "--log-dir",
            &log_dir,
        ];
        all.extend_from_slice(args);
        self.brindlectl(&all)
    }

    fn status(&self) -> Output {
        let pid_file = self.pid_file().display().to_string();
        let socket = self.socket().display().to_string();
        self.brindlectl(&[
            "node",
            "status",
            "--pid-file",
            &pid_file,
            "--control-socket",
            &socket,
        ])
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/brindle-node.log")).unwrap_or_default()
    }

    fn get_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        let out = self.brindlectl(&all);
        assert!(
            out.status.success(),
            "brindlectl {all:?}: {}",
            text(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(self.pid_file())
            .expect("pid file")
            .trim()
            .parse()
            .expect("a pid in the pid file")
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // A node left running by a failed assertion: stop it by the pid it wrote.
        if let Some(pid) = std::fs::read_to_string(self.pid_file())
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            stop(pid);
        }
        if let Some(mut etcd) = self.etcd.take() {
            let _ = etcd.kill();
            let _ = etcd.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// SIGTERM to `pid` (an orphan this process adopted), then reaps it; SIGKILL after 10 s.
/// Returns whether it was this process's child to reap.
fn stop(pid: i32) -> bool {
    // SAFETY: signals and waitpid on one pid, the node's.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut status = 0;
        match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
            0 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            0 => {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                unsafe { libc::waitpid(pid, &mut status, 0) };
                return true;
            }
            p => return p == pid,
        }
    }
}

/// Waits (up to `timeout`) until `node status` exits with `code`.
fn wait_status(host: &Host, code: i32, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        let out = host.status();
        if out.status.code() == Some(code) || Instant::now() >= deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Until the node's zombie is reaped it is no running node: `node status` must say so.
fn stop_by_pid_file_and_check_status(host: &Host) {
    let pid = host.pid();
    // SIGTERM only: the node exits; until `stop` reaps it, it is a zombie.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = wait_status(host, 1, Duration::from_secs(15));
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(1), "Calico process is not running.\n".to_string()),
        "node status after SIGTERM to {pid}; log:\n{}",
        host.log()
    );
    assert!(
        stop(pid),
        "the node (pid {pid}) was adopted and reaped by this test"
    );
    std::fs::remove_file(host.pid_file()).unwrap();
}

fn assert_running(host: &Host) {
    let out = wait_status(host, 0, Duration::from_secs(30));
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("Calico process is running.\n"),
        "node status: {stdout}{}; log:\n{}",
        text(&out.stderr),
        host.log()
    );
    assert!(stdout.contains("IPv4 BGP status"), "{stdout}");
}

fn node_spec(host: &Host) -> Value {
    host.get_json(&["node", &host.name()])["spec"].clone()
}

fn pool_cidrs(host: &Host) -> Vec<String> {
    host.get_json(&["ippools"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["spec"]["cidr"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn node_run_starts_the_node_with_calicoctl_flags_against_etcd() {
    let host = Host::new("nre", true);
    // brindle-node is found next to brindlectl (both are in the workspace's target dir).
    let out = host.node_run(&[
        "--name",
        &host.name(),
        "--as",
        "64513",
        "--ip",
        "10.99.0.1/24",
    ]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "node run: {stdout}{}; log:\n{}",
        text(&out.stderr),
        host.log()
    );
    let pid = host.pid();
    assert!(
        stdout.contains(&format!("brindle-node started (pid {pid}).")),
        "{stdout}"
    );
    assert!(
        stdout.contains("ETCD_ENDPOINTS=http://127.0.0.1:23790"),
        "{stdout}"
    );
    assert_running(&host);

    // The node registered itself as the flags said, and made the default pool.
    let spec = node_spec(&host);
    assert_eq!(spec["bgp"]["ipv4Address"], "10.99.0.1/24", "{spec}");
    assert_eq!(spec["bgp"]["asNumber"], 64513, "{spec}");
    assert_eq!(pool_cidrs(&host), ["192.168.0.0/16"]);

    // A second node on this host is refused while the first one lives.
    let again = host.node_run(&["--name", &host.name()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains(&format!("brindle-node is already running (pid {pid}")),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(host.pid(), pid, "the pid file is left alone");

    stop_by_pid_file_and_check_status(&host);
}

#[test]
fn node_run_without_default_pools_on_the_embedded_store() {
    let host = Host::new("nrm", false);
    let out = host.node_run(&[
        "--name",
        &host.name(),
        "--ip",
        "autodetect",
        "--ip-autodetection-method",
        "interface=nomatch.*,eth0",
        "--no-default-ippools",
        "--node-binary",
        NODE_BIN,
    ]);
    assert!(
        out.status.success(),
        "node run: {}{}; log:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        host.log()
    );
    assert_running(&host);
    // The address autodetected on eth0, with its subnet; no pool created.
    let spec = node_spec(&host);
    assert_eq!(spec["bgp"]["ipv4Address"], "10.99.0.1/24", "{spec}");
    assert!(spec["bgp"].get("asNumber").is_none(), "{spec}");
    assert!(pool_cidrs(&host).is_empty());
    assert!(
        host.log().contains(&host.name()),
        "the node logs to the log file"
    );

    stop_by_pid_file_and_check_status(&host);
    // A method brindle-node does not have is refused before anything starts.
    let out = host.node_run(&[
        "--name",
        &host.name(),
        "--ip-autodetection-method",
        "skip-interface=eth1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("skip-interface is not supported by brindle-node"),
        "{}",
        text(&out.stderr)
    );
}
