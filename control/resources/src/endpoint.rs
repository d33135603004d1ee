//! Endpoints policy applies to: WorkloadEndpoint (a workload's interface) and HostEndpoint (a
//! host's own interface).

use crate::common::{Protocol, StringOrNumber};
use crate::endpoint_check::{
    check_gateway, check_ip_nats, check_ip_networks, check_ports, PortOwner,
};
use crate::kind::Kind;
use crate::macros::calico_struct;
use crate::meta::Metadata;
use crate::object::Spec;
use crate::qos::{check_qos_controls, QosControls};
use crate::validate::{
    check_cidr, check_interface_name, check_ip, check_mac, check_profile_name,
    check_subdomain_name, index, Errors,
};

calico_struct! {
    /// A named port of an endpoint (policies can match it by name).
    pub struct EndpointPort {
        "name" => pub name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        "protocol" => pub protocol: Option<Protocol>,
        "port" => pub port: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        "hostPort" => pub host_port: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "hostIP" => pub host_ip: Option<String>,
    }
}

calico_struct! {
    /// A 1:1 NAT of an outside address to one of the workload's (floating IP).
    pub struct IpNat {
        "internalIP" => pub internal_ip: String,
        "externalIP" => pub external_ip: String,
    }
}

fn check_profiles(errs: &mut Errors, path: &str, profiles: &[String]) {
    for (i, p) in profiles.iter().enumerate() {
        check_profile_name(errs, &index(path, i), p);
    }
}

// ---- WorkloadEndpoint --------------------------------------------------------------------

calico_struct! {
    pub struct WorkloadEndpointSpec {
        #[serde(skip_serializing_if = "String::is_empty")]
        "orchestrator" => pub orchestrator: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        "workload" => pub workload: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        "node" => pub node: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        "containerID" => pub container_id: String as StringOrNumber,
        #[serde(skip_serializing_if = "String::is_empty")]
        "pod" => pub pod: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        "endpoint" => pub endpoint: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        "serviceAccountName" => pub service_account_name: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "ipNetworks" => pub ip_networks: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "ipNATs" => pub ip_nats: Vec<IpNat>,
        #[serde(skip_serializing_if = "String::is_empty")]
        "ipv4Gateway" => pub ipv4_gateway: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        "ipv6Gateway" => pub ipv6_gateway: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "profiles" => pub profiles: Vec<String>,
        "interfaceName" => pub interface_name: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        "mac" => pub mac: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "ports" => pub ports: Vec<EndpointPort>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "allowSpoofedSourcePrefixes" => pub allow_spoofed_source_prefixes: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        /// Boxed: most endpoints have none, and it would double every `Resource`'s size.
        "qosControls" => pub qos_controls: Option<Box<QosControls>>,
    }
}

/// libcalico-go's workload endpoint name: `<node>-<orchestrator>-<workload>-<endpoint>`, with
/// every '-' inside a part doubled so that the parts can be told apart again.
pub fn workload_endpoint_name(
    node: &str,
    orchestrator: &str,
    workload: &str,
    endpoint: &str,
) -> String {
    [node, orchestrator, workload, endpoint]
        .iter()
        .map(|p| p.replace('-', "--"))
        .collect::<Vec<_>>()
        .join("-")
}

impl WorkloadEndpointSpec {
    /// The workload's name as calicoctl shows it (the pod for Kubernetes, else `workload`).
    pub fn workload_name(&self) -> &str {
        if self.pod.is_empty() {
            &self.workload
        } else {
            &self.pod
        }
    }
}

impl Spec for WorkloadEndpointSpec {
    const KIND: Kind = Kind::WorkloadEndpoint;

