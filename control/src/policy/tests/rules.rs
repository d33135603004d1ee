//! What Calico rule fields translate to, and namespaces.

use super::*;

// ---- rule fields -------------------------------------------------------------------------

#[test]
fn protocols_icmp_nets_and_port_ranges_translate() {
    let mut lab = two_workloads("[]");
    lab.apply(&gnp(
        "fields",
        "1",
        "all()",
        "[{action: Deny, source: {notNets: [10.0.0.0/8]}},
          {action: Allow, protocol: ICMP, icmp: {type: 8, code: 0}},
          {action: Allow, protocol: TCP, source: {nets: [10.0.0.0/24]}, destination: {ports: [\"8000:8080\"], notPorts: [8005]}},
          {action: Allow, notProtocol: TCP, protocol: UDP}]",
        "[]",
    ));
    assert_eq!(
        lab.ingress("default/server", ping("10.0.0.1", "10.0.0.2")),
        Allow
    );
    assert_eq!(
        lab.ingress("default/server", ping("172.16.0.1", "10.0.0.2")),
        Deny,
        "notNets"
    );
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 8080)),
        Allow
    );
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 8005)),
        Deny,
        "notPorts"
    );
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.1.1", "10.0.0.2", 8080)),
        Deny,
        "outside nets"
    );
    assert_eq!(
        lab.ingress("default/server", udp("10.0.1.1", "10.0.0.2", 9)),
        Allow
    );
}

#[test]
fn a_named_port_without_a_protocol_matches_only_the_protocol_each_endpoint_gives_it() {
    let mut lab = Lab::new();
    lab.apply(&wep_with(
        "default/server",
        NODE,
        "10.0.0.2",
        "{role: server}",
        "[]",
        "  ports: [{name: dns, protocol: UDP, port: 53}, {name: web, protocol: TCP, port: 80}]\n",
    ));
    lab.apply(&wep_with(
        "default/remote",
        "node-b",
        "10.0.1.2",
        "{role: server}",
        "[]",
        "  ports: [{name: dns, protocol: TCP, port: 5353}]\n",
    ));
    lab.apply(&wep(
        "default/client",
        NODE,
        "10.0.0.1",
        "{role: client}",
        "[]",
    ));
    lab.apply(&gnp(
        "named",
        "1",
        "all()",
        "[{action: Allow, destination: {ports: [dns, web]}}]",
        "[{action: Allow, destination: {selector: \"role == 'server'\", ports: [dns]}}]",
    ));
    let mut server = |p| lab.ingress("default/server", p);
    assert_eq!(server(udp("10.0.0.1", "10.0.0.2", 53)), Allow, "UDP dns");
    assert_eq!(server(tcp("10.0.0.1", "10.0.0.2", 80)), Allow, "TCP web");
    assert_eq!(server(tcp("10.0.0.1", "10.0.0.2", 53)), Deny, "dns is UDP");
    assert_eq!(server(udp("10.0.0.1", "10.0.0.2", 80)), Deny, "web is TCP");
    let mut client = |p| lab.egress("default/client", p);
    assert_eq!(client(udp("10.0.0.1", "10.0.0.2", 53)), Allow);
    assert_eq!(client(tcp("10.0.0.1", "10.0.1.2", 5353)), Allow);
    assert_eq!(
        client(udp("10.0.0.1", "10.0.1.2", 5353)),
        Deny,
        "remote dns is TCP"
    );
    assert_eq!(
        client(tcp("10.0.0.1", "10.0.0.2", 53)),
        Deny,
        "server dns is UDP"
    );
}

#[test]
fn named_ports_resolve_from_the_local_endpoint_on_ingress_and_the_selected_ones_on_egress() {
    let mut lab = Lab::new();
    let ports = "  ports: [{name: http, protocol: TCP, port: 8080}]\n";
    lab.apply(&wep_with(
        "default/server",
        NODE,
        "10.0.0.2",
        "{role: server}",
        "[]",
        ports,
    ));
    lab.apply(&wep_with(
        "default/remote",
        "node-b",
        "10.0.1.2",
        "{role: server}",
        "[]",
        "  ports: [{name: http, protocol: TCP, port: 9090}]\n",
    ));
    lab.apply(&wep(
        "default/client",
        NODE,
        "10.0.0.1",
        "{role: client}",
        "[]",
    ));
    lab.apply(&gnp("http", "1", "all()",
        "[{action: Allow, protocol: TCP, destination: {ports: [http]}}]",
        "[{action: Allow, protocol: TCP, destination: {selector: \"role == 'server'\", ports: [http]}}]"));
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 8080)),
        Allow,
        "own http port"
    );
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 9090)),
        Deny,
        "not its own port"
    );
    assert_eq!(
        lab.ingress("default/client", tcp("10.0.0.2", "10.0.0.1", 8080)),
        Deny,
        "client has no http port"
    );
    assert_eq!(
        lab.egress("default/client", tcp("10.0.0.1", "10.0.0.2", 8080)),
        Allow
    );
    assert_eq!(
        lab.egress("default/client", tcp("10.0.0.1", "10.0.1.2", 9090)),
        Allow,
        "remote endpoint's number"
    );
    assert_eq!(
        lab.egress("default/client", tcp("10.0.0.1", "10.0.0.2", 80)),
        Deny
    );
    // A selected endpoint's port number changes: local programs must be recompiled.
    lab.model.dirty_endpoints();
    lab.apply(&wep_with(
        "default/remote",
        "node-b",
        "10.0.1.2",
        "{role: server}",
        "[]",
        "  ports: [{name: http, protocol: TCP, port: 7070}]\n",
    ));
    assert!(lab
        .model
        .dirty_endpoints()
        .contains(&wkey("default/client")));
    assert_eq!(
        lab.egress("default/client", tcp("10.0.0.1", "10.0.1.2", 7070)),
        Allow
    );
    assert_eq!(
        lab.egress("default/client", tcp("10.0.0.1", "10.0.1.2", 9090)),
        Deny
    );
}

