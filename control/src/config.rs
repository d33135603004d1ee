//! `node.toml`: the node's static configuration until the datastore takes over.
//!
//! Only `mode` and the workloads are required; everything else has the default a Calico user
//! would expect (node name = hostname, uplink = interface of the default route, the default
//! IP pool 192.168.0.0/16). Every bad value is reported with its field path and the value.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use fastpath::qos::QosLimits;
use fastpath::RxMode;
use serde::Deserialize;

use crate::host::{self, Ipv4Prefix};
use crate::hostveth::HostPort;

/// node.toml's `mode`: the workers' rx mode ([`RxMode`]).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FileMode {
    Poll,
    Interrupt,
    /// Polls while frames come and for a moment after (`fastpath::worker::ADAPTIVE_SPIN`),
    /// then sleeps until one wakes it: a reply arriving in that moment is taken at once.
    Adaptive,
}

impl From<FileMode> for RxMode {
    fn from(mode: FileMode) -> RxMode {
        match mode {
            FileMode::Poll => RxMode::Poll,
            FileMode::Interrupt => RxMode::Interrupt,
            FileMode::Adaptive => RxMode::Adaptive,
        }
    }
}

/// The file as written by the user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    mode: FileMode,
    node_name: Option<String>,
    uplink: Option<String>,
    pools: Option<Vec<String>>,
    control_socket: Option<PathBuf>,
    cores: Option<Vec<usize>>,
    #[serde(default)]
    workload: Vec<RawWorkload>,
    #[serde(default)]
    route: Vec<RawRoute>,
    /// Overrides of the uplink's NIC profile (`control::hwprofile`), checked at start.
    hw: Option<toml::Value>,
    /// "veth" (the default) or "tap": what the way to the node's stack is made of.
    host_port: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    interface: String,
    ips: Vec<String>,
    /// The workload's `eth0` is a TAP the node attaches to (see [`TapWorkload`]).
    tap: Option<RawTap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTap {
    netns: PathBuf,
    ifname: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    via: String,
    /// "ipip" or "none" (the default).
    encap: Option<String>,
}

/// A workload as the node sees it: its host-side interface (or, for a TAP workload, the name
/// its port goes by) and its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadConfig {
    pub interface: String,
    pub ips: Vec<Ipv4Addr>,
    /// `None`: a veth whose host end is `interface`, served by AF_XDP.
    pub tap: Option<TapWorkload>,
    /// The rate limits the vRouter enforces on the workload (its endpoint's `qosControls`;
    /// none in file mode).
    pub qos: QosLimits,
}

/// A workload whose own interface is a persistent TAP with virtio-net headers (`ip tuntap add
/// dev eth0 mode tap vnet_hdr` in its namespace), which the node attaches to: whole 64 KiB
/// TCP segments cross it (see `fastpath::port`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapWorkload {
    /// The workload's network namespace (`/run/netns/NAME`, `/proc/PID/ns/net`).
    pub netns: PathBuf,
    /// The TAP's name there (`eth0` unless said otherwise).
    pub ifname: String,
}

/// A static prefix route through a gateway on the uplink, or to another node's workloads.
///
/// Without encapsulation `via` is an address on the uplink's subnet (another node on the
/// segment, or a gateway). With `encap = "ipip"` `via` is the other node, which is the
/// tunnel's far end and a known node (IPIP from it is decapsulated); when it is not on the
/// uplink's subnet, another static route must reach it (CrossSubnet through a router).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteConfig {
    pub prefix: Ipv4Prefix,
    pub via: Ipv4Addr,
    pub encap: RouteEncap,
}

/// How a route's packets travel to its `via`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RouteEncap {
    #[default]
    None,
    /// IP in IP (RFC 2003) to `via`: costs 20 bytes of MTU.
    Ipip,
}

impl std::str::FromStr for RouteEncap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(RouteEncap::None),
            "ipip" => Ok(RouteEncap::Ipip),
            _ => Err("must be \"ipip\" or \"none\"".to_owned()),
        }
    }
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    pub mode: RxMode,
    /// `mode` was chosen by the user (node.toml always; agent mode when `BRINDLE_MODE` is
    /// set). When not, the worker takes the rx mode of the uplink's NIC profile.
    pub mode_explicit: bool,
    pub node_name: String,
    /// `None` when none was given and the host has no default route: the node then forwards
    /// only between its workloads.
    pub uplink: Option<String>,
    pub pools: Vec<Ipv4Prefix>,
    pub control_socket: PathBuf,
    pub cores: Vec<usize>,
    pub workloads: Vec<WorkloadConfig>,
    pub routes: Vec<RouteConfig>,
    /// The `[hw]` table: overrides of the uplink's NIC profile.
    pub hw: Option<toml::Value>,
    /// What the way to the node's stack is made of (`host_port`).
    pub host_port: HostPort,
}

