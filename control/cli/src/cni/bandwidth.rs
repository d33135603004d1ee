//! The `bandwidth` capability (`"capabilities": {"bandwidth": true}` on brindle-cni in the
//! conflist): the runtime hands a workload's limits as `runtimeConfig.bandwidth`
//! (`ingressRate`/`ingressBurst`/`egressRate`/`egressBurst`, rates in bits per second, bursts
//! in bits, as for the reference `bandwidth` plugin), and they become the WorkloadEndpoint's
//! `qosControls`, which the node's vRouter enforces.
//!
//! Why not leave it to the chained `bandwidth` plugin alone: its tc qdiscs sit on the host
//! veth, and the vRouter takes a workload's frames off the veth with AF_XDP before tc ingress
//! and sends to it with AF_XDP, which skips the qdisc.
//!
//! The checks are the reference plugin's (a rate needs its burst and a burst its rate; 0 is
//! "not set") and Calico's ranges; every refusal names the field and the value, and comes
//! before anything is allocated.

use resources::qos::{BANDWIDTH_RANGE, BURST_RANGE};
use resources::QosControls;
use serde_json::Value;

use super::spec::{code, CniError, NetConf};

const FIELD: &str = "runtimeConfig.bandwidth";

/// The limits the runtime asks for; `None` when it asks for none.
pub fn limits(conf: &NetConf) -> Result<Option<QosControls>, CniError> {
    let Some(bandwidth) = conf
        .extra
        .get("runtimeConfig")
        .and_then(|r| r.get("bandwidth"))
        .filter(|b| !b.is_null())
    else {
        return Ok(None);
    };
    if !bandwidth.is_object() {
        return Err(invalid(format!(
            "{FIELD} {bandwidth}: must be an object of ingressRate, ingressBurst, egressRate and egressBurst"
        )));
    }
    let (ingress_rate, ingress_burst) = direction(bandwidth, "ingress")?;
    let (egress_rate, egress_burst) = direction(bandwidth, "egress")?;
    let qos = QosControls {
        ingress_bandwidth: ingress_rate,
        ingress_burst,
        egress_bandwidth: egress_rate,
        egress_burst,
        ..QosControls::default()
    };
    Ok((ingress_rate != 0 || egress_rate != 0).then_some(qos))
}

/// One direction's (rate, burst), both 0 when not limited.
fn direction(bandwidth: &Value, dir: &str) -> Result<(i64, i64), CniError> {
    let rate_name = format!("{dir}Rate");
    let burst_name = format!("{dir}Burst");
    let rate = number(bandwidth, &rate_name)?;
    let burst = number(bandwidth, &burst_name)?;
    match (rate, burst) {
        (0, 0) => return Ok((0, 0)),
        (_, 0) => {
            return Err(invalid(format!(
                "{FIELD}.{rate_name} {rate}: {burst_name} is not set (if the rate is set, the burst must be set too)"
            )))
        }
        (0, _) => {
            return Err(invalid(format!(
                "{FIELD}.{burst_name} {burst}: {rate_name} is not set (if the burst is set, the rate must be set too)"
            )))
        }
        _ => {}
    }
    check_range(&rate_name, rate, &BANDWIDTH_RANGE, "bits per second")?;
    check_range(&burst_name, burst, &BURST_RANGE, "bits")?;
    Ok((rate, burst))
}

/// A field as a whole number; absent or null is 0.
fn number(bandwidth: &Value, name: &str) -> Result<i64, CniError> {
    match bandwidth.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(v) if v.is_u64() && v.as_i64().is_none() => Err(invalid(format!(
            "{FIELD}.{name} {v}: too large (Calico's ranges end at {} bits per second and {} bits)",
            BANDWIDTH_RANGE.end(),
            BURST_RANGE.end()
        ))),
        Some(v) => v.as_i64().ok_or_else(|| {
            invalid(format!(
                "{FIELD}.{name} {v}: must be a whole number (bits per second for a rate, bits for a burst)"
            ))
        }),
    }
}

fn check_range(
    name: &str,
    value: i64,
    range: &std::ops::RangeInclusive<i64>,
    unit: &str,
) -> Result<(), CniError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(invalid(format!(
        "{FIELD}.{name} {value}: must be between {} and {} {unit} (Calico's range)",
        range.start(),
        range.end()
    )))
}

fn invalid(msg: String) -> CniError {
    CniError::new(code::INVALID_NETWORK_CONFIG, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(runtime_config: &str) -> NetConf {
        let raw = format!(
            r#"{{"cniVersion":"1.0.0","name":"net1","type":"brindle-cni","runtimeConfig":{runtime_config}}}"#
        );
        NetConf::parse(raw.as_bytes()).unwrap()
    }

    #[test]
    fn limits_become_qos_controls() {
        let q = limits(&conf(
            r#"{"bandwidth":{"ingressRate":20000000,"ingressBurst":1000000,"egressRate":10000000,"egressBurst":4294967295}}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(q.ingress_bandwidth, 20_000_000);
        assert_eq!(q.ingress_burst, 1_000_000);
        assert_eq!(q.egress_bandwidth, 10_000_000);
        assert_eq!(q.egress_burst, 4_294_967_295);
        // One direction only (what a Kubernetes runtime sends for one annotation).
        let q = limits(&conf(
            r#"{"bandwidth":{"egressRate":1000000,"egressBurst":4294967295}}"#,
        ))
        .unwrap()
        .unwrap();
        assert_eq!((q.ingress_bandwidth, q.ingress_burst), (0, 0));
        // Nothing asked: no limits.
        assert_eq!(limits(&conf(r#"{"bandwidth":{}}"#)).unwrap(), None);
        assert_eq!(limits(&conf(r#"{"bandwidth":null}"#)).unwrap(), None);
        assert_eq!(limits(&conf(r#"{"portMappings":[]}"#)).unwrap(), None);
    }

    #[test]
    fn bad_limits_are_refused_naming_field_and_value() {
        for (body, needle) in [
            (
                r#"{"ingressRate":1000000}"#,
                "runtimeConfig.bandwidth.ingressRate 1000000",
            ),
            (
                r#"{"egressBurst":50000}"#,
                "runtimeConfig.bandwidth.egressBurst 50000",
            ),
            (
                r#"{"ingressRate":999,"ingressBurst":100000}"#,
                "runtimeConfig.bandwidth.ingressRate 999",
            ),
            (
                r#"{"egressRate":1000000,"egressBurst":34359738361}"#,
                "runtimeConfig.bandwidth.egressBurst 34359738361",
            ),
            (
                r#"{"ingressRate":-5,"ingressBurst":100000}"#,
                "runtimeConfig.bandwidth.ingressRate -5",
            ),
            (
                r#"{"ingressRate":"10M","ingressBurst":100000}"#,
                r#"runtimeConfig.bandwidth.ingressRate "10M""#,
            ),
            (
                r#"{"ingressRate":1.5e7,"ingressBurst":100000}"#,
                "runtimeConfig.bandwidth.ingressRate 15000000.0",
            ),
            (
                r#"{"egressRate":18446744073709551615,"egressBurst":1000}"#,
                "runtimeConfig.bandwidth.egressRate 18446744073709551615",
            ),
            (r#"[1]"#, "runtimeConfig.bandwidth [1]"),
        ] {
            let e = limits(&conf(&format!(r#"{{"bandwidth":{body}}}"#))).unwrap_err();
            assert_eq!(e.code, code::INVALID_NETWORK_CONFIG, "{body}");
            assert!(e.msg.contains(needle), "{body}: {}", e.msg);
        }
    }
}
