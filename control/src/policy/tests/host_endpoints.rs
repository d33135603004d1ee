//! Host endpoints: set membership and their policy stages.

use super::*;

// ---- host endpoints ----------------------------------------------------------------------

#[test]
fn host_endpoints_are_set_members_and_a_policy_selects_them_by_their_labels() {
    let mut lab = two_workloads("[open]");
    lab.apply(ALLOW_ALL_PROFILE);
    lab.apply(
        "apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node-a-eth0, labels: {role: gateway}}
spec: {node: node-a, interfaceName: eth0, expectedIPs: [10.0.0.100], profiles: [open]}
",
    );
    // (Calico refuses global() in a policy's own selector: only a rule's namespaceSelector
    // may hold it.)
    lab.apply(&gnp(
        "hosts-only",
        "1",
        "role == 'gateway'",
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
        "the policy selects the host endpoint only"
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
