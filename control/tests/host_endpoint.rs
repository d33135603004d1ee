//! Host endpoints end to end on one agent node: a HostEndpoint on the node's uplink puts the
//! node's own traffic through the vRouter and its policy (ingress to the node, egress from it,
//! replies on the flow table), failsafe ports stay open whatever the policy says, doNotTrack
//! policy decides before the flow table, deleting the endpoint gives the node its plain
//! networking back, and so does the node service dying. Root: network namespaces, XDP, tcx.

mod cluster;

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use cluster::{connects, drop_count, eventually, pings, spawn_in, Cluster, ECHO_SERVER};

/// The peer's address on the lab's segment (the switch namespace's bridge).
const PEER: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 250);

fn host_endpoint(node: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata:
  name: {node}-eth0
  labels: {{host-role: edge}}
spec:
  node: {node}
  interfaceName: eth0
"
    )
}

/// In: TCP 8080 only. Out: TCP 7443 only.
const HOST_POLICY: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: edge-hosts
spec:
  selector: host-role == 'edge'
  types: [Ingress, Egress]
  ingress:
  - action: Allow
    protocol: TCP
    destination:
      ports: [8080]
  egress:
  - action: Allow
    protocol: TCP
    destination:
      ports: [7443]
";

/// Untracked: TCP 8081 in, and the node's answers from 8081 out.
const UNTRACKED_POLICY: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: edge-untracked
spec:
  selector: host-role == 'edge'
  doNotTrack: true
  applyOnForward: true
  order: 10
  types: [Ingress, Egress]
  ingress:
  - action: Allow
    protocol: TCP
    destination:
      ports: [8081]
  egress:
  - action: Allow
    protocol: TCP
    source:
      ports: [8081]
";

#[test]
fn a_host_endpoint_polices_the_nodes_own_traffic_keeps_failsafe_ports_and_fails_open() {
    let mut cluster = Cluster::up("he", "Never", 1, 0);
    let node = cluster.node_name(1);
    let node_ns = cluster.node_netns(1);
    let node_ip = cluster.node_ip(1);
    let sw = cluster.lab.spec().switch_netns();
    assert!(Command::new("ip")
        .args([
            "netns",
            "exec",
            &sw,
            "ip",
            "addr",
            "add",
            "10.98.0.250/24",
            "dev",
            "br0"
        ])
        .status()
        .unwrap()
        .success());
    // Servers on the node (8080 allowed, 8081 not, 22 failsafe) and on the peer (7443
    // allowed out, 7080 not).
    for port in ["8080", "8081", "22"] {
        let server = spawn_in(&node_ns, &["python3", "-c", ECHO_SERVER, port]);
        cluster.daemons.push(server);
    }
    for port in ["7443", "7080"] {
        let server = spawn_in(&sw, &["python3", "-c", ECHO_SERVER, port]);
        cluster.daemons.push(server);
    }
    let all_open = |c: &Cluster| {
        let _ = c;
        connects(&sw, node_ip, 8081) && connects(&node_ns, PEER, 7080) && pings(&sw, node_ip)
    };
    assert!(
        eventually(Duration::from_secs(10), || all_open(&cluster)),
        "without a host endpoint everything is open"
    );

    cluster.apply(HOST_POLICY);
    cluster.apply(&host_endpoint(&node));
    assert!(
        eventually(Duration::from_secs(15), || !connects(&sw, node_ip, 8081)),
        "TCP 8081 to the node is refused once the host endpoint is enforced\n{}",
        cluster.logs()
    );
    let denied_before = drop_count(&cluster.stats(1), "policy_denied");
    assert!(
        connects(&sw, node_ip, 8080),
        "TCP 8080 allowed in\n{}\n{}",
        cluster.stats(1),
        cluster.logs()
    );
    assert!(
        connects(&sw, node_ip, 22),
        "failsafe TCP 22 open whatever the policy"
    );
    assert!(!pings(&sw, node_ip), "ICMP to the node is not allowed");
    assert!(
        connects(&node_ns, PEER, 7443),
        "TCP 7443 allowed out, its replies on the flow table\n{}",
        cluster.logs()
    );
    assert!(
        !connects(&node_ns, PEER, 7080),
        "TCP 7080 out is not allowed"
    );
    assert!(
        drop_count(&cluster.stats(1), "policy_denied") > denied_before,
        "the vRouter dropped them"
    );

    // doNotTrack: 8081 opens both ways without a flow.
    cluster.apply(UNTRACKED_POLICY);
    assert!(
        eventually(Duration::from_secs(10), || connects(&sw, node_ip, 8081)),
        "untracked allow for 8081\n{}",
        cluster.logs()
    );
    assert!(!connects(&node_ns, PEER, 7080), "the rest is as before");

    // The endpoint deleted: the node's networking is the kernel's again; its packets no longer
    // pass the vRouter.
    cluster.brindlectl(&["delete", "hostendpoint", &format!("{node}-eth0")]);
    assert!(
        eventually(Duration::from_secs(10), || all_open(&cluster)),
        "host endpoint deleted\n{}",
        cluster.logs()
    );
    let received = |c: &Cluster| c.stats(1)["fastpath"]["rx_packets"].as_u64().unwrap();
    let before = received(&cluster);
    assert!(all_open(&cluster));
    assert_eq!(
        received(&cluster),
        before,
        "the node's own traffic stays with the kernel"
    );

    // Enforced again, then the node service dies: its TC program goes with it and the XDP
    // program finds no socket, so the kernel has the node's traffic, unpoliced.
    cluster.apply(&host_endpoint(&node));
    assert!(
        eventually(Duration::from_secs(15), || !connects(&node_ns, PEER, 7080)),
        "enforced again\n{}",
        cluster.logs()
    );
    let mut node = cluster.nodes[0].take().expect("node process");
    assert!(node.signal(libc::SIGKILL));
    node.wait_exit(Duration::from_secs(10))
        .expect("the node dies on SIGKILL");
    assert!(
        eventually(Duration::from_secs(5), || all_open(&cluster)),
        "the node's networking survives the node service dying"
    );
}

