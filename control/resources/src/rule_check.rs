//! Validation of policy and profile rules, as Calico's validator and its CRDs' CEL rules
//! check them (libcalico-go `validateRule`, `validateEntityRule`; `policy_common.go`):
//! protocol against ports and ICMP, address families across a rule's nets, selectors, and
//! services. Messages are Calico's where it has one.

use ipnet::IpNet;

use crate::common::{check_protocol, PortMatch, Protocol};
use crate::policy::{EntityRule, IcmpFields, Rule};
use crate::selector;
use crate::validate::{check_cidr, field, index, Errors};

const PORTS_NEED_PROTOCOL: &str =
    "rules with numeric port or port range must set protocol to TCP or UDP or SCTP";
const PROTOCOL_WITHOUT_PORTS: &str =
    "rules that specify ports must set protocol to TCP or UDP or SCTP";
/// Calico's message wherever `global()` may not go.
pub(crate) const GLOBAL_ONLY_IN_NAMESPACE_SELECTOR: &str =
    "global() can only be used in an EntityRule namespaceSelector";

/// Where a policy's rules sit, for the checks that depend on it (services).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleSide {
    Ingress,
    Egress,
}

/// Checks the rules at `path` (e.g. `spec.ingress`), each as [`check_rule`].
pub(crate) fn check_rules(errs: &mut Errors, path: &str, rules: &[Rule]) {
    for (i, r) in rules.iter().enumerate() {
        check_rule(errs, &index(path, i), r);
    }
}

/// The policy-level rule checks of (Global)NetworkPolicy: services only as an ingress rule's
/// source or an egress rule's destination; in a global policy they name their namespace.
pub(crate) fn check_services_placement(
    errs: &mut Errors,
    path: &str,
    rules: &[Rule],
    side: RuleSide,
    global: bool,
) {
    for (i, rule) in rules.iter().enumerate() {
        let path = index(path, i);
        let (wrong, right, message) = match side {
            RuleSide::Ingress => (
                ("destination", &rule.destination),
                ("source", &rule.source),
                "not allowed in ingress rule destination",
            ),
            RuleSide::Egress => (
                ("source", &rule.source),
                ("destination", &rule.destination),
                "not allowed in egress rule source",
            ),
        };
        if let Some(svc) = wrong.1.as_ref().and_then(|e| e.services.as_ref()) {
            errs.add(
                &field(&field(&path, wrong.0), "services"),
                &svc.name,
                message,
            );
        }
        if let Some(svc) = right.1.as_ref().and_then(|e| e.services.as_ref()) {
            if global && svc.namespace.is_empty() {
                let at = field(&field(&field(&path, right.0), "services"), "namespace");
                errs.add(&at, "", "must specify a namespace");
            }
        }
    }
}

/// Checks one rule at `path` (e.g. `spec.ingress[0]`).
pub(crate) fn check_rule(errs: &mut Errors, path: &str, rule: &Rule) {
    if rule.action.is_none() {
        errs.add(
            &field(path, "action"),
            "",
            "action is required: one of Allow, Deny, Log, Pass",
        );
    }
    if let Some(v) = rule.ip_version {
        if v != 4 && v != 6 {
            errs.add(&field(path, "ipVersion"), v, "ipVersion must be 4 or 6");
        }
    }
    for (name, protocol) in [
        ("protocol", &rule.protocol),
        ("notProtocol", &rule.not_protocol),
    ] {
        if let Some(p) = protocol {
            check_protocol(errs, &field(path, name), p);
            check_icmp_version(errs, &field(path, name), p, rule.ip_version);
        }
    }
    if let Some(icmp) = &rule.icmp {
        check_icmp(errs, &field(path, "icmp"), icmp, rule.protocol.as_ref());
    }
    if let Some(icmp) = &rule.not_icmp {
        check_icmp(errs, &field(path, "notICMP"), icmp, rule.protocol.as_ref());
    }
    for (name, entity) in [("source", &rule.source), ("destination", &rule.destination)] {
        if let Some(e) = entity {
            check_entity(errs, &field(path, name), e, rule.protocol.as_ref());
        }
    }
    if let Some(dst) = &rule.destination {
        if dst.services.is_some() && (!dst.ports.is_empty() || !dst.not_ports.is_empty()) {
            errs.add(
                &field(&field(path, "destination"), "services"),
                dst.services.as_ref().map_or("", |s| s.name.as_str()),
                "ports and notPorts cannot be specified with services",
            );
        }
    }
    check_nets_versions(errs, path, rule);
}

