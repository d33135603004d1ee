//! One node, three workloads, brindle forwarding everything (root: network namespaces, XDP).
//!
//! Each test builds its own lab (namespaces named after the test and this process), starts the
//! real `brindle-node` in the node namespace, drives traffic from the workloads with the real
//! ping/iperf3 and checks the node's counters through its control socket.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab::node::{NodeLaunch, NodeProcess};
use lab::{Lab, LabSpec, Offloads, WorkloadPort};
use serde_json::Value;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");

/// A lab plus a running node; both are torn down on drop.
struct Rig {
    lab: Lab,
    dir: PathBuf,
    node: Option<NodeProcess>,
}

impl Rig {
    /// `tag` is at most 3 characters; the lab name adds digits of our pid so parallel test
    /// binaries never share namespaces.
    fn new(tag: &str, workloads: usize) -> Rig {
        Rig::with_extra_config(tag, workloads, "")
    }

    fn with_extra_config(tag: &str, workloads: usize, extra: &str) -> Rig {
        Rig::build(tag, workloads, extra, Offloads::Off, WorkloadPort::Veth)
    }

    fn build(
        tag: &str,
        workloads: usize,
        extra: &str,
        offloads: Offloads,
        workload_port: WorkloadPort,
    ) -> Rig {
        let name = format!("{tag}{}", std::process::id() % 100_000);
        let spec = LabSpec {
            offloads,
            workload_port,
            ..LabSpec::new(name.clone(), workloads)
        };
        let lab = Lab::up(&spec).expect("lab up");
        let dir = std::env::temp_dir().join(format!("brindle-test-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("node.sock");
        let config = format!("{}\n{extra}", lab.node_config_toml("interrupt", &socket));
        std::fs::write(dir.join("node.toml"), config).unwrap();
        let mut rig = Rig {
            lab,
            dir,
            node: None,
        };
        rig.start_node();
        rig
    }

    fn start_node(&mut self) {
        let node = NodeLaunch::file_mode(self.lab.node_netns(), NODE_BIN, &self.dir)
            .start(Duration::from_secs(15))
            .unwrap_or_else(|e| panic!("brindle-node did not become ready: {e}"));
        self.node = Some(node);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    fn stats(&self) -> Value {
        let node = self.node.as_ref().expect("node running");
        node.stats().expect("stats")
    }

    fn signal_node(&mut self, signal: i32) -> std::process::ExitStatus {
        let mut node = self.node.take().expect("node running");
        node.signal(signal);
        node.wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("node did not exit after signal {signal}"))
    }

    fn ip(&self, i: usize) -> Ipv4Addr {
        self.lab.workloads()[i].ip
    }

    fn ns(&self, i: usize) -> String {
        self.lab.workloads()[i].netns.clone()
    }

    fn run(&self, ns: &str, args: &[&str]) -> std::process::Output {
        self.lab
            .exec_timeout(ns, args, Duration::from_secs(30))
            .expect("exec")
    }

    fn ping(&self, from: usize, to: &str, extra: &[&str]) -> (bool, String) {
        let mut args = vec!["ping", "-c", "3", "-i", "0.2", "-W", "2"];
        args.extend_from_slice(extra);
        args.push(to);
        let out = self.run(&self.ns(from), &args);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// One second of iperf3 TCP from workload `client` to workload `server` (a one-shot
    /// server on `port`); the client's output, `-J`.
    fn iperf_tcp(&self, client: usize, server: usize, port: &str) -> std::process::Output {
        self.iperf_tcp_to(&self.ns(client), &self.ns(server), self.ip(server), port)
    }

    /// [`Rig::iperf_tcp`] from namespace `client_ns` to a server in namespace `server_ns` at
    /// `server_ip`.
    fn iperf_tcp_to(
        &self,
        client_ns: &str,
        server_ns: &str,
        server_ip: Ipv4Addr,
        port: &str,
    ) -> std::process::Output {
        let port = port.parse().expect("a port number");
        lab::iperf::tcp(client_ns, server_ns, server_ip, port, 1).expect("iperf3")
    }

    fn xdp_attached(&self, dev: &str) -> bool {
        let out = self.run(
            &self.lab.node_netns(),
            &["ip", "-d", "link", "show", "dev", dev],
        );
        String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        drop(self.node.take());
        let _ = self.lab.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn counter(stats: &Value, path: &[&str]) -> u64 {
    let mut v = stats;
    for p in path {
        v = &v[*p];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("no counter {path:?} in {stats}"))
}

#[test]
fn every_pair_of_workloads_pings_and_transfers_tcp_and_counters_account_for_it() {
    let rig = Rig::new("sna", 3);
    let before = rig.stats();
    for from in 0..3 {
        for to in 0..3 {
            if from != to {
                let (ok, out) = rig.ping(from, &rig.ip(to).to_string(), &[]);
                assert!(ok, "ping w{from} -> w{to} failed:\n{out}\n{}", rig.log());
                assert!(out.contains("3 received"), "{out}");
            }
        }
    }
    let after_ping = rig.stats();
    // 6 directed pairs x 3 echo requests, each answered: at least 36 frames crossed brindle,
    // forwarded by the worker or (the first frame towards a neighbour not yet resolved) held
    // by the slow path and sent on once ARP answered.
    let crossed = |s: &Value| {
        counter(s, &["fastpath", "forwarded"]) + counter(s, &["slowpath", "held_forwarded"])
    };
    let forwarded = crossed(&after_ping) - crossed(&before);
    assert!(forwarded >= 36, "forwarded {forwarded} < 36: {after_ping}");

    for (server, client) in [(0usize, 1usize), (1, 2), (2, 0)] {
        let out = rig.iperf_tcp(client, server, "5201");
        assert!(
            out.status.success(),
            "iperf3 w{client} -> w{server}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let report: Value = serde_json::from_slice(&out.stdout).expect("iperf3 json");
        let bytes = report["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
        assert!(
            bytes > 1_000_000,
            "iperf3 w{client} -> w{server} moved only {bytes} bytes"
        );
    }

    let end = rig.stats();
    let fp = &end["fastpath"];
    let rx = counter(fp, &["rx_packets"]);
    let accounted =
        counter(fp, &["forwarded"]) + counter(fp, &["punted"]) + counter(fp, &["dropped"]);
    // Every received frame ends in exactly one bucket (failed injections are the only other
    // drops and there are none here).
    assert_eq!(rx, accounted, "rx != forwarded + punted + dropped: {fp}");
    assert!(
        counter(fp, &["forwarded"]) > 1000,
        "TCP transfers should be forwarded by brindle: {fp}"
    );
    assert!(
        counter(&end, &["slowpath", "arp_requests_answered"]) >= 1,
        "proxy ARP answered: {end}"
    );
}

/// A workload wired by hand keeps Linux's default offloads: its TCP segments leave it with
/// the checksum left to offload. brindle completes them, so TCP works and the counter says so.
#[test]
fn tcp_between_workloads_with_default_offloads_flows_and_checksums_are_completed() {
    let rig = Rig::build("sno", 2, "", Offloads::AsCreated, WorkloadPort::Veth);
    let features = rig.run(&rig.ns(0), &["ethtool", "-k", "eth0"]);
    let features = String::from_utf8_lossy(&features.stdout);
    assert!(
        features.contains("tx-checksum-ip-generic: on"),
        "the workload should keep checksum offload:\n{features}"
    );
    let out = rig.iperf_tcp(0, 1, "5202");
    let bytes = lab::iperf::received_bytes(&out);
    assert!(
        bytes > 1_000_000,
        "TCP with default offloads moved only {bytes} bytes: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        rig.log()
    );
    let fp = &rig.stats()["fastpath"];
    assert!(
        counter(fp, &["checksums_completed"]) > 100,
        "the segments' checksums were completed by brindle: {fp}"
    );
}

#[test]
fn destination_without_route_gets_icmp_net_unreachable() {
    let rig = Rig::new("snb", 2);
    let (ok, out) = rig.ping(0, "10.77.0.1", &[]);
    assert!(!ok, "ping to an unrouted address must fail");
    assert!(
        out.contains("Destination Net Unreachable"),
        "expected ICMP unreachable:\n{out}"
    );
    let stats = rig.stats();
    assert!(
        counter(&stats, &["fastpath", "drops", "no_route"]) >= 3,
        "{stats}"
    );
    assert!(
        counter(&stats, &["slowpath", "icmp_unreachable_sent"]) >= 1,
        "{stats}"
    );
}

#[test]
fn ttl_one_gets_time_exceeded() {
    let rig = Rig::new("snc", 2);
    let (ok, out) = rig.ping(0, &rig.ip(1).to_string(), &["-t", "1"]);
    assert!(!ok, "a TTL=1 ping must not arrive");
    assert!(
        out.contains("Time to live exceeded"),
        "expected ICMP time exceeded:\n{out}"
    );
    let stats = rig.stats();
    assert!(
        counter(&stats, &["fastpath", "drops", "ttl_expired"]) >= 3,
        "{stats}"
    );
    assert!(
        counter(&stats, &["slowpath", "icmp_time_exceeded_sent"]) >= 1,
        "{stats}"
    );
    // TTL 2 is enough for one hop.
    let (ok, out) = rig.ping(0, &rig.ip(1).to_string(), &["-t", "2"]);
    assert!(ok, "TTL=2 crosses one router:\n{out}");
}

#[test]
fn forwarding_resumes_after_sigkill_and_restart_and_host_networking_survives() {
    let mut rig = Rig::new("snd", 2);
    let target = rig.ip(1).to_string();
    assert!(rig.ping(0, &target, &[]).0, "before the kill");
    rig.signal_node(libc::SIGKILL);
    // The crashed node's XDP program stays attached but has no sockets: traffic falls back to
    // the kernel, so the node's own networking on the uplink keeps working.
    let uplink = rig.lab.uplink().expect("lab has an uplink").clone();
    let out = rig.run(
        &rig.lab.node_netns(),
        &[
            "ping",
            "-c",
            "2",
            "-i",
            "0.2",
            "-W",
            "2",
            &uplink.ext_ip.to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "node -> ext over the uplink after the crash: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    rig.start_node();
    let (ok, out) = rig.ping(0, &target, &[]);
    assert!(ok, "after restart:\n{out}\n{}", rig.log());
    // And the restarted node stops cleanly, detaching from every interface.
    let status = rig.signal_node(libc::SIGTERM);
    assert!(
        status.success(),
        "SIGTERM exit status {status:?}\n{}",
        rig.log()
    );
    for w in rig.lab.workloads() {
        assert!(
            !rig.xdp_attached(&w.host_interface),
            "{} still has XDP after SIGTERM",
            w.host_interface
        );
    }
    assert!(
        !rig.xdp_attached(&uplink.node_interface),
        "uplink still has XDP after SIGTERM"
    );
}

#[test]
fn node_traffic_on_the_uplink_stays_with_the_kernel_while_brindle_runs() {
    let rig = Rig::new("sne", 1);
    let uplink = rig.lab.uplink().expect("uplink").clone();
    assert!(rig.xdp_attached(&uplink.node_interface));
    let out = rig.run(
        &rig.lab.node_netns(),
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
    );
    assert!(
        out.status.success(),
        "node -> ext: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Those echo replies were not addressed to a pool, so brindle never saw them.
    let stats = rig.stats();
    assert_eq!(counter(&stats, &["fastpath", "forwarded"]), 0, "{stats}");
}

#[test]
fn static_route_through_the_uplink_gateway_reaches_outside_and_back() {
    // The ext namespace routes the pool back through the node, so replies come in on the
    // uplink, where the XDP program hands pool-bound traffic to brindle. The gateway's MAC
    // comes from the kernel's neighbour table (the kernel keeps owning ARP on the uplink).
    let rig = Rig::with_extra_config(
        "sng",
        1,
        "[[route]]\nprefix = \"10.99.0.0/24\"\nvia = \"10.99.0.2\"\n",
    );
    let ext_ip = rig.lab.uplink().expect("uplink").ext_ip.to_string();
    let (ok, out) = rig.ping(0, &ext_ip, &[]);
    assert!(
        ok,
        "workload -> ext through the uplink:\n{out}\n{}",
        rig.log()
    );
    let stats = rig.stats();
    let crossed = counter(&stats, &["fastpath", "forwarded"])
        + counter(&stats, &["slowpath", "held_forwarded"]);
    assert!(crossed >= 6, "3 requests out and 3 replies in: {stats}");
}

#[test]
fn an_hw_table_tunes_the_uplink_and_a_bad_one_is_refused_with_the_field_named() {
    let route = "[[route]]\nprefix = \"10.99.0.0/24\"\nvia = \"10.99.0.2\"\n";
    let mut rig = Rig::with_extra_config(
        "snh",
        1,
        &format!("{route}[hw]\nrx_ring_size = 512\nbatch_size = 16\n"),
    );
    let ext_ip = rig.lab.uplink().expect("uplink").ext_ip.to_string();
    let (ok, out) = rig.ping(0, &ext_ip, &[]);
    assert!(
        ok,
        "forwarding through the tuned uplink:\n{out}\n{}",
        rig.log()
    );
    let log = rig.log();
    let line = log
        .lines()
        .find(|l| l.contains("uplink NIC profile"))
        .unwrap_or_default();
    assert!(
        line.contains("veth") && line.contains("512") && line.contains("16"),
        "{log}"
    );

    rig.signal_node(libc::SIGTERM);
    let config = rig.dir.join("node.toml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("batch_size = 16", "batch_size = 16\ncolour = \"blue\"");
    std::fs::write(&config, text).unwrap();
    let out = rig.run(
        &rig.lab.node_netns(),
        &[NODE_BIN, "--config", &config.to_string_lossy()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("colour"),
        "an unknown [hw] field must be refused by name: {stderr}"
    );
}

/// Sets the MTU of workload `i`'s veth, both ends.
fn set_workload_mtu(lab: &Lab, i: usize, mtu: u32) {
    let w = &lab.workloads()[i];
    let mtu = mtu.to_string();
    for (ns, dev) in [
        (lab.node_netns(), w.host_interface.clone()),
        (w.netns.clone(), "eth0".to_owned()),
    ] {
        let out = lab
            .exec(&ns, &["ip", "link", "set", "dev", &dev, "mtu", &mtu])
            .unwrap();
        assert!(
            out.status.success(),
            "set mtu {mtu} on {dev}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn large_mtu_workloads_forward_full_sized_packets() {
    let mut rig = Rig::new("snh", 2);
    rig.signal_node(libc::SIGTERM);
    for i in 0..2 {
        set_workload_mtu(&rig.lab, i, 3000);
    }
    rig.start_node();
    // 2972 bytes of ICMP data + 28 of headers = a 3000-byte packet, DF set: it only arrives
    // if the AF_XDP frames were sized for the MTU.
    let (ok, out) = rig.ping(0, &rig.ip(1).to_string(), &["-s", "2972", "-M", "do"]);
    assert!(ok, "3000-byte packets across:\n{out}\n{}", rig.log());
}

#[test]
fn an_mtu_no_frame_can_hold_is_refused_with_the_interface_named() {
    let mut rig = Rig::new("sni", 1);
    rig.signal_node(libc::SIGTERM);
    set_workload_mtu(&rig.lab, 0, 9000);
    let out = rig.run(
        &rig.lab.node_netns(),
        &[
            NODE_BIN,
            "--config",
            &rig.dir.join("node.toml").to_string_lossy(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the node must refuse to start");
    let cali = &rig.lab.workloads()[0].host_interface;
    assert!(
        stderr.contains(cali.as_str()) && stderr.contains("MTU 9000"),
        "{stderr}"
    );
}

mod malformed {
    //! Frames written raw into a workload's eth0 with an AF_PACKET socket.
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    fn enter_netns(name: &str) {
        let f = std::fs::File::open(format!("/var/run/netns/{name}")).expect("netns file");
        // SAFETY: setns on this thread with a valid namespace descriptor.
        assert_eq!(
            unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) },
            0,
            "setns"
        );
    }

    fn send_raw(ns: &str, frames: Vec<Vec<u8>>) {
        let ns = ns.to_owned();
        // A fresh thread so that setns does not move the test's own thread.
        std::thread::spawn(move || {
            enter_netns(&ns);
            // SAFETY: creating a socket; checked below.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
            assert!(fd >= 0, "AF_PACKET socket");
            // SAFETY: fd is ours.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let ifindex = unsafe { libc::if_nametoindex(c"eth0".as_ptr()) };
            assert!(ifindex > 0);
            for frame in frames {
                // SAFETY: zeroed sockaddr_ll is valid; we set the fields send needs.
                let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                addr.sll_family = libc::AF_PACKET as u16;
                addr.sll_ifindex = ifindex as i32;
                addr.sll_halen = 6;
                let n = unsafe {
                    libc::sendto(
                        fd.as_raw_fd(),
                        frame.as_ptr() as *const libc::c_void,
                        frame.len(),
                        0,
                        &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    )
                };
                assert_eq!(n, frame.len() as isize, "sendto");
            }
        })
        .join()
        .unwrap();
    }

    fn checksum(bytes: &[u8]) -> u16 {
        let mut sum = 0u32;
        for chunk in bytes.chunks(2) {
            sum += u32::from(u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// A valid Ethernet + IPv4 + UDP frame from `src` to `dst`.
    fn udp_frame(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
        let mut f = vec![
            0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00,
        ];
        let payload = [0u8; 18];
        let total = 20 + 8 + payload.len();
        let mut ip = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            17,
            0,
            0,
        ];
        ip.extend_from_slice(&src.octets());
        ip.extend_from_slice(&dst.octets());
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x30, 0x39, 0x30, 0x39, 0, 26, 0, 0]);
        f.extend_from_slice(&payload);
        f
    }

    #[test]
    fn malformed_frames_are_dropped_by_reason_and_forwarding_goes_on() {
        let rig = Rig::new("snf", 2);
        let (src, dst) = (rig.ip(0), rig.ip(1));
        let good = udp_frame(src, dst);
        let mut frames = Vec::new();
        // Truncated Ethernet can't be sent (AF_PACKET pads to 14); start at truncated IPv4.
        frames.push(good[..14 + 10].to_vec()); // bad_ipv4_header: truncated header
        let mut bad_ihl = good.clone();
        bad_ihl[14] = 0x43; // IHL 3
        frames.push(bad_ihl);
        let mut big_ihl = good.clone();
        big_ihl[14] = 0x4f; // IHL 15 = 60 bytes, past the 46-byte datagram
        frames.push(big_ihl);
        let mut v6 = good.clone();
        v6[14] = 0x65; // version 6 in an IPv4 frame
        frames.push(v6);
        let mut too_long = good.clone();
        too_long[16..18].copy_from_slice(&1400u16.to_be_bytes()); // bad_ipv4_length
        frames.push(too_long);
        let mut too_short = good.clone();
        too_short[16..18].copy_from_slice(&12u16.to_be_bytes()); // bad_ipv4_length
        frames.push(too_short);
        let mut bad_sum = good.clone();
        bad_sum[24] ^= 0xff; // bad_ipv4_checksum
        frames.push(bad_sum);
        let mut ipv6 = good.clone();
        ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes()); // unsupported_ethertype
        frames.push(ipv6);
        // Random garbage behind valid Ethernet headers: whatever it is, nothing may crash.
        let mut seed = 0x1234_5678u32;
        for len in [15usize, 20, 33, 34, 60, 200, 1000] {
            let mut f = good[..14].to_vec();
            for _ in 14..len {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                f.push(seed as u8);
            }
            frames.push(f);
        }
        // The workloads' ports are served once a ping gets through (before that, frames on
        // the veth would go to the kernel, not to the vRouter).
        let (ok, out) = rig.ping(0, &dst.to_string(), &[]);
        assert!(
            ok,
            "forwarding before malformed frames:\n{out}\n{}",
            rig.log()
        );
        let before = rig.stats();
        send_raw(&rig.ns(0), frames);
        // Wait (bounded) for the worker to publish what it saw.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut after = rig.stats();
        while Instant::now() < deadline
            && counter(&after, &["fastpath", "drops", "bad_ipv4_checksum"]) == 0
        {
            std::thread::sleep(Duration::from_millis(100));
            after = rig.stats();
        }
        let delta = |reason: &str| {
            counter(&after, &["fastpath", "drops", reason])
                - counter(&before, &["fastpath", "drops", reason])
        };
        assert!(
            delta("bad_ipv4_header") >= 4,
            "truncated, IHL 3, IHL 15, version 6: {after}"
        );
        assert!(
            delta("bad_ipv4_length") >= 2,
            "total length too long and too short: {after}"
        );
        assert!(delta("bad_ipv4_checksum") >= 1, "{after}");
        assert!(delta("unsupported_ethertype") >= 1, "{after}");
        // The node survived and still forwards.
        let (ok, out) = rig.ping(0, &dst.to_string(), &[]);
        assert!(
            ok,
            "forwarding after malformed frames:\n{out}\n{}",
            rig.log()
        );
        assert_eq!(
            counter(&rig.stats(), &["fastpath", "drops", "bad_ethernet"]),
            0
        );
    }
}

#[test]
fn tap_workloads_carry_whole_tcp_segments_reach_the_node_and_keep_their_interface_across_a_restart()
{
    // Outside is reached through the uplink's gateway (file mode routes what it is told).
    let mut rig = Rig::build(
        "stp",
        2,
        "[[route]]\nprefix = \"10.99.0.0/24\"\nvia = \"10.99.0.2\"\n",
        Offloads::AsCreated,
        WorkloadPort::Tap,
    );
    let target = rig.ip(1).to_string();
    assert!(
        rig.ping(0, &target, &[]).0,
        "ping between TAP workloads\n{}",
        rig.log()
    );

    // Pod to pod: the workloads' kernels hand over whole TSO segments, which cross once.
    let out = rig.iperf_tcp(0, 1, "5204");
    let bytes = lab::iperf::received_bytes(&out);
    assert!(
        bytes > 1_000_000,
        "TCP between TAP workloads moved {bytes} bytes\n{}",
        rig.log()
    );
    let fp = rig.stats()["fastpath"].clone();
    let (rx_bytes, rx_packets) = (counter(&fp, &["rx_bytes"]), counter(&fp, &["rx_packets"]));
    assert!(
        counter(&fp, &["gso_received"]) > 10 && rx_bytes / rx_packets > 3000,
        "segments larger than the MTU crossed whole: {fp}"
    );
    assert_eq!(counter(&fp, &["dropped"]), 0, "{fp}");

    // Pod to node: the node's stack is behind a TAP too (`host_port = "tap"`), so the
    // segments reach it whole.
    let uplink = rig.lab.uplink().expect("lab has an uplink").clone();
    let tcp = |client: &str, server: &str, ip: Ipv4Addr, port: &str| {
        let out = rig.iperf_tcp_to(client, server, ip, port);
        let bytes = lab::iperf::received_bytes(&out);
        assert!(
            bytes > 1_000_000,
            "TCP {client} -> {ip} moved {bytes} bytes\n{}",
            rig.log()
        );
        rig.stats()["fastpath"].clone()
    };
    let before = counter(&rig.stats()["fastpath"], &["gso_received"]);
    let fp = tcp(&rig.ns(0), &rig.lab.node_netns(), uplink.node_ip, "5205");
    assert!(counter(&fp, &["gso_received"]) > before + 10, "{fp}");

    // Out of the uplink (AF_XDP: packets of at most the MTU) the worker cuts them.
    let fp = tcp(&rig.ns(0), &uplink.ext_netns, uplink.ext_ip, "5206");
    assert!(counter(&fp, &["gso_cut"]) > 100, "{fp}");

    // In from the uplink, a batch's segments of the flow are joined before they are written
    // to the workload.
    let fp = tcp(&uplink.ext_netns, &rig.ns(0), rig.ip(0), "5207");
    assert!(counter(&fp, &["gro_merged"]) > 100, "{fp}");
    assert_eq!(counter(&fp, &["dropped"]), 0, "{fp}");

    // A flood of small datagrams outruns a worker that reads one frame per syscall: what the
    // TAP's queue dropped is counted, so every datagram sent is accounted for.
    let before = rig.stats()["fastpath"].clone();
    let mut server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &rig.ns(1),
            "iperf3",
            "-s",
            "-1",
            "-p",
            "5208",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let target = rig.ip(1).to_string();
    let out = rig.run(
        &rig.ns(0),
        &[
            "iperf3", "-c", &target, "-p", "5208", "-u", "-b", "0", "-l", "64", "-t", "1", "-J",
        ],
    );
    let _ = server.kill();
    let _ = server.wait();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let sent = report["end"]["sum"]["packets"].as_u64().unwrap_or(0);
    // The worker reads the TAP's drop count every 100 ms and its queue may still hold frames
    // when the client exits: wait (boundedly) until the counts settle.
    let deadline = Instant::now() + Duration::from_secs(3);
    let (mut read, mut queue_full, mut after) = (0, 0, Value::Null);
    while Instant::now() < deadline {
        after = rig.stats()["fastpath"].clone();
        let delta = |path: &[&str]| counter(&after, path) - counter(&before, path);
        (read, queue_full) = (delta(&["rx_packets"]), delta(&["socket", "tap_queue_full"]));
        if read + queue_full >= sent {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        sent > 10_000 && queue_full > 0 && read + queue_full >= sent,
        "sent {sent}, read by the worker {read}, dropped in the TAP's queue {queue_full}: {after}"
    );

    // The TAP is the workload's own: it keeps it, with its address, while the node is away.
    let status = rig.signal_node(libc::SIGTERM);
    assert!(
        status.success(),
        "SIGTERM exit status {status:?}\n{}",
        rig.log()
    );
    let addr = rig.run(
        &rig.ns(0),
        &["ip", "-4", "-o", "addr", "show", "dev", "eth0"],
    );
    let addr = String::from_utf8_lossy(&addr.stdout);
    assert!(addr.contains(&format!("{}/32", rig.ip(0))), "{addr}");
    rig.start_node();
    let (ok, out) = rig.ping(0, &target, &[]);
    assert!(ok, "after restart:\n{out}\n{}", rig.log());
}
