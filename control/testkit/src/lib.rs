//! Test support shared by the control-plane crates: temporary directories, real etcd members
//! (Debian's `/usr/bin/etcd`) started on loopback with free ports, killed by their own pid and
//! removed on drop, and the workspace's binaries.

use std::path::{Path, PathBuf};

pub mod tls;

/// A directory removed when dropped; the name carries the test's label and process id.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "brindle-control-{label}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `target/<profile>`, where cargo puts the binaries of every package in the workspace, with
/// each of `names` in it. Cargo tells a test only its own package's binaries
/// (`CARGO_BIN_EXE_<name>`); brindle-node (package `control`) and the tools (package `cli`)
/// find each other here.
pub fn workspace_bin_dir(names: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    // The test runs from target/<profile>/deps/.
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable is in target/<profile>/deps");
    for name in names {
        let bin = dir.join(name);
        assert!(
            bin.is_file(),
            "{} is missing: build every binary first with `cargo build --release --workspace \
             --bins` (`make test` does)",
            bin.display()
        );
    }
    dir.to_path_buf()
}

/// The workspace binary `name` (see [`workspace_bin_dir`]).
pub fn workspace_bin(name: &str) -> PathBuf {
    workspace_bin_dir(&[name]).join(name)
}

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::time::{Duration, Instant};

use lab::etcd::EtcdMemberSpec;
pub use lab::etcd::ETCD_BINARY;

/// A port the kernel just handed out on 127.0.0.1 (bind port 0), free again when returned.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One etcd member started by a test; killed (by its pid) and its data dir removed on drop.
pub struct EtcdMember {
    pub name: String,
    pub client_url: String,
    pub peer_url: String,
    child: Option<Child>,
    dir: TempDir,
}

/// Starts a cluster of `size` members on loopback and waits until it has a leader.
///
/// [`free_port`] hands out ports that are free when asked: a test running beside this one may
/// bind one before etcd does. etcd then exits at once on the bind error, and the cluster is
/// started again on new ports, a few times at most.
pub fn start_etcd_cluster(label: &str, size: usize) -> Vec<EtcdMember> {
    let mut attempt = 1;
    loop {
        let mut members = spawn_etcd_cluster(label, size);
        let retry = attempt < START_ATTEMPTS && members.iter_mut().any(EtcdMember::lost_its_port);
        if !retry {
            for member in &members {
                member.wait_healthy(Duration::from_secs(30));
            }
            return members;
        }
        // Dropping the members kills them and removes their directories.
        attempt += 1;
    }
}

/// Cluster starts tried when a port was taken between [`free_port`] and etcd's bind.
const START_ATTEMPTS: usize = 3;

/// Spawns the members of a new cluster on fresh ports, without waiting for them.
fn spawn_etcd_cluster(label: &str, size: usize) -> Vec<EtcdMember> {
    let token = format!("brindle-{label}-{}", std::process::id());
    let mut members: Vec<EtcdMember> = (0..size)
        .map(|i| EtcdMember {
            name: format!("m{i}"),
            client_url: format!("http://127.0.0.1:{}", free_port()),
            peer_url: format!("http://127.0.0.1:{}", free_port()),
            child: None,
            dir: TempDir::new(&format!("etcd-{label}-m{i}")),
        })
        .collect();
    let initial_cluster = members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url))
        .collect::<Vec<_>>()
        .join(",");
    for member in &mut members {
        let spec = EtcdMemberSpec {
            netns: String::new(),
            name: member.name.clone(),
            data_dir: member.dir.path().join("data"),
            client_url: member.client_url.clone(),
            peer_url: member.peer_url.clone(),
            initial_cluster: initial_cluster.clone(),
            token: Some(token.clone()),
            // Fast elections keep the member-failure test short.
            fast_elections: true,
            enable_v2: false,
            tls: None,
            log: member.dir.path().join("etcd.log"),
        };
        let child = spec
            .spawn()
            .unwrap_or_else(|e| panic!("starting {ETCD_BINARY}: {e}"));
        member.child = Some(child);
    }
    members
}

pub fn start_etcd(label: &str) -> EtcdMember {
    start_etcd_cluster(label, 1).pop().unwrap()
}

impl EtcdMember {
    fn host_port(&self) -> &str {
        self.client_url.trim_start_matches("http://")
    }

    /// `GET <path>` on the member's client port; `None` if it does not answer.
    pub fn http_get(&self, path: &str) -> Option<String> {
        let addr = self.host_port().parse().ok()?;
        let mut conn = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(
            conn,
            "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.host_port()
        )
        .ok()?;
        let mut response = String::new();
        conn.read_to_string(&mut response).ok()?;
        Some(response)
    }

    /// Whether the member exited on a port another process had taken, within the few
    /// seconds such a failure takes to show.
    fn lost_its_port(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if self.http_get("/health").is_some() {
                return false;
            }
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                let log =
                    std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
                return log.contains("address already in use");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self
                .http_get("/health")
                .is_some_and(|r| r.contains("\"health\":\"true\""))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
        let tail: Vec<_> = log.lines().rev().take(30).collect();
        panic!(
            "etcd member {} not healthy after {limit:?}; log tail:\n{}",
            self.name,
            tail.join("\n")
        );
    }

    /// A gauge or counter from the member's Prometheus `/metrics`.
    pub fn metric(&self, name: &str) -> Option<f64> {
        let body = self.http_get("/metrics")?;
        body.lines()
            .find(|line| line.split_whitespace().next() == Some(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILLs the member (it stays dead).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (e.g. SIGSTOP / SIGCONT) to the member's pid.
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
            unsafe { libc::kill(pid as i32, signal) };
        }
    }
}

impl Drop for EtcdMember {
    fn drop(&mut self) {
        // A stopped member must be continued to die promptly on SIGKILL's reap.
        self.signal(libc::SIGCONT);
        self.kill();
    }
}
