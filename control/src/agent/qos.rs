//! A WorkloadEndpoint's `qosControls` as the vRouter's limits (`fastpath::qos`).
//!
//! The resource model fills in Calico's default bursts and leaves out what is not set (or
//! negative: refused on write, but a record may have been written by something else); the
//! fields brindle does not enforce are refused on write and not read here.

use fastpath::qos::{DirectionLimits, QosLimits, Rate};
use resources::{QosControls, QosDirection, QosRate};

/// The limits of an endpoint's `qosControls`; none without them.
pub fn limits(qos: Option<&QosControls>) -> QosLimits {
    let Some(qos) = qos else {
        return QosLimits::default();
    };
    QosLimits {
        ingress: direction(qos.ingress()),
        egress: direction(qos.egress()),
    }
}

fn direction(d: QosDirection) -> DirectionLimits {
    let rate = |r: QosRate| Rate {
        per_second: r.per_second,
        burst: r.burst,
    };
    DirectionLimits {
        bandwidth: d.bandwidth.map(rate),
        packets: d.packets.map(rate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calicos_fields_and_defaults_become_the_vrouters_limits() {
        assert!(limits(None).is_unlimited());
        assert!(limits(Some(&QosControls::default())).is_unlimited());
        let q = QosControls {
            ingress_bandwidth: 20_000_000,
            ingress_burst: 1_000_000,
            egress_bandwidth: 10_000_000,
            egress_packet_rate: 100,
            ..QosControls::default()
        };
        let l = limits(Some(&q));
        assert_eq!(
            l.ingress,
            DirectionLimits {
                bandwidth: Some(Rate {
                    per_second: 20_000_000,
                    burst: 1_000_000
                }),
                packets: None,
            }
        );
        assert_eq!(
            l.egress,
            DirectionLimits {
                bandwidth: Some(Rate {
                    per_second: 10_000_000,
                    burst: fastpath::qos::DEFAULT_BURST_BITS
                }),
                packets: Some(Rate {
                    per_second: 100,
                    burst: fastpath::qos::DEFAULT_PACKET_BURST
                }),
            }
        );
    }
}
