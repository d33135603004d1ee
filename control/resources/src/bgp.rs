//! BGP resources: BGPConfiguration (cluster-wide `default` or per node `node.<name>`) and
//! BGPPeer.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::bgp_peer_check::check_peer_relations;
use crate::common::{check_as_number, AsNumber, GoBool, LogSeverity};
use crate::duration::GoDuration;
use crate::kind::Kind;
use crate::macros::calico_struct;
use crate::meta::{Metadata, DEFAULT_CONFIG_NAME};
use crate::object::Spec;
use crate::selector;
use crate::validate::{check_cidr, check_duration, check_subdomain_name, field, index, Errors};

calico_struct! {
    pub struct ServiceIpBlock {
        "cidr" => pub cidr: String,
    }
}

calico_struct! {
    pub struct Community {
        "name" => pub name: String,
        "value" => pub value: String,
    }
}

calico_struct! {
    pub struct PrefixAdvertisement {
        "cidr" => pub cidr: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "communities" => pub communities: Vec<String>,
    }
}

/// Which address the BGP daemon listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BindMode {
    None,
    NodeIP,
}

calico_struct! {
    pub struct BgpConfigurationSpec {
        #[serde(skip_serializing_if = "Option::is_none")]
        "logSeverityScreen" => pub log_severity_screen: Option<LogSeverity>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "nodeToNodeMeshEnabled" => pub node_to_node_mesh_enabled: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "asNumber" => pub as_number: Option<AsNumber>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "listenPort" => pub listen_port: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "bindMode" => pub bind_mode: Option<BindMode>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "serviceClusterIPs" => pub service_cluster_ips: Vec<ServiceIpBlock>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "serviceExternalIPs" => pub service_external_ips: Vec<ServiceIpBlock>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "serviceLoadBalancerIPs" => pub service_load_balancer_ips: Vec<ServiceIpBlock>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "communities" => pub communities: Vec<Community>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "prefixAdvertisements" => pub prefix_advertisements: Vec<PrefixAdvertisement>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "nodeMeshMaxRestartTime" => pub node_mesh_max_restart_time: Option<String> as GoDuration,
    }
}

/// Calico's cluster defaults, applied to the BGPConfiguration named `default`.
pub const DEFAULT_AS_NUMBER: u32 = 64512;
pub const DEFAULT_BGP_PORT: i64 = 179;

impl BgpConfigurationSpec {
    pub fn mesh_enabled(&self) -> bool {
        self.node_to_node_mesh_enabled.unwrap_or(true)
    }

    pub fn as_number_or_default(&self) -> u32 {
        self.as_number
            .as_ref()
            .and_then(|a| a.value().ok())
            .unwrap_or(DEFAULT_AS_NUMBER)
    }
}

/// Communities: `aa:nn` (RFC 1997) or large `aa:nn:mm` (RFC 8092), 16/32-bit parts.
fn is_community(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [a, b] => a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok(),
        [a, b, c] => {
            a.parse::<u32>().is_ok() && b.parse::<u32>().is_ok() && c.parse::<u32>().is_ok()
        }
        _ => false,
    }
}

impl Spec for BgpConfigurationSpec {
    const KIND: Kind = Kind::BgpConfiguration;

