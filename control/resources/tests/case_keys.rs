//! Issue 15: keys spelt in another case (`Ingress:`, `Order:`) set the field they name, as
//! Go's `encoding/json` (Calico's decoder) matches them, at every level; so their rules are
//! validated and enforced instead of being kept as unknown fields. Output stays camelCase.

use resources::*;

const GNP_CAPITALISED: &str = "\
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: web-in
spec:
  Order: 10
  Selector: role == 'web'
  Ingress:
  - Action: Allow
    Protocol: TCP
    Source:
      Selector: role == 'lb'
    Destination:
      Ports: [80, 443]
  Egress:
  - Action: Deny
    Destination:
      NotNets: [10.0.0.0/8]
";

fn gnp(r: &Resource) -> &GlobalNetworkPolicy {
    r.as_global_network_policy().expect("a GlobalNetworkPolicy")
}

#[test]
fn capitalised_policy_keys_are_the_fields_they_name() {
    let rs = load_documents(GNP_CAPITALISED).expect("valid policy");
    let p = gnp(&rs[0]);
    assert_eq!(p.spec.order, Some(10.0));
    assert_eq!(p.spec.selector.as_deref(), Some("role == 'web'"));
    assert_eq!(p.spec.ingress.len(), 1);
    assert_eq!(p.spec.egress.len(), 1);
    let rule = &p.spec.ingress[0];
    assert_eq!(rule.action, Some(Action::Allow));
    assert_eq!(rule.protocol, Some(Protocol::tcp()));
    let src = rule.source.as_ref().expect("source");
    assert_eq!(src.selector.as_deref(), Some("role == 'lb'"));
    let dst = rule.destination.as_ref().expect("destination");
    assert_eq!(dst.ports, vec![Port::number(80), Port::number(443)]);
    assert_eq!(
        p.spec.egress[0].destination.as_ref().unwrap().not_nets,
        vec!["10.0.0.0/8".to_string()]
    );
    // Nothing was left behind as an unknown field, at any level.
    assert!(p.spec.extra.is_empty(), "{:?}", p.spec.extra);
    assert!(rule.extra.is_empty(), "{:?}", rule.extra);
    assert!(dst.extra.is_empty(), "{:?}", dst.extra);
    // Defaults saw the rules: both directions.
    assert_eq!(p.spec.types, vec![PolicyType::Ingress, PolicyType::Egress]);
}

#[test]
fn capitalised_keys_print_in_calicos_camel_case() {
    let rs = load_documents(GNP_CAPITALISED).expect("valid policy");
    let yaml = to_yaml(&rs);
    for canonical in [
        "order: 10",
        "selector:",
        "ingress:",
        "egress:",
        "action: Allow",
        "ports:",
        "notNets:",
    ] {
        assert!(yaml.contains(canonical), "missing {canonical:?} in\n{yaml}");
    }
    for folded in [
        "Order", "Selector", "Ingress:", "Egress:", "Action", "Ports", "NotNets",
    ] {
        assert!(!yaml.contains(folded), "{folded:?} printed in\n{yaml}");
    }
    // And the canonical output reads back to the same resource.
    assert_eq!(load_documents(&yaml).expect("round trip"), rs);
}

#[test]
fn a_bad_rule_under_a_capitalised_key_is_refused_with_its_field() {
    let text = GNP_CAPITALISED.replace("Ports: [80, 443]", "Ports: [80, 70000]");
    let err = load_documents(&text).expect_err("port 70000 is invalid");
    let msg = err.to_string();
    assert_eq!(
        err.path(),
        Some("spec.ingress[0].destination.ports[1]"),
        "{msg}"
    );
    assert!(msg.contains("70000"), "{msg}");

    let text = GNP_CAPITALISED.replace("Protocol: TCP", "Protocol: GRE");
    let err = load_documents(&text).expect_err("GRE has no ports");
    assert!(
        err.to_string().contains("spec.ingress[0].protocol"),
        "{err}"
    );

    let text = GNP_CAPITALISED.replace("- Action: Deny", "- Action: Deny\n    IPVersion: 5");
    let err = load_documents(&text).expect_err("ipVersion 5");
    assert!(
        err.to_string().contains("spec.egress[0].ipVersion"),
        "{err}"
    );
}

#[test]
fn json_manifests_and_stored_values_fold_keys_too() {
    let json = r#"{"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkPolicy",
        "metadata":{"name":"j"},
        "spec":{"ORDER":5,"selector":"all()","INGRESS":[{"ACTION":"Deny","protocol":"UDP",
        "destination":{"PORTS":[53]}}]}}"#;
    let rs = load_documents(json).expect("valid JSON policy");
    let p = gnp(&rs[0]);
    assert_eq!(p.spec.order, Some(5.0));
    assert_eq!(p.spec.ingress.len(), 1);
    assert_eq!(p.spec.ingress[0].action, Some(Action::Deny));

    // A value another writer put in the datastore with Go-style keys reads back with its rules.
    let r = Resource::from_stored(json.as_bytes(), 7).expect("stored value");
    let p = gnp(&r);
    assert_eq!(p.spec.ingress.len(), 1);
    assert_eq!(
        p.spec.ingress[0].destination.as_ref().unwrap().ports,
        vec![Port::number(53)]
    );
    assert!(p.spec.extra.is_empty(), "{:?}", p.spec.extra);
    // What brindle stores is canonical.
    let stored = String::from_utf8(r.to_stored_json()).unwrap();
    assert!(
        stored.contains("\"ingress\"") && !stored.contains("INGRESS"),
        "{stored}"
    );
}

