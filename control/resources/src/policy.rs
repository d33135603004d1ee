//! Policy resources: rules, Profile, NetworkPolicy, GlobalNetworkPolicy and Tier.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::common::{check_protocol, Port, Protocol};
use crate::kind::Kind;
use crate::macros::calico_struct;
use crate::meta::Metadata;
use crate::object::Spec;
use crate::selector;
use crate::validate::{
    check_cidr, check_label_name, check_labels, check_profile_name, check_subdomain_name, field,
    index, Errors,
};

/// What a rule does with a matching packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Allow,
    Deny,
    Log,
    /// Skip the rest of this tier; the next tier (or the profiles) decides.
    Pass,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyType {
    Ingress,
    Egress,
}

calico_struct! {
    /// ICMP type and code match (ICMP type 0-254, code 0-255; RFC 792 / RFC 4443).
    pub struct IcmpFields {
        #[serde(skip_serializing_if = "Option::is_none")]
        "type" => pub icmp_type: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "code" => pub code: Option<i64>,
    }
}

calico_struct! {
    pub struct ServiceAccountMatch {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "names" => pub names: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "selector" => pub selector: Option<String>,
    }
}

calico_struct! {
    pub struct ServiceMatch {
        #[serde(skip_serializing_if = "String::is_empty")]
        "name" => pub name: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        "namespace" => pub namespace: String,
    }
}

calico_struct! {
    /// A rule's `source:` or `destination:`.
    pub struct EntityRule {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "nets" => pub nets: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "selector" => pub selector: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "namespaceSelector" => pub namespace_selector: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "ports" => pub ports: Vec<Port>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "notNets" => pub not_nets: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "notSelector" => pub not_selector: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "notPorts" => pub not_ports: Vec<Port>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "serviceAccounts" => pub service_accounts: Option<ServiceAccountMatch>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "services" => pub services: Option<ServiceMatch>,
    }
}

calico_struct! {
    pub struct RuleMetadata {
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        "annotations" => pub annotations: BTreeMap<String, String>,
    }
}

calico_struct! {
    /// One policy or profile rule.
    pub struct Rule {
        "action" => pub action: Option<Action>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "ipVersion" => pub ip_version: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "protocol" => pub protocol: Option<Protocol>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "icmp" => pub icmp: Option<IcmpFields>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "notProtocol" => pub not_protocol: Option<Protocol>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "notICMP" => pub not_icmp: Option<IcmpFields>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "source" => pub source: Option<EntityRule>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "destination" => pub destination: Option<EntityRule>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "metadata" => pub metadata: Option<RuleMetadata>,
    }
}

impl Rule {
    /// `action: Allow` and nothing else: matches everything.
    pub fn allow() -> Rule {
        Rule {
            action: Some(Action::Allow),
            ..Rule::default()
        }
    }

    /// `action: Allow` from endpoints matching `selector`.
    pub fn allow_from(selector: impl Into<String>) -> Rule {
        Rule {
            action: Some(Action::Allow),
            source: Some(EntityRule {
                selector: Some(selector.into()),
                ..EntityRule::default()
            }),
            ..Rule::default()
        }
    }
}

