//! Invalid manifests are refused with the document, the field path and the bad value.

use resources::*;

fn doc(kind: &str, metadata: &str, spec: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: {kind}\nmetadata:\n{metadata}\nspec:\n{spec}\n"
    )
}

/// (what, manifest, expected path, text the message must contain (the bad value))
fn cases() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let pool = |spec: &str| doc("IPPool", "  name: p", spec);
    let np = |spec: &str| doc("NetworkPolicy", "  name: p\n  namespace: ns1", spec);
    let wep = |spec: &str| {
        doc(
            "WorkloadEndpoint",
            "  name: n1-cni-abc-eth0\n  namespace: default",
            &format!("  node: n1\n  interfaceName: cali1234567890a\n{spec}"),
        )
    };
    let peer = |spec: &str| doc("BGPPeer", "  name: peer1", spec);
    vec![
        ("pool without cidr", pool("  blockSize: 26"), "spec.cidr", "required"),
        ("pool cidr garbage", pool("  cidr: 10.0.0.0/33"), "spec.cidr", "'10.0.0.0/33'"),
        ("pool cidr with host bits", pool("  cidr: 10.1.2.3/16"), "spec.cidr", "'10.1.2.3/16'"),
        ("pool cidr without prefix", pool("  cidr: 10.1.0.0"), "spec.cidr", "'10.1.0.0'"),
        ("pool block size too small", pool("  cidr: 10.0.0.0/8\n  blockSize: 19"), "spec.blockSize", "'19'"),
        ("pool block size over 32", pool("  cidr: 10.0.0.0/8\n  blockSize: 33"), "spec.blockSize", "'33'"),
        ("pool smaller than a block", pool("  cidr: 10.0.0.0/28"), "spec.cidr", "'10.0.0.0/28'"),
        ("pool block size not a number", pool("  cidr: 10.0.0.0/16\n  blockSize: big"), "spec.blockSize", "big"),
        ("pool ipip mode unknown", pool("  cidr: 10.0.0.0/16\n  ipipMode: Sometimes"), "spec.ipipMode", "Sometimes"),
        ("pool ipip and vxlan", pool("  cidr: 10.0.0.0/16\n  ipipMode: Always\n  vxlanMode: Always"), "spec.vxlanMode", "'Always'"),
        ("pool link local", pool("  cidr: 169.254.0.0/16"), "spec.cidr", "'169.254.0.0/16'"),
        ("pool blank node selector", pool("  cidr: 10.0.0.0/16\n  nodeSelector: '  '"), "spec.nodeSelector", "'  '"),
        ("pool bad name", doc("IPPool", "  name: My_Pool", "  cidr: 10.0.0.0/16"), "metadata.name", "'My_Pool'"),
        (
            "rule port out of range",
            np("  ingress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      ports: [80, 70000]"),
            "spec.ingress[0].destination.ports[1]",
            "'70000'",
        ),
        (
            "rule port range reversed",
            np("  ingress:\n  - action: Allow\n    protocol: UDP\n    source:\n      ports: ['9000:8000']"),
            "spec.ingress[0].source.ports[0]",
            "'9000:8000'",
        ),
        (
            "rule port not a number",
            np("  egress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      ports: [80, 1.5]"),
            "spec.egress[0].destination.ports[1]",
            "1.5",
        ),
        (
            "rule ports without tcp/udp",
            np("  ingress:\n  - action: Allow\n    protocol: ICMP\n    destination:\n      ports: [80]"),
            "spec.ingress[0].destination.ports",
            "'ICMP'",
        ),
        ("rule action unknown", np("  ingress:\n  - action: Accept"), "spec.ingress[0].action", "Accept"),
        ("rule action missing", np("  egress:\n  - protocol: TCP"), "spec.egress[0].action", "required"),
        ("rule protocol unknown", np("  ingress:\n  - action: Allow\n    protocol: GRE"), "spec.ingress[0].protocol", "'GRE'"),
        ("rule protocol number 0", np("  ingress:\n  - action: Allow\n    protocol: 0"), "spec.ingress[0].protocol", "'0'"),
        (
            "rule icmp type too big",
            np("  ingress:\n  - action: Allow\n    protocol: ICMP\n    icmp: {type: 255}"),
            "spec.ingress[0].icmp.type",
            "'255'",
        ),
        (
            "rule icmp code without type",
            np("  ingress:\n  - action: Allow\n    protocol: ICMP\n    icmp: {code: 3}"),
            "spec.ingress[0].icmp.code",
            "'3'",
        ),
        (
            "rule icmp with tcp",
            np("  ingress:\n  - action: Allow\n    protocol: TCP\n    icmp: {type: 8}"),
            "spec.ingress[0].icmp",
            "'TCP'",
        ),
        (
            "rule bad net",
            np("  egress:\n  - action: Deny\n    destination:\n      nets: [10.0.0.0/8, 300.1.1.1/32]"),
            "spec.egress[0].destination.nets[1]",
            "'300.1.1.1/32'",
        ),
        (
            "rule unbalanced selector",
            np("  ingress:\n  - action: Allow\n    source:\n      selector: has(net1"),
            "spec.ingress[0].source.selector",
            "'has(net1'",
        ),
        ("rule ip version", np("  ingress:\n  - action: Allow\n    ipVersion: 5"), "spec.ingress[0].ipVersion", "'5'"),
        ("policy negative order", np("  order: -1"), "spec.order", "'-1'"),
        ("policy type unknown", np("  types: [Inbound]"), "spec.types[0]", "Inbound"),
        ("policy egress rules without Egress", np("  types: [Ingress]\n  egress:\n  - action: Allow"), "spec.types", "Ingress"),
        (
            "policy in a tier without the tier prefix",
            np("  tier: security"),
            "metadata.name",
            "'p'",
        ),
        ("wep interface name too long", wep("").replace("cali1234567890a", "cali1234567890ab"), "spec.interfaceName", "'cali1234567890ab'"),
        ("wep bad ipNetwork", wep("  ipNetworks: [192.168.0.1/32, 192.168.0.300/32]"), "spec.ipNetworks[1]", "'192.168.0.300/32'"),
        ("wep bad mac", wep("  mac: ee:ee:ee:ee:ee"), "spec.mac", "'ee:ee:ee:ee:ee'"),
        ("wep port zero", wep("  ports:\n  - {name: http, port: 0, protocol: TCP}"), "spec.ports[0].port", "'0'"),
        ("wep without node", doc("WorkloadEndpoint", "  name: w", "  interfaceName: cali0"), "spec.node", "required"),
        ("peer bad ip", peer("  peerIP: 10.0.0.256\n  asNumber: 64512"), "spec.peerIP", "'10.0.0.256'"),
        ("peer bad port", peer("  peerIP: 10.0.0.1:70000\n  asNumber: 64512"), "spec.peerIP", "'10.0.0.1:70000'"),
        ("peer AS too big", peer("  peerIP: 10.0.0.1\n  asNumber: 4294967296"), "spec.asNumber", "'4294967296'"),
        ("peer AS garbage", peer("  peerIP: 10.0.0.1\n  asNumber: 'sixty'"), "spec.asNumber", "'sixty'"),
        ("peer without AS", peer("  peerIP: 10.0.0.1"), "spec.asNumber", "required"),
        ("peer selector with peerIP", peer("  peerSelector: rr == 'true'\n  peerIP: 10.0.0.1"), "spec.peerIP", "'10.0.0.1'"),
        (
            "bgp listen port",
            doc("BGPConfiguration", "  name: default", "  listenPort: 0"),
            "spec.listenPort",
            "'0'",
        ),
        (
            "bgp log severity",
            doc("BGPConfiguration", "  name: default", "  logSeverityScreen: Loud"),
            "spec.logSeverityScreen",
            "Loud",
        ),
        (
            "bgp per-node mesh setting",
            doc("BGPConfiguration", "  name: node.n1", "  nodeToNodeMeshEnabled: false"),
            "spec.nodeToNodeMeshEnabled",
            "false",
        ),
        ("node bad ipv4", doc("Node", "  name: n1", "  bgp:\n    ipv4Address: 10.0.0.1/40"), "spec.bgp.ipv4Address", "'10.0.0.1/40'"),
        (
            "node bad rr cluster id",
            doc("Node", "  name: n1", "  bgp:\n    routeReflectorClusterID: abc"),
            "spec.bgp.routeReflectorClusterID",
            "'abc'",
        ),
        ("hep without interface or ips", doc("HostEndpoint", "  name: h", "  node: n1"), "spec.interfaceName", "required"),
        ("hep bad expected ip", doc("HostEndpoint", "  name: h", "  node: n1\n  expectedIPs: [1.2.3]"), "spec.expectedIPs[0]", "'1.2.3'"),
        ("netset bad net", doc("GlobalNetworkSet", "  name: s", "  nets: [10.0.0.0/8, nope]"), "spec.nets[1]", "'nope'"),
        (
            "felix bad health port",
            doc("FelixConfiguration", "  name: default", "  healthPort: 99999"),
            "spec.healthPort",
            "'99999'",
        ),
        (
            "felix bad endpoint-to-host action",
            doc("FelixConfiguration", "  name: default", "  defaultEndpointToHostAction: Reject"),
            "spec.defaultEndpointToHostAction",
            "Reject",
        ),
        (
            "felix bad failsafe protocol",
            doc("FelixConfiguration", "  name: default", "  failsafeInboundHostPorts:\n  - {protocol: tcpp, port: 22}"),
            "spec.failsafeInboundHostPorts[0].protocol",
            "'tcpp'",
        ),
        (
            "felix bad refresh interval",
            doc("FelixConfiguration", "  name: default", "  routeRefreshInterval: 90x"),
            "spec.routeRefreshInterval",
            "'90x'",
        ),
        ("cluster info name", doc("ClusterInformation", "  name: other", "  datastoreReady: true"), "metadata.name", "'other'"),
        ("tier name with dot", doc("Tier", "  name: a.b", "  order: 1"), "metadata.name", "'a.b'"),
        ("profile bad label", doc("Profile", "  name: net1", "  labelsToApply:\n    'bad key!': x"), "spec.labelsToApply.bad key!", "'bad key!'"),
        ("namespace on a global kind", doc("IPPool", "  name: p\n  namespace: ns1", "  cidr: 10.0.0.0/16"), "metadata.namespace", "'ns1'"),
        ("metadata not a map", "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: [a]\n".to_string(), "metadata", "sequence"),
    ]
}

