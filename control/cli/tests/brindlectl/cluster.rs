//! IPAM state after allocations and the cluster information `version` reports.

use super::fixture::*;

pub(crate) fn ipam_show_release_and_check_after_allocating(f: &Fixture) {
    f.ok(
        &[
            "create",
            "-f",
            &f.file("p.yaml", &pool("p", "10.100.0.0/16")),
        ],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
    let ipam = ipam::Ipam::new(f.store());
    let ips = ipam
        .auto_assign(&ipam::AutoAssignArgs {
            num: 5,
            handle_id: "h1".into(),
            attrs: [("pod".to_string(), "web-1".to_string())]
                .into_iter()
                .collect(),
            host: "node1".into(),
            pools: vec![ipam::PoolInfo {
                cidr: ("10.100.0.0".parse().unwrap(), 16),
                block_size: 26,
                disabled: false,
                node_selector_matches: true,
            }],
        })
        .unwrap();
    assert_eq!(ips.len(), 5);
    let block = ipam::Ipv4Prefix::containing(ips[0], 26)
        .unwrap()
        .to_string();
    f.ok(
        &["ipam", "show"],
        "+----------+---------------+-----------+------------+--------------+\n\
         | GROUPING |     CIDR      | IPS TOTAL | IPS IN USE |   IPS FREE   |\n\
         +----------+---------------+-----------+------------+--------------+\n\
         | IP Pool  | 10.100.0.0/16 |     65536 | 5 (0%)     | 65531 (100%) |\n\
         +----------+---------------+-----------+------------+--------------+\n",
    );
    let blocks = f.stdout(&["ipam", "show", "--show-blocks"]);
    let block_row = blocks
        .lines()
        .find(|l| l.starts_with("| Block"))
        .unwrap_or_default()
        .to_string();
    assert!(
        block_row.contains(&block)
            && block_row.contains("|        64 | 5 (8%)")
            && block_row.contains("59 (92%)"),
        "{blocks}"
    );

    let ip = ips[0].to_string();
    f.ok(
        &["ipam", "show", "--ip", &ip],
        &format!("IP {ip} is in use\nAttributes:\n  pod: web-1\n"),
    );
    f.ok(
        &["ipam", "show", "--ip", "10.100.255.1"],
        "10.100.255.1 is not assigned\n",
    );
    f.ok(
        &["ipam", "release", "--ip", &ip],
        &format!("Successfully released IP address {ip}\n"),
    );
    f.fails(
        &["ipam", "release", "--ip", &ip],
        &format!("IP address {ip} is not assigned"),
    );

    // Four addresses left, no WorkloadEndpoint holds them and node1 is no Node: leaks.
    let check = f.stdout(&["ipam", "check", "--show-problem-ips"]);
    assert!(
        check.contains("Found 4 IPs that are allocated in IPAM but not actually in use."),
        "{check}"
    );
    assert!(
        check.contains("Found 1 blocks affine to nodes that do not exist."),
        "{check}"
    );
    assert!(
        check.contains(&format!(
            "  {} leaked; attrs Main:h1 Extra:pod=web-1",
            ips[1]
        )),
        "{check}"
    );
    assert!(
        check.ends_with("Check complete; found 5 problems.\n"),
        "{check}"
    );
    // With the node and endpoints holding the addresses, the check is clean.
    let node = f.file(
        "node.yaml",
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: node1\nspec: {}\n",
    );
    f.ok(
        &["create", "-f", &node],
        "Successfully created 1 'Node' resource(s)\n",
    );
    let weps: String = ips[1..]
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            format!(
                "---\napiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: node1-cni-c{i}-eth0\nspec:\n  node: node1\n  orchestrator: cni\n  workload: c{i}\n  endpoint: eth0\n  interfaceName: cali{i:011}\n  ipNetworks: [{ip}/32]\n"
            )
        })
        .collect();
    f.ok(
        &["create", "-f", &f.file("weps.yaml", &weps)],
        "Successfully created 4 'WorkloadEndpoint' resource(s)\n",
    );
    let check = f.stdout(&["ipam", "check"]);
    assert!(
        check.ends_with("Check complete; found 0 problems.\n"),
        "{check}"
    );
}

pub(crate) fn version_reports_the_cluster_information(f: &Fixture) {
    let client = format!("Client Version:    v{}\n", env!("CARGO_PKG_VERSION"));
    f.ok(
        &["version"],
        &format!("{client}Cluster Version:   unknown\nCluster Type:      unknown\n"),
    );
    let info = f.file(
        "ci.yaml",
        "apiVersion: projectcalico.org/v3\nkind: ClusterInformation\nmetadata:\n  name: default\nspec:\n  calicoVersion: v3.27.0\n  clusterType: brindle,bgp\n  datastoreReady: true\n",
    );
    f.ok(
        &["create", "-f", &info],
        "Successfully created 1 'ClusterInformation' resource(s)\n",
    );
    f.ok(
        &["version"],
        &format!("{client}Cluster Version:   v3.27.0\nCluster Type:      brindle,bgp\n"),
    );
}

/// `version --poll`: runs until killed, printing the cluster lines again only when they
/// change; `--client` prints the client line only; a bad duration names itself.
pub(crate) fn version_polls_until_interrupted(f: &Fixture) {
    use std::io::{BufRead, BufReader};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    let client = format!("Client Version:    v{}\n", env!("CARGO_PKG_VERSION"));
    f.ok(&["version", "--client"], &client);
    f.fails(
        &["version", "--poll=soon"],
        "invalid poll duration specified: soon",
    );
    f.ok(
        &["create", "-f", &f.file("ci.yaml", &cluster_info("v3.27.0"))],
        "Successfully created 1 'ClusterInformation' resource(s)\n",
    );
    let mut child = f.spawn(&["version", "--poll=50ms"]);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |rx: &mpsc::Receiver<String>| rx.recv_timeout(Duration::from_secs(10)).ok();
    assert_eq!(next(&rx).as_deref(), Some(client.trim_end()));
    assert_eq!(next(&rx).as_deref(), Some("Cluster Version:   v3.27.0"));
    assert_eq!(next(&rx).as_deref(), Some("Cluster Type:      brindle,bgp"));
    // Unchanged: nothing more over many poll periods, and the process keeps running.
    assert_eq!(rx.recv_timeout(Duration::from_millis(600)).ok(), None);
    assert!(child.try_wait().unwrap().is_none(), "version --poll exited");
    if f.is_etcd() {
        // Another client upgrades the cluster: only the changed line is printed again.
        let r = f.run_with(&["apply", "-f", "-"], &cluster_info("v3.28.0"));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = None;
        while Instant::now() < deadline && seen.is_none() {
            seen = rx.recv_timeout(Duration::from_millis(200)).ok();
        }
        assert_eq!(seen.as_deref(), Some("Cluster Version:   v3.28.0"));
        assert_eq!(rx.recv_timeout(Duration::from_millis(300)).ok(), None);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
}

fn cluster_info(version: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: ClusterInformation\nmetadata:\n  name: default\nspec:\n  calicoVersion: {version}\n  clusterType: brindle,bgp\n  datastoreReady: true\n")
}
