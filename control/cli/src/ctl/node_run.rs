//! `node run`: starts brindle-node on this host, as `calicoctl node run` starts the
//! calico-node container.
//!
//! calicoctl's flags become calico-node's environment, which brindle-node reads in agent mode
//! (`control::agent::env`): `--name` -> `NODENAME` (default: the hostname, fixed at start so
//! that a later hostname change does not rename the node), `--ip` -> `IP`,
//! `--ip-autodetection-method` -> `IP_AUTODETECTION_METHOD`, `--as` -> `AS`,
//! `--no-default-ippools` -> `NO_DEFAULT_POOLS`, `--backend` -> `CALICO_NETWORKING_BACKEND`,
//! and the datastore of brindlectl's config (file or environment) -> `DATASTORE_TYPE`,
//! `ETCD_*`, `BRINDLE_EMBEDDED_PATH`. brindlectl's own `CALICO_*`, `FELIX_*` and `BRINDLE_*`
//! variables are passed on; nothing else of its environment is.
//!
//! Where systemd is the init system the node runs as the transient unit `brindle-node`
//! (`systemd-run`, restarted when it fails: calicoctl's `--restart=always`); elsewhere it is
//! started detached (its own session, output to a log file) and its pid written to a pid file,
//! which `node status` and a second `node run` read. `--init-system` runs it in the
//! foreground, for a unit file of one's own.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use datastore::{DatastoreConfig, DatastoreType};

use super::CtlError;

/// The unit systemd runs the node as (calicoctl names its container `calico-node`).
pub const UNIT_NAME: &str = "brindle-node";
pub const DEFAULT_PID_FILE: &str = "/var/run/brindle/brindle-node.pid";
pub const DEFAULT_LOG_DIR: &str = "/var/log/brindle";
const LOG_FILE: &str = "brindle-node.log";
const NODE_BINARY: &str = "brindle-node";
/// Prefixes of the variables of calico-node and brindle-node passed on from brindlectl's
/// environment (pool CIDR and IPIP mode, Felix's ports, brindle's modes and paths).
const PASSED_PREFIXES: [&str; 3] = ["CALICO_", "FELIX_", "BRINDLE_"];
const PASSED_VARIABLES: [&str; 3] = ["RUST_LOG", "ETCD_TIMEOUT", "PATH"];
/// How much of the log a failed start shows.
const LOG_TAIL_BYTES: u64 = 2000;

/// `node run`'s flags.
#[derive(Clone, Debug)]
pub struct RunArgs {
    pub ip: Option<String>,
    pub ip_autodetection_method: String,
    pub as_number: Option<String>,
    pub name: Option<String>,
    pub no_default_ippools: bool,
    pub backend: String,
    pub node_binary: Option<PathBuf>,
    pub log_dir: PathBuf,
    pub pid_file: PathBuf,
    pub dryrun: bool,
    pub init_system: bool,
    pub start_timeout: Duration,
}

/// What is started: the node binary with exactly this environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub binary: PathBuf,
    pub env: BTreeMap<String, String>,
}

/// Who keeps the node running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Supervisor {
    Systemd,
    Detached,
}

impl Supervisor {
    /// systemd when it is the init system (sd_booted(3): `/run/systemd/system` exists).
    pub fn detect() -> Supervisor {
        if Path::new("/run/systemd/system").is_dir() {
            Supervisor::Systemd
        } else {
            Supervisor::Detached
        }
    }
}

fn failed(reason: impl std::fmt::Display) -> CtlError {
    CtlError::new(format!("Failed to execute command: {reason}"))
}

