//! ARCHITECTURE.md scenarios 1, 5 and 6: brindle-nodes in agent mode find each other through the
//! datastore, peer over BGP, exchange their workloads' IPAM blocks and forward between their
//! workloads. Two nodes on one L2 segment in the node-to-node mesh (plainly, and with an IPIP
//! Always pool encapsulated); three nodes, one behind a router, with a CrossSubnet pool, first
//! in the mesh and then with route reflection (BGPPeer with selectors); and a node peering
//! with an external BIRD 2 over eBGP from a global BGPPeer. Root: network namespaces, XDP.
//!
//! The datastore is the embedded store: one file both nodes' processes open (network
//! namespaces do not separate the filesystem).

mod cluster;

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use cluster::{ipip_encapsulated, Cluster, NETWORK};

#[test]
fn two_agent_nodes_peer_in_the_mesh_and_route_between_their_workloads_plainly() {
    let mut mesh = Cluster::up("ma", "Never", 2, 0);
    mesh.prove_reachability();
    for k in [1, 2] {
        assert_eq!(
            ipip_encapsulated(&mesh.stats(k)),
            0,
            "ipipMode Never: nothing encapsulated on node {k}"
        );
    }
}

#[test]
fn two_agent_nodes_peer_in_the_mesh_and_tunnel_between_their_workloads_with_ipip_always() {
    let mut mesh = Cluster::up("mb", "Always", 2, 0);
    mesh.prove_reachability();
    for k in [1, 2] {
        assert!(
            ipip_encapsulated(&mesh.stats(k)) >= 3,
            "ipipMode Always: node {k} encapsulated the pings: {}",
            mesh.stats(k)
        );
    }
}

/// Pings `to` from `from` three times and returns how many frames each node encapsulated
/// meanwhile.
fn encapsulated_during(cluster: &Cluster, from: &str, to: Ipv4Addr) -> Vec<u64> {
    let before: Vec<u64> = (1..=3)
        .map(|k| ipip_encapsulated(&cluster.stats(k)))
        .collect();
    assert!(
        cluster.ping_until_ok(from, to, Duration::from_secs(15)),
        "{from} -> {to}\n{}",
        cluster.logs()
    );
    if let Err(out) = cluster.ping3(from, to) {
        panic!("ping {from} -> {to}:\n{out}\n{}", cluster.logs());
    }
    (1..=3)
        .map(|k| ipip_encapsulated(&cluster.stats(k)) - before[k - 1])
        .collect()
}

#[test]
fn three_nodes_across_a_router_mesh_then_reflect_routes_with_crosssubnet_ipip() {
    // Nodes 1 and 2 share a segment; node 3 is behind the router, in another subnet.
    let mut cluster = Cluster::up("mc", "CrossSubnet", 3, 1);
    let workloads: Vec<(String, Ipv4Addr)> =
        (1..=3).map(|k| cluster.add_container(k, NETWORK)).collect();
    let ip = |k: usize| cluster.node_ip(k);
    let mesh = "node-to-node mesh";
    cluster.wait_peers(1, &[(ip(2), mesh), (ip(3), mesh)], Duration::from_secs(30));
    cluster.wait_peers(2, &[(ip(1), mesh), (ip(3), mesh)], Duration::from_secs(30));
    cluster.wait_peers(3, &[(ip(1), mesh), (ip(2), mesh)], Duration::from_secs(30));

    // Same subnet: plain. To and from node 3: IPIP (CrossSubnet), both ways.
    let (c1, c2, c3) = (&workloads[0].0, &workloads[1].0, &workloads[2].0);
    let (w1, w2, w3) = (workloads[0].1, workloads[1].1, workloads[2].1);
    assert_eq!(
        encapsulated_during(&cluster, c1, w2),
        [0, 0, 0],
        "node 1 <-> node 2 on one segment: plain"
    );
    let tunnelled = encapsulated_during(&cluster, c1, w3);
    assert!(
        tunnelled[0] >= 3 && tunnelled[1] == 0 && tunnelled[2] >= 3,
        "node 1 <-> node 3 across the router: IPIP {tunnelled:?}"
    );
    let tunnelled = encapsulated_during(&cluster, c3, w2);
    assert!(
        tunnelled[0] == 0 && tunnelled[1] >= 3 && tunnelled[2] >= 3,
        "node 3 <-> node 2: IPIP {tunnelled:?}"
    );

    // Calico's route reflector recipe: node 1 reflects (label + cluster ID), every node peers
    // with the reflectors, then the mesh goes off. Nodes 2 and 3 now hear each other's routes
    // only through node 1.
    let node1 = format!("{}n1", cluster.lab.spec().name);
    cluster.brindlectl(&["label", "nodes", &node1, "route-reflector=true"]);
    cluster.brindlectl(&[
        "patch",
        "node",
        &node1,
        "-p",
        r#"{"spec":{"bgp":{"routeReflectorClusterID":"224.0.0.1"}}}"#,
    ]);
    cluster.apply(
        "apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: peer-with-route-reflectors
spec:
  nodeSelector: all()
  peerSelector: route-reflector == 'true'
",
    );
    cluster.apply(
        "apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  nodeToNodeMeshEnabled: false
",
    );
    let specific = "node specific";
    cluster.wait_peers(
        1,
        &[(ip(2), specific), (ip(3), specific)],
        Duration::from_secs(30),
    );
    cluster.wait_peers(2, &[(ip(1), specific)], Duration::from_secs(30));
    cluster.wait_peers(3, &[(ip(1), specific)], Duration::from_secs(30));
    // Reflected: node 3's block reaches node 2 with node 3 as its next hop, still IPIP.
    let tunnelled = encapsulated_during(&cluster, c2, w3);
    assert!(
        tunnelled[1] >= 3 && tunnelled[2] >= 3,
        "node 2 <-> node 3 through reflected routes: {tunnelled:?}"
    );
    assert_eq!(
        encapsulated_during(&cluster, c2, w1),
        [0, 0, 0],
        "node 2 <-> node 1: plain"
    );
    let tunnelled = encapsulated_during(&cluster, c3, w1);
    assert!(
        tunnelled[0] >= 3 && tunnelled[2] >= 3,
        "node 3 <-> node 1: {tunnelled:?}"
    );
}

