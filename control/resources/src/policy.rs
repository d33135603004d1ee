//! Policy resources: rules, Profile, NetworkPolicy, GlobalNetworkPolicy and Tier.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::common::{GoBool, Port, Protocol};
use crate::kind::Kind;
use crate::macros::calico_struct;
use crate::meta::Metadata;
use crate::object::Spec;
use crate::rule_check::{
    check_rules, check_services_placement, RuleSide, GLOBAL_ONLY_IN_NAMESPACE_SELECTOR,
};
use crate::selector;
use crate::validate::{check_label_name, check_labels, check_profile_name, field, index, Errors};

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

/// Calico's default for `types` (libcalico-go `defaultPolicyTypesField`): Egress only when
/// there are egress rules and no ingress rules, both when both are present, else Ingress.
pub fn default_policy_types(ingress: &[Rule], egress: &[Rule]) -> Vec<PolicyType> {
    match (ingress.is_empty(), egress.is_empty()) {
        (_, true) => vec![PolicyType::Ingress],
        (true, false) => vec![PolicyType::Egress],
        (false, false) => vec![PolicyType::Ingress, PolicyType::Egress],
    }
}

/// Calico refuses a type given twice; types that leave rules out are accepted (the rules
/// are then not used).
fn check_types(errs: &mut Errors, types: &[PolicyType]) {
    for (i, t) in types.iter().enumerate() {
        if types[..i].contains(t) {
            errs.add(
                &index("spec.types", i),
                format!("{t:?}"),
                format!("'{t:?}' type specified more than once"),
            );
        }
    }
}

/// A policy's own selectors: valid, and without `global()` (only a rule's
/// namespaceSelector may hold it).
fn check_policy_selectors(errs: &mut Errors, selectors: &[(&str, &Option<String>)]) {
    for (name, sel) in selectors {
        if let Some(s) = sel {
            let path = field("spec", name);
            selector::check(errs, &path, s);
            if s.contains("global(") {
                errs.add(&path, s, GLOBAL_ONLY_IN_NAMESPACE_SELECTOR);
            }
        }
    }
}

/// The rules of a (Global)NetworkPolicy: each rule, then where services may be.
fn check_policy_rules(errs: &mut Errors, ingress: &[Rule], egress: &[Rule], global: bool) {
    check_rules(errs, "spec.ingress", ingress);
    check_rules(errs, "spec.egress", egress);
    check_services_placement(errs, "spec.ingress", ingress, RuleSide::Ingress, global);
    check_services_placement(errs, "spec.egress", egress, RuleSide::Egress, global);
}

/// Policy names as Calico's regexes have them: a DNS label, optionally behind one other
/// (`<tier>.<name>`); a NetworkPolicy may also be a Kubernetes policy's
/// `knp.default.<name>` or `ossg.default.<name>`.
fn check_policy_name(errs: &mut Errors, name: &str, namespaced: bool) {
    let label = crate::validate::is_subdomain_part;
    let kubernetes = namespaced
        && ["knp.default.", "ossg.default."].iter().any(|prefix| {
            name.strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty() && rest.split('.').all(label))
        });
    let plain = match name.split_once('.') {
        None => label(name),
        Some((tier, rest)) => label(tier) && label(rest),
    };
    if name.len() > 253 {
        errs.add(
            "metadata.name",
            name,
            format!("name is too long by {} bytes", name.len() - 253),
        );
    } else if !plain && !kubernetes {
        errs.add(
            "metadata.name",
            name,
            "name must consist of lower case alphanumeric characters or '-' (regex: [a-z0-9]([-a-z0-9]*[a-z0-9])?)",
        );
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

/// The label Calico puts on every policy, naming its tier (so that selectors and RBAC can
/// pick policies by tier).
pub const TIER_LABEL: &str = "projectcalico.org/tier";

/// Calico labels a policy with its tier where the label is missing (libcalico-go's
/// `defaultTierLabelIfMissing`; Calico's API server writes the policy's own tier, as here).
fn label_with_tier(meta: &mut Metadata, tier: &str) {
    meta.labels
        .entry(TIER_LABEL.to_string())
        .or_insert_with(|| tier.to_string());
}

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
        let tier = self.tier.get_or_insert_with(|| DEFAULT_TIER.into());
        label_with_tier(meta, tier);
        if self.types.is_empty() {
            self.types = default_policy_types(&self.ingress, &self.egress);
        }
    }

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_policy_name(errs, &meta.name, true);
        check_policy_tier(errs, meta, &self.tier);
        check_order(errs, self.order);
        check_policy_selectors(
            errs,
            &[
                ("selector", &self.selector),
                ("serviceAccountSelector", &self.service_account_selector),
            ],
        );
        check_types(errs, &self.types);
        check_policy_rules(errs, &self.ingress, &self.egress, false);
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
        // Go `bool` with `omitempty` in Calico: false is not written.
        #[serde(skip_serializing_if = "crate::common::is_unset_or_false")]
        "doNotTrack" => pub do_not_track: Option<bool> as GoBool,
        // Go `bool` with `omitempty` in Calico: false is not written.
        #[serde(skip_serializing_if = "crate::common::is_unset_or_false")]
        "preDNAT" => pub pre_dnat: Option<bool> as GoBool,
        // Go `bool` with `omitempty` in Calico: false is not written.
        #[serde(skip_serializing_if = "crate::common::is_unset_or_false")]
        "applyOnForward" => pub apply_on_forward: Option<bool> as GoBool,
    }
}