/// `node run`.
pub fn run(
    args: &RunArgs,
    datastore: Result<DatastoreConfig, CtlError>,
    out: &mut String,
) -> Result<(), CtlError> {
    let binary = find_binary(args.node_binary.as_deref())?;
    let launch = plan(args, &datastore?, std::env::vars(), binary)?;
    let supervisor = Supervisor::detect();
    if args.dryrun {
        out.push_str("Use the following command to start brindle-node:\n\n");
        let line = match (args.init_system, supervisor) {
            (false, Supervisor::Systemd) => shell_line(&systemd_run_command(&launch)),
            _ => env_command_line(&launch),
        };
        out.push_str(&format!("{line}\n\n"));
        return Ok(());
    }
    if args.init_system {
        // In the foreground, as calicoctl's --init-system: the init system supervises.
        let err = Command::new(&launch.binary)
            .env_clear()
            .envs(&launch.env)
            .exec();
        return Err(failed(format!(
            "cannot run {}: {err}",
            launch.binary.display()
        )));
    }
    match supervisor {
        Supervisor::Systemd => start_unit(&launch, out),
        Supervisor::Detached => start_detached(args, &launch, out),
    }
}

/// The environment the node gets from the flags, the datastore and brindlectl's own
/// environment (`inherited`).
pub fn plan(
    args: &RunArgs,
    datastore: &DatastoreConfig,
    inherited: impl IntoIterator<Item = (String, String)>,
    binary: PathBuf,
) -> Result<Launch, CtlError> {
    let mut env: BTreeMap<String, String> = inherited
        .into_iter()
        .filter(|(k, _)| {
            PASSED_PREFIXES.iter().any(|p| k.starts_with(p))
                || PASSED_VARIABLES.contains(&k.as_str())
        })
        .collect();
    // Set by the datastore below, never inherited: brindlectl's config decides.
    env.remove("BRINDLE_EMBEDDED_PATH");

    let name = match &args.name {
        Some(n) => n.clone(),
        None => crate::host::hostname()
            .ok_or_else(|| failed("unable to determine node name (give --name)"))?,
    };
    check_node_name(&name)?;
    env.insert("NODENAME".into(), name);
    if let Some(ip) = &args.ip {
        env.insert("IP".into(), node_ip(ip)?);
    }
    if let Some(method) = autodetection_method(&args.ip_autodetection_method)? {
        env.insert("IP_AUTODETECTION_METHOD".into(), method);
    }
    if let Some(asn) = &args.as_number {
        env.insert("AS".into(), as_number(asn)?.to_string());
    }
    if args.no_default_ippools {
        env.insert("NO_DEFAULT_POOLS".into(), "true".into());
    }
    if !matches!(args.backend.as_str(), "bird" | "none") {
        return Err(failed(format!(
            "unknown backend '{}' (expected bird or none)",
            args.backend
        )));
    }
    env.insert("CALICO_NETWORKING_BACKEND".into(), args.backend.clone());
    datastore_env(datastore, &mut env);
    Ok(Launch { binary, env })
}

/// The datastore as brindle-node's environment names it.
fn datastore_env(ds: &DatastoreConfig, env: &mut BTreeMap<String, String>) {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    match ds.datastore_type {
        DatastoreType::Etcdv3 => {
            env.insert("DATASTORE_TYPE".into(), "etcdv3".into());
            env.insert("ETCD_ENDPOINTS".into(), ds.etcd.endpoints.join(","));
            for (var, file) in [
                ("ETCD_CA_CERT_FILE", path(&ds.etcd.ca_file)),
                ("ETCD_CERT_FILE", path(&ds.etcd.cert_file)),
                ("ETCD_KEY_FILE", path(&ds.etcd.key_file)),
            ] {
                if let Some(file) = file {
                    env.insert(var.into(), file);
                }
            }
        }
        DatastoreType::Embedded => {
            env.insert("DATASTORE_TYPE".into(), "embedded".into());
            env.insert(
                "BRINDLE_EMBEDDED_PATH".into(),
                ds.embedded_path.display().to_string(),
            );
        }
    }
}

