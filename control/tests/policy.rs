//! Network policy end to end on one agent node (ARCHITECTURE.md scenarios 2 and 3): networks are
//! isolated by their profiles; a policy lets `net2`, and only it, reach `web` on TCP 80; a
//! policy change affects new connections while an established one keeps working; a workload
//! sending from an address not its own is dropped. Root: network namespaces, XDP.

mod cluster;

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

use cluster::{
    connects, drop_count, eventually, pings, spawn_in, Cluster, ECHO_SERVER, PEER_CLIENT,
    PEER_SERVER,
};

/// A client that connects, exchanges a byte, says `connected`, waits for `go_file` to exist,
/// exchanges another byte on the same connection and says `still connected`.
const LONG_CLIENT: &str = "
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b'1'); assert s.recv(1) == b'1'
print('connected', flush=True)
deadline = time.time() + 30
while not os.path.exists(sys.argv[3]) and time.time() < deadline: time.sleep(0.05)
s.sendall(b'2'); assert s.recv(1) == b'2'
print('still connected', flush=True)
";

const ALLOW_NET2_TO_WEB: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: net2-to-web
spec:
  selector: has(web)
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: has(net2)
    destination:
      ports: [80]
";

#[test]
fn networks_are_isolated_and_only_net2_reaches_web_on_tcp_80() {
    let mut cluster = Cluster::up("pa", "Never", 1, 0);
    let (a1, _) = cluster.add_container(1, "net1");
    let (_, a2_ip) = cluster.add_container(1, "net1");
    let (b1, b1_ip) = cluster.add_container(1, "net2");
    let (web, web_ip) = cluster.add_container(1, "web");

    // Every workload attached (a workload not attached yet would be silent for another reason).
    let workload_ports = |c: &Cluster| {
        c.stats(1)["ports"].as_array().map_or(0, |ports| {
            ports.iter().filter(|p| p["kind"] == "workload").count()
        })
    };
    assert!(
        eventually(Duration::from_secs(15), || workload_ports(&cluster) == 4),
        "{}",
        cluster.logs()
    );

    // Scenario 2: within a network, everything; across networks, nothing.
    assert!(
        eventually(Duration::from_secs(15), || pings(&a1, a2_ip)),
        "net1 -> net1\n{}",
        cluster.logs()
    );
    let denied_before = drop_count(&cluster.stats(1), "policy_denied");
    assert!(!pings(&a1, b1_ip), "net1 -> net2 must be dropped");
    assert!(!pings(&b1, a2_ip), "net2 -> net1 must be dropped");
    assert!(
        drop_count(&cluster.stats(1), "policy_denied") >= denied_before + 2,
        "{}",
        cluster.stats(1)
    );

    // Scenario 3: web serves TCP 80 (and 81); a policy opens 80 to net2 only.
    for port in ["80", "81"] {
        // Killed with the cluster.
        let server = spawn_in(&web, &["python3", "-c", ECHO_SERVER, port]);
        cluster.daemons.push(server);
    }
    assert!(
        !connects(&b1, web_ip, 80),
        "before the policy the web profile admits only web members"
    );
    cluster.apply(ALLOW_NET2_TO_WEB);
    assert!(
        eventually(Duration::from_secs(10), || connects(&b1, web_ip, 80)),
        "net2 -> web:80\n{}",
        cluster.logs()
    );
    assert!(!connects(&b1, web_ip, 81), "net2 -> web:81");
    assert!(!connects(&a1, web_ip, 80), "net1 -> web:80");

    // A connection opened under the policy survives its removal; new ones are refused.
    let go = cluster.dir.join("go");
    let mut client = spawn_in(
        &b1,
        &[
            "python3",
            "-c",
            LONG_CLIENT,
            &web_ip.to_string(),
            "80",
            &go.display().to_string(),
        ],
    );
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    assert_eq!(
        lines.next().and_then(Result::ok).as_deref(),
        Some("connected")
    );
    cluster.brindlectl(&["delete", "globalnetworkpolicy", "net2-to-web"]);
    assert!(
        eventually(Duration::from_secs(10), || !connects(&b1, web_ip, 80)),
        "new connections refused after the delete"
    );
    std::fs::write(&go, b"").unwrap();
    assert_eq!(
        lines.next().and_then(Result::ok).as_deref(),
        Some("still connected"),
        "the established connection"
    );
    let _ = client.wait();
}

