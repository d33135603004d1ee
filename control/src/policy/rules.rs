//! Calico rules (`projectcalico.org/v3` `Rule`) into the fastpath's [`Rule`], in two steps:
//!
//! 1. [`parse_rule`], when a policy or profile is stored: protocols to numbers, nets to
//!    [`Cidr`]s, selectors to the [`IpSetId`]s of their address sets (namespace-scoped as
//!    `selector::scope` says), ports parsed with named ports kept by name. Errors name the
//!    resource, the field path and the value.
//! 2. [`ParsedRule::render`], per endpoint: named ports resolved to numbers.
//!
//! Named ports (Calico resolves them with "IP, port" sets; the classifier has plain IP sets):
//! - on the side that is the endpoint itself (ingress `destination`, egress `source`), from
//!   the endpoint's own `ports`;
//! - on the other side, from the `ports` of every endpoint that side's selector matches
//!   (every endpoint when it has none), as the union of their numbers. This is wider than
//!   Calico when the selected endpoints give one name different numbers (a packet to endpoint
//!   A on B's number for the name matches); the model marks endpoints for recompilation when
//!   another endpoint's named ports change, since numbers are compiled in.
//! - a named port stands for its endpoint's protocol too: a rule without a protocol of its own
//!   renders once per protocol its named `ports` resolve to ([`ParsedRule::render`]).
//!
//! A port list whose every entry is an unknown name matches nothing, so its rule is dropped;
//! an unknown name in `notPorts` excludes nothing.
//!
//! Not enforced (the rule is kept but never matches, with a warning, so an Allow never widens):
//! `services` matches (Kubernetes Services); rules for `ipVersion: 6` and rules whose `nets`
//! are all IPv6 match no IPv4 packet and are dropped for that reason.

use fastpath::classifier::{self, Cidr, EndpointMatch, IcmpMatch, IpSetId, PortRange};
use resources::policy::{Action, EntityRule, IcmpFields, Rule as CalicoRule};
use resources::{Port, PortMatch};
use selector::{scope, PolicyScope, Selector};

use super::ipsets::AddressSets;
use super::members::{field_error, parse_net, NamedPort};
use super::PolicyError;

