use super::*;

fn bench_probe(port: u16) -> Probe {
    Probe {
        protocol: RuleProtocol::Udp,
        src: Ipv4Addr::new(192, 168, 0, 1),
        src_in_source_network: true,
        dst_port: port,
    }
}

#[test]
fn only_the_last_rule_admits_the_benchmark_traffic() {
    for base in [1024, 1500, 5201, 29_990, 30_000, 64_000, 65535 - PORT_SPAN] {
        let rules = bench_rules(1000, base).unwrap();
        assert_eq!(rules.len(), 1000);
        let (allow, others) = rules.split_last().unwrap();
        for port in base..=base + PORT_SPAN {
            let probe = bench_probe(port);
            let admitted: Vec<_> = others.iter().filter(|r| r.admits(&probe)).collect();
            assert!(admitted.is_empty(), "base {base} port {port}: {admitted:?}");
            // The allowed range, and the denied port just past it.
            assert_eq!(
                allow.admits(&probe),
                port < base + PORT_SPAN,
                "base {base} port {port}"
            );
        }
        // Not from outside the source network, not TCP.
        let mut p = bench_probe(base);
        p.src_in_source_network = false;
        assert!(!allow.admits(&p));
        p = bench_probe(base);
        p.protocol = RuleProtocol::Tcp;
        assert!(!allow.admits(&p));
    }
}

#[test]
fn the_non_matching_rules_vary_protocol_source_and_ports() {
    let rules = bench_rules(1000, 5201).unwrap();
    let others = &rules[..999];
    assert!(others.iter().any(|r| r.protocol == RuleProtocol::Tcp));
    assert!(others.iter().any(|r| r.protocol == RuleProtocol::Udp));
    assert!(others
        .iter()
        .any(|r| matches!(r.source, RuleSource::Net { .. })));
    assert!(others
        .iter()
        .any(|r| r.source == RuleSource::HasLabel(OTHER_LABEL)));
    assert!(others.iter().any(|r| r.source == RuleSource::Any));
    assert!(others.iter().any(|r| r.ports.0 < r.ports.1));
    // Each would admit some packet: a rule that could never match proves nothing.
    let r = &others[1];
    let probe = Probe {
        protocol: r.protocol,
        src: Ipv4Addr::new(10, 0, 0, 1),
        src_in_source_network: false,
        dst_port: r.ports.0,
    };
    assert_eq!(r.source, RuleSource::HasLabel(OTHER_LABEL));
    assert!(!r.admits(&probe), "nobody carries {OTHER_LABEL}");
    let r = &others[0];
    assert!(
        r.admits(&Probe {
            protocol: RuleProtocol::Tcp,
            dst_port: r.ports.0,
            ..probe
        }),
        "{r:?}"
    );
}

#[test]
fn bad_counts_and_ports_name_the_field() {
    let e = bench_rules(0, 5201).unwrap_err().to_string();
    assert!(e.contains("rules 0"), "{e}");
    let e = bench_rules(10, 80).unwrap_err().to_string();
    assert!(e.contains("port 80"), "{e}");
    let e = bench_rules(10, 65000).unwrap_err().to_string();
    assert!(e.contains("port 65000"), "{e}");
}

#[test]
fn the_policy_yaml_has_every_rule_in_order() {
    let rules = bench_rules(1000, 5201).unwrap();
    let y = policy_yaml(&rules);
    assert_eq!(y.matches("- action: Allow").count(), 1000);
    assert!(y.contains("kind: GlobalNetworkPolicy"));
    assert!(y.contains("  selector: has(polsink)\n"));
    assert!(y.contains("nets: [10.0.0.0/24]"));
    assert!(y.contains("selector: has(polother)"));
    assert!(
        y.ends_with(
            "  - action: Allow\n    protocol: UDP\n    source:\n      selector: has(polsrc)\n    \
         destination:\n      ports: [\"5201:6224\"]\n"
        ),
        "{}",
        &y[y.len() - 200..]
    );
}

