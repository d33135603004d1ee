//! One short iperf3 TCP run between network namespaces: a one-shot server in one, the client
//! in the other, and what it delivered, read from the client's JSON report (`-J`).

use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::cmd::{self, ChildGuard, CmdError};

/// How long the server is given to listen before the client connects.
const SERVER_START: Duration = Duration::from_millis(300);

/// `seconds` of iperf3 TCP from namespace `client_ns` to a one-shot server on `port` in
/// `server_ns` at `server_ip`; the client's output (its `-J` report on stdout), whatever its
/// exit status. The server is stopped on every path.
pub fn tcp(
    client_ns: &str,
    server_ns: &str,
    server_ip: Ipv4Addr,
    port: u16,
    seconds: u32,
) -> Result<Output, CmdError> {
    tcp_streams(client_ns, server_ns, server_ip, port, seconds, 1)
}

/// [`tcp`] with `streams` parallel connections (`-P`).
pub fn tcp_streams(
    client_ns: &str,
    server_ns: &str,
    server_ip: Ipv4Addr,
    port: u16,
    seconds: u32,
    streams: u32,
) -> Result<Output, CmdError> {
    let port = port.to_string();
    let server_args = [
        "ip", "netns", "exec", server_ns, "iperf3", "-s", "-1", "-p", &port,
    ];
    let server = Command::new(server_args[0])
        .args(&server_args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| CmdError::Spawn {
            command: cmd::display(&server_args),
            source,
        })?;
    let _server = ChildGuard::new("iperf3 server", server);
    std::thread::sleep(SERVER_START);
    let target = server_ip.to_string();
    let time = seconds.to_string();
    let parallel = streams.to_string();
    let client = [
        "ip",
        "netns",
        "exec",
        client_ns,
        "iperf3",
        "-c",
        &target,
        "-p",
        &port,
        "-t",
        &time,
        "-P",
        &parallel,
        "-J",
        "--connect-timeout",
        "3000",
    ];
    cmd::run_interruptible(&client, Duration::from_secs(u64::from(seconds) + 20))
}

/// Bytes an iperf3 `-J` run delivered (0 when the report says nothing).
pub fn received_bytes(out: &Output) -> u64 {
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    report["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0)
}
