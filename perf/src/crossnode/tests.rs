use super::*;

fn measured(pps: f64, p50: Option<f64>, busy: f64) -> SideResult {
    SideResult {
        forwarding: "x",
        lab: "t".into(),
        pps_offered: pps * 2.0,
        pps_delivered: pps,
        rtt_p50_us: p50,
        rtt_p99_us: p50.map(|v| v * 2.0),
        busy_cores: busy,
        pps_per_busy_core: (busy > 0.0).then(|| pps / busy),
        sent: 0,
        received: 0,
        generator_secs: 1.0,
        pings_sent: 0,
        ping_replies: 0,
    }
}

fn cross_side(side: Side, pps: f64, p50: Option<f64>, busy: f64) -> CrossSide {
    CrossSide {
        side: side.name(),
        encap: side.encap,
        kernel_ipip_method: None,
        rounds: vec![measured(pps, p50, busy)],
        measured: measured(pps, p50, busy),
        path: PathEvidence::default(),
    }
}

fn report(sides: [Option<CrossSide>; 4]) -> CrossnodeReport {
    let [kernel_plain, kernel_ipip, brindle_plain, brindle_ipip] = sides;
    let mut report = CrossnodeReport {
        frame_size: 64,
        duration_secs: 3.0,
        pings: 500,
        generator_cpu: 0,
        node_mode: "interrupt".into(),
        node_cpus: [Some(1), Some(1)],
        ncpus: 2,
        rounds: 1,
        kernel_ipip_method: Some(KernelIpip::LwtBpf),
        load_average_before: Some([1.0, 2.0, 3.0]),
        load_average_after: None,
        kernel_plain,
        kernel_ipip,
        brindle_plain,
        brindle_ipip,
        ratios: CrossRatios::default(),
        failures: Vec::new(),
    };
    report.ratios = cross_ratios(&report);
    report
}

const KP: Side = Side::new(Forwarder::Kernel, Encap::Plain);
const KI: Side = Side::new(Forwarder::Kernel, Encap::Ipip);
const BP: Side = Side::new(Forwarder::Brindle, Encap::Plain);
const BI: Side = Side::new(Forwarder::Brindle, Encap::Ipip);

#[test]
fn ratios_pair_brindle_with_the_kernel_of_the_same_encapsulation() {
    let r = report([
        Some(cross_side(KP, 100.0, Some(50.0), 1.0)),
        Some(cross_side(KI, 80.0, Some(40.0), 1.0)),
        Some(cross_side(BP, 300.0, Some(25.0), 2.0)),
        Some(cross_side(BI, 200.0, Some(80.0), 2.0)),
    ]);
    let plain = r.ratios.plain.as_ref().expect("plain ratios");
    assert_eq!(plain.pps_delivered, Some(3.0));
    assert_eq!(plain.rtt_p50_us, Some(0.5));
    assert_eq!(plain.pps_per_busy_core, Some(1.5));
    let ipip = r.ratios.ipip.as_ref().expect("ipip ratios");
    assert_eq!(ipip.pps_delivered, Some(2.5));
    assert_eq!(ipip.rtt_p50_us, Some(2.0));
    assert_eq!(ipip.busy_cores, Some(2.0));
}

#[test]
fn rounds_combine_into_medians_with_every_round_kept() {
    let rounds = vec![
        cross_side(KP, 100.0, Some(10.0), 1.0),
        cross_side(KP, 300.0, None, 2.0),
        cross_side(KP, 200.0, Some(30.0), 1.5),
    ];
    let combined = combine_rounds(rounds).unwrap();
    assert_eq!(combined.measured.pps_delivered, 200.0);
    assert_eq!(combined.measured.pps_offered, 400.0);
    assert_eq!(combined.measured.busy_cores, 1.5);
    assert_eq!(
        combined.measured.rtt_p50_us,
        Some(20.0),
        "a round without RTT is skipped"
    );
    assert_eq!(combined.rounds.len(), 3);
    assert_eq!(combined.rounds[1].pps_delivered, 300.0, "rounds in order");
    assert!(combine_rounds(Vec::new()).is_none());
}

#[test]
fn per_round_ratios_pair_the_same_round() {
    let kernel = combine_rounds(vec![
        cross_side(KP, 100.0, None, 1.0),
        cross_side(KP, 200.0, None, 1.0),
    ])
    .unwrap();
    let brindle = combine_rounds(vec![
        cross_side(BP, 300.0, None, 1.0),
        cross_side(BP, 100.0, None, 1.0),
    ])
    .unwrap();
    let r = report([Some(kernel), None, Some(brindle), None]);
    assert_eq!(
        r.ratios.plain_pps_delivered_by_round,
        vec![Some(3.0), Some(0.5)]
    );
    assert!(r.ratios.ipip_pps_delivered_by_round.is_empty());
    // The headline ratio is of the medians (150 vs 200), not the median of the ratios.
    assert_eq!(
        r.ratios.plain.as_ref().unwrap().pps_delivered,
        Some(200.0 / 150.0)
    );
    assert!(
        markdown(&r).contains("plain 3.00, 0.50; IPIP ."),
        "{}",
        markdown(&r)
    );
}

