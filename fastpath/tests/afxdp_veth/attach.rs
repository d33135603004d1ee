//! Attaching and detaching the XDP program: leftovers of earlier runs are replaced, an
//! interface without a socket still works through the kernel.

use fastpath::xdp::XdpProgram;
use fastpath::{PortKind, XdpMode};

use crate::support::lab::{in_ns, ip, xdp_prog_id, Lab};

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
