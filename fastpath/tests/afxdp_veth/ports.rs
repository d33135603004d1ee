//! AF_XDP ports on a workload and an uplink: what the XDP program hands them and what they
//! send.

use std::net::Ipv4Addr;
use std::time::Duration;

use fastpath::port::Port;
use fastpath::xdp::XdpProgram;
use fastpath::{PortKind, XdpMode};

use crate::support::af_xdp::{collect, port_info, small_config};
use crate::support::frames::{experimental_frame, ipv4_frame, mac_of};
use crate::support::lab::{in_ns, ip, xdp_prog_id, Lab};
use crate::support::raw_socket::contains;
use crate::support::WAIT;

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
