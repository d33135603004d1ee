//! Evaluation tests: resources in, `EndpointRules` out, compiled by the fastpath's
//! `ClassifierBuilder` (indexed and linear, which must agree) and evaluated on packets.

use fastpath::classifier::{
    protocol, Cidr, ClassifierBuilder, IpSets, IpSetsWriter, PacketFields, PolicyAction,
    PolicyProgram,
};
use resources::{load_documents, parse_documents, Kind};

use super::*;

const NODE: &str = "node-a";

/// A model of node `node-a` plus the dataplane's IP sets, fed only through deltas.
struct Lab {
    model: PolicyModel,
    writer: IpSetsWriter,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            model: PolicyModel::new(NODE),
            writer: IpSetsWriter::new(),
        }
    }

    /// Stores manifests as `calicoctl apply` would (Calico's defaults, validated).
    fn apply(&mut self, yaml: &str) {
        for r in load_documents(yaml).unwrap_or_else(|e| panic!("test manifest: {e}\n{yaml}")) {
            self.model.upsert(&r).unwrap();
        }
    }

    /// Applies the pending set deltas and publishes them.
    fn sync_sets(&mut self) -> std::sync::Arc<IpSets> {
        apply_ipset_deltas(&mut self.writer, &self.model.take_ipset_deltas());
        self.writer.publish()
    }

    fn program(&self, endpoint: &str, direction: Direction) -> PolicyProgram {
        let rules = self
            .model
            .endpoint_rules(&wkey(endpoint), direction)
            .unwrap();
        ClassifierBuilder::default().compile(&rules).unwrap()
    }

    /// The verdict for `packet` at `endpoint` (`ns/name`); the indexed and the linear
    /// programs must agree.
    fn decide(
        &mut self,
        endpoint: &str,
        direction: Direction,
        packet: PacketFields,
    ) -> PolicyAction {
        let sets = self.sync_sets();
        let rules = self
            .model
            .endpoint_rules(&wkey(endpoint), direction)
            .unwrap();
        let indexed = ClassifierBuilder::default()
            .compile(&rules)
            .unwrap()
            .evaluate(&packet, &sets);
        let linear = ClassifierBuilder::linear()
            .compile(&rules)
            .unwrap()
            .evaluate(&packet, &sets);
        assert_eq!(
            indexed.action, linear.action,
            "indexed and linear programs disagree on {packet:?}"
        );
        indexed.action
    }

    fn ingress(&mut self, endpoint: &str, packet: PacketFields) -> PolicyAction {
        self.decide(endpoint, Direction::Ingress, packet)
    }

    fn egress(&mut self, endpoint: &str, packet: PacketFields) -> PolicyAction {
        self.decide(endpoint, Direction::Egress, packet)
    }
}

use PolicyAction::{Allow, Deny};

fn wkey(endpoint: &str) -> EndpointKey {
    let (namespace, name) = endpoint.split_once('/').expect("ns/name");
    EndpointKey::Workload {
        namespace: namespace.into(),
        name: name.into(),
    }
}

fn tcp(src: &str, dst: &str, dst_port: u16) -> PacketFields {
    PacketFields {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        protocol: protocol::TCP,
        src_port: 40000,
        dst_port,
        icmp_type: None,
        icmp_code: None,
    }
}

fn udp(src: &str, dst: &str, dst_port: u16) -> PacketFields {
    PacketFields {
        protocol: protocol::UDP,
        ..tcp(src, dst, dst_port)
    }
}

fn ping(src: &str, dst: &str) -> PacketFields {
    PacketFields {
        protocol: protocol::ICMP,
        dst_port: 0,
        src_port: 0,
        icmp_type: Some(8),
        icmp_code: Some(0),
        ..tcp(src, dst, 0)
    }
}

/// A workload endpoint `ns/name` on `node` with one address.
fn wep(endpoint: &str, node: &str, ip: &str, labels: &str, profiles: &str) -> String {
    wep_with(endpoint, node, ip, labels, profiles, "")
}