#[test]
fn a_global_bgppeer_is_an_external_bird_peered_over_ebgp_both_ways() {
    let mut cluster = Cluster::up("md", "Never", 1, 0);
    let (container, _) = cluster.add_container(1, NETWORK);
    let sock = cluster.start_tor();
    let sw = cluster.lab.spec().switch_netns();
    let peer = cluster
        .established_peer(1, "10.98.0.250".parse().unwrap())
        .unwrap();
    assert_eq!(peer["asn"], 65100, "{peer}");

    let birdc = |args: &[&str]| {
        let out = Command::new("ip")
            .args(["netns", "exec", &sw, "birdc", "-s", &sock])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // BIRD holds the node's block with AS_PATH 64512 and the node as next hop.
    let block_route = || birdc(&["show", "route", "all", "protocol", "brindle"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !block_route().contains("BGP.as_path: 64512") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let shown = block_route();
    assert!(
        shown.contains("BGP.as_path: 64512")
            && shown.contains(&format!("via {}", cluster.node_ip(1))),
        "BIRD's routes from brindle:\n{shown}"
    );
    // And the node learned BIRD's prefix: the workload reaches the router's address.
    assert!(
        cluster.ping_until_ok(
            &container,
            "203.0.113.1".parse().unwrap(),
            Duration::from_secs(15)
        ),
        "workload -> 203.0.113.1 through the eBGP route\nBIRD log:\n{}\n{}",
        std::fs::read_to_string(cluster.dir.join("bird.log")).unwrap_or_default(),
        cluster.logs()
    );

    // Graceful Restart (RFC 4724), on as in Calico's BIRD configuration: the node stops
    // (SIGTERM) and BIRD keeps its block while it is away; the node comes back and peers
    // again, and the route was there throughout.
    let node = cluster.nodes[0].take().expect("node process");
    let status = node.stop(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM exit: {status:?}"
    );
    let bird_session = || birdc(&["show", "protocols", "brindle"]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !bird_session().contains("Established"),
        "BIRD still has the session: {}",
        bird_session()
    );
    assert!(
        block_route().contains("BGP.as_path: 64512"),
        "BIRD dropped the stopped node's block:\n{}",
        block_route()
    );
    cluster.start_node(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !bird_session().contains("Established") && Instant::now() < deadline {
        assert!(
            block_route().contains("BGP.as_path: 64512"),
            "BIRD dropped the block while the node came back:\n{}",
            block_route()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(bird_session().contains("Established"), "{}", cluster.logs());
    assert!(
        cluster.ping_until_ok(
            &container,
            "203.0.113.1".parse().unwrap(),
            Duration::from_secs(15)
        ),
        "workload -> 203.0.113.1 after the node's restart\n{}",
        cluster.logs()
    );
    assert!(block_route().contains("BGP.as_path: 64512"));
}
