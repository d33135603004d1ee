//! Namespaces and commands: the lab a test runs in.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::process::Command;

use super::raw_socket::RawSocket;

pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn in_ns(ns: &str, cmd: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(cmd)
        .output()
        .expect("run ip netns exec")
}

/// Loopback up, and no IPv6 chatter (router solicitations, MLD) on the test links: the tests
/// count exactly what they send.
fn quiet_ns(ns: &str) {
    ip(&["-n", ns, "link", "set", "lo", "up"]);
    for key in [
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
    ] {
        let out = in_ns(ns, &["sysctl", "-qw", key]);
        assert!(
            out.status.success(),
            "sysctl {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn setns(ns_path: &str) {
    let f = std::fs::File::open(ns_path).unwrap_or_else(|e| panic!("open {ns_path}: {e}"));
    // SAFETY: a valid namespace descriptor; affects only the calling thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns {ns_path}: {}", std::io::Error::last_os_error());
}

/// Two namespaces joined by veth pairs; the test thread sits in `node` until drop.
pub struct Lab {
    pub node: String,
    pub far: String,
    /// More namespaces a test added (deleted with the lab).
    extra: std::cell::RefCell<Vec<String>>,
    home: std::fs::File,
}

impl Lab {
    pub fn new(test: &str) -> Lab {
        let pid = std::process::id();
        let node = format!("h3x-{test}-{pid}-n");
        let far = format!("h3x-{test}-{pid}-f");
        // Leftovers of an earlier run with the same pid (unlikely) would fail `add`.
        for ns in [&node, &far] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            ip(&["netns", "add", ns]);
        }
        let home = std::fs::File::open("/proc/thread-self/ns/net").expect("own netns");
        for ns in [&node, &far] {
            quiet_ns(ns);
        }
        Lab {
            node,
            far,
            extra: Default::default(),
            home,
        }
    }

    /// Adds another namespace `<prefix>-<suffix>`, deleted with the lab.
    pub fn add_ns(&self, suffix: &str) -> String {
        let ns = format!("{}-{suffix}", self.node.trim_end_matches("-n"));
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        ip(&["netns", "add", &ns]);
        self.extra.borrow_mut().push(ns.clone());
        quiet_ns(&ns);
        ns
    }

    /// Adds veth `node_if` (in node) <-> `far_if` (in far), both up, offloads off on the far
    /// side so that frames reach AF_XDP with complete checksums.
    pub fn veth(&self, node_if: &str, far_if: &str) {
        self.veth_to(&self.far, node_if, far_if);
    }

    pub fn veth_to(&self, ns: &str, node_if: &str, far_if: &str) {
        ip(&[
            "-n", &self.node, "link", "add", node_if, "type", "veth", "peer", "name", far_if,
            "netns", ns,
        ]);
        ip(&["-n", &self.node, "link", "set", node_if, "up"]);
        ip(&["-n", ns, "link", "set", far_if, "up"]);
        let out = in_ns(
            ns,
            &[
                "ethtool", "-K", far_if, "tx", "off", "tso", "off", "gso", "off",
            ],
        );
        assert!(
            out.status.success(),
            "ethtool: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn enter_node(&self) {
        setns(&format!("/var/run/netns/{}", self.node));
    }

    /// Opens an AF_PACKET socket on `far_if` inside the far namespace.
    pub fn far_socket(&self, far_if: &str) -> RawSocket {
        setns(&format!("/var/run/netns/{}", self.far));
        let s = RawSocket::open(far_if);
        self.enter_node();
        s
    }

    pub fn ifindex(&self, node_if: &str) -> u32 {
        let name = CString::new(node_if).unwrap();
        // SAFETY: NUL-terminated name; the thread is in the node namespace.
        let i = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert!(i > 0, "{node_if} not found in the node namespace");
        i
    }

    /// `ip -j link show` of a node interface (the JSON has an "xdp" object while a program is
    /// attached).
    pub fn link_json(&self, node_if: &str) -> String {
        ip(&["-n", &self.node, "-j", "-d", "link", "show", "dev", node_if])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // SAFETY: returns this thread to the namespace it started in.
        unsafe { libc::setns(self.home.as_raw_fd(), libc::CLONE_NEWNET) };
        for ns in [&self.node, &self.far]
            .into_iter()
            .chain(self.extra.borrow().iter())
        {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

pub fn xdp_prog_id(json: &str) -> Option<u32> {
    // `"xdp":{"mode":1,"prog":{"id":123,...` -- the first "id" after "xdp".
    let at = json.find("\"xdp\"")?;
    let rest = &json[at..];
    let id_at = rest.find("\"id\":")? + 5;
    rest[id_at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}
