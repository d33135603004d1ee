//! Whether a side's packets took the intended path.

use super::*;

/// Whether `evidence` shows the side's packets on its intended path; the reason if not.
pub fn check_path(
    side: Side,
    frame_size: usize,
    received: u64,
    evidence: &PathEvidence,
) -> Result<(), String> {
    let ipip = side.encap == Encap::Ipip;
    let (wanted, unwanted, wanted_name, unwanted_name) = if ipip {
        (
            evidence.capture_ipip,
            evidence.capture_bare,
            "inside IPIP",
            "bare",
        )
    } else {
        (
            evidence.capture_bare,
            evidence.capture_ipip,
            "bare",
            "inside IPIP",
        )
    };
    if wanted < PATH_PINGS || unwanted > 0 {
        return Err(format!(
            "of {PATH_PINGS} pings, the capture on node 1's segment port saw {wanted} ICMP \
             packets {wanted_name} (want at least {PATH_PINGS}) and {unwanted} {unwanted_name} \
             (want 0)"
        ));
    }
    if received == 0 {
        return Err("the sink received nothing".into());
    }
    if evidence.uplink_tx_packets < received {
        return Err(format!(
            "node 1's uplink sent {} frames during the UDP run, fewer than the {received} \
             the sink received",
            evidence.uplink_tx_packets
        ));
    }
    let expected = expected_uplink_frame_len(frame_size, side.encap) as f64;
    match evidence.uplink_tx_bytes_per_packet {
        // ARP and the odd IPv6 frame may move the mean a little; a missing or extra
        // 20-byte header moves it by 20.
        Some(mean) if (mean - expected).abs() <= 4.0 => {}
        other => {
            return Err(format!(
                "node 1's uplink frames averaged {other:?} bytes, want {expected} for {} \
                 {frame_size}-byte frames",
                if ipip { "IPIP-wrapped" } else { "bare" }
            ))
        }
    }
    let at_least = |name: &str, value: Option<u64>| match value {
        Some(v) if v >= received => Ok(()),
        other => Err(format!(
            "{name} is {other:?}, want at least the {received} datagrams received"
        )),
    };
    if evidence.tunnel_tx_packets_node1.is_some() || evidence.tunnel_rx_packets_node2.is_some() {
        at_least(
            "tunl0 tx_packets on node 1",
            evidence.tunnel_tx_packets_node1,
        )?;
        at_least(
            "tunl0 rx_packets on node 2",
            evidence.tunnel_rx_packets_node2,
        )?;
    }
    if side.forwarder == Forwarder::Brindle {
        at_least(
            "brindle forwarded on node 1",
            evidence.brindle_forwarded_node1,
        )?;
        let encapsulated = evidence.brindle_ipip_encapsulated_node1;
        let decapsulated = evidence.brindle_ipip_decapsulated_node2;
        if ipip {
            at_least("brindle ipip_encapsulated on node 1", encapsulated)?;
            at_least("brindle ipip_decapsulated on node 2", decapsulated)?;
        } else if encapsulated != Some(0) || decapsulated != Some(0) {
            return Err(format!(
                "plain routes, yet ipip_encapsulated on node 1 is {encapsulated:?} and \
                 ipip_decapsulated on node 2 is {decapsulated:?}"
            ));
        }
    }
    Ok(())
}

/// The size veth counts for one generator frame on node 1's uplink.
pub fn expected_uplink_frame_len(frame_size: usize, encap: Encap) -> usize {
    let bare = frame_size.saturating_sub(FCS_LEN);
    match encap {
        Encap::Plain => bare,
        Encap::Ipip => bare + IPIP_OVERHEAD,
    }
}