/// CEL on Rule: ICMP is IPv4's, ICMPv6 is IPv6's.
fn check_icmp_version(errs: &mut Errors, path: &str, p: &Protocol, ip_version: Option<i64>) {
    match (p.number(), ip_version) {
        (Ok(1), Some(v)) if v != 4 => errs.add(path, &p.0, "protocol ICMP requires ipVersion 4"),
        (Ok(58), Some(v)) if v != 6 => errs.add(path, &p.0, "protocol ICMPv6 requires ipVersion 6"),
        _ => {}
    }
}

fn check_icmp(errs: &mut Errors, path: &str, icmp: &IcmpFields, protocol: Option<&Protocol>) {
    if !protocol.is_some_and(Protocol::is_icmp) {
        errs.add(
            path,
            protocol.map(|p| p.0.to_string()).unwrap_or_default(),
            "ICMP fields require protocol to be ICMP or ICMPv6",
        );
    }
    if let Some(t) = icmp.icmp_type {
        if !(0..=254).contains(&t) {
            errs.add(
                &field(path, "type"),
                t,
                "ICMP type must be between 0 and 254",
            );
        }
    }
    match (icmp.icmp_type, icmp.code) {
        (_, Some(c)) if !(0..=255).contains(&c) => errs.add(
            &field(path, "code"),
            c,
            "ICMP code must be between 0 and 255",
        ),
        (None, Some(c)) => errs.add(
            &field(path, "code"),
            c,
            "ICMP code specified without an ICMP type",
        ),
        _ => {}
    }
}

fn check_entity(errs: &mut Errors, path: &str, e: &EntityRule, protocol: Option<&Protocol>) {
    for (name, nets) in [("nets", &e.nets), ("notNets", &e.not_nets)] {
        for (i, n) in nets.iter().enumerate() {
            check_cidr(errs, &index(&field(path, name), i), n);
        }
    }
    for (name, sel) in [
        ("selector", &e.selector),
        ("notSelector", &e.not_selector),
        ("namespaceSelector", &e.namespace_selector),
    ] {
        if let Some(s) = sel {
            selector::check(errs, &field(path, name), s);
        }
    }
    if let Some(s) = &e.selector {
        if s.contains("global(") {
            errs.add(
                &field(path, "selector"),
                s,
                GLOBAL_ONLY_IN_NAMESPACE_SELECTOR,
            );
        }
    }
    if let Some(s) = &e.namespace_selector {
        if s.contains("global(") && !is_only_global(s) {
            errs.add(
                &field(path, "namespaceSelector"),
                s,
                "global() cannot be combined with other selectors",
            );
        }
    }
    for (name, ports) in [("ports", &e.ports), ("notPorts", &e.not_ports)] {
        check_ports(errs, &field(path, name), ports, protocol);
    }
    if let Some(sa) = &e.service_accounts {
        if let Some(s) = &sa.selector {
            selector::check(errs, &field(&field(path, "serviceAccounts"), "selector"), s);
        }
    }
    if let Some(svc) = &e.services {
        check_services(errs, &field(path, "services"), e, &svc.name);
    }
}

/// `global()` and nothing else (spaces allowed, as the selector grammar allows them).
fn is_only_global(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    compact == "global()"
}

