//! Lab wiring tests. They need root (to create network namespaces) and run as root in CI.
//! Every lab name carries the test's letter and this process's id so that concurrent runs and
//! other engineers' labs never collide; every lab is taken down by its `Drop`.

use std::time::Duration;

use lab::{Forwarding, Lab, LabSpec, HOST_SIDE_MAC};
use serde_json::Value;

/// `<letter><pid in base 36>`: at most 1 + 5 characters for Linux pids (< 2^22).
fn unique_name(letter: char) -> String {
    let mut pid = std::process::id();
    let mut digits = Vec::new();
    while pid > 0 {
        digits.push(std::char::from_digit(pid % 36, 36).unwrap());
        pid /= 36;
    }
    digits.push(letter);
    digits.iter().rev().collect()
}

fn spec(letter: char, workloads: usize, forwarding: Forwarding) -> LabSpec {
    let mut spec = LabSpec::new(unique_name(letter), workloads);
    spec.forwarding = forwarding;
    spec
}

fn ping(lab: &Lab, from_ns: &str, to: &str, count: u32) -> bool {
    let count = count.to_string();
    let out = lab
        .exec_timeout(
            from_ns,
            &["ping", "-c", &count, "-i", "0.2", "-W", "1", "-w", "5", to],
            Duration::from_secs(10),
        )
        .unwrap();
    out.status.success()
}

fn ip_json(ns: &str, args: &[&str]) -> Value {
    let mut full = vec!["ip", "-j", "-n", ns];
    full.extend_from_slice(args);
    let out = lab::cmd::run(&full, Duration::from_secs(10)).unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn has_route(routes: &Value, dst: &str, dev: &str, gateway: Option<&str>) -> bool {
    routes.as_array().unwrap().iter().any(|r| {
        r["dst"] == dst
            && r["dev"] == dev
            && match gateway {
                Some(gw) => r["gateway"] == gw,
                None => r.get("gateway").is_none(),
            }
    })
}

#[test]
fn kernel_lab_forwards_between_workloads_with_proxy_arp() {
    let lab = Lab::up(&spec('k', 2, Forwarding::Kernel)).unwrap();
    let w1 = lab.workload(1).unwrap();
    let w2 = lab.workload(2).unwrap();
    assert!(
        ping(&lab, &w1.netns, &w2.ip.to_string(), 3),
        "kernel lab: w1 cannot ping w2"
    );
    let ext = lab.uplink().unwrap();
    assert!(
        ping(&lab, &w1.netns, &ext.ext_ip.to_string(), 2),
        "kernel lab: w1 cannot reach the ext namespace through the uplink"
    );
    // Proxy ARP answered for the gateway nobody owns, with the host side's MAC.
    let neighbours = ip_json(&w1.netns, &["neigh", "show", "dev", "eth0"]);
    let gateway = neighbours
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["dst"] == "169.254.1.1")
        .expect("no neighbour entry for 169.254.1.1");
    assert_eq!(gateway["lladdr"], HOST_SIDE_MAC);
}

#[test]
fn kernel_lab_without_uplink_still_forwards() {
    let mut spec = spec('n', 2, Forwarding::Kernel);
    spec.uplink = false;
    let lab = Lab::up(&spec).unwrap();
    assert!(lab.uplink().is_none());
    assert!(!lab::netns_exists(&spec.ext_netns()));
    let w2 = lab.workload(2).unwrap().ip.to_string();
    assert!(ping(&lab, &lab.workload(1).unwrap().netns, &w2, 2));
}

