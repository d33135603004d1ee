//! Counters over a local control socket.
//!
//! The node listens on a Unix stream socket; every connection gets one JSON document with the
//! fastpath counters (summed over workers, and per worker), the slow path's counters and the
//! ports, then the connection closes. `brindle-node stats` is the client.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context};
use fastpath::{DropReason, PipelineCounters};
use serde_json::{json, Map, Value};

/// The client side, shared with brindlectl and the tests.
pub use cli::node_client::fetch;

/// Renders one set of fastpath counters. `dropped` and `drops` are about received frames
/// (`rx_packets == forwarded + punted + dropped`); `socket_lost` counts the frames the kernel
/// lost in the AF_XDP rings before the pipeline saw them, `socket` the kernel's counts by name.
pub fn counters_json(c: &PipelineCounters) -> Value {
    let mut drops = Map::new();
    for reason in DropReason::ALL {
        drops.insert(reason.name().to_owned(), json!(c.dropped(reason)));
    }
    let socket: Map<String, Value> = c
        .socket
        .named()
        .into_iter()
        .map(|(name, v)| (name.to_owned(), json!(v)))
        .collect();
    json!({
        "rx_packets": c.rx_packets,
        "rx_bytes": c.rx_bytes,
        "forwarded": c.forwarded,
        "punted": c.punted,
        "injected": c.injected,
        "tx_packets": c.tx_packets,
        "ipip_encapsulated": c.ipip_encapsulated,
        "ipip_decapsulated": c.ipip_decapsulated,
        "checksums_completed": c.checksums_completed,
        "gso_received": c.gso_received,
        "gso_cut": c.gso_cut,
        "gro_merged": c.gro_merged,
        "dropped": c.total_drops(),
        "drops": drops,
        "socket_lost": c.socket.lost(),
        "socket": socket,
    })
}

/// Serves `report()` to every client until `stop` is set.
pub struct StatsServer {
    path: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl StatsServer {
    pub fn start(
        path: &Path,
        stop: Arc<AtomicBool>,
        report: impl Fn() -> Value + Send + 'static,
    ) -> anyhow::Result<StatsServer> {
        if let Some(dir) = path.parent() {
            // A directory made here is root-only too (existing ones are left as they are).
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        if path.exists() {
            // A crashed run leaves its socket file behind; a live node still answers on it.
            if UnixStream::connect(path).is_ok() {
                bail!(
                    "control_socket {}: another brindle-node is serving on it",
                    path.display()
                );
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale {}", path.display()))?;
        }
        let listener = bind_root_only(path)?;
        listener.set_nonblocking(true)?;
        let thread = std::thread::Builder::new()
            .name("stats".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut conn, _)) => {
                            let _ = conn.set_nonblocking(false);
                            let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
                            let body = report().to_string();
                            let _ = conn
                                .write_all(body.as_bytes())
                                .and_then(|_| conn.write_all(b"\n"));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "control socket accept failed");
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            })?;
        Ok(StatsServer {
            path: path.to_owned(),
            thread: Some(thread),
        })
    }
}

/// Binds the control socket with mode 0600 (issue 14, item 7): it reports the whole node's
/// state and only root may connect. The socket is bound under a temporary name, narrowed, then
/// renamed into place, so it is never reachable with the umask's wider mode.
fn bind_root_only(path: &Path) -> anyhow::Result<UnixListener> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let _ = std::fs::remove_file(&temporary);
    let listener = UnixListener::bind(&temporary)
        .with_context(|| format!("binding control_socket {}", temporary.display()))?;
    let placed = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&temporary);
        return Err(e).with_context(|| format!("placing control_socket {}", path.display()));
    }
    Ok(listener)
}

impl Drop for StatsServer {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_reports_and_removes_its_socket() {
        let dir = std::env::temp_dir().join(format!("brindle-stats-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("node.sock");
        let stop = Arc::new(AtomicBool::new(false));
        let mut c = PipelineCounters {
            rx_packets: 3,
            ..Default::default()
        };
        c.drop(DropReason::NoRoute);
        c.socket.rx_ring_full = 7;
        c.socket.tx_ring_empty = 2;
        let server = StatsServer::start(&path, stop.clone(), move || counters_json(&c)).unwrap();
        let got = fetch(&path).unwrap();
        // Root-only: the socket 0600, the directory made for it 0700.
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&path), mode(&dir)), (0o600, 0o700));
        assert_eq!(got["rx_packets"], 3);
        assert_eq!(got["drops"]["no_route"], 1);
        assert_eq!(got["dropped"], 1);
        assert_eq!(got["socket"]["rx_ring_full"], 7);
        assert_eq!(
            got["socket_lost"], 7,
            "ring-empty events are not lost frames"
        );
        // A second node on the same socket is refused while the first is alive.
        let err = StatsServer::start(&path, stop.clone(), || json!({}))
            .err()
            .unwrap();
        assert!(err.to_string().contains("another brindle-node"), "{err}");
        stop.store(true, Ordering::Relaxed);
        drop(server);
        assert!(!path.exists());
        let _ = std::fs::remove_dir(&dir);
    }
}
