//! Manifests the datastore refuses: invalid fields, overlapping pools, a changed pool CIDR.

use super::fixture::*;

pub(crate) fn invalid_manifests_name_the_field_and_value(f: &Fixture) {
    let bad_cidr = f.file("bad.yaml", &pool("bad", "10.60.0.0/33"));
    let r = f.run(&["create", "-f", &bad_cidr]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with("Failed to execute command: ")
            && r.stderr.contains("spec.cidr")
            && r.stderr.contains("10.60.0.0/33"),
        "{}",
        r.stderr
    );
    let bad_mode = f.file(
        "mode.yaml",
        &format!("{}  ipipMode: Sometimes\n", pool("m", "10.61.0.0/24")),
    );
    let r = f.run(&["apply", "-f", &bad_mode]);
    assert!(
        r.code == 1 && r.stderr.contains("spec.ipipMode") && r.stderr.contains("Sometimes"),
        "{}",
        r.stderr
    );
    let bad_kind = f.file(
        "kind.yaml",
        "apiVersion: projectcalico.org/v3\nkind: Pod\nmetadata:\n  name: x\n",
    );
    let r = f.run(&["create", "-f", &bad_kind]);
    assert!(
        r.code == 1 && r.stderr.contains("kind") && r.stderr.contains("'Pod'"),
        "{}",
        r.stderr
    );
    // Second document bad: nothing at all is written.
    let half = f.file(
        "half.yaml",
        &format!(
            "{}---\n{}",
            pool("good", "10.62.0.0/24"),
            pool("bad", "10.63.0.0/40")
        ),
    );
    let r = f.run(&["create", "-f", &half]);
    assert!(
        r.code == 1 && r.stderr.contains("document[1]") && r.stderr.contains("10.63.0.0/40"),
        "{}",
        r.stderr
    );
    f.ok(&["get", "ippools"], "NAME   CIDR   SELECTOR   \n");
    f.fails(
        &["get", "pods"],
        "Failed to get resources: resource type 'pods' is not supported",
    );
    f.fails(
        &["get", "ippools", "-o", "xml"],
        "Failed to get resources: unrecognized output format 'xml'",
    );
}