fn wep_with(
    endpoint: &str,
    node: &str,
    ip: &str,
    labels: &str,
    profiles: &str,
    extra_spec: &str,
) -> String {
    let (ns, name) = endpoint.split_once('/').unwrap();
    format!(
        "apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: {name}
  namespace: {ns}
  labels: {labels}
spec:
  node: {node}
  orchestrator: cni
  interfaceName: cali{name}
  ipNetworks: [\"{ip}/32\"]
  profiles: {profiles}
{extra_spec}---
"
    )
}

fn gnp(name: &str, order: &str, selector: &str, ingress: &str, egress: &str) -> String {
    let tier = name
        .split_once('.')
        .map(|(t, _)| format!("  tier: {t}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: {name}
spec:
{tier}  order: {order}
  selector: {selector}
  ingress: {ingress}
  egress: {egress}
---
"
    )
}

fn tier(name: &str, order: &str, default_action: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: Tier
metadata:
  name: {name}
spec:
  order: {order}
  defaultAction: {default_action}
---
"
    )
}

/// The profile Calico's CNI makes for a network: members labelled `<name>`, ingress from
/// members, egress anywhere.
fn network_profile(name: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: Profile
metadata:
  name: {name}
spec:
  labelsToApply: {{{name}: \"\"}}
  ingress: [{{action: Allow, source: {{selector: \"has({name})\"}}}}]
  egress: [{{action: Allow}}]
---
"
    )
}

const ALLOW_ALL_PROFILE: &str = "apiVersion: projectcalico.org/v3
kind: Profile
metadata:
  name: open
spec:
  ingress: [{action: Allow}]
  egress: [{action: Allow}]
---
";

/// `default/client` (10.0.0.1) and `default/server` (10.0.0.2) on this node.
fn two_workloads(profiles: &str) -> Lab {
    let mut lab = Lab::new();
    lab.apply(&wep(
        "default/client",
        NODE,
        "10.0.0.1",
        "{role: client}",
        profiles,
    ));
    lab.apply(&wep(
        "default/server",
        NODE,
        "10.0.0.2",
        "{role: server}",
        profiles,
    ));
    lab
}

// ---- default deny, profiles --------------------------------------------------------------

#[test]
fn no_policy_and_no_profile_denies_both_directions() {
    let mut lab = two_workloads("[]");
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Deny
    );
    assert_eq!(
        lab.egress("default/server", tcp("10.0.0.2", "10.0.0.1", 80)),
        Deny
    );
}

#[test]
fn profile_rules_decide_when_no_policy_applies_and_a_missing_profile_allows_nothing() {
    let mut lab = two_workloads("[open]");
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Deny,
        "profile not stored yet"
    );
    lab.apply(ALLOW_ALL_PROFILE);
    assert!(
        lab.model
            .dirty_endpoints()
            .contains(&wkey("default/server")),
        "a profile change dirties its endpoints"
    );
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Allow
    );
    lab.model.remove(Kind::Profile, None, "open");
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Deny
    );
}

#[test]
fn profiles_come_after_policies_and_see_only_what_policies_passed() {
    let mut lab = two_workloads("[open]");
    lab.apply(ALLOW_ALL_PROFILE);
    // A policy that passes port 22 and denies nothing else explicitly: its tier ends in Deny
    // for everything else, so the profile only sees port 22.
    lab.apply(&gnp(
        "pass-ssh",
        "10",
        "role == 'server'",
        "[{action: Pass, protocol: TCP, destination: {ports: [22]}}, {action: Deny, protocol: TCP, destination: {ports: [22, 80]}}]",
        "[]",
    ));
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 22)),
        Allow,
        "passed to the profile"
    );
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Deny,
        "denied by the policy"
    );
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 443)),
        Deny,
        "tier default action"
    );
    assert_eq!(
        lab.ingress("default/client", tcp("10.0.0.2", "10.0.0.1", 443)),
        Allow,
        "policy does not select client"
    );
}

// ---- tiers and order ---------------------------------------------------------------------

