//! Bandwidth limits that tc qdiscs put on workloads' veths, as the CNI `bandwidth` plugin
//! chained after brindle-cni sets them, read back so that the vRouter enforces them.
//!
//! The plugin shapes with qdiscs the vRouter bypasses (it moves a workload's frames with
//! AF_XDP, before tc ingress and without the qdisc on transmit), so a conflist that chains
//! it, as Calico's do, would otherwise get no limit at all. What the plugin builds (its
//! `CreateIngressQdisc`/`CreateEgressQdisc`):
//! - traffic **to** the workload (its ingress limit): a root `tbf` on the host veth;
//! - traffic **from** the workload (its egress limit): an `ingress` qdisc on the host veth
//!   whose filter redirects (`mirred`) every frame to an `ifb` device, and a root `tbf` there.
//!
//! Read with every datastore change and every [`REREAD`] besides, like the TAP registry: the
//! plugin runs after brindle-cni's ADD has written the endpoint, so the limit shows up a moment
//! after the workload. One dump of the qdiscs, plus one filter dump per workload veth that has
//! an ingress qdisc.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cli::cni::plumbing::netlink::Rtnl;
use fastpath::qos::{DirectionLimits, QosLimits, Rate};
use rtnetlink::packet_core::Nla;
use rtnetlink::packet_route::tc::{
    TcActionAttribute, TcActionMirrorOption, TcActionOption, TcAttribute, TcFilterU32Option,
    TcHandle, TcMessage, TcOption,
};

/// How often the qdiscs are read again when the datastore brings nothing.
pub const REREAD: Duration = Duration::from_secs(1);

/// `TCA_TBF_PARMS` and `TCA_TBF_RATE64` (include/uapi/linux/pkt_sched.h).
const TCA_TBF_PARMS: u16 = 1;
/// `TCA_OPTIONS` (include/uapi/linux/rtnetlink.h), and the type bits of an attribute's type.
const TCA_OPTIONS: u16 = 2;
const NLA_TYPE_MASK: u16 = 0x3fff;
const TCA_TBF_RATE64: u16 = 4;
/// A psched tick is 64 ns (`PSCHED_SHIFT`, include/net/pkt_sched.h): `tc_tbf_qopt.buffer`,
/// the bucket's depth, is a time at the rate in these ticks.
const PSCHED_TICK_NS: u128 = 64;

/// The limits found on the workload veths, as last read.
#[derive(Debug, Default)]
pub struct TcLimits {
    by_interface: BTreeMap<String, QosLimits>,
    read_at: Option<Instant>,
}

impl TcLimits {
    /// The limits found on `interface`'s veth; unlimited when none.
    pub fn of(&self, interface: &str) -> QosLimits {
        self.by_interface
            .get(interface)
            .copied()
            .unwrap_or_default()
    }

    /// [`REREAD`] has passed since the last read (or there was none).
    pub fn due(&self) -> bool {
        self.read_at.is_none_or(|t| t.elapsed() >= REREAD)
    }

    /// Reads the qdiscs of `interfaces` (the workloads' host veths) again; true if a limit
    /// changed. A failed read keeps what was read before.
    pub fn refresh<'a>(&mut self, interfaces: impl IntoIterator<Item = &'a str>) -> bool {
        self.read_at = Some(Instant::now());
        let interfaces: Vec<&str> = interfaces.into_iter().collect();
        let found = match read(&interfaces) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the workloads' tc qdiscs; keeping the limits read before");
                return false;
            }
        };
        if found == self.by_interface {
            return false;
        }
        for (name, limits) in &found {
            if self.by_interface.get(name) != Some(limits) {
                tracing::info!(interface = %name, ?limits, "a tc qdisc limits this workload's bandwidth; the vRouter enforces it");
            }
        }
        self.by_interface = found;
        true
    }
}

/// The workload's limits: each of `endpoint`'s (its `qosControls`), and where it sets none,
/// `tc`'s (the qdiscs on its veth).
pub fn merge(endpoint: QosLimits, tc: QosLimits) -> QosLimits {
    let direction = |e: DirectionLimits, t: DirectionLimits| DirectionLimits {
        bandwidth: e.bandwidth.or(t.bandwidth),
        packets: e.packets.or(t.packets),
    };
    QosLimits {
        ingress: direction(endpoint.ingress, tc.ingress),
        egress: direction(endpoint.egress, tc.egress),
    }
}

