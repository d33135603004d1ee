//! ARCHITECTURE.md scenarios 2 and 3.

use super::*;

// ---- ARCHITECTURE.md scenarios 2 and 3 ----------------------------------------------------

/// Scenario 2: `net1` and `net2` are isolated by their profiles; members of one network
/// reach each other, egress is open.
#[test]
fn scenario_2_networks_are_isolated_by_their_profiles() {
    let mut lab = Lab::new();
    lab.apply(&network_profile("net1"));
    lab.apply(&network_profile("net2"));
    lab.apply(&wep("default/a1", NODE, "192.168.0.1", "{}", "[net1]"));
    lab.apply(&wep("default/a2", "node-b", "192.168.1.1", "{}", "[net1]"));
    lab.apply(&wep("default/b1", NODE, "192.168.0.2", "{}", "[net2]"));
    assert_eq!(
        lab.ingress("default/a1", ping("192.168.1.1", "192.168.0.1")),
        Allow,
        "same network, other host"
    );
    assert_eq!(
        lab.ingress("default/a1", ping("192.168.0.2", "192.168.0.1")),
        Deny,
        "net2 into net1"
    );
    assert_eq!(
        lab.ingress("default/b1", ping("192.168.0.1", "192.168.0.2")),
        Deny,
        "net1 into net2"
    );
    assert_eq!(
        lab.egress("default/b1", ping("192.168.0.2", "192.168.0.1")),
        Allow,
        "egress is open"
    );
}

/// Scenario 3: network `web` serves HTTP; a policy lets `net2`, and only it, reach it on
/// TCP 80.
#[test]
fn scenario_3_only_net2_reaches_web_on_tcp_80() {
    let mut lab = Lab::new();
    for net in ["net1", "net2", "web"] {
        lab.apply(&network_profile(net));
    }
    lab.apply(&wep("default/web1", NODE, "192.168.0.10", "{}", "[web]"));
    lab.apply(&wep("default/n1", NODE, "192.168.0.11", "{}", "[net1]"));
    lab.apply(&wep("default/n2", "node-b", "192.168.1.12", "{}", "[net2]"));
    assert_eq!(
        lab.ingress("default/web1", tcp("192.168.1.12", "192.168.0.10", 80)),
        Deny,
        "before the policy"
    );
    lab.apply(&gnp(
        "net2-to-web",
        "100",
        "has(web)",
        "[{action: Allow, protocol: TCP, source: {selector: has(net2)}, destination: {ports: [80]}}]",
        "[]",
    ));
    assert!(lab.model.dirty_endpoints().contains(&wkey("default/web1")));
    assert_eq!(
        lab.ingress("default/web1", tcp("192.168.1.12", "192.168.0.10", 80)),
        Allow
    );
    assert_eq!(
        lab.ingress("default/web1", tcp("192.168.1.12", "192.168.0.10", 22)),
        Deny,
        "TCP 80 only"
    );
    assert_eq!(
        lab.ingress("default/web1", udp("192.168.1.12", "192.168.0.10", 80)),
        Deny,
        "TCP only"
    );
    assert_eq!(
        lab.ingress("default/web1", tcp("192.168.0.11", "192.168.0.10", 80)),
        Deny,
        "net1 may not"
    );
    assert_eq!(
        lab.egress("default/n1", tcp("192.168.0.11", "192.168.0.10", 80)),
        Allow,
        "net1's own egress is open"
    );
}