#[test]
fn tiers_run_by_order_before_policy_order() {
    let mut lab = two_workloads("[]");
    lab.apply(&tier("security", "100", "Pass"));
    lab.apply(&gnp(
        "security.block-web",
        "1000",
        "all()",
        "[{action: Deny, protocol: TCP, destination: {ports: [80]}}]",
        "[]",
    ));
    lab.apply(&gnp(
        "allow-web",
        "1",
        "all()",
        "[{action: Allow, protocol: TCP, destination: {ports: [80]}}]",
        "[]",
    ));
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Deny,
        "tier 100 runs before default"
    );
    lab.model.dirty_endpoints();
    // The security tier after the default tier (1,000,000): the default tier decides first.
    lab.apply(&tier("security", "2000000", "Pass"));
    let dirty = lab.model.dirty_endpoints();
    assert!(
        dirty.contains(&wkey("default/server")) && dirty.contains(&wkey("default/client")),
        "{dirty:?}"
    );
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Allow
    );
    // A tier without order runs last.
    lab.apply(&tier("security", "null", "Pass"));
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Allow
    );
    lab.apply(&tier("security", "999999", "Pass"));
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Deny
    );
}

#[test]
fn policies_run_by_order_then_name_and_unordered_last() {
    let mut lab = two_workloads("[]");
    let deny = "[{action: Deny}]";
    let allow = "[{action: Allow}]";
    lab.apply(&gnp("b-deny", "5", "all()", deny, "[]"));
    lab.apply(&gnp("a-allow", "10", "all()", allow, "[]"));
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Deny,
        "order 5 before 10"
    );
    lab.apply(&gnp("b-deny", "10", "all()", deny, "[]"));
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Allow,
        "same order: a before b"
    );
    lab.apply(&gnp("a-allow", "null", "all()", allow, "[]"));
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Deny,
        "no order runs last"
    );
}

#[test]
fn pass_goes_to_the_next_tier_and_log_continues() {
    let mut lab = two_workloads("[]");
    lab.apply(&tier("first", "10", "Deny"));
    lab.apply(&gnp(
        "first.triage",
        "1",
        "all()",
        "[{action: Log}, {action: Pass, source: {nets: [10.0.0.1/32]}}, {action: Deny, protocol: TCP, destination: {ports: [22]}}, {action: Allow}]",
        "[]",
    ));
    lab.apply(&gnp(
        "deny-client",
        "1",
        "all()",
        "[{action: Deny, source: {selector: \"role == 'client'\"}}]",
        "[]",
    ));
    // From client: Log, then Pass to the default tier, which denies client.
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Deny
    );
    // From elsewhere: Log does not decide; port 22 denied, else allowed in the first tier.
    assert_eq!(
        lab.ingress("default/server", tcp("10.9.9.9", "10.0.0.2", 22)),
        Deny
    );
    assert_eq!(
        lab.ingress("default/server", tcp("10.9.9.9", "10.0.0.2", 80)),
        Allow
    );
}

#[test]
fn tier_default_action_applies_only_when_a_policy_of_the_tier_selected_the_endpoint() {
    let mut lab = two_workloads("[open]");
    lab.apply(ALLOW_ALL_PROFILE);
    lab.apply(&tier("strict", "10", "Deny"));
    lab.apply(&gnp(
        "strict.only-udp",
        "1",
        "role == 'server'",
        "[{action: Allow, protocol: UDP}]",
        "[]",
    ));
    assert_eq!(
        lab.ingress("default/server", udp("10.0.0.1", "10.0.0.2", 53)),
        Allow
    );
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 53)),
        Deny,
        "defaultAction Deny"
    );
    assert_eq!(
        lab.ingress("default/client", tcp("10.0.0.2", "10.0.0.1", 53)),
        Allow,
        "tier does not apply"
    );
    lab.apply(&tier("strict", "10", "Pass"));
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 53)),
        Allow,
        "defaultAction Pass: profile"
    );
}

#[test]
fn policy_types_limit_directions_and_default_as_calico_does() {
    let mut lab = two_workloads("[open]");
    lab.apply(ALLOW_ALL_PROFILE);
    // Ingress-only: the deny-everything policy leaves egress to the profile.
    lab.apply(&gnp("lockdown", "1", "all()", "[]", "[]"));
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Deny
    );
    assert_eq!(
        lab.egress("default/server", tcp("10.0.0.2", "10.0.0.1", 80)),
        Allow
    );

    // Types absent and only egress rules (as stored without defaults): Egress only.
    let egress_only = "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: lockdown}
spec:
  selector: all()
  egress: [{action: Deny, protocol: UDP}]
