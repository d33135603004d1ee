//! The ordering rules of the plan (numbered as in its module docs), on made-up interfaces.

use fastpath::policy::HostPolicy;
use fastpath::MacAddr;

use super::*;
use crate::config::WorkloadConfig;
use crate::dataplane::publish::deny_all_policy;
use crate::dataplane::{HostEndpointState, HostPolicyHandle};

/// A port served now, as the live dataplane keeps it.
struct Port {
    name: &'static str,
    kind: PortKind,
    ifindex: u32,
    mtu: u16,
    ips: Vec<Ipv4Addr>,
    addrs: Vec<(Ipv4Addr, u8)>,
}

fn served(name: &'static str, kind: PortKind, ifindex: u32, ips: &[&str]) -> Port {
    Port {
        name,
        kind,
        ifindex,
        mtu: 1500,
        ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        addrs: Vec::new(),
    }
}

fn current(ports: &[Port]) -> Current<'_> {
    Current {
        pools: None,
        host_path_on: false,
        ports: ports
            .iter()
            .map(|p| {
                let served = Served {
                    kind: p.kind,
                    ifindex: p.ifindex,
                    mtu: p.mtu,
                    ips: &p.ips,
                    addrs: &p.addrs,
                    tap: false,
                };
                (p.name, served)
            })
            .collect(),
    }
}

/// Workloads by interface and addresses, and the uplink.
fn desired(workloads: &[(&str, &[&str])], uplink: Option<&str>) -> DesiredState {
    DesiredState {
        workloads: workloads
            .iter()
            .map(|(interface, ips)| WorkloadConfig {
                interface: interface.to_string(),
                ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
                tap: None,
                qos: Default::default(),
            })
            .collect(),
        uplink: uplink.map(str::to_owned),
        pools: vec!["10.65.0.0/16".parse().unwrap()],
        ..DesiredState::default()
    }
}

fn with_host_endpoint(mut desired: DesiredState) -> DesiredState {
    let policy = HostPolicy {
        normal: deny_all_policy(),
        untracked: None,
        pre_dnat: None,
        forward_ingress: None,
        forward_egress: None,
    };
    desired.host_endpoint = Some(HostEndpointState {
        policy: HostPolicyHandle::new(policy),
        failsafe_inbound: Vec::new(),
        failsafe_outbound: Vec::new(),
    });
    desired
}

fn interface(name: &str, ifindex: u32) -> InterfaceFacts {
    InterfaceFacts {
        name: name.to_owned(),
        ifindex,
        mac: MacAddr::CALICO_HOST_SIDE,
        mtu: 1500,
        queues: 1,
        addrs: Vec::new(),
    }
}

/// Facts where each `(name, ifindex)` is there, and the pair when `host_pair`.
fn facts(interfaces: &[(&str, u32)], host_pair: bool) -> Facts {
    Facts {
        host_pair,
        interfaces: interfaces
            .iter()
            .map(|&(name, ifindex)| (name.to_owned(), Ok(interface(name, ifindex))))
            .collect(),
        kernel_end_exists: host_pair,
    }
}

/// Each step in a few words, for comparing plans.
fn labels(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .map(|step| match step {
            Step::SetPools(_) => "set pools".into(),
            Step::StopHostPath => "stop host path".into(),
            Step::EnsureHostPair { uplink, .. } => format!("ensure pair for {uplink}"),
            Step::Fail(f) => format!("fail {} {:?}", f.item, f.kind),
            Step::Readdress { name, ips, .. } => match ips {
                Some(_) => format!("readdress {name} with new ips"),
                None => format!("readdress {name}"),
            },
            Step::Withdraw(names) => format!("withdraw {}", names.join(" ")),
            Step::Publish => "publish".into(),
            Step::Remove { name, replaced } => match replaced {
                true => format!("remove {name}, replaced"),
                false => format!("remove {name}"),
            },
            Step::Open { kind, facts, .. } => format!("open {} as {kind:?}", facts.name),
            Step::PublishOpened => "publish opened".into(),
            Step::Attach(name) => format!("attach {name}"),
            Step::DropUnattached => "drop unattached".into(),
            Step::StartHostPath => "start host path".into(),
            Step::RoutePoolsToVrouter => "route pools to vrouter".into(),
            Step::RemoveHostPair => "remove pair".into(),
        })
        .collect()
}

