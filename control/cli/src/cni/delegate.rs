//! Running the IPAM plugin the netconf names, as a runtime runs plugins (CNI spec 1.0.0,
//! "Delegated plugins"): the binary `ipam.type` from a `CNI_PATH` directory, with our own
//! environment (only `CNI_COMMAND` may differ: a failed ADD is undone with DEL) and the
//! network configuration on stdin, unchanged. Its stdout is its result or its error object.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use super::entry::Request;
use super::spec::{code, CniError, CniResult, Command};

/// An IPAM plugin talks to the datastore, which retries; past this it is considered hung.
const IPAM_TIMEOUT: Duration = Duration::from_secs(90);
/// Largest output read from the IPAM plugin (a result is a few hundred bytes).
const MAX_OUTPUT: u64 = 1 << 20;

/// Runs the IPAM plugin for `command`; ADD returns its result.
pub fn run_ipam(req: &Request, command: Command) -> Result<Option<CniResult>, CniError> {
    let name = req
        .conf
        .ipam
        .as_ref()
        .map(|i| i.plugin.as_str())
        .ok_or_else(|| {
            CniError::new(
                code::INVALID_NETWORK_CONFIG,
                "ipam: the network configuration has no ipam section",
            )
        })?;
    let binary = find_plugin(name, &req.invocation.path)?;
    let verb = command.verb();
    let (success, stdout) = execute(&binary, verb, &req.raw_conf)?;
    if !success {
        return Err(match serde_json::from_slice::<CniError>(&stdout) {
            Ok(e) => e,
            Err(_) => CniError::new(code::IPAM, format!("IPAM plugin {name} failed ({verb})"))
                .with_details(String::from_utf8_lossy(&stdout).trim()),
        });
    }
    if command != Command::Add {
        return Ok(None);
    }
    serde_json::from_slice::<CniResult>(&stdout)
        .map(Some)
        .map_err(|e| {
            CniError::new(
                code::DECODE_FAILURE,
                format!("cannot decode the result of IPAM plugin {name}"),
            )
            .with_details(e)
        })
}

/// The first `CNI_PATH` directory holding `name` (a plain file name: a netconf must not point
/// the plugin at an arbitrary path).
pub fn find_plugin(name: &str, path: &[String]) -> Result<PathBuf, CniError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(CniError::new(
            code::INVALID_NETWORK_CONFIG,
            format!("ipam.type {name:?}: not a plugin name"),
        ));
    }
    path.iter()
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            CniError::new(
                code::INVALID_NETWORK_CONFIG,
                format!("failed to find plugin {name:?} in path {path:?}"),
            )
        })
}

/// Runs `binary` with `CNI_COMMAND=verb` and `stdin` on its stdin, within [`IPAM_TIMEOUT`].
/// Returns (exited 0, stdout).
fn execute(binary: &PathBuf, verb: &str, stdin: &[u8]) -> Result<(bool, Vec<u8>), CniError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        CniError::new(code::IO_FAILURE, format!("{what} {}", binary.display())).with_details(e)
    };
    let mut child = Process::new(binary)
        .env("CNI_COMMAND", verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // The plugin's logs go where ours go: to the runtime.
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| failed("cannot run", &e))?;
    // Written from a thread so that a plugin which answers before reading all of its input
    // cannot deadlock us; one that exits without reading makes the write fail, and its exit
    // status and output then tell what happened.
    if let Some(mut input) = child.stdin.take() {
        let stdin = stdin.to_vec();
        std::thread::spawn(move || {
            let _ = input.write_all(&stdin);
        });
    }
    let mut output = child
        .stdout
        .take()
        .ok_or_else(|| failed("no stdout from", &"pipe missing"))?;
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = (&mut output).take(MAX_OUTPUT).read_to_end(&mut bytes);
        // Keep draining so that a chatty plugin never blocks on a full pipe.
        let _ = std::io::copy(&mut output, &mut std::io::sink());
        bytes
    });
    let deadline = Instant::now() + IPAM_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CniError::new(
                    code::TRY_AGAIN_LATER,
                    format!(
                        "IPAM plugin {} timed out after {IPAM_TIMEOUT:?}",
                        binary.display()
                    ),
                ));
            }
            Err(e) => return Err(failed("cannot wait for", &e)),
        }
    };
    let stdout = reader.join().unwrap_or_default();
    Ok((status.success(), stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_with_paths_are_refused_and_missing_plugins_named() {
        assert_eq!(
            find_plugin("../../bin/sh", &["/usr/bin".into()])
                .unwrap_err()
                .code,
            code::INVALID_NETWORK_CONFIG
        );
        let e = find_plugin("no-such-plugin-here", &["/usr/bin".into()]).unwrap_err();
        assert!(e.msg.contains("no-such-plugin-here"), "{e}");
        assert_eq!(
            find_plugin("sh", &["/nonexistent".into(), "/bin".into()]).unwrap(),
            PathBuf::from("/bin/sh")
        );
    }

    #[test]
    fn a_plugin_s_exit_status_and_stdout_are_returned() {
        let (ok, out) = execute(&PathBuf::from("/bin/cat"), "ADD", b"{\"x\":1}").unwrap();
        assert!(ok);
        assert_eq!(out, b"{\"x\":1}");
        let (ok, _) = execute(&PathBuf::from("/bin/false"), "ADD", b"").unwrap();
        assert!(!ok);
    }
}