";
    for r in parse_documents(egress_only).unwrap() {
        lab.model.upsert(&r).unwrap();
    }
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Allow,
        "no ingress type"
    );
    assert_eq!(
        lab.egress("default/server", udp("10.0.0.2", "10.0.0.1", 53)),
        Deny
    );
    assert_eq!(
        lab.egress("default/server", tcp("10.0.0.2", "10.0.0.1", 80)),
        Deny,
        "tier default"
    );
}

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

// ---- address sets ------------------------------------------------------------------------

#[test]
fn relabelling_a_workload_moves_it_between_sets_without_recompiling() {
    let mut lab = two_workloads("[]");
    lab.apply(&wep(
        "default/other",
        "node-b",
        "10.0.5.5",
        "{role: guest}",
        "[]",
    ));
    lab.apply(&gnp(
        "clients",
        "1",
        "role == 'server'",
        "[{action: Allow, source: {selector: \"role == 'client'\"}}]",
        "[]",
    ));
    let program = lab.program("default/server", Direction::Ingress);
    let sets = lab.sync_sets();
    assert_eq!(
        program
            .evaluate(&tcp("10.0.5.5", "10.0.0.2", 80), &sets)
            .action,
        Deny
    );
    let (set, selector) = lab
        .model
        .ipsets()
        .into_iter()
        .map(|(id, s)| (id, s.clone()))
        .next()
        .unwrap();
    assert_eq!(selector.to_string(), "role == \"client\"");
    assert_eq!(
        lab.model.ipset_members(set),
        vec![Cidr::host("10.0.0.1".parse().unwrap())]
    );
    lab.model.dirty_endpoints();

    // The remote workload becomes a client: one Added delta, no local program dirty.
    lab.apply(&wep(
        "default/other",
        "node-b",
        "10.0.5.5",
        "{role: client}",
        "[]",
    ));
    let deltas = lab.model.take_ipset_deltas();
    assert_eq!(
        deltas,
        vec![IpSetDelta {
            set,
            member: Cidr::host("10.0.5.5".parse().unwrap()),
            change: MemberChange::Added
        }]
    );
    assert!(lab.model.dirty_endpoints().is_empty());
    apply_ipset_deltas(&mut lab.writer, &deltas);
    let sets = lab.writer.publish();
    assert_eq!(
        program
            .evaluate(&tcp("10.0.5.5", "10.0.0.2", 80), &sets)
            .action,
        Allow
    );

    // Its address changes, then it leaves: the deltas follow.
    lab.apply(&wep(
        "default/other",
        "node-b",
        "10.0.5.6",
        "{role: client}",
        "[]",
    ));
    let deltas = lab.model.take_ipset_deltas();
    assert_eq!(deltas.len(), 2);
    assert!(deltas.contains(&IpSetDelta {
        set,
        member: Cidr::host("10.0.5.5".parse().unwrap()),
        change: MemberChange::Removed
    }));
    assert!(deltas.contains(&IpSetDelta {
        set,
        member: Cidr::host("10.0.5.6".parse().unwrap()),
        change: MemberChange::Added
    }));
    lab.model
        .remove(Kind::WorkloadEndpoint, Some("default"), "other");
    assert_eq!(
        lab.model.take_ipset_deltas(),
        vec![IpSetDelta {
            set,
            member: Cidr::host("10.0.5.6".parse().unwrap()),
            change: MemberChange::Removed
        }]
    );

    // A change undone before it is taken reaches nobody.
    lab.apply(&wep(
        "default/client",
        NODE,
        "10.0.0.1",
        "{role: guest}",
        "[]",
    ));
    lab.apply(&wep(
        "default/client",
        NODE,
        "10.0.0.1",
        "{role: client}",
        "[]",
    ));
    assert!(lab.model.take_ipset_deltas().is_empty());
}

