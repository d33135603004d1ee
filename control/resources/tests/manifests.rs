//! Manifests copied from Calico's documentation load unchanged, validate (after defaults),
//! and survive parse -> to_yaml -> parse and the datastore encoding, unknown fields included.

use std::path::PathBuf;

use resources::*;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/manifests")
}

fn all_manifests() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(manifest_dir())
        .expect("manifest dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).expect("read manifest"),
            )
        })
        .collect();
    out.sort();
    out
}

fn load(name: &str) -> Vec<Resource> {
    let text = std::fs::read_to_string(manifest_dir().join(name)).expect("read manifest");
    parse_documents(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_kind_has_a_documentation_manifest() {
    let mut kinds: Vec<Kind> = all_manifests()
        .iter()
        .flat_map(|(n, t)| parse_documents(t).unwrap_or_else(|e| panic!("{n}: {e}")))
        .map(|r| r.kind())
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, Kind::ALL.to_vec());
}

#[test]
fn documentation_manifests_load_and_validate_unchanged() {
    for (name, text) in all_manifests() {
        let loaded = load_documents(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!loaded.is_empty(), "{name}");
    }
}

#[test]
fn documentation_manifests_round_trip_through_yaml_and_json() {
    for (name, text) in all_manifests() {
        let first = parse_documents(&text).unwrap();
        let yaml = to_yaml(&first);
        let again = parse_documents(&yaml)
            .unwrap_or_else(|e| panic!("{name}: re-parse of\n{yaml}\nfailed: {e}"));
        assert_eq!(first, again, "{name} via YAML:\n{yaml}");
        let json = to_json(&first);
        let again = parse_documents(&json)
            .unwrap_or_else(|e| panic!("{name}: re-parse of JSON failed: {e}"));
        assert_eq!(first, again, "{name} via JSON");
    }
}

#[test]
fn documentation_manifests_round_trip_through_the_datastore_encoding() {
    for (name, text) in all_manifests() {
        for r in parse_documents(&text).unwrap() {
            let stored = r.to_stored_json();
            let back = Resource::from_stored(&stored, 42).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(back.metadata().resource_version.as_deref(), Some("42"));
            let mut expected = r.clone();
            expected.metadata_mut().resource_version = Some("42".into());
            assert_eq!(back, expected, "{name}");
        }
    }
}

#[test]
fn fields_brindle_does_not_model_are_kept() {
    // FelixConfiguration's sample sets ipv6Support and chainInsertMode, which brindle has no
    // use for.
    let felix = load("felixconfiguration.yaml");
    let f = felix[0].as_felix_configuration().unwrap();
    assert_eq!(f.spec.ipip_mtu, Some(1400));
    assert_eq!(
        f.spec.extra.get("ipv6Support"),
        Some(&serde_json::json!(false))
    );
    assert_eq!(
        f.spec.extra.get("chainInsertMode"),
        Some(&serde_json::json!("Append"))
    );
    let yaml = to_yaml(&felix);
    assert!(yaml.contains("chainInsertMode: Append"), "{yaml}");
    assert!(yaml.contains("ipv6Support: false"), "{yaml}");

    // assignmentMode is modelled now (checked as Calico checks it) and written back.
    let pool = load("ippool.yaml");
    assert_eq!(
        pool[0].as_ip_pool().unwrap().spec.assignment_mode,
        Some(AssignmentMode::Automatic)
    );
    let stored = String::from_utf8(pool[0].to_stored_json()).unwrap();
    assert!(
        stored.contains(r#""assignmentMode":"Automatic""#),
        "{stored}"
    );

    // Unknown fields at every level: top, metadata, nested rule.
    let text = r#"
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: p
  generation: 3
spec:
  futureField: {a: [1, 2]}
  ingress:
  - action: Allow
    http: {methods: [GET]}
status: {observed: true}
"#;
    let r = parse_documents(text).unwrap();
    let again = parse_documents(&to_yaml(&r)).unwrap();
    assert_eq!(r, again);
    let g = again[0].as_global_network_policy().unwrap();
    assert_eq!(
        g.metadata.extra.get("generation"),
        Some(&serde_json::json!(3))
    );
    assert_eq!(
        g.spec.extra.get("futureField"),
        Some(&serde_json::json!({"a": [1, 2]}))
    );
    assert_eq!(
        g.spec.ingress[0].extra.get("http"),
        Some(&serde_json::json!({"methods": ["GET"]}))
    );
    assert_eq!(
        g.extra.get("status"),
        Some(&serde_json::json!({"observed": true}))
    );
}

#[test]
fn sample_fields_are_read_into_their_typed_fields() {
    let pool = load("ippool.yaml");
    let p = pool[0].as_ip_pool().unwrap();
    assert_eq!(p.metadata.name, "my.ippool-1");
    assert_eq!(p.spec.cidr, "10.1.0.0/16");
    assert_eq!(p.spec.ipip_mode, Some(EncapMode::CrossSubnet));
    assert_eq!(p.spec.nat_outgoing, Some(true));
    assert_eq!(
        p.spec.allowed_uses,
        Some(vec![AllowedUse::Workload, AllowedUse::Tunnel])
    );

    let wep = load("workloadendpoint.yaml");
    let w = wep[0].as_workload_endpoint().unwrap();
    // Unquoted in Calico's sample, bigger than 64 bits: kept digit for digit.
    assert_eq!(w.spec.container_id, "1337495556942031415926535");
    assert_eq!(w.spec.interface_name, "cali0ef24ba");
    assert_eq!(w.spec.ports[1].port, 5432);
    assert_eq!(wep[0].key(), "/calico/resources/v3/projectcalico.org/workloadendpoints/default/node1-k8s-my--nginx--b1337a-eth0");

    let np = load("networkpolicy.yaml");
    let n = np[0].as_network_policy().unwrap();
    assert_eq!(
        n.spec.ingress[0].destination.as_ref().unwrap().ports,
        vec![Port::number(6379)]
    );
    assert_eq!(
        n.spec.ingress[0].metadata.as_ref().unwrap().annotations["from"],
        "frontend"
    );
    assert_eq!(
        np[0].key(),
        "/calico/resources/v3/projectcalico.org/networkpolicies/production/allow-tcp-6379"
    );

    let bgp = load("bgpconfiguration.yaml");
    let b = bgp[0].as_bgp_configuration().unwrap();
    assert_eq!(b.spec.as_number.as_ref().unwrap().value(), Ok(63400));
    assert_eq!(b.spec.listen_port, Some(178));
    assert_eq!(
        b.spec.prefix_advertisements[0].communities,
        vec!["bgp-large-community", "63400:120"]
    );

    let topo = load("bgp-topology.yaml");
    assert_eq!(
        topo.iter().map(Resource::kind).collect::<Vec<_>>(),
        vec![Kind::BgpConfiguration, Kind::Node, Kind::BgpPeer]
    );
    assert_eq!(
        topo[1].as_node().unwrap().spec.ipv4(),
        Some("10.50.1.10".parse().unwrap())
    );

    let heps = load("hostendpoint-sequence.yaml");
    assert_eq!(
        heps[0].as_host_endpoint().unwrap().spec.expected_ips,
        vec!["10.0.0.1"]
    );
}

#[test]
fn lists_json_and_multiple_documents_are_read() {
    let list = r#"
apiVersion: projectcalico.org/v3
kind: IPPoolList
metadata:
  resourceVersion: "77"
items:
- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata: {name: a}
  spec: {cidr: 10.0.0.0/24}
- apiVersion: projectcalico.org/v3
  kind: IPPool
  metadata: {name: b}
  spec: {cidr: 10.0.1.0/24}
"#;
    let r = parse_documents(list).unwrap();
    assert_eq!(
        r.iter().map(Resource::name).collect::<Vec<_>>(),
        vec!["a", "b"]
    );

    let generic = r#"{"apiVersion":"projectcalico.org/v3","kind":"List","items":[
        {"apiVersion":"projectcalico.org/v3","kind":"Profile","metadata":{"name":"net1"},"spec":{}},
        {"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{"name":"t"},"spec":{"order":5}}]}"#;
    let r = parse_documents(generic).unwrap();
    assert_eq!(
        r.iter().map(Resource::kind).collect::<Vec<_>>(),
        vec![Kind::Profile, Kind::Tier]
    );

    // Several JSON values in a row, as `calicoctl get -o json` of several files.
    let two = r#"{"apiVersion":"projectcalico.org/v3","kind":"Profile","metadata":{"name":"a"}}
{"apiVersion":"projectcalico.org/v3","kind":"Profile","metadata":{"name":"b"}}"#;
    assert_eq!(parse_documents(two).unwrap().len(), 2);

    // Leading/trailing separators and comment-only documents are nothing.
    let yaml = "---\n# nothing\n---\napiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: a}\n---\n";
    assert_eq!(parse_documents(yaml).unwrap().len(), 1);
    assert_eq!(parse_documents("").unwrap().len(), 0);
}

#[test]
fn kind_aliases_match_calicoctl() {
    for (alias, kind) in [
        ("ippool", Kind::IpPool),
        ("ippools", Kind::IpPool),
        ("ipp", Kind::IpPool),
        ("pool", Kind::IpPool),
        ("IPPOOL", Kind::IpPool),
        ("networkpolicy", Kind::NetworkPolicy),
        ("netpol", Kind::NetworkPolicy),
        ("np", Kind::NetworkPolicy),
        ("policy", Kind::NetworkPolicy),
        ("gnp", Kind::GlobalNetworkPolicy),
        ("globalnetworkpolicy", Kind::GlobalNetworkPolicy),
        ("wep", Kind::WorkloadEndpoint),
        ("hep", Kind::HostEndpoint),
        ("bgppeer", Kind::BgpPeer),
        ("bgpconfig", Kind::BgpConfiguration),
        ("felixconfig", Kind::FelixConfiguration),
        ("node", Kind::Node),
        ("profile", Kind::Profile),
        ("tier", Kind::Tier),
        ("netset", Kind::NetworkSet),
        ("gns", Kind::GlobalNetworkSet),
        ("clusterinformation", Kind::ClusterInformation),
    ] {
        assert_eq!(alias.parse::<Kind>(), Ok(kind), "{alias}");
    }
    assert!("frobnicator".parse::<Kind>().is_err());
}
