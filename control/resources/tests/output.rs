//! calicoctl's output shapes: YAML/JSON of one resource or a list, and the ps/wide tables.

use resources::*;

fn pools() -> Vec<Resource> {
    load_documents(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: default-ipv4-ippool}\nspec: {cidr: 192.168.0.0/16, natOutgoing: true}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: net1}\nspec: {cidr: 10.20.0.0/24, ipipMode: Always}\n",
    )
    .unwrap()
}

#[test]
fn one_resource_prints_as_itself_several_as_a_list() {
    let p = pools();
    let one = to_yaml(&p[..1]);
    assert!(
        one.starts_with("apiVersion: projectcalico.org/v3\nkind: IPPool\n"),
        "{one}"
    );
    assert!(!one.contains("items"), "{one}");

    let two = to_yaml(&p);
    let v: serde_json::Value = serde_yaml_ng::from_str(&two).unwrap();
    assert_eq!(v["kind"], "IPPoolList");
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert_eq!(parse_documents(&two).unwrap(), p);

    let mut mixed = p.clone();
    mixed.push(Resource::from(Profile::new(
        Metadata::named("net1"),
        ProfileSpec::for_network("net1"),
    )));
    let v: serde_json::Value = serde_json::from_str(&to_json(&mixed)).unwrap();
    assert_eq!(v["kind"], "List");
    assert_eq!(parse_documents(&to_json(&mixed)).unwrap(), mixed);
}

#[test]
fn listing_a_kind_prints_a_typed_list_with_the_revision() {
    let p = pools();
    let yaml = list_to_yaml(Kind::IpPool, &p[..1], Some("1234"));
    let v: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(v["kind"], "IPPoolList");
    assert_eq!(v["metadata"]["resourceVersion"], "1234");
    assert_eq!(parse_documents(&yaml).unwrap(), p[..1].to_vec());

    let empty = list_to_json(Kind::NetworkPolicy, &[], None);
    let v: serde_json::Value = serde_json::from_str(&empty).unwrap();
    assert_eq!(v["kind"], "NetworkPolicyList");
    assert_eq!(v["items"], serde_json::json!([]));
    assert!(parse_documents(&empty).unwrap().is_empty());
}

#[test]
fn stored_value_has_no_resource_version_and_reads_back_with_the_revision() {
    let mut p = pools().remove(0);
    p.metadata_mut().resource_version = Some("9".into());
    let stored = String::from_utf8(p.to_stored_json()).unwrap();
    assert!(!stored.contains("resourceVersion"), "{stored}");
    assert!(
        stored.contains(r#""kind":"IPPool""#)
            && stored.contains(r#""apiVersion":"projectcalico.org/v3""#),
        "{stored}"
    );
    let back = Resource::from_stored(stored.as_bytes(), 17).unwrap();
    assert_eq!(back.metadata().resource_version.as_deref(), Some("17"));
    assert!(Resource::from_stored(b"{not json", 1).is_err());
    assert!(
        Resource::from_stored(br#"{"apiVersion":"projectcalico.org/v3","kind":"Nope"}"#, 1)
            .is_err()
    );
}

#[test]
fn ip_pool_tables() {
    let p = pools();
    let ps = render_table(Kind::IpPool, &p, false, false);
    let lines: Vec<Vec<&str>> = ps.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], vec!["NAME", "CIDR", "SELECTOR"]);
    assert_eq!(
        lines[1],
        vec!["default-ipv4-ippool", "192.168.0.0/16", "all()"]
    );
    assert_eq!(lines[2], vec!["net1", "10.20.0.0/24", "all()"]);
    // Columns line up: CIDR starts at the same offset on every line.
    let second_column = |l: &str| {
        let gap = l.find(' ').unwrap();
        gap + l[gap..].find(|c: char| c != ' ').unwrap()
    };
    let offsets: Vec<usize> = ps.lines().map(second_column).collect();
    assert!(offsets.windows(2).all(|w| w[0] == w[1]), "{ps}");

    let wide = render_table(Kind::IpPool, &p, true, false);
    let lines: Vec<Vec<&str>> = wide
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        vec![
            "NAME",
            "CIDR",
            "NAT",
            "IPIPMODE",
            "VXLANMODE",
            "DISABLED",
            "DISABLEBGPEXPORT",
            "SELECTOR"
        ]
    );
    assert_eq!(
        lines[1],
        vec![
            "default-ipv4-ippool",
            "192.168.0.0/16",
            "true",
            "Never",
            "Never",
            "false",
            "false",
            "all()"
        ]
    );
    assert_eq!(
        lines[2],
        vec![
            "net1",
            "10.20.0.0/24",
            "false",
            "Always",
            "Never",
            "false",
            "false",
            "all()"
        ]
    );
}

