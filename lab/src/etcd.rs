//! etcd members (Debian's `etcd-server`) for the tests and the control-plane benchmark, on the
//! loopback of the host or of a lab's namespace. The one place an etcd command line is built.

use std::path::PathBuf;
use std::process::{Child, Stdio};

use crate::cmd::{self, CmdError};

pub const ETCD_BINARY: &str = "/usr/bin/etcd";

/// One member of a (possibly one-member) cluster.
#[derive(Clone, Debug)]
pub struct EtcdMemberSpec {
    /// Where it runs; empty: the host's own stack.
    pub netns: String,
    pub name: String,
    pub data_dir: PathBuf,
    pub client_url: String,
    pub peer_url: String,
    /// `name=peer_url,...` of every member.
    pub initial_cluster: String,
    /// Keeps concurrently started clusters apart.
    pub token: Option<String>,
    /// 50 ms heartbeats and 500 ms elections, for tests that fail members.
    pub fast_elections: bool,
    /// Also serve etcd's v2 API, which dockerd's cluster store (`--cluster-store etcd://`)
    /// speaks; brindle itself only speaks v3.
    pub enable_v2: bool,
    /// stdout and stderr.
    pub log: PathBuf,
    /// Serve clients over TLS and require their certificates (`client_url` is then
    /// `https://...`).
    pub tls: Option<EtcdTls>,
}

/// A member's TLS for clients: its certificate and key, and the CA that signs the client
/// certificates it accepts (`--client-cert-auth`).
#[derive(Debug, Clone)]
pub struct EtcdTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub trusted_ca_file: PathBuf,
}

impl EtcdMemberSpec {
    /// The only member of its cluster.
    pub fn single(
        netns: impl Into<String>,
        name: impl Into<String>,
        data_dir: impl Into<PathBuf>,
        client_url: impl Into<String>,
        peer_url: impl Into<String>,
        log: impl Into<PathBuf>,
    ) -> EtcdMemberSpec {
        let (name, peer_url) = (name.into(), peer_url.into());
        EtcdMemberSpec {
            netns: netns.into(),
            initial_cluster: format!("{name}={peer_url}"),
            name,
            data_dir: data_dir.into(),
            client_url: client_url.into(),
            peer_url,
            token: None,
            fast_elections: false,
            enable_v2: false,
            log: log.into(),
            tls: None,
        }
    }

    /// Starts the member; `ip netns exec` execs etcd in place, so the pid is etcd's own.
    pub fn spawn(&self) -> Result<Child, CmdError> {
        let command = format!("etcd member {} in {:?}", self.name, self.netns);
        let (out, err) = cmd::log_file(&self.log, &command)?;
        let mut etcd = cmd::netns_command(&self.netns, ETCD_BINARY.as_ref());
        etcd.args(["--name", &self.name])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen-client-urls", &self.client_url])
            .args(["--advertise-client-urls", &self.client_url])
            .args(["--listen-peer-urls", &self.peer_url])
            .args(["--initial-advertise-peer-urls", &self.peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"]);
        if let Some(token) = &self.token {
            etcd.args(["--initial-cluster-token", token]);
        }
        if self.fast_elections {
            etcd.args(["--heartbeat-interval", "50", "--election-timeout", "500"]);
        }
        if self.enable_v2 {
            etcd.arg("--enable-v2=true");
        }
        if let Some(tls) = &self.tls {
            etcd.arg("--cert-file")
                .arg(&tls.cert_file)
                .arg("--key-file")
                .arg(&tls.key_file)
                .arg("--trusted-ca-file")
                .arg(&tls.trusted_ca_file)
                .arg("--client-cert-auth");
        }
        etcd.stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| CmdError::Spawn { command, source })
    }
}
