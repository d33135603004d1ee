//! Evaluation tests: resources in, `EndpointRules` out, compiled by the fastpath's
//! `ClassifierBuilder` (indexed and linear, which must agree) and evaluated on packets.
//!
//! The lab and the resource builders are here; the tests by topic: `order` (default deny,
//! profiles, tiers and order), `rules` (rule fields, namespaces), `updates` (address sets,
//! dirty endpoints, errors), `scenarios` (ARCHITECTURE.md's), `host_endpoints`.

mod host_endpoints;
mod order;
mod rules;
mod scenarios;
mod stats;
mod updates;

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