#[test]
fn workload_endpoint_and_node_tables() {
    let wep = load_documents(
        "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {name: host1-cni-0123456789ab-eth0, namespace: net1}\nspec: {node: host1, orchestrator: cni, workload: 0123456789ab, endpoint: eth0, interfaceName: cali0123456789a, ipNetworks: [10.20.0.2/32], profiles: [net1]}\n",
    )
    .unwrap();
    let ps = render_table(Kind::WorkloadEndpoint, &wep, false, false);
    let lines: Vec<Vec<&str>> = ps.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], vec!["WORKLOAD", "NODE", "NETWORKS", "INTERFACE"]);
    assert_eq!(
        lines[1],
        vec!["0123456789ab", "host1", "10.20.0.2/32", "cali0123456789a"]
    );
    let all = render_table(Kind::WorkloadEndpoint, &wep, false, true);
    let lines: Vec<Vec<&str>> = all
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0][0], "NAMESPACE");
    assert_eq!(lines[1][0], "net1");

    let nodes = parse_documents(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/manifests/node.yaml"
        ))
        .unwrap(),
    )
    .unwrap();
    let wide = render_table(Kind::Node, &nodes, true, false);
    let lines: Vec<Vec<&str>> = wide
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], vec!["NAME", "ASN", "IPV4", "IPV6"]);
    assert_eq!(
        lines[1],
        vec![
            "node-hostname",
            "64512",
            "10.244.0.1/24",
            "2001:db8:85a3::8a2e:370:7334/120"
        ]
    );
    assert_eq!(
        render_table(Kind::Node, &nodes, false, false)
            .lines()
            .nth(1)
            .unwrap()
            .trim(),
        "node-hostname"
    );

    // Global kinds get no NAMESPACE column even with -A.
    assert_eq!(Kind::IpPool.table_headers(false, true)[0], "NAME");
}

#[test]
fn bgp_peer_table() {
    let peers = parse_documents(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/manifests/bgp-topology.yaml"
        ))
        .unwrap(),
    )
    .unwrap()
    .into_iter()
    .filter(|r| r.kind() == Kind::BgpPeer)
    .collect::<Vec<_>>();
    let ps = render_table(Kind::BgpPeer, &peers, false, false);
    let lines: Vec<&str> = ps.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        vec!["NAME", "PEERIP", "NODE", "ASN"]
    );
    assert!(
        lines[1].starts_with("rack1-tor")
            && lines[1].contains("10.50.1.1")
            && lines[1].contains("rack == 'rack1'")
            && lines[1].contains("65101"),
        "{ps}"
    );
}

#[test]
fn merge_patch_changes_only_what_it_names() {
    let pool = pools().remove(1);
    let patched = pool
        .merge_patched(&serde_json::json!({"spec": {"natOutgoing": true, "ipipMode": null}}))
        .unwrap();
    let p = &patched.as_ip_pool().unwrap().spec;
    assert_eq!(p.nat_outgoing, Some(true));
    assert_eq!(p.ipip_mode, None, "null removes the field");
    assert_eq!(p.cidr, "10.20.0.0/24");
    assert!(validate_update(&pool, &patched).is_ok());

    let err = pool
        .merge_patched(&serde_json::json!({"spec": {"blockSize": "x"}}))
        .unwrap_err();
    assert_eq!(err.path(), Some("spec.blockSize"));
    let moved = pool
        .merge_patched(&serde_json::json!({"spec": {"cidr": "10.30.0.0/24"}}))
        .unwrap();
    assert!(validate_update(&pool, &moved)
        .unwrap_err()
        .has_path("spec.cidr"));
}

