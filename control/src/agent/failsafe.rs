//! Felix's failsafe ports: traffic of the node's own that host endpoint policy never blocks
//! (SSH, DHCP, BGP, etcd, the Kubernetes API...), so that a wrong policy cannot cut the node
//! off. Read as Felix reads them: `FELIX_FAILSAFEINBOUNDHOSTPORTS` /
//! `FELIX_FAILSAFEOUTBOUNDHOSTPORTS` (`tcp:22,udp:68`, `<protocol>:<net>:<port>`, or `none`),
//! then FelixConfiguration `default`'s `failsafeInboundHostPorts` /
//! `failsafeOutboundHostPorts`, then Calico's defaults.
//!
//! A `net` narrows an entry to sources (inbound) or destinations (outbound) in that network in
//! Calico; here the BPF programs match protocol and port only, so such an entry holds for any
//! address (more open, never less). Port 0 (Calico: any port of `net`) cannot be expressed by
//! port and is left out, with a warning.

use fastpath::hostpath::FailsafePort;
use resources::felix::felix_defaults::{FAILSAFE_INBOUND, FAILSAFE_OUTBOUND};
use resources::{FelixConfigurationSpec, ProtoPort};

pub const INBOUND_ENV: &str = "FELIX_FAILSAFEINBOUNDHOSTPORTS";
pub const OUTBOUND_ENV: &str = "FELIX_FAILSAFEOUTBOUNDHOSTPORTS";

/// One source's failsafe ports; `None` where it says nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Failsafe {
    pub inbound: Option<Vec<FailsafePort>>,
    pub outbound: Option<Vec<FailsafePort>>,
}

impl Failsafe {
    /// From the node's environment; a value that does not parse is reported and ignored.
    pub fn from_env() -> Failsafe {
        let read = |var: &str| {
            let value = std::env::var(var).ok()?;
            parse_env(var, &value)
                .map_err(|e| {
                    tracing::error!("{e}; using the datastore's or Calico's default failsafe ports")
                })
                .ok()
        };
        Failsafe {
            inbound: read(INBOUND_ENV),
            outbound: read(OUTBOUND_ENV),
        }
    }

    /// From FelixConfiguration (validated on write, so every entry is TCP, UDP or SCTP).
    pub fn from_config(spec: &FelixConfigurationSpec) -> Failsafe {
        let convert = |ports: &Option<Vec<ProtoPort>>| {
            ports
                .as_ref()
                .map(|ps| ps.iter().filter_map(from_proto_port).collect())
        };
        Failsafe {
            inbound: convert(&spec.failsafe_inbound_host_ports),
            outbound: convert(&spec.failsafe_outbound_host_ports),
        }
    }
}

/// Calico's default inbound failsafe ports.
pub fn default_inbound() -> Vec<FailsafePort> {
    defaults(&FAILSAFE_INBOUND)
}

/// Calico's default outbound failsafe ports.
pub fn default_outbound() -> Vec<FailsafePort> {
    defaults(&FAILSAFE_OUTBOUND)
}

fn defaults(list: &[(&str, u16)]) -> Vec<FailsafePort> {
    list.iter()
        .filter_map(|&(name, port)| {
            Some(FailsafePort {
                protocol: protocol_number(name)?,
                port,
            })
        })
        .collect()
}

fn from_proto_port(p: &ProtoPort) -> Option<FailsafePort> {
    let protocol = p.protocol.number().ok()?;
    let port = u16::try_from(p.port).ok().filter(|&port| port != 0);
    if port.is_none() {
        tracing::warn!(protocol = protocol, net = ?p.net, "a failsafe entry for any port of a network is not supported; left out");
    }
    Some(FailsafePort {
        protocol,
        port: port?,
    })
}

/// Felix's list syntax: `none`, or comma-separated `<protocol>:<port>` or
/// `<protocol>:<net>:<port>` (the net, which may hold colons itself, is not used here).
pub fn parse_env(var: &str, value: &str) -> Result<Vec<FailsafePort>, String> {
    let value = value.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut ports = Vec::new();
    for item in value.split(',').map(str::trim) {
        let bad = |why: &str| format!("{var}={value:?}: entry {item:?}: {why}");
        let (protocol, rest) = item
            .split_once(':')
            .ok_or_else(|| bad("expected <protocol>:<port>"))?;
        let port = rest.rsplit_once(':').map_or(rest, |(_, port)| port);
        let protocol = protocol_number(protocol)
            .ok_or_else(|| bad("the protocol must be tcp, udp or sctp"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port must be a number between 1 and 65535"))?;
        if port == 0 {
            return Err(bad("the port must be a number between 1 and 65535"));
        }
        if !ports.contains(&FailsafePort { protocol, port }) {
            ports.push(FailsafePort { protocol, port });
        }
    }
    Ok(ports)
}

fn protocol_number(name: &str) -> Option<u8> {
    match name.to_ascii_lowercase().as_str() {
        "tcp" => Some(6),
        "udp" => Some(17),
        "sctp" => Some(132),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn tcp(port: u16) -> FailsafePort {
        FailsafePort { protocol: 6, port }
    }

    #[test]
    fn environment_lists_read_as_felix_writes_them() {
        assert_eq!(
            parse_env(INBOUND_ENV, "tcp:22, UDP:68,tcp:10.0.0.0/8:6443"),
            Ok(vec![
                tcp(22),
                FailsafePort {
                    protocol: 17,
                    port: 68
                },
                tcp(6443)
            ])
        );
        assert_eq!(
            parse_env(INBOUND_ENV, "tcp:[fd00::/8]:179"),
            Ok(vec![tcp(179)]),
            "a net with colons"
        );
        assert_eq!(parse_env(INBOUND_ENV, "none"), Ok(Vec::new()));
        assert_eq!(parse_env(INBOUND_ENV, ""), Ok(Vec::new()));
        assert_eq!(parse_env(INBOUND_ENV, "tcp:22,tcp:22"), Ok(vec![tcp(22)]));
        for (bad, why) in [
            ("icmp:1", "protocol"),
            ("tcp:ssh", "port"),
            ("tcp:0", "port"),
            ("tcp:70000", "port"),
            ("22", "expected"),
        ] {
            let err = parse_env(INBOUND_ENV, bad).unwrap_err();
            assert!(
                err.contains(INBOUND_ENV) && err.contains(bad) && err.contains(why),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn defaults_are_calicos_and_configuration_replaces_them_per_direction() {
        let inbound = default_inbound();
        assert!(
            inbound.contains(&tcp(22))
                && inbound.contains(&tcp(179))
                && inbound.contains(&tcp(2379))
        );
        assert!(default_outbound().contains(&FailsafePort {
            protocol: 17,
            port: 53
        }));
        let spec: FelixConfigurationSpec =
            serde_json::from_str(r#"{"failsafeInboundHostPorts": [{"protocol": "TCP", "port": 2222}, {"protocol": "UDP", "port": 0, "net": "10.0.0.0/8"}]}"#).unwrap();
        let config = Failsafe::from_config(&spec);
        assert_eq!(
            config.inbound,
            Some(vec![tcp(2222)]),
            "port 0 (any port of a net) left out"
        );
        assert_eq!(config.outbound, None, "not set: the default applies");
    }
}
