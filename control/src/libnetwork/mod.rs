//! Docker's libnetwork remote network driver and IPAM driver, served by brindle-node in agent
//! mode (the role of Calico's libnetwork-plugin): `docker network create --driver calico
//! --ipam-driver calico-ipam ...` and `docker run --net ...` plug containers in as brindle-cni
//! does, from the same datastore (docs/docker.md).
//!
//! dockerd discovers remote plugins as unix sockets in `/run/docker/plugins` and activates
//! them on first use. The node serves four there: `brindle.sock` and `calico.sock` (network
//! driver), `brindle-ipam.sock` and `calico-ipam.sock` (IPAM driver), so that Calico's
//! commands work unchanged.
//!
//! `types` holds the JSON and the checks on it, `server` the HTTP, `network` and `ipam` the
//! two drivers, `wiring` the veth and `docker` the network-name lookup in dockerd.

pub mod docker;
pub mod ipam;
pub mod network;
pub mod server;
pub mod types;
pub mod wiring;

use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, Context};
use datastore::Datastore;

use docker::DockerApi;
use server::Role;

/// Where dockerd looks for plugin sockets.
pub const DEFAULT_PLUGIN_DIR: &str = "/run/docker/plugins";
/// The sockets the node serves and what each is.
pub const SOCKETS: [(&str, Role); 4] = [
    ("brindle", Role::Network),
    ("brindle-ipam", Role::Ipam),
    ("calico", Role::Network),
    ("calico-ipam", Role::Ipam),
];

/// What the handlers share.
pub struct Driver {
    pub store: Arc<dyn Datastore>,
    /// This node's name: endpoints and address affinities are this node's.
    pub node: String,
    pub docker: DockerApi,
    /// MTU of the veths.
    pub mtu: u32,
}

/// The plugin's settings, from agent mode's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub plugin_dir: PathBuf,
    pub docker: DockerApi,
    pub mtu: u32,
}

impl Settings {
    /// `BRINDLE_LIBNETWORK` (true|1 serves the plugin; unset or false|0: not),
    /// `BRINDLE_LIBNETWORK_PLUGIN_DIR` (default /run/docker/plugins), `DOCKER_HOST` (where
    /// dockerd answers, for network names; default unix:///var/run/docker.sock) and Calico's
    /// `CALICO_LIBNETWORK_VETH_MTU` (default 1500).
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Settings>> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        match get("BRINDLE_LIBNETWORK").as_deref() {
            None | Some("false") | Some("0") => return Ok(None),
            Some("true") | Some("1") => {}
            Some(other) => anyhow::bail!("BRINDLE_LIBNETWORK={other:?}: expected true or false"),
        }
        let plugin_dir: PathBuf = get("BRINDLE_LIBNETWORK_PLUGIN_DIR")
            .unwrap_or_else(|| DEFAULT_PLUGIN_DIR.to_owned())
            .into();
        if !plugin_dir.is_absolute() {
            anyhow::bail!(
                "BRINDLE_LIBNETWORK_PLUGIN_DIR={:?}: must be an absolute path",
                plugin_dir.display()
            );
        }
        let docker =
            DockerApi::from_docker_host(get("DOCKER_HOST").as_deref()).map_err(|e| anyhow!(e))?;
        let mtu = match get("CALICO_LIBNETWORK_VETH_MTU") {
            None => cli::cni::plugin::DEFAULT_MTU,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|m| (68..=65535).contains(m))
                .ok_or_else(|| {
                    anyhow!("CALICO_LIBNETWORK_VETH_MTU={text:?}: expected an MTU 68..65535")
                })?,
        };
        Ok(Some(Settings {
            plugin_dir,
            docker,
            mtu,
        }))
    }
}

/// The running plugin; its sockets are removed when it is dropped (the node stopping).
pub struct Plugin {
    sockets: Vec<PathBuf>,
}

/// Binds the sockets (replacing stale ones a stopped node left) and serves them from a
/// thread of their own.
pub fn start(settings: &Settings, store: Arc<dyn Datastore>, node: &str) -> anyhow::Result<Plugin> {
    std::fs::create_dir_all(&settings.plugin_dir)
        .with_context(|| format!("creating {}", settings.plugin_dir.display()))?;
    let mut plugin = Plugin {
        sockets: Vec::new(),
    };
    let mut listeners = Vec::new();
    for (name, role) in SOCKETS {
        let path = settings.plugin_dir.join(format!("{name}.sock"));
        remove_stale_socket(&path)?;
        let listener =
            UnixListener::bind(&path).with_context(|| format!("binding {}", path.display()))?;
        listener.set_nonblocking(true)?;
        plugin.sockets.push(path);
        listeners.push((listener, role));
    }
    let driver = Arc::new(Driver {
        store,
        node: node.to_owned(),
        docker: settings.docker.clone(),
        mtu: settings.mtu,
    });
    std::thread::Builder::new()
        .name("libnetwork".into())
        .spawn(move || {
            if let Err(e) = server::run(driver, listeners) {
                tracing::error!(error = %e, "libnetwork plugin stopped");
            }
        })
        .context("starting the libnetwork plugin thread")?;
    tracing::info!(dir = %settings.plugin_dir.display(), "serving Docker's libnetwork network and IPAM drivers");
    Ok(plugin)
}

/// A socket file left by a node that did not stop cleanly; anything else there is not ours.
fn remove_stale_socket(path: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display())),
        Ok(_) => Err(anyhow!("{} exists and is not a socket", path.display())),
        Err(_) => Ok(()),
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        for path in &self.sockets {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<Option<Settings>> {
        Settings::from_env(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_plugin_is_served_only_when_asked_and_bad_values_are_named() {
        assert_eq!(settings(&[]).unwrap(), None);
        assert_eq!(settings(&[("BRINDLE_LIBNETWORK", "false")]).unwrap(), None);
        let s = settings(&[("BRINDLE_LIBNETWORK", "1")]).unwrap().unwrap();
        assert_eq!(s.plugin_dir, PathBuf::from(DEFAULT_PLUGIN_DIR));
        assert_eq!(s.mtu, 1500);
        let s = settings(&[
            ("BRINDLE_LIBNETWORK", "true"),
            ("BRINDLE_LIBNETWORK_PLUGIN_DIR", "/tmp/p"),
            ("DOCKER_HOST", "unix:///tmp/d.sock"),
            ("CALICO_LIBNETWORK_VETH_MTU", "1400"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.plugin_dir, PathBuf::from("/tmp/p"));
        assert_eq!(s.docker.socket, PathBuf::from("/tmp/d.sock"));
        assert_eq!(s.mtu, 1400);
        for (var, value) in [
            ("BRINDLE_LIBNETWORK", "yes"),
            ("BRINDLE_LIBNETWORK_PLUGIN_DIR", "plugins"),
            ("DOCKER_HOST", "tcp://10.0.0.1:2375"),
            ("CALICO_LIBNETWORK_VETH_MTU", "9"),
        ] {
            let mut vars = vec![("BRINDLE_LIBNETWORK", "1")];
            vars.retain(|(n, _)| *n != var);
            vars.push((var, value));
            let e = settings(&vars).unwrap_err().to_string();
            assert!(e.contains(var) && e.contains(value), "{e}");
        }
    }
}
