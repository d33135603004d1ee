use super::*;
use lab::felix::ACCEPT_MARK;

const AB: &str = "This is ApacheBench, Version 2.3 <$Revision: 1903618 $>\n\
Server Software:        nginx/1.22.1\nDocument Length:        612 bytes\n\n\
Concurrency Level:      8\nTime taken for tests:   0.123 seconds\n\
Complete requests:      1000\nFailed requests:        2\n   (Connect: 0, Receive: 0, Length: 2, Exceptions: 0)\n\
Non-2xx responses:      3\nTotal transferred:      845000 bytes\n\
Requests per second:    8130.08 [#/sec] (mean)\nTime per request:       0.984 [ms] (mean)\n\n\
Percentage of the requests served within a certain time (ms)\n  50%      1\n  66%      1\n  \
90%      2\n  95%      2\n  98%      3\n  99%      4\n 100%      9 (longest request)\n";

const WRK: &str = "Running 1s test @ http://192.168.0.2:8080/index.html\n  1 threads and 8 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   150.00us  300.00us   5.00ms   95.00%\n\
Req/Sec    40.00k     1.00k   42.00k    80.00%\n  Latency Distribution\n     50%  119.00us\n     75%  150.00us\n\
 90%  200.00us\n     99%    3.88ms\n  40333 requests in 1.00s, 32.00MB read\n\
  Socket errors: connect 0, read 1, write 0, timeout 2\n  Non-2xx or 3xx responses: 4\n\
Requests/sec:  40333.12\nTransfer/sec:     32.00MB\n";

#[test]
fn ab_output_gives_rate_counts_and_percentiles() {
    let m = parse_ab(AB).unwrap();
    assert_eq!(m["requests_per_s"], 8130.08);
    assert_eq!(m["complete_requests"], 1000.0);
    assert_eq!(m["failed_requests"], 5.0, "failed + non-2xx");
    assert_eq!(m["p50_ms"], 1.0);
    assert_eq!(m["p99_ms"], 4.0);
    let err = parse_ab("ab: invalid URL").unwrap_err().to_string();
    assert!(
        err.contains("ab") && err.contains("Requests per second"),
        "{err}"
    );
}

#[test]
fn wrk_output_gives_rate_requests_errors_and_percentiles_in_ms() {
    let m = parse_wrk(WRK).unwrap();
    assert_eq!(m["requests_per_s"], 40333.12);
    assert_eq!(m["requests"], 40333.0);
    assert_eq!(m["errors"], 7.0, "socket errors + non-2xx/3xx");
    assert!((m["p50_ms"] - 0.119).abs() < 1e-9, "{m:?}");
    assert!((m["p99_ms"] - 3.88).abs() < 1e-9, "{m:?}");
    assert!((wrk_duration_ms("2.01s").unwrap() - 2010.0).abs() < 1e-9);
    assert_eq!(wrk_duration_ms("1.00m"), Some(60_000.0));
    assert_eq!(wrk_duration_ms("3parsecs"), None);
    assert_eq!(wrk_duration_ms(""), None);
    assert!(parse_wrk("unable to connect to 192.168.0.2:8080").is_err());
}

#[test]
fn iperf_tcp_json_gives_received_gbits_and_retransmits() {
    let json = r#"{"start":{},"end":{"sum_sent":{"bits_per_second":5.1e9,"retransmits":3},
        "sum_received":{"bits_per_second":5.0e9}}}"#;
    let m = parse_iperf_tcp(json).unwrap();
    assert_eq!(m["gbit_per_s"], 5.0);
    assert_eq!(m["retransmits"], 3.0);
    let err = parse_iperf_tcp(r#"{"start":{},"end":{},"error":"unable to connect to server"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unable to connect"), "{err}");
    assert!(parse_iperf_tcp("iperf3: error").is_err());
}

