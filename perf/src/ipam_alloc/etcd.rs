//! A private single-member etcd on loopback for one benchmark run; killed and its data dir
//! removed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use lab::etcd::EtcdMemberSpec;

pub struct Etcd {
    child: Child,
    dir: PathBuf,
    pub endpoint: String,
}

impl Etcd {
    pub fn start() -> anyhow::Result<Etcd> {
        let dir =
            std::env::temp_dir().join(format!("brindle-ipam-bench-etcd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let (client, peer) = (free_port()?, free_port()?);
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = EtcdMemberSpec::single(
            "",
            "ipam-bench",
            dir.join("data"),
            &endpoint,
            peer_url,
            dir.join("etcd.log"),
        )
        .spawn()
        .context("starting etcd")?;
        let mut etcd = Etcd {
            child,
            dir,
            endpoint,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        // Accepting connections is not enough: the first request fails until a leader exists;
        // the store's own retries cover that, so a listening port suffices here.
        while TcpStream::connect(("127.0.0.1", client)).is_err() {
            if let Some(status) = etcd.child.try_wait()? {
                bail!("etcd exited early: {status}");
            }
            if Instant::now() > deadline {
                bail!("etcd did not listen on {client} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(etcd)
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
