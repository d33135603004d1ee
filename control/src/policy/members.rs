//! What the model keeps of endpoints and network sets: their own labels, the profiles they
//! inherit labels from, their addresses and (endpoints) named ports.
//!
//! Labels as Calico's calculation graph sees them (libcalico-go's update processors):
//! - a workload endpoint's own labels plus `projectcalico.org/namespace: <ns>` and
//!   `projectcalico.org/orchestrator: <orchestrator>` (and `projectcalico.org/serviceaccount`
//!   when it names one), over the `labelsToApply` of its profiles, the first profile winning;
//! - a namespaced thing (workload endpoint, NetworkSet) also inherits from `kns.<namespace>`,
//!   the profile Calico stores a namespace's labels in (`pcns.*`), when it does not list it;
//! - host endpoints and GlobalNetworkSets have no namespace label, so `global()` matches them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use fastpath::classifier::Cidr;
use resources::{EndpointPort, GlobalNetworkSet, HostEndpoint, NetworkSet, WorkloadEndpoint};

use super::{EndpointKey, MemberKey, PolicyError};

pub const LABEL_NAMESPACE: &str = "projectcalico.org/namespace";
pub const LABEL_ORCHESTRATOR: &str = "projectcalico.org/orchestrator";
pub const LABEL_SERVICE_ACCOUNT: &str = "projectcalico.org/serviceaccount";
/// The profile holding a namespace's labels.
pub const NAMESPACE_PROFILE_PREFIX: &str = "kns.";

/// A set member before its inherited labels are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Labelled {
    pub own: BTreeMap<String, String>,
    /// Profiles to inherit labels from, first wins.
    pub parents: Vec<String>,
    pub cidrs: Vec<Cidr>,
}

/// A named port of an endpoint (`spec.ports`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedPort {
    pub name: String,
    /// IANA number; Calico's default is TCP.
    pub protocol: u8,
    pub port: u16,
}

/// What rendering an endpoint's program needs beyond its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EndpointFacts {
    pub node: String,
    pub interface: String,
    /// `spec.profiles`: their rules run after the policies.
    pub profiles: Vec<String>,
    pub ports: Vec<NamedPort>,
}

pub(crate) fn workload(
    wep: &WorkloadEndpoint,
) -> Result<(EndpointKey, Labelled, EndpointFacts), PolicyError> {
    let namespace = wep
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| resources::DEFAULT_NAMESPACE.to_string());
    let key = EndpointKey::Workload {
        namespace: namespace.clone(),
        name: wep.metadata.name.clone(),
    };
    let what = format!("WorkloadEndpoint {namespace}/{}", wep.metadata.name);
    let mut own = wep.metadata.labels.clone();
    own.insert(LABEL_NAMESPACE.into(), namespace.clone());
    if !wep.spec.orchestrator.is_empty() {
        own.insert(LABEL_ORCHESTRATOR.into(), wep.spec.orchestrator.clone());
    }
    if !wep.spec.service_account_name.is_empty() {
        own.insert(
            LABEL_SERVICE_ACCOUNT.into(),
            wep.spec.service_account_name.clone(),
        );
    }
    let mut cidrs = Vec::new();
    for (i, net) in wep.spec.ip_networks.iter().enumerate() {
        if let Some(c) = parse_net(net)
            .map_err(|reason| field_error(&what, &format!("spec.ipNetworks[{i}]"), net, reason))?
        {
            push_unique(&mut cidrs, c);
        }
    }
    let labelled = Labelled {
        own,
        parents: parents(&wep.spec.profiles, Some(&namespace)),
        cidrs,
    };
    let facts = EndpointFacts {
        node: wep.spec.node.clone(),
        interface: wep.spec.interface_name.clone(),
        profiles: wep.spec.profiles.clone(),
        ports: named_ports(&what, &wep.spec.ports)?,
    };
    Ok((key, labelled, facts))
}

pub(crate) fn host(
    hep: &HostEndpoint,
) -> Result<(EndpointKey, Labelled, EndpointFacts), PolicyError> {
    let key = EndpointKey::Host {
        name: hep.metadata.name.clone(),
    };
    let what = format!("HostEndpoint {}", hep.metadata.name);
    let mut cidrs = Vec::new();
    for (i, ip) in hep.spec.expected_ips.iter().enumerate() {
        if ip.contains(':') {
            continue; // IPv6: the dataplane is IPv4 only.
        }
        let addr: Ipv4Addr = ip.parse().map_err(|_| {
            field_error(
                &what,
                &format!("spec.expectedIPs[{i}]"),
                ip,
                "not an IPv4 address",
            )
        })?;
        push_unique(&mut cidrs, Cidr::host(addr));
    }
    let labelled = Labelled {
        own: hep.metadata.labels.clone(),
        parents: parents(&hep.spec.profiles, None),
        cidrs,
    };
    let facts = EndpointFacts {
        node: hep.spec.node.clone(),
        interface: hep.spec.interface_name.clone(),
        profiles: hep.spec.profiles.clone(),
        ports: named_ports(&what, &hep.spec.ports)?,
    };
    Ok((key, labelled, facts))
}