#[test]
fn envelope_and_metadata_keys_fold() {
    let text = "\
APIVersion: projectcalico.org/v3
Kind: GlobalNetworkPolicy
Metadata:
  Name: env
Spec:
  Ingress:
  - action: Allow
";
    let rs = load_documents(text).expect("valid");
    let p = gnp(&rs[0]);
    assert_eq!(p.metadata.name, "env");
    assert_eq!(p.spec.ingress.len(), 1);
    assert!(p.extra.is_empty(), "{:?}", p.extra);
}

#[test]
fn unicode_simple_folding_matches_as_in_go() {
    // U+017F (long s) folds with 's' in Go's field matching: this is `selector`.
    let text = GNP_CAPITALISED.replace(
        "  Selector: role == 'web'",
        "  \u{17F}elector: role == 'web'",
    );
    let rs = load_documents(&text).expect("valid");
    assert_eq!(gnp(&rs[0]).spec.selector.as_deref(), Some("role == 'web'"));
    // Dotless i does not fold with 'i': an unknown field, kept as written.
    let text = GNP_CAPITALISED.replace("  Ingress:", "  \u{131}ngress:");
    let rs = parse_documents(&text).expect("parses");
    let p = gnp(&rs[0]);
    assert!(p.spec.ingress.is_empty());
    assert!(p.spec.extra.contains_key("\u{131}ngress"));
}

#[test]
fn two_spellings_of_one_field_are_refused_naming_both() {
    let text = "\
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: dup
spec:
  ingress:
  - action: Allow
  Ingress:
  - action: Deny
";
    let err = load_documents(text).expect_err("ambiguous");
    let msg = err.to_string();
    assert!(
        msg.contains("'ingress'") && msg.contains("'Ingress'"),
        "{msg}"
    );
    assert_eq!(err.path(), Some("spec"), "{msg}");

    // Nested, in a rule.
    let text = GNP_CAPITALISED.replace("  - Action: Deny", "  - Action: Deny\n    action: Allow");
    let err = load_documents(&text).expect_err("ambiguous");
    let msg = err.to_string();
    assert!(
        msg.contains("'Action'") && msg.contains("'action'"),
        "{msg}"
    );
    assert!(msg.contains("spec.Egress[0]"), "{msg}");

    // In the envelope.
    let text = format!("{GNP_CAPITALISED}Spec: {{}}\n");
    let err = load_documents(&text).expect_err("ambiguous");
    let msg = err.to_string();
    assert!(msg.contains("'spec'") && msg.contains("'Spec'"), "{msg}");
}

#[test]
fn unknown_fields_are_still_kept_as_written() {
    let text = GNP_CAPITALISED.replace("  Order: 10", "  Order: 10\n  FutureField: {X: 1}");
    let rs = load_documents(&text).expect("valid");
    let p = gnp(&rs[0]);
    assert_eq!(
        p.spec.extra.get("FutureField"),
        Some(&serde_json::json!({"X": 1}))
    );
    assert!(to_yaml(&rs).contains("FutureField:"));
}

fn felix(spec: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec:\n{spec}\n")
}

#[test]
fn felix_enum_values_are_read_in_any_case_and_printed_canonically() {
    let text = felix(
        "  logSeverityScreen: info\n  logSeverityFile: WARNING\n  LogSeveritySys: debug\n  defaultEndpointToHostAction: drop",
    );
    let rs = load_documents(&text).expect("lowercase values are valid");
    let f = rs[0].as_felix_configuration().unwrap();
    assert_eq!(f.spec.log_severity_screen, Some(LogSeverity::Info));
    assert_eq!(f.spec.log_severity_file, Some(LogSeverity::Warning));
    assert_eq!(f.spec.log_severity_sys, Some(LogSeverity::Debug));
    assert_eq!(
        f.spec.default_endpoint_to_host_action,
        Some(EndpointToHostAction::Drop)
    );
    let yaml = to_yaml(&rs);
    for line in [
        "logSeverityScreen: Info",
        "logSeverityFile: Warning",
        "logSeveritySys: Debug",
        "defaultEndpointToHostAction: Drop",
    ] {
        assert!(yaml.contains(line), "missing {line:?} in\n{yaml}");
    }
    // Canonical values and null still read as before.
    let rs = load_documents(&felix(
        "  logSeverityScreen: Fatal\n  defaultEndpointToHostAction:",
    ))
    .expect("valid");
    let f = rs[0].as_felix_configuration().unwrap();
    assert_eq!(f.spec.log_severity_screen, Some(LogSeverity::Fatal));
    assert_eq!(f.spec.default_endpoint_to_host_action, None);
    // A value that is not one of them, in any case, is refused with its field and value.
    let err = load_documents(&felix("  defaultEndpointToHostAction: reject")).expect_err("bad");
    assert_eq!(err.path(), Some("spec.defaultEndpointToHostAction"));
    assert!(err.to_string().contains("reject"), "{err}");
}

#[test]
fn enums_calico_matches_exactly_stay_exact() {
    // Calico's validator: actionRegex `^(Allow|Deny|Log|Pass)$`, no case folding.
    let text = GNP_CAPITALISED.replace("Action: Allow", "Action: allow");
    let err = load_documents(&text).expect_err("rule action is case-sensitive in Calico");
    assert!(err.to_string().contains("allow"), "{err}");
    // BGPConfiguration's logSeverityScreen has no `(?i)` schema pattern in Calico.
    let text = "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  logSeverityScreen: info\n";
    let err = load_documents(text).expect_err("exact in Calico");
    assert_eq!(err.path(), Some("spec.logSeverityScreen"));
}