/// A set of thousands of nets makes a `-o wide` cell wider than `format!` can pad (u16): the
/// table must still print, every net in it (issue 15's crash).
#[test]
fn a_wide_table_of_a_set_with_thousands_of_nets_prints() {
    let nets: Vec<String> = (0..6000)
        .map(|i| format!("\"10.{}.{}.0/24\"", i / 256, i % 256))
        .collect();
    let yaml = format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata: {{name: big}}\nspec: {{nets: [{}]}}\n",
        nets.join(", ")
    );
    let sets = load_documents(&yaml).unwrap();
    let wide = render_table(Kind::GlobalNetworkSet, &sets, true, false);
    let row = wide.lines().nth(1).expect("a row for the set");
    assert!(row.starts_with("big "), "{}", &row[..80]);
    assert!(row.len() > 65_535, "the cell is wider than format! pads");
    assert!(row.contains("10.23.111.0/24"), "the last net is printed");
}

#[test]
fn durations_print_in_gos_form() {
    let loaded = load_documents(
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 64512, maxRestartTime: 125s}\n---\napiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: default}\nspec: {routeRefreshInterval: 90m, reportingInterval: 0.5s}\n",
    )
    .unwrap();
    let yaml = to_yaml(&loaded);
    for printed in [
        "maxRestartTime: 2m5s",
        "routeRefreshInterval: 1h30m0s",
        "reportingInterval: 500ms",
    ] {
        assert!(yaml.contains(printed), "{printed} in\n{yaml}");
    }
    // A bad duration is kept as written, for the error to name it.
    let err = load_documents("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 64512, maxRestartTime: 5 minutes}\n").unwrap_err();
    assert!(err.to_string().contains("'5 minutes'"), "{err}");
}

#[test]
fn false_omitempty_booleans_are_not_printed() {
    let loaded = load_documents(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, natOutgoing: false, disabled: false, disableBGPExport: false}\n---\napiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\nspec: {preDNAT: false, applyOnForward: false, doNotTrack: false}\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: b}\nspec: {peerIP: 10.0.0.1, asNumber: 64512, keepOriginalNextHop: false}\n",
    )
    .unwrap();
    for out in [to_yaml(&loaded), to_json(&loaded)] {
        for field in [
            "natOutgoing",
            "disabled",
            "disableBGPExport",
            "preDNAT",
            "applyOnForward",
            "doNotTrack",
            "keepOriginalNextHop",
        ] {
            assert!(!out.contains(field), "{field} printed in\n{out}");
        }
        // Calico's defaults are printed.
        assert!(
            out.contains("assignmentMode") && out.contains("Automatic"),
            "{out}"
        );
    }
    let loaded = load_documents("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, natOutgoing: true}\n").unwrap();
    assert!(to_yaml(&loaded).contains("natOutgoing: true"));
}

#[test]
fn an_empty_namespace_is_the_default_namespace() {
    let loaded = load_documents(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: ''}\nspec: {selector: all()}\n---\napiVersion: projectcalico.org/v3\nkind: NetworkSet\nmetadata: {name: s}\nspec: {nets: [10.0.0.0/8]}\n",
    )
    .unwrap();
    for r in &loaded {
        assert_eq!(r.metadata().namespace.as_deref(), Some("default"), "{r:?}");
        assert_eq!(r.namespace(), Some("default"));
    }
    assert!(to_yaml(&loaded[..1]).contains("namespace: default"));
}

#[test]
fn policies_carry_their_tier_label() {
    let loaded = load_documents(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: security.g}\nspec: {tier: security}\n---\napiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: ns1}\nspec: {selector: all()}\n",
    )
    .unwrap();
    let tiers: Vec<Option<&str>> = loaded
        .iter()
        .map(|r| {
            r.metadata()
                .labels
                .get("projectcalico.org/tier")
                .map(String::as_str)
        })
        .collect();
    assert_eq!(tiers, [Some("security"), Some("default")]);
    assert!(to_yaml(&loaded[..1]).contains("projectcalico.org/tier: security"));
}