/// `--ip`: an IPv4 address with an optional prefix length, or `autodetect`.
fn node_ip(text: &str) -> Result<String, CtlError> {
    if text == "autodetect" {
        return Ok(text.into());
    }
    if text == "none" {
        return Err(failed(
            "--ip none (a node without an IPv4 address) is not supported: brindle-node routes between nodes by their IPv4 addresses",
        ));
    }
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => {}
        Ok(std::net::IpAddr::V6(_)) => return Err(failed("--ip is wrong IP version")),
        Err(_) => {
            return Err(failed(format!(
                "--ip '{text}': expected an IPv4 address (with an optional /len) or 'autodetect'"
            )))
        }
    }
    if let Some(len) = len {
        if !len.parse::<u8>().is_ok_and(|l| l <= 32) {
            return Err(failed(format!(
                "--ip '{text}': prefix length must be 0..32"
            )));
        }
    }
    Ok(text.into())
}

/// `--ip-autodetection-method`: the methods brindle-node has; `None` for its default,
/// first-found. `interface=` takes calicoctl's comma-separated regexes (any may match);
/// `can-reach=` a name is resolved here, as calicoctl checks it.
fn autodetection_method(text: &str) -> Result<Option<String>, CtlError> {
    let bad = |reason: String| failed(format!("--ip-autodetection-method '{text}': {reason}"));
    if text == "first-found" {
        return Ok(None);
    }
    if let Some(list) = text.strip_prefix("interface=") {
        let regexes: Vec<&str> = list.split(',').collect();
        for re in &regexes {
            regex::Regex::new(re)
                .map_err(|e| bad(format!("invalid interface regex '{re}': {e}")))?;
        }
        let joined = match regexes.as_slice() {
            [one] => (*one).to_string(),
            many => many
                .iter()
                .map(|re| format!("(?:{re})"))
                .collect::<Vec<_>>()
                .join("|"),
        };
        return Ok(Some(format!("interface={joined}")));
    }
    if let Some(dest) = text.strip_prefix("can-reach=") {
        use std::net::ToSocketAddrs;
        if dest.parse::<std::net::Ipv4Addr>().is_ok() {
            return Ok(Some(text.into()));
        }
        let resolved = (dest, 0)
            .to_socket_addrs()
            .map_err(|_| bad(format!("cannot resolve address '{dest}'")))?
            .find_map(|a| match a.ip() {
                std::net::IpAddr::V4(v4) => Some(v4),
                std::net::IpAddr::V6(_) => None,
            })
            .ok_or_else(|| bad(format!("'{dest}' does not resolve to an IPv4 address")))?;
        return Ok(Some(format!("can-reach={resolved}")));
    }
    for unsupported in ["skip-interface=", "cidr=", "kubernetes-internal-ip"] {
        if text.starts_with(unsupported) {
            return Err(bad(format!(
                "{} is not supported by brindle-node; use first-found, interface=REGEX or can-reach=ADDR",
                unsupported.trim_end_matches('=')
            )));
        }
    }
    Err(bad(
        "invalid IP autodetection method (expected first-found, interface=REGEX or can-reach=ADDR)"
            .into(),
    ))
}

/// `--as`: plain or asdot (`1.10`, RFC 5396); calico-node takes the plain number.
fn as_number(text: &str) -> Result<u32, CtlError> {
    let parsed = match text.split_once('.') {
        Some((hi, lo)) => hi
            .parse::<u16>()
            .ok()
            .zip(lo.parse::<u16>().ok())
            .map(|(hi, lo)| (u32::from(hi) << 16) | u32::from(lo)),
        None => text.parse().ok(),
    };
    parsed.ok_or_else(|| {
        failed(format!(
            "--as '{text}': expected an AS number (0..4294967295, or asdot like 1.10)"
        ))
    })
}

/// A Node's name is a DNS subdomain (what brindle-node itself accepts as NODENAME).
fn check_node_name(name: &str) -> Result<(), CtlError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(failed(format!(
            "--name '{name}': must be a DNS subdomain (lowercase letters, digits, '-', '.')"
        )))
    }
}

/// `--node-binary`, else brindle-node next to brindlectl, else on PATH.
fn find_binary(given: Option<&Path>) -> Result<PathBuf, CtlError> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(failed(format!(
                "--node-binary {}: no such file",
                path.display()
            )))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(NODE_BINARY)));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(NODE_BINARY));
    beside
        .into_iter()
        .chain(on_path)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            failed("cannot find brindle-node next to brindlectl or on PATH (give --node-binary)")
        })
}