#[test]
fn iperf_udp_json_gives_delivered_rate_and_loss() {
    // iperf3 3.12: end.sum holds the sender's rate and the server's loss figures.
    let json = r#"{"end":{"sum":{"bits_per_second":1.0e9,"packets":1000,"lost_packets":100,
        "lost_percent":10.0,"jitter_ms":0.01}}}"#;
    let m = parse_iperf_udp(json).unwrap();
    assert!((m["gbit_per_s"] - 0.9).abs() < 1e-9, "{m:?}");
    assert_eq!(m["lost_percent"], 10.0);
    assert_eq!(m["offered_gbit_per_s"], 1.0);
    assert_eq!(m["jitter_ms"], 0.01);
    // Newer iperf3: the receiver's own sum.
    let json = r#"{"end":{"sum_sent":{"bits_per_second":1.0e9},"sum_received":
        {"bits_per_second":0.8e9,"packets":500,"lost_packets":0}}}"#;
    let m = parse_iperf_udp(json).unwrap();
    assert_eq!(m["gbit_per_s"], 0.8);
    assert_eq!(m["lost_percent"], 0.0);
    assert!(parse_iperf_udp(r#"{"end":{"sum":{"bits_per_second":1.0}}}"#).is_err());
}

#[test]
fn ping_metrics_need_replies() {
    let mut l = crate::stats::Latencies::new();
    assert!(ping_metrics(&l, 10).is_err());
    for us in [10u64, 20, 30, 40] {
        l.record(Duration::from_micros(us));
    }
    let m = ping_metrics(&l, 10).unwrap();
    assert!((m["rtt_p50_us"] - 20.0).abs() < 0.1, "{m:?}");
    assert!((m["rtt_p99_us"] - 40.0).abs() < 0.1, "{m:?}");
    assert_eq!(m["replies"], 4.0);
}

#[test]
fn ratios_are_brindle_over_kernel_where_both_measured() {
    let kernel = Metrics::from([("a".into(), 2.0), ("b".into(), 0.0), ("c".into(), 1.0)]);
    let brindle = Metrics::from([("a".into(), 3.0), ("b".into(), 1.0)]);
    assert_eq!(
        ratios(&kernel, &brindle),
        Metrics::from([("a".into(), 1.5)])
    );
}

fn report() -> ScenariosReport {
    let kernel = Metrics::from([("gbit_per_s".into(), 4.0)]);
    let brindle = Metrics::from([("gbit_per_s".into(), 5.0)]);
    ScenariosReport {
        quick: true,
        ncpus: 2,
        node_mode: "interrupt".into(),
        pings: 50,
        iperf_secs: 1,
        udp_offered_mbit: 1000,
        udp_datagram_bytes: UDP_DATAGRAM_BYTES,
        http_requests: 500,
        http_concurrency: 8,
        http_secs: 1,
        http_file_bytes: HTTP_FILE_BYTES,
        kernel_ipip_method: None,
        labs: vec![
            LabRun::new(LabKind::L2, Wiring::BrindleCni),
            LabRun::new(LabKind::Ipip, Wiring::Lab),
        ],
        load_average_before: None,
        load_average_after: None,
        elapsed_secs: 1.0,
        scenarios: vec![
            ScenarioResult {
                lab: LabKind::L2,
                path: PathKind::NodeToNode,
                test: TestKind::IperfTcp,
                ratios: ratios(&kernel, &brindle),
                kernel: Some(kernel),
                brindle: Some(brindle),
                kernel_error: None,
                brindle_error: None,
            },
            ScenarioResult {
                lab: LabKind::Ipip,
                path: PathKind::PodToPod,
                test: TestKind::Ping,
                ratios: Metrics::new(),
                kernel: None,
                brindle: None,
                kernel_error: Some("lab: boom".into()),
                brindle_error: None,
            },
        ],
    }
}

#[test]
fn json_field_names_are_stable() {
    let json = serde_json::to_value(report()).unwrap();
    let s = &json["scenarios"][0];
    assert_eq!(s["lab"], "l2");
    assert_eq!(s["path"], "node-to-node");
    assert_eq!(s["test"], "iperf-tcp");
    assert_eq!(s["kernel"]["gbit_per_s"], 4.0);
    assert_eq!(s["brindle"]["gbit_per_s"], 5.0);
    assert_eq!(s["ratios"]["gbit_per_s"], 1.25);
    assert_eq!(json["scenarios"][1]["kernel_error"], "lab: boom");
    assert_eq!(json["labs"][0]["lab"], "l2");
    assert_eq!(json["labs"][0]["wiring"], "brindle-cni");
    assert_eq!(json["labs"][0]["ipip_mode"], "Never");
    assert_eq!(json["labs"][1]["wiring"], "lab");
    assert_eq!(json["labs"][1]["ipip_mode"], serde_json::Value::Null);
    assert_eq!(json["labs"][1]["workload_mtu"], 1480);
    for field in [
        "quick",
        "ncpus",
        "node_mode",
        "pings",
        "iperf_secs",
        "udp_offered_mbit",
        "http_requests",
        "http_concurrency",
        "http_secs",
    ] {
        assert!(json.get(field).is_some(), "{field}");
    }
}

#[test]
fn markdown_rows_are_scenario_metric_brindle_kernel_ratio() {
    let md = markdown(&report());
    assert!(
        md.contains("| l2 node-to-node iperf-tcp | gbit_per_s ↑ | 5.000 | 4.000 | 1.25 |"),
        "{md}"
    );
    assert!(
        md.contains("| ipip pod-to-pod ping | rtt_p50_us ↓ | - | - | - |"),
        "{md}"
    );
    assert!(
        md.contains("- ipip pod-to-pod ping (kernel): lab: boom"),
        "{md}"
    );
    assert!(
        md.contains("- l2 (wiring `brindle-cni`): brindle-node in agent mode"),
        "{md}"
    );
    assert!(
        md.contains("- ipip (wiring `lab`): brindle-node in file mode"),
        "{md}"
    );
}

#[test]
fn suites_and_options_are_bounded_and_parsed() {
    let opts = ScenarioOptions::defaults("b".into(), "w".into(), true);
    assert!(opts.validate().is_ok());
    let all = opts.scenarios();
    // one-node: 7 pod-to-pod tests and 3 pod-to-node; l2: 7 pod-to-pod, 3 pod-to-node
    // (to the other node) and 3 node-to-node; ipip: 5.
    assert_eq!(all.len(), 10 + 13 + 5);
    for lab in LabKind::ALL {
        for test in [TestKind::IperfTcp4, TestKind::IperfUdpHog] {
            assert!(
                all.iter()
                    .any(|s| s.lab == lab && s.path == PathKind::PodToPod && s.test == test),
                "{} pod-to-pod {}",
                lab.name(),
                test.name()
            );
        }
    }
    assert_eq!(TestKind::parse("iperf-udp-hog"), Ok(TestKind::IperfUdpHog));
    // The JSON carries the serde name, which the report parses back with `parse`.
    for test in TestKind::ALL {
        let json = serde_json::to_value(test).unwrap();
        assert_eq!(json, test.name(), "{test:?}");
        assert_eq!(TestKind::parse(json.as_str().unwrap()), Ok(test));
    }
    assert_eq!(
        opts.wiring,
        Wiring::BrindleCni,
        "agent mode and brindle-cni by default"
    );
    assert!(all.contains(&Scenario {
        lab: LabKind::L2,
        path: PathKind::NodeToNode,
        test: TestKind::IperfUdp
    }));
    let bad = ScenarioOptions {
        pings: 0,
        ..opts.clone()
    };
    assert!(bad.validate().unwrap_err().to_string().contains("pings"));
    let bad = ScenarioOptions {
        node_mode: "busy".into(),
        ..opts.clone()
    };
    assert!(bad
        .validate()
        .unwrap_err()
        .to_string()
        .contains("node_mode"));
    assert_eq!(LabKind::parse("ipip"), Ok(LabKind::Ipip));
    assert!(LabKind::parse("l3").unwrap_err().contains("l3"));
    assert_eq!(TestKind::parse("http-wrk"), Ok(TestKind::HttpWrk));
    let only_ping = ScenarioOptions {
        tests: vec![TestKind::Ping],
        ..opts
    };
    assert!(only_ping
        .scenarios()
        .iter()
        .all(|s| s.test == TestKind::Ping));
}

#[test]
fn agent_nodes_run_as_calico_node_on_the_labs_shared_store() {
    let paths = AgentPaths {
        store: "/w/l2-brindle/store.redb".into(),
        control_socket: "/w/l2-brindle/node2.sock".into(),
        tap_dir: None,
    };
    let env: BTreeMap<String, String> = agent_env(LabKind::Ipip, "sciba1n2", "interrupt", &paths)
        .into_iter()
        .collect();
    for (key, value) in [
        ("NODENAME", "sciba1n2"),
        ("IP_AUTODETECTION_METHOD", "interface=eth0"),
        ("CALICO_IPV4POOL_IPIP", "CrossSubnet"),
        ("FELIX_DEFAULTENDPOINTTOHOSTACTION", "Accept"),
        ("BRINDLE_MODE", "interrupt"),
        ("BRINDLE_CONTROL_SOCKET", "/w/l2-brindle/node2.sock"),
        ("DATASTORE_TYPE", "embedded"),
        ("BRINDLE_EMBEDDED_PATH", "/w/l2-brindle/store.redb"),
    ] {
        assert_eq!(
            env.get(key).map(String::as_str),
            Some(value),
            "{key}: {env:?}"
        );
    }
    let l2: BTreeMap<String, String> = agent_env(LabKind::L2, "n", "poll", &paths)
        .into_iter()
        .collect();
    assert_eq!(l2["CALICO_IPV4POOL_IPIP"], "Never");
    assert_eq!(l2["BRINDLE_MODE"], "poll");
    // brindle-cni reads the same store.
    let cni: Vec<(String, String)> = datastore_env(&paths.store);
    assert!(
        cni.iter().all(|kv| env.get(&kv.0) == Some(&kv.1)),
        "{cni:?}"
    );
}

#[test]
fn every_workload_joins_one_network_with_the_pools_mtu() {
    for (lab, mtu) in [
        (LabKind::OneNode, 1500),
        (LabKind::L2, 1500),
        (LabKind::Ipip, 1480),
    ] {
        let conf: serde_json::Value =
            serde_json::from_str(&scenario_netconf(lab, "scoba1n1", None)).unwrap();
        assert_eq!(conf["name"], SCENARIO_NETWORK, "{conf}");
        assert_eq!(conf["type"], "brindle-cni", "{conf}");
        assert_eq!(conf["nodename"], "scoba1n1", "{conf}");
        assert_eq!(conf["mtu"], mtu, "{lab:?}: {conf}");
        assert_eq!(conf["ipam"]["type"], "brindle-ipam", "{conf}");
        assert_eq!(
            conf["ipam"]["ipv4_pools"],
            serde_json::json!([]),
            "any pool: {conf}"
        );
    }
    assert_eq!(
        scenario_netconf(LabKind::L2, "a", None),
        scenario_netconf(LabKind::OneNode, "a", None)
    );
    assert_eq!(Wiring::parse("brindle-cni"), Ok(Wiring::BrindleCni));
    assert_eq!(Wiring::parse("lab"), Ok(Wiring::Lab));
    assert!(Wiring::parse("file").unwrap_err().contains("\"file\""));
}

#[test]
fn cni_results_give_the_workload_address() {
    let result = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/x"}],
        "ips":[{"address":"192.168.12.65/32","interface":0}]}"#;
    assert_eq!(
        cni_result_address(result).unwrap(),
        Ipv4Addr::new(192, 168, 12, 65)
    );
    assert!(cni_result_address(r#"{"ips":[]}"#)
        .unwrap_err()
        .to_string()
        .contains("ips[0].address"));
    let err = cni_result_address(r#"{"ips":[{"address":"fd00::1/128"}]}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("fd00::1/128"), "{err}");
    assert!(cni_result_address("CNI error").is_err());
}

#[test]
fn lab_names_fit_and_start_with_sc() {
    let name = lab_name(LabKind::Ipip, Forwarding::Brindle, &lab::run::run_tag(2));
    assert!(name.starts_with("scib"), "{name}");
    assert!(multi_spec(LabKind::Ipip, name).validate().is_ok());
    assert_eq!(multi_spec(LabKind::Ipip, "x".into()).routed_nodes, 1);
}

#[test]
fn routed_nodes_get_a_route_to_the_other_subnet() {
    let spec = multi_spec(LabKind::Ipip, "t".into());
    let toml = subnet_route_toml(&spec, 1, 2);
    assert!(
        toml.contains("prefix = \"10.97.0.0/24\"") && toml.contains("via = \"10.98.0.254\""),
        "{toml}"
    );
    let toml = subnet_route_toml(&spec, 2, 1);
    assert!(
        toml.contains("prefix = \"10.98.0.0/24\"") && toml.contains("via = \"10.97.0.254\""),
        "{toml}"
    );
    assert_eq!(
        subnet_route_toml(&multi_spec(LabKind::L2, "t".into()), 1, 2),
        ""
    );
}

#[test]
fn nginx_runs_in_the_foreground_with_everything_in_its_dir() {
    let conf = nginx_config(Path::new("/tmp/x"), Ipv4Addr::new(192, 168, 0, 2));
    for needle in [
        "daemon off;",
        "pid /tmp/x/nginx.pid;",
        "access_log off;",
        "listen 192.168.0.2:8080;",
        "root /tmp/x/www;",
    ] {
        assert!(conf.contains(needle), "{needle}: {conf}");
    }
}

fn interfaces() -> Vec<String> {
    vec!["cali0123456789a".into(), "calib0c1d2e3f40".into()]
}

/// The rules of `chain`, in order, as `-A <chain> ...` lines.
fn chain_rules(rules: &str, chain: &str) -> Vec<String> {
    let prefix = format!("-A {chain} ");
    rules
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
        .collect()
}

#[test]
fn to_workload_chains_track_then_admit_the_networks_members_else_drop() {
    let rules = kernel_policy_iptables(&interfaces());
    let mark = format!("{ACCEPT_MARK}/{ACCEPT_MARK}");
    for i in interfaces() {
        let tw = chain_rules(&rules, &to_workload_chain(&i));
        assert_eq!(
            tw,
            vec![
                "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".to_string(),
                "-m conntrack --ctstate INVALID -j DROP".into(),
                format!("-j MARK --set-xmark 0x0/{ACCEPT_MARK}"),
                "-j cali-pri-scnet".into(),
                format!("-m mark --mark {mark} -j RETURN"),
                format!("-m comment --comment {NO_PROFILE_DROP_COMMENT} -j DROP"),
            ]
        );
        // Egress is allowed: the same shape through the egress profile.
        let fw = chain_rules(&rules, &from_workload_chain(&i));
        assert_eq!(fw[3], "-j cali-pro-scnet");
        assert!(
            rules.contains(&format!("-A cali-FORWARD -o {i} -j cali-tw-{i}\n")),
            "{rules}"
        );
        assert!(
            rules.contains(&format!("-A cali-FORWARD -i {i} -j cali-fw-{i}\n")),
            "{rules}"
        );
    }
    let pri = chain_rules(&rules, "cali-pri-scnet");
    assert_eq!(pri.len(), 2, "{pri:?}");
    assert!(
        pri[0].starts_with("-m set --match-set cali40s:scnet src "),
        "{pri:?}"
    );
    assert!(
        pri[0].ends_with(&format!("-j MARK --set-xmark {mark}")),
        "{pri:?}"
    );
    assert_eq!(
        chain_rules(&rules, "cali-pro-scnet")[0],
        format!("-j MARK --set-xmark {mark}")
    );
    // Every chain is declared once, and the restore file is one committed table.
    for chain in kernel_policy_chains(&interfaces()) {
        assert_eq!(
            rules.matches(&format!(":{chain} - [0:0]\n")).count(),
            1,
            "{chain}"
        );
    }
    assert!(rules.starts_with("*filter\n") && rules.ends_with("COMMIT\n"));
}

#[test]
fn workload_to_host_is_accepted_after_egress_and_host_to_workload_returns_as_in_felix() {
    let rules = kernel_policy_iptables(&interfaces());
    for builtin in ["FORWARD", "INPUT", "OUTPUT"] {
        assert_eq!(
            chain_rules(&rules, builtin),
            vec![format!("-j cali-{builtin}")]
        );
    }
    assert_eq!(
        chain_rules(&rules, "cali-INPUT"),
        vec!["-i cali+ -j cali-wl-to-host".to_string()]
    );
    let to_host = chain_rules(&rules, "cali-wl-to-host");
    let [i1, i2] = [&interfaces()[0], &interfaces()[1]];
    assert_eq!(to_host[1], format!("-i {i1} -j cali-fw-{i1}"));
    assert_eq!(to_host[2], format!("-i {i2} -j cali-fw-{i2}"));
    assert_eq!(
        to_host.last().map(String::as_str),
        Some(format!("-m comment --comment {TO_HOST_ACCEPT_COMMENT} -j ACCEPT").as_str())
    );
    assert_eq!(
        chain_rules(&rules, "cali-OUTPUT"),
        vec!["-o cali+ -j RETURN".to_string()]
    );
}

#[test]
fn rule_counters_are_read_by_comment() {
    let listing = "Chain cali-pri-scnet (2 references)\n    pkts      bytes target     prot opt in     out     source               destination\n       \
                   7      588 MARK       all  --  *      *       0.0.0.0/0            0.0.0.0/0            match-set cali40s:scnet src /* scnet-ingress-from-members */ MARK or 0x10000\n       \
                   7      588 RETURN     all  --  *      *       0.0.0.0/0            0.0.0.0/0            mark match 0x10000/0x10000\n";
    assert_eq!(packets_of_rule(listing, MEMBER_ALLOW_COMMENT), Some(7));
    assert_eq!(packets_of_rule(listing, NO_PROFILE_DROP_COMMENT), None);
    assert_eq!(
        packets_of_rule(
            "garbage /* scnet-ingress-from-members */",
            MEMBER_ALLOW_COMMENT
        ),
        None
    );
}

#[test]
fn the_kernel_enforces_what_brindles_side_enforces() {
    assert_eq!(
        KernelPolicy::for_wiring(Wiring::BrindleCni),
        KernelPolicy::Iptables
    );
    assert_eq!(KernelPolicy::for_wiring(Wiring::Lab), KernelPolicy::None);
    let run =
        serde_json::to_value(LabRun::new(LabKind::L2, Wiring::BrindleCni)).unwrap_or_default();
    assert_eq!(run["kernel_policy"], "iptables");
}

/// Root: installs the rules into a namespace of its own, sees them and the ipset there,
/// then sees both gone once they are dropped.
#[test]
fn kernel_rules_install_into_the_node_and_leave_with_it() {
    let ns = format!("sct{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("{ns}-rules"));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    cmd::run(&["ip", "netns", "add", &ns], cmd::CONFIG_TIMEOUT).expect("netns add");
    let listing = |args: &[&str]| {
        let mut full = vec!["ip", "netns", "exec", ns.as_str()];
        full.extend_from_slice(args);
        String::from_utf8_lossy(
            &cmd::run_unchecked(&full, cmd::CONFIG_TIMEOUT)
                .expect("runs")
                .stdout,
        )
        .into_owned()
    };
    let nodes = vec![PolicedNode {
        netns: ns.clone(),
        workloads: vec![
            ("calitest0001".into(), Ipv4Addr::new(192, 168, 7, 1)),
            ("calitest0002".into(), Ipv4Addr::new(192, 168, 7, 2)),
        ],
    }];
    let installed = KernelPolicyRules::install(nodes, &dir);
    let rules = listing(&[KERNEL_IPTABLES.iptables(), "-S"]);
    let members = listing(&["ipset", "list", &ipset_name(SCENARIO_NETWORK)]);
    drop(installed);
    let rules_after = listing(&[KERNEL_IPTABLES.iptables(), "-S"]);
    let sets_after = listing(&["ipset", "list", "-n"]);
    let _ = cmd::run_unchecked(&["ip", "netns", "del", &ns], cmd::CONFIG_TIMEOUT);
    let _ = std::fs::remove_dir_all(&dir);

    for line in [
        "-A FORWARD -j cali-FORWARD",
        "-A cali-OUTPUT -o cali+ -j RETURN",
        "-A cali-tw-calitest0002 -j cali-pri-scnet",
        "-N cali-pri-scnet",
    ] {
        assert!(rules.contains(line), "{line} not in:\n{rules}");
    }
    assert!(
        members.contains("192.168.7.1") && members.contains("192.168.7.2"),
        "{members}"
    );
    assert!(
        !rules_after.contains("cali-"),
        "left behind:\n{rules_after}"
    );
    assert!(!sets_after.contains("cali40s"), "left behind: {sets_after}");
}

#[test]
fn the_tap_wiring_asks_brindle_cni_for_taps_and_tells_the_node_where_they_are_registered() {
    let dir = Path::new("/w/one-node-brindle/taps");
    let netconf: serde_json::Value =
        serde_json::from_str(&scenario_netconf(LabKind::OneNode, "n1", Some(dir))).unwrap();
    assert_eq!(netconf["workload_interface"], "tap");
    assert_eq!(netconf["tap_dir"], "/w/one-node-brindle/taps");
    let paths = AgentPaths {
        store: "/w/store.redb".into(),
        control_socket: "/w/node1.sock".into(),
        tap_dir: Some(dir.to_owned()),
    };
    let env: BTreeMap<String, String> = agent_env(LabKind::OneNode, "n1", "interrupt", &paths)
        .into_iter()
        .collect();
    assert_eq!(env["BRINDLE_TAP_DIR"], "/w/one-node-brindle/taps");
    assert_eq!(env["BRINDLE_HOST_PORT"], "tap");
    assert!(Wiring::BrindleCniTap.is_agent() && !Wiring::LabTap.is_agent());
    for w in Wiring::ALL {
        assert_eq!(Wiring::parse(w.name()), Ok(w));
    }
}
