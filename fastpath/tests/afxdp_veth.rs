//! The XDP program, AF_XDP ports and workers on real veth pairs (needs root, as CI has).
//!
//! Every test builds its own pair of network namespaces: `node` holds the interfaces the XDP
//! program is attached to, `far` holds their veth peers and plays the workload or the rest of
//! the network. The test thread enters `node` with setns(2) (threads it spawns inherit it), and
//! frames are sent and captured on the far side with AF_PACKET sockets opened inside `far`
//! (a socket stays in the namespace it was created in).

use std::ffi::CString;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use fastpath::port::{Port, PortConfig};
use fastpath::punt::{punt_path, PuntConfig};
use fastpath::worker::{spawn, WorkerSpec};
use fastpath::xdp::XdpProgram;
use fastpath::{MacAddr, PortInfo, PortKind, PuntReason, RxMode, Tables, WorkerCounters, XdpMode};

const WAIT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------------------------
// Namespaces and commands

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn in_ns(ns: &str, cmd: &[&str]) -> std::process::Output {
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
struct Lab {
    node: String,
    far: String,
    /// More namespaces a test added (deleted with the lab).
    extra: std::cell::RefCell<Vec<String>>,
    home: std::fs::File,
}

impl Lab {
    fn new(test: &str) -> Lab {
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
    fn add_ns(&self, suffix: &str) -> String {
        let ns = format!("{}-{suffix}", self.node.trim_end_matches("-n"));
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        ip(&["netns", "add", &ns]);
        self.extra.borrow_mut().push(ns.clone());
        quiet_ns(&ns);
        ns
    }

    /// Adds veth `node_if` (in node) <-> `far_if` (in far), both up, offloads off on the far
    /// side so that frames reach AF_XDP with complete checksums.
    fn veth(&self, node_if: &str, far_if: &str) {
        self.veth_to(&self.far, node_if, far_if);
    }

    fn veth_to(&self, ns: &str, node_if: &str, far_if: &str) {
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

    fn enter_node(&self) {
        setns(&format!("/var/run/netns/{}", self.node));
    }

    /// Opens an AF_PACKET socket on `far_if` inside the far namespace.
    fn far_socket(&self, far_if: &str) -> RawSocket {
        setns(&format!("/var/run/netns/{}", self.far));
        let s = RawSocket::open(far_if);
        self.enter_node();
        s
    }

    fn ifindex(&self, node_if: &str) -> u32 {
        let name = CString::new(node_if).unwrap();
        // SAFETY: NUL-terminated name; the thread is in the node namespace.
        let i = unsafe { libc::if_nametoindex(name.as_ptr()) };
        assert!(i > 0, "{node_if} not found in the node namespace");
        i
    }

    /// `ip -j link show` of a node interface (the JSON has an "xdp" object while a program is
    /// attached).
    fn link_json(&self, node_if: &str) -> String {
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

fn xdp_prog_id(json: &str) -> Option<u32> {
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

// ---------------------------------------------------------------------------------------------
// AF_PACKET on the far side

struct RawSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl RawSocket {
    fn open(ifname: &str) -> RawSocket {
        let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
        // SAFETY: plain socket(2).
        let fd =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let name = CString::new(ifname).unwrap();
        // SAFETY: NUL-terminated name.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
        assert!(ifindex > 0, "{ifname} not found");
        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto as u16;
        sll.sll_ifindex = ifindex;
        // SAFETY: sll is a valid sockaddr_ll of the given size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(r, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
        RawSocket { fd, ifindex }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: valid buffer and address.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(
            r,
            frame.len() as isize,
            "AF_PACKET send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Waits up to WAIT for a frame (received, not one we sent) containing `marker`.
    fn wait_for(&self, marker: &[u8]) -> Option<Vec<u8>> {
        let deadline = Instant::now() + WAIT;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
                continue;
            }
            // SAFETY: sockaddr_ll is plain old data.
            let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: valid buffer and address buffer.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    &mut sll as *mut _ as *mut libc::sockaddr,
                    &mut len,
                )
            };
            if n <= 0 || sll.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            let frame = &buf[..n as usize];
            if contains(frame, marker) {
                return Some(frame.to_vec());
            }
        }
        None
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Frames

const FAR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0xfa, 0x01];

/// An Ethernet frame with a local experimental EtherType (IEEE 802 0x88B5) carrying `marker`.
fn experimental_frame(marker: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&FAR_MAC);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend_from_slice(marker);
    f.resize(f.len().max(60), 0);
    f
}

/// An IPv4 frame (protocol `proto`, UDP-shaped payload) to `dst`, carrying `marker`.
fn ipv4_frame(dst_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, proto: u8, marker: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&FAR_MAC);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + 8 + marker.len();
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let mut sum = 0u32;
    for c in ip.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    // UDP header 40000 -> 40001, no checksum (allowed over IPv4, RFC 768).
    f.extend_from_slice(&[0x9c, 0x40, 0x9c, 0x41]);
    f.extend_from_slice(&((8 + marker.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(marker);
    f
}

/// An ARP request (RFC 826) from the far side: who has `target`? tell `sender`.
fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&FAR_MAC);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f.extend_from_slice(&FAR_MAC);
    f.extend_from_slice(&sender.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f.resize(60, 0);
    f
}

fn mac_of(ns: &str, ifname: &str) -> [u8; 6] {
    let out = ip(&["-n", ns, "-br", "link", "show", "dev", ifname]);
    let mac: MacAddr = out
        .split_whitespace()
        .nth(2)
        .expect("MAC column")
        .parse()
        .expect("MAC");
    mac.0
}

// ---------------------------------------------------------------------------------------------
// AF_XDP helpers

fn port_info(name: &str, ifindex: u32, kind: PortKind) -> PortInfo {
    PortInfo {
        name: name.into(),
        ifindex,
        kind,
        mac: MacAddr::CALICO_HOST_SIDE,
        ip: Ipv4Addr::new(169, 254, 1, 1),
        mtu: 1500,
        policy: None,
    }
}

fn small_config() -> PortConfig {
    PortConfig {
        frames: 256,
        ring_size: 128,
        batch_size: 32,
        ..PortConfig::default()
    }
}

/// Receives on `port` for up to `wait`, returning copies of every frame seen.
fn collect(port: &mut Port, wait: Duration, stop_at: impl Fn(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut seen = Vec::new();
    while Instant::now() < deadline && seen.len() < 10_000 {
        let n = port.receive();
        for i in 0..n {
            seen.push(port.received_frame(i).to_vec());
        }
        port.release_received();
        if stop_at(&seen) {
            break;
        }
        if n == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    seen
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn workload_port_delivers_every_frame_to_the_socket_and_transmits_to_the_far_side() {
    let lab = Lab::new("wl");
    lab.veth("cali0", "eth0");
    let far = lab.far_socket("eth0");
    lab.enter_node();
    let ifindex = lab.ifindex("cali0");

    let prog = XdpProgram::load().expect("load XDP program");
    let attachment = prog
        .attach(ifindex, PortKind::Workload, 1, 0)
        .expect("attach");
    assert_eq!(
        attachment.mode(),
        XdpMode::Native,
        "veth supports native XDP"
    );
    assert_eq!(xdp_prog_id(&lab.link_json("cali0")), Some(prog.id()));
    let mut port = Port::open(
        0,
        &port_info("cali0", ifindex, PortKind::Workload),
        0,
        &small_config(),
        &prog,
        0,
    )
    .expect("open port");

    // Far side -> socket: a frame no kernel stack would care about still arrives.
    let marker = b"brindle-h3-rx-marker";
    far.send(&experimental_frame(marker));
    let seen = collect(&mut port, WAIT, |s| s.iter().any(|f| contains(f, marker)));
    assert!(
        seen.iter().any(|f| contains(f, marker)),
        "frame from the far side did not reach AF_XDP ({} others)",
        seen.len()
    );

    // Socket -> far side.
    let marker = b"brindle-h3-tx-marker";
    assert!(port.transmit(&experimental_frame(marker)));
    port.flush();
    assert!(
        far.wait_for(marker).is_some(),
        "frame transmitted on the port did not reach the far side"
    );

    drop(port);
    drop(attachment);
}

#[test]
fn uplink_port_takes_pool_and_ipip_traffic_and_leaves_the_rest_to_the_kernel() {
    let lab = Lab::new("up");
    lab.veth("uplink0", "eth0");
    ip(&[
        "-n",
        &lab.node,
        "addr",
        "add",
        "10.77.0.1/24",
        "dev",
        "uplink0",
    ]);
    ip(&["-n", &lab.far, "addr", "add", "10.77.0.2/24", "dev", "eth0"]);
    let far = lab.far_socket("eth0");
    lab.enter_node();
    let ifindex = lab.ifindex("uplink0");
    let uplink_mac = mac_of(&lab.node, "uplink0");

    let prog = XdpProgram::load().expect("load XDP program");
    prog.set_pool_cidrs(&[(Ipv4Addr::new(192, 168, 0, 0), 16)])
        .unwrap();
    let _attachment = prog
        .attach(ifindex, PortKind::Uplink, 1, 7)
        .expect("attach");
    let mut port = Port::open(
        0,
        &port_info("uplink0", ifindex, PortKind::Uplink),
        0,
        &small_config(),
        &prog,
        7,
    )
    .expect("open port");

    let far_ip = Ipv4Addr::new(10, 77, 0, 2);
    let to_pool = b"h3-to-pool-192.168.3.4";
    let ipip = b"h3-ipip-to-the-node";
    let outside = b"h3-udp-outside-pools";
    far.send(&ipv4_frame(
        uplink_mac,
        far_ip,
        Ipv4Addr::new(192, 168, 3, 4),
        17,
        to_pool,
    ));
    far.send(&ipv4_frame(
        uplink_mac,
        far_ip,
        Ipv4Addr::new(10, 77, 0, 1),
        4,
        ipip,
    ));
    far.send(&ipv4_frame(
        uplink_mac,
        far_ip,
        Ipv4Addr::new(10, 77, 0, 1),
        17,
        outside,
    ));
    let seen = collect(&mut port, WAIT, |s| {
        s.iter().any(|f| contains(f, to_pool)) && s.iter().any(|f| contains(f, ipip))
    });
    assert!(
        seen.iter().any(|f| contains(f, to_pool)),
        "pool-addressed frame did not reach AF_XDP"
    );
    assert!(
        seen.iter().any(|f| contains(f, ipip)),
        "IPIP frame did not reach AF_XDP"
    );

    // The node's own traffic (ARP, ICMP to its address) still works through the kernel.
    let out = in_ns(
        &lab.far,
        &["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.77.0.1"],
    );
    assert!(
        out.status.success(),
        "ping to the uplink's own address failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let late = collect(&mut port, Duration::from_millis(300), |_| false);
    let leaked: Vec<_> = seen
        .iter()
        .chain(late.iter())
        .filter(|f| {
            f.len() >= 14
                && (f[12..14] == [0x08, 0x06]
                    || contains(f, outside)
                    || (f.len() > 23 && f[12..14] == [0x08, 0] && f[23] == 1))
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "ARP, ICMP or non-pool UDP reached AF_XDP: {} frames",
        leaked.len()
    );
}

#[test]
fn dropping_the_attachment_detaches_the_program() {
    let lab = Lab::new("det");
    lab.veth("cali1", "eth0");
    lab.enter_node();
    let ifindex = lab.ifindex("cali1");
    let prog = XdpProgram::load().expect("load XDP program");
    let attachment = prog
        .attach(ifindex, PortKind::Workload, 1, 0)
        .expect("attach");
    assert_eq!(xdp_prog_id(&lab.link_json("cali1")), Some(prog.id()));
    drop(attachment);
    let json = lab.link_json("cali1");
    assert!(
        !json.contains("\"xdp\""),
        "XDP program still attached after drop: {json}"
    );
}

#[test]
fn attaching_replaces_a_leftover_program_and_a_stale_attachment_leaves_it_alone() {
    let lab = Lab::new("rep");
    lab.veth("cali2", "eth0");
    lab.enter_node();
    let ifindex = lab.ifindex("cali2");

    // A previous run that crashed: its program stays attached.
    let crashed = XdpProgram::load().expect("load XDP program");
    let leftover = crashed
        .attach(ifindex, PortKind::Workload, 1, 0)
        .expect("attach");
    let stale = crashed
        .attach(ifindex, PortKind::Workload, 1, 0)
        .expect("attach again, same program");
    std::mem::forget(leftover);

    let fresh = XdpProgram::load().expect("load XDP program again");
    assert_ne!(fresh.id(), crashed.id());
    let attachment = fresh
        .attach(ifindex, PortKind::Workload, 1, 0)
        .expect("attach over the leftover");
    assert_eq!(xdp_prog_id(&lab.link_json("cali2")), Some(fresh.id()));

    // The old run's attachment must not detach the program that replaced it.
    drop(stale);
    assert_eq!(xdp_prog_id(&lab.link_json("cali2")), Some(fresh.id()));
    drop(attachment);
    assert_eq!(xdp_prog_id(&lab.link_json("cali2")), None);
}

#[test]
fn without_a_socket_workload_traffic_falls_back_to_the_kernel() {
    let lab = Lab::new("fb");
    lab.veth("cali3", "eth0");
    ip(&[
        "-n",
        &lab.node,
        "addr",
        "add",
        "10.78.0.1/24",
        "dev",
        "cali3",
    ]);
    ip(&["-n", &lab.far, "addr", "add", "10.78.0.2/24", "dev", "eth0"]);
    lab.enter_node();
    let ifindex = lab.ifindex("cali3");
    let prog = XdpProgram::load().expect("load XDP program");
    let _attachment = prog
        .attach(ifindex, PortKind::Workload, 1, 0)
        .expect("attach");
    // No socket registered in slot 0: a crashed node must not black-hole the interface.
    let out = in_ns(&lab.far, &["ping", "-c", "1", "-W", "2", "10.78.0.1"]);
    assert!(
        out.status.success(),
        "ping failed with no socket in the slot: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn worker_punts_arp_to_the_slow_path_and_sends_injected_frames_out_of_the_named_port() {
    let lab = Lab::new("inj");
    lab.veth("cali4", "eth0");
    lab.veth("cali5", "eth1");
    let far0 = lab.far_socket("eth0");
    let far1 = lab.far_socket("eth1");
    lab.enter_node();
    let prog = XdpProgram::load().expect("load XDP program");
    let mut attachments = Vec::new();
    let mut ports = Vec::new();
    for (id, name) in ["cali4", "cali5"].iter().enumerate() {
        let ifindex = lab.ifindex(name);
        attachments.push(
            prog.attach(ifindex, PortKind::Workload, 1, id as u32)
                .expect("attach"),
        );
        ports.push(
            Port::open(
                id as u16,
                &port_info(name, ifindex, PortKind::Workload),
                0,
                &small_config(),
                &prog,
                id as u32,
            )
            .expect("open port"),
        );
    }
    let (worker_end, slowpath) = punt_path(PuntConfig::default()).unwrap();
    let counters = Arc::new(WorkerCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let handle = spawn(WorkerSpec {
        name: "h3-inject".into(),
        mode: RxMode::Interrupt,
        core: None,
        ports,
        tables: Arc::new(ArcSwap::from_pointee(Tables::default())),
        ip_sets: fastpath::classifier::IpSetsWriter::new().reader(),
        flows: fastpath::conntrack::FlowTableConfig::with_capacity(1024),
        punt: worker_end,
        counters: counters.clone(),
        stop: stop.clone(),
    })
    .unwrap();

    // A workload asks for its gateway: the ARP request must reach the slow path, tagged with
    // the port it came in on.
    let request = arp_request(Ipv4Addr::new(10, 66, 0, 9), Ipv4Addr::new(169, 254, 1, 1));
    far0.send(&request);
    let punted = slowpath.recv_timeout(WAIT).expect("worker alive");

    let marker = b"h3-injected-by-the-slow-path";
    assert!(slowpath.inject(1, &experimental_frame(marker)));
    let got = far1.wait_for(marker);
    // Waits for the next publish (at most ~100 ms in interrupt mode).
    let deadline = Instant::now() + WAIT;
    while counters.snapshot().injected == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    handle.join().expect("worker panicked");

    let punted = punted.expect("the ARP request was not punted");
    assert_eq!((punted.port, punted.reason), (0, Some(PuntReason::Arp)));
    assert_eq!(&punted.data()[..request.len()], &request[..]);
    assert!(got.is_some(), "injected frame did not leave port 1");
    let c = counters.snapshot();
    assert_eq!((c.rx_packets, c.punted), (1, 1), "{c:?}");
    assert_eq!((c.injected, c.tx_packets), (1, 1), "{c:?}");
    drop(attachments);
}

/// Wires a workload namespace the way Calico does: `/32` on eth0, 169.254.1.1 as the on-link
/// gateway. The gateway's MAC (the host side's ee:ee:ee:ee:ee:ee) is a static neighbour here
/// because no slow path runs to answer ARP; the fastpath alone carries the traffic.
fn calico_workload(ns: &str, addr: Ipv4Addr) {
    ip(&[
        "-n",
        ns,
        "addr",
        "add",
        &format!("{addr}/32"),
        "dev",
        "eth0",
    ]);
    ip(&[
        "-n",
        ns,
        "route",
        "add",
        "169.254.1.1",
        "dev",
        "eth0",
        "scope",
        "link",
    ]);
    ip(&[
        "-n",
        ns,
        "route",
        "add",
        "default",
        "via",
        "169.254.1.1",
        "dev",
        "eth0",
    ]);
    ip(&[
        "-n",
        ns,
        "neigh",
        "add",
        "169.254.1.1",
        "lladdr",
        "ee:ee:ee:ee:ee:ee",
        "dev",
        "eth0",
        "nud",
        "permanent",
    ]);
}

fn ping_across_workloads_through_the_worker(mode: RxMode, test: &str) {
    use fastpath::{Fib, NextHop, NextHopKind};

    let lab = Lab::new(test);
    let wa = lab.far.clone();
    let wb = lab.add_ns("b");
    lab.veth_to(&wa, "calia", "eth0");
    lab.veth_to(&wb, "calib", "eth0");
    let (a, b) = (Ipv4Addr::new(10, 66, 0, 1), Ipv4Addr::new(10, 66, 0, 2));
    calico_workload(&wa, a);
    calico_workload(&wb, b);
    lab.enter_node();

    let prog = XdpProgram::load().expect("load XDP program");
    let mut attachments = Vec::new();
    let mut ports = Vec::new();
    let mut infos = Vec::new();
    for (id, name) in ["calia", "calib"].iter().enumerate() {
        let ifindex = lab.ifindex(name);
        let info = port_info(name, ifindex, PortKind::Workload);
        attachments.push(
            prog.attach(ifindex, PortKind::Workload, 1, id as u32)
                .expect("attach"),
        );
        ports.push(
            Port::open(id as u16, &info, 0, &small_config(), &prog, id as u32).expect("open port"),
        );
        infos.push(info);
    }
    let mut fib = Fib::new();
    fib.insert(a, 32, 0).unwrap();
    fib.insert(b, 32, 1).unwrap();
    let next_hops = vec![
        NextHop::new(NextHopKind::Neighbor, 0, a),
        NextHop::new(NextHopKind::Neighbor, 1, b),
    ];
    next_hops[0].set_mac(Some(MacAddr(mac_of(&wa, "eth0"))));
    next_hops[1].set_mac(Some(MacAddr(mac_of(&wb, "eth0"))));
    let tables = Tables {
        fib,
        next_hops,
        ports: infos,
        snat: None,
        host: None,
    };

    let (worker_end, _slowpath) = punt_path(PuntConfig::default()).unwrap();
    let counters = Arc::new(WorkerCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let handle = spawn(WorkerSpec {
        name: format!("h3-{test}"),
        mode,
        core: None,
        ports,
        tables: Arc::new(ArcSwap::from_pointee(tables)),
        ip_sets: fastpath::classifier::IpSetsWriter::new().reader(),
        flows: fastpath::conntrack::FlowTableConfig::with_capacity(1024),
        punt: worker_end,
        counters: counters.clone(),
        stop: stop.clone(),
    })
    .unwrap();

    let out = in_ns(
        &wa,
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", &b.to_string()],
    );
    std::thread::sleep(Duration::from_millis(250)); // one publish interval
    stop.store(true, Ordering::Relaxed);
    handle.join().expect("worker panicked");
    assert!(
        out.status.success(),
        "ping {a} -> {b} through the worker failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let c = counters.snapshot();
    assert!(
        c.forwarded >= 6,
        "3 echo requests and 3 replies should be forwarded: {c:?}"
    );
    assert_eq!(
        c.tx_packets, c.forwarded,
        "every forwarded frame was transmitted: {c:?}"
    );
    assert_eq!(
        c.rx_packets,
        c.forwarded + c.punted + c.total_drops(),
        "{c:?}"
    );
    drop(attachments);
}

#[test]
fn ping_crosses_two_workload_ports_through_a_polling_worker() {
    ping_across_workloads_through_the_worker(RxMode::Poll, "pingp");
}

#[test]
fn ping_crosses_two_workload_ports_through_an_interrupt_worker() {
    ping_across_workloads_through_the_worker(RxMode::Interrupt, "pingi");
}

#[test]
fn attaching_natively_replaces_a_leftover_generic_program() {
    let lab = Lab::new("gen");
    lab.veth("cali6", "eth0");
    // A leftover in generic mode (e.g. from a run on a driver without native XDP, or another
    // tool): the kernel refuses a native program beside it, so attach must remove it.
    let object = concat!(env!("OUT_DIR"), "/brindle_xdp.o");
    let out = in_ns(
        &lab.node,
        &[
            "ip",
            "link",
            "set",
            "dev",
            "cali6",
            "xdpgeneric",
            "obj",
            object,
            "sec",
            "xdp",
        ],
    );
    assert!(
        out.status.success(),
        "ip link set xdpgeneric: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(lab.link_json("cali6").contains("\"xdp\""));
    lab.enter_node();
    let prog = XdpProgram::load().expect("load XDP program");
    let attachment = prog
        .attach(lab.ifindex("cali6"), PortKind::Workload, 1, 0)
        .expect("attach over generic");
    assert_eq!(attachment.mode(), XdpMode::Native);
    let text = ip(&["-n", &lab.node, "-d", "link", "show", "dev", "cali6"]);
    assert!(
        !text.contains("xdpgeneric"),
        "generic leftover still attached: {text}"
    );
    assert_eq!(xdp_prog_id(&lab.link_json("cali6")), Some(prog.id()));
    drop(attachment);
    assert_eq!(xdp_prog_id(&lab.link_json("cali6")), None);
}
