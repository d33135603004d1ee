//! The brindlectl fixture: one backend (embedded store or a real etcd) with a config file
//! pointing at it, and the real binary run against it.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use testkit::{start_etcd, EtcdMember, TempDir};

pub(crate) const BRINDLECTL: &str = env!("CARGO_BIN_EXE_brindlectl");

/// One backend with a brindlectl config file pointing at it.
pub(crate) struct Fixture {
    dir: TempDir,
    config: PathBuf,
    _etcd: Option<EtcdMember>,
}

pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Fixture {
    pub(crate) fn embedded(label: &str) -> Fixture {
        let dir = TempDir::new(&format!("ctl-{label}"));
        let config = dir.path().join("brindlectl.cfg");
        let store = dir.path().join("datastore.redb");
        std::fs::write(
            &config,
            format!(
                "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n  datastoreType: embedded\n  embeddedPath: {}\n",
                store.display()
            ),
        )
        .unwrap();
        Fixture {
            dir,
            config,
            _etcd: None,
        }
    }

    pub(crate) fn etcd(label: &str) -> Fixture {
        let etcd = start_etcd(&format!("ctl-{label}"));
        let dir = TempDir::new(&format!("ctl-{label}"));
        let config = dir.path().join("brindlectl.cfg");
        std::fs::write(
            &config,
            format!(
                "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n  datastoreType: etcdv3\n  etcdEndpoints: {}\n",
                etcd.client_url
            ),
        )
        .unwrap();
        Fixture {
            dir,
            config,
            _etcd: Some(etcd),
        }
    }

    /// Runs `brindlectl -c <config> args...` with `stdin` as its input.
    pub(crate) fn run_with(&self, args: &[&str], stdin: &str) -> Run {
        let mut child = Command::new(BRINDLECTL)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            // The config file is the whole configuration; keep the caller's env out anyway.
            .env_remove("DATASTORE_TYPE")
            .env_remove("ETCD_ENDPOINTS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts `brindlectl -c <config> args...` with stdout piped, for commands that run until
    /// they are killed (`version --poll`).
    pub(crate) fn spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(BRINDLECTL)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .env_remove("DATASTORE_TYPE")
            .env_remove("ETCD_ENDPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Whether the backend is a real etcd (another process may write while brindlectl runs;
    /// the embedded store is one process's file).
    pub(crate) fn is_etcd(&self) -> bool {
        self._etcd.is_some()
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, "")
    }

    /// Runs and asserts success with exactly `stdout`.
    pub(crate) fn ok(&self, args: &[&str], stdout: &str) {
        let r = self.run(args);
        assert_eq!(
            (r.code, r.stdout.as_str(), r.stderr.as_str()),
            (0, stdout, ""),
            "brindlectl {args:?}"
        );
    }

    /// Runs and asserts exit code 1 with exactly `stderr` (plus the newline).
    pub(crate) fn fails(&self, args: &[&str], stderr: &str) {
        let r = self.run(args);
        assert_eq!(
            (r.code, r.stderr.trim_end()),
            (1, stderr),
            "brindlectl {args:?}; stdout {}",
            r.stdout
        );
    }

    /// Runs expecting success; returns stdout.
    pub(crate) fn stdout(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "brindlectl {args:?}: {}", r.stderr);
        r.stdout
    }

    pub(crate) fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    pub(crate) fn store(&self) -> Arc<dyn datastore::Datastore> {
        let config = cli::ctl::config::from_file(&self.config).unwrap();
        datastore::open(&config).unwrap()
    }
}

pub(crate) fn pool(name: &str, cidr: &str) -> String {
    format!("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: {name}\nspec:\n  cidr: {cidr}\n")
}
