//! The CNI protocol (CNI spec 1.0.0): what the runtime passes in (environment and network
//! configuration on stdin) and what a plugin prints (a result, or an error object).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const SPEC_VERSION: &str = "1.0.0";
pub const SUPPORTED_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// Standard error codes (CNI spec, "Error"); 100+ are the plugin's own.
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODE_FAILURE: u32 = 6;
    pub const INVALID_NETWORK_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot serve ADD now (CNI spec 1.1.0, "Error codes").
    pub const PLUGIN_NOT_AVAILABLE: u32 = 50;
    /// The datastore could not be reached or refused the change.
    pub const DATASTORE: u32 = 100;
    /// IPAM could not assign an address.
    pub const IPAM: u32 = 101;
    /// Creating or configuring interfaces failed.
    pub const PLUMBING: u32 = 102;
}

/// A CNI error: printed as JSON on stdout, and the plugin exits non-zero.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, thiserror::Error)]
#[error("CNI error {code}: {msg}{}", if details.is_empty() { String::new() } else { format!(" ({details})") })]
pub struct CniError {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    pub code: u32,
    pub msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> CniError {
        CniError {
            cni_version: SPEC_VERSION.into(),
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl std::fmt::Display) -> CniError {
        self.details = details.to_string();
        self
    }
}

/// `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    /// CNI spec 1.1.0: release what belongs to attachments the runtime no longer lists.
    Gc,
    /// CNI spec 1.1.0: can the plugin serve ADD?
    Status,
    Version,
}

impl Command {
    /// The commands that name no attachment: no container, namespace or interface.
    pub fn is_network_wide(self) -> bool {
        matches!(self, Command::Gc | Command::Status | Command::Version)
    }

    pub fn verb(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Gc => "GC",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
        }
    }
}

/// The runtime's environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// `CNI_ARGS`: `K=V;K2=V2`.
    pub args: BTreeMap<String, String>,
    pub path: Vec<String>,
}

impl Invocation {
    /// Reads the CNI variables through `get` (the process environment in the binaries, a map
    /// in tests). VERSION, GC and STATUS need none of the others; DEL tolerates a missing netns, as the spec
    /// asks ("plugins should ... be idempotent").
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Invocation, CniError> {
        let invalid = |var: &str, value: &str, why: &str| {
            CniError::new(code::INVALID_ENV, format!("{var}={value:?}: {why}"))
        };
        let command = match get("CNI_COMMAND").as_deref() {
            Some("ADD") => Command::Add,
            Some("DEL") => Command::Del,
            Some("CHECK") => Command::Check,
            Some("GC") => Command::Gc,
            Some("STATUS") => Command::Status,
            Some("VERSION") => Command::Version,
            Some(other) => {
                return Err(invalid(
                    "CNI_COMMAND",
                    other,
                    "expected ADD, DEL, CHECK, GC, STATUS or VERSION",
                ))
            }
            None => return Err(CniError::new(code::INVALID_ENV, "CNI_COMMAND is not set")),
        };
        let required = |var: &str| -> Result<String, CniError> {
            match get(var) {
                Some(v) if !v.is_empty() => Ok(v),
                _ if command.is_network_wide() => Ok(String::new()),
                _ => Err(CniError::new(
                    code::INVALID_ENV,
                    format!("{var} is not set"),
                )),
            }
        };
        let container_id = required("CNI_CONTAINERID")?;
        if !command.is_network_wide() {
            super::names::check_container_id(&container_id)?;
        }
        let netns = if command == Command::Del {
            get("CNI_NETNS").unwrap_or_default()
        } else {
            required("CNI_NETNS")?
        };
        let ifname = required("CNI_IFNAME")?;
        if !command.is_network_wide() {
            super::names::check_ifname(&ifname)?;
        }
        let mut args = BTreeMap::new();
        for pair in get("CNI_ARGS")
            .unwrap_or_default()
            .split(';')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| invalid("CNI_ARGS", pair, "expected K=V"))?;
            super::names::check_k8s_arg(k, v)?;
            args.insert(k.to_owned(), v.to_owned());
        }
        let path = get("CNI_PATH")
            .unwrap_or_default()
            .split(':')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Invocation {
            command,
            container_id,
            netns,
            ifname,
            args,
            path,
        })
    }
}

