//! containerd 1.6 with `ctr run --cni` driving brindle-cni: ctr reads the first network
//! configuration in /etc/cni/net.d and the plugins in /opt/cni/bin (and /usr/lib/cni), so the
//! sandbox mounts this test's directories there; `ctr run --rm` in the foreground runs DEL
//! when the task ends.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::support::*;

const NAMESPACE: &str = "brindle";

/// containerd with its own root, state and socket, inside a node's sandbox.
struct Containerd<'a> {
    node: &'a Node,
    sandbox: Sandbox,
    daemon: Child,
    socket: PathBuf,
}

impl<'a> Containerd<'a> {
    fn start(node: &'a Node) -> Containerd<'a> {
        let root = node.dir.join("containerd");
        let conf_dir = root.join("net.d");
        std::fs::create_dir_all(&conf_dir).unwrap();
        std::fs::write(
            conf_dir.join("10-brindle.conflist"),
            node.conflist("brindle", &[]).to_string(),
        )
        .unwrap();
        let socket = root.join("containerd.sock");
        let config = format!(
            "version = 2\nroot = \"{r}/root\"\nstate = \"{r}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{s}\"\n[ttrpc]\n  address = \"{s}.ttrpc\"\n",
            r = root.display(),
            s = socket.display(),
        );
        std::fs::write(root.join("config.toml"), config).unwrap();
        let setup = format!(
            "mount --bind {conf} /etc/cni/net.d
            mount -t tmpfs tmpfs /opt
            mkdir -p /opt/cni/bin
            mount --bind {bin} /opt/cni/bin",
            conf = conf_dir.display(),
            bin = node.plugin_dir().display(),
        );
        let sandbox = Sandbox::new(node, &setup);
        let mut command = sandbox.command("containerd");
        command
            .arg("--config")
            .arg(root.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("containerd.log")).unwrap());
        let daemon = command.spawn().unwrap();
        let containerd = Containerd {
            node,
            sandbox,
            daemon,
            socket,
        };
        assert!(
            eventually(Duration::from_secs(20), || containerd.socket.exists()),
            "containerd did not start: {}",
            std::fs::read_to_string(root.join("containerd.log")).unwrap_or_default()
        );
        containerd
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let mut command = self.sandbox.command("ctr");
        command
            .arg("--address")
            .arg(&self.socket)
            .args(["--namespace", NAMESPACE])
            .args(args);
        command
    }

    /// `ctr run --rm --cni` of `id` on its own busybox rootfs running `argv`.
    fn run(&self, id: &str, argv: &[&str]) -> Command {
        let rootfs = self.node.dir.join(format!("rootfs-{id}"));
        busybox_rootfs(&rootfs);
        let rootfs = rootfs.display().to_string();
        let mut args = vec!["run", "--rm", "--cni", "--rootfs", &rootfs, id];
        args.extend_from_slice(argv);
        self.ctr(&args)
    }
}

impl Drop for Containerd<'_> {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the daemon this test started (nsenter execs it in place).
        unsafe { libc::kill(self.daemon.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.daemon.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

pub fn ctr_run_cni_containers_get_addresses_reach_each_other_and_release_them_with_the_task() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::start("ctr");
    let containerd = Containerd::start(&node);
    // ctr names the CNI container `<namespace>-<id>`.
    let (cid1, cid2) = (format!("{NAMESPACE}-c1"), format!("{NAMESPACE}-c2"));

    let mut first = containerd.run("c1", &["/bin/sleep", "120"]);
    first.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut first = first.spawn().unwrap();
    let endpoint = |cid: &str| node.endpoints().into_iter().find(|e| e.0 == cid);
    assert!(
        eventually(Duration::from_secs(60), || endpoint(&cid1).is_some()),
        "ctr run c1 never attached"
    );
    let (_, host_if1, ip1) = endpoint(&cid1).unwrap();
    assert!(node.has_interface(&host_if1));

    // The second container pings the first through the vRouter and shows its own address.
    let script = format!(
        "/bin/ip -4 -o addr show eth0; i=0; while [ $i -lt 20 ]; do \
         /bin/ping -c 1 -W 1 {ip1} >/dev/null && echo reached && exit 0; i=$((i+1)); done; exit 1"
    );
    let out = run(containerd.run("c2", &["/bin/sh", "-c", &script]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("reached"),
        "c2 -> c1: {stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        node.log()
    );
    let ip2 = stdout
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .expect("c2's address");
    assert_ne!(ip1, ip2);
    // `ctr run --rm` returned: DEL ran.
    assert!(endpoint(&cid2).is_none(), "c2's endpoint outlived its task");
    let held = |cid: &str| {
        node.allocations()
            .iter()
            .any(|(_, h)| h.as_deref().is_some_and(|h| h.ends_with(cid)))
    };
    assert!(!held(&cid2), "c2's address was not released");
    assert!(held(&cid1));

    run_ok(containerd.ctr(&["task", "kill", "-s", "SIGKILL", "c1"]));
    let deadline = Instant::now() + Duration::from_secs(30);
    while first.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "ctr run c1 did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(endpoint(&cid1).is_none(), "c1's endpoint outlived its task");
    assert!(!held(&cid1), "c1's address was not released");
    assert!(!node.has_interface(&host_if1));
}
