//! The one question the driver asks dockerd: a network's name. libnetwork's API carries only
//! network ids, but a network's profile is named after the network as the user typed it
//! (Calico's driver asked the same, through the Docker client configured by `DOCKER_HOST`).
//!
//! One HTTP/1.0 GET over dockerd's unix socket (`GET /networks/{id}`, Docker Engine API),
//! bounded in time and in the size of the answer.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::types::{DriverError, DriverResult};

/// Where dockerd listens when `DOCKER_HOST` is not set.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
const TIMEOUT: Duration = Duration::from_secs(5);
/// A network's inspect answer lists its containers; far below this in practice.
const MAX_ANSWER: u64 = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerApi {
    pub socket: PathBuf,
}

impl DockerApi {
    /// `DOCKER_HOST` as the Docker client reads it; only `unix://` is supported.
    pub fn from_docker_host(value: Option<&str>) -> Result<DockerApi, String> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(DockerApi {
                socket: DEFAULT_SOCKET.into(),
            }),
            Some(v) => match v.strip_prefix("unix://") {
                Some(path) if path.starts_with('/') => Ok(DockerApi {
                    socket: path.into(),
                }),
                _ => Err(format!(
                    "DOCKER_HOST={v:?}: expected unix:///path/to/docker.sock"
                )),
            },
        }
    }

    /// The name of network `id` (already validated as a Docker id).
    pub fn network_name(&self, id: &str) -> DriverResult<String> {
        #[derive(Deserialize)]
        struct Network {
            #[serde(rename = "Name")]
            name: String,
        }
        let body = self.get(&format!("/networks/{id}"))?;
        let network: Network = serde_json::from_slice(&body).map_err(|e| {
            DriverError::new(format!(
                "dockerd's answer for network {id} has no name: {e}"
            ))
        })?;
        Ok(network.name)
    }

    fn get(&self, path: &str) -> DriverResult<Vec<u8>> {
        let fail = |e: std::io::Error| {
            DriverError::new(format!(
                "asking dockerd at {} for {path}: {e}",
                self.socket.display()
            ))
        };
        let mut conn = UnixStream::connect(&self.socket).map_err(fail)?;
        conn.set_read_timeout(Some(TIMEOUT)).map_err(fail)?;
        conn.set_write_timeout(Some(TIMEOUT)).map_err(fail)?;
        // HTTP/1.0: the answer is not chunked and ends when dockerd closes the connection.
        write!(conn, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").map_err(fail)?;
        let mut answer = Vec::new();
        conn.take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .map_err(fail)?;
        let (status, body) = split_answer(&answer).ok_or_else(|| {
            DriverError::new(format!("dockerd's answer to GET {path} is not HTTP"))
        })?;
        if status != 200 {
            return Err(DriverError::new(format!(
                "dockerd answered GET {path} with {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)]).trim()
            )));
        }
        Ok(body.to_vec())
    }
}

/// The status code and the body of an HTTP/1.x answer.
fn split_answer(answer: &[u8]) -> Option<(u16, &[u8])> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, &answer[end + 4..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_is_a_unix_socket() {
        assert_eq!(
            DockerApi::from_docker_host(None).unwrap().socket,
            PathBuf::from(DEFAULT_SOCKET)
        );
        assert_eq!(
            DockerApi::from_docker_host(Some("unix:///tmp/d.sock"))
                .unwrap()
                .socket,
            PathBuf::from("/tmp/d.sock")
        );
        for bad in ["tcp://1.2.3.4:2375", "unix://relative", "/tmp/d.sock"] {
            let e = DockerApi::from_docker_host(Some(bad)).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn answers_are_split_into_status_and_body() {
        let (status, body) =
            split_answer(b"HTTP/1.0 404 Not Found\r\nContent-Type: x\r\n\r\n{\"message\":\"no\"}")
                .unwrap();
        assert_eq!(status, 404);
        assert_eq!(body, b"{\"message\":\"no\"}");
        assert!(split_answer(b"garbage").is_none());
    }

    #[test]
    fn a_network_name_is_read_from_a_real_unix_socket() {
        let dir = std::env::temp_dir().join(format!("brindle-docker-api-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("d.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 512];
            let n = conn.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"Name\":\"calico-net1\",\"Id\":\"abc\"}")
                .unwrap();
            request
        });
        let api = DockerApi {
            socket: socket.clone(),
        };
        let name = api.network_name("5efe1ee8d2b8");
        let request = server.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(name.unwrap(), "calico-net1");
        assert!(
            request.starts_with("GET /networks/5efe1ee8d2b8 HTTP/1.0\r\n"),
            "{request}"
        );
    }
}
