//! FelixConfiguration (the node agent's settings, cluster-wide `default` or `node.<name>`) and
//! ClusterInformation. Felix has well over a hundred settings; the ones brindle reads are typed
//! here, every other one is kept in `extra` and written back unchanged.

use serde::{Deserialize, Serialize};

use crate::common::{check_protocol, LogSeverity, Protocol};
use crate::duration::GoDuration;
use crate::fold::{AnyCase, CaseFoldEnum};
use crate::kind::Kind;
use crate::macros::calico_struct;
use crate::meta::{Metadata, DEFAULT_CONFIG_NAME};
use crate::object::Spec;
use crate::validate::{check_cidr, check_duration, check_subdomain_name, field, index, Errors};

/// What happens to traffic from a workload to its own host (Felix's
/// `defaultEndpointToHostAction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndpointToHostAction {
    Drop,
    Accept,
    Return,
}

impl CaseFoldEnum for EndpointToHostAction {
    const VARIANTS: &'static [(&'static str, Self)] = &[
        ("Drop", EndpointToHostAction::Drop),
        ("Accept", EndpointToHostAction::Accept),
        ("Return", EndpointToHostAction::Return),
    ];
    const EXPECTED: &'static str = "one of Drop, Accept, Return (any case)";
}

calico_struct! {
    /// A host port kept open whatever the policy says, so that a bad policy cannot lock the
    /// operator out (Felix's failsafe ports).
    pub struct ProtoPort {
        "protocol" => pub protocol: Protocol,
        "port" => pub port: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        "net" => pub net: Option<String>,
    }
}

impl ProtoPort {
    pub fn new(protocol: Protocol, port: u16) -> ProtoPort {
        ProtoPort {
            protocol,
            port: port.into(),
            ..ProtoPort::default()
        }
    }
}

calico_struct! {
    /// `logSeverity*` and `defaultEndpointToHostAction` are read in any case (`info`, `drop`)
    /// and printed canonically: Calico's FelixConfiguration schema declares them
    /// `^(?i)(...)?$` and Felix parses them case-insensitively. BGPConfiguration's
    /// `logSeverityScreen` has no such pattern and stays exact.
    pub struct FelixConfigurationSpec {
        #[serde(skip_serializing_if = "Option::is_none")]
        "logSeverityScreen" => pub log_severity_screen: Option<LogSeverity> as AnyCase<LogSeverity>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "logSeverityFile" => pub log_severity_file: Option<LogSeverity> as AnyCase<LogSeverity>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "logSeveritySys" => pub log_severity_sys: Option<LogSeverity> as AnyCase<LogSeverity>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "ipipEnabled" => pub ipip_enabled: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "ipipMTU" => pub ipip_mtu: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "vxlanEnabled" => pub vxlan_enabled: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "vxlanMTU" => pub vxlan_mtu: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "defaultEndpointToHostAction" => pub default_endpoint_to_host_action: Option<EndpointToHostAction> as AnyCase<EndpointToHostAction>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "failsafeInboundHostPorts" => pub failsafe_inbound_host_ports: Option<Vec<ProtoPort>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "failsafeOutboundHostPorts" => pub failsafe_outbound_host_ports: Option<Vec<ProtoPort>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "healthEnabled" => pub health_enabled: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "healthHost" => pub health_host: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "healthPort" => pub health_port: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "prometheusMetricsEnabled" => pub prometheus_metrics_enabled: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "prometheusMetricsHost" => pub prometheus_metrics_host: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "prometheusMetricsPort" => pub prometheus_metrics_port: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "routeRefreshInterval" => pub route_refresh_interval: Option<String> as GoDuration,
        #[serde(skip_serializing_if = "Option::is_none")]
        "reportingInterval" => pub reporting_interval: Option<String> as GoDuration,
        #[serde(skip_serializing_if = "Option::is_none")]
        "interfacePrefix" => pub interface_prefix: Option<String>,
    }
}