#[test]
fn the_iptables_follow_calicos_structure() {
    let rules = bench_rules(1000, 5201).unwrap();
    let t = iptables_rules(&rules, "cali1", "cali2");
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.first(), Some(&"*filter"));
    assert_eq!(lines.last(), Some(&"COMMIT"));
    // The to-workload chain: conntrack first, then the policy, then the end-of-tier drop.
    let tw: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("-A cali-tw-cali2 "))
        .collect();
    assert!(
        tw[0].contains("--ctstate RELATED,ESTABLISHED -j ACCEPT"),
        "{tw:?}"
    );
    assert!(
        tw.iter()
            .position(|l| l.ends_with("-j cali-pi-polbench-1000"))
            > Some(0)
    );
    assert!(tw.last().unwrap().ends_with("-j DROP") && tw.last().unwrap().contains(END_OF_TIER));
    // Two lines per rule (set the accept mark, return on it), the allowing one last.
    let pi: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("-A cali-pi-"))
        .collect();
    assert_eq!(pi.len(), 2000);
    assert_eq!(
        pi[1998],
        "-A cali-pi-polbench-1000 -p udp -m udp -m set --match-set cali40s:polsrc src -m multiport \
         --dports 5201:6224 -j MARK --set-xmark 0x10000/0x10000"
    );
    assert_eq!(
        pi[1999],
        "-A cali-pi-polbench-1000 -m mark --mark 0x10000/0x10000 -j RETURN"
    );
    assert!(
        pi[0].contains("-p tcp -m tcp -s 10.0.0.0/24 --dport 1024 "),
        "{}",
        pi[0]
    );
    assert!(pi
        .iter()
        .any(|l| l.contains("--match-set cali40s:polother src")));
    assert!(lines.contains(&"-A FORWARD -j cali-FORWARD"));
}

#[test]
fn flows_walk_source_ports_then_destination_ports() {
    assert_eq!(flow_ports(0, FEW_FLOWS, 5201), (1024, 5201));
    assert_eq!(flow_ports(15, FEW_FLOWS, 5201), (1039, 5201));
    assert_eq!(
        flow_ports(16, FEW_FLOWS, 5201),
        (1024, 5201),
        "few flows repeat"
    );
    let n = u64::from(SOURCE_PORTS);
    assert_eq!(flow_ports(n - 1, all_flows(), 5201), (65535, 5201));
    assert_eq!(flow_ports(n, all_flows(), 5201), (1024, 5202));
    assert_eq!(
        flow_ports(all_flows() - 1, all_flows(), 5201),
        (65535, 5201 + PORT_SPAN - 1)
    );
    assert_eq!(flow_ports(all_flows(), all_flows(), 5201), (1024, 5201));
    assert_eq!(
        flow_ports(7, 0, 5201),
        (1024, 5201),
        "zero flows is one flow, no panic"
    );
}

#[test]
fn datagrams_carry_lengths_addresses_and_ports() {
    let mut d = build_datagram(
        Ipv4Addr::new(192, 168, 0, 1),
        Ipv4Addr::new(192, 168, 0, 2),
        18,
    );
    set_ports(&mut d, (1024, 5201));
    assert_eq!(d.len(), 46);
    assert_eq!(d[0], 0x45);
    assert_eq!(u16::from_be_bytes([d[2], d[3]]), 46);
    assert_eq!(d[9], 17);
    assert_eq!(&d[12..20], &[192, 168, 0, 1, 192, 168, 0, 2]);
    assert_eq!(u16::from_be_bytes([d[20], d[21]]), 1024);
    assert_eq!(u16::from_be_bytes([d[22], d[23]]), 5201);
    assert_eq!(u16::from_be_bytes([d[24], d[25]]), 26);
    assert_eq!(&d[26..28], &[0, 0], "no UDP checksum");
}

fn measured(delivered: f64) -> Measured {
    Measured {
        pps_offered: delivered * 2.0,
        pps_delivered: delivered,
        ..Measured::default()
    }
}

#[test]
fn ratios_are_brindle_medians_over_kernel_medians() {
    let k = KindResult::new(
        "new_flows",
        7,
        vec![measured(100.0), measured(300.0), measured(200.0)],
        vec![measured(1000.0), measured(900.0), measured(5000.0)],
    );
    assert_eq!(k.kernel.pps_delivered, Some(200.0));
    assert_eq!(k.brindle.pps_delivered, Some(1000.0));
    assert_eq!(k.ratio_delivered, Some(5.0));
    assert_eq!(k.ratio_offered, Some(5.0));
    assert_eq!(ratio(Some(1.0), Some(0.0)), None);
    assert_eq!(ratio(Some(f64::NAN), Some(1.0)), None);
    assert_eq!(ratio(None, Some(1.0)), None);
    let k = KindResult::new("established", 16, vec![], vec![measured(1.0)]);
    assert_eq!(k.ratio_delivered, None);
}

#[test]
fn a_proof_holds_only_when_allowed_arrive_and_denied_are_counted_and_stopped() {
    let good = EnforcementProof {
        allowed_sent: 200,
        allowed_delivered: 200,
        denied_sent: 200,
        denied_delivered: 1,
        denied_counted: 200,
    };
    assert!(good.holds());
    assert!(!EnforcementProof {
        allowed_delivered: 0,
        ..good.clone()
    }
    .holds());
    assert!(!EnforcementProof {
        denied_counted: 10,
        ..good.clone()
    }
    .holds());
    assert!(!EnforcementProof {
        denied_delivered: 200,
        ..good.clone()
    }
    .holds());
    assert!(!EnforcementProof::default().holds());
}

