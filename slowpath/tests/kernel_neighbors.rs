//! `ProcNetArp` against a real kernel: two network namespaces joined by a veth pair.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use fastpath::{MacAddr, PortInfo, PortKind};
use slowpath::{KernelNeighbors, ProcNetArp};

/// Two namespaces named after this test and process, deleted (with their veth) on drop.
struct Lab {
    ours: String,
    theirs: String,
}

const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const THEIR_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const THEIR_MAC: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x77, 0x00, 0x02]);
const OUR_IF: &str = "spkn-up";
const THEIR_IF: &str = "spkn-gw";

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("run ip");
    assert!(status.success(), "ip {}", args.join(" "));
}

impl Lab {
    fn new() -> Lab {
        let pid = std::process::id();
        let lab = Lab {
            ours: format!("slowpath-kn-{pid}-a"),
            theirs: format!("slowpath-kn-{pid}-b"),
        };
        ip(&["netns", "add", &lab.ours]);
        ip(&["netns", "add", &lab.theirs]);
        ip(&[
            "link",
            "add",
            OUR_IF,
            "netns",
            &lab.ours,
            "type",
            "veth",
            "peer",
            "name",
            THEIR_IF,
            "netns",
            &lab.theirs,
        ]);
        ip(&[
            "-n",
            &lab.theirs,
            "link",
            "set",
            THEIR_IF,
            "address",
            &THEIR_MAC.to_string(),
        ]);
        ip(&[
            "-n",
            &lab.ours,
            "addr",
            "add",
            "10.77.0.1/24",
            "dev",
            OUR_IF,
        ]);
        ip(&[
            "-n",
            &lab.theirs,
            "addr",
            "add",
            "10.77.0.2/24",
            "dev",
            THEIR_IF,
        ]);
        for (ns, dev) in [(&lab.ours, OUR_IF), (&lab.theirs, THEIR_IF)] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.ours, &self.theirs] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Moves the calling thread (only) into the namespace `name`.
fn enter_netns(name: &str) {
    let file = std::fs::File::open(format!("/run/netns/{name}")).expect("open netns");
    // SAFETY: setns on a valid namespace descriptor; it affects only this thread.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

#[test]
fn the_kernel_resolves_a_solicited_uplink_neighbor() {
    let lab = Lab::new();
    let ours = lab.ours.clone();
    let found = std::thread::spawn(move || {
        enter_netns(&ours);
        let port = PortInfo {
            name: OUR_IF.into(),
            ifindex: 0,
            kind: PortKind::Uplink,
            mac: MacAddr([0x02, 0, 0, 0x77, 0, 0x01]),
            ip: OUR_IP,
            mtu: 1500,
            policy: None,
            qos: None,
        };
        let mut kernel = ProcNetArp::new();
        assert_eq!(
            kernel.lookup(&port, THEIR_IP).unwrap(),
            None,
            "nothing resolved before we ask"
        );
        kernel.solicit(&port, THEIR_IP).unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            if let Some(mac) = kernel.lookup(&port, THEIR_IP).unwrap() {
                return Some(mac);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    })
    .join()
    .unwrap();
    assert_eq!(found, Some(THEIR_MAC));
    drop(lab);
}
