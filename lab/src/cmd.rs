//! Running the external tools a lab is built from (`ip`, `ethtool`, `sysctl`, `ping`).
//!
//! Every command is bounded in time: a tool that hangs (a ping to an address that never
//! answers, a wedged netlink call) is killed at its deadline instead of wedging the lab.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long an ordinary configuration command (`ip`, `ethtool`, `sysctl`) may take.
pub const CONFIG_TIMEOUT: Duration = Duration::from_secs(10);

/// A command that could not be started, ran too long, or exited unsuccessfully.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` did not finish within {timeout:?} and was killed")]
    Timeout { command: String, timeout: Duration },
    #[error("`{command}` stopped: interrupted by a signal")]
    Interrupted { command: String },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
}

/// `program` to be run inside network namespace `ns` (on the host's own stack if `ns` is
/// empty). `ip netns exec` execs the program in place, so the child's pid is the program's
/// own and a signal to it reaches the program itself.
pub fn netns_command(ns: &str, program: &std::path::Path) -> Command {
    if ns.is_empty() {
        return Command::new(program);
    }
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]).arg(program);
    command
}

/// The file `log` (created, truncated) twice: for a child's stdout and its stderr.
pub fn log_file(log: &std::path::Path, command: &str) -> Result<(Stdio, Stdio), CmdError> {
    let failed = |source| CmdError::Spawn {
        command: format!("{command} (output to {})", log.display()),
        source,
    };
    let out = std::fs::File::create(log).map_err(failed)?;
    let err = out.try_clone().map_err(failed)?;
    Ok((out.into(), err.into()))
}

/// Starts `program` with `args` and `env` inside network namespace `ns`, its stdout and
/// stderr written to the file `log` (see [`netns_command`]).
pub fn spawn_in_netns_logged(
    ns: &str,
    program: &std::path::Path,
    args: &[&std::ffi::OsStr],
    env: &[(String, String)],
    log: &std::path::Path,
) -> Result<Child, CmdError> {
    let command = format!("ip netns exec {ns} {}", program.display());
    let (out, err) = log_file(log, &command)?;
    netns_command(ns, program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| CmdError::Spawn {
            command: format!("{command} (output to {})", log.display()),
            source,
        })
}

/// The command line as a human would type it, for error messages.
pub fn display(args: &[&str]) -> String {
    args.join(" ")
}

/// Runs `args[0]` with the remaining arguments, waiting at most `timeout`; returns its output
/// whatever its exit status. Stdout and stderr are drained by helper threads so that a chatty
/// child cannot block on a full pipe while we wait for it.
pub fn run_unchecked(args: &[&str], timeout: Duration) -> Result<Output, CmdError> {
    run_inner(args, timeout, false)
}

/// Like [`run_unchecked`], but gives up early once the process is [`interrupted`]: for
/// measurements, not for teardown, which must run to completion on the way out.
pub fn run_interruptible(args: &[&str], timeout: Duration) -> Result<Output, CmdError> {
    run_inner(args, timeout, true)
}

fn run_inner(args: &[&str], timeout: Duration, interruptible: bool) -> Result<Output, CmdError> {
    let command = display(args);
    let (program, rest) = match args.split_first() {
        Some(split) => split,
        None => {
            return Err(CmdError::Spawn {
                command,
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
            })
        }
    };
    let mut child = Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| CmdError::Spawn {
            command: command.clone(),
            source,
        })?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = match wait_until(&mut child, timeout, interruptible) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            if interruptible && interrupted() {
                return Err(CmdError::Interrupted { command });
            }
            return Err(CmdError::Timeout { command, timeout });
        }
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Like [`run_unchecked`] but a non-zero exit is an error carrying the command's stderr.
pub fn run(args: &[&str], timeout: Duration) -> Result<Output, CmdError> {
    let output = run_unchecked(args, timeout)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(CmdError::Failed {
            command: display(args),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

/// Set by SIGINT/SIGTERM once [`stop_on_signals`] is installed.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// True once the process was asked to stop; waits give up so that guards (labs, children)
/// are dropped and clean up on the way out instead of the process dying mid-run.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

extern "C" fn note_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Turns SIGINT and SIGTERM into [`interrupted`] for binaries that hold labs or children.
pub fn stop_on_signals() {
    let handler = note_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Waits for `child` until `timeout`; `None` if it is still running then.
pub fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    wait_until(child, timeout, false)
}

/// Waits for `child` until `timeout` or, if `interruptible`, until the process is
/// [`interrupted`]; `None` if it is still running then.
fn wait_until(child: &mut Child, timeout: Duration, interruptible: bool) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            // The child was already reaped; treat as gone.
            Err(_) => return None,
        }
        let now = Instant::now();
        if now >= deadline || (interruptible && interrupted()) {
            return None;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

/// A child process that is stopped when the guard goes away, on every exit path: SIGTERM,
/// a grace period, then SIGKILL.
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
}

impl ChildGuard {
    pub fn new(name: impl Into<String>, child: Child) -> Self {
        Self {
            name: name.into(),
            child: Some(child),
        }
    }

    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(status)` if the child has already exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits up to `timeout` for the child to exit on its own; returns its output if it did.
    /// On timeout the child is stopped and `None` is returned.
    pub fn wait_output(mut self, timeout: Duration) -> Option<Output> {
        let mut child = self.child.take()?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        match wait_until(&mut child, timeout, true) {
            Some(status) => Some(Output {
                status,
                stdout: stdout.join().unwrap_or_default(),
                stderr: stderr.join().unwrap_or_default(),
            }),
            None => {
                stop_child(&self.name, &mut child, Duration::from_secs(1));
                None
            }
        }
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status.
    pub fn terminate(mut self, grace: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        stop_child(&self.name, &mut child, grace)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&self.name, &mut child, Duration::from_secs(2));
        }
    }
}

fn stop_child(name: &str, child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on the pid of a child we own and have not reaped yet, so the pid
        // cannot have been recycled for another process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    if let Some(status) = wait_deadline(child, grace) {
        return Some(status);
    }
    eprintln!(
        "{name} (pid {}) ignored SIGTERM for {grace:?}; killing it",
        child.id()
    );
    let _ = child.kill();
    child.wait().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_reports_stderr_of_failing_command() {
        let err = run(&["sh", "-c", "echo boom >&2; exit 3"], CONFIG_TIMEOUT).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("boom"), "{text}");
        assert!(text.contains("sh -c"), "{text}");
    }

    #[test]
    fn run_kills_command_at_deadline() {
        let started = Instant::now();
        let err = run(&["sleep", "30"], Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, CmdError::Timeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn child_guard_terminates_on_drop() {
        let child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        drop(ChildGuard::new("sleep", child));
        // SAFETY: signal 0 only probes whether the pid exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "child {pid} still alive after guard dropped");
    }
}
