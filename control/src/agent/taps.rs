//! The TAP registry as the agent reads it: which of this node's workloads have a TAP for an
//! interface, and where (`cli::tap_registry`, written by brindle-cni on this host; a
//! namespace path is host-local, so the datastore does not carry it).
//!
//! Read per endpoint (`<dir>/<interfaceName>.json`) whenever the datastore brings a change,
//! so that a registration written just before its endpoint is seen together with it, and
//! again every [`REREAD`], so that one repaired, or written after its endpoint, is taken up
//! without waiting for the datastore. What was read is kept: the view builds the desired state
//! from it without touching files, and a change is logged once, not at every read.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cli::tap_registry::{self, TapRegistration};

use crate::config::TapWorkload;

/// How often registrations are read again when the datastore brings nothing.
pub const REREAD: Duration = Duration::from_secs(1);

/// One workload's registration as last read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TapEntry {
    /// The workload's TAP, registered by container `container_id`.
    Registered {
        tap: TapWorkload,
        container_id: String,
    },
    /// A registration is there but cannot be used (why): the workload is not ready, and gets
    /// no port until it can be read.
    Unreadable(String),
}

/// The registrations of this node's workloads, by interface name.
#[derive(Debug)]
pub struct TapRegistry {
    dir: PathBuf,
    entries: BTreeMap<String, TapEntry>,
    read_at: Option<Instant>,
}

impl TapRegistry {
    pub fn new(dir: PathBuf) -> TapRegistry {
        TapRegistry {
            dir,
            entries: BTreeMap::new(),
            read_at: None,
        }
    }

    pub fn entries(&self) -> &BTreeMap<String, TapEntry> {
        &self.entries
    }

    /// [`REREAD`] has passed since the last read (or there was none).
    pub fn due(&self) -> bool {
        self.read_at.is_none_or(|t| t.elapsed() >= REREAD)
    }

    /// Reads the registrations of `endpoints` (interface name, container id); true if what
    /// is known changed.
    pub fn refresh<'a>(&mut self, endpoints: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
        let mut entries = BTreeMap::new();
        for (interface, container_id) in endpoints {
            if entries.contains_key(interface) {
                continue;
            }
            let entry = match tap_registry::read(&self.dir, interface) {
                Ok(None) => continue,
                Ok(Some(TapRegistration {
                    netns,
                    ifname,
                    container_id,
                })) => TapEntry::Registered {
                    tap: TapWorkload { netns, ifname },
                    container_id,
                },
                Err(e) => TapEntry::Unreadable(e.to_string()),
            };
            if self.entries.get(interface) != Some(&entry) {
                log_change(interface, container_id, &entry);
            }
            entries.insert(interface.to_owned(), entry);
        }
        for gone in self.entries.keys().filter(|k| !entries.contains_key(*k)) {
            tracing::debug!(interface = %gone, "TAP registration gone");
        }
        self.read_at = Some(Instant::now());
        let changed = entries != self.entries;
        self.entries = entries;
        changed
    }
}

/// `interface`'s registration as just read, told once; `endpoint_container` is the container
/// its endpoint names.
fn log_change(interface: &str, endpoint_container: &str, entry: &TapEntry) {
    match entry {
        TapEntry::Registered { container_id, .. }
            if !endpoint_container.is_empty() && endpoint_container != container_id =>
        {
            tracing::warn!(%interface, registered_by = %container_id, endpoint_container,
                "TAP registration of another container (stale?); ignored for this endpoint")
        }
        TapEntry::Registered { tap, container_id } => {
            tracing::info!(%interface, netns = %tap.netns.display(), ifname = %tap.ifname, container = %container_id,
                "TAP registration")
        }
        TapEntry::Unreadable(error) => tracing::warn!(%interface, %error,
            "TAP registration unreadable: the workload gets no port until it is fixed"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(label: &str) -> Dir {
        let path =
            std::env::temp_dir().join(format!("brindle-taps-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Dir(path)
    }

    fn register(dir: &Path, interface: &str, container_id: &str) {
        let r = TapRegistration {
            netns: format!("/run/netns/{container_id}").into(),
            ifname: "eth0".into(),
            container_id: container_id.into(),
        };
        tap_registry::write(dir, interface, &r).unwrap();
    }

    #[test]
    fn registrations_of_the_endpoints_are_read_and_changes_reported() {
        let d = dir("refresh");
        let mut reg = TapRegistry::new(d.0.clone());
        assert!(reg.due(), "never read");
        assert!(!reg.refresh([("cali1", "c1")]), "no directory: nothing");
        assert!(!reg.due());
        register(&d.0, "cali1", "c1");
        register(&d.0, "cali9", "c9");
        assert!(reg.refresh([("cali1", "c1"), ("cali2", "c2")]));
        let want = TapEntry::Registered {
            tap: TapWorkload {
                netns: "/run/netns/c1".into(),
                ifname: "eth0".into(),
            },
            container_id: "c1".into(),
        };
        assert_eq!(reg.entries().get("cali1"), Some(&want));
        assert_eq!(reg.entries().len(), 1, "only endpoints' registrations");
        assert!(
            !reg.refresh([("cali1", "c1"), ("cali2", "c2")]),
            "unchanged"
        );

        std::fs::write(d.0.join("cali1.json"), "{\"netns\":").unwrap();
        assert!(reg.refresh([("cali1", "c1")]));
        let Some(TapEntry::Unreadable(why)) = reg.entries().get("cali1") else {
            panic!("{:?}", reg.entries())
        };
        assert!(
            why.contains(&d.0.join("cali1.json").display().to_string()),
            "{why}"
        );

        std::fs::remove_file(d.0.join("cali1.json")).unwrap();
        assert!(reg.refresh([("cali1", "c1")]));
        assert!(reg.entries().is_empty());
    }
}