    fn apply_defaults(&mut self, meta: &mut Metadata) {
        if meta.name == DEFAULT_CONFIG_NAME {
            self.as_number
                .get_or_insert(AsNumber::new(DEFAULT_AS_NUMBER));
            self.node_to_node_mesh_enabled.get_or_insert(true);
            self.log_severity_screen.get_or_insert(LogSeverity::Info);
            self.listen_port.get_or_insert(DEFAULT_BGP_PORT);
        }
    }

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_subdomain_name(errs, "metadata.name", &meta.name);
        // Calico: the cluster settings live in `default`; `node.<name>` overrides per node and
        // may not carry the cluster-only fields.
        let per_node = meta.name.starts_with("node.");
        if per_node {
            if self.node_to_node_mesh_enabled.is_some() {
                errs.add(
                    "spec.nodeToNodeMeshEnabled",
                    format!("{:?}", self.node_to_node_mesh_enabled),
                    "only the default BGPConfiguration may set this",
                );
            }
            if self.as_number.is_some() {
                errs.add(
                    "spec.asNumber",
                    self.as_number
                        .as_ref()
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    "only the default BGPConfiguration may set this",
                );
            }
        }
        if let Some(asn) = &self.as_number {
            check_as_number(errs, "spec.asNumber", asn);
        }
        if let Some(p) = self.listen_port {
            if !(1..=65535).contains(&p) {
                errs.add("spec.listenPort", p, "port must be between 1 and 65535");
            }
        }
        for (name, blocks) in [
            ("serviceClusterIPs", &self.service_cluster_ips),
            ("serviceExternalIPs", &self.service_external_ips),
            ("serviceLoadBalancerIPs", &self.service_load_balancer_ips),
        ] {
            for (i, b) in blocks.iter().enumerate() {
                check_cidr(
                    errs,
                    &field(&index(&field("spec", name), i), "cidr"),
                    &b.cidr,
                );
            }
        }
        for (i, c) in self.communities.iter().enumerate() {
            let at = index("spec.communities", i);
            if c.name.is_empty() {
                errs.add(&field(&at, "name"), "", "community name is required");
            }
            if !is_community(&c.value) {
                errs.add(
                    &field(&at, "value"),
                    &c.value,
                    "community must be aa:nn or large community aa:nn:mm",
                );
            }
        }
        for (i, pa) in self.prefix_advertisements.iter().enumerate() {
            let at = index("spec.prefixAdvertisements", i);
            check_cidr(errs, &field(&at, "cidr"), &pa.cidr);
            for (j, c) in pa.communities.iter().enumerate() {
                // Either a literal community or the name of one defined in `communities`.
                if !is_community(c) && !self.communities.iter().any(|d| &d.name == c) {
                    errs.add(
                        &index(&field(&at, "communities"), j),
                        c,
                        "not a community value nor the name of one in spec.communities",
                    );
                }
            }
        }
        if let Some(d) = &self.node_mesh_max_restart_time {
            check_duration(errs, "spec.nodeMeshMaxRestartTime", d);
            // Calico's CEL rules on BGPConfigurationSpec.
            if self.node_to_node_mesh_enabled == Some(false) {
                errs.add(
                    "spec.nodeMeshMaxRestartTime",
                    d,
                    "nodeMeshMaxRestartTime cannot be set when nodeToNodeMeshEnabled is false",
                );
            }
        }
        if !self.communities.is_empty() && self.prefix_advertisements.is_empty() {
            errs.add(
                "spec.communities",
                format!("{} communities", self.communities.len()),
                "communities are defined but not used in prefixAdvertisements",
            );
        }
    }

    fn table_row(&self, meta: &Metadata, _wide: bool) -> Vec<String> {
        vec![
            meta.name.clone(),
            self.log_severity_screen
                .map(|l| format!("{l:?}"))
                .unwrap_or_default(),
            self.node_to_node_mesh_enabled
                .map(|b| b.to_string())
                .unwrap_or_default(),
            self.as_number
                .as_ref()
                .map(|a| a.to_string())
                .unwrap_or_default(),
        ]
    }
}

// ---- BGPPeer -----------------------------------------------------------------------------

calico_struct! {
    pub struct BgpPeerSpec {
        /// Set: this peering is for that node only; empty: for every node (global).
        #[serde(skip_serializing_if = "String::is_empty")]
        "node" => pub node: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        "nodeSelector" => pub node_selector: Option<String>,
        #[serde(skip_serializing_if = "String::is_empty")]
        "peerIP" => pub peer_ip: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        "asNumber" => pub as_number: Option<AsNumber>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "peerSelector" => pub peer_selector: Option<String>,
        // Go `bool` with `omitempty` in Calico: false is not written.
        #[serde(skip_serializing_if = "crate::common::is_unset_or_false")]
        "keepOriginalNextHop" => pub keep_original_next_hop: Option<bool> as GoBool,
        #[serde(skip_serializing_if = "Option::is_none")]
        "sourceAddress" => pub source_address: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "maxRestartTime" => pub max_restart_time: Option<String> as GoDuration,
        #[serde(skip_serializing_if = "Option::is_none")]
        "localASNumber" => pub local_as_number: Option<AsNumber>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "nextHopMode" => pub next_hop_mode: Option<NextHopMode>,
        #[serde(skip_serializing_if = "String::is_empty")]
        "reachableBy" => pub reachable_by: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        "localWorkloadSelector" => pub local_workload_selector: Option<String>,
    }
}

