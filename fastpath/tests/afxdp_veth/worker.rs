//! Workers on real ports: punting to the slow path, injecting from it, and forwarding a ping
//! between two workloads.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use fastpath::port::Port;
use fastpath::punt::{punt_path, PuntConfig, WorkerEnd};
use fastpath::worker::{spawn, WorkerSpec};
use fastpath::xdp::XdpProgram;
use fastpath::{MacAddr, PortKind, PuntReason, RxMode, Tables, WorkerCounters};

use crate::support::af_xdp::{port_info, small_config};
use crate::support::frames::{arp_request, experimental_frame, mac_of};
use crate::support::lab::{in_ns, ip, Lab};
use crate::support::WAIT;

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
    let (handle, counters, stop) = start_worker(
        "h3-inject",
        RxMode::Interrupt,
        ports,
        Tables::default(),
        worker_end,
    );

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

/// A worker thread as a node starts one, on `ports` and `tables`: its handle, the counters it
/// publishes and the flag that stops it.
fn start_worker(
    name: impl Into<String>,
    mode: RxMode,
    ports: Vec<Port>,
    tables: Tables,
    punt: WorkerEnd,
) -> (JoinHandle<()>, Arc<WorkerCounters>, Arc<AtomicBool>) {
    let counters = Arc::new(WorkerCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let handle = spawn(WorkerSpec {
        name: name.into(),
        mode,
        core: None,
        ports,
        tables: Arc::new(ArcSwap::from_pointee(tables)),
        ip_sets: fastpath::classifier::IpSetsWriter::new().reader(),
        flows: fastpath::conntrack::FlowTableConfig::with_capacity(1024),
        flow_file: None,
        punt,
        counters: counters.clone(),
        stop: stop.clone(),
    })
    .unwrap();
    (handle, counters, stop)
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
        floating: Default::default(),
        host: None,
    };

    let (worker_end, _slowpath) = punt_path(PuntConfig::default()).unwrap();
    let (handle, counters, stop) =
        start_worker(format!("h3-{test}"), mode, ports, tables, worker_end);

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

/// Frames the kernel cannot put on a socket's RX ring (the worker behind, the ring full) never
/// reach the pipeline: the worker reads the socket's XDP_STATISTICS and publishes them, so
/// that every frame sent is either received or counted as lost in the socket.
#[test]
fn frames_lost_in_a_full_socket_ring_are_counted() {
    const SENT: u64 = 1000;
    let lab = Lab::new("xst");
    lab.veth("cali6", "eth0");
    let far = lab.far_socket("eth0");
    lab.enter_node();
    let prog = XdpProgram::load().expect("load XDP program");
    let ifindex = lab.ifindex("cali6");
    let attachment = prog
        .attach(ifindex, PortKind::Workload, 1, 0)
        .expect("attach");
    let port = Port::open(
        0,
        &port_info("cali6", ifindex, PortKind::Workload),
        0,
        &small_config(),
        &prog,
        0,
    )
    .expect("open port");

    // Nobody reads the socket yet: past its ring (128) and fill ring, the kernel drops. Paced,
    // so that the veth itself never overflows and every loss is the socket's.
    let frame = experimental_frame(b"xdp-statistics");
    for i in 0..SENT {
        far.send(&frame);
        if i % 16 == 15 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    let (worker_end, _slowpath) = punt_path(PuntConfig::default()).unwrap();
    let (handle, counters, stop) = start_worker(
        "xdp-statistics",
        RxMode::Interrupt,
        vec![port],
        Tables::default(),
        worker_end,
    );
    let deadline = Instant::now() + WAIT;
    let accounted = |c: &fastpath::PipelineCounters| c.rx_packets + c.socket.lost();
    while accounted(&counters.snapshot()) < SENT && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    handle.join().expect("worker panicked");
    drop(attachment);

    let c = counters.snapshot();
    assert!(c.socket.lost() > 0, "nothing was lost: {c:?}");
    assert!(c.rx_packets > 0 && c.rx_packets < SENT, "{c:?}");
    assert_eq!(
        accounted(&c),
        SENT,
        "every frame sent is received or counted lost: {c:?}"
    );
}