#[test]
fn equal_selectors_share_a_set_that_lives_while_any_rule_holds_it() {
    let mut lab = two_workloads("[]");
    let rule = "[{action: Allow, source: {selector: \"role == 'client'\"}}]";
    lab.apply(&gnp("one", "1", "all()", rule, "[]"));
    lab.apply(&gnp(
        "two",
        "2",
        "all()",
        "[{action: Allow, source: {selector: \"role=='client'\"}}]",
        "[]",
    ));
    assert_eq!(lab.model.ipsets().len(), 1);
    let set = lab.model.ipsets()[0].0;
    lab.sync_sets();
    lab.model.remove(Kind::GlobalNetworkPolicy, None, "one");
    assert!(
        lab.model.take_ipset_deltas().is_empty(),
        "still held by 'two'"
    );
    lab.apply(&gnp("two", "3", "all()", rule, "[]"));
    assert_eq!(
        lab.model.ipsets()[0].0,
        set,
        "an update keeps the set of a selector it still uses"
    );
    lab.model.remove(Kind::GlobalNetworkPolicy, None, "two");
    assert_eq!(
        lab.model.take_ipset_deltas(),
        vec![IpSetDelta {
            set,
            member: Cidr::host("10.0.0.1".parse().unwrap()),
            change: MemberChange::Removed
        }]
    );
    assert!(lab.model.ipsets().is_empty());
}

#[test]
fn two_members_with_one_address_keep_it_in_the_set_until_both_leave() {
    let mut lab = two_workloads("[]");
    lab.apply(&gnp(
        "c",
        "1",
        "all()",
        "[{action: Allow, source: {selector: has(trusted)}}]",
        "[]",
    ));
    lab.apply(&wep(
        "default/a",
        "node-b",
        "10.9.0.1",
        "{trusted: t}",
        "[]",
    ));
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: same, labels: {trusted: t}}
spec: {nets: [10.9.0.1/32]}
",
    );
    assert_eq!(lab.model.take_ipset_deltas().len(), 1);
    lab.model
        .remove(Kind::WorkloadEndpoint, Some("default"), "a");
    assert!(
        lab.model.take_ipset_deltas().is_empty(),
        "the network set still holds it"
    );
    lab.model.remove(Kind::GlobalNetworkSet, None, "same");
    assert_eq!(lab.model.take_ipset_deltas().len(), 1);
}

// ---- dirty endpoints, errors -------------------------------------------------------------

#[test]
fn a_policy_change_dirties_only_the_local_endpoints_it_selects() {
    let mut lab = two_workloads("[]");
    lab.apply(&wep(
        "default/far",
        "node-b",
        "10.0.9.9",
        "{role: server}",
        "[]",
    ));
    lab.model.dirty_endpoints();
    lab.apply(&gnp(
        "servers",
        "1",
        "role == 'server'",
        "[{action: Allow}]",
        "[]",
    ));
    assert_eq!(lab.model.dirty_endpoints(), vec![wkey("default/server")]);
    lab.apply(&gnp(
        "servers",
        "1",
        "role == 'client'",
        "[{action: Allow}]",
        "[]",
    ));
    assert_eq!(
        lab.model.dirty_endpoints(),
        vec![wkey("default/client"), wkey("default/server")],
        "old and new"
    );
    assert!(matches!(
        lab.model
            .endpoint_rules(&wkey("default/far"), Direction::Ingress),
        Err(PolicyError::NotLocal { .. })
    ));
    lab.model
        .remove(Kind::WorkloadEndpoint, Some("default"), "client");
    assert!(lab
        .model
        .dirty_endpoints()
        .contains(&wkey("default/client")));
    assert!(matches!(
        lab.model
            .endpoint_rules(&wkey("default/client"), Direction::Ingress),
        Err(PolicyError::UnknownEndpoint(_))
    ));
}

#[test]
fn a_bad_resource_is_refused_naming_field_and_value_and_the_old_version_stays() {
    let mut lab = two_workloads("[]");
    lab.apply(&gnp(
        "p",
        "1",
        "all()",
        "[{action: Allow, source: {selector: has(role)}}]",
        "[]",
    ));
    let bad = parse_documents(&gnp("p", "1", "all()", "[{action: Allow, source: {selector: has(other)}}, {action: Deny, source: {selector: \"role ==\"}}]", "[]"))
        .unwrap();
    let err = lab.model.upsert(&bad[0]).unwrap_err().to_string();
    assert!(
        err.contains("GlobalNetworkPolicy p") && err.contains("spec.ingress[1].source.selector"),
        "{err}"
    );
    assert!(err.contains("\"role ==\""), "{err}");
    assert_eq!(
        lab.model.ipsets().len(),
        1,
        "nothing of the refused version stays acquired"
    );
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Allow,
        "old version in force"
    );

    let bad = parse_documents(&gnp(
        "q",
        "1",
        "all()",
        "[{action: Allow, source: {nets: [10.0.0.0/40]}}]",
        "[]",
    ))
    .unwrap();
    let err = lab.model.upsert(&bad[0]).unwrap_err().to_string();
    assert!(
        err.contains("spec.ingress[0].source.nets[0]") && err.contains("10.0.0.0/40"),
        "{err}"
    );
}