#[test]
fn invalid_manifests_are_refused_with_path_and_value() {
    for (what, text, path, needle) in cases() {
        let err = match load_documents(&text) {
            Ok(r) => panic!("{what}: accepted {r:?}"),
            Err(e) => e,
        };
        let msg = err.to_string();
        let paths: Vec<String> = match &err {
            ParseError::Invalid { source, .. } => {
                source.errors.iter().map(|e| e.path.clone()).collect()
            }
            other => other.path().map(str::to_string).into_iter().collect(),
        };
        assert!(
            paths.iter().any(|p| p == path),
            "{what}: expected path {path}, got {paths:?} ({msg})"
        );
        assert!(
            msg.contains(path),
            "{what}: message lacks the path {path}: {msg}"
        );
        assert!(
            msg.contains(needle),
            "{what}: message lacks {needle:?}: {msg}"
        );
        assert_eq!(err.document(), Some(0), "{what}");
    }
}

#[test]
fn errors_name_the_document_they_are_in() {
    let text = "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: {name: ok}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16, blockSize: 40}\n";
    let err = load_documents(text).unwrap_err();
    assert_eq!(err.document(), Some(1));
    assert!(err.to_string().starts_with("document[1]"), "{err}");

    let list = r#"{"apiVersion":"projectcalico.org/v3","kind":"List","items":[
        {"apiVersion":"projectcalico.org/v3","kind":"Profile","metadata":{"name":"a"}},
        {"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/16","blockSize":"x"}}]}"#;
    let err = parse_documents(list).unwrap_err();
    assert_eq!(err.path(), Some("items[1].spec.blockSize"), "{err}");
}

