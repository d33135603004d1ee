//! Workloads and hosts outside the cluster, on one agent node (root: network namespaces, XDP):
//! a workload reaches a host on the uplink's own subnet that is not a node (the connected
//! route); a floating IP (WorkloadEndpoint `ipNATs`, ARCHITECTURE.md scenario 8) is
//! announced over BGP to an outside router, which reaches the workload through it and gets
//! its answers from it.
//!
//! The host outside is the lab's switch namespace with an address on the segment
//! (10.98.0.250), as in the other tests that need one.

mod cluster;

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use cluster::{eventually, pings, run_in, spawn_in, Cluster, NETWORK, PEER_CLIENT, PEER_SERVER};

const OUTSIDE_HOST: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 250);
const FLOATING_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

/// Runs `PEER_CLIENT` against `to:port` from namespace `from`: what the server saw of the
/// client (`address port`), or empty when the connection failed.
fn peer_seen_from(from: &str, to: Ipv4Addr, port: u16) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", from, "python3", "-c", PEER_CLIENT])
        .arg(to.to_string())
        .arg(port.to_string())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_workload_reaches_a_host_on_the_uplinks_subnet_that_is_not_a_node() {
    let mut cluster = Cluster::up("oa", "Never", 1, 0);
    let (c1, _) = cluster.add_container(1, NETWORK);
    // A host on the segment, no node, no route to the pool (the default pool masquerades),
    // and nothing routes 10.98.0.0/24 but the uplink's own subnet.
    let sw = cluster.lab.spec().switch_netns();
    run_in(&sw, &["ip", "addr", "add", "10.98.0.250/24", "dev", "br0"]);
    let server = spawn_in(&sw, &["python3", "-c", PEER_SERVER, "10.98.0.250", "7777"]);
    cluster.daemons.push(server);

    assert!(
        eventually(Duration::from_secs(15), || pings(&c1, OUTSIDE_HOST)),
        "workload -> {OUTSIDE_HOST} on the uplink's subnet\n{}",
        cluster.logs()
    );
    let mut seen = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            seen = peer_seen_from(&c1, OUTSIDE_HOST, 7777);
            !seen.is_empty()
        }),
        "TCP workload -> {OUTSIDE_HOST}:7777\n{}",
        cluster.logs()
    );
    assert!(
        seen.starts_with(&format!("{} ", cluster.node_ip(1))),
        "natOutgoing still applies on the connected route: {seen}"
    );
}

/// Lets anything on the segment reach every workload (the network's profile admits only its
/// members).
const FROM_THE_SEGMENT: &str = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: from-the-segment
spec:
  selector: all()
  types: [Ingress]
  ingress:
  - action: Allow
    source:
      nets: [10.98.0.0/24]
";

/// Adds `ipNATs` (internal, FLOATING_IP) to the cluster's only WorkloadEndpoint, as an
/// orchestrator would, through brindlectl.
fn give_floating_ip(cluster: &Cluster, internal: Ipv4Addr, nats: bool) {
    let listed: serde_json::Value = serde_json::from_str(&cluster.brindlectl(&[
        "get",
        "workloadendpoints",
        "-A",
        "-o",
        "json",
    ]))
    .expect("brindlectl prints JSON");
    let mut wep = listed["items"]
        .as_array()
        .and_then(|items| items.first())
        .unwrap_or(&listed)
        .clone();
    wep["spec"]["ipNATs"] = if nats {
        serde_json::json!([{ "internalIP": internal.to_string(), "externalIP": FLOATING_IP.to_string() }])
    } else {
        serde_json::json!([])
    };
    cluster.apply(&wep.to_string());
}

