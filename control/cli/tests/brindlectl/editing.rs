//! Namespaced resources, labels and patches.

use super::fixture::*;

pub(crate) fn namespaces_and_all_namespaces(f: &Fixture) {
    let np = |name: &str| {
        format!("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: {name}\nspec:\n  selector: has(web)\n")
    };
    f.ok(
        &["create", "-f", &f.file("d.yaml", &np("in-default"))],
        "Successfully created 1 'NetworkPolicy' resource(s)\n",
    );
    f.ok(
        &[
            "create",
            "-n",
            "ns1",
            "-f",
            &f.file("n.yaml", &np("in-ns1")),
        ],
        "Successfully created 1 'NetworkPolicy' resource(s)\n",
    );
    f.ok(&["get", "networkpolicy"], "NAME         \nin-default   \n");
    f.ok(
        &["get", "networkpolicy", "-n", "ns1"],
        "NAME     \nin-ns1   \n",
    );
    f.ok(
        &["get", "networkpolicy", "-A"],
        "NAMESPACE   NAME         \ndefault     in-default   \nns1         in-ns1       \n",
    );
    let yaml = f.stdout(&["get", "policy", "in-ns1", "-n", "ns1", "-o", "yaml"]);
    assert!(yaml.contains("namespace: ns1"), "{yaml}");
    f.fails(&["get", "networkpolicy", "in-ns1"], "Failed to get resources: resource does not exist: NetworkPolicy(default/in-ns1) with error: <nil>");
    f.ok(
        &["delete", "np", "in-ns1", "-n", "ns1"],
        "Successfully deleted 1 'NetworkPolicy' resource(s)\n",
    );
    f.ok(
        &["get", "networkpolicy", "-A"],
        "NAMESPACE   NAME         \ndefault     in-default   \n",
    );
    // An empty metadata.namespace is none: -n fills it in, else `default` (calicoctl's
    // handleNamespace).
    let empty_ns =
        np("empty-ns").replace("  name: empty-ns\n", "  name: empty-ns\n  namespace: ''\n");
    f.ok(
        &["create", "-n", "ns2", "-f", &f.file("e.yaml", &empty_ns)],
        "Successfully created 1 'NetworkPolicy' resource(s)\n",
    );
    f.ok(
        &["apply", "-f", &f.file("e2.yaml", &empty_ns)],
        "Successfully applied 1 'NetworkPolicy' resource(s)\n",
    );
    f.ok(
        &["get", "networkpolicy", "-A"],
        "NAMESPACE   NAME         \ndefault     empty-ns     \ndefault     in-default   \nns2         empty-ns     \n",
    );
    // A namespace for a cluster-scoped kind is an error, as calicoctl words it.
    for args in [
        &["get", "ippool", "-A"][..],
        &["get", "ippools", "-n", "ns1"],
        &["get", "ippool", "p", "-n", "ns1"],
        &["delete", "ippool", "p", "-n", "ns1"],
    ] {
        f.fails(args, "IPPool is not namespaced");
    }
}

pub(crate) fn label_and_patch(f: &Fixture) {
    f.ok(
        &[
            "create",
            "-f",
            &f.file("p.yaml", &pool("p", "10.90.0.0/24")),
        ],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
    f.ok(
        &["label", "ippool", "p", "env=prod"],
        "Successfully set label env on ippool p\n",
    );
    f.fails(
        &["label", "ippool", "p", "env=dev"],
        "failed to update label of ippool p, key env is already present. please use '--overwrite' to set a new value.",
    );
    f.ok(
        &["label", "ippool", "p", "env=dev", "--overwrite"],
        "Successfully updated label env on ippool p\n",
    );
    assert!(f
        .stdout(&["get", "ippool", "p", "-o", "yaml"])
        .contains("env: dev"));
    f.ok(
        &["label", "ippool", "p", "env", "--remove"],
        "Successfully removed label env from ippool p\n",
    );
    f.fails(
        &["label", "ippool", "p", "env", "--remove"],
        "can not remove label of ippool p, key env does not exist",
    );
    f.fails(
        &["label", "ippool", "nope", "a=b"],
        "failed to get ippool nope, error resource does not exist: IPPool(nope) with error: <nil>",
    );

    f.ok(
        &[
            "patch",
            "ippool",
            "p",
            "-p",
            r#"{"spec":{"natOutgoing":true,"ipipMode":"Always"}}"#,
        ],
        "Successfully patched 1 'IPPool' resource\n",
    );
    let v: serde_json::Value =
        serde_json::from_str(&f.stdout(&["get", "ippool", "p", "-o", "json"])).unwrap();
    assert_eq!(
        (
            v["spec"]["natOutgoing"].clone(),
            v["spec"]["ipipMode"].clone()
        ),
        (serde_json::json!(true), serde_json::json!("Always"))
    );
    f.ok(
        &[
            "patch",
            "ippool",
            "p",
            "-p",
            r#"{"spec":{"natOutgoing":null}}"#,
        ],
        "Successfully patched 1 'IPPool' resource\n",
    );
    let v: serde_json::Value =
        serde_json::from_str(&f.stdout(&["get", "ippool", "p", "-o", "json"])).unwrap();
    // Removed by the patch; false is Go's zero value, which calicoctl does not print.
    assert_eq!(v["spec"]["natOutgoing"], serde_json::Value::Null, "{v}");
    let r = f.run(&[
        "patch",
        "ippool",
        "p",
        "-p",
        r#"{"spec":{"ipipMode":"Often"}}"#,
    ]);
    assert!(
        r.code == 1 && r.stderr.contains("spec.ipipMode") && r.stderr.contains("Often"),
        "{}",
        r.stderr
    );
    f.fails(
        &["patch", "ippool", "nope", "-p", "{}"],
        "Failed to patch 'IPPool' resource: resource does not exist: IPPool(nope) with error: <nil>",
    );
}