impl Spec for GlobalNetworkPolicySpec {
    const KIND: Kind = Kind::GlobalNetworkPolicy;

    fn apply_defaults(&mut self, meta: &mut Metadata) {
        let tier = self.tier.get_or_insert_with(|| DEFAULT_TIER.into());
        label_with_tier(meta, tier);
        if self.types.is_empty() {
            self.types = default_policy_types(&self.ingress, &self.egress);
        }
    }

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_policy_name(errs, &meta.name, false);
        check_policy_tier(errs, meta, &self.tier);
        check_order(errs, self.order);
        check_policy_selectors(
            errs,
            &[
                ("selector", &self.selector),
                ("namespaceSelector", &self.namespace_selector),
                ("serviceAccountSelector", &self.service_account_selector),
            ],
        );
        check_types(errs, &self.types);
        check_policy_rules(errs, &self.ingress, &self.egress, true);
        let do_not_track = self.do_not_track.unwrap_or(false);
        let pre_dnat = self.pre_dnat.unwrap_or(false);
        // Calico's CEL rules for untracked and pre-DNAT policies.
        if do_not_track && pre_dnat {
            errs.add(
                "spec.preDNAT",
                true,
                "preDNAT and doNotTrack cannot both be true",
            );
        }
        if (do_not_track || pre_dnat) && self.apply_on_forward != Some(true) {
            errs.add(
                "spec.applyOnForward",
                self.apply_on_forward.unwrap_or(false),
                "applyOnForward must be true if either preDNAT or doNotTrack is true",
            );
        }
        if pre_dnat && !self.egress.is_empty() {
            errs.add(
                "spec.egress",
                format!("{} rules", self.egress.len()),
                "preDNAT policy cannot have any egress rules",
            );
        }
        if pre_dnat && self.types.contains(&PolicyType::Egress) {
            errs.add(
                "spec.types",
                "Egress",
                "preDNAT policy cannot have 'Egress' type",
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
        // Calico's CEL rules for its well-known tiers: a fixed order and default action.
        let fixed = match meta.name.as_str() {
            DEFAULT_TIER => Some((DEFAULT_TIER_ORDER, TierDefaultAction::Deny, "Deny")),
            "kube-admin" => Some((1_000.0, TierDefaultAction::Pass, "Pass")),
            "kube-baseline" => Some((10_000_000.0, TierDefaultAction::Pass, "Pass")),
            _ => None,
        };
        if let Some((order, action, action_name)) = fixed {
            // (The default tier's order is filled in; the others' must be written.)
            if self.order != Some(order) {
                errs.add(
                    "spec.order",
                    format_order(self.order),
                    format!("{} tier order must be {order}", meta.name),
                );
            }
            if self.default_action.is_some_and(|a| a != action) {
                errs.add(
                    "spec.defaultAction",
                    format!("{:?}", self.default_action.unwrap_or(action)),
                    format!(
                        "The '{}' tier must have default action '{action_name}'",
                        meta.name
                    ),
                );
            }
        }
    }

    fn table_row(&self, meta: &Metadata, _wide: bool) -> Vec<String> {
        vec![meta.name.clone(), format_order(self.order)]
    }
}