/// The IPAM section of a network configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IpamConfig {
    #[serde(rename = "type")]
    pub plugin: String,
    /// Calico's `ipv4_pools`: pool CIDRs (or names) to allocate from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv4_pools: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The network configuration on stdin (the fields brindle reads; the rest is kept).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetConf {
    #[serde(rename = "cniVersion", default = "default_version")]
    pub cni_version: String,
    pub name: String,
    #[serde(rename = "type")]
    pub plugin: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<IpamConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_endpoints: Option<String>,
    #[serde(
        rename = "prevResult",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub prev_result: Option<Value>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
    /// Brindle's own `workload_interface`, read by [`NetConf::parse`] (the raw value stays in
    /// `extra`, so that the configuration passes on unchanged).
    #[serde(skip)]
    pub workload_interface: WorkloadInterface,
    /// Brindle's own `tap_dir`, read by [`NetConf::parse`]; see [`NetConf::tap_dir`].
    #[serde(skip)]
    pub tap_dir: Option<PathBuf>,
}

/// What the container's interface is made of (netconf `workload_interface`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkloadInterface {
    /// One end of a veth pair whose host end, `cali...`, the node serves with AF_XDP
    /// (Calico's wiring).
    #[default]
    Veth,
    /// A persistent TAP with virtio-net headers that the node attaches to inside the
    /// container's namespace: whole 64 KiB TCP segments cross the vRouter. Nothing is made on
    /// the host; the node learns where the TAP is from the TAP registry
    /// (`crate::tap_registry`).
    Tap,
}

/// Netconf keys that are brindle's own.
const WORKLOAD_INTERFACE: &str = "workload_interface";
const TAP_DIR: &str = "tap_dir";

fn default_version() -> String {
    SPEC_VERSION.into()
}

/// Largest network configuration accepted on stdin.
pub const MAX_NETCONF_BYTES: usize = 1 << 20;

impl NetConf {
    pub fn parse(bytes: &[u8]) -> Result<NetConf, CniError> {
        if bytes.len() > MAX_NETCONF_BYTES {
            return Err(CniError::new(
                code::DECODE_FAILURE,
                format!(
                    "network configuration is {} bytes; at most {MAX_NETCONF_BYTES}",
                    bytes.len()
                ),
            ));
        }
        let mut conf: NetConf = serde_json::from_slice(bytes).map_err(|e| {
            CniError::new(
                code::DECODE_FAILURE,
                "cannot decode the network configuration",
            )
            .with_details(e)
        })?;
        if !SUPPORTED_VERSIONS.contains(&conf.cni_version.as_str()) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!("cniVersion {:?} is not supported", conf.cni_version),
            )
            .with_details(format!("supported: {}", SUPPORTED_VERSIONS.join(", "))));
        }
        let name_ok = !conf.name.is_empty()
            && conf.name.len() <= 63
            && conf.name.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' || c == '_'
            });
        if !name_ok {
            return Err(CniError::new(
                code::INVALID_NETWORK_CONFIG,
                format!(
                    "name {:?}: must be 1-63 lowercase letters, digits, '-', '.', '_'",
                    conf.name
                ),
            ));
        }
        if let Some(mtu) = conf.mtu {
            if !(68..=65535).contains(&mtu) {
                return Err(CniError::new(
                    code::INVALID_NETWORK_CONFIG,
                    format!("mtu {mtu}: must be 68..65535"),
                ));
            }
        }
        let invalid = |key: &str, value: &Value, why: &str| {
            CniError::new(
                code::INVALID_NETWORK_CONFIG,
                format!("{key} {value}: {why}"),
            )
        };
        conf.workload_interface = match conf.extra.get(WORKLOAD_INTERFACE) {
            None => WorkloadInterface::Veth,
            Some(Value::String(s)) if s == "veth" => WorkloadInterface::Veth,
            Some(Value::String(s)) if s == "tap" => WorkloadInterface::Tap,
            Some(other) => {
                return Err(invalid(
                    WORKLOAD_INTERFACE,
                    other,
                    "must be \"veth\" or \"tap\"",
                ))
            }
        };
        conf.tap_dir = match conf.extra.get(TAP_DIR) {
            None => None,
            Some(Value::String(s)) if Path::new(s).is_absolute() => Some(PathBuf::from(s)),
            Some(other) => {
                return Err(invalid(
                    TAP_DIR,
                    other,
                    "must be an absolute directory path",
                ))
            }
        };
        Ok(conf)
    }

    /// Where TAP registrations are kept: `tap_dir`, else the directory the node reads by
    /// default.
    pub fn tap_dir(&self) -> &Path {
        self.tap_dir
            .as_deref()
            .unwrap_or(Path::new(crate::tap_registry::DEFAULT_DIR))
    }
}