#[test]
fn a_floating_ip_is_announced_over_bgp_and_reaches_the_workload_from_outside() {
    let mut cluster = Cluster::up("ob", "Never", 1, 0);
    let (c1, internal) = cluster.add_container(1, NETWORK);
    let sock = cluster.start_tor();
    let sw = cluster.lab.spec().switch_netns();
    cluster.apply(FROM_THE_SEGMENT);
    let server = spawn_in(&c1, &["python3", "-c", PEER_SERVER, "0.0.0.0", "8080"]);
    cluster.daemons.push(server);
    give_floating_ip(&cluster, internal, true);

    // BIRD learned FLOATING_IP/32 from the node and put it in the outside host's kernel.
    let learned = || {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &sw,
                "ip",
                "route",
                "show",
                &FLOATING_IP.to_string(),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        eventually(Duration::from_secs(20), || learned()
            .contains(&format!("via {}", cluster.node_ip(1)))),
        "the outside router's route to {FLOATING_IP}: {:?}\nBIRD:\n{}\n{}",
        learned(),
        run_in(&sw, &["birdc", "-s", &sock, "show", "route", "all"]),
        cluster.logs()
    );

    // Ping and TCP from outside to the floating IP: the workload sees the real client and
    // answers from the floating IP (else neither ping nor TCP would accept the answer).
    assert!(
        eventually(Duration::from_secs(15), || pings(&sw, FLOATING_IP)),
        "outside -> {FLOATING_IP}\n{}",
        cluster.logs()
    );
    let mut seen = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            seen = peer_seen_from(&sw, FLOATING_IP, 8080);
            !seen.is_empty()
        }),
        "TCP outside -> {FLOATING_IP}:8080\n{}",
        cluster.logs()
    );
    assert!(
        seen.starts_with(&format!("{OUTSIDE_HOST} ")),
        "the workload sees the client's own address: {seen}"
    );
    // The workload's own address is not the floating IP's: reaching it directly stays
    // untranslated (and the outside has a route to it from BGP too).
    assert!(
        peer_seen_from(&sw, internal, 8080).starts_with(&format!("{OUTSIDE_HOST} ")),
        "direct to {internal}"
    );

    // Taken away: no longer announced, no longer reachable.
    give_floating_ip(&cluster, internal, false);
    assert!(
        eventually(Duration::from_secs(20), || learned().is_empty()),
        "withdrawn: {:?}",
        learned()
    );
    assert!(!pings(&sw, FLOATING_IP), "{FLOATING_IP} after its removal");
}

/// The reference `portmap` plugin, chained after brindle-cni.
const PORTMAP_DIR: &str = "/usr/lib/cni";
const HOST_PORT: u16 = 8080;

/// Runs `portmap` `command` for the container in `ns` (as libcni runs a chained plugin: the
/// network's name and version, the runtime's port mappings, the previous plugin's result),
/// inside node 1's namespace.
fn portmap(cluster: &Cluster, command: &str, ns: &str, prev_result: &serde_json::Value) {
    let conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "type": "portmap",
        "capabilities": { "portMappings": true },
        "runtimeConfig": {
            "portMappings": [{ "hostPort": HOST_PORT, "containerPort": 80, "protocol": "tcp" }]
        },
        "prevResult": prev_result,
    });
    let plugin = lab::cni::CniPlugin {
        bin_dir: PORTMAP_DIR.into(),
        plugin: "portmap".into(),
        env: Vec::new(),
    };
    let out = plugin
        .invoke(
            &cluster.node_netns(1),
            command,
            &Cluster::container_id(ns),
            &std::path::PathBuf::from(format!("/var/run/netns/{ns}")),
            "eth0",
            &conf.to_string(),
        )
        .unwrap();
    assert!(
        out.success,
        "portmap {command}: {}\n{}",
        out.stdout, out.stderr
    );
}

