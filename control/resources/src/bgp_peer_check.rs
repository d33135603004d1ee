//! Calico's BGPPeer cross-field rules (the CEL rules on `BGPPeerSpec` and libcalico-go's
//! `validateBGPPeerSpec`), with Calico's messages, for [`crate::bgp`].

use std::net::IpAddr;

use crate::bgp::BgpPeerSpec;
use crate::selector;
use crate::validate::Errors;

pub(crate) fn check_peer_relations(errs: &mut Errors, peer: &BgpPeerSpec) {
    if peer.keep_original_next_hop == Some(true) && peer.next_hop_mode.is_some() {
        errs.add(
            "spec.nextHopMode",
            format!("{:?}", peer.next_hop_mode.unwrap_or(crate::bgp::NextHopMode::Auto)),
            "keepOriginalNextHop and nextHopMode cannot both be set; keepOriginalNextHop is deprecated, use nextHopMode instead",
        );
    }
    check_reachable_by(errs, peer);
    if let Some(sel) = &peer.local_workload_selector {
        selector::check(errs, "spec.localWorkloadSelector", sel);
        if !peer.peer_ip.is_empty() {
            errs.add(
                "spec.peerIP",
                &peer.peer_ip,
                "peerIP must be empty when localWorkloadSelector is set",
            );
        }
        if let Some(ps) = &peer.peer_selector {
            errs.add(
                "spec.peerSelector",
                ps,
                "peerSelector must be empty when localWorkloadSelector is set",
            );
        }
        if peer.as_number.is_none() {
            errs.add(
                "spec.asNumber",
                "",
                "asNumber is required when localWorkloadSelector is set",
            );
        }
        // Calico peers with workloads (a VM running BGP in a pod); brindle's speaker only
        // peers with addresses and nodes, so the peering is refused rather than ignored.
        errs.add(
            "spec.localWorkloadSelector",
            sel,
            "peering with local workloads is not supported by brindle",
        );
    }
}

/// `reachableBy`: the gateway address the peer is reached through, of the peer's family.
fn check_reachable_by(errs: &mut Errors, peer: &BgpPeerSpec) {
    if peer.reachable_by.is_empty() {
        return;
    }
    let Ok(gateway) = peer.reachable_by.parse::<IpAddr>() else {
        errs.add(
            "spec.reachableBy",
            &peer.reachable_by,
            "reachableBy must be an IP address",
        );
        return;
    };
    if peer.peer_ip.is_empty() {
        errs.add(
            "spec.reachableBy",
            &peer.reachable_by,
            "reachableBy must be empty when peerIP is empty",
        );
    } else if let Some((address, _)) = peer.peer_address() {
        if address.is_ipv4() != gateway.is_ipv4() {
            errs.add(
                "spec.reachableBy",
                &peer.reachable_by,
                "ReachableBy and PeerIP address family mismatched",
            );
        }
    }
}