/// How the next hop of routes sent to a peer is set (Calico's successor of
/// `keepOriginalNextHop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NextHopMode {
    Auto,
    #[serde(rename = "Self")]
    SelfAddress,
    Keep,
}

impl BgpPeerSpec {
    /// `peerIP` as an address and optional port (`10.0.0.1`, `10.0.0.1:1179`, `[fd00::1]:1179`).
    pub fn peer_address(&self) -> Option<(IpAddr, Option<u16>)> {
        parse_peer_ip(&self.peer_ip)
    }
}

fn parse_peer_ip(s: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some((ip, None));
    }
    s.parse::<SocketAddr>()
        .ok()
        .map(|sa| (sa.ip(), Some(sa.port())))
}

impl Spec for BgpPeerSpec {
    const KIND: Kind = Kind::BgpPeer;

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_subdomain_name(errs, "metadata.name", &meta.name);
        if !self.node.is_empty() {
            check_subdomain_name(errs, "spec.node", &self.node);
            if self.node_selector.is_some() {
                errs.add(
                    "spec.nodeSelector",
                    self.node_selector.clone().unwrap_or_default(),
                    "node and nodeSelector cannot both be set",
                );
            }
        }
        if let Some(s) = &self.node_selector {
            selector::check(errs, "spec.nodeSelector", s);
        }
        check_peer_relations(errs, self);
        if let Some(s) = &self.peer_selector {
            selector::check(errs, "spec.peerSelector", s);
            // Calico: a peerSelector names Calico nodes as peers; their addresses and AS
            // numbers come from their Node resources.
            if !self.peer_ip.is_empty() {
                errs.add(
                    "spec.peerIP",
                    &self.peer_ip,
                    "peerIP cannot be set with peerSelector",
                );
            }
            if let Some(asn) = &self.as_number {
                errs.add(
                    "spec.asNumber",
                    asn.to_string(),
                    "asNumber cannot be set with peerSelector",
                );
            }
        } else {
            if self.peer_ip.is_empty() && self.local_workload_selector.is_none() {
                errs.add("spec.peerIP", "", "peerIP is required (or peerSelector)");
            } else {
                match parse_peer_ip(&self.peer_ip) {
                    None => errs.add(
                        "spec.peerIP",
                        &self.peer_ip,
                        "not a valid IP address, IPv4:port or [IPv6]:port",
                    ),
                    Some((_, Some(0))) => errs.add(
                        "spec.peerIP",
                        &self.peer_ip,
                        "port must be between 1 and 65535",
                    ),
                    Some(_) => {}
                }
            }
            // Calico's validator lets this pass, but its confd then writes AS 0 for the
            // peer, which BIRD refuses: no session either way, so say so at apply.
            if self.as_number.is_none() && !self.peer_ip.is_empty() {
                errs.add(
                    "spec.asNumber",
                    "",
                    "asNumber is required with peerIP (the peer's AS; there is no default)",
                );
            }
        }
        if let Some(asn) = &self.as_number {
            check_as_number(errs, "spec.asNumber", asn);
        }
        if let Some(asn) = &self.local_as_number {
            check_as_number(errs, "spec.localASNumber", asn);
        }
        if let Some(sa) = &self.source_address {
            if sa != "UseNodeIP" && sa != "None" {
                errs.add(
                    "spec.sourceAddress",
                    sa,
                    "sourceAddress must be UseNodeIP or None",
                );
            }
        }
        if let Some(d) = &self.max_restart_time {
            check_duration(errs, "spec.maxRestartTime", d);
        }
    }

    fn table_row(&self, meta: &Metadata, wide: bool) -> Vec<String> {
        let node = if !self.node.is_empty() {
            self.node.clone()
        } else if let Some(sel) = &self.node_selector {
            sel.clone()
        } else {
            "(global)".to_string()
        };
        let mut row = vec![
            meta.name.clone(),
            self.peer_ip.clone(),
            node,
            self.as_number
                .as_ref()
                .map(|a| a.to_string())
                .unwrap_or_default(),
        ];
        if wide {
            row.push(self.peer_selector.clone().unwrap_or_default());
        }
        row
    }
}