/// Forwarded traffic: TCP 80 only, in through the node's uplink.
const FORWARD_POLICY: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: edge-forward
spec:
  selector: host-role == 'edge'
  applyOnForward: true
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    destination:
      ports: [80]
";

/// The workloads of net1 take TCP from the outside network (their profile admits only net1).
const NET1_FROM_SEGMENT: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: net1-from-segment
spec:
  selector: has(net1)
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source:
      nets: [203.0.113.0/24]
";

#[test]
fn apply_on_forward_policy_of_the_host_endpoint_polices_traffic_forwarded_to_workloads() {
    let mut cluster = Cluster::up("hf", "Never", 1, 0);
    let node = cluster.node_name(1);
    let node_ip = cluster.node_ip(1);
    let sw = cluster.lab.spec().switch_netns();
    let (c1, c1_ip) = cluster.add_container(1, "net1");
    // Outside: a router on the segment (10.98.0.250) with the peer 203.0.113.1 behind it, which
    // routes the pool to the node; the node's host routes 203.0.113.0/24 through it (workloads
    // reach what the host's gateway routes reach).
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
        &sw,
        &[
            "ip",
            "route",
            "add",
            "192.168.0.0/16",
            "via",
            &node_ip.to_string(),
            "src",
            "203.0.113.1",
        ],
    );
    run(
        &cluster.node_netns(1),
        &["ip", "route", "add", "203.0.113.0/24", "via", "10.98.0.250"],
    );
    for port in ["80", "81"] {
        let server = spawn_in(&c1, &["python3", "-c", ECHO_SERVER, port]);
        cluster.daemons.push(server);
    }
    cluster.apply(NET1_FROM_SEGMENT);
    assert!(
        eventually(Duration::from_secs(15), || connects(&sw, c1_ip, 80)
            && connects(&sw, c1_ip, 81)),
        "the workload's own policy admits the segment\n{}",
        cluster.logs()
    );

    // A host endpoint with an applyOnForward policy: forwarded traffic in through the uplink
    // is policed by it as well as by the workload's policy.
    cluster.apply(FORWARD_POLICY);
    cluster.apply(&host_endpoint(&node));
    assert!(
        eventually(Duration::from_secs(15), || !connects(&sw, c1_ip, 81)),
        "TCP 81 forwarded in is refused\n{}",
        cluster.logs()
    );
    assert!(connects(&sw, c1_ip, 80), "TCP 80 forwarded in is allowed");
    // No applyOnForward policy for egress: the workload's traffic out passes (NATed to the
    // node by the default pool's natOutgoing), its replies on the flow table.
    let server = spawn_in(&sw, &["python3", "-c", ECHO_SERVER, "7443"]);
    cluster.daemons.push(server);
    assert!(
        eventually(Duration::from_secs(5), || connects(
            &c1,
            "203.0.113.1".parse().unwrap(),
            7443
        )),
        "workload out\n{}",
        cluster.logs()
    );
}
