//! `datastore migrate lock|unlock|export|import`: a datastore copied into an empty embedded
//! one reads back the same.

use super::fixture::*;

const RESOURCES: &str = "\
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: p}
spec: {cidr: 10.70.0.0/16, natOutgoing: true}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node1}
spec:
  bgp: {ipv4Address: 192.168.1.1/24}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.deny-db}
spec: {tier: security, selector: role == 'db', types: [Ingress]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-web, namespace: ns1}
spec: {selector: app == 'web', types: [Ingress], ingress: [{action: Allow}]}
";

fn wep(ip: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: node1-cni-a-eth0\nspec:\n  node: node1\n  orchestrator: cni\n  workload: a\n  endpoint: eth0\n  interfaceName: calia\n  ipNetworks: [{ip}/32]\n")
}

/// What must read back the same after the copy.
fn views(f: &Fixture) -> Vec<String> {
    [
        &["get", "ippools", "-o", "wide"][..],
        &["get", "nodes"],
        &["get", "tiers"],
        &["get", "globalnetworkpolicies"],
        &["get", "networkpolicies", "-A"],
        &["get", "workloadendpoints", "-A"],
        &["ipam", "show", "--show-blocks"],
        &["ipam", "show", "--show-configuration"],
        &["ipam", "check"],
    ]
    .iter()
    .map(|args| f.stdout(args))
    .collect()
}

pub(crate) fn datastore_migrate_export_and_import(f: &Fixture) {
    f.ok(
        &["create", "-f", &f.file("r.yaml", RESOURCES)],
        "Successfully created 5 resource(s)\n",
    );
    let ips = ipam::Ipam::new(f.store())
        .auto_assign(&ipam::AutoAssignArgs {
            num: 2,
            handle_id: "h1".into(),
            attrs: Default::default(),
            host: "node1".into(),
            pools: vec![ipam::PoolInfo {
                cidr: ("10.70.0.0".parse().unwrap(), 16),
                block_size: 26,
                disabled: false,
                node_selector_matches: true,
            }],
        })
        .unwrap();
    f.ok(
        &["create", "-f", &f.file("w.yaml", &wep(&ips[0].to_string()))],
        "Successfully created 1 'WorkloadEndpoint' resource(s)\n",
    );
    f.ok(
        &["ipam", "configure", "--strictaffinity=true"],
        "Successfully set StrictAffinity to: true\n",
    );

    f.fails(
        &["datastore", "migrate", "export"],
        "datastore is not locked. Run the `brindlectl datastore migrate lock` command in order to begin migration",
    );
    f.ok(&["datastore", "migrate", "lock"], "Datastore locked.\n");
    let export = f.stdout(&["datastore", "migrate", "export"]);
    assert_eq!(export.matches("===\n").count(), 2, "{export}");
    assert!(!export.contains("resourceVersion: "), "{export}");
    let file = f.file("export.txt", &export);
    let source = views(f);
    let guid = f.stdout(&["get", "clusterinfo", "default", "-o", "yaml"]);
    let guid = guid
        .lines()
        .find(|l| l.contains("clusterGUID"))
        .unwrap()
        .to_string();

    let target = Fixture::embedded("migrate-target");
    target.ok(
        &["datastore", "migrate", "import", "-f", &file],
        "Successfully applied 9 resource(s)\nImporting IPAM resources\nSuccessfully applied 4 IPAM resource(s)\n\
         Datastore information successfully imported. Please refer to the datastore migration documentation for next steps.\n",
    );
    assert_eq!(views(&target), source);
    let info = target.stdout(&["get", "clusterinfo", "default", "-o", "yaml"]);
    assert!(info.contains(&guid), "{guid} in {info}");
    // Left locked, as calicoctl leaves it.
    assert!(info.contains("datastoreReady: false"), "{info}");
    target.ok(&["datastore", "migrate", "unlock"], "Datastore unlocked.\n");

    // Only into an empty datastore, and only a file in the export's shape.
    target.fails(
        &["datastore", "migrate", "import", "-f", &file],
        "datastore already has Calico resources: found existing Calico IPPool resource. Import needs an empty datastore",
    );
    let empty = Fixture::embedded("migrate-empty");
    let bad = empty.file("bad.txt", "apiVersion: projectcalico.org/v3\n");
    empty.fails(
        &["datastore", "migrate", "import", "-f", &bad],
        &format!("error while reading migration file: imported file: {bad} is improperly formatted. Try recreating with 'brindlectl datastore migrate export'"),
    );
    let forged = export.replace(
        "/calico/ipam/v2/handle/h1",
        "/calico/ipam/v2/handle/../config",
    );
    let forged = empty.file("forged.txt", &forged);
    empty.fails(
        &["datastore", "migrate", "import", "-f", &forged],
        "failed to read IPAM resources: handle /calico/ipam/v2/handle/../config: the key is not under /calico/ipam/v2/handle/",
    );
    // Nothing was written by the refused imports.
    empty.ok(&["get", "ippools"], "NAME   CIDR   SELECTOR   \n");
}

pub(crate) fn datastore_unlock_needs_cluster_information(f: &Fixture) {
    f.fails(
        &["datastore", "migrate", "unlock"],
        "error retrieving ClusterInformation for unlocking: resource does not exist: ClusterInformation(default) with error: <nil>",
    );
    f.ok(&["datastore", "migrate", "lock"], "Datastore locked.\n");
    f.ok(&["datastore", "migrate", "lock"], "Datastore locked.\n");
    f.ok(&["datastore", "migrate", "unlock"], "Datastore unlocked.\n");
    let info = f.stdout(&["get", "clusterinfo", "default", "-o", "yaml"]);
    assert!(info.contains("datastoreReady: true"), "{info}");
}