#[test]
fn lab_wiring_matches_calico() {
    let lab = Lab::up(&spec('c', 2, Forwarding::Kernel)).unwrap();
    let node = lab.node_netns();
    for w in lab.workloads() {
        // Workload side: eth0 with the /32, the link-scope gateway and the default route.
        let addrs = ip_json(&w.netns, &["addr", "show", "dev", "eth0"]);
        let info = &addrs[0]["addr_info"];
        assert!(
            info.as_array()
                .unwrap()
                .iter()
                .any(|a| a["local"] == w.ip.to_string()
                    && a["prefixlen"] == 32
                    && a["family"] == "inet"),
            "{}: {info}",
            w.netns
        );
        assert_eq!(addrs[0]["address"], w.mac.as_str());
        let routes = ip_json(&w.netns, &["route", "show"]);
        assert!(has_route(&routes, "169.254.1.1", "eth0", None), "{routes}");
        assert!(
            has_route(&routes, "default", "eth0", Some("169.254.1.1")),
            "{routes}"
        );

        // Host side: cali + 11 hex, ee:ee:ee:ee:ee:ee, up, with a /32 route (kernel mode).
        assert!(w.host_interface.starts_with("cali") && w.host_interface.len() == 15);
        let link = ip_json(&node, &["link", "show", "dev", &w.host_interface]);
        assert_eq!(link[0]["address"], HOST_SIDE_MAC);
        assert!(link[0]["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "UP"));
        let node_routes = ip_json(&node, &["route", "show"]);
        assert!(
            has_route(&node_routes, &w.ip.to_string(), &w.host_interface, None),
            "{node_routes}"
        );

        // Offloads off on both ends, so AF_XDP never sees partial checksums.
        for (ns, dev) in [
            (node.as_str(), w.host_interface.as_str()),
            (w.netns.as_str(), "eth0"),
        ] {
            let out = lab.exec(ns, &["ethtool", "-k", dev]).unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            for feature in [
                "tx-checksumming: off",
                "tcp-segmentation-offload: off",
                "generic-segmentation-offload: off",
                "generic-receive-offload: off",
            ] {
                assert!(text.contains(feature), "{ns}/{dev} lacks {feature}");
            }
        }
    }
    // Uplink: eth0 10.99.0.1/24 in the node, default via ext; ext routes the pool back.
    let node_routes = ip_json(&node, &["route", "show"]);
    assert!(
        has_route(&node_routes, "default", "eth0", Some("10.99.0.2")),
        "{node_routes}"
    );
    let ext = lab.uplink().unwrap();
    let ext_routes = ip_json(&ext.ext_netns, &["route", "show"]);
    assert!(
        has_route(&ext_routes, "192.168.0.0/16", "eth0", Some("10.99.0.1")),
        "{ext_routes}"
    );
}

#[test]
fn down_removes_every_namespace_and_is_idempotent() {
    let spec = spec('d', 3, Forwarding::Brindle);
    let lab = Lab::up(&spec).unwrap();
    let names = spec.netns_names();
    assert_eq!(names.len(), 5, "3 workloads + ext + node: {names:?}");
    for ns in &names {
        assert!(lab::netns_exists(ns), "{ns} missing after up");
    }
    lab.down().unwrap();
    for ns in &names {
        assert!(!lab::netns_exists(ns), "{ns} left behind by down");
    }
    lab.down().unwrap();
}

#[test]
fn dropping_a_lab_takes_it_down() {
    let spec = spec('r', 1, Forwarding::Brindle);
    drop(Lab::up(&spec).unwrap());
    for ns in spec.netns_names() {
        assert!(!lab::netns_exists(&ns), "{ns} left behind by drop");
    }
}

#[test]
fn brindle_lab_does_not_forward_without_a_vrouter() {
    let lab = Lab::up(&spec('b', 2, Forwarding::Brindle)).unwrap();
    let out = lab
        .exec(&lab.node_netns(), &["sysctl", "-n", "net.ipv4.ip_forward"])
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    let w1 = lab.workload(1).unwrap();
    let w2 = lab.workload(2).unwrap();
    // Nothing of the kernel dataplane: no proxy ARP, no /32 routes to workloads.
    let node = lab.node_netns();
    let key = format!("net.ipv4.conf.{}.proxy_arp", w1.host_interface);
    let out = lab.exec(&node, &["sysctl", "-n", &key]).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    let routes = ip_json(&node, &["route", "show"]);
    assert!(
        !has_route(&routes, &w1.ip.to_string(), &w1.host_interface, None),
        "{routes}"
    );
    assert!(
        !ping(&lab, &w1.netns, &w2.ip.to_string(), 2),
        "brindle lab forwarded w1->w2 with no vRouter running"
    );
}

#[test]
fn up_refuses_an_existing_namespace_and_leaves_it_alone() {
    let spec = spec('e', 1, Forwarding::Brindle);
    let taken = spec.workload_netns(1);
    lab::cmd::run(&["ip", "netns", "add", &taken], Duration::from_secs(10)).unwrap();
    let result = Lab::up(&spec);
    let still_there = lab::netns_exists(&taken);
    let _ = lab::cmd::run(&["ip", "netns", "del", &taken], Duration::from_secs(10));
    let err = result.unwrap_err();
    assert!(err.to_string().contains(&taken), "{err}");
    assert!(still_there, "up deleted a namespace it did not create");
    assert!(!lab::netns_exists(&spec.node_netns()));
}
