//! Felix's health endpoints, and the tiny HTTP/1.1 responder that serves them and `/metrics`.
//!
//! `/liveness` answers 200 while the dataplane threads run, `/readiness` 200 once the first
//! apply has succeeded; 503 otherwise. The responder handles one request per connection, reads
//! at most [`MAX_REQUEST`] bytes of it within [`IO_TIMEOUT`], and closes: enough for kubelet
//! probes and Prometheus scrapes, with no framework and nothing a client can make grow.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The client side, shared with brindlectl and the tests.
pub use cli::node_client::get;

/// Felix's default health port.
pub const DEFAULT_HEALTH_PORT: u16 = 9099;
/// Felix's default Prometheus metrics port.
pub const DEFAULT_METRICS_PORT: u16 = 9091;
/// Largest request head read; longer requests get 431.
pub const MAX_REQUEST: usize = 8192;
/// Time a client gets to send its request and take the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// What the health endpoints report, set by the node's main loop.
#[derive(Debug, Default)]
pub struct Health {
    live: AtomicBool,
    ready: AtomicBool,
}

impl Health {
    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Relaxed);
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The answer to a request for `path` on the health port.
    pub fn respond(&self, path: &str) -> Response {
        let status = |ok: bool, what: &str| {
            if ok {
                Response::text(200, format!("{what}: ok\n"))
            } else {
                Response::text(503, format!("{what}: not yet\n"))
            }
        };
        match path {
            "/liveness" => status(self.is_live(), "liveness"),
            "/readiness" => status(self.is_ready(), "readiness"),
            _ => Response::text(404, "not found\n".into()),
        }
    }
}

/// Where the health and metrics endpoints listen (node.toml keys `health_host`, `health_port`,
/// `metrics_host`, `metrics_port`, `metrics_enabled`; Felix's defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    pub health: SocketAddr,
    pub metrics: Option<SocketAddr>,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            health: SocketAddr::from(([0, 0, 0, 0], DEFAULT_HEALTH_PORT)),
            metrics: Some(SocketAddr::from(([0, 0, 0, 0], DEFAULT_METRICS_PORT))),
        }
    }
}

const ENDPOINT_KEYS: [&str; 5] = [
    "health_host",
    "health_port",
    "metrics_host",
    "metrics_port",
    "metrics_enabled",
];

impl EndpointConfig {
    /// Takes the endpoint keys out of node.toml text; returns them and the rest of the file,
    /// for `NodeConfig::parse`.
    pub fn split_from(text: &str) -> Result<(EndpointConfig, String), String> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        if !ENDPOINT_KEYS.iter().any(|k| table.contains_key(*k)) {
            return Ok((EndpointConfig::default(), text.to_owned()));
        }
        let mut take = |key: &str| table.remove(key);
        let host = |key: &str, v: Option<toml::Value>| -> Result<std::net::IpAddr, String> {
            match v {
                None => Ok([0, 0, 0, 0].into()),
                Some(toml::Value::String(s)) => s
                    .parse()
                    .map_err(|_| format!("{key}: invalid value {s:?}: not an IP address")),
                Some(other) => Err(format!(
                    "{key}: invalid value {other}: expected an IP address string"
                )),
            }
        };
        let port = |key: &str, v: Option<toml::Value>, default: u16| -> Result<u16, String> {
            match v {
                None => Ok(default),
                Some(toml::Value::Integer(n)) if (1..=65535).contains(&n) => Ok(n as u16),
                Some(other) => Err(format!(
                    "{key}: invalid value {other}: expected a port number 1-65535"
                )),
            }
        };
        let health_host = host("health_host", take("health_host"))?;
        let health_port = port("health_port", take("health_port"), DEFAULT_HEALTH_PORT)?;
        let metrics_host = host("metrics_host", take("metrics_host"))?;
        let metrics_port = port("metrics_port", take("metrics_port"), DEFAULT_METRICS_PORT)?;
        let enabled = match take("metrics_enabled") {
            None => true,
            Some(toml::Value::Boolean(b)) => b,
            Some(other) => {
                return Err(format!(
                    "metrics_enabled: invalid value {other}: expected true or false"
                ))
            }
        };
        let rest = toml::to_string(&table).map_err(|e| e.to_string())?;
        let config = EndpointConfig {
            health: SocketAddr::new(health_host, health_port),
            metrics: enabled.then(|| SocketAddr::new(metrics_host, metrics_port)),
        };
        Ok((config, rest))
    }
}

/// An HTTP answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Response {
    pub fn text(status: u16, body: String) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
        }
    }

    fn reason(&self) -> &'static str {
        match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "Unknown",
        }
    }
}