#[test]
fn api_version_and_kind_are_checked() {
    let err =
        parse_documents("apiVersion: projectcalico.org/v2\nkind: IPPool\nmetadata: {name: p}\n")
            .unwrap_err();
    assert!(
        matches!(&err, ParseError::ApiVersion { found, .. } if found == "projectcalico.org/v2"),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("projectcalico.org/v2")
            && err.to_string().contains("projectcalico.org/v3"),
        "{err}"
    );

    let err = parse_documents("kind: IPPool\nmetadata: {name: p}\n").unwrap_err();
    assert_eq!(err.path(), Some("apiVersion"), "{err}");

    let err = parse_documents("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n").unwrap_err();
    assert!(matches!(err, ParseError::ApiVersion { .. }), "{err:?}");

    let err =
        parse_documents("apiVersion: projectcalico.org/v3\nkind: IPPools\nmetadata: {name: p}\n")
            .unwrap_err();
    assert!(
        matches!(&err, ParseError::UnknownKind { found, .. } if found == "IPPools"),
        "{err:?}"
    );

    let err =
        parse_documents("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p\n")
            .unwrap_err();
    assert!(
        matches!(err, ParseError::Syntax { document: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn cross_resource_rules() {
    let pools = parse_documents(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.0.0.0/16}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: b}\nspec: {cidr: 10.0.10.0/24}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: c}\nspec: {cidr: 10.1.0.0/16}\n",
    )
    .unwrap();
    let pools: Vec<IpPool> = pools
        .iter()
        .map(|r| r.as_ip_pool().unwrap().clone())
        .collect();
    let err = validate_pool_against(&pools[1], &pools).unwrap_err();
    assert!(
        err.has_path("spec.cidr") && err.to_string().contains("IPPool(a)"),
        "{err}"
    );
    assert!(validate_pool_against(&pools[2], &pools).is_ok());
    // A pool does not overlap itself (an update).
    assert!(validate_pool_against(&pools[0], &pools[..1]).is_ok());

    let old = Resource::from(pools[0].clone());
    let mut new_cidr = pools[0].clone();
    new_cidr.spec.cidr = "10.0.0.0/15".into();
    let err = validate_update(&old, &Resource::from(new_cidr)).unwrap_err();
    assert!(
        err.has_path("spec.cidr") && err.to_string().contains("10.0.0.0/15"),
        "{err}"
    );
    let mut new_block = pools[0].clone();
    new_block.spec.block_size = Some(28);
    assert!(validate_update(&old, &Resource::from(new_block))
        .unwrap_err()
        .has_path("spec.blockSize"));
    let mut nat = pools[0].clone();
    nat.spec.nat_outgoing = Some(true);
    assert!(validate_update(&old, &Resource::from(nat)).is_ok());
    let renamed = Resource::from(pools[1].clone());
    assert!(validate_update(&old, &renamed)
        .unwrap_err()
        .has_path("metadata.name"));
}