/// `pcsa.`: the prefix of service account labels (Calico's `ksa.<ns>.<name>` profiles).
const SERVICE_ACCOUNT_LABEL_PREFIX: &str = "pcsa.";
const SERVICE_ACCOUNT_NAME_LABEL: &str = "pcsa.projectcalico.org/name";

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PortSpec {
    Range(PortRange),
    Named(String),
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ParsedSide {
    nets: Vec<Cidr>,
    not_nets: Vec<Cidr>,
    sets: Vec<IpSetId>,
    not_sets: Vec<IpSetId>,
    ports: Vec<PortSpec>,
    not_ports: Vec<PortSpec>,
    /// The side's effective selector, for resolving the other side's named ports.
    selector: Option<Selector>,
    /// `nets` was given but held only IPv6 networks: no IPv4 address matches.
    ipv6_only: bool,
}

impl ParsedSide {
    pub(crate) fn has_named_ports(&self) -> bool {
        self.ports
            .iter()
            .chain(&self.not_ports)
            .any(|p| matches!(p, PortSpec::Named(_)))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ParsedRule {
    action: classifier::Action,
    protocol: Option<u8>,
    not_protocol: Option<u8>,
    icmp: Option<IcmpMatch>,
    not_icmp: Option<IcmpMatch>,
    pub(crate) src: ParsedSide,
    pub(crate) dst: ParsedSide,
    /// Why this rule can never match an IPv4 packet here, if it cannot.
    never: Option<&'static str>,
}

/// Which side of a rule is the endpoint the program is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalSide {
    Source,
    Destination,
}

impl ParsedRule {
    /// The fastpath rules for one endpoint: none when the rule cannot match anything there,
    /// else one, or one per protocol when named `ports` stand for the rule's protocol.
    /// `own_ports` are the endpoint's named ports; `ports_of(selector)` the named ports of
    /// every endpoint `selector` matches (all endpoints for `None`).
    pub(crate) fn render<F>(
        &self,
        local: LocalSide,
        own_ports: &[NamedPort],
        ports_of: F,
    ) -> Vec<classifier::Rule>
    where
        F: Fn(Option<&Selector>) -> Vec<NamedPort>,
    {
        if self.never.is_some() || self.src.ipv6_only || self.dst.ipv6_only {
            return Vec::new();
        }
        let candidates = |side: &ParsedSide, is_local: bool| -> Vec<NamedPort> {
            if is_local {
                own_ports.to_vec()
            } else if side.has_named_ports() {
                ports_of(side.selector.as_ref())
            } else {
                Vec::new()
            }
        };
        let src_ports = candidates(&self.src, local == LocalSide::Source);
        let dst_ports = candidates(&self.dst, local == LocalSide::Destination);
        self.protocols(&src_ports, &dst_ports)
            .into_iter()
            .filter_map(|protocol| self.render_for(protocol, &src_ports, &dst_ports))
            .collect()
    }

    /// The protocols to render for. A named port names a (protocol, number) pair of an
    /// endpoint (Calico's "IP, protocol, port" sets), so without a protocol of its own a
    /// rule whose `ports` are named matches each protocol its names resolve to, with that
    /// protocol's numbers only. Named `notPorts` alone keep the rule protocol-free: they
    /// exclude their numbers whatever the protocol (narrower than Calico, never wider).
    fn protocols(&self, src_ports: &[NamedPort], dst_ports: &[NamedPort]) -> Vec<Option<u8>> {
        if self.protocol.is_some() {
            return vec![self.protocol];
        }
        let named = |side: &ParsedSide, candidates: &[NamedPort]| -> Vec<u8> {
            let names: Vec<&String> = side
                .ports
                .iter()
                .filter_map(|p| match p {
                    PortSpec::Named(n) => Some(n),
                    PortSpec::Range(_) => None,
                })
                .collect();
            candidates
                .iter()
                .filter(|p| names.contains(&&p.name))
                .map(|p| p.protocol)
                .collect()
        };
        let split = [&self.src, &self.dst]
            .iter()
            .any(|side| side.ports.iter().any(|p| matches!(p, PortSpec::Named(_))));
        if !split {
            return vec![None];
        }
        let mut protocols = named(&self.src, src_ports);
        protocols.extend(named(&self.dst, dst_ports));
        protocols.sort_unstable();
        protocols.dedup();
        protocols.into_iter().map(Some).collect()
    }

    /// The rule with `protocol`, its named ports resolved among `src_ports` / `dst_ports`;
    /// `None` when a side's `ports` resolve to nothing.
    fn render_for(
        &self,
        protocol: Option<u8>,
        src_ports: &[NamedPort],
        dst_ports: &[NamedPort],
    ) -> Option<classifier::Rule> {
        let resolve = |side: &ParsedSide, candidates: &[NamedPort]| -> Option<EndpointMatch> {
            let ports = resolve_ports(&side.ports, protocol, candidates);
            if !side.ports.is_empty() && ports.is_empty() {
                return None;
            }
            Some(EndpointMatch {
                nets: side.nets.clone(),
                not_nets: side.not_nets.clone(),
                sets: side.sets.clone(),
                not_sets: side.not_sets.clone(),
                ports,
                not_ports: resolve_ports(&side.not_ports, protocol, candidates),
            })
        };
        Some(classifier::Rule {
            action: self.action,
            protocol,
            not_protocol: self.not_protocol,
            src: resolve(&self.src, src_ports)?,
            dst: resolve(&self.dst, dst_ports)?,
            icmp: self.icmp,
            not_icmp: self.not_icmp,
        })
    }

    /// The address sets this rule holds (to release them when the rule goes).
    pub(crate) fn sets(&self) -> impl Iterator<Item = IpSetId> + '_ {
        [&self.src, &self.dst]
            .into_iter()
            .flat_map(|s| s.sets.iter().chain(&s.not_sets).copied())
    }
}

fn resolve_ports(specs: &[PortSpec], protocol: Option<u8>, named: &[NamedPort]) -> Vec<PortRange> {
    let mut out: Vec<PortRange> = Vec::new();
    for spec in specs {
        match spec {
            PortSpec::Range(r) => out.push(*r),
            PortSpec::Named(name) => out.extend(
                named
                    .iter()
                    .filter(|p| &p.name == name && protocol.is_none_or(|proto| proto == p.protocol))
                    .map(|p| PortRange::single(p.port)),
            ),
        }
    }
    out.sort_by_key(|r| (r.first, r.last));
    out.dedup();
    out
}

/// Parses one rule at `path` (e.g. `spec.ingress[2]`) of resource `what`, acquiring its sets.
/// On error nothing stays acquired.
pub(crate) fn parse_rule(
    sets: &mut AddressSets,
    scope: PolicyScope<'_>,
    what: &str,
    path: &str,
    rule: &CalicoRule,
) -> Result<ParsedRule, PolicyError> {
    let mut acquired = Vec::new();
    let parsed = parse_rule_inner(sets, scope, what, path, rule, &mut acquired);
    if parsed.is_err() {
        for id in acquired {
            sets.release(id);
        }
    }
    parsed
}

fn parse_rule_inner(
    sets: &mut AddressSets,
    scope: PolicyScope<'_>,
    what: &str,
    path: &str,
    rule: &CalicoRule,
    acquired: &mut Vec<IpSetId>,
) -> Result<ParsedRule, PolicyError> {
    let action = match rule.action {
        Some(Action::Allow) => classifier::Action::Allow,
        Some(Action::Deny) => classifier::Action::Deny,
        Some(Action::Pass) => classifier::Action::Pass,
        Some(Action::Log) => classifier::Action::Log,
        None => {
            return Err(field_error(
                what,
                &format!("{path}.action"),
                "",
                "action is required",
            ))
        }
    };
    let protocol =
        |p: &Option<resources::Protocol>, name: &str| -> Result<Option<u8>, PolicyError> {
            p.as_ref()
                .map(|p| {
                    p.number().map_err(|reason| {
                        field_error(what, &format!("{path}.{name}"), &p.0.to_string(), reason)
                    })
                })
                .transpose()
        };
    let mut never = None;
    if rule.ip_version == Some(6) {
        never = Some("ipVersion 6");
    }
    let src = parse_side(
        sets,
        scope,
        what,
        &format!("{path}.source"),
        rule.source.as_ref(),
        acquired,
        &mut never,
    )?;
    let dst = parse_side(
        sets,
        scope,
        what,
        &format!("{path}.destination"),
        rule.destination.as_ref(),
        acquired,
        &mut never,
    )?;
    Ok(ParsedRule {
        action,
        protocol: protocol(&rule.protocol, "protocol")?,
        not_protocol: protocol(&rule.not_protocol, "notProtocol")?,
        icmp: parse_icmp(what, &format!("{path}.icmp"), rule.icmp.as_ref())?,
        not_icmp: parse_icmp(what, &format!("{path}.notICMP"), rule.not_icmp.as_ref())?,
        src,
        dst,
        never,
    })
}

fn parse_icmp(
    what: &str,
    path: &str,
    icmp: Option<&IcmpFields>,
) -> Result<Option<IcmpMatch>, PolicyError> {
    let Some(icmp) = icmp else { return Ok(None) };
    let Some(t) = icmp.icmp_type else {
        return match icmp.code {
            Some(c) => Err(field_error(
                what,
                &format!("{path}.code"),
                &c.to_string(),
                "ICMP code needs an ICMP type",
            )),
            None => Ok(None),
        };
    };
    let icmp_type = u8::try_from(t).ok().filter(|&t| t <= 254).ok_or_else(|| {
        field_error(
            what,
            &format!("{path}.type"),
            &t.to_string(),
            "ICMP type must be between 0 and 254",
        )
    })?;
    let code = icmp
        .code
        .map(|c| {
            u8::try_from(c).map_err(|_| {
                field_error(
                    what,
                    &format!("{path}.code"),
                    &c.to_string(),
                    "ICMP code must be between 0 and 255",
                )
            })
        })
        .transpose()?;
    Ok(Some(IcmpMatch { icmp_type, code }))
}

#[allow(clippy::too_many_arguments)]
fn parse_side(
    sets: &mut AddressSets,
    scope: PolicyScope<'_>,
    what: &str,
    path: &str,
    side: Option<&EntityRule>,
    acquired: &mut Vec<IpSetId>,
    never: &mut Option<&'static str>,
) -> Result<ParsedSide, PolicyError> {
    let Some(side) = side else {
        return Ok(ParsedSide::default());
    };
    let mut out = ParsedSide::default();
    let nets = |list: &[String], name: &str| -> Result<(Vec<Cidr>, bool), PolicyError> {
        let mut cidrs = Vec::new();
        let mut saw_v6 = false;
        for (i, n) in list.iter().enumerate() {
            match parse_net(n)
                .map_err(|reason| field_error(what, &format!("{path}.{name}[{i}]"), n, reason))?
            {
                Some(c) => cidrs.push(c),
                None => saw_v6 = true,
            }
        }
        Ok((cidrs, saw_v6))
    };
    let (v4, saw_v6) = nets(&side.nets, "nets")?;
    out.ipv6_only = v4.is_empty() && saw_v6;
    out.nets = v4;
    out.not_nets = nets(&side.not_nets, "notNets")?.0;
    out.ports = parse_ports(what, &format!("{path}.ports"), &side.ports)?;
    out.not_ports = parse_ports(what, &format!("{path}.notPorts"), &side.not_ports)?;

    let parse_sel = |s: &Option<String>, name: &str| -> Result<Option<Selector>, PolicyError> {
        s.as_deref()
            .map(|text| {
                Selector::parse(text).map_err(|e| PolicyError::Selector {
                    resource: what.to_string(),
                    field: format!("{path}.{name}"),
                    value: text.to_string(),
                    source: e,
                })
            })
            .transpose()
    };
    let mut selector = parse_sel(&side.selector, "selector")?;
    if let Some(sa) = &side.service_accounts {
        // Calico (rules.go) folds serviceAccounts into the selector: names by the service
        // account's name label, `selector` over its labels, both with the `pcsa.` prefix.
        let by_sa = service_account_selector(
            what,
            &format!("{path}.serviceAccounts"),
            &sa.names,
            sa.selector.as_deref(),
        )?;
        if let Some(by_sa) = by_sa {
            selector = Some(match selector {
                Some(s) => s.and(&by_sa),
                None => by_sa,
            });
        }
    }
    let namespace_selector = parse_sel(&side.namespace_selector, "namespaceSelector")?;
    let not_selector = parse_sel(&side.not_selector, "notSelector")?;
    if let Some(effective) = scope::rule_selector(
        scope,
        selector.as_ref(),
        namespace_selector.as_ref(),
        not_selector.is_some(),
    ) {
        let id = sets.acquire(&effective);
        acquired.push(id);
        out.sets.push(id);
        out.selector = Some(effective);
    }
    if let Some(not) = not_selector {
        let id = sets.acquire(&not);
        acquired.push(id);
        out.not_sets.push(id);
    }
    if side.services.is_some() {
        tracing::warn!(resource = what, field = %format!("{path}.services"), "Kubernetes Service matches are not supported; the rule never matches");
        *never = Some("services match");
    }
    Ok(out)
}

fn service_account_selector(
    what: &str,
    path: &str,
    names: &[String],
    selector: Option<&str>,
) -> Result<Option<Selector>, PolicyError> {
    let by_labels = selector
        .map(|text| {
            Selector::parse(text)
                .map(|s| s.with_label_prefix(SERVICE_ACCOUNT_LABEL_PREFIX))
                .map_err(|e| PolicyError::Selector {
                    resource: what.to_string(),
                    field: format!("{path}.selector"),
                    value: text.to_string(),
                    source: e,
                })
        })
        .transpose()?;
    let by_name = if names.is_empty() {
        None
    } else {
        let quoted: Vec<String> = names
            .iter()
            .map(|n| {
                if n.contains('"') {
                    format!("'{n}'")
                } else {
                    format!("\"{n}\"")
                }
            })
            .collect();
        let text = format!("{SERVICE_ACCOUNT_NAME_LABEL} in {{{}}}", quoted.join(", "));
        Some(Selector::parse(&text).map_err(|e| PolicyError::Selector {
            resource: what.to_string(),
            field: format!("{path}.names"),
            value: names.join(","),
            source: e,
        })?)
    };
    Ok(match (by_labels, by_name) {
        (Some(a), Some(b)) => Some(a.and(&b)),
        (a, b) => a.or(b),
    })
}

fn parse_ports(what: &str, path: &str, ports: &[Port]) -> Result<Vec<PortSpec>, PolicyError> {
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| match p.parse() {
            Ok(PortMatch::Range { min, max }) => {
                PortRange::new(min, max).map(PortSpec::Range).map_err(|e| {
                    field_error(
                        what,
                        &format!("{path}[{i}]"),
                        &p.0.to_string(),
                        e.to_string(),
                    )
                })
            }
            Ok(PortMatch::Named(name)) => Ok(PortSpec::Named(name)),
            Err(reason) => Err(field_error(
                what,
                &format!("{path}[{i}]"),
                &p.0.to_string(),
                reason,
            )),
        })
        .collect()
}