#[test]
fn a_workload_sending_from_an_address_not_its_own_is_dropped() {
    let mut cluster = Cluster::up("pb", "Never", 1, 0);
    let (a1, _) = cluster.add_container(1, "net1");
    let (_, a2_ip) = cluster.add_container(1, "net1");
    assert!(
        eventually(Duration::from_secs(15), || pings(&a1, a2_ip)),
        "{}",
        cluster.logs()
    );
    let spoofed = "192.168.250.250";
    let ip = |args: &[&str]| {
        assert!(Command::new("ip")
            .args(["netns", "exec", &a1, "ip"])
            .args(args)
            .status()
            .unwrap()
            .success())
    };
    ip(&["addr", "add", &format!("{spoofed}/32"), "dev", "eth0"]);
    let before = drop_count(&cluster.stats(1), "spoofed_source");
    let spoofed_ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &a1,
            "ping",
            "-c",
            "2",
            "-W",
            "1",
            "-I",
            spoofed,
            &a2_ip.to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(!spoofed_ping, "a spoofed source must not get through");
    assert!(
        drop_count(&cluster.stats(1), "spoofed_source") >= before + 2,
        "{}",
        cluster.stats(1)
    );
}

/// Sends a UDP datagram to a closed port and prints what came back: `refused` when the ICMP
/// port unreachable reached the sender.
const UDP_PROBE: &str = "
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.connect((sys.argv[1], int(sys.argv[2])))
s.send(b'x')
try:
    s.recv(64); print('answered')
except ConnectionRefusedError:
    print('refused')
except socket.timeout:
    print('timeout')
";