pub const DEFAULT_POOL: &str = "192.168.0.0/16";
pub use cli::node_client::DEFAULT_CONTROL_SOCKET;

/// A configuration error: which field, which value, what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Syntax(String),
    #[error("{field}: invalid value {value:?}: {reason}")]
    Field {
        field: String,
        value: String,
        reason: String,
    },
}

fn field_error(
    field: impl Into<String>,
    value: impl Into<String>,
    reason: impl Into<String>,
) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

impl NodeConfig {
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        NodeConfig::parse(&text)
    }

    /// Parses and validates `node.toml` text; host-derived defaults are filled in here.
    pub fn parse(text: &str) -> Result<NodeConfig, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;

        let node_name = match raw.node_name {
            Some(name) => validate_node_name(&name)?,
            None => host::hostname().unwrap_or_else(|| "localhost".to_owned()),
        };

        let uplink = match raw.uplink {
            Some(name) => Some(validate_interface_name("uplink", &name)?),
            None => host::default_route_interface(),
        };

        let pool_texts = raw.pools.unwrap_or_else(|| vec![DEFAULT_POOL.to_owned()]);
        let mut pools = Vec::with_capacity(pool_texts.len());
        for (i, text) in pool_texts.iter().enumerate() {
            let field = format!("pools[{i}]");
            let pool = host::parse_prefix(text).map_err(|e| field_error(&field, text, e))?;
            if let Some(other) = pools.iter().find(|p: &&Ipv4Prefix| p.overlaps(&pool)) {
                return Err(field_error(field, text, format!("overlaps pool {other}")));
            }
            pools.push(pool);
        }

        let mut workloads = Vec::with_capacity(raw.workload.len());
        for (i, w) in raw.workload.iter().enumerate() {
            let interface =
                validate_interface_name(&format!("workload[{i}].interface"), &w.interface)?;
            if workloads
                .iter()
                .any(|o: &WorkloadConfig| o.interface == interface)
            {
                return Err(field_error(
                    format!("workload[{i}].interface"),
                    &interface,
                    "used by another workload",
                ));
            }
            if w.ips.is_empty() {
                return Err(field_error(
                    format!("workload[{i}].ips"),
                    "[]",
                    "a workload needs at least one address",
                ));
            }
            let mut ips = Vec::with_capacity(w.ips.len());
            for (j, text) in w.ips.iter().enumerate() {
                let field = format!("workload[{i}].ips[{j}]");
                let ip = parse_workload_ip(text).map_err(|e| field_error(&field, text, e))?;
                let taken = workloads
                    .iter()
                    .any(|o: &WorkloadConfig| o.ips.contains(&ip))
                    || ips.contains(&ip);
                if taken {
                    return Err(field_error(
                        field,
                        text,
                        "address given to more than one workload",
                    ));
                }
                ips.push(ip);
            }
            let tap = match &w.tap {
                None => None,
                Some(t) => {
                    let ifname = t.ifname.as_deref().unwrap_or("eth0");
                    let ifname =
                        validate_interface_name(&format!("workload[{i}].tap.ifname"), ifname)?;
                    if !t.netns.is_absolute() {
                        return Err(field_error(
                            format!("workload[{i}].tap.netns"),
                            t.netns.display().to_string(),
                            "must be an absolute path (/run/netns/NAME or /proc/PID/ns/net)",
                        ));
                    }
                    Some(TapWorkload {
                        netns: t.netns.clone(),
                        ifname,
                    })
                }
            };
            workloads.push(WorkloadConfig {
                interface,
                ips,
                tap,
                qos: QosLimits::default(),
            });
        }

        let mut routes = Vec::with_capacity(raw.route.len());
        for (i, r) in raw.route.iter().enumerate() {
            let prefix = host::parse_prefix(&r.prefix)
                .map_err(|e| field_error(format!("route[{i}].prefix"), &r.prefix, e))?;
            let via = r.via.parse().map_err(|_| {
                field_error(format!("route[{i}].via"), &r.via, "not an IPv4 address")
            })?;
            let encap = match &r.encap {
                None => RouteEncap::None,
                Some(text) => text
                    .parse()
                    .map_err(|e: String| field_error(format!("route[{i}].encap"), text, e))?,
            };
            routes.push(RouteConfig { prefix, via, encap });
        }
        if !routes.is_empty() && uplink.is_none() {
            return Err(field_error(
                "route",
                format!("{} routes", routes.len()),
                "static routes need an uplink and none was given or found",
            ));
        }

        let cores = raw.cores.unwrap_or_default();
        let available = host::core_count();
        if let Some(bad) = cores.iter().find(|c| **c >= available) {
            return Err(field_error(
                "cores",
                bad.to_string(),
                format!("this host has cores 0..{}", available - 1),
            ));
        }

        let host_port = match raw.host_port.as_deref() {
            None | Some("veth") => HostPort::Veth,
            Some("tap") => HostPort::Tap,
            Some(other) => {
                return Err(field_error(
                    "host_port",
                    other,
                    "must be \"veth\" or \"tap\"",
                ))
            }
        };

        Ok(NodeConfig {
            mode: raw.mode.into(),
            mode_explicit: true,
            node_name,
            uplink,
            pools,
            control_socket: raw
                .control_socket
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET)),
            cores,
            workloads,
            routes,
            hw: raw.hw,
            host_port,
        })
    }
}