#[test]
fn service_account_rules_match_by_name_label_and_unsupported_services_never_allow() {
    let mut lab = Lab::new();
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: ksa.default.robot}
spec: {labelsToApply: {pcsa.projectcalico.org/name: robot, pcsa.team: infra}}
",
    );
    lab.apply(&wep("default/server", NODE, "10.0.0.2", "{}", "[]"));
    lab.apply(&wep(
        "default/bot",
        NODE,
        "10.0.0.3",
        "{}",
        "[ksa.default.robot]",
    ));
    lab.apply(&wep("default/human", NODE, "10.0.0.4", "{}", "[]"));
    lab.apply(&gnp("sa", "1", "all()",
        "[{action: Allow, source: {serviceAccounts: {names: [robot], selector: \"team == 'infra'\"}}},
          {action: Allow, destination: {services: {name: web, namespace: default}}}]", "[]"));
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.3", "10.0.0.2", 80)),
        Allow
    );
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.4", "10.0.0.2", 80)),
        Deny,
        "services rule does not allow"
    );
}

// ---- MISSION.md scenarios 2 and 3 --------------------------------------------------------

/// Scenario 2: `net1` and `net2` are isolated by their profiles; members of one network
/// reach each other, egress is open.
#[test]
fn scenario_2_networks_are_isolated_by_their_profiles() {
    let mut lab = Lab::new();
    lab.apply(&network_profile("net1"));
    lab.apply(&network_profile("net2"));
    lab.apply(&wep("default/a1", NODE, "192.168.0.1", "{}", "[net1]"));
    lab.apply(&wep("default/a2", "node-b", "192.168.1.1", "{}", "[net1]"));
    lab.apply(&wep("default/b1", NODE, "192.168.0.2", "{}", "[net2]"));
    assert_eq!(
        lab.ingress("default/a1", ping("192.168.1.1", "192.168.0.1")),
        Allow,
        "same network, other host"
    );
    assert_eq!(
        lab.ingress("default/a1", ping("192.168.0.2", "192.168.0.1")),
        Deny,
        "net2 into net1"
    );
    assert_eq!(
        lab.ingress("default/b1", ping("192.168.0.1", "192.168.0.2")),
        Deny,
        "net1 into net2"
    );
    assert_eq!(
        lab.egress("default/b1", ping("192.168.0.2", "192.168.0.1")),
        Allow,
        "egress is open"
    );
}

/// Scenario 3: network `web` serves HTTP; a policy lets `net2`, and only it, reach it on
/// TCP 80.
#[test]
fn scenario_3_only_net2_reaches_web_on_tcp_80() {
    let mut lab = Lab::new();
    for net in ["net1", "net2", "web"] {
        lab.apply(&network_profile(net));
    }
    lab.apply(&wep("default/web1", NODE, "192.168.0.10", "{}", "[web]"));
    lab.apply(&wep("default/n1", NODE, "192.168.0.11", "{}", "[net1]"));
    lab.apply(&wep("default/n2", "node-b", "192.168.1.12", "{}", "[net2]"));
    assert_eq!(
        lab.ingress("default/web1", tcp("192.168.1.12", "192.168.0.10", 80)),
        Deny,
        "before the policy"
    );
    lab.apply(&gnp(
        "net2-to-web",
        "100",
        "has(web)",
        "[{action: Allow, protocol: TCP, source: {selector: has(net2)}, destination: {ports: [80]}}]",
        "[]",
    ));
    assert!(lab.model.dirty_endpoints().contains(&wkey("default/web1")));
    assert_eq!(
        lab.ingress("default/web1", tcp("192.168.1.12", "192.168.0.10", 80)),
        Allow
    );
    assert_eq!(
        lab.ingress("default/web1", tcp("192.168.1.12", "192.168.0.10", 22)),
        Deny,
        "TCP 80 only"
    );
    assert_eq!(
        lab.ingress("default/web1", udp("192.168.1.12", "192.168.0.10", 80)),
        Deny,
        "TCP only"
    );
    assert_eq!(
        lab.ingress("default/web1", tcp("192.168.0.11", "192.168.0.10", 80)),
        Deny,
        "net1 may not"
    );
    assert_eq!(
        lab.egress("default/n1", tcp("192.168.0.11", "192.168.0.10", 80)),
        Allow,
        "net1's own egress is open"
    );
}