fn check_icmp(errs: &mut Errors, path: &str, icmp: &IcmpFields, protocol: Option<&Protocol>) {
    // Calico: ICMP matches need protocol ICMP or ICMPv6.
    if !protocol.is_some_and(Protocol::is_icmp) {
        errs.add(
            path,
            protocol.map(|p| p.0.to_string()).unwrap_or_default(),
            "ICMP fields need protocol ICMP or ICMPv6",
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
        (None, Some(c)) => errs.add(&field(path, "code"), c, "ICMP code needs an ICMP type"),
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
    for (name, ports) in [("ports", &e.ports), ("notPorts", &e.not_ports)] {
        if ports.is_empty() {
            continue;
        }
        if !protocol.is_some_and(Protocol::supports_ports) {
            errs.add(
                &field(path, name),
                protocol.map(|p| p.0.to_string()).unwrap_or_default(),
                "ports can only be matched with protocol TCP, UDP or SCTP",
            );
        }
        for (i, p) in ports.iter().enumerate() {
            if let Err(reason) = p.parse() {
                errs.add(&index(&field(path, name), i), &p.0, reason);
            }
        }
    }
    if let Some(sa) = &e.service_accounts {
        if let Some(s) = &sa.selector {
            selector::check(errs, &field(&field(path, "serviceAccounts"), "selector"), s);
        }
    }
    if let Some(svc) = &e.services {
        if svc.name.is_empty() {
            errs.add(
                &field(&field(path, "services"), "name"),
                "",
                "service name is required",
            );
        }
        if !e.nets.is_empty()
            || !e.not_nets.is_empty()
            || e.selector.is_some()
            || e.not_selector.is_some()
            || !e.ports.is_empty()
        {
            errs.add(
                &field(path, "services"),
                &svc.name,
                "services cannot be combined with nets, selectors or ports",
            );
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
    if let Some(p) = &rule.protocol {
        check_protocol(errs, &field(path, "protocol"), p);
    }
    if let Some(p) = &rule.not_protocol {
        check_protocol(errs, &field(path, "notProtocol"), p);
    }
    if let Some(icmp) = &rule.icmp {
        check_icmp(errs, &field(path, "icmp"), icmp, rule.protocol.as_ref());
    }
    if let Some(icmp) = &rule.not_icmp {
        check_icmp(errs, &field(path, "notICMP"), icmp, rule.protocol.as_ref());
    }
    if let Some(src) = &rule.source {
        check_entity(errs, &field(path, "source"), src, rule.protocol.as_ref());
    }
    if let Some(dst) = &rule.destination {
        check_entity(
            errs,
            &field(path, "destination"),
            dst,
            rule.protocol.as_ref(),
        );
    }
}

fn check_rules(errs: &mut Errors, path: &str, rules: &[Rule]) {
    for (i, r) in rules.iter().enumerate() {
        check_rule(errs, &index(path, i), r);
    }
}

/// Calico's default for `types` (libcalico-go `defaultPolicyTypesField`): Egress only when
/// there are egress rules and no ingress rules, both when both are present, else Ingress.
pub fn default_policy_types(ingress: &[Rule], egress: &[Rule]) -> Vec<PolicyType> {
    match (ingress.is_empty(), egress.is_empty()) {
        (_, true) => vec![PolicyType::Ingress],
        (true, false) => vec![PolicyType::Egress],
        (false, false) => vec![PolicyType::Ingress, PolicyType::Egress],
    }
}

fn check_types(errs: &mut Errors, types: &[PolicyType], ingress: &[Rule], egress: &[Rule]) {
    for (i, t) in types.iter().enumerate() {
        if types[..i].contains(t) {
            errs.add(
                &index("spec.types", i),
                format!("{t:?}"),
                "duplicate policy type",
            );
        }
    }
    if !types.is_empty() {
        if !ingress.is_empty() && !types.contains(&PolicyType::Ingress) {
            errs.add(
                "spec.types",
                format!("{types:?}"),
                "ingress rules are present but Ingress is not in types",
            );
        }
        if !egress.is_empty() && !types.contains(&PolicyType::Egress) {
            errs.add(
                "spec.types",
                format!("{types:?}"),
                "egress rules are present but Egress is not in types",
            );
        }
    }
}

fn check_order(errs: &mut Errors, order: Option<f64>) {
    if let Some(o) = order {
        if !o.is_finite() || o < 0.0 {
            errs.add("spec.order", o, "order must be a number >= 0");
        }
    }
}

/// The tier a policy named `name` with `tier:` belongs to.
fn check_policy_tier(errs: &mut Errors, meta: &Metadata, tier: &Option<String>) {
    let tier = tier.as_deref().unwrap_or(DEFAULT_TIER);
    check_label_name(errs, "spec.tier", tier);
    // Calico: a policy outside the default tier is named `<tier>.<name>`.
    if tier != DEFAULT_TIER && !meta.name.starts_with(&format!("{tier}.")) {
        errs.add(
            "metadata.name",
            &meta.name,
            format!("a policy in tier '{tier}' must be named '{tier}.<name>'"),
        );
    }
}

fn format_order(order: Option<f64>) -> String {
    order.map(|o| o.to_string()).unwrap_or_default()
}

pub const DEFAULT_TIER: &str = "default";

// ---- Profile -----------------------------------------------------------------------------

calico_struct! {
    pub struct ProfileSpec {
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "ingress" => pub ingress: Vec<Rule>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "egress" => pub egress: Vec<Rule>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        "labelsToApply" => pub labels_to_apply: BTreeMap<String, String>,
    }
}

impl ProfileSpec {
    /// The profile Calico's CNI plugin creates for network `name`: members get the label
    /// `<name>: ""`, ingress is allowed from members (`has(<name>)`), egress is allowed.
    pub fn for_network(name: &str) -> ProfileSpec {
        ProfileSpec {
            ingress: vec![Rule::allow_from(format!("has({name})"))],
            egress: vec![Rule::allow()],
            labels_to_apply: BTreeMap::from([(name.to_string(), String::new())]),
            ..ProfileSpec::default()
        }
    }
}

impl Spec for ProfileSpec {
    const KIND: Kind = Kind::Profile;

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_profile_name(errs, "metadata.name", &meta.name);
        check_rules(errs, "spec.ingress", &self.ingress);
        check_rules(errs, "spec.egress", &self.egress);
        check_labels(errs, "spec.labelsToApply", &self.labels_to_apply);
    }

    fn table_row(&self, meta: &Metadata, wide: bool) -> Vec<String> {
        if wide {
            let labels: Vec<String> = self
                .labels_to_apply
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            vec![meta.name.clone(), labels.join(",")]
        } else {
            vec![meta.name.clone()]
        }
    }
}

// ---- NetworkPolicy -----------------------------------------------------------------------

calico_struct! {
    pub struct NetworkPolicySpec {
        #[serde(skip_serializing_if = "Option::is_none")]
        "tier" => pub tier: Option<String>,
        /// Lower orders apply first; absent means after every ordered policy.
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::common::serialize_order")]
        "order" => pub order: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "selector" => pub selector: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "types" => pub types: Vec<PolicyType>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "ingress" => pub ingress: Vec<Rule>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "egress" => pub egress: Vec<Rule>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "serviceAccountSelector" => pub service_account_selector: Option<String>,
    }
}

impl Spec for NetworkPolicySpec {
    const KIND: Kind = Kind::NetworkPolicy;

    fn apply_defaults(&mut self, meta: &mut Metadata) {
        meta.namespace
            .get_or_insert_with(|| crate::meta::DEFAULT_NAMESPACE.into());
        self.tier.get_or_insert_with(|| DEFAULT_TIER.into());
        if self.types.is_empty() {
            self.types = default_policy_types(&self.ingress, &self.egress);
        }
    }

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_subdomain_name(errs, "metadata.name", &meta.name);
        check_policy_tier(errs, meta, &self.tier);
        check_order(errs, self.order);
        for (name, sel) in [
            ("selector", &self.selector),
            ("serviceAccountSelector", &self.service_account_selector),
        ] {
            if let Some(s) = sel {
                selector::check(errs, &field("spec", name), s);
            }
        }
        check_types(errs, &self.types, &self.ingress, &self.egress);
        check_rules(errs, "spec.ingress", &self.ingress);
        check_rules(errs, "spec.egress", &self.egress);
    }

    fn table_row(&self, meta: &Metadata, wide: bool) -> Vec<String> {
        if wide {
            vec![
                meta.name.clone(),
                format_order(self.order),
                self.selector.clone().unwrap_or_default(),
            ]
        } else {
            vec![meta.name.clone()]
        }
    }
}

// ---- GlobalNetworkPolicy -----------------------------------------------------------------

calico_struct! {
    pub struct GlobalNetworkPolicySpec {
        #[serde(skip_serializing_if = "Option::is_none")]
        "tier" => pub tier: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::common::serialize_order")]
        "order" => pub order: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "selector" => pub selector: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "namespaceSelector" => pub namespace_selector: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "serviceAccountSelector" => pub service_account_selector: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "types" => pub types: Vec<PolicyType>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "ingress" => pub ingress: Vec<Rule>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "egress" => pub egress: Vec<Rule>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "doNotTrack" => pub do_not_track: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "preDNAT" => pub pre_dnat: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "applyOnForward" => pub apply_on_forward: Option<bool>,
    }
}

impl Spec for GlobalNetworkPolicySpec {
    const KIND: Kind = Kind::GlobalNetworkPolicy;

    fn apply_defaults(&mut self, _meta: &mut Metadata) {
        self.tier.get_or_insert_with(|| DEFAULT_TIER.into());
        if self.types.is_empty() {
            self.types = default_policy_types(&self.ingress, &self.egress);
        }
    }

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_subdomain_name(errs, "metadata.name", &meta.name);
        check_policy_tier(errs, meta, &self.tier);
        check_order(errs, self.order);
        for (name, sel) in [
            ("selector", &self.selector),
            ("namespaceSelector", &self.namespace_selector),
            ("serviceAccountSelector", &self.service_account_selector),
        ] {
            if let Some(s) = sel {
                selector::check(errs, &field("spec", name), s);
            }
        }
        check_types(errs, &self.types, &self.ingress, &self.egress);
        check_rules(errs, "spec.ingress", &self.ingress);
        check_rules(errs, "spec.egress", &self.egress);
        let do_not_track = self.do_not_track.unwrap_or(false);
        let pre_dnat = self.pre_dnat.unwrap_or(false);
        // Calico's rules for untracked and pre-DNAT policies.
        if do_not_track && pre_dnat {
            errs.add(
                "spec.preDNAT",
                true,
                "preDNAT and doNotTrack cannot both be true",
            );
        }
        if (do_not_track || pre_dnat) && self.apply_on_forward == Some(false) {
            errs.add(
                "spec.applyOnForward",
                false,
                "applyOnForward must be true if doNotTrack or preDNAT is true",
            );
        }
        if pre_dnat && !self.egress.is_empty() {
            errs.add(
                "spec.egress",
                format!("{} rules", self.egress.len()),
                "a preDNAT policy cannot have egress rules",
            );
        }
    }

    fn table_row(&self, meta: &Metadata, wide: bool) -> Vec<String> {
        if wide {
            vec![
                meta.name.clone(),
                format_order(self.order),
                self.selector.clone().unwrap_or_default(),
            ]
        } else {
            vec![meta.name.clone()]
        }
    }
}

// ---- Tier --------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TierDefaultAction {
    Deny,
    Pass,
}

calico_struct! {
    pub struct TierSpec {
        /// Lower orders apply first; absent means after every ordered tier.
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "crate::common::serialize_order")]
        "order" => pub order: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "defaultAction" => pub default_action: Option<TierDefaultAction>,
    }
}

/// Calico's order for the `default` tier.
pub const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;

impl Spec for TierSpec {
    const KIND: Kind = Kind::Tier;

    fn apply_defaults(&mut self, meta: &mut Metadata) {
        if meta.name == DEFAULT_TIER {
            self.order.get_or_insert(DEFAULT_TIER_ORDER);
        }
        self.default_action.get_or_insert(TierDefaultAction::Deny);
    }

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_label_name(errs, "metadata.name", &meta.name);
        check_order(errs, self.order);
        if meta.name == DEFAULT_TIER && self.order.is_some_and(|o| o != DEFAULT_TIER_ORDER) {
            errs.add(
                "spec.order",
                format_order(self.order),
                format!("the default tier's order is fixed at {DEFAULT_TIER_ORDER}"),
            );
        }
    }

    fn table_row(&self, meta: &Metadata, _wide: bool) -> Vec<String> {
        vec![meta.name.clone(), format_order(self.order)]
    }
}
