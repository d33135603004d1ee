//! `get -o go-template=` / `go-template-file=` and `get --export`.

use crate::fixture::{pool, Fixture};

pub(crate) fn get_with_go_templates(f: &Fixture) {
    let labelled = pool("b", "10.95.0.0/24").replace(
        "  name: b\n",
        "  name: b\n  labels:\n    zone: west\n    rack: r1\n",
    );
    let two = format!("{}---\n{labelled}", pool("a", "10.94.0.0/24"));
    f.ok(
        &["create", "-f", &f.file("two.yaml", &two)],
        "Successfully created 2 'IPPool' resource(s)\n",
    );
    // A listing is one IPPoolList; Go field names reach the JSON fields, and ObjectMeta's
    // fields are promoted.
    f.ok(
        &[
            "get",
            "ippools",
            "-o",
            r#"go-template={{range .}}{{.Kind}}:{{range .Items}} {{.ObjectMeta.Name}}={{.Spec.CIDR}}/{{.Spec.BlockSize}}{{end}}{{end}}"#,
        ],
        "IPPoolList: a=10.94.0.0/24/26 b=10.95.0.0/24/26",
    );
    // By name: one object per name; calicoctl's join and printf; the default AS number.
    f.ok(
        &[
            "get",
            "ippool",
            "b",
            "a",
            "-o",
            r#"go-template={{range $i, $p := .}}{{if $i}}{{"\n"}}{{end}}{{printf "%-3s" $p.Name}}[{{join .Metadata.Labels ","}}] {{if .Spec.NATOutgoing}}nat{{else}}no-nat{{end}}{{end}} {{config "asnumber"}}"#,
        ],
        "b  [rack=r1,zone=west] no-nat\na  [] no-nat 64512",
    );
    let file = f.file(
        "names.tmpl",
        "{{range .}}{{range .Items}}{{.Name}}\n{{end}}{{end}}",
    );
    f.ok(
        &["get", "ippools", "-o", &format!("go-template-file={file}")],
        "a\nb\n",
    );
    // Errors name the construct, the flag or the file; none touches the datastore.
    f.fails(
        &["get", "ippools", "-o", "go-template"],
        "Failed to get resources: need to specify a template",
    );
    f.fails(
        &["get", "ippools", "-o", "go-template-file="],
        "Failed to get resources: need to specify a template file",
    );
    f.fails(
        &["get", "ippools", "-o", r#"go-template={{define "x"}}{{end}}"#],
        "template: get:1: \"define\" is not supported by brindlectl's go-template (see docs/brindlectl.md for the supported subset)",
    );
    f.fails(
        &["get", "ippools", "-o", "go-template={{range .}}"],
        "template: get:1: unexpected EOF: {{range}} without {{end}}",
    );
    f.fails(
        &["get", "ippools", "-o", "go-template={{range .}}{{.Items.Name.X}}{{end}}"],
        "template: get:1: executing \"get\" at <.Items.Name.X>: can't evaluate field Name in type []interface {}",
    );
    let missing = format!("{file}.missing");
    let r = f.run(&[
        "get",
        "ippools",
        "-o",
        &format!("go-template-file={missing}"),
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with(&format!(
            "Failed to execute command: cannot read go-template-file '{missing}': "
        )),
        "{}",
        r.stderr
    );
}

pub(crate) fn get_export_strips_cluster_metadata(f: &Fixture) {
    let policy = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: ns1\nspec:\n  selector: all()\n";
    f.ok(
        &["create", "-f", &f.file("p.yaml", policy)],
        "Successfully created 1 'NetworkPolicy' resource(s)\n",
    );
    let plain = f.stdout(&["get", "networkpolicy", "p", "-n", "ns1", "-o", "yaml"]);
    for field in [
        "namespace: ns1",
        "resourceVersion:",
        "uid:",
        "creationTimestamp:",
    ] {
        assert!(plain.contains(field), "{field} in {plain}");
    }
    let exported = f.stdout(&[
        "get",
        "networkpolicy",
        "p",
        "-n",
        "ns1",
        "-o",
        "yaml",
        "--export",
    ]);
    for field in [
        "namespace:",
        "resourceVersion:",
        "uid:",
        "creationTimestamp:",
    ] {
        assert!(!exported.contains(field), "{field} in {exported}");
    }
    assert!(
        exported.contains("name: p") && exported.contains("selector: all()"),
        "{exported}"
    );
    // calicoctl leaves a listing as it is.
    let listed = f.stdout(&[
        "get",
        "networkpolicies",
        "-n",
        "ns1",
        "-o",
        "yaml",
        "--export",
    ]);
    assert!(
        listed.contains("uid:") && listed.contains("namespace: ns1"),
        "{listed}"
    );
    // The exported resource is created again elsewhere (another namespace here).
    let file = f.file("exported.yaml", &exported);
    f.ok(
        &["create", "-n", "ns2", "-f", &file],
        "Successfully created 1 'NetworkPolicy' resource(s)\n",
    );
}

pub(crate) fn manifests_of_a_directory_and_recursive(f: &Fixture) {
    let dir = f.file("manifests", "");
    std::fs::remove_file(&dir).unwrap();
    std::fs::create_dir_all(format!("{dir}/sub")).unwrap();
    std::fs::write(format!("{dir}/b.yaml"), pool("b", "10.97.0.0/24")).unwrap();
    std::fs::write(format!("{dir}/a.YML"), pool("a", "10.96.0.0/24")).unwrap();
    std::fs::write(format!("{dir}/notes.txt"), "not a manifest").unwrap();
    std::fs::write(format!("{dir}/sub/c.json"), r#"{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"c"},"spec":{"cidr":"10.98.0.0/24"}}"#).unwrap();
    // Without -R: the directory's own manifests, in lexical order.
    f.ok(
        &["create", "-f", &dir],
        "Successfully created 2 'IPPool' resource(s)\n",
    );
    f.ok(
        &[
            "get",
            "-f",
            &dir,
            "-o",
            "go-template={{range .}}{{.Name}} {{end}}",
        ],
        "a b ",
    );
    // With -R (and --recursive) the subdirectory's too.
    f.ok(
        &["apply", "-R", "-f", &dir],
        "Successfully applied 3 'IPPool' resource(s)\n",
    );
    f.ok(
        &["replace", "--recursive", "-f", &dir],
        "Successfully replaced 3 'IPPool' resource(s)\n",
    );
    f.ok(
        &["validate", "-R", "-f", &dir],
        "Successfully validated 3 'IPPool' resource(s)\n",
    );
    f.ok(
        &["delete", "-R", "-f", &dir],
        "Successfully deleted 3 'IPPool' resource(s)\n",
    );
    // A bad file is named; an empty one and an empty directory fail as in calicoctl.
    std::fs::write(format!("{dir}/sub/d.yaml"), pool("d", "10.99.0.0/33")).unwrap();
    let r = f.run(&["create", "-R", "-f", &dir]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.starts_with(&format!(
            "Failed to execute command: {dir}/sub/d.yaml: document[0]: "
        )) && r.stderr.contains("10.99.0.0/33"),
        "{}",
        r.stderr
    );
    std::fs::write(format!("{dir}/sub/d.yaml"), "").unwrap();
    f.fails(
        &["create", "-R", "-f", &dir],
        &format!("no resources specified in file {dir}/sub/d.yaml"),
    );
    let empty = format!("{dir}/sub/empty");
    std::fs::create_dir(&empty).unwrap();
    f.fails(
        &["create", "-f", &empty],
        &format!("no resources specified in directory {empty}"),
    );
    // --skip-empty: empty files and directories are no error.
    f.ok(
        &["create", "-R", "--skip-empty", "-f", &dir],
        "Successfully created 3 'IPPool' resource(s)\n",
    );
    f.ok(
        &["apply", "--skip-empty", "-f", &empty],
        "No resources specified\n",
    );
}
