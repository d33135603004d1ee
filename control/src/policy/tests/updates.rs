//! Address sets following endpoint changes, the endpoints a change makes dirty, and
//! refused resources.

use super::*;

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
          {action: Allow, source: {services: {name: web, namespace: default}}}]", "[]"));
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
