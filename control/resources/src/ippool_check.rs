//! Calico's IPPool checks (libcalico-go `validateIPPoolSpec` and the CEL rules on
//! `IPPoolSpec`), with Calico's messages, for [`crate::ippool`].

use ipnet::IpNet;

use crate::ippool::{AllowedUse, EncapMode, IpPoolSpec};
use crate::validate::{field, index, parse_cidr_or_ip, Errors};

/// `spec.cidr`: a strictly masked network outside the link-local ranges.
pub(crate) fn check_pool_cidr(errs: &mut Errors, cidr: &str) -> Option<IpNet> {
    if cidr.is_empty() {
        errs.add(
            "spec.cidr",
            "",
            "IPPool CIDR must be specified (cidr is required)",
        );
        return None;
    }
    let net = match cidr.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) if parse_cidr_or_ip(cidr).is_some() => {
            errs.add(
                "spec.cidr",
                cidr,
                "cidr needs a prefix length, e.g. 10.1.0.0/16",
            );
            return None;
        }
        Err(_) => {
            errs.add("spec.cidr", cidr, "IPPool CIDR must be a valid subnet");
            return None;
        }
    };
    if net.trunc() != net {
        errs.add(
            "spec.cidr",
            cidr,
            format!(
                "IPPool CIDR must be strictly masked: host bits are set (did you mean {}?)",
                net.trunc()
            ),
        );
        return None;
    }
    let (link_local, family): (IpNet, &str) = match net {
        IpNet::V4(_) => ("169.254.0.0/16".parse().expect("constant"), "IPv4"),
        IpNet::V6(_) => ("fe80::/10".parse().expect("constant"), "IPv6"),
    };
    if link_local.contains(&net) || net.contains(&link_local) {
        errs.add(
            "spec.cidr",
            cidr,
            format!("IPPool CIDR overlaps with {family} link local range {link_local}"),
        );
    }
    Some(net)
}

/// `spec.blockSize` within the family's range, and the pool at least one block big unless
/// the pool is disabled (a disabled pool only reserves its range).
pub(crate) fn check_block_size(errs: &mut Errors, pool: &IpPoolSpec, net: IpNet) {
    let (lo, hi) = match net {
        IpNet::V4(_) => (20, 32),
        IpNet::V6(_) => (116, 128),
    };
    let bs = pool.effective_block_size();
    if !(lo..=hi).contains(&bs) {
        errs.add(
            "spec.blockSize",
            bs,
            "blockSize must be between 20 and 32 for IPv4 pools, and between 116 and 128 for IPv6 pools",
        );
    } else if u32::from(net.prefix_len()) > bs && !pool.is_disabled() {
        errs.add(
            "spec.cidr",
            &pool.cidr,
            format!(
                "IP pool size is too small for use with Calico IPAM. It must be equal to or greater than the block size (prefix length {} is longer than blockSize {bs}).",
                net.prefix_len()
            ),
        );
    }
}

/// `spec.allowedUses`: each once; a LoadBalancer pool is for Services alone, announced by
/// BGP from every node, and never encapsulated.
pub(crate) fn check_allowed_uses(errs: &mut Errors, pool: &IpPoolSpec) {
    let Some(uses) = &pool.allowed_uses else {
        return;
    };
    for (i, u) in uses.iter().enumerate() {
        if uses[..i].contains(u) {
            errs.add(
                &index(&field("spec", "allowedUses"), i),
                format!("{u:?}"),
                "duplicate use",
            );
        }
    }
    let shown = || format!("{uses:?}");
    if uses.contains(&AllowedUse::Tunnel)
        && pool
            .namespace_selector
            .as_deref()
            .is_some_and(|s| !s.is_empty())
    {
        errs.add(
            "spec.namespaceSelector",
            pool.namespace_selector.as_deref().unwrap_or_default(),
            "IP Pool with AllowedUse Tunnel cannot have namespaceSelector",
        );
    }
    if !uses.contains(&AllowedUse::LoadBalancer) {
        return;
    }
    if uses.len() > 1 {
        errs.add(
            "spec.allowedUses",
            shown(),
            "LoadBalancer cannot be combined with Workload or Tunnel allowed uses",
        );
    }
    if pool.ipip() != EncapMode::Never || pool.vxlan() != EncapMode::Never {
        errs.add(
            "spec.allowedUses",
            shown(),
            "LoadBalancer IP pool cannot have IPIP or VXLAN enabled",
        );
    }
    if pool.disable_bgp_export == Some(true) {
        errs.add(
            "spec.disableBGPExport",
            "true",
            "LoadBalancer IP pools cannot disable BGP export",
        );
    }
    let node_selector = pool.node_selector.as_deref().unwrap_or("all()");
    if node_selector != "all()" && !node_selector.is_empty() {
        errs.add(
            "spec.nodeSelector",
            node_selector,
            "IP Pool with AllowedUse LoadBalancer must have nodeSelector set to all()",
        );
    }
}