/// Serves `respond(path)` on `addr` until `stop` is set.
pub struct HttpServer {
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(
        name: &str,
        addr: SocketAddr,
        stop: Arc<AtomicBool>,
        respond: impl Fn(&str) -> Response + Send + 'static,
    ) -> std::io::Result<HttpServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => serve_one(conn, &respond),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "accept failed");
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })?;
        tracing::info!(%addr, endpoint = name, "listening");
        Ok(HttpServer {
            addr,
            thread: Some(thread),
        })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut conn: TcpStream, respond: &impl Fn(&str) -> Response) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(IO_TIMEOUT));
    let _ = conn.set_write_timeout(Some(IO_TIMEOUT));
    let (response, head_only) = match read_head(&mut conn) {
        Ok(head) => answer(&head, respond),
        Err(status) => (Response::text(status, "bad request\n".into()), false),
    };
    let header = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.reason(),
        response.content_type,
        response.body.len()
    );
    let _ = conn.write_all(header.as_bytes());
    if !head_only {
        let _ = conn.write_all(response.body.as_bytes());
    }
}

/// Reads up to the blank line ending the request head, at most MAX_REQUEST bytes.
fn read_head(conn: &mut impl Read) -> Result<String, u16> {
    let mut buf = [0u8; MAX_REQUEST];
    let mut len = 0;
    loop {
        if len == buf.len() {
            return Err(431);
        }
        match conn.read(&mut buf[len..]) {
            Ok(0) => return Err(400),
            Ok(n) => len += n,
            Err(_) => return Err(400),
        }
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n")
            || buf[..len].windows(2).any(|w| w == b"\n\n")
        {
            return String::from_utf8(buf[..len].to_vec()).map_err(|_| 400);
        }
    }
}

/// The response to a request head, and whether only the head is sent (HEAD).
fn answer(head: &str, respond: &impl Fn(&str) -> Response) -> (Response, bool) {
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return (Response::text(400, "bad request\n".into()), false);
    };
    let path = target.split('?').next().unwrap_or(target);
    match method {
        "GET" => (respond(path), false),
        "HEAD" => (respond(path), true),
        _ => (Response::text(405, "only GET and HEAD\n".into()), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_keys_default_to_felix_ports_and_are_split_from_the_rest() {
        let (c, rest) = EndpointConfig::split_from("mode = \"poll\"\n").unwrap();
        assert_eq!(c, EndpointConfig::default());
        assert_eq!(rest, "mode = \"poll\"\n");
        let (c, rest) = EndpointConfig::split_from(
            "mode = \"poll\"\nhealth_host = \"127.0.0.1\"\nhealth_port = 19099\nmetrics_enabled = false\n",
        )
        .unwrap();
        assert_eq!(c.health, "127.0.0.1:19099".parse().unwrap());
        assert_eq!(c.metrics, None);
        assert!(!rest.contains("health") && rest.contains("mode"), "{rest}");
        let e = EndpointConfig::split_from("health_port = 70000").unwrap_err();
        assert!(e.contains("health_port") && e.contains("70000"), "{e}");
        let e = EndpointConfig::split_from("metrics_host = \"nowhere\"").unwrap_err();
        assert!(e.contains("metrics_host") && e.contains("nowhere"), "{e}");
    }

    #[test]
    fn health_answers_503_until_set_and_404_elsewhere() {
        let h = Health::default();
        assert_eq!(h.respond("/liveness").status, 503);
        assert_eq!(h.respond("/readiness").status, 503);
        h.set_live(true);
        h.set_ready(true);
        assert_eq!(h.respond("/liveness").status, 200);
        assert_eq!(h.respond("/readiness").status, 200);
        assert_eq!(h.respond("/other").status, 404);
    }

    #[test]
    fn server_answers_get_refuses_other_methods_and_bounds_requests() {
        let stop = Arc::new(AtomicBool::new(false));
        let health = Arc::new(Health::default());
        health.set_live(true);
        let h = health.clone();
        let server = HttpServer::start(
            "test-health",
            "127.0.0.1:0".parse().unwrap(),
            stop.clone(),
            move |p| h.respond(p),
        )
        .unwrap();
        let addr = server.addr();
        assert_eq!(
            get(addr, "/liveness").unwrap(),
            (200, "liveness: ok\n".into())
        );
        assert_eq!(get(addr, "/readiness?verbose=1").unwrap().0, 503);
        let raw = |request: &[u8]| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = c.write_all(request);
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
            out
        };
        assert!(raw(b"POST /liveness HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        // Exactly the limit and no end of head: refused without reading further.
        let mut huge = b"GET /liveness HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_REQUEST, b'a');
        assert!(raw(&huge).starts_with("HTTP/1.1 431"));
        let head = raw(b"HEAD /liveness HTTP/1.1\r\n\r\n");
        assert!(
            head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        stop.store(true, Ordering::Relaxed);
        drop(server);
    }
}