/// The node namespace's iptables rules, without the lines that change by themselves.
fn iptables_rules(node_ns: &str) -> String {
    run_in(node_ns, &["iptables-save"])
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.split_once(" [") {
            // Chain lines carry packet counters.
            Some((chain, _)) if l.starts_with(':') => chain.to_owned(),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What makes a difference in iptables rules: the rules, the chains made and the policies
/// that are not ACCEPT (an untouched table lists its built-in chains, a table never used
/// does not).
fn rules_and_chains(rules: &str) -> Vec<&str> {
    rules
        .lines()
        .filter(|l| l.starts_with("-A") || (l.starts_with(':') && !l.ends_with(" ACCEPT")))
        .collect()
}

/// Puts the node namespace's iptables back to `snapshot` (from [`iptables_rules`]): the
/// tables it lacks are emptied, the others restored.
fn restore_iptables(node_ns: &str, snapshot: &str) {
    let tables = |rules: &str| -> Vec<String> {
        rules
            .lines()
            .filter_map(|l| l.strip_prefix('*'))
            .map(str::to_owned)
            .collect()
    };
    let kept = tables(snapshot);
    for table in tables(&iptables_rules(node_ns)) {
        if !kept.contains(&table) {
            run_in(node_ns, &["iptables", "-t", &table, "-F"]);
            run_in(node_ns, &["iptables", "-t", &table, "-X"]);
        }
    }
    if snapshot.is_empty() {
        return;
    }
    let mut restore = Command::new("ip")
        .args(["netns", "exec", node_ns, "iptables-restore"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    restore
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{snapshot}\n").as_bytes())
        .unwrap();
    assert!(restore.wait().unwrap().success(), "iptables-restore");
}

#[test]
fn a_portmap_host_port_is_reached_from_outside_the_node() {
    let mut cluster = Cluster::up("oc", "Never", 1, 0);
    let node_ns = cluster.node_netns(1);
    // A node forwards for its hostPorts (the kernel DNATs and routes into the vRouter), as a
    // Kubernetes node does; the lab's node namespace starts with forwarding off.
    run_in(&node_ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let sw = cluster.lab.spec().switch_netns();
    run_in(&sw, &["ip", "addr", "add", "10.98.0.250/24", "dev", "br0"]);
    let before = iptables_rules(&node_ns);

    let (c1, _, result) = cluster.add_container_with_result(1, NETWORK);
    portmap(&cluster, "ADD", &c1, &result);
    let server = spawn_in(&c1, &["python3", "-c", PEER_SERVER, "0.0.0.0", "80"]);
    cluster.daemons.push(server);
    let node_ip = cluster.node_ip(1);

    // From the node itself (the kernel's OUTPUT DNAT), which worked before.
    let mut seen = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            seen = peer_seen_from(&node_ns, node_ip, HOST_PORT);
            !seen.is_empty()
        }),
        "node -> {node_ip}:{HOST_PORT}\n{}",
        cluster.logs()
    );
    // From a host outside the node: the answer must go back through the node's stack to get
    // the node's address and the hostPort back.
    assert!(
        eventually(Duration::from_secs(10), || {
            seen = peer_seen_from(&sw, node_ip, HOST_PORT);
            !seen.is_empty()
        }),
        "outside -> {node_ip}:{HOST_PORT}\niptables:\n{}\n{}",
        iptables_rules(&node_ns),
        cluster.logs()
    );
    assert!(
        seen.starts_with(&format!("{OUTSIDE_HOST} ")),
        "the workload sees the outside client: {seen}"
    );

    // portmap's DEL takes its rules away: nothing of this container's hostPort stays.
    portmap(&cluster, "DEL", &c1, &result);
    let after = iptables_rules(&node_ns);
    assert!(
        !after.contains(&format!("--dport {HOST_PORT}"))
            && !after.contains(&Cluster::container_id(&c1)),
        "after portmap DEL:\n{after}"
    );
    assert!(
        !eventually(Duration::from_secs(2), || !peer_seen_from(
            &sw, node_ip, HOST_PORT
        )
        .is_empty()),
        "the hostPort is gone"
    );
    // The chains portmap keeps for every container go too: the namespace's rules as before.
    restore_iptables(&node_ns, &before);
    assert_eq!(
        rules_and_chains(&iptables_rules(&node_ns)),
        rules_and_chains(&before)
    );
}
