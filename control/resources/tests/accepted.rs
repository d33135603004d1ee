//! Manifests Calico's validator accepts, which brindle once refused: they load, and keep
//! what they say.

use resources::*;

fn np(spec: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: ns1\nspec:\n{spec}\n")
}

fn wep(interface: &str, spec: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: n1-cni-abc-eth0\n  namespace: default\nspec:\n  node: n1\n  interfaceName: {interface}\n{spec}\n")
}

fn pool(spec: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: p\nspec:\n{spec}\n")
}

fn peer(spec: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: peer1\nspec:\n{spec}\n")
}

fn hep(spec: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata:\n  name: h\nspec:\n{spec}\n")
}

fn loads(what: &str, text: &str) -> Vec<Resource> {
    load_documents(text).unwrap_or_else(|e| panic!("{what}: refused: {e}"))
}

#[test]
fn what_calico_accepts_loads() {
    let cases = [
        // A protocol number written as a string (Calico's Uint8OrString reads digits).
        ("protocol \"255\"", np("  ingress:\n  - action: Allow\n    protocol: '255'")),
        // Named ports need no protocol: the named port's own applies.
        ("named port without protocol", np("  ingress:\n  - action: Allow\n    destination:\n      ports: [http]")),
        // Types that leave rules out: the rules are kept and not used.
        ("egress rules with types [Ingress]", np("  types: [Ingress]\n  egress:\n  - action: Allow")),
        ("ingress rules with types [Egress]", np("  types: [Egress]\n  ingress:\n  - action: Allow")),
        // A service as the source of an ingress rule, with ports on the other side.
        (
            "source services with destination ports",
            np("  ingress:\n  - action: Allow\n    protocol: TCP\n    source:\n      services: {name: web, namespace: ns1}\n    destination:\n      ports: [80]"),
        ),
        // global() alone in a rule's namespaceSelector.
        ("namespaceSelector global()", np("  ingress:\n  - action: Allow\n    source:\n      namespaceSelector: global()")),
        // Kubernetes policies as Calico names them, and tiered names.
        ("knp.default. name", np("  order: 1").replace("name: p", "name: knp.default.web.allow")),
        ("tier.name", np("  tier: security").replace("name: p", "name: security.allow")),
        // ICMP with the matching family, ICMPv6 by number.
        ("ICMP with ipVersion 4", np("  ingress:\n  - action: Allow\n    protocol: ICMP\n    ipVersion: 4\n    icmp: {type: 8, code: 0}")),
        ("ICMPv6 by number", np("  ingress:\n  - action: Allow\n    protocol: 58\n    ipVersion: 6\n    icmp: {type: 128}")),
        // Kubernetes' admin tier as Calico has it.
        (
            "kube-admin tier",
            "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata:\n  name: kube-admin\nspec:\n  order: 1000\n  defaultAction: Pass\n".to_string(),
        ),
        // Endpoints as Calico's validator tests accept them.
        ("wep interface Valid_Iface.0-9", wep("Valid_Iface.0-9", "")),
        ("wep host networks of both families", wep("cali012371237", "  ipNetworks: [10.0.0.1/32, 10.0.0.2, 'fd00::1/128', 'fd00::2']")),
        (
            "wep NATs of both families",
            wep("cali012371237", "  ipNetworks: [10.0.0.1/32, 'fd00::1/128']\n  ipNATs:\n  - {internalIP: 10.0.0.1, externalIP: 10.0.0.2}\n  - {internalIP: 'fd00::1', externalIP: 'fd00::2'}"),
        ),
        (
            "wep ports of one name on two protocols",
            wep("eth0", "  ports:\n  - {name: a-valid-port, protocol: TCP, port: 1234}\n  - {name: a-valid-port, protocol: UDP, port: 5456}"),
        ),
        ("wep unnamed port with a hostPort", wep("eth0", "  ports:\n  - {protocol: TCP, port: 1234, hostPort: 2345, hostIP: 0.0.0.0}")),
        ("wep SCTP port", wep("eth0", "  ports:\n  - {name: a-valid-port, protocol: SCTP, port: 1234}")),
        ("wep spoofed prefixes", wep("eth0", "  allowSpoofedSourcePrefixes: [10.0.0.1, 192.168.0.0/16]")),
        ("hep on every interface", hep("  node: node01\n  interfaceName: '*'")),
        ("hep with expected IPs only", hep("  node: node01\n  expectedIPs: [10.0.0.1, 'fd00::1']")),
        // Looser than Calico on purpose: libnetwork's profiles are Docker network names.
        ("hep with a Docker network's profile", hep("  node: node01\n  interfaceName: eth0\n  profiles: [My_Net-]")),
        ("hep with knp.default. profiles", hep("  node: node01\n  interfaceName: eth0\n  profiles: [knp.default.fun, knp.default.funner.11234-a, fun-funner1234]")),
        // IPPools as Calico's validator tests accept them.
        ("disabled pool smaller than a block", pool("  cidr: 10.0.0.0/28\n  disabled: true")),
        ("LoadBalancer pool", pool("  cidr: 10.0.0.0/16\n  allowedUses: [LoadBalancer]\n  nodeSelector: all()")),
        ("blockSize 0 is the default", pool("  cidr: 10.0.0.0/16\n  blockSize: 0")),
        ("Manual assignment", pool("  cidr: 10.0.0.0/16\n  assignmentMode: Manual")),
        ("namespaceSelector on a workload pool", pool("  cidr: 10.0.0.0/16\n  allowedUses: [Workload]\n  namespaceSelector: team == 'a'")),
        ("IPv6 pool of /122 blocks", pool("  cidr: 'fd00::/64'\n  vxlanMode: CrossSubnet")),
        // Metadata: capitals in annotation keys (Calico checks them lowercased), prefixed
        // keys, an empty label value, annotations of exactly 256 KiB.
        (
            "annotations Calico accepts",
            format!("apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata:\n  name: net1\n  labels:\n    example.com/tier: ''\n  annotations:\n    Example.COM/Owner: Team A\n    big: '{}'\n", "x".repeat(256 * 1024 - 3 - 17 - 6)),
        ),
        // BGPPeers as Calico's validator tests accept them.
        ("peer with a node selector and a peer selector", peer("  nodeSelector: has(mylabel)\n  peerSelector: has(mylabel)")),
        ("peer reachableBy of its family", peer("  peerIP: 192.168.1.1:500\n  asNumber: 64512\n  reachableBy: 192.168.1.254")),
        ("peer [IPv6]:port reachableBy IPv6", peer("  peerIP: '[9000::]:500'\n  asNumber: 64512\n  reachableBy: '9000::fe'")),
        ("peer nextHopMode Self", peer("  peerIP: 10.0.0.1\n  asNumber: 64512\n  nextHopMode: Self")),
        ("peer keepOriginalNextHop false with nextHopMode", peer("  peerIP: 10.0.0.1\n  asNumber: 64512\n  keepOriginalNextHop: false\n  nextHopMode: Keep")),
        ("peer sourceAddress None and a Go duration", peer("  peerIP: 10.0.0.1\n  asNumber: 64512\n  sourceAddress: None\n  maxRestartTime: 2m5s")),
        // A catch-all in nets (not negated) is fine.
        ("nets 0.0.0.0/0", np("  egress:\n  - action: Allow\n    destination:\n      nets: [0.0.0.0/0]")),
    ];
    let refused: Vec<String> = cases
        .into_iter()
        .filter_map(|(what, text)| load_documents(&text).err().map(|e| format!("{what}: {e}")))
        .collect();
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
}

#[test]
fn pool_defaults_name_automatic_assignment_and_the_default_block() {
    let loaded = loads("pool", &pool("  cidr: 10.0.0.0/16\n  blockSize: 0"));
    let [Resource::IpPool(p)] = loaded.as_slice() else {
        panic!("one IPPool: {loaded:?}")
    };
    assert_eq!(p.spec.assignment_mode, Some(AssignmentMode::Automatic));
    assert_eq!(p.spec.effective_block_size(), 26);
}

#[test]
fn accepted_rules_keep_what_they_say() {
    let loaded = loads(
        "mixed",
        &np("  types: [Ingress]\n  ingress:\n  - action: Allow\n    protocol: '255'\n  egress:\n  - action: Deny"),
    );
    let [Resource::NetworkPolicy(p)] = loaded.as_slice() else {
        panic!("one NetworkPolicy: {loaded:?}")
    };
    assert_eq!(p.spec.types, vec![PolicyType::Ingress]);
    assert_eq!(p.spec.egress.len(), 1, "egress rules are kept");
    assert_eq!(
        p.spec.ingress[0].protocol.as_ref().unwrap().number(),
        Ok(255)
    );
}
