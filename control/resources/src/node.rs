//! Node: one host of the cluster, its BGP identity and addresses.

use crate::common::{check_as_number, AsNumber};
use crate::kind::Kind;
use crate::macros::calico_struct;
use crate::meta::Metadata;
use crate::object::Spec;
use crate::validate::{
    check_ip, check_ip_with_prefix, check_mac, check_subdomain_name, field, index, Errors,
};

calico_struct! {
    pub struct NodeBgpSpec {
        #[serde(skip_serializing_if = "Option::is_none")]
        "asNumber" => pub as_number: Option<AsNumber>,
        /// The node's address with its subnet's prefix length, e.g. `10.0.0.5/24`.
        #[serde(skip_serializing_if = "String::is_empty")]
        "ipv4Address" => pub ipv4_address: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        "ipv6Address" => pub ipv6_address: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        "ipv4IPIPTunnelAddr" => pub ipv4_ipip_tunnel_addr: String,
        /// Set: this node is a route reflector with that cluster ID (RFC 4456 section 7).
        #[serde(skip_serializing_if = "String::is_empty")]
        "routeReflectorClusterID" => pub route_reflector_cluster_id: String,
    }
}

calico_struct! {
    pub struct OrchRef {
        #[serde(skip_serializing_if = "String::is_empty")]
        "nodeName" => pub node_name: String,
        "orchestrator" => pub orchestrator: String,
    }
}

calico_struct! {
    pub struct NodeAddress {
        "address" => pub address: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        "type" => pub address_type: String,
    }
}

calico_struct! {
    pub struct NodeSpec {
        #[serde(skip_serializing_if = "Option::is_none")]
        "bgp" => pub bgp: Option<NodeBgpSpec>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "addresses" => pub addresses: Vec<NodeAddress>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "orchRefs" => pub orch_refs: Vec<OrchRef>,
        #[serde(skip_serializing_if = "String::is_empty")]
        "ipv4VXLANTunnelAddr" => pub ipv4_vxlan_tunnel_addr: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        "vxlanTunnelMACAddr" => pub vxlan_tunnel_mac_addr: String,
    }
}

impl NodeSpec {
    /// The node's IPv4 address without prefix length, if it has one.
    pub fn ipv4(&self) -> Option<std::net::Ipv4Addr> {
        let addr = &self.bgp.as_ref()?.ipv4_address;
        addr.split('/').next()?.parse().ok()
    }
}

impl Spec for NodeSpec {
    const KIND: Kind = Kind::Node;

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_subdomain_name(errs, "metadata.name", &meta.name);
        if let Some(bgp) = &self.bgp {
            if let Some(asn) = &bgp.as_number {
                check_as_number(errs, "spec.bgp.asNumber", asn);
            }
            if !bgp.ipv4_address.is_empty() {
                check_ip_with_prefix(errs, "spec.bgp.ipv4Address", &bgp.ipv4_address);
                if bgp.ipv4_address.contains(':') {
                    errs.add(
                        "spec.bgp.ipv4Address",
                        &bgp.ipv4_address,
                        "not an IPv4 address",
                    );
                }
            }
            if !bgp.ipv6_address.is_empty() {
                check_ip_with_prefix(errs, "spec.bgp.ipv6Address", &bgp.ipv6_address);
                if !bgp.ipv6_address.contains(':') {
                    errs.add(
                        "spec.bgp.ipv6Address",
                        &bgp.ipv6_address,
                        "not an IPv6 address",
                    );
                }
            }
            if !bgp.ipv4_ipip_tunnel_addr.is_empty() {
                check_ip(
                    errs,
                    "spec.bgp.ipv4IPIPTunnelAddr",
                    &bgp.ipv4_ipip_tunnel_addr,
                );
            }
            // The cluster ID is written as an IPv4 address (a 32-bit number).
            if !bgp.route_reflector_cluster_id.is_empty()
                && bgp
                    .route_reflector_cluster_id
                    .parse::<std::net::Ipv4Addr>()
                    .is_err()
            {
                errs.add(
                    "spec.bgp.routeReflectorClusterID",
                    &bgp.route_reflector_cluster_id,
                    "must be written as an IPv4 address",
                );
            }
        }
        for (i, a) in self.addresses.iter().enumerate() {
            check_ip_with_prefix(
                errs,
                &field(&index("spec.addresses", i), "address"),
                &a.address,
            );
        }
        if !self.ipv4_vxlan_tunnel_addr.is_empty() {
            check_ip(
                errs,
                "spec.ipv4VXLANTunnelAddr",
                &self.ipv4_vxlan_tunnel_addr,
            );
        }
        if !self.vxlan_tunnel_mac_addr.is_empty() {
            check_mac(errs, "spec.vxlanTunnelMACAddr", &self.vxlan_tunnel_mac_addr);
        }
    }

    fn table_row(&self, meta: &Metadata, wide: bool) -> Vec<String> {
        if !wide {
            return vec![meta.name.clone()];
        }
        let bgp = self.bgp.clone().unwrap_or_default();
        vec![
            meta.name.clone(),
            bgp.as_number
                .map(|a| a.to_string())
                .unwrap_or_else(|| "(64512)".into()),
            bgp.ipv4_address,
            bgp.ipv6_address,
        ]
    }
}