/// Felix's defaults for the settings brindle reads (documented in Calico's FelixConfiguration
/// reference); used by the node agent when a setting is absent. They are not written into the
/// resource, as Calico does not write them either.
pub mod felix_defaults {
    pub const IPIP_MTU: i64 = 1440;
    pub const HEALTH_PORT: i64 = 9099;
    pub const PROMETHEUS_METRICS_PORT: i64 = 9091;
    pub const ROUTE_REFRESH_INTERVAL_SECS: f64 = 90.0;
    pub const REPORTING_INTERVAL_SECS: f64 = 30.0;
    pub const INTERFACE_PREFIX: &str = "cali";
    /// tcp:22 (ssh), udp:68 (dhcp), tcp:179 (bgp), tcp:2379, 2380, 5473, 6443, 6666, 6667.
    pub const FAILSAFE_INBOUND: [(&str, u16); 9] = [
        ("TCP", 22),
        ("UDP", 68),
        ("TCP", 179),
        ("TCP", 2379),
        ("TCP", 2380),
        ("TCP", 5473),
        ("TCP", 6443),
        ("TCP", 6666),
        ("TCP", 6667),
    ];
    /// udp:53 (dns), udp:67 (dhcp), tcp:179, tcp:2379, 2380, 5473, 6443, 6666, 6667.
    pub const FAILSAFE_OUTBOUND: [(&str, u16); 9] = [
        ("UDP", 53),
        ("UDP", 67),
        ("TCP", 179),
        ("TCP", 2379),
        ("TCP", 2380),
        ("TCP", 5473),
        ("TCP", 6443),
        ("TCP", 6666),
        ("TCP", 6667),
    ];
}

fn check_port_field(errs: &mut Errors, path: &str, port: Option<i64>) {
    if let Some(p) = port {
        if !(1..=65535).contains(&p) {
            errs.add(path, p, "port must be between 1 and 65535");
        }
    }
}

fn check_proto_ports(errs: &mut Errors, path: &str, ports: &Option<Vec<ProtoPort>>) {
    for (i, pp) in ports.iter().flatten().enumerate() {
        let at = index(path, i);
        check_protocol(errs, &field(&at, "protocol"), &pp.protocol);
        if pp.protocol.number().is_ok() && !pp.protocol.supports_ports() {
            errs.add(
                &field(&at, "protocol"),
                &pp.protocol.0,
                "failsafe ports must be TCP, UDP or SCTP",
            );
        }
        // Port 0 is allowed by Felix ("any port" when only a net is given).
        if !(0..=65535).contains(&pp.port) {
            errs.add(
                &field(&at, "port"),
                pp.port,
                "port must be between 0 and 65535",
            );
        }
        if let Some(net) = &pp.net {
            check_cidr(errs, &field(&at, "net"), net);
        }
    }
}

impl Spec for FelixConfigurationSpec {
    const KIND: Kind = Kind::FelixConfiguration;

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        check_subdomain_name(errs, "metadata.name", &meta.name);
        for (name, mtu) in [("ipipMTU", self.ipip_mtu), ("vxlanMTU", self.vxlan_mtu)] {
            // 0 means "detect"; otherwise an IPv4 MTU (RFC 791: at least 68).
            if let Some(m) = mtu {
                if m != 0 && !(68..=65535).contains(&m) {
                    errs.add(
                        &field("spec", name),
                        m,
                        "MTU must be 0 (auto) or between 68 and 65535",
                    );
                }
            }
        }
        check_port_field(errs, "spec.healthPort", self.health_port);
        check_port_field(
            errs,
            "spec.prometheusMetricsPort",
            self.prometheus_metrics_port,
        );
        check_proto_ports(
            errs,
            "spec.failsafeInboundHostPorts",
            &self.failsafe_inbound_host_ports,
        );
        check_proto_ports(
            errs,
            "spec.failsafeOutboundHostPorts",
            &self.failsafe_outbound_host_ports,
        );
        for (name, d) in [
            ("routeRefreshInterval", &self.route_refresh_interval),
            ("reportingInterval", &self.reporting_interval),
        ] {
            if let Some(d) = d {
                check_duration(errs, &field("spec", name), d);
            }
        }
    }

    fn table_row(&self, meta: &Metadata, _wide: bool) -> Vec<String> {
        vec![meta.name.clone()]
    }
}

// ---- ClusterInformation ------------------------------------------------------------------

calico_struct! {
    pub struct ClusterInformationSpec {
        #[serde(skip_serializing_if = "Option::is_none")]
        "clusterGUID" => pub cluster_guid: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "clusterType" => pub cluster_type: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "calicoVersion" => pub calico_version: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "datastoreReady" => pub datastore_ready: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        "variant" => pub variant: Option<String>,
    }
}

impl Spec for ClusterInformationSpec {
    const KIND: Kind = Kind::ClusterInformation;

    fn validate(&self, meta: &Metadata, errs: &mut Errors) {
        // Calico keeps exactly one, named `default`.
        if meta.name != DEFAULT_CONFIG_NAME {
            errs.add(
                "metadata.name",
                &meta.name,
                "the ClusterInformation must be named 'default'",
            );
        }
    }

    fn table_row(&self, meta: &Metadata, _wide: bool) -> Vec<String> {
        vec![meta.name.clone()]
    }
}