/// Workload addresses are single hosts: `a.b.c.d` or `a.b.c.d/32` (what Calico's CNI writes).
fn parse_workload_ip(text: &str) -> Result<Ipv4Addr, String> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    if let Some(len) = len {
        if len != "32" {
            return Err("a workload address must be a single host (/32)".into());
        }
    }
    let ip: Ipv4Addr = addr
        .parse()
        .map_err(|_| "not an IPv4 address".to_string())?;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
        return Err("not a unicast host address".into());
    }
    Ok(ip)
}

/// Linux interface names: 1-15 bytes, no '/', whitespace or ':'.
fn validate_interface_name(field: &str, name: &str) -> Result<String, ConfigError> {
    let bad_char = name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0');
    if name.is_empty() || name.len() > 15 || bad_char {
        return Err(field_error(
            field,
            name,
            "not a Linux interface name (1-15 characters, no '/', ':' or spaces)",
        ));
    }
    Ok(name.to_owned())
}

/// Node names follow Kubernetes/Calico: a DNS subdomain (lowercase alphanumerics, '-', '.').
fn validate_node_name(name: &str) -> Result<String, ConfigError> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    let ok_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name.is_empty() || name.len() > 253 || !ok_chars || !ok_ends {
        return Err(field_error(
            "node_name",
            name,
            "must be a DNS subdomain (lowercase letters, digits, '-', '.')",
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_file_with_mode_and_workloads_loads_with_defaults() {
        let cfg = NodeConfig::parse(
            r#"
            mode = "interrupt"
            [[workload]]
            interface = "cali0123456789a"
            ips = ["192.168.0.1"]
            [[workload]]
            interface = "cali0123456789b"
            ips = ["192.168.0.2/32"]
            "#,
        )
        .unwrap();
        assert_eq!(cfg.mode, RxMode::Interrupt);
        assert_eq!(cfg.pools, vec![host::parse_prefix(DEFAULT_POOL).unwrap()]);
        assert_eq!(cfg.control_socket, PathBuf::from(DEFAULT_CONTROL_SOCKET));
        assert!(!cfg.node_name.is_empty());
        assert_eq!(cfg.workloads[1].ips, vec![Ipv4Addr::new(192, 168, 0, 2)]);
    }

    fn error_of(text: &str) -> String {
        NodeConfig::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn bad_values_name_the_field_and_the_value() {
        let e = error_of("mode = \"turbo\"");
        assert!(e.contains("turbo") && e.contains("mode"), "{e}");
        let e = error_of(
            "mode = \"poll\"\n[[workload]]\ninterface = \"cali1\"\nips = [\"192.168.0.300\"]",
        );
        assert!(
            e.contains("workload[0].ips[0]") && e.contains("192.168.0.300"),
            "{e}"
        );
        let e = error_of(
            "mode = \"poll\"\n[[workload]]\ninterface = \"cali1\"\nips = [\"10.0.0.0/24\"]",
        );
        assert!(e.contains("workload[0].ips[0]") && e.contains("/32"), "{e}");
        let e = error_of("mode = \"poll\"\n[[workload]]\ninterface = \"much-too-long-interface\"\nips = [\"10.0.0.1\"]");
        assert!(
            e.contains("workload[0].interface") && e.contains("much-too-long-interface"),
            "{e}"
        );
        let e = error_of("mode = \"poll\"\npools = [\"10.0.0.0/8\", \"10.1.0.0/16\"]");
        assert!(e.contains("pools[1]") && e.contains("overlaps"), "{e}");
        let e = error_of("mode = \"poll\"\nnode_name = \"Bad_Name\"");
        assert!(e.contains("node_name") && e.contains("Bad_Name"), "{e}");
        let e = error_of("mode = \"poll\"\ncores = [4096]");
        assert!(e.contains("cores") && e.contains("4096"), "{e}");
        let e = error_of("mode = \"poll\"\nunknown_key = 1");
        assert!(e.contains("unknown_key"), "{e}");
    }

    #[test]
    fn a_tap_workload_names_its_namespace_and_its_interface_defaults_to_eth0() {
        let w = "mode = \"poll\"\n[[workload]]\ninterface = \"cali1\"\nips = [\"10.0.0.1\"]\n";
        let cfg = NodeConfig::parse(&format!(
            "{w}tap = {{ netns = \"/run/netns/w1\" }}\n[[workload]]\ninterface = \"cali2\"\nips = [\"10.0.0.2\"]"
        ))
        .unwrap();
        let tap = TapWorkload {
            netns: "/run/netns/w1".into(),
            ifname: "eth0".into(),
        };
        assert_eq!(cfg.workloads[0].tap, Some(tap));
        assert_eq!(cfg.workloads[1].tap, None, "a veth unless said otherwise");
        let e = error_of(&format!("{w}tap = {{ netns = \"w1\" }}"));
        assert!(
            e.contains("workload[0].tap.netns") && e.contains("w1"),
            "{e}"
        );
        let e = error_of(&format!(
            "{w}tap = {{ netns = \"/run/netns/w1\", ifname = \"much-too-long-interface\" }}"
        ));
        assert!(e.contains("workload[0].tap.ifname"), "{e}");
        let e = error_of(&format!(
            "{w}tap = {{ netns = \"/run/netns/w1\", mode = \"tun\" }}"
        ));
        assert!(e.contains("mode"), "an unknown key is refused: {e}");
    }

    #[test]
    fn one_address_cannot_belong_to_two_workloads() {
        let e = error_of(
            "mode = \"poll\"\n[[workload]]\ninterface = \"a\"\nips = [\"10.0.0.1\"]\n[[workload]]\ninterface = \"b\"\nips = [\"10.0.0.1\"]",
        );
        assert!(e.contains("workload[1].ips[0]"), "{e}");
    }

    #[test]
    fn static_routes_parse() {
        let cfg = NodeConfig::parse(
            "mode = \"poll\"\nuplink = \"eth9\"\n[[route]]\nprefix = \"10.99.0.0/24\"\nvia = \"10.99.0.2\"",
        )
        .unwrap();
        assert_eq!(cfg.routes[0].via, Ipv4Addr::new(10, 99, 0, 2));
        assert_eq!(cfg.routes[0].prefix.len(), 24);
        assert_eq!(
            cfg.routes[0].encap,
            RouteEncap::None,
            "no encapsulation unless asked"
        );
    }

    #[test]
    fn routes_may_ask_for_ipip_and_a_bad_encap_is_named() {
        let cfg = NodeConfig::parse(
            "mode = \"poll\"\nuplink = \"eth9\"\n[[route]]\nprefix = \"192.168.1.0/26\"\nvia = \"10.99.0.2\"\nencap = \"ipip\"\n[[route]]\nprefix = \"192.168.2.0/26\"\nvia = \"10.99.0.3\"\nencap = \"none\"",
        )
        .unwrap();
        assert_eq!(cfg.routes[0].encap, RouteEncap::Ipip);
        assert_eq!(cfg.routes[1].encap, RouteEncap::None);
        let e = error_of("mode = \"poll\"\nuplink = \"eth9\"\n[[route]]\nprefix = \"10.1.0.0/16\"\nvia = \"10.99.0.2\"\nencap = \"vxlan\"");
        assert!(e.contains("route[0].encap") && e.contains("vxlan"), "{e}");
    }
}
