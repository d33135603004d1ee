//! Create, get, replace and delete of resources: round trips, existing and missing
//! resources, multi-document input and optimistic concurrency.

use super::fixture::*;

pub(crate) fn create_get_delete_round_trip_for_several_kinds(f: &Fixture) {
    let p = f.file("pool.yaml", &pool("pool1", "10.10.0.0/16"));
    f.ok(
        &["create", "-f", &p],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
    f.ok(
        &["get", "ippool"],
        "NAME    CIDR           SELECTOR   \npool1   10.10.0.0/16   all()      \n",
    );
    let yaml = f.stdout(&["get", "ippool", "pool1", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: IPPool")
            && yaml.contains("cidr: 10.10.0.0/16")
            && yaml.contains("blockSize: 26"),
        "{yaml}"
    );
    assert!(
        yaml.contains("resourceVersion:")
            && yaml.contains("creationTimestamp:")
            && yaml.contains("uid:"),
        "{yaml}"
    );

    let bgp = f.file(
        "bgp.yaml",
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  asNumber: 64513\n  nodeToNodeMeshEnabled: false\n",
    );
    f.ok(
        &["create", "-f", &bgp],
        "Successfully created 1 'BGPConfiguration' resource(s)\n",
    );
    let json = f.stdout(&["get", "bgpconfig", "default", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["spec"]["asNumber"], 64513);
    assert_eq!(v["spec"]["nodeToNodeMeshEnabled"], false);

    let profile = f.file(
        "profile.yaml",
        "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: net1\nspec:\n  labelsToApply:\n    net1: \"\"\n  ingress:\n  - action: Allow\n    source:\n      selector: has(net1)\n  egress:\n  - action: Allow\n",
    );
    f.ok(
        &["apply", "-f", &profile],
        "Successfully applied 1 'Profile' resource(s)\n",
    );
    f.ok(&["get", "profiles"], "NAME   \nnet1   \n");

    let gnp = f.file(
        "gnp.yaml",
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: allow-web\nspec:\n  order: 10\n  selector: has(web)\n  ingress:\n  - action: Allow\n    protocol: TCP\n    source:\n      selector: has(net2)\n    destination:\n      ports: [80]\n",
    );
    f.ok(
        &["create", "-f", &gnp],
        "Successfully created 1 'GlobalNetworkPolicy' resource(s)\n",
    );
    let wide = f.stdout(&["get", "gnp", "-o", "wide"]);
    assert!(
        wide.starts_with("NAME") && wide.contains("allow-web") && wide.contains("has(web)"),
        "{wide}"
    );

    f.ok(
        &["delete", "ippool", "pool1"],
        "Successfully deleted 1 'IPPool' resource(s)\n",
    );
    f.fails(
        &["get", "ippool", "pool1"],
        "Failed to get resources: resource does not exist: IPPool(pool1) with error: <nil>",
    );
    f.ok(
        &["delete", "-f", &gnp],
        "Successfully deleted 1 'GlobalNetworkPolicy' resource(s)\n",
    );
    f.ok(
        &["delete", "profile", "net1"],
        "Successfully deleted 1 'Profile' resource(s)\n",
    );
    f.ok(
        &["delete", "bgpconfiguration", "default"],
        "Successfully deleted 1 'BGPConfiguration' resource(s)\n",
    );
    f.ok(&["get", "gnp"], "NAME   \n");
}

pub(crate) fn create_of_an_existing_resource_fails_unless_skipped(f: &Fixture) {
    let p = f.file("pool.yaml", &pool("p", "10.20.0.0/24"));
    f.ok(
        &["create", "-f", &p],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
    f.fails(
        &["create", "-f", &p],
        "Failed to create 'IPPool' resource: [resource already exists: IPPool(p)]",
    );
    f.ok(
        &["create", "-f", &p, "--skip-exists"],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
    // Two pools, one already there: partial success, then the error.
    let two = f.file(
        "two.yaml",
        &format!(
            "{}---\n{}",
            pool("p", "10.20.0.0/24"),
            pool("q", "10.21.0.0/24")
        ),
    );
    let r = f.run(&["create", "-f", &two]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        "Partial success: created the first 1 out of 2 'IPPool' resources:\n"
    );
    assert_eq!(
        r.stderr.trim_end(),
        "Hit error: [resource already exists: IPPool(p)]"
    );
    f.fails(&["create", "-f", &two], "Failed to create any 'IPPool' resources: [resource already exists: IPPool(p) resource already exists: IPPool(q)]");
}

pub(crate) fn multi_document_files_and_stdin(f: &Fixture) {
    let mixed = format!(
        "{}---\napiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: net2\nspec: {{}}\n---\n{}",
        pool("a", "10.30.0.0/24"),
        pool("b", "10.31.0.0/24")
    );
    let file = f.file("mixed.yaml", &mixed);
    f.ok(
        &["create", "-f", &file],
        "Successfully created 3 resource(s)\n",
    );
    let listed = f.stdout(&["get", "-f", &file]);
    assert!(
        listed.contains("10.30.0.0/24")
            && listed.contains("10.31.0.0/24")
            && listed.contains("net2"),
        "{listed}"
    );

    // JSON on stdin, two pools as a list.
    let json = r#"{"apiVersion":"projectcalico.org/v3","kind":"IPPoolList","items":[
        {"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"c"},"spec":{"cidr":"10.32.0.0/24","natOutgoing":true}},
        {"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"d"},"spec":{"cidr":"10.33.0.0/24"}}]}"#;
    let r = f.run_with(&["apply", "-f", "-"], json);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Successfully applied 2 'IPPool' resource(s)\n"),
        "{}",
        r.stderr
    );
    let wide = f.stdout(&["get", "ippool", "c", "-o", "wide"]);
    assert!(
        wide.lines()
            .nth(1)
            .is_some_and(|l| l.contains("10.32.0.0/24") && l.contains("true")),
        "{wide}"
    );
    f.ok(
        &["delete", "-f", &file],
        "Successfully deleted 3 resource(s)\n",
    );
    let r = f.run_with(&["delete", "-f", "-"], json);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Successfully deleted 2 'IPPool' resource(s)\n"),
        "{}",
        r.stderr
    );
}

pub(crate) fn get_yaml_can_be_applied_again_and_a_stale_version_conflicts(f: &Fixture) {
    let p = f.file("pool.yaml", &pool("p", "10.40.0.0/16"));
    f.ok(
        &["create", "-f", &p],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
    let one = f.stdout(&["get", "ippool", "p", "-o", "yaml"]);
    let r = f.run_with(&["apply", "-f", "-"], &one);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Successfully applied 1 'IPPool' resource(s)\n"),
        "{}",
        r.stderr
    );
    // The apply moved the revision on: the saved YAML is stale now.
    let r = f.run_with(&["replace", "-f", "-"], &one);
    assert_eq!(
        (r.code, r.stderr.trim_end()),
        (
            1,
            "Failed to replace 'IPPool' resource: update conflict: IPPool(p)"
        )
    );
    // A fresh copy replaces fine, and the change sticks.
    let fresh = f
        .stdout(&["get", "ippool", "p", "-o", "yaml"])
        .replace("spec:\n", "spec:\n  natOutgoing: true\n");
    let r = f.run_with(&["replace", "-f", "-"], &fresh);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Successfully replaced 1 'IPPool' resource(s)\n"),
        "{}",
        r.stderr
    );
    assert!(f
        .stdout(&["get", "ippool", "p", "-o", "yaml"])
        .contains("natOutgoing: true"));
    // A listing (IPPoolList) applies again too, as JSON and as YAML.
    let list = f.stdout(&["get", "ippools", "-o", "yaml"]);
    assert!(list.contains("kind: IPPoolList"), "{list}");
    let r = f.run_with(&["apply", "-f", "-"], &list);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Successfully applied 1 'IPPool' resource(s)\n"),
        "{}",
        r.stderr
    );
    let json = f.stdout(&["get", "ippools", "-o", "json"]);
    let r = f.run_with(&["apply", "-f", "-"], &json);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "Successfully applied 1 'IPPool' resource(s)\n"),
        "{}",
        r.stderr
    );
}

pub(crate) fn replace_needs_an_existing_resource(f: &Fixture) {
    let p = f.file("pool.yaml", &pool("ghost", "10.50.0.0/24"));
    f.fails(&["replace", "-f", &p], "Failed to replace 'IPPool' resource: resource does not exist: IPPool(ghost) with error: <nil>");
    f.ok(
        &["apply", "-f", &p],
        "Successfully applied 1 'IPPool' resource(s)\n",
    );
    f.ok(
        &["replace", "-f", &p],
        "Successfully replaced 1 'IPPool' resource(s)\n",
    );
}
pub(crate) fn delete_of_a_missing_resource(f: &Fixture) {
    f.fails(&["delete", "ippool", "ghost"], "Failed to delete 'IPPool' resource: resource does not exist: IPPool(ghost) with error: <nil>");
    f.ok(
        &["delete", "ippool", "ghost", "--skip-not-exists"],
        "Successfully deleted 1 'IPPool' resource(s)\n",
    );
    // A manifest's stale resourceVersion guards a delete.
    f.ok(
        &[
            "create",
            "-f",
            &f.file("p.yaml", &pool("p", "10.110.0.0/24")),
        ],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
    let stale = f.stdout(&["get", "ippool", "p", "-o", "yaml"]);
    f.ok(
        &["label", "ippool", "p", "x=y"],
        "Successfully set label x on ippool p\n",
    );
    let r = f.run_with(&["delete", "-f", "-"], &stale);
    assert_eq!(
        (r.code, r.stderr.trim_end()),
        (
            1,
            "Failed to delete 'IPPool' resource: update conflict: IPPool(p)"
        )
    );
    f.ok(
        &["delete", "ippool", "p"],
        "Successfully deleted 1 'IPPool' resource(s)\n",
    );
}

/// calicoctl's writes first create Calico's built-in tiers (libcalico-go's EnsureInitialized):
/// they are listed after any create, apply or replace, with Calico's orders, and a tier of
/// theirs cannot be created again.
pub(crate) fn built_in_tiers_exist_after_a_write(f: &Fixture) {
    f.ok(&["get", "tiers"], "NAME   ORDER   \n");
    f.ok(
        &["apply", "-f", &f.file("p.yaml", &pool("p", "10.91.0.0/24"))],
        "Successfully applied 1 'IPPool' resource(s)\n",
    );
    f.ok(
        &["get", "tiers"],
        "NAME            ORDER      \ndefault         1000000    \nkube-admin      1000       \nkube-baseline   10000000   \n",
    );
    let yaml = f.stdout(&["get", "tier", "kube-baseline", "-o", "yaml"]);
    assert!(
        yaml.contains("defaultAction: Pass") && yaml.contains("order: 10000000"),
        "{yaml}"
    );
    let tier = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: default\nspec:\n  order: 1000000\n  defaultAction: Deny\n";
    f.fails(
        &["create", "-f", &f.file("t.yaml", tier)],
        "Failed to create 'Tier' resource: [resource already exists: Tier(default)]",
    );
    // A policy's tier must exist when the policy is created (libcalico-go's Create).
    let gnp = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: security.g\nspec:\n  tier: security\n";
    f.fails(
        &["create", "-f", &f.file("g.yaml", gnp)],
        "Failed to create 'GlobalNetworkPolicy' resource: [resource does not exist: Tier(security) with error: <nil>]",
    );
    let security = tier
        .replace("name: default", "name: security")
        .replace("1000000", "100");
    f.ok(
        &["create", "-f", &f.file("s.yaml", &security)],
        "Successfully created 1 'Tier' resource(s)\n",
    );
    f.ok(
        &["create", "-f", &f.file("g.yaml", gnp)],
        "Successfully created 1 'GlobalNetworkPolicy' resource(s)\n",
    );
    let yaml = f.stdout(&["get", "gnp", "security.g", "-o", "yaml"]);
    assert!(yaml.contains("projectcalico.org/tier: security"), "{yaml}");
}

/// `get -o custom-columns=...`: the named ones of the kind's columns, in the order given;
/// an unknown heading is refused naming the valid ones (calicoctl's GetTableTemplate).
pub(crate) fn get_with_custom_columns(f: &Fixture) {
    let nat = pool("b", "10.93.0.0/24").replace("spec:\n", "spec:\n  natOutgoing: true\n");
    let two = format!("{}---\n{nat}", pool("a", "10.92.0.0/24"));
    f.ok(
        &["create", "-f", &f.file("two.yaml", &two)],
        "Successfully created 2 'IPPool' resource(s)\n",
    );
    f.ok(
        &["get", "ippools", "-o", "custom-columns=CIDR,NAT,NAME"],
        "CIDR           NAT     NAME   \n10.92.0.0/24   false   a      \n10.93.0.0/24   true    b      \n",
    );
    f.fails(
        &["get", "ippools", "-o", "custom-columns=CIDR,COLOUR"],
        "Failed to get resources: unknown heading COLOUR, valid values are: NAME, CIDR, NAT, IPIPMODE, VXLANMODE, DISABLED, DISABLEBGPEXPORT, SELECTOR",
    );
    f.fails(
        &["get", "ippools", "-o", "custom-columns="],
        "Failed to get resources: need to specify at least one column",
    );
}