#[test]
fn a_missing_side_leaves_only_its_ratio_empty() {
    let r = report([
        Some(cross_side(KP, 100.0, Some(50.0), 1.0)),
        None,
        Some(cross_side(BP, 300.0, None, 2.0)),
        Some(cross_side(BI, 200.0, Some(80.0), 2.0)),
    ]);
    assert!(r.ratios.ipip.is_none());
    let plain = r.ratios.plain.as_ref().unwrap();
    assert_eq!(plain.pps_delivered, Some(3.0));
    assert_eq!(plain.rtt_p50_us, None, "no RTT on one side, no RTT ratio");
}

#[test]
fn markdown_rows_put_plain_then_ipip_with_their_ratios() {
    let r = report([
        Some(cross_side(KP, 100.0, Some(50.0), 1.0)),
        Some(cross_side(KI, 80.0, Some(40.0), 1.0)),
        Some(cross_side(BP, 300.0, Some(25.0), 2.0)),
        None,
    ]);
    let rows = markdown_rows(&r);
    assert_eq!(rows.len(), METRICS.len());
    assert_eq!(
        rows[0],
        "| pps_delivered | 100 | 300 | 3.000 | 80 | - | - |"
    );
    assert_eq!(
        rows[2],
        "| rtt_p50_us | 50.0 | 25.0 | 0.500 | 40.0 | - | - |"
    );
    assert_eq!(
        rows[4],
        "| busy_cores | 1.00 | 2.00 | 2.000 | 1.00 | - | - |"
    );
    let md = markdown(&r);
    assert!(
        md.contains("| metric | kernel plain | brindle plain |"),
        "{md}"
    );
    assert!(md.contains("load average before 1.00 2.00 3.00"), "{md}");
}

#[test]
fn json_field_names_are_stable() {
    let mut r = report([
        Some(cross_side(KP, 100.0, Some(50.0), 1.0)),
        Some(cross_side(KI, 80.0, Some(40.0), 1.0)),
        Some(cross_side(BP, 300.0, Some(25.0), 2.0)),
        Some(cross_side(BI, 200.0, Some(80.0), 2.0)),
    ]);
    r.failures.push(SideFailure {
        side: "brindle_ipip",
        round: 2,
        error: "boom".into(),
    });
    let json = serde_json::to_value(&r).unwrap();
    for side in [
        "kernel_plain",
        "kernel_ipip",
        "brindle_plain",
        "brindle_ipip",
    ] {
        for field in [
            "side",
            "encap",
            "pps_delivered",
            "pps_offered",
            "rtt_p50_us",
            "rtt_p99_us",
            "busy_cores",
            "pps_per_busy_core",
            "path",
        ] {
            assert!(json[side].get(field).is_some(), "{side}.{field}");
        }
        assert_eq!(json[side]["side"], side);
    }
    for encap in ["plain", "ipip"] {
        assert!(
            json["ratios"][encap].get("pps_delivered").is_some(),
            "{encap}"
        );
    }
    assert_eq!(json["kernel_ipip_method"], "lwt-bpf");
    assert_eq!(json["failures"][0]["side"], "brindle_ipip");
    assert_eq!(json["kernel_ipip"]["encap"], "ipip");
}

#[test]
fn node_cpus_take_one_core_for_both_or_one_each() {
    assert_eq!(parse_node_cpus("1"), Ok([Some(1), Some(1)]));
    assert_eq!(parse_node_cpus("1,0"), Ok([Some(1), Some(0)]));
    assert_eq!(parse_node_cpus("none"), Ok([None, None]));
    assert_eq!(parse_node_cpus("1, none"), Ok([Some(1), None]));
    for bad in ["", "x", "1,2,3", "-1"] {
        let err = parse_node_cpus(bad).unwrap_err();
        assert!(err.contains("node-cpus"), "{bad}: {err}");
    }
}