#[test]
fn markdown_has_a_row_per_traffic_kind_with_the_ratio() {
    let report = PolicyReport {
        rules: 1000,
        frame_size: 64,
        duration_secs: 1.0,
        rounds: 1,
        node_mode: "poll".into(),
        iptables: IptablesBackend::Legacy,
        generator_cpu: 0,
        node_cpu: 1,
        ncpus: 2,
        loadavg_before: "0.50 0.40 0.30 1/100 1".into(),
        loadavg_after: "0.60 0.40 0.30 1/100 1".into(),
        kernel_conntrack_max: Some(65536),
        kernel_proof: EnforcementProof::default(),
        brindle_proof: EnforcementProof::default(),
        kinds: vec![KindResult::new(
            "established",
            16,
            vec![measured(100.0)],
            vec![measured(550.0)],
        )],
    };
    let md = markdown(&report);
    assert!(
        md.contains("| established | 16 | 200 | 100 | 1100 | 550 | 5.50 |"),
        "{md}"
    );
    assert!(
        md.contains("load average 0.50 0.40 0.30 1/100 1 -> 0.60"),
        "{md}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["kinds"][0]["ratio_delivered"], 5.5);
    assert_eq!(
        json["kinds"][0]["brindle"]["rounds"][0]["pps_delivered"],
        550.0
    );
}

pub(crate) fn sample_sweep() -> RulesSweepReport {
    let point = |rules: usize, kernel: f64, brindle: f64| RulesSweepPoint {
        rules,
        kinds: vec![
            KindResult::new(
                "established",
                FEW_FLOWS,
                vec![measured(kernel)],
                vec![measured(brindle)],
            ),
            KindResult::new(
                "new_flows",
                all_flows(),
                vec![measured(kernel / 2.0)],
                vec![measured(brindle / 2.0)],
            ),
        ],
        kernel_proof: EnforcementProof::default(),
        brindle_proof: EnforcementProof::default(),
    };
    RulesSweepReport {
        rule_counts: vec![10, 10_000],
        frame_size: 64,
        duration_secs: 1.0,
        rounds: 1,
        node_mode: "poll".into(),
        iptables: IptablesBackend::Legacy,
        generator_cpu: GENERATOR_CPU,
        node_cpu: NODE_CPU,
        ncpus: 2,
        loadavg_before: "0.1".into(),
        loadavg_after: "0.2".into(),
        points: vec![
            point(10, 400_000.0, 300_000.0),
            point(10_000, 40_000.0, 280_000.0),
        ],
    }
}

#[test]
fn the_sweep_json_keeps_every_count_with_stable_field_names() {
    let json = serde_json::to_value(sample_sweep()).unwrap();
    assert_eq!(json["rule_counts"], serde_json::json!([10, 10_000]));
    for field in [
        "frame_size",
        "duration_secs",
        "rounds",
        "node_mode",
        "iptables",
        "ncpus",
    ] {
        assert!(json.get(field).is_some(), "{field}");
    }
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[1]["rules"], 10_000);
    let kind = &points[1]["kinds"][0];
    assert_eq!(kind["kind"], "established");
    assert_eq!(kind["kernel"]["pps_delivered"], 40_000.0);
    assert_eq!(kind["brindle"]["pps_delivered"], 280_000.0);
    assert_eq!(kind["ratio_delivered"], 7.0);
    assert_eq!(points[0]["kinds"][1]["kind"], "new_flows");
    assert!(points[0]["kernel_proof"].get("allowed_sent").is_some());
    let md = sweep_markdown(&sample_sweep());
    assert!(
        md.contains("| 10000 | established | 40000 | 280000 | 7.00 |"),
        "{md}"
    );
}

#[test]
fn sweep_counts_are_sorted_bounded_and_unique() {
    assert_eq!(sweep_counts(&[1000, 10, 100]).unwrap(), vec![10, 100, 1000]);
    assert!(sweep_counts(&[]).is_err());
    let err = sweep_counts(&[10, 10]).unwrap_err().to_string();
    assert!(err.contains("rules 10"), "{err}");
    let err = sweep_counts(&[10, 20_000]).unwrap_err().to_string();
    assert!(err.contains("rules 20000"), "{err}");
    assert!(sweep_counts(&[1, 2, 3, 4, 5, 6, 7, 8, 9]).is_err());
}
