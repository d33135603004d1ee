use super::*;

fn side(pps: f64, p50: Option<f64>, busy: f64) -> SideResult {
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

#[test]
fn ratios_are_brindle_over_kernel() {
    let r = ratios(&side(100.0, Some(50.0), 1.0), &side(300.0, Some(25.0), 2.0));
    assert_eq!(r.pps_delivered, Some(3.0));
    assert_eq!(r.rtt_p50_us, Some(0.5));
    assert_eq!(r.busy_cores, Some(2.0));
    assert_eq!(r.pps_per_busy_core, Some(1.5));
    let r = ratios(&side(0.0, None, 0.0), &side(300.0, Some(25.0), 2.0));
    assert_eq!(r.pps_delivered, None);
    assert_eq!(r.rtt_p50_us, None);
    assert_eq!(r.pps_per_busy_core, None);
}

#[test]
fn markdown_has_a_row_per_metric_with_stable_names() {
    let kernel = side(100.0, Some(50.0), 1.0);
    let brindle = side(300.0, Some(25.0), 2.0);
    let report = E2eReport {
        frame_size: 64,
        generator: Generator::Socket,
        duration_secs: 5.0,
        pings: 500,
        generator_cpu: 0,
        node_cpu: 1,
        node_mode: "poll".into(),
        ncpus: 2,
        ratios: Some(ratios(&kernel, &brindle)),
        kernel,
        brindle: Some(brindle),
        by_size: vec![SizeResult {
            frame_size: 1500,
            kernel: SizeSide {
                pps_offered: 80.0,
                pps_delivered: 80.0,
                sent: 400,
                received: 400,
                xdp: None,
            },
            brindle: Some(SizeSide {
                pps_offered: 120.0,
                pps_delivered: 100.0,
                sent: 600,
                received: 500,
                xdp: None,
            }),
            ratio_pps_delivered: Some(1.25),
        }],
        rtt_cdf_kernel: vec![CdfPoint {
            fraction: 0.5,
            rtt_us: 50.0,
        }],
        rtt_cdf_brindle: vec![],
        udp_xdp_kernel: None,
        udp_xdp_brindle: None,
        brindle_node: None,
        raw_afxdp: None,
        raw_ratios: None,
    };
    let md = markdown(&report);
    assert!(md.contains("| 1500 | 80 | 100 | 1.250 |"), "{md}");
    assert!(md.contains("| pps_delivered | 100 | 300 | 3.000 |"), "{md}");
    assert!(md.contains("| rtt_p50_us | 50.0 | 25.0 | 0.500 |"), "{md}");
    let json = serde_json::to_value(&report).unwrap();
    for field in [
        "pps_delivered",
        "pps_offered",
        "rtt_p50_us",
        "rtt_p99_us",
        "busy_cores",
        "pps_per_busy_core",
    ] {
        assert!(json["kernel"].get(field).is_some(), "kernel.{field}");
        assert!(json["brindle"].get(field).is_some(), "brindle.{field}");
        assert!(json["ratios"].get(field).is_some(), "ratios.{field}");
    }
    assert_eq!(json["by_size"][0]["frame_size"], 1500);
    assert_eq!(json["by_size"][0]["brindle"]["pps_delivered"], 100.0);
    assert_eq!(json["rtt_cdf_kernel"][0]["rtt_us"], 50.0);
}

#[test]
fn the_node_account_is_the_counters_growth_with_only_what_counted() {
    let before = serde_json::json!({"fastpath": {
        "rx_packets": 10, "forwarded": 8, "punted": 1, "dropped": 1, "socket_lost": 0,
        "drops": {"no_route": 1, "tx_full": 0},
        "socket": {"rx_ring_full": 0, "tx_ring_empty": 5},
    }});
    let after = serde_json::json!({"fastpath": {
        "rx_packets": 110, "forwarded": 100, "punted": 1, "dropped": 9, "socket_lost": 40,
        "drops": {"no_route": 1, "tx_full": 8},
        "socket": {"rx_ring_full": 40, "tx_ring_empty": 5},
    }});
    let n = NodeAccount::between(&before, &after);
    assert_eq!(
        (n.received, n.forwarded, n.punted, n.dropped, n.socket_lost),
        (100, 92, 0, 8, 40)
    );
    assert_eq!(
        n.drops.into_iter().collect::<Vec<_>>(),
        [("tx_full".to_owned(), 8)]
    );
    assert_eq!(
        n.socket.into_iter().collect::<Vec<_>>(),
        [("rx_ring_full".to_owned(), 40)]
    );
}