/// An interface in a result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResultInterface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sandbox: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResultIp {
    /// `"4"`: required by the 0.3.x and 0.4.0 result formats, gone in 1.0.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// CIDR notation, e.g. `192.168.0.5/32`.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResultRoute {
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<Ipv4Addr>,
}

/// A successful ADD's result (also what the IPAM plugin returns, with only `ips`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CniResult {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<ResultInterface>,
    #[serde(default)]
    pub ips: Vec<ResultIp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<ResultRoute>,
    #[serde(default)]
    pub dns: BTreeMap<String, Value>,
}

/// VERSION's answer.
pub fn version_json() -> Value {
    serde_json::json!({ "cniVersion": SPEC_VERSION, "supportedVersions": SUPPORTED_VERSIONS })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn add_invocation_reads_every_variable() {
        let inv = Invocation::from_env(env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc123"),
            ("CNI_NETNS", "/var/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", "K8S_POD_NAME=web;IgnoreUnknown=1"),
            ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
        ]))
        .unwrap();
        assert_eq!(inv.command, Command::Add);
        assert_eq!(inv.args["K8S_POD_NAME"], "web");
        assert_eq!(inv.path, vec!["/opt/cni/bin", "/usr/lib/cni"]);
    }

    #[test]
    fn bad_environment_is_a_code_4_error_naming_the_variable() {
        let e = Invocation::from_env(env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "a"),
            ("CNI_IFNAME", "eth0"),
        ]))
        .unwrap_err();
        assert_eq!(e.code, code::INVALID_ENV);
        assert!(e.msg.contains("CNI_NETNS"), "{e}");
        let e = Invocation::from_env(env(&[("CNI_COMMAND", "FROB")])).unwrap_err();
        assert!(e.msg.contains("FROB"), "{e}");
        let e = Invocation::from_env(env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "a/../b"),
            ("CNI_NETNS", "/x"),
            ("CNI_IFNAME", "eth0"),
        ]))
        .unwrap_err();
        assert!(e.msg.contains("CNI_CONTAINERID"), "{e}");
    }

    #[test]
    fn names_that_could_reach_a_path_a_command_line_or_a_key_are_refused_with_their_variable() {
        for (var, value, args) in [
            ("CNI_CONTAINERID", "-rf", ""),
            ("CNI_CONTAINERID", "..", ""),
            ("CNI_IFNAME", "..", ""),
            ("CNI_IFNAME", "eth0:1", ""),
            (
                "CNI_ARGS",
                "",
                "K8S_POD_NAMESPACE=../ippools;K8S_POD_NAME=p",
            ),
            ("CNI_ARGS", "", "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=a/b"),
        ] {
            let mut vars = vec![
                ("CNI_COMMAND", "ADD"),
                ("CNI_NETNS", "/var/run/netns/x"),
                ("CNI_ARGS", args),
            ];
            for (name, default) in [("CNI_CONTAINERID", "c1"), ("CNI_IFNAME", "eth0")] {
                vars.push((name, if name == var { value } else { default }));
            }
            let e = Invocation::from_env(env(&vars)).unwrap_err();
            assert_eq!(e.code, code::INVALID_ENV, "{e}");
            assert!(e.msg.starts_with(var), "{var}={value:?} {args}: {e}");
        }
    }

    #[test]
    fn version_needs_nothing_else_and_del_tolerates_a_missing_netns() {
        assert_eq!(
            Invocation::from_env(env(&[("CNI_COMMAND", "VERSION")]))
                .unwrap()
                .command,
            Command::Version
        );
        let del = Invocation::from_env(env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "a"),
            ("CNI_IFNAME", "eth0"),
        ]))
        .unwrap();
        assert_eq!(del.netns, "");
    }

    #[test]
    fn gc_and_status_need_only_the_command_and_the_path() {
        for (verb, command) in [("GC", Command::Gc), ("STATUS", Command::Status)] {
            let inv =
                Invocation::from_env(env(&[("CNI_COMMAND", verb), ("CNI_PATH", "/opt/cni/bin")]))
                    .unwrap();
            assert_eq!(inv.command, command);
            assert_eq!(inv.path, vec!["/opt/cni/bin"]);
            assert_eq!(command.verb(), verb);
        }
        let e = Invocation::from_env(env(&[("CNI_COMMAND", "FROB")])).unwrap_err();
        assert!(e.msg.contains("GC") && e.msg.contains("STATUS"), "{e}");
    }

    #[test]
    fn netconf_parses_calico_fields_and_keeps_the_rest() {
        let conf = NetConf::parse(
            br#"{"cniVersion":"1.0.0","name":"net1","type":"brindle-cni","mtu":1440,"nodename":"n1",
                 "datastore_type":"etcdv3","etcd_endpoints":"http://127.0.0.1:2379",
                 "ipam":{"type":"brindle-ipam","ipv4_pools":["10.20.0.0/24"]},"log_level":"info"}"#,
        )
        .unwrap();
        assert_eq!(conf.ipam.as_ref().unwrap().ipv4_pools, vec!["10.20.0.0/24"]);
        assert_eq!(conf.extra["log_level"], "info");
        assert_eq!(conf.mtu, Some(1440));
    }

    #[test]
    fn bad_netconf_is_refused_with_the_right_code() {
        assert_eq!(NetConf::parse(b"{").unwrap_err().code, code::DECODE_FAILURE);
        assert_eq!(
            NetConf::parse(br#"{"cniVersion":"9.9.9","name":"n","type":"t"}"#)
                .unwrap_err()
                .code,
            code::INCOMPATIBLE_VERSION
        );
        let e = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"Net 1","type":"t"}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_NETWORK_CONFIG);
        assert!(e.msg.contains("Net 1"));
        assert!(
            NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","type":"t","mtu":10}"#)
                .unwrap_err()
                .msg
                .contains("mtu 10")
        );
    }

    #[test]
    fn workload_interface_is_a_veth_unless_a_tap_is_asked_for_and_nothing_else_is_accepted() {
        let parse = |extra: &str| {
            NetConf::parse(
                format!(r#"{{"cniVersion":"1.0.0","name":"n","type":"t"{extra}}}"#).as_bytes(),
            )
        };
        let conf = parse("").unwrap();
        assert_eq!(conf.workload_interface, WorkloadInterface::Veth);
        assert_eq!(conf.tap_dir(), Path::new("/var/run/brindle/taps"));
        assert_eq!(
            parse(r#","workload_interface":"veth""#)
                .unwrap()
                .workload_interface,
            WorkloadInterface::Veth
        );
        let tap = parse(r#","workload_interface":"tap","tap_dir":"/tmp/taps""#).unwrap();
        assert_eq!(tap.workload_interface, WorkloadInterface::Tap);
        assert_eq!(tap.tap_dir(), Path::new("/tmp/taps"));
        assert_eq!(
            tap.extra["workload_interface"], "tap",
            "kept for delegated plugins"
        );
        for (extra, key, value) in [
            (
                r#","workload_interface":"macvlan""#,
                "workload_interface",
                "\"macvlan\"",
            ),
            (
                r#","workload_interface":"TAP""#,
                "workload_interface",
                "\"TAP\"",
            ),
            (r#","workload_interface":1"#, "workload_interface", "1"),
            (r#","tap_dir":"taps""#, "tap_dir", "\"taps\""),
            (r#","tap_dir":false"#, "tap_dir", "false"),
        ] {
            let e = parse(extra).unwrap_err();
            assert_eq!(e.code, code::INVALID_NETWORK_CONFIG, "{e}");
            assert!(
                e.msg.starts_with(&format!("{key} {value}:")),
                "the error names {key} and {value}: {e}"
            );
        }
    }

    #[test]
    fn errors_serialize_as_the_spec_shows() {
        let e = CniError::new(code::IPAM, "pool exhausted").with_details("10.20.0.0/24");
        let v: Value = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"cniVersion":"1.0.0","code":101,"msg":"pool exhausted","details":"10.20.0.0/24"})
        );
    }
}
