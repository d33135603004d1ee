//! What every CNI plugin binary does around its own logic (CNI spec 1.0.0, "Execution
//! protocol"): read the environment and the network configuration on stdin, answer VERSION,
//! print the result on stdout (exit 0) or the error object on stdout (exit 1). Logs go to
//! stderr, which runtimes keep for diagnostics; stdout carries only the protocol.

use std::io::{Read, Write};
use std::process::ExitCode;

use serde_json::Value;

use super::spec::{code, version_json, CniError, Command, Invocation, NetConf, MAX_NETCONF_BYTES};

/// One invocation as the plugin's logic sees it.
pub struct Request {
    pub invocation: Invocation,
    pub conf: NetConf,
    /// stdin exactly as received: handed on unchanged to a delegated IPAM plugin.
    pub raw_conf: Vec<u8>,
}

/// Runs `handle` for ADD, DEL and CHECK (VERSION is answered here) and speaks the protocol.
/// `handle` returns the JSON to print on success (`Value::Null` prints nothing, as DEL and
/// CHECK must).
pub fn run(handle: impl FnOnce(&Request) -> Result<Value, CniError>) -> ExitCode {
    init_logging();
    let outcome = serve(
        |name| std::env::var(name).ok(),
        &mut std::io::stdin().lock(),
        handle,
    );
    let mut stdout = std::io::stdout().lock();
    match outcome {
        Ok(Value::Null) => ExitCode::SUCCESS,
        Ok(value) => {
            let _ = writeln!(stdout, "{value}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(code = e.code, msg = %e.msg, details = %e.details, "CNI request failed");
            let _ = writeln!(stdout, "{}", serde_json::to_string(&e).unwrap_or_default());
            ExitCode::FAILURE
        }
    }
}

/// The protocol without the process: environment through `env`, stdin through `input`.
pub fn serve(
    env: impl Fn(&str) -> Option<String>,
    input: &mut dyn Read,
    handle: impl FnOnce(&Request) -> Result<Value, CniError>,
) -> Result<Value, CniError> {
    let invocation = Invocation::from_env(env)?;
    if invocation.command == Command::Version {
        return Ok(version_json());
    }
    let raw_conf = read_bounded(input)?;
    let conf = NetConf::parse(&raw_conf)?;
    // CHECK arrived with 0.4.0; older configurations cannot ask for it.
    if invocation.command == Command::Check && conf.cni_version.starts_with("0.3.") {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!(
                "CHECK needs cniVersion 0.4.0 or later, not {}",
                conf.cni_version
            ),
        ));
    }
    // GC and STATUS arrived with 1.1.0.
    if matches!(invocation.command, Command::Gc | Command::Status) && conf.cni_version != "1.1.0" {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!(
                "{} needs cniVersion 1.1.0, not {}",
                invocation.command.verb(),
                conf.cni_version
            ),
        ));
    }
    let request = Request {
        invocation,
        conf,
        raw_conf,
    };
    let value = handle(&request)?;
    Ok(match request.invocation.command {
        Command::Add => value,
        // DEL, CHECK, GC and STATUS print nothing on success.
        _ => Value::Null,
    })
}

/// stdin, refusing more than [`MAX_NETCONF_BYTES`] without reading the excess into memory.
fn read_bounded(input: &mut dyn Read) -> Result<Vec<u8>, CniError> {
    let mut bytes = Vec::new();
    input
        .take(MAX_NETCONF_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            CniError::new(
                code::IO_FAILURE,
                "cannot read the network configuration from stdin",
            )
            .with_details(e)
        })?;
    if bytes.len() > MAX_NETCONF_BYTES {
        return Err(CniError::new(
            code::DECODE_FAILURE,
            format!("network configuration is over {MAX_NETCONF_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

/// The result's `ips[].version`: the pre-1.0 result formats require it.
pub fn ip_version_field(cni_version: &str) -> Option<String> {
    cni_version.starts_with("0.").then(|| "4".to_owned())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BRINDLE_CNI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
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

    const ADD: [(&str, &str); 4] = [
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/var/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
    ];

    #[test]
    fn version_is_answered_without_reading_stdin_or_calling_the_plugin() {
        let out = serve(
            env(&[("CNI_COMMAND", "VERSION")]),
            &mut &b"not json"[..],
            |_| panic!("must not run"),
        )
        .unwrap();
        assert_eq!(out["cniVersion"], "1.0.0");
        assert!(out["supportedVersions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "0.4.0"));
    }

    #[test]
    fn add_prints_the_result_and_del_prints_nothing() {
        let conf = br#"{"cniVersion":"1.0.0","name":"net1","type":"brindle-cni"}"#;
        let out = serve(env(&ADD), &mut &conf[..], |r| {
            Ok(serde_json::json!({"name": r.conf.name}))
        })
        .unwrap();
        assert_eq!(out["name"], "net1");
        let del = [
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
        ];
        let out = serve(env(&del), &mut &conf[..], |_| {
            Ok(serde_json::json!({"x": 1}))
        })
        .unwrap();
        assert_eq!(out, Value::Null);
    }

    #[test]
    fn oversized_or_broken_stdin_is_a_decode_error() {
        let big = vec![b' '; MAX_NETCONF_BYTES + 10];
        let e = serve(env(&ADD), &mut &big[..], |_| panic!("must not run")).unwrap_err();
        assert_eq!(e.code, code::DECODE_FAILURE);
        let e = serve(env(&ADD), &mut &b"{\"name\":"[..], |_| {
            panic!("must not run")
        })
        .unwrap_err();
        assert_eq!(e.code, code::DECODE_FAILURE);
    }

    #[test]
    fn check_is_refused_for_configurations_older_than_0_4_0() {
        let check = [
            ("CNI_COMMAND", "CHECK"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_NETNS", "/x"),
            ("CNI_IFNAME", "eth0"),
        ];
        let old = br#"{"cniVersion":"0.3.1","name":"net1","type":"brindle-cni"}"#;
        let e = serve(env(&check), &mut &old[..], |_| panic!("must not run")).unwrap_err();
        assert_eq!(e.code, code::INCOMPATIBLE_VERSION);
        let new = br#"{"cniVersion":"0.4.0","name":"net1","type":"brindle-cni"}"#;
        assert_eq!(
            serve(env(&check), &mut &new[..], |_| Ok(Value::Null)).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn pre_1_0_results_carry_the_ip_version() {
        assert_eq!(ip_version_field("0.4.0").as_deref(), Some("4"));
        assert_eq!(ip_version_field("1.0.0"), None);
    }
}
