//! Calico's endpoint checks (libcalico-go `validateWorkloadEndpointSpec`,
//! `validateWorkloadEndpointPort`, `validateEndpointPort` and the HostEndpoint CEL rules), with
//! Calico's reasons, for the two endpoint kinds in [`crate::endpoint`].

use std::net::IpAddr;

use ipnet::IpNet;

use crate::common::{check_protocol, is_port_name};
use crate::endpoint::EndpointPort;
use crate::validate::{check_cidr, check_ip, field, index, Errors};

/// Which endpoint kind a port belongs to: Calico checks them with different types
/// (`WorkloadEndpointPort` may be an unnamed host port, `EndpointPort` may not).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortOwner {
    Workload,
    Host,
}

impl PortOwner {
    fn type_name(self) -> &'static str {
        match self {
            PortOwner::Workload => "WorkloadEndpointPort",
            PortOwner::Host => "EndpointPort",
        }
    }
}

pub(crate) fn check_ports(errs: &mut Errors, path: &str, ports: &[EndpointPort], owner: PortOwner) {
    for (i, p) in ports.iter().enumerate() {
        let at = index(path, i);
        let host_port = p.host_port.unwrap_or(0);
        if p.name.is_empty() {
            // A workload's unnamed port is a hostPort mapping (a pod's `hostPort`).
            if owner == PortOwner::Host || host_port == 0 {
                let reason = match owner {
                    PortOwner::Workload => {
                        "WorkloadEndpointPort name must not be empty if no HostPort is specified"
                    }
                    PortOwner::Host => "EndpointPort name must not be empty",
                };
                errs.add(&field(&at, "name"), "", reason);
            }
        } else if !is_port_name(&p.name) {
            errs.add(
                &field(&at, "name"),
                &p.name,
                "port name must be at most 15 lowercase alphanumerics or '-', with a letter, no '--', not starting or ending with '-'",
            );
        }
        if !(1..=65535).contains(&p.port) {
            errs.add(
                &field(&at, "port"),
                p.port,
                "port must be between 1 and 65535",
            );
        }
        // Calico's port protocol has no default: a missing one is protocol 0, which does not
        // support ports.
        let supports = match &p.protocol {
            None => false,
            Some(proto) => {
                check_protocol(errs, &field(&at, "protocol"), proto);
                proto.number().is_err() || proto.supports_ports()
            }
        };
        if !supports {
            errs.add(
                &field(&at, "protocol"),
                p.protocol
                    .as_ref()
                    .map(|x| x.0.to_string())
                    .unwrap_or_default(),
                format!("{} protocol does not support ports.", owner.type_name()),
            );
        }
        if !(0..=65535).contains(&host_port) {
            errs.add(
                &field(&at, "hostPort"),
                host_port,
                "port must be between 0 and 65535",
            );
        }
        if let Some(ip) = &p.host_ip {
            // Calico's `net` tag: an address or a CIDR.
            if !ip.is_empty() {
                check_cidr(errs, &field(&at, "hostIP"), ip);
            }
        }
    }
}

/// Workload networks are the workload's own addresses: "Currently only /32 for IPv4 and /128
/// for IPv6 networks are supported." Returns the networks that parse, for the NAT check.
pub(crate) fn check_ip_networks(errs: &mut Errors, path: &str, networks: &[String]) -> Vec<IpNet> {
    let mut out = Vec::new();
    for (i, n) in networks.iter().enumerate() {
        let at = index(path, i);
        if let Some(net) = check_cidr(errs, &at, n) {
            if net.prefix_len() != net.max_prefix_len() {
                errs.add(&at, n, "IP network contains multiple addresses");
            }
            out.push(net);
        }
    }
    out
}

/// `ipv4Gateway` / `ipv6Gateway`: an address of that family.
pub(crate) fn check_gateway(errs: &mut Errors, path: &str, value: &str, v4: bool) {
    if value.is_empty() {
        return;
    }
    if let Some(ip) = check_ip(errs, path, value) {
        if ip.is_ipv4() != v4 {
            let family = if v4 { "IPv4" } else { "IPv6" };
            errs.add(
                path,
                value,
                format!("invalid {family} gateway address specified"),
            );
        }
    }
}

/// Each NAT is to one of the endpoint's own addresses, both ends of one IP version.
pub(crate) fn check_ip_nats(
    errs: &mut Errors,
    path: &str,
    nats: &[crate::endpoint::IpNat],
    networks: &[IpNet],
) {
    for (i, nat) in nats.iter().enumerate() {
        let at = index(path, i);
        let internal_at = field(&at, "internalIP");
        let internal = check_ip(errs, &internal_at, &nat.internal_ip);
        let external = check_ip(errs, &field(&at, "externalIP"), &nat.external_ip);
        if let Some(internal) = internal {
            if !networks.iter().any(|n| n.contains(&internal)) {
                errs.add(
                    &internal_at,
                    &nat.internal_ip,
                    "NAT is not in the endpoint networks (spec.ipNetworks)",
                );
            }
            if external.is_some_and(|e: IpAddr| e.is_ipv4() != internal.is_ipv4()) {
                errs.add(
                    &field(&at, "externalIP"),
                    &nat.external_ip,
                    "mismatched IP versions",
                );
            }
        }
    }
}