// ---- host endpoints ----------------------------------------------------------------------

#[test]
fn host_endpoints_are_set_members_and_global_selects_only_them() {
    let mut lab = two_workloads("[open]");
    lab.apply(ALLOW_ALL_PROFILE);
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node-a-eth0, labels: {role: gateway}}
spec: {node: node-a, interfaceName: eth0, expectedIPs: [10.0.0.100], profiles: [open]}
",
    );
    lab.apply(&gnp(
        "hosts-only",
        "1",
        "global()",
        "[{action: Deny, protocol: UDP}, {action: Pass}]",
        "[]",
    ));
    lab.apply(&gnp(
        "from-gateway",
        "2",
        "role == 'server'",
        "[{action: Allow, source: {selector: \"role == 'gateway'\"}}]",
        "[]",
    ));
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.100", "10.0.0.2", 80)),
        Allow
    );
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 80)),
        Deny
    );
    assert_eq!(
        lab.ingress("default/client", udp("10.0.0.2", "10.0.0.1", 53)),
        Allow,
        "global() skips workloads"
    );

    let host = EndpointKey::Host {
        name: "node-a-eth0".into(),
    };
    assert!(lab
        .model
        .local_endpoints()
        .contains(&(host.clone(), "eth0".to_string())));
    let sets = lab.sync_sets();
    let rules = lab.model.endpoint_rules(&host, Direction::Ingress).unwrap();
    let program = ClassifierBuilder::default().compile(&rules).unwrap();
    assert_eq!(
        program
            .evaluate(&udp("10.0.0.1", "10.0.0.100", 53), &sets)
            .action,
        Deny
    );
    assert_eq!(
        program
            .evaluate(&tcp("10.0.0.1", "10.0.0.100", 22), &sets)
            .action,
        Allow,
        "passed to the profile"
    );
}

#[test]
fn do_not_track_and_pre_dnat_policies_form_their_own_stages_on_host_endpoints_only() {
    let mut lab = two_workloads("[open]");
    lab.apply(ALLOW_ALL_PROFILE);
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node-a-eth0, labels: {role: gateway}}
spec: {node: node-a, interfaceName: eth0, expectedIPs: [10.0.0.100]}
",
    );
    let staged = |name: &str, flag: &str, ingress: &str, egress: &str| {
        format!(
            "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: {name}}}
spec: {{selector: all(), order: 1, {flag}: true, applyOnForward: true, ingress: {ingress}, egress: {egress}}}
"
        )
    };
    lab.apply(&staged(
        "untracked",
        "doNotTrack",
        "[{action: Allow, protocol: UDP, destination: {ports: [4789]}}]",
        "[{action: Deny, protocol: UDP}]",
    ));
    lab.apply(&staged(
        "pre-dnat",
        "preDNAT",
        "[{action: Deny, protocol: TCP, destination: {ports: [23]}}]",
        "[]",
    ));
    lab.apply(&gnp(
        "normal",
        "2",
        "role == 'gateway'",
        "[{action: Allow, protocol: TCP, destination: {ports: [22]}}]",
        "[]",
    ));
    let sets = lab.sync_sets();
    let host = EndpointKey::Host {
        name: "node-a-eth0".into(),
    };
    let compile = |direction, stage| {
        let rules = lab
            .model
            .endpoint_rules_in(&host, direction, stage)
            .unwrap();
        ClassifierBuilder::default().compile(&rules).unwrap()
    };
    // Untracked: an explicit Allow and an explicit Deny decide (a rule is named); anything
    // else is left to the next stage (no rule: the implicit end).
    let untracked_in = compile(Direction::Ingress, PolicyStage::Untracked);
    let d = untracked_in.evaluate(&udp("10.0.0.1", "10.0.0.100", 4789), &sets);
    assert!(d.action == Allow && d.rule.is_some());
    let d = untracked_in.evaluate(&tcp("10.0.0.1", "10.0.0.100", 80), &sets);
    assert!(d.rule.is_none(), "no untracked rule about TCP 80: {d:?}");
    let d = compile(Direction::Egress, PolicyStage::Untracked)
        .evaluate(&udp("10.0.0.100", "10.0.0.1", 53), &sets);
    assert!(d.action == Deny && d.rule.is_some());
    // Pre-DNAT: ingress only.
    let pre_dnat = compile(Direction::Ingress, PolicyStage::PreDnat);
    let d = pre_dnat.evaluate(&tcp("10.0.0.1", "10.0.0.100", 23), &sets);
    assert!(d.action == Deny && d.rule.is_some());
    assert!(pre_dnat
        .evaluate(&tcp("10.0.0.1", "10.0.0.100", 22), &sets)
        .rule
        .is_none());
    // Normal: only the normal policy; the host endpoint has no profile, so the rest is denied.
    let normal = compile(Direction::Ingress, PolicyStage::Normal);
    assert_eq!(
        normal
            .evaluate(&tcp("10.0.0.1", "10.0.0.100", 22), &sets)
            .action,
        Allow
    );
    assert_eq!(
        normal
            .evaluate(&udp("10.0.0.1", "10.0.0.100", 4789), &sets)
            .action,
        Deny,
        "the untracked policy is not in the normal stage"
    );
    // Workloads: untracked and pre-DNAT policies never apply, whatever their selector.
    assert_eq!(
        lab.ingress("default/server", tcp("10.0.0.1", "10.0.0.2", 23)),
        Allow,
        "pre-DNAT deny not applied to a workload"
    );
    let wrules = lab
        .model
        .endpoint_rules_in(
            &wkey("default/server"),
            Direction::Ingress,
            PolicyStage::Untracked,
        )
        .unwrap();
    assert!(wrules.tiers.is_empty() && wrules.profiles.is_empty());
}

