//! `convert -f`: the v1 manifests of Calico's 2.x documents to v3, and the hint that
//! `create`/`apply`/`replace` give for a v1 manifest.

use serde_json::{json, Value};

use super::fixture::Fixture;

/// An IP pool, a profile with tags and rules, and a policy, as Calico 2.x's documents wrote
/// them (`calicoctl create -f` of that era).
const V1_MANIFEST: &str = "\
apiVersion: v1
kind: ipPool
metadata:
  cidr: 10.20.0.0/16
spec:
  ipip:
    enabled: true
    mode: cross-subnet
  nat-outgoing: true
---
apiVersion: v1
kind: profile
metadata:
  name: Net1.Profile
  labels:
    role: frontend
  tags:
  - net1
spec:
  ingress:
  - action: allow
    source:
      tag: net1
  - action: deny
    protocol: tcp
    source:
      net: 10.0.20.7/24
    destination:
      ports: [22, \"8000:8080\"]
  egress:
  - action: allow
---
apiVersion: v1
kind: policy
metadata:
  name: allow-tcp-6379
spec:
  order: 10
  selector: role == 'database'
  ingress:
  - action: allow
    protocol: tcp
    source:
      selector: role == 'frontend'
    destination:
      ports:
      - 6379
  - action: next-tier
    protocol: icmp
    icmp:
      type: 8
    source:
      notNets: [192.168.3.0/24]
";

fn converted(f: &Fixture, manifest: &str, output: &str) -> String {
    let file = f.file("v1.yaml", manifest);
    f.stdout(&["convert", "-f", &file, "-o", output])
}

pub(crate) fn convert_turns_the_documents_v1_manifests_into_v3(f: &Fixture) {
    let out: Value = serde_json::from_str(&converted(f, V1_MANIFEST, "json")).unwrap();
    assert_eq!(out["kind"], "List", "{out}");
    let items = out["items"].as_array().unwrap();
    let (pool, profile, policy) = (&items[0], &items[1], &items[2]);

    // The pool: named from its CIDR, IPIP only across subnets, NAT outgoing, Calico's defaults.
    assert_eq!(pool["apiVersion"], "projectcalico.org/v3");
    assert_eq!(pool["kind"], "IPPool");
    assert_eq!(pool["metadata"]["name"], "10-20-0-0-16");
    assert_eq!(pool["spec"]["cidr"], "10.20.0.0/16");
    assert_eq!(pool["spec"]["ipipMode"], "CrossSubnet");
    assert_eq!(pool["spec"]["vxlanMode"], "Never");
    assert_eq!(pool["spec"]["natOutgoing"], true);
    assert_eq!(pool["spec"]["blockSize"], 26);
    assert_eq!(pool["spec"]["nodeSelector"], "all()");

    // The profile: a valid name (lowercased, with the original's hash), labels and tags
    // given to its endpoints, a tag in a rule become a label selector, nets normalised.
    assert_eq!(profile["kind"], "Profile");
    assert_eq!(profile["metadata"]["name"], "net1.profile-7350167a");
    assert_eq!(
        profile["spec"]["labelsToApply"],
        json!({"net1": "", "role": "frontend"})
    );
    assert_eq!(
        profile["spec"]["ingress"],
        json!([
            {"action": "Allow", "source": {"selector": "net1 == ''"}},
            {"action": "Deny", "protocol": "TCP", "source": {"nets": ["10.0.20.0/24"]},
             "destination": {"ports": [22, "8000:8080"]}}
        ])
    );
    assert_eq!(profile["spec"]["egress"], json!([{"action": "Allow"}]));

    // The policy: a GlobalNetworkPolicy; without egress rules it applies to ingress only.
    assert_eq!(policy["kind"], "GlobalNetworkPolicy");
    assert_eq!(policy["metadata"]["name"], "allow-tcp-6379");
    assert_eq!(policy["spec"]["order"], 10.0);
    assert_eq!(policy["spec"]["selector"], "role == 'database'");
    assert_eq!(policy["spec"]["types"], json!(["Ingress"]));
    assert_eq!(
        policy["spec"]["ingress"],
        json!([
            {"action": "Allow", "protocol": "TCP",
             "source": {"selector": "role == 'frontend'"}, "destination": {"ports": [6379]}},
            {"action": "Pass", "protocol": "ICMP", "icmp": {"type": 8},
             "source": {"notNets": ["192.168.3.0/24"]}}
        ])
    );
}

pub(crate) fn converted_v1_manifests_are_created_as_printed(f: &Fixture) {
    let v3 = converted(f, V1_MANIFEST, "yaml");
    assert!(v3.starts_with("apiVersion: projectcalico.org/v3\n"), "{v3}");
    let file = f.file("v3.yaml", &v3);
    f.ok(
        &["create", "-f", &file],
        "Successfully created 3 resource(s)\n",
    );
    let pool = f.stdout(&["get", "ippool", "10-20-0-0-16", "-o", "yaml"]);
    assert!(pool.contains("ipipMode: CrossSubnet"), "{pool}");
    f.stdout(&["get", "globalnetworkpolicy", "allow-tcp-6379"]);
}

pub(crate) fn create_apply_and_replace_of_a_v1_manifest_name_the_convert_command(f: &Fixture) {
    let file = f.file("v1.yaml", V1_MANIFEST);
    for verb in ["create", "apply", "replace"] {
        f.fails(
            &[verb, "-f", &file],
            &format!(
                "Failed to execute command: document[0]: apiVersion 'v1' is a Calico v1 resource, which brindle no longer accepts: convert it to projectcalico.org/v3 with `brindlectl convert -f {file}` and create or apply the output"
            ),
        );
    }
    // Nothing was written.
    f.ok(&["get", "ippools"], "NAME   CIDR   SELECTOR   \n");
}

pub(crate) fn converting_what_is_not_a_v1_resource_fails_naming_it(f: &Fixture) {
    let run = |manifest: &str| {
        let file = f.file("bad.yaml", manifest);
        let r = f.run(&["convert", "-f", &file]);
        assert_eq!(r.code, 1, "{manifest}: {}", r.stdout);
        r.stderr.trim_end().to_string()
    };
    let e = run("apiVersion: v1\nkind: workloadEndpoint\nmetadata:\n  name: w\n");
    assert_eq!(
        e,
        "Failed to convert resource: document[0]: conversion for the resource type 'workloadEndpoint' is not supported (brindlectl converts ipPool, profile, policy, hostEndpoint, bgpPeer, node)"
    );
    let e = run("apiVersion: v1\nkind: ipPool\nmetadata:\n  cidr: 10.0.0.0/8\nspec:\n  ipip:\n    enabled: true\n    mode: sometimes\n");
    assert_eq!(
        e,
        "Failed to convert resource: document[0]: error with field spec.ipip.mode = 'sometimes' (expected always or cross-subnet)"
    );
    let e = run("- apiVersion: v1\n  kind: policy\n  metadata:\n    name: p\n  spec:\n    egress:\n    - action: drop\n");
    assert_eq!(
        e,
        "Failed to convert resource: document[0]: items[0]: error with field spec.egress[0].action = 'drop' (expected allow, deny, log, pass or next-tier)"
    );
    let e = run(&super::fixture::pool("p", "10.0.0.0/8"));
    assert!(e.contains("already a projectcalico.org/v3 resource"), "{e}");
}

pub(crate) fn other_v1_kinds_convert_too(f: &Fixture) {
    let manifest = "\
- apiVersion: v1
  kind: hostEndpoint
  metadata:
    name: eth0
    node: Host1
    labels:
      type: production
  spec:
    interfaceName: eth0
    expectedIPs: [192.168.0.1]
    profiles: [k8s_ns.default]
- apiVersion: v1
  kind: bgpPeer
  metadata:
    scope: node
    node: rack1-host1
    peerIP: 192.168.1.1
  spec:
    asNumber: 63400
- apiVersion: v1
  kind: node
  metadata:
    name: rack1-host1
  spec:
    bgp:
      asNumber: '1.10'
      ipv4Address: 192.168.1.101/24
- apiVersion: v1
  kind: ipPool
  metadata:
    cidr: 10.30.0.0/24
  spec:
    ipip:
      enabled: false
      mode: always
";
    let out: Value = serde_json::from_str(&converted(f, manifest, "json")).unwrap();
    let items = out["items"].as_array().unwrap();
    assert_eq!(items[0]["kind"], "HostEndpoint");
    assert_eq!(items[0]["metadata"]["name"], "host1.eth0");
    assert_eq!(
        items[0]["metadata"]["labels"],
        json!({"type": "production"})
    );
    assert_eq!(items[0]["spec"]["node"], "host1");
    assert_eq!(items[0]["spec"]["profiles"], json!(["kns.default"]));
    assert_eq!(items[1]["kind"], "BGPPeer");
    assert_eq!(items[1]["metadata"]["name"], "rack1-host1.192-168-1-1");
    assert_eq!(items[1]["spec"]["node"], "rack1-host1");
    assert_eq!(items[1]["spec"]["asNumber"], 63400);
    assert_eq!(items[2]["kind"], "Node");
    assert_eq!(items[2]["spec"]["bgp"]["ipv4Address"], "192.168.1.101/24");
    assert_eq!(items[2]["spec"]["bgp"]["asNumber"], 65546);
    // IPIP not enabled: Never, whatever the mode says.
    assert_eq!(items[3]["spec"]["ipipMode"], "Never");
}