/// Ports need a protocol that has them: numeric ones need TCP, UDP or SCTP; named ones may
/// go without a protocol (the named port's own protocol applies), not with another one.
/// Numbers are 1-65535.
fn check_ports(
    errs: &mut Errors,
    path: &str,
    ports: &[crate::common::Port],
    protocol: Option<&Protocol>,
) {
    if ports.is_empty() {
        return;
    }
    let parsed: Vec<Option<PortMatch>> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| match p.parse() {
            Ok(m) => Some(m),
            Err(reason) => {
                errs.add(&index(path, i), &p.0, reason);
                None
            }
        })
        .collect();
    for (i, m) in parsed.iter().enumerate() {
        if let Some(PortMatch::Range { min: 0, .. }) = m {
            errs.add(
                &index(path, i),
                &ports[i].0,
                "port range invalid, port number must be between 1 and 65535",
            );
        }
    }
    match protocol {
        None => {
            if parsed
                .iter()
                .any(|m| matches!(m, Some(PortMatch::Range { .. })))
            {
                errs.add(path, "", PORTS_NEED_PROTOCOL);
            }
        }
        Some(p) if p.number().is_ok() && !p.supports_ports() => {
            errs.add(path, &p.0, PROTOCOL_WITHOUT_PORTS)
        }
        Some(_) => {}
    }
}

/// CEL on EntityRule: a service names itself and stands alone.
fn check_services(errs: &mut Errors, path: &str, e: &EntityRule, name: &str) {
    if name.is_empty() {
        errs.add(
            &field(path, "name"),
            "",
            "services must specify a service name",
        );
    }
    let conflicts = [
        (
            e.namespace_selector.is_some(),
            "cannot specify NamespaceSelector and Services on the same rule",
        ),
        (
            e.service_accounts.is_some(),
            "cannot specify ServiceAccounts and Services on the same rule",
        ),
        (
            e.selector.is_some() || e.not_selector.is_some(),
            "cannot specify Selector/NotSelector and Services on the same rule",
        ),
        (
            !e.nets.is_empty() || !e.not_nets.is_empty(),
            "cannot specify Nets/NotNets and Services on the same rule",
        ),
    ];
    for (conflict, message) in conflicts {
        if conflict {
            errs.add(path, name, message);
        }
    }
}

/// `validateRule`'s scan of the nets: one address family per rule (across source and
/// destination), matching `ipVersion` when set, and no catch-all in a negation (it would
/// match nothing).
fn check_nets_versions(errs: &mut Errors, path: &str, rule: &Rule) {
    let none: &[String] = &[];
    let (src, dst) = (rule.source.as_ref(), rule.destination.as_ref());
    let fields: [(&str, &str, &[String]); 4] = [
        ("source", "nets", src.map_or(none, |e| &e.nets)),
        ("source", "notNets", src.map_or(none, |e| &e.not_nets)),
        ("destination", "nets", dst.map_or(none, |e| &e.nets)),
        ("destination", "notNets", dst.map_or(none, |e| &e.not_nets)),
    ];
    let (mut seen_v4, mut seen_v6) = (false, false);
    for (side, name, nets) in fields {
        let at = field(&field(path, side), name);
        let (mut v4, mut v6) = (false, false);
        for n in nets {
            let Some(net) = crate::validate::parse_cidr_or_ip(n) else {
                continue;
            };
            v4 |= matches!(net, IpNet::V4(_));
            v6 |= matches!(net, IpNet::V6(_));
            // Calico compares the IPv4 text, and the IPv6 address and mask.
            let catch_all = match net {
                IpNet::V4(_) => n == "0.0.0.0/0",
                IpNet::V6(v6) => v6.prefix_len() == 0 && v6.addr().is_unspecified(),
            };
            if name == "notNets" && catch_all {
                errs.add(
                    &at,
                    n,
                    "catch-all CIDR in negation creates logical contradiction (matches no traffic)",
                );
            }
        }
        if let Some(version) = rule.ip_version {
            if (v4 && version != 4) || (v6 && version != 6) {
                errs.add(&at, version, "rule IP version doesn't match CIDR version");
            }
        }
        if (v4 && seen_v6) || (v6 && seen_v4) || (v4 && v6) {
            errs.add(
                &at,
                nets.join(","),
                "rule contains both IPv4 and IPv6 CIDRs",
            );
        }
        seen_v4 |= v4;
        seen_v6 |= v6;
    }
}