/// The limits tc qdiscs put on each of `interfaces` that has any, read over rtnetlink in the
/// calling thread's network namespace. The links are looked up only when some link has a
/// `tbf` or an `ingress` qdisc: most reads find neither and end after one dump.
pub fn read(interfaces: &[&str]) -> Result<BTreeMap<String, QosLimits>, String> {
    let mut found = BTreeMap::new();
    if interfaces.is_empty() {
        return Ok(found);
    }
    let rtnl = Rtnl::here("the node's namespace").map_err(|e| e.to_string())?;
    let qdiscs = rtnl.qdiscs().map_err(|e| e.to_string())?;
    if !qdiscs
        .iter()
        .any(|q| matches!(kind(q), Some("tbf" | "ingress")))
    {
        return Ok(found);
    }
    for name in interfaces {
        let Some(link) = rtnl.link(name).map_err(|e| e.to_string())? else {
            continue;
        };
        let index = link.index as i32;
        let ingress = root_tbf(&qdiscs, index);
        let mut egress = None;
        if has_ingress_qdisc(&qdiscs, index) {
            let filters = rtnl
                .ingress_filters(link.index)
                .map_err(|e| e.to_string())?;
            egress = redirect_target(&filters).and_then(|ifb| root_tbf(&qdiscs, ifb));
        }
        let limits = QosLimits {
            ingress: DirectionLimits {
                bandwidth: ingress,
                packets: None,
            },
            egress: DirectionLimits {
                bandwidth: egress,
                packets: None,
            },
        };
        if !limits.is_unlimited() {
            found.insert(name.to_string(), limits);
        }
    }
    Ok(found)
}

fn kind(message: &TcMessage) -> Option<&str> {
    message.attributes.iter().find_map(|a| match a {
        TcAttribute::Kind(kind) => Some(kind.as_str()),
        _ => None,
    })
}

fn has_ingress_qdisc(qdiscs: &[TcMessage], index: i32) -> bool {
    qdiscs
        .iter()
        .any(|q| q.header.index == index && kind(q) == Some("ingress"))
}

/// The bandwidth of the root `tbf` on link `index`, if there is one.
fn root_tbf(qdiscs: &[TcMessage], index: i32) -> Option<Rate> {
    let tbf = qdiscs.iter().find(|q| {
        q.header.index == index && q.header.parent == TcHandle::ROOT && kind(q) == Some("tbf")
    })?;
    let options = tbf.attributes.iter().find_map(|a| match a {
        TcAttribute::Options(options) => Some(options),
        _ => None,
    })?;
    // netlink-packet-route does not know `tbf`: its options come as raw attributes, either
    // one by one or still nested in the `TCA_OPTIONS` they were sent in.
    let mut attributes = Vec::new();
    for option in options {
        if let TcOption::Other(nla) = option {
            let value = nla_value(nla);
            if nla.kind() == TCA_OPTIONS {
                attributes.extend(nested_attributes(&value));
            } else {
                attributes.push((nla.kind(), value));
            }
        }
    }
    let raw = |wanted: u16| {
        attributes
            .iter()
            .find(|(kind, _)| *kind == wanted)
            .map(|(_, value)| value.as_slice())
    };
    tbf_rate(raw(TCA_TBF_PARMS)?, raw(TCA_TBF_RATE64))
}

/// The attributes packed in a netlink attribute's value: each a `struct nlattr` (length,
/// type) and its payload, padded to four bytes. A truncated one ends the list.
fn nested_attributes(mut bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut attributes = Vec::new();
    while bytes.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > bytes.len() {
            break;
        }
        attributes.push((kind, bytes[4..len].to_vec()));
        bytes = &bytes[len.next_multiple_of(4).min(bytes.len())..];
    }
    attributes
}

fn nla_value(nla: &rtnetlink::packet_core::DefaultNla) -> Vec<u8> {
    let mut value = vec![0; nla.value_len()];
    nla.emit_value(&mut value);
    value
}

