//! Calico's defaults, applied by `apply_defaults` (and `load_documents`).

use resources::*;

fn one(text: &str) -> Resource {
    let mut r = parse_documents(text).unwrap();
    assert_eq!(r.len(), 1);
    let mut r = r.remove(0);
    r.apply_defaults();
    r.validate().unwrap_or_else(|e| panic!("{e}"));
    r
}

#[test]
fn ip_pool_defaults() {
    let r = one("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: default-ipv4-ippool}\nspec: {cidr: 192.168.0.0/16}\n");
    let p = &r.as_ip_pool().unwrap().spec;
    assert_eq!(p.block_size, Some(26));
    assert_eq!(p.ipip_mode, Some(EncapMode::Never));
    assert_eq!(p.vxlan_mode, Some(EncapMode::Never));
    // Go bools with omitempty: unset, and false means unset.
    assert_eq!(p.nat_outgoing, None);
    assert_eq!(p.disabled, None);
    assert_eq!(p.assignment_mode, Some(AssignmentMode::Automatic));
    assert_eq!(p.node_selector.as_deref(), Some("all()"));
    assert_eq!(
        p.allowed_uses,
        Some(vec![AllowedUse::Workload, AllowedUse::Tunnel])
    );

    let r = one("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: v6}\nspec: {cidr: 'fd00::/48'}\n");
    assert_eq!(r.as_ip_pool().unwrap().spec.block_size, Some(122));

    // Set values are kept.
    let r = one("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.20.0.0/24, blockSize: 28, ipipMode: Always, natOutgoing: true}\n");
    let p = &r.as_ip_pool().unwrap().spec;
    assert_eq!(
        (p.block_size, p.ipip_mode, p.nat_outgoing),
        (Some(28), Some(EncapMode::Always), Some(true))
    );
}

#[test]
fn bgp_configuration_defaults_apply_to_default_only() {
    let r = one(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n",
    );
    let b = &r.as_bgp_configuration().unwrap().spec;
    assert_eq!(b.as_number, Some(AsNumber::new(64512)));
    assert_eq!(b.node_to_node_mesh_enabled, Some(true));
    assert_eq!(b.log_severity_screen, Some(LogSeverity::Info));
    assert_eq!(b.listen_port, Some(179));

    let r = one("apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false, asNumber: 65000}\n");
    let b = &r.as_bgp_configuration().unwrap().spec;
    assert_eq!(
        (b.node_to_node_mesh_enabled, b.as_number_or_default()),
        (Some(false), 65000)
    );

    let r = one("apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: node.n1}\nspec: {logSeverityScreen: Debug}\n");
    let b = &r.as_bgp_configuration().unwrap().spec;
    assert_eq!(
        (b.as_number.as_ref(), b.node_to_node_mesh_enabled),
        (None, None)
    );
}

#[test]
fn policy_types_tier_and_namespace_defaults() {
    let np = |rules: &str| {
        let r = one(&format!("apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: p}}\nspec:\n  selector: all()\n{rules}"));
        let p = r.as_network_policy().unwrap().clone();
        (
            p.metadata.namespace.clone(),
            p.spec.tier.clone(),
            p.spec.types.clone(),
            p.spec.order,
        )
    };
    use PolicyType::*;
    // Calico's table: no rules -> Ingress; ingress only -> Ingress; egress only -> Egress;
    // both -> Ingress, Egress.
    assert_eq!(
        np(""),
        (
            Some("default".into()),
            Some("default".into()),
            vec![Ingress],
            None
        )
    );
    assert_eq!(np("  ingress: [{action: Allow}]\n").2, vec![Ingress]);
    assert_eq!(np("  egress: [{action: Allow}]\n").2, vec![Egress]);
    assert_eq!(
        np("  ingress: [{action: Allow}]\n  egress: [{action: Allow}]\n").2,
        vec![Ingress, Egress]
    );
    // Explicit types are kept.
    assert_eq!(np("  types: [Egress]\n").2, vec![Egress]);

    let r = one("apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\nspec:\n  egress: [{action: Deny}]\n");
    let g = &r.as_global_network_policy().unwrap().spec;
    assert_eq!(
        (g.tier.as_deref(), g.types.clone()),
        (Some("default"), vec![Egress])
    );

    let r = one("apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {name: w}\nspec: {node: n1, interfaceName: cali0}\n");
    assert_eq!(r.namespace(), Some("default"));
    assert_eq!(
        r.key(),
        "/calico/resources/v3/projectcalico.org/workloadendpoints/default/w"
    );
}

#[test]
fn tier_defaults() {
    let r = one("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: default}\n");
    let t = &r.as_tier().unwrap().spec;
    assert_eq!(
        (t.order, t.default_action),
        (Some(1_000_000.0), Some(policy::TierDefaultAction::Deny))
    );
    let r = one("apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\n");
    assert_eq!(
        r.as_tier().unwrap().spec.order,
        None,
        "a tier without order sorts after every ordered tier"
    );
}

#[test]
fn network_profile_matches_calicos_cni_profile() {
    let p = ProfileSpec::for_network("net1");
    let r = Resource::from(Profile::new(Metadata::named("net1"), p));
    r.validate().unwrap();
    let yaml = to_yaml(&[r]);
    let expected = "apiVersion: projectcalico.org/v3
kind: Profile
metadata:
  name: net1
spec:
  egress:
  - action: Allow
  ingress:
  - action: Allow
    source:
      selector: has(net1)
  labelsToApply:
    net1: ''
";
    assert_eq!(yaml, expected);
}

#[test]
fn load_documents_applies_defaults_before_validating() {
    let r = load_documents("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.20.0.0/24}\n").unwrap();
    assert_eq!(r[0].as_ip_pool().unwrap().spec.block_size, Some(26));
    // A /30 pool cannot hold a default /26 block: refused after defaults.
    let err = load_documents("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.20.0.0/30}\n").unwrap_err();
    assert_eq!(err.path(), Some("spec.cidr"));
}
