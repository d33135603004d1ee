//! The workloads' rate limiters across table publishes.
//!
//! A limiter's state (how much of its burst is used) lives in its `PortQos`, which the tables
//! share with the workers. Every publish builds new tables, so a publish that made new
//! limiters would refill every bucket: a workload that keeps its limits keeps its limiter,
//! one whose limits change gets a new one, an unlimited one gets none.

use std::collections::HashMap;
use std::sync::Arc;

use fastpath::qos::{PortQos, QosLimits};
use fastpath::{PortInfo, PortKind};

use super::DesiredState;

/// The limiter of each limited workload port, by interface name.
#[derive(Debug, Default)]
pub(super) struct PortLimiters {
    by_name: HashMap<String, Arc<PortQos>>,
}

impl PortLimiters {
    /// Sets the `qos` of every workload port in `infos` to its limits in `desired`, and
    /// forgets the ports that are no longer limited or no longer there.
    pub(super) fn assign(&mut self, desired: &DesiredState, infos: &mut [Option<PortInfo>]) {
        let wanted: HashMap<&str, QosLimits> = desired
            .workloads
            .iter()
            .filter(|w| !w.qos.is_unlimited())
            .map(|w| (w.interface.as_str(), w.qos))
            .collect();
        let mut kept = HashMap::with_capacity(wanted.len());
        for info in infos.iter_mut().flatten() {
            info.qos = None;
            if info.kind != PortKind::Workload {
                continue;
            }
            let Some(limits) = wanted.get(info.name.as_str()) else {
                continue;
            };
            let qos = match self.by_name.remove(&info.name) {
                Some(held) if held.limits() == *limits => held,
                _ => Arc::new(PortQos::new(*limits)),
            };
            info.qos = Some(qos.clone());
            kept.insert(info.name.clone(), qos);
        }
        self.by_name = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WorkloadConfig;
    use fastpath::qos::{DirectionLimits, Rate};
    use fastpath::MacAddr;
    use std::net::Ipv4Addr;

    fn port(name: &str, kind: PortKind) -> Option<PortInfo> {
        Some(PortInfo {
            name: name.into(),
            ifindex: 7,
            kind,
            mac: MacAddr([0xee; 6]),
            ip: Ipv4Addr::new(169, 254, 1, 1),
            mtu: 1500,
            policy: None,
            qos: None,
        })
    }

    fn ingress(bits: u64) -> QosLimits {
        QosLimits {
            ingress: DirectionLimits {
                bandwidth: Some(Rate {
                    per_second: bits,
                    burst: 1_000_000,
                }),
                packets: None,
            },
            egress: DirectionLimits::default(),
        }
    }

    fn desired(workloads: &[(&str, QosLimits)]) -> DesiredState {
        DesiredState {
            workloads: workloads
                .iter()
                .map(|(name, qos)| WorkloadConfig {
                    interface: (*name).into(),
                    ips: Vec::new(),
                    tap: None,
                    qos: *qos,
                })
                .collect(),
            ..DesiredState::default()
        }
    }

    /// The published ports' limiters, as `publish` sets them.
    fn publish(limiters: &mut PortLimiters, desired: &DesiredState) -> Vec<Option<PortInfo>> {
        let mut infos = vec![
            port("calia", PortKind::Workload),
            None,
            port("calib", PortKind::Workload),
            port("eth0", PortKind::Uplink),
        ];
        limiters.assign(desired, &mut infos);
        infos
    }

    fn qos(infos: &[Option<PortInfo>], i: usize) -> Option<Arc<PortQos>> {
        infos[i].as_ref().unwrap().qos.clone()
    }

    #[test]
    fn a_limiter_is_kept_while_its_limits_stay_and_replaced_when_they_change() {
        let mut limiters = PortLimiters::default();
        let first = publish(
            &mut limiters,
            &desired(&[
                ("calia", ingress(20_000_000)),
                ("calib", QosLimits::default()),
            ]),
        );
        let a = qos(&first, 0).expect("calia is limited");
        assert_eq!(a.limits(), ingress(20_000_000));
        assert!(qos(&first, 2).is_none(), "calib is unlimited");
        assert!(qos(&first, 3).is_none(), "the uplink has no limits");

        // Unchanged: the same limiter (its bucket's state) in the next tables.
        let again = publish(
            &mut limiters,
            &desired(&[
                ("calia", ingress(20_000_000)),
                ("calib", QosLimits::default()),
            ]),
        );
        assert!(Arc::ptr_eq(&a, &qos(&again, 0).unwrap()));

        // Changed: a new limiter with the new limits.
        let changed = publish(&mut limiters, &desired(&[("calia", ingress(5_000_000))]));
        let a2 = qos(&changed, 0).unwrap();
        assert!(!Arc::ptr_eq(&a, &a2));
        assert_eq!(a2.limits(), ingress(5_000_000));

        // Unlimited now: none, and limited again later is a fresh limiter.
        let unlimited = publish(&mut limiters, &desired(&[("calia", QosLimits::default())]));
        assert!(qos(&unlimited, 0).is_none());
        let back = publish(&mut limiters, &desired(&[("calia", ingress(5_000_000))]));
        assert!(!Arc::ptr_eq(&a2, &qos(&back, 0).unwrap()));
        assert!(limiters.by_name.len() == 1);
    }

    #[test]
    fn a_port_that_leaves_the_tables_is_forgotten() {
        let mut limiters = PortLimiters::default();
        publish(&mut limiters, &desired(&[("calib", ingress(20_000_000))]));
        assert_eq!(limiters.by_name.len(), 1);
        let mut without_b = vec![port("calia", PortKind::Workload)];
        limiters.assign(&desired(&[("calib", ingress(20_000_000))]), &mut without_b);
        assert!(limiters.by_name.is_empty());
    }
}
