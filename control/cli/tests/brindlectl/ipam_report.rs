//! `ipam check` with calicoctl's flags and report, and `ipam release --from-report`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::fixture::*;

const POOL: &str = "10.100.0.0/16";

fn pool_info() -> ipam::PoolInfo {
    ipam::PoolInfo {
        cidr: ("10.100.0.0".parse().unwrap(), 16),
        block_size: 26,
        disabled: false,
        node_selector_matches: true,
    }
}

fn attrs() -> BTreeMap<String, String> {
    [("node", "node1"), ("pod", "web-1"), ("namespace", "ns1")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A pool and three addresses of handle h1 on node1.
fn allocate_three(f: &Fixture) -> Vec<Ipv4Addr> {
    f.ok(
        &["create", "-f", &f.file("p.yaml", &pool("p", POOL))],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
    ipam::Ipam::new(f.store())
        .auto_assign(&ipam::AutoAssignArgs {
            num: 3,
            handle_id: "h1".into(),
            attrs: attrs(),
            host: "node1".into(),
            pools: vec![pool_info()],
        })
        .unwrap()
}

fn wep(name: &str, ip: &str) -> String {
    format!("---\napiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: node1-cni-{name}-eth0\nspec:\n  node: node1\n  orchestrator: cni\n  workload: {name}\n  endpoint: eth0\n  interfaceName: cali{name:0>11}\n  ipNetworks: [{ip}/32]\n")
}

fn node(tunnel: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: node1\nspec:\n  bgp:\n    ipv4Address: 192.168.1.1/24\n    ipv4IPIPTunnelAddr: {tunnel}\n")
}

/// A handle record that no allocation refers to (a leaked handle).
fn plant_leaked_handle(f: &Fixture) {
    f.store()
        .put(
            &datastore::keys::ipam_handle("orphan-h"),
            br#"{"handleID":"orphan-h","block":{},"deleted":false}"#,
        )
        .unwrap();
}

fn report(path: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub(crate) fn ipam_check_flags_and_report(f: &Fixture) {
    let ips = allocate_three(f);
    let (tunnel, held, leaked) = (ips[0], ips[1], ips[2]);
    f.ok(
        &[
            "create",
            "-f",
            &f.file("n.yaml", &node(&tunnel.to_string())),
        ],
        "Successfully created 1 'Node' resource(s)\n",
    );
    let weps = wep("a", &held.to_string()) + &wep("b", "10.200.0.5");
    f.ok(
        &["create", "-f", &f.file("w.yaml", &weps)],
        "Successfully created 2 'WorkloadEndpoint' resource(s)\n",
    );
    plant_leaked_handle(f);
    let block = ipam::Ipv4Prefix::containing(tunnel, 26).unwrap();

    let plain = f.stdout(&["ipam", "check"]);
    for line in [
        "Found 1 IPAM blocks.\n".to_string(),
        format!(" IPAM block {block} affinity=host:node1:\n"),
        "IPAM blocks record 3 allocations.\n".into(),
        format!("Loading all IPAM pools...\n  {POOL}\nFound 1 active IP pools.\n"),
        "Found 1 node tunnel IPs.\n".into(),
        "Found 2 workload IPs.\nWorkloads and nodes are using 3 IPs.\n".into(),
        "  node1 has 3 allocations\nNode with most allocations has 3; median is 3\n".into(),
        "Found 1 IPs that are allocated in IPAM but not actually in use.\n".into(),
        "Found 1 in-use IPs that are not in active IP pools.\n".into(),
        "Found 0 in-use IPs that are in active IP pools but have no corresponding IPAM allocation.\n".into(),
        "Found 1 handles with no matching IPs (and 1 handles with matches).\n".into(),
        "Found 0 handles mentioned in blocks with no matching handle resource.\n".into(),
        "Found 0 invalid IPAMBlocks.\n".into(),
        "Found 0 blocks affine to nodes that do not exist.\n".into(),
    ] {
        assert!(plain.contains(&line), "missing {line:?} in\n{plain}");
    }
    // Leaked address, address outside the pools, leaked handle.
    assert!(
        plain.ends_with("Check complete; found 3 problems.\n"),
        "{plain}"
    );
    // Without the flags no address is listed.
    assert!(
        !plain.contains("leaked;") && !plain.contains("belongs to"),
        "{plain}"
    );

    let attrs = "Main:h1 Extra:namespace=ns1,node=node1,pod=web-1";
    let problems = f.stdout(&["ipam", "check", "--show-problem-ips"]);
    assert!(
        problems.contains(&format!("  {leaked} leaked; attrs {attrs}\n")),
        "{problems}"
    );
    assert!(
        problems.contains("  10.200.0.5 in use by Workload(default/node1-cni-b-eth0) is not in any active IP pool.\n"),
        "{problems}"
    );
    assert!(!problems.contains("allocated; attrs"), "{problems}");

    let all = f.stdout(&["ipam", "check", "--show-all-ips"]);
    for line in [
        format!("  {tunnel} allocated; attrs {attrs}\n"),
        format!("  {tunnel} belongs to Node(node1)\n"),
        format!("  {held} belongs to Workload(default/node1-cni-a-eth0)\n"),
        "  orphan-h doesn't have any active IPs.\n".into(),
        format!("  {leaked} leaked; attrs {attrs}\n"),
    ] {
        assert!(all.contains(&line), "missing {line:?} in\n{all}");
    }

    let path = f.file("report.json", "");
    let with_report = f.stdout(&["ipam", "check", "-o", &path]);
    assert_eq!(with_report, plain, "-o changes only the file");
    let r = report(&path);
    assert_eq!(r["version"], format!("v{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(r["clusterGUID"], "");
    assert_eq!(r["datastoreLocked"], false);
    let a = &r["allocations"][leaked.to_string()][0];
    assert_eq!(a["ip"], leaked.to_string());
    assert_eq!(a["handle"], "h1");
    assert_eq!(a["node"], "node1");
    assert_eq!(a["pod"], "web-1");
    assert_eq!(a["namespace"], "ns1");
    assert_eq!(a["inUse"], false);
    assert!(a["owners"].is_null(), "{a}");
    assert!(a["sequenceNumber"].as_u64().is_some(), "{a}");
    assert!(a.get("borrowed").is_none(), "{a}");
    let t = &r["allocations"][tunnel.to_string()][0];
    assert_eq!(t["inUse"], true);
    assert_eq!(t["owners"], serde_json::json!(["Node(node1)"]));
    assert_eq!(r["leakedHandles"][0]["ID"], "orphan-h");
    assert!(
        r["leakedHandles"][0]["Revision"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );

    // A block that does not decode is reported, not fatal.
    let key = datastore::keys::ipam_block("10.100.255.0/26");
    f.store().put(&key, b"{\"cidr\": 7}").unwrap();
    let corrupt = f.stdout(&["ipam", "check"]);
    assert!(
        corrupt.contains(&format!("  IPAMBlock {key} is invalid: ")),
        "{corrupt}"
    );
    assert!(
        corrupt.contains("Found 1 invalid IPAMBlocks.\n"),
        "{corrupt}"
    );
    assert!(
        corrupt.ends_with("Check complete; found 4 problems.\n"),
        "{corrupt}"
    );

    let bad = "/nonexistent-dir-brindlectl/r.json";
    let run = f.run(&["ipam", "check", "-o", bad]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with(&format!("failed to write the report to --output '{bad}': ")),
        "{}",
        run.stderr
    );
}

/// Rewrites one top-level field of a report file.
fn edit_report(
    f: &Fixture,
    path: &str,
    name: &str,
    field: &str,
    value: serde_json::Value,
) -> String {
    let mut r = report(path);
    r[field] = value;
    f.file(name, &r.to_string())
}

pub(crate) fn ipam_release_from_a_report(f: &Fixture) {
    let ips = allocate_three(f);
    let (held, leaked, reused) = (ips[0], ips[1], ips[2]);
    f.ok(
        &[
            "create",
            "-f",
            &f.file(
                "n.yaml",
                "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: node1\nspec: {}\n",
            ),
        ],
        "Successfully created 1 'Node' resource(s)\n",
    );
    f.ok(
        &[
            "create",
            "-f",
            &f.file("w.yaml", &wep("a", &held.to_string())),
        ],
        "Successfully created 1 'WorkloadEndpoint' resource(s)\n",
    );
    plant_leaked_handle(f);
    // A report made before the lock is stale (lock creates the ClusterInformation first).
    f.ok(&["datastore", "migrate", "lock"], "Datastore locked.\n");
    f.ok(&["datastore", "migrate", "unlock"], "Datastore unlocked.\n");
    let stale = f.file("stale.json", "");
    f.stdout(&["ipam", "check", "-o", &stale]);
    f.ok(&["datastore", "migrate", "lock"], "Datastore locked.\n");
    let stale_msg = "the provided reports are all stale - at least one should be up-to-date. Please generate a new report while the data store is locked and try again";
    f.fails(&["ipam", "release", "--from-report", &stale], stale_msg);
    f.fails(
        &["ipam", "release", "--from-report", &stale, "--force"],
        stale_msg,
    );

    let current = f.file("current.json", "");
    f.stdout(&["ipam", "check", "-o", &current]);
    assert_eq!(report(&current)["datastoreLocked"], true);

    // Checks on the report before anything is released.
    let other_guid = edit_report(f, &current, "guid.json", "clusterGUID", "elsewhere".into());
    let guid_msg = format!("cluster does not match the provided report ({other_guid}): mismatched cluster GUID. Refusing to release");
    f.fails(
        &["ipam", "release", "--from-report", &other_guid],
        &guid_msg,
    );
    f.fails(
        &["ipam", "release", "--from-report", &other_guid, "--force"],
        &guid_msg,
    );
    let other_version = edit_report(f, &current, "version.json", "version", "v0.0.1".into());
    f.fails(
        &["ipam", "release", "--from-report", &other_version],
        &format!("the provided report ({other_version}) was produced using a different version (v0.0.1) of brindlectl. Refusing to release"),
    );
    let garbage = f.file("garbage.json", "{not json");
    let run = f.run(&["ipam", "release", "--from-report", &garbage]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.starts_with(&format!(
            "--from-report '{garbage}' is not an `ipam check -o` report: "
        )),
        "{}",
        run.stderr
    );
    f.fails(
        &["ipam", "release"],
        "Error: give the address to release (--ip=ADDR) or a report (--from-report=FILE)",
    );
    for a in [held, leaked, reused] {
        f.ok(
            &["ipam", "show", "--ip", &a.to_string()],
            &format!(
                "IP {a} is in use\nAttributes:\n  namespace: ns1\n  node: node1\n  pod: web-1\n"
            ),
        );
    }

    // `reused` is released and allocated again after the report, under the same handle and
    // attributes: only its sequence number tells, and it is left alone.
    let ipam = ipam::Ipam::new(f.store());
    ipam.release_ips(&[reused]).unwrap();
    ipam.assign_ip(reused, "h1", &attrs(), "node1", &[pool_info()])
        .unwrap();
    f.ok(
        &["ipam", "release", "--from-report", &current],
        &format!(
            "Releasing 2 old IPs...\nReleased 1 IPs successfully\n1 addresses marked as leaked in the report have been allocated again since; left alone: {reused}\n\
             Deleting 1 handles...\nKey: '.' = Deleted OK; 'x' = skip, handle missing/changed.\n.\nReleased 1 handles; 0 skipped; 0 errors.\n\
             You may now unlock the data store.\n"
        ),
    );
    f.ok(
        &["ipam", "show", "--ip", &leaked.to_string()],
        &format!("{leaked} is not assigned\n"),
    );
    f.ok(
        &["ipam", "show", "--ip", &reused.to_string()],
        &format!(
            "IP {reused} is in use\nAttributes:\n  namespace: ns1\n  node: node1\n  pod: web-1\n"
        ),
    );
    assert_eq!(ipam.ips_by_handle("h1").unwrap(), vec![held, reused]);
    assert!(f
        .store()
        .get(&datastore::keys::ipam_handle("orphan-h"))
        .unwrap()
        .is_none());

    // Again: nothing left to do, and said so.
    f.ok(
        &["ipam", "release", "--from-report", &current],
        &format!(
            "Releasing 2 old IPs...\nReleased 0 IPs successfully\n1 addresses marked as leaked in the report had already been cleaned up.\n\
             1 addresses marked as leaked in the report have been allocated again since; left alone: {reused}\n\
             Deleting 1 handles...\nKey: '.' = Deleted OK; 'x' = skip, handle missing/changed.\nx\nReleased 0 handles; 1 skipped; 0 errors.\n\
             You may now unlock the data store.\n"
        ),
    );

    // Unlocked: refused unless --force (with `reused` in use, the new report finds nothing).
    f.ok(
        &[
            "create",
            "-f",
            &f.file("w2.yaml", &wep("c", &reused.to_string())),
        ],
        "Successfully created 1 'WorkloadEndpoint' resource(s)\n",
    );
    f.ok(&["datastore", "migrate", "unlock"], "Datastore unlocked.\n");
    let unlocked = f.file("unlocked.json", "");
    f.stdout(&["ipam", "check", "-o", &unlocked]);
    f.fails(
        &["ipam", "release", "--from-report", &unlocked],
        "data store is not locked. Either lock the data store, or re-run with --force",
    );
    let other_version = edit_report(f, &unlocked, "version2.json", "version", "v0.0.1".into());
    f.ok(
        &["ipam", "release", "--from-report", &other_version, "--force"],
        "WARNING: Report was produced using a different version of brindlectl. Ignoring due to --force option\n\
         WARNING: Data store is not locked. Ignoring due to --force option\n\
         Report didn't contain any leaked IPs to clean up.\nReport didn't contain any handles to clean up.\n\
         You may now unlock the data store.\n",
    );
}