/// The rate and burst, in bits, of a `struct tc_tbf_qopt` (`parms`: two `tc_ratespec` of 12
/// bytes, the rate in bytes per second at offset 8, then `limit`, `buffer` at offset 28 and
/// `mtu`), with the 64-bit rate from `TCA_TBF_RATE64` when the kernel sent one (rates of 4
/// GB/s and more). `None` for a malformed or zero rate.
pub fn tbf_rate(parms: &[u8], rate64: Option<&[u8]>) -> Option<Rate> {
    let u32_at = |at: usize| -> Option<u32> {
        parms
            .get(at..at + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let rate32 = u32_at(8)?;
    let buffer_ticks = u32_at(28)?;
    let bytes_per_second = match rate64.and_then(|b| b.get(..8)) {
        Some(b) => u64::from_ne_bytes(b.try_into().ok()?),
        None => u64::from(rate32),
    };
    if bytes_per_second == 0 {
        return None;
    }
    let burst_bytes =
        u128::from(buffer_ticks) * PSCHED_TICK_NS * u128::from(bytes_per_second) / 1_000_000_000;
    Some(Rate {
        per_second: bytes_per_second.saturating_mul(8),
        burst: u64::try_from(burst_bytes.saturating_mul(8)).unwrap_or(u64::MAX),
    })
}

/// The link the first `mirred` action of these filters redirects to.
fn redirect_target(filters: &[TcMessage]) -> Option<i32> {
    filters
        .iter()
        .flat_map(|f| f.attributes.iter())
        .filter_map(|a| match a {
            TcAttribute::Options(options) => Some(options),
            _ => None,
        })
        .flatten()
        .filter_map(|o| match o {
            TcOption::U32(TcFilterU32Option::Action(actions)) => Some(actions),
            _ => None,
        })
        .flatten()
        .flat_map(|action| action.attributes.iter())
        .filter_map(|a| match a {
            TcActionAttribute::Options(options) => Some(options),
            _ => None,
        })
        .flatten()
        .find_map(|o| match o {
            TcActionOption::Mirror(TcActionMirrorOption::Parms(mirror)) => {
                Some(mirror.ifindex as i32)
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parms(rate_bytes: u32, buffer_ticks: u32) -> Vec<u8> {
        let mut parms = vec![0u8; 36];
        parms[8..12].copy_from_slice(&rate_bytes.to_ne_bytes());
        parms[28..32].copy_from_slice(&buffer_ticks.to_ne_bytes());
        parms
    }

    #[test]
    fn tbf_parameters_give_bits_per_second_and_burst_bits() {
        // 1 Mbit/s = 125,000 B/s; a 100,000-bit burst = 12,500 B = 100 ms = 1,562,500 ticks.
        let rate = tbf_rate(&parms(125_000, 1_562_500), None).unwrap();
        assert_eq!(rate.per_second, 1_000_000);
        assert_eq!(rate.burst, 100_000);
    }

    #[test]
    fn the_64_bit_rate_wins_over_the_32_bit_field() {
        // 40 Gbit/s = 5 GB/s: above u32, the kernel saturates the old field.
        let rate64 = 5_000_000_000u64.to_ne_bytes();
        let rate = tbf_rate(&parms(u32::MAX, 15_625), Some(&rate64)).unwrap();
        assert_eq!(rate.per_second, 40_000_000_000);
        // 15,625 ticks = 1 ms at 5 GB/s = 5 MB.
        assert_eq!(rate.burst, 40_000_000);
    }

    #[test]
    fn the_endpoints_limits_win_and_tc_fills_what_it_leaves_unset() {
        let rate = |per_second| Rate {
            per_second,
            burst: 1_000_000,
        };
        let endpoint = QosLimits {
            ingress: DirectionLimits {
                bandwidth: Some(rate(1_000_000)),
                packets: None,
            },
            egress: DirectionLimits::default(),
        };
        let tc = QosLimits {
            ingress: DirectionLimits {
                bandwidth: Some(rate(5_000_000)),
                packets: None,
            },
            egress: DirectionLimits {
                bandwidth: Some(rate(7_000_000)),
                packets: None,
            },
        };
        let merged = merge(endpoint, tc);
        assert_eq!(merged.ingress.bandwidth, Some(rate(1_000_000)));
        assert_eq!(merged.egress.bandwidth, Some(rate(7_000_000)));
        assert_eq!(
            merge(QosLimits::default(), QosLimits::default()),
            QosLimits::default()
        );
    }

    #[test]
    fn nested_attributes_are_split_and_a_truncated_one_ends_the_list() {
        let mut bytes = vec![40, 0, 1, 0];
        bytes.extend(parms(125_000, 1_562_500));
        bytes.extend([12, 0, 4, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
        bytes.extend([200, 0, 9, 0, 1]);
        let attributes = nested_attributes(&bytes);
        assert_eq!(attributes.len(), 2);
        assert_eq!(attributes[0].0, TCA_TBF_PARMS);
        assert_eq!(attributes[0].1.len(), 36);
        assert_eq!(
            attributes[1],
            (TCA_TBF_RATE64, vec![1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert!(nested_attributes(&[2, 0, 1, 0]).is_empty());
    }

    #[test]
    fn malformed_or_zero_parameters_give_nothing() {
        assert_eq!(tbf_rate(&[0u8; 20], None), None);
        assert_eq!(tbf_rate(&parms(0, 100), None), None);
        assert!(tbf_rate(&parms(125_000, 100), Some(&[1, 2])).is_some());
    }
}