/// `systemd-run` starting the node as the transient unit `brindle-node`, restarted when it
/// fails, with exactly the launch's environment.
pub fn systemd_run_command(launch: &Launch) -> Vec<String> {
    let mut cmd = vec![
        "systemd-run".to_string(),
        format!("--unit={UNIT_NAME}"),
        "--description=Brindle node service (calico-node)".to_string(),
        "--property=Restart=always".to_string(),
    ];
    cmd.extend(launch.env.iter().map(|(k, v)| format!("--setenv={k}={v}")));
    cmd.push(launch.binary.display().to_string());
    cmd
}

fn start_unit(launch: &Launch, out: &mut String) -> Result<(), CtlError> {
    let cmd = systemd_run_command(launch);
    out.push_str(&format!(
        "Running the following command to start brindle-node:\n\n{}\n\n",
        shell_line(&cmd)
    ));
    let result = Command::new(&cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(format!("cannot run systemd-run: {e}")))?;
    if !result.status.success() {
        return Err(failed(format!(
            "systemd-run failed ({}): {}",
            result.status,
            String::from_utf8_lossy(&result.stderr).trim()
        )));
    }
    out.push_str(&format!(
        "brindle-node started as the systemd unit {UNIT_NAME} (journalctl -u {UNIT_NAME} shows its log).\n"
    ));
    Ok(())
}

fn start_detached(args: &RunArgs, launch: &Launch, out: &mut String) -> Result<(), CtlError> {
    if let Some(pid) = running_pid(&args.pid_file) {
        return Err(failed(format!(
            "brindle-node is already running (pid {pid}, pid file {}); stop it first",
            args.pid_file.display()
        )));
    }
    let log_path = args.log_dir.join(LOG_FILE);
    for dir in [Some(args.log_dir.as_path()), args.pid_file.parent()]
        .into_iter()
        .flatten()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| failed(format!("cannot open {}: {e}", log_path.display())))?;
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    let log_err = log
        .try_clone()
        .map_err(|e| failed(format!("{}: {e}", log_path.display())))?;
    out.push_str(&format!(
        "Starting brindle-node (log {}, pid file {}):\n\n{}\n\n",
        log_path.display(),
        args.pid_file.display(),
        env_command_line(launch)
    ));
    let mut command = Command::new(&launch.binary);
    command
        .env_clear()
        .envs(&launch.env)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // SAFETY: setsid(2) is async-signal-safe; it makes the node the leader of a new session,
    // so that it outlives this command and its terminal's hangup.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| failed(format!("cannot start {}: {e}", launch.binary.display())))?;
    let pid = child.id();
    write_pid_file(&args.pid_file, pid)?;

    let socket = launch.env.get("BRINDLE_CONTROL_SOCKET").map_or_else(
        || PathBuf::from(crate::node_client::DEFAULT_CONTROL_SOCKET),
        PathBuf::from,
    );
    let deadline = Instant::now() + args.start_timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let _ = std::fs::remove_file(&args.pid_file);
            return Err(failed(format!(
                "brindle-node exited ({status}) while starting; its log ({}):\n{}",
                log_path.display(),
                log_tail(&log_path, log_start)
            )));
        }
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            out.push_str(&format!("brindle-node started (pid {pid}).\n"));
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(failed(format!(
                "brindle-node (pid {pid}) has not opened its control socket {} within {:?}; it is still running, see {}",
                socket.display(),
                args.start_timeout,
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Written whole (a temporary file renamed over it) so that a reader never sees half a pid.
fn write_pid_file(path: &Path, pid: u32) -> Result<(), CtlError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{pid}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))
}

