//! podman 4 with its CNI backend driving brindle-cni, as a user on a brindle node runs it:
//! `podman network ls` finds the conflist, `podman run --network` attaches, `--ip` asks for an
//! address, `podman rm` detaches; the reference plugins chain after brindle-cni.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use super::support::*;

/// podman's configuration of its own (containers.conf, storage.conf), a network directory and
/// an image imported from a busybox rootfs, run inside a node's sandbox.
struct Podman<'a> {
    node: &'a Node,
    sandbox: Sandbox,
    conf_dir: PathBuf,
}

const IMAGE: &str = "localhost/brindle-busybox";

impl<'a> Podman<'a> {
    fn new(node: &'a Node) -> Podman<'a> {
        let root = node.dir.join("podman");
        let conf_dir = root.join("net.d");
        std::fs::create_dir_all(&conf_dir).unwrap();
        let containers_conf = format!(
            r#"[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{root}/events.log"
tmp_dir = "{root}/tmp"

[network]
network_backend = "cni"
network_config_dir = "{conf}"
cni_plugin_dirs = ["{bin}", "/usr/lib/cni"]
"#,
            root = root.display(),
            conf = conf_dir.display(),
            bin = node.plugin_dir().display(),
        );
        let storage_conf = format!(
            "[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/graph\"\nrunroot = \"{0}/run\"\n",
            root.display()
        );
        std::fs::write(root.join("containers.conf"), containers_conf).unwrap();
        std::fs::write(root.join("storage.conf"), storage_conf).unwrap();
        let podman = Podman {
            node,
            sandbox: Sandbox::new(node, ""),
            conf_dir,
        };
        let rootfs = node.dir.join("rootfs");
        busybox_rootfs(&rootfs);
        let tar = node.dir.join("rootfs.tar");
        let mut pack = Command::new("tar");
        pack.arg("-C").arg(&rootfs).arg("-cf").arg(&tar).arg(".");
        run_ok(pack);
        podman.ok(&["import", &tar.display().to_string(), IMAGE]);
        podman
    }

    fn command(&self, args: &[&str]) -> Command {
        let root = self.node.dir.join("podman");
        let mut command = self.sandbox.command("podman");
        command
            .env("CONTAINERS_CONF", root.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", root.join("storage.conf"))
            .args(args);
        command
    }

    fn ok(&self, args: &[&str]) -> String {
        run_ok(self.command(args))
    }

    fn network(&self, conflist: &Value) {
        let name = conflist["name"].as_str().unwrap().to_owned();
        std::fs::write(
            self.conf_dir.join(format!("{name}.conflist")),
            conflist.to_string(),
        )
        .unwrap();
    }

    /// `podman run -d` of a container sleeping on `network`; its full id.
    fn run(&self, name: &str, network: &str, extra: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--name", name, "--network", network];
        args.extend_from_slice(&["--cap-add", "NET_RAW"]);
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "/bin/sleep", "600"]);
        self.ok(&args).trim().to_owned()
    }

    /// The address podman reports for container `name` on `network`.
    fn address(&self, name: &str, network: &str) -> String {
        let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        self.ok(&["inspect", "--format", &format, name])
            .trim()
            .to_owned()
    }

    fn exec(&self, name: &str, args: &[&str]) -> std::process::Output {
        let mut full = vec!["exec", name];
        full.extend_from_slice(args);
        run(self.command(&full))
    }

    fn pings(&self, from: &str, to: &str) -> bool {
        eventually(Duration::from_secs(20), || {
            self.exec(from, &["/bin/ping", "-c", "1", "-W", "1", to])
                .status
                .success()
        })
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        // Containers first (their DEL runs in the sandbox), then podman's store.
        let _ = run(self.command(&["rm", "-f", "-a", "-t", "0"]));
        let _ = run(self.command(&["system", "reset", "-f"]));
    }
}

pub fn podman_containers_get_addresses_reach_each_other_and_release_them_on_rm() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::start("pod");
    let podman = Podman::new(&node);
    podman.network(&node.conflist("brindle", &[]));
    let networks = podman.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(networks.contains("brindle brindle-cni"), "{networks}");

    let id1 = podman.run("c1", "brindle", &[]);
    // An address of the node's default pool that the first container did not get.
    let ip1 = podman.address("c1", "brindle");
    let wanted = if ip1.ends_with(".50") {
        "192.168.77.51"
    } else {
        "192.168.77.50"
    };
    let id2 = podman.run("c2", "brindle", &["--ip", wanted]);
    assert_eq!(podman.address("c2", "brindle"), wanted, "podman --ip");

    let endpoints = node.endpoints();
    let ep1 = endpoints
        .iter()
        .find(|e| e.0 == id1)
        .expect("c1's endpoint");
    let ep2 = endpoints
        .iter()
        .find(|e| e.0 == id2)
        .expect("c2's endpoint");
    assert_eq!(ep1.2.to_string(), ip1, "podman and the endpoint agree");
    assert_eq!(ep2.2.to_string(), wanted);
    assert!(node.has_interface(&ep1.1) && node.has_interface(&ep2.1));

    assert!(
        podman.pings("c1", wanted),
        "c1 -> c2 through the vRouter\n{}",
        node.log()
    );
    assert!(podman.pings("c2", &ip1), "c2 -> c1");

    podman.ok(&["rm", "-f", "-t", "0", "c1", "c2"]);
    let endpoints = node.endpoints();
    assert!(
        !endpoints.iter().any(|e| e.0 == id1 || e.0 == id2),
        "podman rm left endpoints: {endpoints:?}"
    );
    let allocations = node.allocations();
    assert!(
        !allocations.iter().any(|(_, h)| h
            .as_deref()
            .is_some_and(|h| h.contains(&id1) || h.contains(&id2))),
        "podman rm left addresses: {allocations:?}"
    );
    assert!(!node.has_interface(&ep1.1) && !node.has_interface(&ep2.1));
}

/// The reference `tuning` plugin after brindle-cni: the container's interface gets the MTU and
/// the sysctl it sets, and the workloads still reach each other.
pub fn podman_chains_the_reference_tuning_plugin_after_brindle_cni() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let node = Node::start("tun");
    let podman = Podman::new(&node);
    let tuning = json!({
        "type": "tuning",
        "mtu": 1280,
        "sysctl": {"net.ipv4.conf.eth0.log_martians": "1"},
    });
    podman.network(&node.conflist("tuned", &[tuning]));
    podman.run("t1", "tuned", &[]);
    podman.run("t2", "tuned", &[]);
    let link = podman.exec("t1", &["/bin/ip", "link", "show", "eth0"]);
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(link.contains("mtu 1280"), "tuning's MTU: {link}");
    let sysctl = podman.exec(
        "t1",
        &["/bin/cat", "/proc/sys/net/ipv4/conf/eth0/log_martians"],
    );
    assert_eq!(
        String::from_utf8_lossy(&sysctl.stdout).trim(),
        "1",
        "tuning's sysctl"
    );
    let ip = podman.address("t2", "tuned");
    assert!(podman.pings("t1", &ip), "t1 -> t2\n{}", node.log());
    podman.ok(&["rm", "-f", "-t", "0", "t1", "t2"]);
    assert!(node.endpoints().is_empty(), "{:?}", node.endpoints());
}