#[test]
fn rule_1_pools_go_to_the_program_first_and_only_when_they_change() {
    let desired = desired(&[], Some("eth0"));
    let mut now = current(&[]);
    now.host_path_on = true;
    assert_eq!(
        labels(&prepare(&now, &desired)),
        ["set pools", "stop host path", "ensure pair for eth0"]
    );
    now.pools = Some(&desired.pools);
    assert_eq!(
        labels(&prepare(&now, &desired)),
        ["stop host path", "ensure pair for eth0"]
    );
}

#[test]
fn rule_2_a_host_endpoint_going_hands_the_nodes_traffic_back_before_the_pair_is_touched() {
    let gone = desired(&[], Some("eth0"));
    let mut now = current(&[]);
    now.pools = Some(&gone.pools);
    now.host_path_on = true;
    assert_eq!(
        labels(&prepare(&now, &gone)),
        ["stop host path", "ensure pair for eth0"]
    );

    let kept = with_host_endpoint(gone.clone());
    assert_eq!(labels(&prepare(&now, &kept)), ["ensure pair for eth0"]);

    // A host endpoint without an uplink has no pair to take the node's traffic.
    let no_uplink = with_host_endpoint(desired(&[], None));
    assert_eq!(labels(&prepare(&now, &no_uplink)), ["stop host path"]);

    now.host_path_on = false;
    assert_eq!(labels(&prepare(&now, &gone)), ["ensure pair for eth0"]);
}

#[test]
fn rule_3_the_pair_is_made_before_interfaces_are_read_and_its_end_is_then_a_port() {
    let desired = desired(&[("veth1", &["10.65.0.2"])], Some("eth0"));
    let now = current(&[]);
    assert!(matches!(
        prepare(&now, &desired).last(),
        Some(Step::EnsureHostPair { uplink, .. }) if uplink == "eth0"
    ));

    let (ports, failure) = wanted(&desired, true);
    assert_eq!(failure, None);
    let kinds: Vec<(&str, PortKind)> = ports.iter().map(|(n, w)| (*n, w.kind)).collect();
    assert_eq!(
        kinds,
        [
            (hostveth::VROUTER_END, PortKind::Host),
            ("eth0", PortKind::Uplink),
            ("veth1", PortKind::Workload),
        ]
    );
    let (ports, _) = wanted(&desired, false);
    assert!(
        !ports.contains_key(hostveth::VROUTER_END),
        "no pair, no host port"
    );
}

#[test]
fn rule_4_an_interface_named_uplink_and_workload_is_refused_and_neither() {
    let desired = desired(&[("eth0", &["10.65.0.2"]), ("veth1", &[])], Some("eth0"));
    let (ports, failure) = wanted(&desired, false);
    assert_eq!(ports.keys().copied().collect::<Vec<_>>(), ["veth1"]);
    let failure = failure.expect("refused");
    assert_eq!(
        (failure.item.as_str(), failure.kind),
        ("eth0", FailureKind::Refused)
    );

    let steps = reconcile(
        &current(&[]),
        &desired,
        &facts(&[("eth0", 2), ("veth1", 3)], false),
    );
    assert_eq!(
        labels(&steps),
        [
            "fail eth0 Refused",
            "publish",
            "open veth1 as Workload",
            "publish opened",
            "attach veth1",
            "drop unattached",
            "route pools to vrouter",
        ]
    );
}

