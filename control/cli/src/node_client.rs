//! Talking to a running brindle-node from outside it: the JSON document its control socket
//! serves (counters, ports, BGP peers) and its HTTP health endpoints. The node serves both
//! (`control::stats`, `control::health`); `brindlectl node status` and the tests are clients.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

/// Where brindle-node serves its control socket unless node.toml says otherwise.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/brindle/brindle-node.sock";

/// How long a client waits for the node to connect and to answer over HTTP.
const HTTP_TIMEOUT: Duration = Duration::from_secs(2);

/// Fetches the control socket's JSON document from a running node.
pub fn fetch(path: &Path) -> anyhow::Result<Value> {
    let mut conn = UnixStream::connect(path).with_context(|| {
        format!(
            "connecting to {} (is brindle-node running?)",
            path.display()
        )
    })?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut text = String::new();
    conn.read_to_string(&mut text)?;
    serde_json::from_str(&text).with_context(|| format!("bad stats from {}", path.display()))
}

/// Minimal HTTP client for tests and tools: GET `path` from `addr`; returns (status, body).
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut conn = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
    conn.set_read_timeout(Some(HTTP_TIMEOUT))?;
    conn.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut text = String::new();
    conn.take(16 * 1024 * 1024).read_to_string(&mut text)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP status line")
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Ok((status, body))
}
