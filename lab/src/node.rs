//! A `brindle-node` process in a lab's node namespace: the one way the tests, the benchmarks
//! and the tools start a node, wait for it, read its stats, signal it and stop it.
//!
//! `ip netns exec` execs the node in place, so the pid held is the node's own: SIGHUP and
//! SIGTERM reach the node itself, not a wrapper.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{ChildStderr, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{self, ChildGuard, CmdError};

/// How long a stopped node may take to exit after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Bound on one stats document: a few MB even with tens of thousands of failures listed.
const MAX_STATS_BYTES: u64 = 256 << 20;
/// How long a control socket may take to send its document.
const STATS_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of the log an error message carries.
const LOG_TAIL_BYTES: usize = 2000;
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Spawn(#[from] CmdError),
    #[error("{label} exited ({status}) {when}; log: {log}")]
    Exited {
        label: String,
        status: ExitStatus,
        when: String,
        log: String,
    },
    #[error("{label}: no {what} within {waited:?}; log: {log}")]
    NotReady {
        label: String,
        what: String,
        waited: Duration,
        log: String,
    },
    #[error("{label}: interrupted waiting for {what}")]
    Interrupted { label: String, what: String },
    #[error("{label}: {what}: {reason}")]
    Stats {
        label: String,
        what: String,
        reason: String,
    },
}

/// Where the node's stdout and stderr go.
#[derive(Clone, Debug)]
pub enum NodeOutput {
    /// Both to this file (created, truncated).
    File(PathBuf),
    /// stderr to a pipe the caller takes with [`NodeProcess::take_stderr`] (to follow the log
    /// as it is written); stdout discarded.
    Piped,
}

/// What to start: `binary` in `netns` with `args` and `env`.
#[derive(Clone, Debug)]
pub struct NodeLaunch {
    /// Names the node in messages, e.g. `brindle-node 2`.
    pub label: String,
    pub netns: String,
    pub binary: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    pub output: NodeOutput,
    /// The control socket readiness and stats are read from.
    pub control_socket: Option<PathBuf>,
}

impl NodeLaunch {
    /// `binary` in `netns`, its output to the file `log`.
    pub fn new(
        netns: impl Into<String>,
        binary: impl Into<PathBuf>,
        log: impl Into<PathBuf>,
    ) -> Self {
        NodeLaunch {
            label: "brindle-node".into(),
            netns: netns.into(),
            binary: binary.into(),
            args: Vec::new(),
            env: Vec::new(),
            output: NodeOutput::File(log.into()),
            control_socket: None,
        }
    }

    /// File mode laid out in one directory: `--config <dir>/node.toml`, the log
    /// `<dir>/node.log`, the control socket `<dir>/node.sock`.
    pub fn file_mode(netns: impl Into<String>, binary: impl Into<PathBuf>, dir: &Path) -> Self {
        NodeLaunch::new(netns, binary, dir.join("node.log"))
            .config(&dir.join("node.toml"))
            .control_socket(dir.join("node.sock"))
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// `--config <path>`: file mode.
    pub fn config(mut self, path: &Path) -> Self {
        self.args.push("--config".into());
        self.args.push(path.into());
        self
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn envs<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    pub fn control_socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.control_socket = Some(path.into());
        self
    }

    /// stderr to a pipe instead of the log file (see [`NodeOutput::Piped`]).
    pub fn piped_stderr(mut self) -> Self {
        self.output = NodeOutput::Piped;
        self
    }

    /// Starts the node without waiting for it.
    pub fn spawn(self) -> Result<NodeProcess, NodeError> {
        let mut command = cmd::netns_command(&self.netns, &self.binary);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null());
        let log = match &self.output {
            NodeOutput::File(path) => {
                let (out, err) = cmd::log_file(path, &describe(&self))?;
                command.stdout(out).stderr(err);
                Some(path.clone())
            }
            NodeOutput::Piped => {
                command.stdout(Stdio::null()).stderr(Stdio::piped());
                None
            }
        };
        let mut child = command.spawn().map_err(|source| CmdError::Spawn {
            command: describe(&self),
            source,
        })?;
        let stderr = child.stderr.take();
        Ok(NodeProcess {
            guard: ChildGuard::new(self.label.clone(), child),
            label: self.label,
            log,
            stderr,
            control_socket: self.control_socket,
        })
    }

    /// Starts the node and waits up to `timeout` until its control socket answers.
    pub fn start(self, timeout: Duration) -> Result<NodeProcess, NodeError> {
        let mut node = self.spawn()?;
        node.wait_ready(timeout)?;
        Ok(node)
    }
}

fn describe(launch: &NodeLaunch) -> String {
    format!("ip netns exec {} {}", launch.netns, launch.binary.display())
}

/// A running node; stopped (SIGTERM, a grace period, SIGKILL) when dropped.
pub struct NodeProcess {
    label: String,
    guard: ChildGuard,
    log: Option<PathBuf>,
    stderr: Option<ChildStderr>,
    control_socket: Option<PathBuf>,
}

