//! A WorkloadEndpoint's `qosControls` (Calico 3.28+): bandwidth and packet-rate limits in
//! each direction, with Calico's ranges and defaults.
//!
//! Directions are the workload's: `ingress` limits what is delivered to it, `egress` what it
//! sends. brindle's vRouter enforces the bandwidth and packet-rate limits itself (tc qdiscs on
//! the veth, Felix's way, would be bypassed by AF_XDP). It has no peak-rate shaper, no
//! connection limiter and does not mark DSCP, so those fields are refused rather than stored
//! and silently not applied.

use crate::macros::calico_struct;
use crate::validate::{field, Errors};

/// Calico's bandwidth range, bits per second.
pub const BANDWIDTH_RANGE: std::ops::RangeInclusive<i64> = 1_000..=1_000_000_000_000_000;
/// Calico's burst range, bits.
pub const BURST_RANGE: std::ops::RangeInclusive<i64> = 1_000..=34_359_738_360;
/// Calico's packet rate range, packets per second.
pub const PACKET_RATE_RANGE: std::ops::RangeInclusive<i64> = 1..=10_000;
/// Calico's packet burst range, packets.
pub const PACKET_BURST_RANGE: std::ops::RangeInclusive<i64> = 1..=10_000;
/// The burst of a bandwidth given without one (Calico's default): 4 Gi bits.
pub const DEFAULT_BURST_BITS: u64 = 4_294_967_296;
/// The burst of a packet rate given without one (Calico's default).
pub const DEFAULT_PACKET_BURST: u64 = 5;

fn is_zero(v: &i64) -> bool {
    *v == 0
}

calico_struct! {
    /// Calico's `QoSControls`. Every number is optional: 0 (or absent) is "not set", as with
    /// Calico's `omitempty`.
    pub struct QosControls {
        #[serde(skip_serializing_if = "is_zero")]
        "ingressBandwidth" => pub ingress_bandwidth: i64,
        #[serde(skip_serializing_if = "is_zero")]
        "ingressBurst" => pub ingress_burst: i64,
        #[serde(skip_serializing_if = "is_zero")]
        "ingressPeakrate" => pub ingress_peakrate: i64,
        #[serde(skip_serializing_if = "is_zero")]
        "ingressMinburst" => pub ingress_minburst: i64,
        #[serde(skip_serializing_if = "is_zero")]
        "egressBandwidth" => pub egress_bandwidth: i64,
        #[serde(skip_serializing_if = "is_zero")]
        "egressBurst" => pub egress_burst: i64,
        #[serde(skip_serializing_if = "is_zero")]
        "egressPeakrate" => pub egress_peakrate: i64,
        #[serde(skip_serializing_if = "is_zero")]
        "egressMinburst" => pub egress_minburst: i64,
        #[serde(skip_serializing_if = "is_zero")]
        "ingressPacketRate" => pub ingress_packet_rate: i64,
        #[serde(skip_serializing_if = "is_zero")]
        "ingressPacketBurst" => pub ingress_packet_burst: i64,
        #[serde(skip_serializing_if = "is_zero")]
        "egressPacketRate" => pub egress_packet_rate: i64,
        #[serde(skip_serializing_if = "is_zero")]
        "egressPacketBurst" => pub egress_packet_burst: i64,
        #[serde(skip_serializing_if = "is_zero")]
        "ingressMaxConnections" => pub ingress_max_connections: i64,
        #[serde(skip_serializing_if = "is_zero")]
        "egressMaxConnections" => pub egress_max_connections: i64,
        /// A number or a name (`AF11`); kept as written.
        #[serde(skip_serializing_if = "Option::is_none")]
        "dscp" => pub dscp: Option<serde_json::Value>,
    }
}

/// A rate and its burst, with Calico's default burst filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QosRate {
    pub per_second: u64,
    pub burst: u64,
}

/// The limits of one direction: bits per second (burst in bits) and packets per second
/// (burst in packets); `None`: not limited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QosDirection {
    pub bandwidth: Option<QosRate>,
    pub packets: Option<QosRate>,
}

impl QosControls {
    /// What is delivered to the workload may use.
    pub fn ingress(&self) -> QosDirection {
        direction(
            self.ingress_bandwidth,
            self.ingress_burst,
            self.ingress_packet_rate,
            self.ingress_packet_burst,
        )
    }

    /// What the workload sends may use.
    pub fn egress(&self) -> QosDirection {
        direction(
            self.egress_bandwidth,
            self.egress_burst,
            self.egress_packet_rate,
            self.egress_packet_burst,
        )
    }