#[test]
fn apply_on_forward_policies_form_the_forward_stage_of_host_endpoints() {
    let mut lab = two_workloads("[open]");
    lab.apply(ALLOW_ALL_PROFILE);
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node-a-eth0, labels: {role: gateway}}
spec: {node: node-a, interfaceName: eth0, expectedIPs: [10.0.0.100]}
",
    );
    lab.apply(&gnp(
        "host-only",
        "1",
        "role == 'gateway'",
        "[{action: Allow, protocol: TCP, destination: {ports: [22]}}]",
        "[]",
    ));
    let sets = lab.sync_sets();
    let host = EndpointKey::Host {
        name: "node-a-eth0".into(),
    };
    let forward = |lab: &Lab| {
        lab.model
            .endpoint_rules_in(&host, Direction::Ingress, PolicyStage::Forward)
            .unwrap()
    };
    assert!(
        forward(&lab).tiers.is_empty(),
        "a policy without applyOnForward does not apply to forwarded traffic"
    );
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: forward-web}
spec: {selector: role == 'gateway', order: 2, applyOnForward: true, ingress: [{action: Allow, protocol: TCP, destination: {ports: [80]}}]}
",
    );
    let rules = forward(&lab);
    assert_eq!(rules.tiers.len(), 1);
    assert!(rules.profiles.is_empty());
    let program = ClassifierBuilder::default().compile(&rules).unwrap();
    assert_eq!(
        program
            .evaluate(&tcp("10.1.0.1", "10.0.0.2", 80), &sets)
            .action,
        Allow
    );
    assert_eq!(
        program
            .evaluate(&tcp("10.1.0.1", "10.0.0.2", 22), &sets)
            .action,
        Deny,
        "host-only's rule is not in it"
    );
    // The node's own traffic: every normal policy, applyOnForward or not.
    let normal = ClassifierBuilder::default()
        .compile(&lab.model.endpoint_rules(&host, Direction::Ingress).unwrap())
        .unwrap();
    assert_eq!(
        normal
            .evaluate(&tcp("10.1.0.1", "10.0.0.100", 22), &sets)
            .action,
        Allow
    );
    assert_eq!(
        normal
            .evaluate(&tcp("10.1.0.1", "10.0.0.100", 80), &sets)
            .action,
        Allow
    );
}