#[test]
fn network_sets_are_selected_by_rules() {
    let mut lab = two_workloads("[]");
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: partners, labels: {trust: partner}}
spec: {nets: [198.51.100.0/24]}
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: office, namespace: default, labels: {trust: office}}
spec: {nets: [203.0.113.0/28]}
",
    );
    lab.apply(&gnp(
        "partners",
        "1",
        "all()",
        "[{action: Allow, source: {selector: \"trust == 'partner'\"}}]",
        "[]",
    ));
    assert_eq!(
        lab.ingress("default/server", tcp("198.51.100.7", "10.0.0.2", 443)),
        Allow
    );
    assert_eq!(
        lab.ingress("default/server", tcp("203.0.113.1", "10.0.0.2", 443)),
        Deny
    );
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: office, namespace: default}
spec:
  selector: all()
  ingress: [{action: Allow, source: {selector: \"trust == 'office'\"}}]
",
    );
    assert_eq!(
        lab.ingress("default/server", tcp("203.0.113.1", "10.0.0.2", 443)),
        Allow,
        "same-namespace NetworkSet"
    );
    assert_eq!(
        lab.ingress("default/server", tcp("203.0.113.16", "10.0.0.2", 443)),
        Deny,
        "outside its nets"
    );
    // Growing the set reaches the compiled program through the IP sets alone.
    let program = lab.program("default/server", Direction::Ingress);
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: office, namespace: default, labels: {trust: office}}
spec: {nets: [203.0.113.0/27]}
",
    );
    let sets = lab.sync_sets();
    assert_eq!(
        program
            .evaluate(&tcp("203.0.113.16", "10.0.0.2", 443), &sets)
            .action,
        Allow
    );
}

// ---- namespaces --------------------------------------------------------------------------

const NAMESPACE_PROFILES: &str = "apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: kns.team-a}
spec: {labelsToApply: {pcns.projectcalico.org/name: team-a, pcns.env: prod}}
---
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: kns.team-b}
spec: {labelsToApply: {pcns.projectcalico.org/name: team-b, pcns.env: dev}}
";

#[test]
fn network_policies_select_and_match_only_their_namespace_unless_namespace_selector() {
    let mut lab = Lab::new();
    lab.apply(NAMESPACE_PROFILES);
    lab.apply(&wep("team-a/db", NODE, "10.1.0.1", "{app: db}", "[]"));
    lab.apply(&wep("team-a/api", NODE, "10.1.0.2", "{app: api}", "[]"));
    lab.apply(&wep("team-b/db", NODE, "10.2.0.1", "{app: db}", "[]"));
    lab.apply(&wep("team-b/api", "node-b", "10.2.0.2", "{app: api}", "[]"));
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db, namespace: team-a}
spec:
  selector: app == 'db'
  ingress: [{action: Allow, source: {selector: app == 'api'}}]
",
    );
    assert_eq!(
        lab.ingress("team-a/db", tcp("10.1.0.2", "10.1.0.1", 5432)),
        Allow,
        "api of team-a"
    );
    assert_eq!(
        lab.ingress("team-a/db", tcp("10.2.0.2", "10.1.0.1", 5432)),
        Deny,
        "api of team-b"
    );
    let program = lab
        .model
        .endpoint_rules(&wkey("team-b/db"), Direction::Ingress)
        .unwrap();
    assert!(
        program.tiers.is_empty(),
        "policy of team-a does not select team-b's db: {program:?}"
    );

    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: db, namespace: team-a}
spec:
  selector: app == 'db'
  ingress: [{action: Allow, source: {selector: app == 'api', namespaceSelector: env == 'dev'}}]
",
    );
    assert_eq!(
        lab.ingress("team-a/db", tcp("10.2.0.2", "10.1.0.1", 5432)),
        Allow,
        "namespaceSelector env=dev"
    );
    assert_eq!(
        lab.ingress("team-a/db", tcp("10.1.0.2", "10.1.0.1", 5432)),
        Deny,
        "team-a is prod"
    );
    assert_eq!(
        lab.model
            .endpoint_labels(&wkey("team-b/api"))
            .and_then(|l| l.get(LABEL_NAMESPACE))
            .map(String::as_str),
        Some("team-b")
    );
}