    /// Every limit, with its path under `path`, for the checks.
    fn limits(&self) -> [(&'static str, i64, &'static str, i64, Kind); 4] {
        [
            (
                "ingressBandwidth",
                self.ingress_bandwidth,
                "ingressBurst",
                self.ingress_burst,
                Kind::Bandwidth,
            ),
            (
                "egressBandwidth",
                self.egress_bandwidth,
                "egressBurst",
                self.egress_burst,
                Kind::Bandwidth,
            ),
            (
                "ingressPacketRate",
                self.ingress_packet_rate,
                "ingressPacketBurst",
                self.ingress_packet_burst,
                Kind::Packets,
            ),
            (
                "egressPacketRate",
                self.egress_packet_rate,
                "egressPacketBurst",
                self.egress_packet_burst,
                Kind::Packets,
            ),
        ]
    }

    /// The fields brindle does not enforce, with their values when set.
    fn unenforced(&self) -> Vec<(&'static str, String)> {
        let numbers = [
            ("ingressPeakrate", self.ingress_peakrate),
            ("ingressMinburst", self.ingress_minburst),
            ("egressPeakrate", self.egress_peakrate),
            ("egressMinburst", self.egress_minburst),
            ("ingressMaxConnections", self.ingress_max_connections),
            ("egressMaxConnections", self.egress_max_connections),
        ];
        let mut out: Vec<(&'static str, String)> = numbers
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|(name, v)| (*name, v.to_string()))
            .collect();
        match &self.dscp {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) => out.push(("dscp", s.clone())),
            Some(v) => out.push(("dscp", v.to_string())),
        }
        out
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Bandwidth,
    Packets,
}

impl Kind {
    fn ranges(self) -> (std::ops::RangeInclusive<i64>, std::ops::RangeInclusive<i64>) {
        match self {
            Kind::Bandwidth => (BANDWIDTH_RANGE, BURST_RANGE),
            Kind::Packets => (PACKET_RATE_RANGE, PACKET_BURST_RANGE),
        }
    }

    fn units(self) -> (&'static str, &'static str) {
        match self {
            Kind::Bandwidth => ("bits per second", "bits"),
            Kind::Packets => ("packets per second", "packets"),
        }
    }
}

fn direction(bandwidth: i64, burst: i64, packet_rate: i64, packet_burst: i64) -> QosDirection {
    let rate = |per_second: i64, burst: i64, default: u64| {
        let per_second = u64::try_from(per_second).ok().filter(|r| *r > 0)?;
        let burst = u64::try_from(burst)
            .ok()
            .filter(|b| *b > 0)
            .unwrap_or(default);
        Some(QosRate { per_second, burst })
    };
    QosDirection {
        bandwidth: rate(bandwidth, burst, DEFAULT_BURST_BITS),
        packets: rate(packet_rate, packet_burst, DEFAULT_PACKET_BURST),
    }
}

/// Calico's ranges (0 is "not set"), a burst only with its rate, and nothing brindle would
/// store without enforcing.
pub(crate) fn check_qos_controls(errs: &mut Errors, path: &str, qos: &QosControls) {
    for (rate_name, rate, burst_name, burst, kind) in qos.limits() {
        let (rate_range, burst_range) = kind.ranges();
        let (rate_unit, burst_unit) = kind.units();
        if rate != 0 && !rate_range.contains(&rate) {
            errs.add(
                &field(path, rate_name),
                rate,
                format!(
                    "{rate_name} must be between {} and {} {rate_unit}",
                    rate_range.start(),
                    rate_range.end()
                ),
            );
        }
        if burst != 0 && !burst_range.contains(&burst) {
            errs.add(
                &field(path, burst_name),
                burst,
                format!(
                    "{burst_name} must be between {} and {} {burst_unit}",
                    burst_range.start(),
                    burst_range.end()
                ),
            );
        }
        if burst != 0 && rate == 0 {
            errs.add(
                &field(path, burst_name),
                burst,
                format!("{burst_name} cannot be specified without {rate_name}"),
            );
        }
    }
    for (name, value) in qos.unenforced() {
        errs.add(
            &field(path, name),
            value,
            format!("brindle's vRouter does not enforce {name}; remove it (bandwidth and packet-rate limits are enforced)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_a_missing_burst() {
        let q = QosControls {
            ingress_bandwidth: 20_000_000,
            egress_packet_rate: 100,
            egress_packet_burst: 7,
            ..QosControls::default()
        };
        assert_eq!(
            q.ingress().bandwidth,
            Some(QosRate {
                per_second: 20_000_000,
                burst: DEFAULT_BURST_BITS
            })
        );
        assert_eq!(q.ingress().packets, None);
        assert_eq!(
            q.egress().packets,
            Some(QosRate {
                per_second: 100,
                burst: 7
            })
        );
        assert_eq!(q.egress().bandwidth, None);
        // A negative rate (refused on write) never becomes a limit.
        let bad = QosControls {
            ingress_bandwidth: -5,
            ..QosControls::default()
        };
        assert_eq!(bad.ingress(), QosDirection::default());
    }
}
