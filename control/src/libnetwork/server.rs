//! HTTP over the plugin's unix sockets (libnetwork `docs/remote.md`: every call is a POST of
//! JSON to `/<Interface>.<Method>`, answered with JSON). Bodies from dockerd are bounded in
//! size; every error is answered with a non-200 status and `{"Err": ...}`, because dockerd
//! takes a 200 answer carrying `Err` for success.
//!
//! The handlers block (datastore round trips, `ip` commands), so they run on tokio's blocking
//! pool; the server itself is one small current-thread runtime beside the node's threads.

use std::os::unix::net::UnixListener as StdUnixListener;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use super::types::{shorten, DriverError, ErrorBody};
use super::{ipam, network, Driver};

/// The largest request body accepted; dockerd's largest (CreateNetwork) is well under 1 KiB.
pub const MAX_BODY: usize = 64 * 1024;
const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// Which driver a socket is: dockerd finds each by its own name (`<name>.sock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Network,
    Ipam,
}

impl Role {
    /// The interface `Plugin.Activate` reports, and the prefix of this role's calls.
    pub fn interface(self) -> &'static str {
        match self {
            Role::Network => "NetworkDriver",
            Role::Ipam => "IpamDriver",
        }
    }
}

struct Socket {
    driver: Arc<Driver>,
    role: Role,
}

/// Serves `listeners` until the process ends.
pub fn run(driver: Arc<Driver>, listeners: Vec<(StdUnixListener, Role)>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async move {
        let mut servers = tokio::task::JoinSet::new();
        for (listener, role) in listeners {
            let listener = tokio::net::UnixListener::from_std(listener)?;
            let state = Arc::new(Socket {
                driver: driver.clone(),
                role,
            });
            let app = Router::new()
                .fallback(answer)
                .layer(DefaultBodyLimit::max(MAX_BODY))
                .with_state(state);
            servers.spawn(async move { axum::serve(listener, app).await });
        }
        while let Some(ended) = servers.join_next().await {
            if let Ok(Err(e)) = ended {
                tracing::error!(error = %e, "libnetwork plugin socket stopped");
            }
        }
        Ok(())
    })
}

async fn answer(
    State(socket): State<Arc<Socket>>,
    method: Method,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let path = uri.path().to_owned();
    if method != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} {}: plugin calls are POSTs", shorten(&path)),
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(e) => return error(e.status(), &format!("{}: {e}", shorten(&path))),
    };
    let Some((interface, call)) = path.strip_prefix('/').and_then(|p| p.split_once('.')) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("{}: not a plugin call", shorten(&path)),
        );
    };
    if interface == "Plugin" && call == "Activate" {
        return ok(json!({"Implements": [socket.role.interface()]}));
    }
    if interface != socket.role.interface() {
        return error(
            StatusCode::NOT_FOUND,
            &format!(
                "{}: this socket is a {}",
                shorten(&path),
                socket.role.interface()
            ),
        );
    }
    let (call, role) = (call.to_owned(), socket.role);
    let driver = socket.driver.clone();
    let handled = tokio::task::spawn_blocking(move || match role {
        Role::Network => network::handle(&driver, &call, &body),
        Role::Ipam => ipam::handle(&driver, &call, &body),
    })
    .await
    .unwrap_or_else(|e| Err(DriverError::new(format!("the handler failed: {e}"))));
    match handled {
        Ok(value) => ok(value),
        Err(e) => {
            tracing::warn!(call = %path, error = %e, "libnetwork call refused");
            error(StatusCode::INTERNAL_SERVER_ERROR, &e.0)
        }
    }
}

fn ok(value: Value) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], value.to_string()).into_response()
}

fn error(status: StatusCode, msg: &str) -> Response {
    let body = serde_json::to_string(&ErrorBody { err: msg }).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::path::Path;

    use super::super::{start, Settings};
    use super::*;

    /// One raw HTTP/1.1 request on a fresh connection; the status and the JSON body.
    fn call(socket: &Path, path: &str, body: &[u8]) -> (u16, Value) {
        let mut conn = UnixStream::connect(socket).unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        write!(
            conn,
            "POST {path} HTTP/1.1\r\nHost: plugin\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        // A body over the limit may be refused before it is all sent.
        let _ = conn.write_all(body);
        let mut answer = Vec::new();
        let _ = conn.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    #[test]
    fn sockets_answer_their_role_and_errors_are_never_200() {
        let dir = testkit::TempDir::new("libnetwork-server");
        let settings = Settings {
            plugin_dir: dir.path().join("plugins"),
            docker: super::super::docker::DockerApi {
                socket: dir.path().join("no-dockerd.sock"),
            },
            mtu: 1500,
        };
        let store = Arc::new(datastore::EmbeddedStore::open_in_memory().unwrap());
        let plugin = start(&settings, store, "node-a").unwrap();
        let sock = |name: &str| settings.plugin_dir.join(format!("{name}.sock"));

        let (status, v) = call(&sock("calico"), "/Plugin.Activate", b"");
        assert_eq!((status, v), (200, json!({"Implements": ["NetworkDriver"]})));
        let (status, v) = call(&sock("calico-ipam"), "/Plugin.Activate", b"{}");
        assert_eq!((status, v), (200, json!({"Implements": ["IpamDriver"]})));
        let (status, v) = call(&sock("brindle"), "/NetworkDriver.GetCapabilities", b"");
        assert_eq!(status, 200);
        assert_eq!(v["Scope"], "global");

        // A network call on the IPAM socket, junk JSON, a bad id, an unknown call and a body
        // over the limit: each a non-200 answer whose Err says what was wrong.
        let oversized = vec![b' '; MAX_BODY + 1];
        for (name, path, body, expect) in [
            (
                "calico-ipam",
                "/NetworkDriver.CreateNetwork",
                &b"{}"[..],
                "IpamDriver",
            ),
            (
                "calico",
                "/NetworkDriver.CreateNetwork",
                b"{not json",
                "cannot decode",
            ),
            (
                "calico",
                "/NetworkDriver.Join",
                br#"{"EndpointID":"../x"}"#,
                "EndpointID",
            ),
            ("calico", "/NetworkDriver.Frobnicate", b"{}", "Frobnicate"),
            ("brindle-ipam", "/IpamDriver.RequestPool", &oversized, ""),
        ] {
            let (status, v) = call(&sock(name), path, body);
            assert_ne!(status, 200, "{path} on {name}: {v}");
            let err = v["Err"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: no Err in {v}"));
            assert!(err.contains(expect), "{path}: {err}");
        }
        // CreateEndpoint asks dockerd for the network's name; no dockerd is an error, not 200.
        let id = "5efe1ee8d2b8a3bf2237a3c41ea32622ac332e844762fa3a2aa2d5b27939494b";
        let body = format!(
            r#"{{"NetworkID":"{id}","EndpointID":"{id}","Interface":{{"Address":"10.1.1.5/32"}}}}"#
        );
        let (status, v) = call(
            &sock("calico"),
            "/NetworkDriver.CreateEndpoint",
            body.as_bytes(),
        );
        assert_eq!(status, 500, "{v}");
        assert!(v["Err"].as_str().unwrap().contains("dockerd"), "{v}");

        drop(plugin);
        assert!(
            !sock("calico").exists(),
            "sockets are removed with the plugin"
        );
    }
}