#[test]
fn rule_5_unreadable_interfaces_are_reported_and_not_served_and_served_ones_go() {
    let desired = desired(&[("veth1", &[]), ("veth2", &[]), ("veth3", &[])], None);
    let mut read = facts(&[], false);
    read.interfaces
        .insert("veth1".into(), Err(InterfaceError::Missing("veth1".into())));
    read.interfaces.insert(
        "veth2".into(),
        Err(InterfaceError::Unreadable {
            name: "veth2".into(),
            what: "mtu",
            detail: "no such file".into(),
        }),
    );
    // veth3 is not in the facts at all: as good as missing.
    let ports = [served("veth2", PortKind::Workload, 7, &[])];
    let steps = reconcile(&current(&ports), &desired, &read);
    assert_eq!(
        labels(&steps),
        [
            "fail veth1 Missing",
            "fail veth2 Refused",
            "fail veth3 Missing",
            "withdraw veth2",
            "publish",
            "remove veth2",
            "publish opened",
        ]
    );
}

#[test]
fn rule_6_new_addresses_of_staying_ports_are_in_place_before_the_first_publish() {
    let desired = desired(
        &[("veth1", &["10.65.0.9"]), ("veth2", &["10.65.0.3"])],
        Some("eth0"),
    );
    let ports = [
        served("eth0", PortKind::Uplink, 2, &[]),
        served("veth1", PortKind::Workload, 3, &["10.65.0.2"]),
        served("veth2", PortKind::Workload, 4, &["10.65.0.3"]),
    ];
    let mut read = facts(&[("eth0", 2), ("veth1", 3), ("veth2", 4)], false);
    if let Some(Ok(eth0)) = read.interfaces.get_mut("eth0") {
        eth0.addrs = vec![("192.168.0.1".parse().unwrap(), 24)];
    }
    let steps = reconcile(&current(&ports), &desired, &read);
    assert_eq!(
        labels(&steps),
        [
            "readdress eth0",
            "readdress veth1 with new ips",
            "publish",
            "publish opened",
            "route pools to vrouter",
        ]
    );
    let Step::Readdress { ips, addrs, .. } = &steps[1] else {
        panic!("not a readdress: {:?}", steps[1]);
    };
    assert_eq!(ips.as_deref(), Some(&["10.65.0.9".parse().unwrap()][..]));
    assert!(addrs.is_empty());
}

#[test]
fn rule_7_going_ports_leave_the_tables_then_the_dataplane_and_every_apply_publishes() {
    let desired = desired(&[("veth1", &[])], None);
    let ports = [
        served("veth1", PortKind::Workload, 3, &[]),
        served("veth2", PortKind::Workload, 4, &[]),
        served("veth3", PortKind::Workload, 5, &[]),
    ];
    let read = facts(&[("veth1", 3)], false);
    assert_eq!(
        labels(&reconcile(&current(&ports), &desired, &read)),
        [
            "withdraw veth2 veth3",
            "publish",
            "remove veth2",
            "remove veth3",
            "publish opened",
        ]
    );
    // Nothing changes: the tables are published all the same (routes, policies).
    assert_eq!(
        labels(&reconcile(&current(&ports[..1]), &desired, &read)),
        ["publish", "publish opened"]
    );
}

#[test]
fn rule_8_new_ports_open_then_tables_route_to_them_then_they_are_attached() {
    let desired = desired(&[("veth1", &["10.65.0.2"]), ("veth2", &[])], Some("eth0"));
    let read = facts(&[("eth0", 2), ("veth1", 3), ("veth2", 4)], false);
    let steps = reconcile(&current(&[]), &desired, &read);
    assert_eq!(
        labels(&steps),
        [
            "publish",
            "open eth0 as Uplink",
            "open veth1 as Workload",
            "open veth2 as Workload",
            "publish opened",
            "attach eth0",
            "attach veth1",
            "attach veth2",
            "drop unattached",
            "route pools to vrouter",
        ]
    );
    let Step::Open { ips, facts, .. } = &steps[2] else {
        panic!("not an open: {:?}", steps[2]);
    };
    assert_eq!(ips, &["10.65.0.2".parse::<Ipv4Addr>().unwrap()]);
    assert_eq!(facts.ifindex, 3);
}