#[test]
fn nat_outgoing_takes_workloads_to_an_outside_network_that_has_no_route_back() {
    let mut cluster = Cluster::up("pc", "Never", 1, 0);
    let (c1, _) = cluster.add_container(1, "net1");
    // Outside: a router on the segment (10.98.0.250) in front of 203.0.113.0/24, with no
    // route to the pool; the node's host routes 203.0.113.0/24 through it.
    let sw = cluster.lab.spec().switch_netns();
    let node_ns = cluster.lab.node(1).unwrap().node_netns();
    let run = |ns: &str, args: &[&str]| {
        assert!(Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .status()
            .unwrap()
            .success())
    };
    run(&sw, &["ip", "addr", "add", "10.98.0.250/24", "dev", "br0"]);
    run(&sw, &["ip", "addr", "add", "203.0.113.1/32", "dev", "lo"]);
    run(&sw, &["ip", "link", "set", "lo", "up"]);
    run(
        &node_ns,
        &["ip", "route", "add", "203.0.113.0/24", "via", "10.98.0.250"],
    );
    let server = spawn_in(&sw, &["python3", "-c", PEER_SERVER, "203.0.113.1", "7777"]);
    cluster.daemons.push(server);
    let outside: Ipv4Addr = "203.0.113.1".parse().unwrap();

    // The default pool has natOutgoing (calico-node's default): ping and TCP work, and the
    // outside sees the node's address, from a port of the NAT range.
    assert!(
        eventually(Duration::from_secs(15), || pings(&c1, outside)),
        "workload -> outside\n{}",
        cluster.logs()
    );
    let peer = || {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &c1,
                "python3",
                "-c",
                PEER_CLIENT,
                "203.0.113.1",
                "7777",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let seen = peer();
    let (address, port) = seen
        .split_once(' ')
        .unwrap_or_else(|| panic!("no answer from outside: {seen:?}\n{}", cluster.logs()));
    assert_eq!(
        address,
        cluster.node_ip(1).to_string(),
        "source NATed to the node"
    );
    let port: u16 = port.parse().unwrap();
    assert!(
        fastpath::policy::NAT_PORTS.contains(&port),
        "source port {port} from the NAT range"
    );
    // The host's own traffic to the same place is untouched (the kernel's, not NATed twice).
    let host = Command::new("ip")
        .args([
            "netns",
            "exec",
            &node_ns,
            "python3",
            "-c",
            PEER_CLIENT,
            "203.0.113.1",
            "7777",
        ])
        .output()
        .unwrap();
    let host = String::from_utf8_lossy(&host.stdout);
    assert!(
        host.starts_with(&format!("{} ", cluster.node_ip(1))),
        "the host's own connection: {host:?}"
    );

    // An ICMP error about a NATed flow (port unreachable from the outside host) reaches the
    // workload, translated back: its UDP socket sees the refusal.
    let probe = Command::new("ip")
        .args([
            "netns",
            "exec",
            &c1,
            "python3",
            "-c",
            UDP_PROBE,
            "203.0.113.1",
            "9999",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "refused",
        "ICMP port unreachable through NAT\n{}",
        cluster.logs()
    );

    // natOutgoing off: new flows leave with the workload's address and get no answer.
    cluster.brindlectl(&[
        "patch",
        "ippool",
        "default-ipv4-ippool",
        "-p",
        r#"{"spec":{"natOutgoing":false}}"#,
    ]);
    assert!(
        eventually(Duration::from_secs(10), || !pings(&c1, outside)),
        "without NAT the outside cannot answer"
    );
}

#[test]
fn workload_to_host_follows_default_endpoint_to_host_action_then_egress_rules() {
    let mut cluster = Cluster::up("pd", "Never", 1, 0);
    let (a1, _) = cluster.add_container(1, "net1");
    let (_, a2_ip) = cluster.add_container(1, "net1");
    let node = cluster.node_ip(1);
    assert!(
        eventually(Duration::from_secs(15), || pings(&a1, a2_ip)),
        "{}",
        cluster.logs()
    );

    // Felix's default: Drop.
    let before = drop_count(&cluster.stats(1), "to_host_denied");
    assert!(
        !pings(&a1, node),
        "a workload must not reach its host by default"
    );
    assert!(
        drop_count(&cluster.stats(1), "to_host_denied") > before,
        "{}",
        cluster.stats(1)
    );

    cluster.apply(
        "apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata:
  name: default
spec:
  defaultEndpointToHostAction: Accept
",
    );
    assert!(
        eventually(Duration::from_secs(10), || pings(&a1, node)),
        "Accept: the host answers\n{}",
        cluster.logs()
    );
    // The node's own stack answers (delivered through the host port; its answers come back
    // through the vRouter on the flow), TCP as well as ping.
    let server = spawn_in(
        &cluster.node_netns(1),
        &["python3", "-c", ECHO_SERVER, "9000"],
    );
    cluster.daemons.push(server);
    assert!(
        eventually(Duration::from_secs(5), || connects(&a1, node, 9000)),
        "a workload reaches a service of its host\n{}",
        cluster.logs()
    );

    // An egress rule: net1's workloads may not send ICMP to the node; the rest stays allowed.
    cluster.apply(&format!(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: no-icmp-to-node
spec:
  selector: has(net1)
  types: [Egress]
  egress:
  - action: Deny
    protocol: ICMP
    destination:
      nets: [{node}/32]
  - action: Allow
"
    ));
    let denied_before = drop_count(&cluster.stats(1), "policy_denied");
    assert!(
        eventually(Duration::from_secs(10), || !pings(&a1, node)),
        "the egress Deny rule"
    );
    assert!(drop_count(&cluster.stats(1), "policy_denied") > denied_before);
    assert!(pings(&a1, a2_ip), "other egress still allowed");
}