impl NodeProcess {
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The node's own pid (see the module comment).
    pub fn pid(&self) -> Option<u32> {
        self.guard.id()
    }

    /// The stderr pipe of a node started with [`NodeLaunch::piped_stderr`], once.
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.stderr.take()
    }

    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// The whole log file (empty for a piped node).
    pub fn log(&self) -> String {
        self.log
            .as_deref()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .unwrap_or_default()
    }

    /// The end of the log, for error messages.
    pub fn log_tail(&self) -> String {
        self.log.as_deref().map(log_tail).unwrap_or_default()
    }

    /// `Some(status)` once the node has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.guard.try_wait()
    }

    /// An error naming the exit status and the log if the node is no longer running; `when`
    /// says what was going on (e.g. `before forwarding`).
    pub fn check_running(&mut self, when: &str) -> Result<(), NodeError> {
        match self.try_wait() {
            None => Ok(()),
            Some(status) => Err(NodeError::Exited {
                label: self.label.clone(),
                status,
                when: when.to_string(),
                log: self.log_tail(),
            }),
        }
    }

    /// Polls `ready` until it holds, for at most `timeout`; fails early if the node exits
    /// or the process is interrupted. `what` names the condition in errors.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        mut ready: impl FnMut(&NodeProcess) -> bool,
    ) -> Result<(), NodeError> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready(self) {
                return Ok(());
            }
            self.check_running(&format!("waiting for {what}"))?;
            if cmd::interrupted() {
                return Err(NodeError::Interrupted {
                    label: self.label.clone(),
                    what: what.to_string(),
                });
            }
            if Instant::now() >= deadline {
                return Err(NodeError::NotReady {
                    label: self.label.clone(),
                    what: what.to_string(),
                    waited: timeout,
                    log: self.log_tail(),
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the control socket answers with a stats document.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), NodeError> {
        self.wait_for(timeout, "answer on the control socket", |n| {
            n.stats().is_ok()
        })
    }

    /// The node's stats: one JSON document per connection to its control socket.
    pub fn stats(&self) -> Result<serde_json::Value, NodeError> {
        let socket = self
            .control_socket
            .as_deref()
            .ok_or_else(|| NodeError::Stats {
                label: self.label.clone(),
                what: "reading stats".into(),
                reason: "started without a control socket".into(),
            })?;
        read_stats(socket).map_err(|reason| NodeError::Stats {
            label: self.label.clone(),
            what: format!("reading stats from {}", socket.display()),
            reason,
        })
    }

    /// Sends `signal` to the node's pid; whether kill(2) succeeded.
    pub fn signal(&self, signal: libc::c_int) -> bool {
        let Some(pid) = self.pid().and_then(|p| libc::pid_t::try_from(p).ok()) else {
            return false;
        };
        // SAFETY: kill(2) on the pid of a child we own and have not reaped (the guard holds
        // it), so the pid cannot have been recycled for another process.
        unsafe { libc::kill(pid, signal) == 0 }
    }

    /// SIGHUP: the node re-reads its configuration file; whether the signal was sent.
    pub fn reload(&self) -> bool {
        self.signal(libc::SIGHUP)
    }

    /// Waits up to `timeout` for the node to exit on its own (e.g. after [`Self::signal`]);
    /// `None` if it is still running then (it keeps running).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL; the exit status.
    pub fn stop(self, grace: Duration) -> Option<ExitStatus> {
        self.guard.terminate(grace)
    }
}

/// One stats document from a node's control socket (see control's `stats` module).
pub fn read_stats(socket: &Path) -> Result<serde_json::Value, String> {
    let conn = UnixStream::connect(socket).map_err(|e| format!("connecting: {e}"))?;
    conn.set_read_timeout(Some(STATS_READ_TIMEOUT))
        .map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
    let mut text = String::new();
    conn.take(MAX_STATS_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| format!("reading: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("bad stats document: {e}"))
}

/// The last couple of kilobytes of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(LOG_TAIL_BYTES);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_the_end_on_a_character_boundary() {
        let dir = std::env::temp_dir().join(format!("lab-node-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.log");
        let text = format!("{}\nlast line é\n", "é".repeat(3000));
        std::fs::write(&path, &text).unwrap();
        let tail = log_tail(&path);
        assert!(tail.ends_with("last line é"), "{tail}");
        assert!(tail.len() <= LOG_TAIL_BYTES);
        assert_eq!(log_tail(&dir.join("missing.log")), "");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_node_that_exits_at_once_is_reported_with_its_log() {
        let dir = std::env::temp_dir().join(format!("lab-node-exit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("node.log");
        // No namespace (an empty name) needed to test the waiting: `sh` stands in for the node.
        let launch = NodeLaunch::new("", "/bin/sh", &log)
            .arg("-c")
            .arg("echo cannot attach >&2; exit 3")
            .control_socket(dir.join("none.sock"));
        let err = launch
            .start(Duration::from_secs(5))
            .err()
            .expect("must fail");
        let text = err.to_string();
        assert!(matches!(err, NodeError::Exited { .. }), "{text}");
        assert!(text.contains("cannot attach"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