#[test]
fn rule_9_a_recreated_interface_is_removed_before_it_opens_again() {
    let desired = desired(&[("veth1", &[]), ("veth2", &[]), ("eth0", &[])], None);
    let mut mtu_changed = served("veth2", PortKind::Workload, 4, &[]);
    mtu_changed.mtu = 9000;
    let ports = [
        // Now a workload, once the uplink.
        served("eth0", PortKind::Uplink, 2, &[]),
        // A new veth of the same name.
        served("veth1", PortKind::Workload, 3, &[]),
        mtu_changed,
    ];
    let read = facts(&[("eth0", 2), ("veth1", 13), ("veth2", 4)], false);
    assert_eq!(
        labels(&reconcile(&current(&ports), &desired, &read)),
        [
            "withdraw eth0 veth1 veth2",
            "publish",
            "remove eth0, replaced",
            "remove veth1, replaced",
            "remove veth2, replaced",
            "open eth0 as Workload",
            "open veth1 as Workload",
            "open veth2 as Workload",
            "publish opened",
            "attach eth0",
            "attach veth1",
            "attach veth2",
            "drop unattached",
        ]
    );
}

#[test]
fn rules_10_and_11_the_host_path_and_the_pool_routes_come_after_every_attach() {
    let desired = with_host_endpoint(desired(&[("veth1", &[])], Some("eth0")));
    let read = facts(
        &[(hostveth::VROUTER_END, 9), ("eth0", 2), ("veth1", 3)],
        true,
    );
    let steps = labels(&reconcile(&current(&[]), &desired, &read));
    assert_eq!(
        steps[steps.len() - 5..],
        [
            "attach eth0",
            "attach veth1",
            "drop unattached",
            "start host path",
            "route pools to vrouter",
        ]
    );
    assert!(steps.contains(&format!("attach {}", hostveth::VROUTER_END)));
    let last_attach = steps.iter().rposition(|s| s.starts_with("attach")).unwrap();
    let start = steps.iter().position(|s| s == "start host path").unwrap();
    assert!(last_attach < start);
}

#[test]
fn rule_12_without_an_uplink_the_pair_goes_last_after_its_port() {
    let desired = desired(&[], None);
    let ports = [
        served(hostveth::VROUTER_END, PortKind::Host, 9, &[]),
        served("eth0", PortKind::Uplink, 2, &[]),
    ];
    let mut read = facts(&[], false);
    read.kernel_end_exists = true;
    assert_eq!(
        labels(&reconcile(&current(&ports), &desired, &read)),
        [
            format!("withdraw {} eth0", hostveth::VROUTER_END),
            "publish".into(),
            format!("remove {}", hostveth::VROUTER_END),
            "remove eth0".into(),
            "publish opened".into(),
            "remove pair".into(),
        ]
    );
    read.kernel_end_exists = false;
    let steps = labels(&reconcile(&current(&[]), &desired, &read));
    assert_eq!(steps, ["publish", "publish opened"], "no pair to remove");
}

#[test]
fn a_tap_workload_is_opened_with_its_tap_and_a_switch_between_veth_and_tap_recreates_it() {
    let tap = TapWorkload {
        netns: "/run/netns/w1".into(),
        ifname: "eth0".into(),
    };
    let mut want = desired(&[("cali1", &["10.65.0.2"])], None);
    want.workloads[0].tap = Some(tap.clone());
    let steps = reconcile(&current(&[]), &want, &facts(&[("cali1", 2)], false));
    let opened: Vec<_> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Open { tap, .. } => Some(tap.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(opened, vec![Some(tap)], "{:?}", labels(&steps));

    // Served as a veth now, wanted as a TAP with the same index (another namespace's): the
    // port is taken down and opened again.
    let now = [served("cali1", PortKind::Workload, 2, &["10.65.0.2"])];
    let steps = reconcile(&current(&now), &want, &facts(&[("cali1", 2)], false));
    let labels = labels(&steps);
    assert!(
        labels.contains(&"remove cali1, replaced".to_owned())
            && labels.contains(&"open cali1 as Workload".to_owned()),
        "{labels:?}"
    );
}