    fn apply_defaults(&mut self, meta: &mut Metadata) {
        meta.namespace
            .get_or_insert_with(|| crate::meta::DEFAULT_NAMESPACE.into());
    }

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_subdomain_name(errs, "metadata.name", &meta.name);
        if self.node.is_empty() {
            errs.add("spec.node", "", "node is required");
        } else {
            check_subdomain_name(errs, "spec.node", &self.node);
        }
        // Calico's `interface` tag: `*` or a name (an empty name fails it too).
        if self.interface_name.is_empty() {
            errs.add("spec.interfaceName", "", "interfaceName is required");
        } else if self.interface_name != "*" {
            check_interface_name(errs, "spec.interfaceName", &self.interface_name);
        }
        if !self.mac.is_empty() {
            check_mac(errs, "spec.mac", &self.mac);
        }
        let networks = check_ip_networks(errs, "spec.ipNetworks", &self.ip_networks);
        for (i, n) in self.allow_spoofed_source_prefixes.iter().enumerate() {
            check_cidr(errs, &index("spec.allowSpoofedSourcePrefixes", i), n);
        }
        check_ip_nats(errs, "spec.ipNATs", &self.ip_nats, &networks);
        check_gateway(errs, "spec.ipv4Gateway", &self.ipv4_gateway, true);
        check_gateway(errs, "spec.ipv6Gateway", &self.ipv6_gateway, false);
        check_profiles(errs, "spec.profiles", &self.profiles);
        check_ports(errs, "spec.ports", &self.ports, PortOwner::Workload);
        if let Some(qos) = &self.qos_controls {
            check_qos_controls(errs, "spec.qosControls", qos);
        }
    }

    fn table_row(&self, meta: &Metadata, wide: bool) -> Vec<String> {
        let networks = self.ip_networks.join(",");
        if wide {
            let nats: Vec<String> = self
                .ip_nats
                .iter()
                .map(|n| format!("{}<->{}", n.external_ip, n.internal_ip))
                .collect();
            vec![
                meta.name.clone(),
                self.workload_name().to_string(),
                self.node.clone(),
                networks,
                self.interface_name.clone(),
                self.profiles.join(","),
                nats.join(","),
            ]
        } else {
            vec![
                self.workload_name().to_string(),
                self.node.clone(),
                networks,
                self.interface_name.clone(),
            ]
        }
    }
}

// ---- HostEndpoint ------------------------------------------------------------------------

calico_struct! {
    pub struct HostEndpointSpec {
        "node" => pub node: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        "interfaceName" => pub interface_name: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "expectedIPs" => pub expected_ips: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "profiles" => pub profiles: Vec<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        "ports" => pub ports: Vec<EndpointPort>,
    }
}

impl Spec for HostEndpointSpec {
    const KIND: Kind = Kind::HostEndpoint;

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_subdomain_name(errs, "metadata.name", &meta.name);
        if self.node.is_empty() {
            errs.add("spec.node", "", "node must be specified");
        } else {
            check_subdomain_name(errs, "spec.node", &self.node);
        }
        // `*` is Calico's "all of the host's interfaces".
        if !self.interface_name.is_empty() && self.interface_name != "*" {
            check_interface_name(errs, "spec.interfaceName", &self.interface_name);
        }
        if self.interface_name.is_empty() && self.expected_ips.is_empty() {
            errs.add(
                "spec.interfaceName",
                "",
                "at least one of interfaceName or expectedIPs must be specified",
            );
        }
        for (i, ip) in self.expected_ips.iter().enumerate() {
            check_ip(errs, &index("spec.expectedIPs", i), ip);
        }
        check_profiles(errs, "spec.profiles", &self.profiles);
        check_ports(errs, "spec.ports", &self.ports, PortOwner::Host);
    }

    fn table_row(&self, meta: &Metadata, wide: bool) -> Vec<String> {
        if wide {
            vec![
                meta.name.clone(),
                self.node.clone(),
                self.interface_name.clone(),
                self.expected_ips.join(","),
                self.profiles.join(","),
            ]
        } else {
            vec![meta.name.clone(), self.node.clone()]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_double_dashes() {
        assert_eq!(
            workload_endpoint_name("node1", "k8s", "my-nginx-b1337a", "eth0"),
            "node1-k8s-my--nginx--b1337a-eth0"
        );
    }
}