pub(crate) fn overlapping_pools_are_refused(f: &Fixture) {
    f.ok(
        &[
            "create",
            "-f",
            &f.file("a.yaml", &pool("wide", "10.70.0.0/16")),
        ],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
    let r = f.run(&[
        "create",
        "-f",
        &f.file("b.yaml", &pool("inside", "10.70.8.0/24")),
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("Failed to create 'IPPool' resource: [IPPool(inside): error with field spec.cidr = '10.70.8.0/24'"), "{}", r.stderr);
    assert!(
        r.stderr.contains("overlaps with IPPool(wide)"),
        "{}",
        r.stderr
    );
    f.ok(
        &[
            "create",
            "-f",
            &f.file("c.yaml", &pool("beside", "10.71.0.0/24")),
        ],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
}

pub(crate) fn pool_cidr_is_immutable(f: &Fixture) {
    f.ok(
        &[
            "create",
            "-f",
            &f.file("a.yaml", &pool("p", "10.80.0.0/24")),
        ],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
    let r = f.run(&["apply", "-f", &f.file("b.yaml", &pool("p", "10.81.0.0/24"))]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("Failed to apply 'IPPool' resource: [IPPool(p): error with field spec.cidr = '10.81.0.0/24'"), "{}", r.stderr);
    let r = f.run(&[
        "patch",
        "ippool",
        "p",
        "-p",
        r#"{"spec":{"cidr":"10.82.0.0/24"}}"#,
    ]);
    assert!(
        r.code == 1
            && r.stderr.starts_with("Failed to patch 'IPPool' resource: ")
            && r.stderr.contains("spec.cidr"),
        "{}",
        r.stderr
    );
    assert!(f
        .stdout(&["get", "ippool", "p", "-o", "yaml"])
        .contains("cidr: 10.80.0.0/24"));
}

/// A name or namespace from the command line is a segment of a datastore key: one that could
/// name another key ('/', '.', '..', whitespace) is refused with the value named, before the
/// store is asked (issue 14, item 7).
pub(crate) fn names_that_are_no_key_segment_are_refused(f: &Fixture) {
    f.ok(
        &[
            "create",
            "-f",
            &f.file("p.yaml", &pool("p1", "10.64.0.0/24")),
        ],
        "Successfully created 1 'IPPool' resource(s)\n",
    );
    for (args, what) in [
        (vec!["get", "ippool", "p1/../p1"], "name \"p1/../p1\""),
        (vec!["delete", "ippool", ".."], "name \"..\""),
        (vec!["label", "ippool", "a b", "x=y"], "name \"a b\""),
        (
            vec!["get", "workloadendpoint", "-n", "../ippools", "p1"],
            "namespace \"../ippools\"",
        ),
    ] {
        let r = f.run(&args);
        assert!(
            r.code == 1 && r.stderr.contains(&format!("invalid {what}")),
            "{args:?}: {}",
            r.stderr
        );
    }
    // The pool is untouched.
    assert!(f.stdout(&["get", "ippools"]).contains("p1"));
}

/// `validate -f` runs Calico's checks offline: it reports as create does, per resource, and
/// writes nothing (not even the built-in tiers).
pub(crate) fn validate_checks_without_writing(f: &Fixture) {
    f.ok(
        &[
            "validate",
            "-f",
            &f.file("ok.yaml", &pool("ok", "10.62.0.0/24")),
        ],
        "Successfully validated 1 'IPPool' resource(s)\n",
    );
    let two = format!(
        "{}---\n{}",
        pool("ok", "10.62.0.0/24"),
        pool("bad", "10.63.0.0/33")
    );
    let r = f.run(&["validate", "-f", &f.file("two.yaml", &two)]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            1,
            "Partial success: validated the first 1 out of 2 'IPPool' resources:\n"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .starts_with("Hit error: [IPPool(bad): error with field spec.cidr = '10.63.0.0/33'"),
        "{}",
        r.stderr
    );
    f.fails(
        &["validate", "-f", &f.file("bad.yaml", &pool("bad", "10.63.0.0/33"))],
        "Failed to validate 'IPPool' resource: [IPPool(bad): error with field spec.cidr = '10.63.0.0/33' (IPPool CIDR must be a valid subnet)]",
    );
    f.ok(&["get", "ippools"], "NAME   CIDR   SELECTOR   \n");
    f.ok(&["get", "tiers"], "NAME   ORDER   \n");
}

/// A WorkloadEndpoint's `qosControls`: applied, shown by `get -o yaml` as written (unset
/// limits left out), applied again unchanged; a limit brindle's vRouter does not enforce is
/// refused naming the field and the value, and nothing is written.
pub(crate) fn workload_endpoint_limits_round_trip_and_unenforced_ones_are_refused(f: &Fixture) {
    let wep = |qos: &str| {
        format!("apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: node1-cni-q1-eth0\n  namespace: default\nspec:\n  node: node1\n  orchestrator: cni\n  workload: q1\n  endpoint: eth0\n  interfaceName: caliq1\n  ipNetworks: [10.70.0.1/32]\n  qosControls:\n{qos}")
    };
    let limited = f.file(
        "limited.yaml",
        &wep("    ingressBandwidth: 20000000\n    ingressBurst: 4000000\n    egressPacketRate: 100\n"),
    );
    f.ok(
        &["apply", "-f", &limited],
        "Successfully applied 1 'WorkloadEndpoint' resource(s)\n",
    );
    let yaml = f.stdout(&["get", "wep", "node1-cni-q1-eth0", "-o", "yaml"]);
    let shown: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(
        shown["spec"]["qosControls"],
        serde_json::json!({"ingressBandwidth": 20000000, "ingressBurst": 4000000, "egressPacketRate": 100}),
        "{yaml}"
    );
    let again = f.file("again.yaml", &yaml);
    f.ok(
        &["apply", "-f", &again],
        "Successfully applied 1 'WorkloadEndpoint' resource(s)\n",
    );

    let peak = f.file(
        "peak.yaml",
        &wep("    ingressBandwidth: 10000000\n    ingressPeakrate: 20000000\n"),
    );
    let r = f.run(&["apply", "-f", &peak]);
    assert!(
        r.code == 1
            && r.stderr.contains("spec.qosControls.ingressPeakrate")
            && r.stderr.contains("20000000")
            && r.stderr.contains("does not enforce"),
        "{}",
        r.stderr
    );
    let kept = f.stdout(&["get", "wep", "node1-cni-q1-eth0", "-o", "yaml"]);
    assert!(
        kept.contains("ingressBandwidth: 20000000") && !kept.contains("Peakrate"),
        "{kept}"
    );
}
