//! Default deny, profiles, and the order tiers and policies are evaluated in.

use super::*;

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