#[test]
fn brindle_config_pins_first_and_routes_last() {
    let spec = MultiLabSpec::new("xn", 2, 1);
    let route = brindle_route_toml(&spec, 2, Encap::Ipip);
    assert_eq!(
        route,
        "\n[[route]]\nprefix = \"192.168.2.0/24\"\nvia = \"10.98.0.2\"\nencap = \"ipip\"\n"
    );
    assert!(brindle_route_toml(&spec, 1, Encap::Plain)
        .contains("prefix = \"192.168.1.0/24\"\nvia = \"10.98.0.1\"\nencap = \"none\""));
    let lab = "uplink = \"eth0\"\nmode = \"interrupt\"\n\n[[workload]]\ninterface = \"c\"\n";
    let config = brindle_node_toml(lab, Some(1), &route);
    assert!(
        config.starts_with("cores = [1]\nuplink = \"eth0\"\n"),
        "{config}"
    );
    assert!(config.ends_with(&route), "{config}");
    assert_eq!(
        brindle_node_toml(lab, None, ""),
        lab,
        "unpinned: no cores key"
    );
}

fn evidence(ipip: usize, bare: usize, tx: u64, mean: f64) -> PathEvidence {
    PathEvidence {
        uplink_tx_packets: tx,
        uplink_tx_bytes_per_packet: Some(mean),
        capture_ipip: ipip,
        capture_bare: bare,
        ..PathEvidence::default()
    }
}

#[test]
fn path_check_wants_bare_frames_on_plain_sides() {
    assert_eq!(
        check_path(KP, 64, 1000, &evidence(0, 10, 1005, 60.1)),
        Ok(())
    );
    let err = check_path(KP, 64, 1000, &evidence(10, 0, 1005, 80.0)).unwrap_err();
    assert!(err.contains("inside IPIP"), "{err}");
    let err = check_path(KP, 64, 1000, &evidence(0, 10, 1005, 80.0)).unwrap_err();
    assert!(err.contains("averaged"), "{err}");
    let err = check_path(KP, 64, 1000, &evidence(0, 10, 10, 60.0)).unwrap_err();
    assert!(err.contains("fewer than"), "{err}");
    let err = check_path(KP, 64, 0, &evidence(0, 10, 10, 60.0)).unwrap_err();
    assert!(err.contains("received nothing"), "{err}");
}

#[test]
fn path_check_wants_wrapped_frames_and_tunnel_counters_on_ipip_sides() {
    let wrapped = evidence(10, 0, 1005, 80.0);
    assert_eq!(check_path(KI, 64, 1000, &wrapped), Ok(()));
    assert!(
        check_path(KI, 64, 1000, &evidence(5, 1, 1005, 80.0)).is_err(),
        "a bare ping"
    );
    let device = PathEvidence {
        tunnel_tx_packets_node1: Some(1003),
        tunnel_rx_packets_node2: Some(999),
        ..wrapped.clone()
    };
    let err = check_path(KI, 64, 1000, &device).unwrap_err();
    assert!(err.contains("tunl0 rx_packets on node 2"), "{err}");
}

#[test]
fn path_check_reads_brindle_counters() {
    let plain = PathEvidence {
        brindle_forwarded_node1: Some(1010),
        brindle_ipip_encapsulated_node1: Some(0),
        brindle_ipip_decapsulated_node2: Some(0),
        ..evidence(0, 10, 1005, 60.0)
    };
    assert_eq!(check_path(BP, 64, 1000, &plain), Ok(()));
    let leaked = PathEvidence {
        brindle_ipip_encapsulated_node1: Some(3),
        ..plain.clone()
    };
    assert!(check_path(BP, 64, 1000, &leaked).is_err());
    let ipip = PathEvidence {
        brindle_forwarded_node1: Some(1010),
        brindle_ipip_encapsulated_node1: Some(1010),
        brindle_ipip_decapsulated_node2: Some(1000),
        ..evidence(10, 0, 1005, 80.0)
    };
    assert_eq!(check_path(BI, 64, 1000, &ipip), Ok(()));
    let unwrapped_none = PathEvidence {
        brindle_ipip_decapsulated_node2: Some(0),
        ..ipip
    };
    let err = check_path(BI, 64, 1000, &unwrapped_none).unwrap_err();
    assert!(err.contains("ipip_decapsulated on node 2"), "{err}");
}

#[test]
fn uplink_frames_grow_by_one_ipv4_header_inside_ipip() {
    assert_eq!(expected_uplink_frame_len(64, Encap::Plain), 60);
    assert_eq!(expected_uplink_frame_len(64, Encap::Ipip), 80);
    assert_eq!(TUNNEL_MTU, 1480);
}

#[test]
fn lab_names_fit_a_multi_node_lab() {
    let tag = pid_tag(5);
    assert!(!tag.is_empty() && tag.len() <= 5, "{tag}");
    for side in Side::ALL {
        let spec = MultiLabSpec::new(format!("{}{tag}", side.lab_prefix()), 2, 1);
        spec.validate().unwrap();
    }
}
