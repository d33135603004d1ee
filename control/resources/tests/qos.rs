//! A WorkloadEndpoint's `qosControls`: Calico's field names and ranges, defaults for a missing
//! burst, round trips (omitempty as Calico), and the fields brindle's vRouter does not enforce
//! refused, naming field and value.

use resources::*;

fn wep(qos: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata:\n  name: n1-cni-abc-eth0\n  namespace: default\nspec:\n  node: n1\n  interfaceName: cali1234567890a\n  qosControls:\n{qos}\n")
}

fn qos_of(text: &str) -> QosControls {
    let loaded = load_documents(text).unwrap_or_else(|e| panic!("refused: {e}\n{text}"));
    let [Resource::WorkloadEndpoint(w)] = loaded.as_slice() else {
        panic!("one WorkloadEndpoint: {loaded:?}")
    };
    *w.spec.qos_controls.clone().expect("qosControls kept")
}

#[test]
fn limits_load_with_calicos_names_and_defaults() {
    let q = qos_of(&wep(
        "    ingressBandwidth: 20000000\n    ingressBurst: 1000000\n    egressBandwidth: 10000000\n    ingressPacketRate: 1000\n    egressPacketRate: 10000\n    egressPacketBurst: 10000",
    ));
    assert_eq!(q.ingress_bandwidth, 20_000_000);
    assert_eq!(
        q.ingress().bandwidth,
        Some(QosRate {
            per_second: 20_000_000,
            burst: 1_000_000
        })
    );
    // Calico's defaults: a 4 Gi-bit burst, a 5-packet burst.
    assert_eq!(
        q.egress().bandwidth,
        Some(QosRate {
            per_second: 10_000_000,
            burst: 4_294_967_296
        })
    );
    assert_eq!(
        q.ingress().packets,
        Some(QosRate {
            per_second: 1000,
            burst: 5
        })
    );
    assert_eq!(
        q.egress().packets,
        Some(QosRate {
            per_second: 10_000,
            burst: 10_000
        })
    );
    // The range ends are accepted; zeros are "not set".
    let ends = qos_of(&wep(
        "    ingressBandwidth: 1000\n    ingressBurst: 34359738360\n    egressBandwidth: 1000000000000000\n    egressBurst: 1000\n    ingressPacketRate: 1\n    ingressPacketBurst: 1\n    egressPacketRate: 0",
    ));
    assert_eq!(ends.egress().packets, None);
    let empty = qos_of(&wep("    {}"));
    assert_eq!(empty.ingress(), QosDirection::default());
    assert_eq!(empty.egress(), QosDirection::default());
}

#[test]
fn limits_round_trip_and_unset_ones_are_not_written() {
    let text =
        wep("    ingressBandwidth: 20000000\n    ingressBurst: 1000000\n    egressPacketRate: 50");
    let loaded = load_documents(&text).unwrap();
    let yaml = to_yaml(&loaded);
    let v: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(
        v["spec"]["qosControls"],
        serde_json::json!({"ingressBandwidth": 20000000, "ingressBurst": 1000000, "egressPacketRate": 50}),
        "{yaml}"
    );
    assert_eq!(parse_documents(&yaml).unwrap(), loaded);
    // As stored, and read back.
    let stored = loaded[0].to_stored_json();
    let back = Resource::from_stored(&stored, 3).unwrap();
    let Resource::WorkloadEndpoint(w) = &back else {
        panic!("{back:?}")
    };
    assert_eq!(
        w.spec.qos_controls.as_ref().unwrap().ingress_burst,
        1_000_000
    );
    // An endpoint without limits writes no qosControls at all.
    let plain = load_documents(&wep("    {}").replace("  qosControls:\n    {}\n", "")).unwrap();
    assert!(!to_yaml(&plain).contains("qosControls"));
}

/// (what, qosControls body, path, text the message must contain)
fn refusals() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    vec![
        (
            "bandwidth below Calico's range",
            "    ingressBandwidth: 999",
            "spec.qosControls.ingressBandwidth",
            "'999'",
        ),
        (
            "bandwidth above Calico's range",
            "    egressBandwidth: 1000000000000001",
            "spec.qosControls.egressBandwidth",
            "'1000000000000001'",
        ),
        (
            "negative bandwidth",
            "    egressBandwidth: -1000",
            "spec.qosControls.egressBandwidth",
            "between 1000 and 1000000000000000",
        ),
        (
            "burst below Calico's range",
            "    ingressBandwidth: 1000000\n    ingressBurst: 999",
            "spec.qosControls.ingressBurst",
            "'999'",
        ),
        (
            "burst above Calico's range",
            "    egressBandwidth: 1000000\n    egressBurst: 34359738361",
            "spec.qosControls.egressBurst",
            "'34359738361'",
        ),
        (
            "burst without bandwidth",
            "    ingressBurst: 100000",
            "spec.qosControls.ingressBurst",
            "without ingressBandwidth",
        ),
        (
            "packet rate above Calico's range",
            "    ingressPacketRate: 10001",
            "spec.qosControls.ingressPacketRate",
            "'10001'",
        ),
        (
            "packet burst above Calico's range",
            "    egressPacketRate: 10\n    egressPacketBurst: 10001",
            "spec.qosControls.egressPacketBurst",
            "'10001'",
        ),
        (
            "packet burst without packet rate",
            "    egressPacketBurst: 10",
            "spec.qosControls.egressPacketBurst",
            "without egressPacketRate",
        ),
        (
            "bandwidth not a number",
            "    ingressBandwidth: 10M",
            "spec.qosControls.ingressBandwidth",
            "10M",
        ),
        // What the vRouter does not enforce is refused, not stored and ignored.
        (
            "peak rate",
            "    ingressBandwidth: 1000000\n    ingressPeakrate: 2000000",
            "spec.qosControls.ingressPeakrate",
            "'2000000'",
        ),
        (
            "min burst",
            "    egressBandwidth: 1000000\n    egressMinburst: 1500",
            "spec.qosControls.egressMinburst",
            "does not enforce egressMinburst",
        ),
        (
            "max connections",
            "    ingressMaxConnections: 100",
            "spec.qosControls.ingressMaxConnections",
            "'100'",
        ),
        (
            "egress max connections",
            "    egressMaxConnections: 7",
            "spec.qosControls.egressMaxConnections",
            "brindle's vRouter does not enforce",
        ),
        (
            "dscp by name",
            "    dscp: AF11",
            "spec.qosControls.dscp",
            "'AF11'",
        ),
        (
            "dscp by number",
            "    dscp: 10",
            "spec.qosControls.dscp",
            "'10'",
        ),
    ]
}

#[test]
fn out_of_range_and_unenforced_limits_are_refused_naming_field_and_value() {
    let mut failures = Vec::new();
    for (what, body, path, needle) in refusals() {
        let err = match load_documents(&wep(body)) {
            Ok(r) => {
                failures.push(format!("{what}: accepted {r:?}"));
                continue;
            }
            Err(e) => e,
        };
        let msg = err.to_string();
        let paths: Vec<String> = match &err {
            ParseError::Invalid { source, .. } => {
                source.errors.iter().map(|e| e.path.clone()).collect()
            }
            other => other.path().map(str::to_string).into_iter().collect(),
        };
        if !paths.iter().any(|p| p == path) {
            failures.push(format!("{what}: paths {paths:?}, wanted {path}: {msg}"));
        } else if !msg.contains(needle) {
            failures.push(format!("{what}: {msg:?} does not contain {needle:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
