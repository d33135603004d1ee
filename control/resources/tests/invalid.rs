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
        // Calico's IPPool checks (validateIPPoolSpec and the CEL rules on IPPoolSpec).
        ("pool LoadBalancer with Workload", pool("  cidr: 10.0.0.0/16\n  allowedUses: [LoadBalancer, Workload]"), "spec.allowedUses", "LoadBalancer cannot be combined with Workload or Tunnel allowed uses"),
        ("pool LoadBalancer with VXLAN", pool("  cidr: 10.0.0.0/16\n  allowedUses: [LoadBalancer]\n  vxlanMode: Always"), "spec.allowedUses", "LoadBalancer IP pool cannot have IPIP or VXLAN enabled"),
        ("pool LoadBalancer without BGP export", pool("  cidr: 10.0.0.0/16\n  allowedUses: [LoadBalancer]\n  disableBGPExport: true"), "spec.disableBGPExport", "LoadBalancer IP pools cannot disable BGP export"),
        ("pool LoadBalancer on some nodes", pool("  cidr: 10.0.0.0/16\n  allowedUses: [LoadBalancer]\n  nodeSelector: rack == 'a'"), "spec.nodeSelector", "IP Pool with AllowedUse LoadBalancer must have nodeSelector set to all()"),
        ("pool Tunnel with namespaceSelector", pool("  cidr: 10.0.0.0/16\n  allowedUses: [Tunnel]\n  namespaceSelector: all()"), "spec.namespaceSelector", "IP Pool with AllowedUse Tunnel cannot have namespaceSelector"),
        ("pool global() nodeSelector", pool("  cidr: 10.0.0.0/16\n  nodeSelector: global()"), "spec.nodeSelector", "global() selector is not valid for IPPool nodeSelector"),
        ("pool bad namespaceSelector", pool("  cidr: 10.0.0.0/16\n  namespaceSelector: has(x"), "spec.namespaceSelector", "'has(x'"),
        ("pool unknown use", pool("  cidr: 10.0.0.0/16\n  allowedUses: [Services]"), "spec.allowedUses[0]", "Services"),
        ("pool assignment mode unknown", pool("  cidr: 10.0.0.0/16\n  assignmentMode: Sometimes"), "spec.assignmentMode", "Sometimes"),
        ("pool IPv6 block size", pool("  cidr: 'fd00::/64'\n  blockSize: 32"), "spec.blockSize", "between 116 and 128 for IPv6 pools"),
        ("pool IPv6 with IPIP", pool("  cidr: 'fd00::/64'\n  ipipMode: Always"), "spec.ipipMode", "IPIP is not supported on IPv6 pools"),
        ("pool smaller than its block", pool("  cidr: 10.0.0.0/27"), "spec.cidr", "IP pool size is too small for use with Calico IPAM"),
        ("pool not strictly masked", pool("  cidr: 10.0.0.1/24"), "spec.cidr", "IPPool CIDR must be strictly masked"),
        ("pool IPv6 link local", pool("  cidr: 'fe80::/64'"), "spec.cidr", "IPPool CIDR overlaps with IPv6 link local range fe80::/10"),
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
        ("policy type twice", np("  types: [Ingress, Ingress]"), "spec.types[1]", "'Ingress' type specified more than once"),
        (
            "policy in a tier without the tier prefix",
            np("  tier: security"),
            "metadata.name",
            "'p'",
        ),
        // Calico's rule checks (libcalico-go validateRule / validateEntityRule, CEL on Rule
        // and EntityRule), each with Calico's message.
        ("rule port zero", np("  ingress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      notPorts: [0]"), "spec.ingress[0].destination.notPorts[0]", "between 1 and 65535"),
        ("rule port range from zero", np("  ingress:\n  - action: Allow\n    protocol: UDP\n    source:\n      ports: ['0:100']"), "spec.ingress[0].source.ports[0]", "'0:100'"),
        ("rule numeric port without protocol", np("  ingress:\n  - action: Allow\n    destination:\n      ports: [80]"), "spec.ingress[0].destination.ports", "numeric port or port range must set protocol"),
        ("rule lowercase protocol", np("  ingress:\n  - action: Allow\n    protocol: tcp"), "spec.ingress[0].protocol", "protocol name invalid"),
        ("rule protocol zero", np("  ingress:\n  - action: Allow\n    protocol: 0"), "spec.ingress[0].protocol", "between 1 and 255"),
        ("rule ICMP with ipVersion 6", np("  ingress:\n  - action: Allow\n    protocol: ICMP\n    ipVersion: 6"), "spec.ingress[0].protocol", "protocol ICMP requires ipVersion 4"),
        ("rule notProtocol ICMPv6 with ipVersion 4", np("  ingress:\n  - action: Allow\n    notProtocol: 58\n    ipVersion: 4"), "spec.ingress[0].notProtocol", "protocol ICMPv6 requires ipVersion 6"),
        ("rule icmp without protocol", np("  ingress:\n  - action: Allow\n    icmp: {type: 8}"), "spec.ingress[0].icmp", "ICMP fields require protocol to be ICMP or ICMPv6"),
        ("rule icmp code without type", np("  ingress:\n  - action: Allow\n    protocol: ICMP\n    icmp: {code: 0}"), "spec.ingress[0].icmp.code", "ICMP code specified without an ICMP type"),
        ("rule nets of both families", np("  ingress:\n  - action: Allow\n    source:\n      nets: [10.0.0.0/8]\n    destination:\n      nets: ['fd00::/8']"), "spec.ingress[0].destination.nets", "rule contains both IPv4 and IPv6 CIDRs"),
        ("rule nets against ipVersion", np("  egress:\n  - action: Allow\n    ipVersion: 6\n    destination:\n      notNets: [10.0.0.0/8]"), "spec.egress[0].destination.notNets", "rule IP version doesn't match CIDR version"),
        ("rule notNets catch-all", np("  ingress:\n  - action: Deny\n    source:\n      notNets: [0.0.0.0/0]"), "spec.ingress[0].source.notNets", "catch-all CIDR in negation"),
        ("rule global() in a selector", np("  ingress:\n  - action: Allow\n    source:\n      selector: global()"), "spec.ingress[0].source.selector", "global() can only be used in an EntityRule namespaceSelector"),
        ("rule global() with more", np("  ingress:\n  - action: Allow\n    source:\n      namespaceSelector: global() && has(a)"), "spec.ingress[0].source.namespaceSelector", "global() cannot be combined with other selectors"),
        ("policy global() selector", np("  selector: global()"), "spec.selector", "global() can only be used in an EntityRule namespaceSelector"),
        ("rule services in an ingress destination", np("  ingress:\n  - action: Allow\n    destination:\n      services: {name: web}"), "spec.ingress[0].destination.services", "not allowed in ingress rule destination"),
        ("rule services in an egress source", np("  egress:\n  - action: Allow\n    source:\n      services: {name: web}"), "spec.egress[0].source.services", "not allowed in egress rule source"),
        ("rule services with ports", np("  egress:\n  - action: Allow\n    protocol: TCP\n    destination:\n      services: {name: web}\n      ports: [80]"), "spec.egress[0].destination.services", "ports and notPorts cannot be specified with services"),
        ("rule services with a namespaceSelector", np("  egress:\n  - action: Allow\n    destination:\n      services: {name: web}\n      namespaceSelector: all()"), "spec.egress[0].destination.services", "cannot specify NamespaceSelector and Services"),
        ("global rule services without namespace", doc("GlobalNetworkPolicy", "  name: g", "  egress:\n  - action: Allow\n    destination:\n      services: {name: web}"), "spec.egress[0].destination.services.namespace", "must specify a namespace"),
        ("global policy preDNAT without applyOnForward", doc("GlobalNetworkPolicy", "  name: g", "  preDNAT: true\n  ingress:\n  - action: Allow"), "spec.applyOnForward", "applyOnForward must be true if either preDNAT or doNotTrack is true"),
        ("global policy preDNAT with Egress type", doc("GlobalNetworkPolicy", "  name: g", "  preDNAT: true\n  applyOnForward: true\n  types: [Ingress, Egress]"), "spec.types", "preDNAT policy cannot have 'Egress' type"),
        ("global policy name with two dots", doc("GlobalNetworkPolicy", "  name: knp.default.thing", "  order: 1"), "metadata.name", "'knp.default.thing'"),
        ("policy name with two dots", np("  order: 1").replace("name: p", "name: a.b.c"), "metadata.name", "'a.b.c'"),
        ("wep interface name too long", wep("").replace("cali1234567890a", "cali1234567890ab"), "spec.interfaceName", "'cali1234567890ab'"),
        ("wep bad ipNetwork", wep("  ipNetworks: [192.168.0.1/32, 192.168.0.300/32]"), "spec.ipNetworks[1]", "'192.168.0.300/32'"),
        (
            "wep NAT to an address not its own",
            wep("  ipNetworks: [192.168.0.1/32]\n  ipNATs:\n  - {internalIP: 192.168.0.2, externalIP: 198.51.100.7}"),
            "spec.ipNATs[0].internalIP",
            "'192.168.0.2'",
        ),
        (
            "wep NAT across IP versions",
            wep("  ipNetworks: [192.168.0.1/32]\n  ipNATs:\n  - {internalIP: 192.168.0.1, externalIP: '2001:db8::7'}"),
            "spec.ipNATs[0].externalIP",
            "'2001:db8::7'",
        ),
        ("wep bad mac", wep("  mac: ee:ee:ee:ee:ee"), "spec.mac", "'ee:ee:ee:ee:ee'"),
        ("wep port zero", wep("  ports:\n  - {name: http, port: 0, protocol: TCP}"), "spec.ports[0].port", "'0'"),
        // Calico's endpoint checks (validateWorkloadEndpointSpec, validateEndpointPort,
        // validateWorkloadEndpointPort, the interface regex, the HostEndpoint CEL rules).
        ("wep interface with '&'", wep("").replace("cali1234567890a", "Invalid&Intface"), "spec.interfaceName", "^[a-zA-Z0-9_.-]{1,15}$"),
        ("wep interface with ':'", wep("").replace("cali1234567890a", "Invalid:Intface"), "spec.interfaceName", "'Invalid:Intface'"),
        ("wep IPv4 network of many addresses", wep("  ipNetworks: [1.2.3.0/26]"), "spec.ipNetworks[0]", "IP network contains multiple addresses"),
        ("wep IPv6 network of many addresses", wep("  ipNetworks: ['fd00::/120']"), "spec.ipNetworks[0]", "IP network contains multiple addresses"),
        ("wep NAT without networks", wep("  ipNATs:\n  - {internalIP: 10.0.0.2, externalIP: 10.0.0.1}"), "spec.ipNATs[0].internalIP", "NAT is not in the endpoint networks"),
        ("wep IPv6 address as ipv4Gateway", wep("  ipv4Gateway: 'fd00::1'"), "spec.ipv4Gateway", "invalid IPv4 gateway address specified"),
        ("wep port without name or hostPort", wep("  ports:\n  - {port: 1234, protocol: UDP}"), "spec.ports[0].name", "WorkloadEndpointPort name must not be empty if no HostPort is specified"),
        ("wep port without protocol", wep("  ports:\n  - {name: a-valid-port, port: 1234}"), "spec.ports[0].protocol", "WorkloadEndpointPort protocol does not support ports."),
        ("wep port numeric protocol", wep("  ports:\n  - {name: a-valid-port, port: 1234, protocol: 123}"), "spec.ports[0].protocol", "WorkloadEndpointPort protocol does not support ports."),
        ("wep port without port", wep("  ports:\n  - {name: a-valid-port, protocol: TCP}"), "spec.ports[0].port", "between 1 and 65535"),
        ("wep port bad name", wep("  ports:\n  - {name: Web_Port, port: 80, protocol: TCP}"), "spec.ports[0].name", "'Web_Port'"),
        ("wep hostPort over 65535", wep("  ports:\n  - {port: 80, protocol: TCP, hostPort: 65536}"), "spec.ports[0].hostPort", "'65536'"),
        ("wep bad hostIP", wep("  ports:\n  - {port: 1234, protocol: TCP, hostPort: 2345, hostIP: 999.1.1.1}"), "spec.ports[0].hostIP", "'999.1.1.1'"),
        ("hep port without name", doc("HostEndpoint", "  name: h", "  node: n1\n  interfaceName: eth0\n  ports:\n  - {port: 1234, protocol: TCP}"), "spec.ports[0].name", "EndpointPort name must not be empty"),
        ("hep port ICMP", doc("HostEndpoint", "  name: h", "  node: n1\n  interfaceName: eth0\n  ports:\n  - {name: p, port: 1234, protocol: ICMP}"), "spec.ports[0].protocol", "EndpointPort protocol does not support ports."),
        ("hep interface too long", doc("HostEndpoint", "  name: h", "  node: n1\n  interfaceName: interfaceTooLong"), "spec.interfaceName", "'interfaceTooLong'"),
        ("hep interface with '#'", doc("HostEndpoint", "  name: h", "  node: n1\n  interfaceName: 'eth#0'"), "spec.interfaceName", "'eth#0'"),
        ("hep without node", doc("HostEndpoint", "  name: h", "  interfaceName: eth0"), "spec.node", "node must be specified"),
        ("hep profile starting with a dot", doc("HostEndpoint", "  name: h", "  node: n1\n  interfaceName: eth0\n  profiles: [.fun]"), "spec.profiles[0]", "'.fun'"),
        ("hep expected IP as CIDR", doc("HostEndpoint", "  name: h", "  node: n1\n  expectedIPs: [10.0.0.0/24]"), "spec.expectedIPs[0]", "'10.0.0.0/24'"),
        ("wep without node", doc("WorkloadEndpoint", "  name: w", "  interfaceName: cali0"), "spec.node", "required"),
        ("peer bad ip", peer("  peerIP: 10.0.0.256\n  asNumber: 64512"), "spec.peerIP", "'10.0.0.256'"),
        ("peer bad port", peer("  peerIP: 10.0.0.1:70000\n  asNumber: 64512"), "spec.peerIP", "'10.0.0.1:70000'"),
        ("peer AS too big", peer("  peerIP: 10.0.0.1\n  asNumber: 4294967296"), "spec.asNumber", "'4294967296'"),
        ("peer AS garbage", peer("  peerIP: 10.0.0.1\n  asNumber: 'sixty'"), "spec.asNumber", "'sixty'"),
        ("peer without AS", peer("  peerIP: 10.0.0.1"), "spec.asNumber", "required"),
        ("peer selector with peerIP", peer("  peerSelector: rr == 'true'\n  peerIP: 10.0.0.1"), "spec.peerIP", "'10.0.0.1'"),
        // Calico's BGPPeer rules (CEL on BGPPeerSpec, validateBGPPeerSpec).
        ("peer keepOriginalNextHop with nextHopMode", peer("  peerIP: 10.0.0.1\n  asNumber: 64512\n  keepOriginalNextHop: true\n  nextHopMode: Self"), "spec.nextHopMode", "keepOriginalNextHop and nextHopMode cannot both be set"),
        ("peer nextHopMode unknown", peer("  peerIP: 10.0.0.1\n  asNumber: 64512\n  nextHopMode: Other"), "spec.nextHopMode", "Other"),
        ("peer reachableBy without peerIP", peer("  peerSelector: all()\n  reachableBy: 10.0.0.254"), "spec.reachableBy", "reachableBy must be empty when peerIP is empty"),
        ("peer reachableBy not an address", peer("  peerIP: 10.0.0.1\n  asNumber: 64512\n  reachableBy: 10.0.0.999"), "spec.reachableBy", "'10.0.0.999'"),
        ("peer reachableBy of the other family", peer("  peerIP: '[fd00::1]:179'\n  asNumber: 64512\n  reachableBy: 10.0.0.254"), "spec.reachableBy", "ReachableBy and PeerIP address family mismatched"),
        ("peer sourceAddress unknown", peer("  peerIP: 10.0.0.1\n  asNumber: 64512\n  sourceAddress: NodeIP"), "spec.sourceAddress", "'NodeIP'"),
        ("peer maxRestartTime not a Go duration", peer("  peerIP: 10.0.0.1\n  asNumber: 64512\n  maxRestartTime: '120'"), "spec.maxRestartTime", "'120'"),
        ("peer localWorkloadSelector without AS", peer("  localWorkloadSelector: has(bgp)"), "spec.asNumber", "asNumber is required when localWorkloadSelector is set"),
        ("peer localWorkloadSelector with peerIP", peer("  localWorkloadSelector: has(bgp)\n  peerIP: 10.0.0.1\n  asNumber: 64512"), "spec.peerIP", "peerIP must be empty when localWorkloadSelector is set"),
        ("peer localWorkloadSelector refused", peer("  localWorkloadSelector: has(bgp)\n  asNumber: 64512"), "spec.localWorkloadSelector", "not supported by brindle"),
        ("peer port 0", peer("  peerIP: 192.168.0.0:0\n  asNumber: 64512"), "spec.peerIP", "'192.168.0.0:0'"),
        ("peer port over 65535", peer("  peerIP: '[9000::]:98956'\n  asNumber: 64512"), "spec.peerIP", "'[9000::]:98956'"),
        ("peer node and nodeSelector", peer("  node: my-node\n  nodeSelector: has(mylabel)\n  peerIP: 10.0.0.1\n  asNumber: 64512"), "spec.nodeSelector", "node and nodeSelector cannot both be set"),
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
        (
            "bgp mesh restart time without a mesh",
            doc("BGPConfiguration", "  name: default", "  nodeToNodeMeshEnabled: false\n  nodeMeshMaxRestartTime: 2m"),
            "spec.nodeMeshMaxRestartTime",
            "cannot be set when nodeToNodeMeshEnabled is false",
        ),
        (
            "bgp communities not used",
            doc("BGPConfiguration", "  name: default", "  communities:\n  - {name: c1, value: '64512:100'}"),
            "spec.communities",
            "communities are defined but not used in prefixAdvertisements",
        ),
        ("node bad ipv4", doc("Node", "  name: n1", "  bgp:\n    ipv4Address: 10.0.0.1/40"), "spec.bgp.ipv4Address", "'10.0.0.1/40'"),
        (
            "node bad rr cluster id",
            doc("Node", "  name: n1", "  bgp:\n    routeReflectorClusterID: abc"),
            "spec.bgp.routeReflectorClusterID",
            "'abc'",
        ),
        ("hep without interface or ips", doc("HostEndpoint", "  name: h", "  node: n1"), "spec.interfaceName", "at least one of interfaceName or expectedIPs must be specified"),
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
        ("default tier passing", doc("Tier", "  name: default", "  defaultAction: Pass"), "spec.defaultAction", "The 'default' tier must have default action 'Deny'"),
        ("kube-admin tier order", doc("Tier", "  name: kube-admin", "  order: 5"), "spec.order", "kube-admin tier order must be 1000"),
        ("kube-baseline tier denying", doc("Tier", "  name: kube-baseline", "  order: 10000000\n  defaultAction: Deny"), "spec.defaultAction", "'Pass'"),
        ("kube-baseline tier without its order", doc("Tier", "  name: kube-baseline", "  defaultAction: Pass"), "spec.order", "kube-baseline tier order must be 10000000"),
        ("tier name with dot", doc("Tier", "  name: a.b", "  order: 1"), "metadata.name", "'a.b'"),
        ("profile bad label", doc("Profile", "  name: net1", "  labelsToApply:\n    'bad key!': x"), "spec.labelsToApply.bad key!", "'bad key!'"),
        ("namespace on a global kind", doc("IPPool", "  name: p\n  namespace: ns1", "  cidr: 10.0.0.0/16"), "metadata.namespace", "'ns1'"),
        // Calico's metadata checks (validateObjectMeta{Annotations,Labels}, validateNetworkSet).
        ("annotation key with a space", doc("Profile", "  name: net1\n  annotations:\n    'bad key': x", "  {}"), "metadata.annotations.bad key", "'bad key'"),
        ("annotation key with an empty prefix", doc("Profile", "  name: net1\n  annotations:\n    '/name': x", "  {}"), "metadata.annotations./name", "'/name'"),
        ("annotations over 256 KiB", doc("Profile", &format!("  name: net1\n  annotations:\n    big: '{}'", "x".repeat(256 * 1024)), "  {}"), "metadata.annotations", "total size of annotations is too large by 3 bytes"),
        ("label value too long", doc("Profile", &format!("  name: net1\n  labels:\n    a: '{}'", "v".repeat(64)), "  {}"), "metadata.labels.a", "invalid label value"),
        ("label key with two slashes", doc("Profile", "  name: net1\n  labels:\n    'a/b/c': x", "  {}"), "metadata.labels.a/b/c", "'a/b/c'"),
        ("global network set with the namespace label", doc("GlobalNetworkSet", "  name: s\n  labels:\n    projectcalico.org/namespace: ns1", "  nets: [10.0.0.0/8]"), "metadata.labels.projectcalico.org/namespace", "projectcalico.org/namespace is not a valid label name"),
        ("metadata not a map", "apiVersion: projectcalico.org/v3\nkind: Profile\nmetadata: [a]\n".to_string(), "metadata", "sequence"),
    ]
}

#[test]
fn invalid_manifests_are_refused_with_path_and_value() {
    // Every case is checked and every disagreement listed, not only the first.
    let mut failures = Vec::new();
    for (what, text, path, needle) in cases() {
        if let Err(why) = refused_as_expected(&text, path, needle) {
            failures.push(format!("{what}: {why}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn refused_as_expected(text: &str, path: &str, needle: &str) -> Result<(), String> {
    let err = match load_documents(text) {
        Ok(r) => return Err(format!("accepted {r:?}")),
        Err(e) => e,
    };
    let msg = err.to_string();
    let paths: Vec<String> = match &err {
        ParseError::Invalid { source, .. } => {
            source.errors.iter().map(|e| e.path.clone()).collect()
        }
        other => other.path().map(str::to_string).into_iter().collect(),
    };
    if !paths.iter().any(|p| p == path) {
        return Err(format!("expected path {path}, got {paths:?} ({msg})"));
    }
    if !msg.contains(path) {
        return Err(format!("message lacks the path {path}: {msg}"));
    }
    if !msg.contains(needle) {
        return Err(format!("message lacks {needle:?}: {msg}"));
    }
    if err.document() != Some(0) {
        return Err(format!("document {:?}, not 0", err.document()));
    }
    Ok(())
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
