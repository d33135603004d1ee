//! brindlectl end to end: the real binary against the embedded store (a temp file) and
//! against a real etcd started by the test, with the same cases for both backends.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use testkit::{start_etcd, EtcdMember, TempDir};

const BRINDLECTL: &str = env!("CARGO_BIN_EXE_brindlectl");

/// One backend with a brindlectl config file pointing at it.
struct Fixture {
    dir: TempDir,
    config: PathBuf,
    _etcd: Option<EtcdMember>,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Fixture {
    fn embedded(label: &str) -> Fixture {
        let dir = TempDir::new(&format!("ctl-{label}"));
        let config = dir.path().join("brindlectl.cfg");
        let store = dir.path().join("datastore.redb");
        std::fs::write(
            &config,
            format!(
                "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n  datastoreType: embedded\n  embeddedPath: {}\n",
                store.display()
            ),
        )
        .unwrap();
        Fixture {
            dir,
            config,
            _etcd: None,
        }
    }

    fn etcd(label: &str) -> Fixture {
        let etcd = start_etcd(&format!("ctl-{label}"));
        let dir = TempDir::new(&format!("ctl-{label}"));
        let config = dir.path().join("brindlectl.cfg");
        std::fs::write(
            &config,
            format!(
                "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: {}\n",
                etcd.client_url
            ),
        )
        .unwrap();
        Fixture {
            dir,
            config,
            _etcd: Some(etcd),
        }
    }

    /// Runs `brindlectl -c <config> args...` with `stdin` as its input.
    fn run_with(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = Command::new(BRINDLECTL)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            // The config file is the whole configuration; keep the caller's env out anyway.
            .env_remove("DATASTORE_TYPE")
            .env_remove("ETCD_ENDPOINTS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, "")
    }

    /// Runs and asserts success with exactly `stdout`.
    fn ok(&self, args: &[&str], stdout: &str) {
        let r = self.run(args);
        assert_eq!(
            (r.code, r.stdout.as_str(), r.stderr.as_str()),
            (0, stdout, ""),
            "brindlectl {args:?}"
        );
    }

    /// Runs and asserts exit code 1 with exactly `stderr` (plus the newline).
    fn fails(&self, args: &[&str], stderr: &str) {
        let r = self.run(args);
        assert_eq!(
            (r.code, r.stderr.trim_end()),
            (1, stderr),
            "brindlectl {args:?}; stdout {}",
            r.stdout
        );
    }

    /// Runs expecting success; returns stdout.
    fn stdout(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "brindlectl {args:?}: {}", r.stderr);
        r.stdout
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn store(&self) -> Arc<dyn datastore::Datastore> {
        let config = cli::ctl::config::from_file(&self.config).unwrap();
        datastore::open(&config).unwrap()
    }
}

fn pool(name: &str, cidr: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: {name}\nspec:\n  cidr: {cidr}\n")
}

/// Declares each case as one test per backend.
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $( #[test] fn $case() { super::$case(&super::Fixture::embedded(stringify!($case))) } )*
        }
        mod etcd {
            $( #[test] fn $case() { super::$case(&super::Fixture::etcd(stringify!($case))) } )*
        }
    };
}

both_backends!(
    create_get_delete_round_trip_for_several_kinds,
    create_of_an_existing_resource_fails_unless_skipped,
    multi_document_files_and_stdin,
    get_yaml_can_be_applied_again_and_a_stale_version_conflicts,
    replace_needs_an_existing_resource,
    invalid_manifests_name_the_field_and_value,
    overlapping_pools_are_refused,
    pool_cidr_is_immutable,
    namespaces_and_all_namespaces,
    label_and_patch,
    ipam_show_release_and_check_after_allocating,
    version_reports_the_cluster_information,
    delete_of_a_missing_resource,
);

fn create_get_delete_round_trip_for_several_kinds(f: &Fixture) {
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

fn create_of_an_existing_resource_fails_unless_skipped(f: &Fixture) {
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

fn multi_document_files_and_stdin(f: &Fixture) {
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

fn get_yaml_can_be_applied_again_and_a_stale_version_conflicts(f: &Fixture) {
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
        .replace("natOutgoing: false", "natOutgoing: true");
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

fn replace_needs_an_existing_resource(f: &Fixture) {
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

fn invalid_manifests_name_the_field_and_value(f: &Fixture) {
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
    f.fails(&["get", "ippools", "-o", "xml"], "Failed to get resources: unrecognized output format 'xml' (expected ps, wide, yaml or json)");
}

fn overlapping_pools_are_refused(f: &Fixture) {
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

fn pool_cidr_is_immutable(f: &Fixture) {
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

fn namespaces_and_all_namespaces(f: &Fixture) {
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
}

fn label_and_patch(f: &Fixture) {
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
    // Removed by the patch, then defaulted again as Calico does.
    assert_eq!(v["spec"]["natOutgoing"], serde_json::json!(false), "{v}");
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

fn ipam_show_release_and_check_after_allocating(f: &Fixture) {
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
    let block = ipam::Ipv4Cidr::containing(ips[0], 26).unwrap().to_string();
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
    let check = f.stdout(&["ipam", "check"]);
    assert!(
        check.contains("Found 4 IPs that are allocated in IPAM but not actually in use."),
        "{check}"
    );
    assert!(
        check.contains("Found 1 blocks affine to nodes that do not exist."),
        "{check}"
    );
    assert!(
        check.contains(&format!("  {} leaked; handle h1", ips[1])),
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

fn version_reports_the_cluster_information(f: &Fixture) {
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

fn delete_of_a_missing_resource(f: &Fixture) {
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

// Backend-independent behaviour.

#[test]
fn environment_configures_the_datastore_without_a_config_file() {
    // Precondition of this test: no default config file that would take precedence.
    assert!(
        !std::path::Path::new("/etc/brindle/brindlectl.cfg").exists(),
        "/etc/brindle/brindlectl.cfg exists on this host"
    );
    let dir = TempDir::new("ctl-env");
    let store = dir.path().join("env.redb");
    let p = dir.path().join("p.yaml");
    std::fs::write(&p, pool("envpool", "10.120.0.0/24")).unwrap();
    let run = |args: &[&str]| {
        Command::new(BRINDLECTL)
            .args(args)
            .env("DATASTORE_TYPE", "embedded")
            .env("BRINDLE_EMBEDDED_PATH", &store)
            .env_remove("ETCD_ENDPOINTS")
            .output()
            .unwrap()
    };
    let out = run(&["create", "-f", p.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Successfully created 1 'IPPool' resource(s)\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(store.exists());
    assert!(String::from_utf8_lossy(&run(&["get", "ippools"]).stdout).contains("envpool"));
    let out = Command::new(BRINDLECTL)
        .args(["get", "ippools"])
        .env("DATASTORE_TYPE", "kubernetes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATASTORE_TYPE=\"kubernetes\""));
}

#[test]
fn config_file_errors_name_the_field() {
    let dir = TempDir::new("ctl-badcfg");
    let cfg = dir.path().join("bad.cfg");
    std::fs::write(&cfg, "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  datastoreType: kubernetes\n").unwrap();
    let out = Command::new(BRINDLECTL)
        .arg("-c")
        .arg(&cfg)
        .args(["get", "ippools"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("spec.datastoreType") && stderr.contains("kubernetes"),
        "{stderr}"
    );
    // A named config file must exist (the environment is not consulted instead).
    let out = Command::new(BRINDLECTL)
        .args(["-c", "/nonexistent/brindlectl.cfg", "get", "ippools"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/brindlectl.cfg"));
}

#[test]
fn node_status_reports_whether_a_node_runs_here() {
    // A stand-in for brindle-node's health endpoint on a free loopback port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        use std::io::Read;
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf);
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
            .unwrap();
    });
    let no_socket = "/nonexistent/brindle-node.sock";
    let out = Command::new(BRINDLECTL)
        .args([
            "node",
            "status",
            "--health",
            &addr,
            "--control-socket",
            no_socket,
        ])
        .output()
        .unwrap();
    server.join().unwrap();
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stdout).as_ref()),
        (Some(0), "Calico process is running.\n\nIPv4 BGP status\nNo IPv4 peers found.\n\nIPv6 BGP status\nNo IPv6 peers found.\n\n")
    );
    // Nothing listens on the port any more.
    let out = Command::new(BRINDLECTL)
        .args([
            "node",
            "status",
            "--health",
            &addr,
            "--control-socket",
            no_socket,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Calico process is not running.\n"
    );
}