/// The pid in `pid_file` if that process is a live brindle-node (not a zombie, not a process
/// that got the pid after the node died: its program must be brindle-node).
pub fn running_pid(pid_file: &Path) -> Option<u32> {
    let mut text = String::new();
    std::fs::File::open(pid_file)
        .ok()?
        .take(64)
        .read_to_string(&mut text)
        .ok()?;
    let pid: u32 = text.trim().parse().ok().filter(|p| *p > 0)?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses and may hold anything.
    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
    if matches!(state, "Z" | "X" | "x") {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let argv0 = cmdline.split(|b| *b == 0).next()?;
    let program = Path::new(std::ffi::OsStr::new(std::str::from_utf8(argv0).ok()?));
    program
        .file_name()?
        .to_str()?
        .starts_with(NODE_BINARY)
        .then_some(pid)
}

/// What the node wrote to its log since `from`, at most the last 2000 bytes.
fn log_tail(path: &Path, from: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = (from as usize)
        .max(text.len().saturating_sub(LOG_TAIL_BYTES as usize))
        .min(text.len());
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// `K=V ... binary` as a shell would take it (PATH left out: it is long and unsurprising).
fn env_command_line(launch: &Launch) -> String {
    let mut words: Vec<String> = launch
        .env
        .iter()
        .filter(|(k, _)| k.as_str() != "PATH")
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect();
    words.push(quote(&launch.binary.display().to_string()));
    words.join(" ")
}

fn shell_line(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> RunArgs {
        RunArgs {
            ip: None,
            ip_autodetection_method: "first-found".into(),
            as_number: None,
            name: Some("node-1".into()),
            no_default_ippools: false,
            backend: "bird".into(),
            node_binary: None,
            log_dir: DEFAULT_LOG_DIR.into(),
            pid_file: DEFAULT_PID_FILE.into(),
            dryrun: false,
            init_system: false,
            start_timeout: Duration::from_secs(30),
        }
    }

    fn etcd() -> DatastoreConfig {
        DatastoreConfig {
            datastore_type: DatastoreType::Etcdv3,
            etcd: datastore::EtcdConfig {
                endpoints: vec!["http://10.0.0.1:2379".into(), "http://10.0.0.2:2379".into()],
                ca_file: Some("/etc/brindle/ca.pem".into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn env_of(
        args: &RunArgs,
        inherited: &[(&str, &str)],
    ) -> Result<BTreeMap<String, String>, CtlError> {
        let inherited = inherited
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()));
        plan(args, &etcd(), inherited, "/usr/bin/brindle-node".into()).map(|l| l.env)
    }

    #[test]
    fn flags_become_calico_node_variables() {
        let mut a = args();
        a.ip = Some("10.0.0.5/24".into());
        a.ip_autodetection_method = "interface=eth.*,ens.*".into();
        a.as_number = Some("1.10".into());
        a.no_default_ippools = true;
        let env = env_of(
            &a,
            &[
                ("CALICO_IPV4POOL_IPIP", "Never"),
                ("BRINDLE_CONTROL_SOCKET", "/tmp/n.sock"),
                ("BRINDLE_EMBEDDED_PATH", "/tmp/other.redb"),
                ("IP", "10.9.9.9"),
                ("HOME", "/root"),
            ],
        )
        .unwrap();
        let expected: BTreeMap<String, String> = [
            ("AS", "65546"),
            ("BRINDLE_CONTROL_SOCKET", "/tmp/n.sock"),
            ("CALICO_IPV4POOL_IPIP", "Never"),
            ("CALICO_NETWORKING_BACKEND", "bird"),
            ("DATASTORE_TYPE", "etcdv3"),
            ("ETCD_CA_CERT_FILE", "/etc/brindle/ca.pem"),
            (
                "ETCD_ENDPOINTS",
                "http://10.0.0.1:2379,http://10.0.0.2:2379",
            ),
            ("IP", "10.0.0.5/24"),
            ("IP_AUTODETECTION_METHOD", "interface=(?:eth.*)|(?:ens.*)"),
            ("NODENAME", "node-1"),
            ("NO_DEFAULT_POOLS", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(env, expected);
    }

    #[test]
    fn unsupported_and_bad_flags_are_refused_by_name() {
        let refused = |f: &dyn Fn(&mut RunArgs)| {
            let mut a = args();
            f(&mut a);
            env_of(&a, &[]).unwrap_err().to_string()
        };
        let e = refused(&|a| a.ip_autodetection_method = "skip-interface=eth1".into());
        assert!(e.contains("skip-interface is not supported"), "{e}");
        let e = refused(&|a| a.ip_autodetection_method = "cidr=10.0.0.0/8".into());
        assert!(e.contains("cidr is not supported"), "{e}");
        let e = refused(&|a| a.ip_autodetection_method = "interface=(".into());
        assert!(e.contains("invalid interface regex '('"), "{e}");
        let e = refused(&|a| a.ip = Some("none".into()));
        assert!(e.contains("--ip none"), "{e}");
        let e = refused(&|a| a.ip = Some("fd00::1".into()));
        assert!(e.contains("--ip is wrong IP version"), "{e}");
        let e = refused(&|a| a.ip = Some("10.0.0.1/33".into()));
        assert!(e.contains("'10.0.0.1/33'"), "{e}");
        let e = refused(&|a| a.as_number = Some("65536.1".into()));
        assert!(e.contains("--as '65536.1'"), "{e}");
        let e = refused(&|a| a.name = Some("Node_1".into()));
        assert!(e.contains("--name 'Node_1'"), "{e}");
        let e = refused(&|a| a.backend = "gobgp".into());
        assert!(e.contains("unknown backend 'gobgp'"), "{e}");
    }

    #[test]
    fn can_reach_takes_an_address_and_first_found_sets_nothing() {
        let mut a = args();
        a.ip_autodetection_method = "can-reach=10.1.2.3".into();
        assert_eq!(
            env_of(&a, &[]).unwrap()["IP_AUTODETECTION_METHOD"],
            "can-reach=10.1.2.3"
        );
        a.ip_autodetection_method = "can-reach=localhost".into();
        assert_eq!(
            env_of(&a, &[]).unwrap()["IP_AUTODETECTION_METHOD"],
            "can-reach=127.0.0.1"
        );
        let env = env_of(&args(), &[]).unwrap();
        assert!(!env.contains_key("IP_AUTODETECTION_METHOD") && !env.contains_key("IP"));
    }

    #[test]
    fn the_embedded_store_is_named_by_its_file() {
        let ds = DatastoreConfig {
            embedded_path: "/var/lib/x.redb".into(),
            ..Default::default()
        };
        let env = plan(&args(), &ds, Vec::new(), "/b".into()).unwrap().env;
        assert_eq!(env["DATASTORE_TYPE"], "embedded");
        assert_eq!(env["BRINDLE_EMBEDDED_PATH"], "/var/lib/x.redb");
    }

    #[test]
    fn systemd_runs_a_transient_unit_with_the_environment() {
        let launch = Launch {
            binary: "/usr/bin/brindle-node".into(),
            env: [("NODENAME", "node-1"), ("DATASTORE_TYPE", "etcdv3")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        assert_eq!(
            systemd_run_command(&launch),
            [
                "systemd-run",
                "--unit=brindle-node",
                "--description=Brindle node service (calico-node)",
                "--property=Restart=always",
                "--setenv=DATASTORE_TYPE=etcdv3",
                "--setenv=NODENAME=node-1",
                "/usr/bin/brindle-node",
            ]
        );
        assert_eq!(
            shell_line(&systemd_run_command(&launch)).split(' ').nth(2),
            Some("'--description=Brindle")
        );
    }

    #[test]
    fn a_pid_file_counts_only_for_a_live_brindle_node() {
        let dir = std::env::temp_dir().join(format!("brindlectl-pid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("node.pid");
        assert_eq!(running_pid(&file), None, "no file");
        // This test's own process lives, but it is not brindle-node.
        std::fs::write(&file, format!("{}\n", std::process::id())).unwrap();
        assert_eq!(running_pid(&file), None);
        std::fs::write(&file, "garbage").unwrap();
        assert_eq!(running_pid(&file), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