pub(crate) fn network_set(set: &NetworkSet) -> Result<(MemberKey, Labelled), PolicyError> {
    let namespace = set
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| resources::DEFAULT_NAMESPACE.to_string());
    let what = format!("NetworkSet {namespace}/{}", set.metadata.name);
    let mut own = set.metadata.labels.clone();
    own.insert(LABEL_NAMESPACE.into(), namespace.clone());
    let labelled = Labelled {
        own,
        parents: parents(&[], Some(&namespace)),
        cidrs: nets(&what, &set.spec.nets)?,
    };
    Ok((
        MemberKey::NetworkSet {
            namespace: Some(namespace),
            name: set.metadata.name.clone(),
        },
        labelled,
    ))
}

pub(crate) fn global_network_set(
    set: &GlobalNetworkSet,
) -> Result<(MemberKey, Labelled), PolicyError> {
    let what = format!("GlobalNetworkSet {}", set.metadata.name);
    let labelled = Labelled {
        own: set.metadata.labels.clone(),
        parents: Vec::new(),
        cidrs: nets(&what, &set.spec.nets)?,
    };
    Ok((
        MemberKey::NetworkSet {
            namespace: None,
            name: set.metadata.name.clone(),
        },
        labelled,
    ))
}

/// Own labels over the parents' `labelsToApply`, first parent winning (what
/// `selector::ParentLabels` does when nested, flattened once so that every selector
/// evaluation afterwards is one map lookup).
pub(crate) fn effective_labels(
    labelled: &Labelled,
    profile_labels: impl Fn(&str) -> Option<BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for parent in labelled.parents.iter().rev() {
        if let Some(inherited) = profile_labels(parent) {
            labels.extend(inherited);
        }
    }
    labels.extend(labelled.own.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

fn parents(profiles: &[String], namespace: Option<&str>) -> Vec<String> {
    let mut parents = profiles.to_vec();
    if let Some(ns) = namespace {
        let kns = format!("{NAMESPACE_PROFILE_PREFIX}{ns}");
        if !parents.contains(&kns) {
            parents.push(kns);
        }
    }
    parents
}

fn nets(what: &str, nets: &[String]) -> Result<Vec<Cidr>, PolicyError> {
    let mut cidrs = Vec::new();
    for (i, net) in nets.iter().enumerate() {
        if let Some(c) = parse_net(net)
            .map_err(|reason| field_error(what, &format!("spec.nets[{i}]"), net, reason))?
        {
            push_unique(&mut cidrs, c);
        }
    }
    Ok(cidrs)
}

fn named_ports(what: &str, ports: &[EndpointPort]) -> Result<Vec<NamedPort>, PolicyError> {
    let mut out = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let protocol = match &p.protocol {
            Some(proto) => proto.number().map_err(|reason| {
                field_error(
                    what,
                    &format!("spec.ports[{i}].protocol"),
                    &proto.0.to_string(),
                    reason,
                )
            })?,
            None => fastpath::classifier::protocol::TCP,
        };
        let port = u16::try_from(p.port)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                field_error(
                    what,
                    &format!("spec.ports[{i}].port"),
                    &p.port.to_string(),
                    "port must be between 1 and 65535",
                )
            })?;
        out.push(NamedPort {
            name: p.name.clone(),
            protocol,
            port,
        });
    }
    Ok(out)
}

/// `a.b.c.d/len` or a bare address (a /32). `Ok(None)` for IPv6, which the IPv4 dataplane
/// never sees.
pub(crate) fn parse_net(s: &str) -> Result<Option<Cidr>, String> {
    if s.contains(':') {
        return Ok(None);
    }
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (
            a,
            l.parse::<u8>()
                .map_err(|_| "prefix length must be a number 0-32".to_string())?,
        ),
        None => (s, 32),
    };
    let addr: Ipv4Addr = addr
        .trim()
        .parse()
        .map_err(|_| "not an IPv4 address or CIDR".to_string())?;
    Cidr::new(addr, len).map(Some).map_err(|e| e.to_string())
}

pub(crate) fn field_error(
    what: &str,
    field: &str,
    value: &str,
    reason: impl Into<String>,
) -> PolicyError {
    PolicyError::Field {
        resource: what.to_string(),
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn push_unique(v: &mut Vec<Cidr>, c: Cidr) {
    if !v.contains(&c) {
        v.push(c);
    }
}
