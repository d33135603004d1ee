//! The TAP registry: where brindle-cni tells the node on the same host that a workload's
//! interface is a TAP, and where that TAP is.
//!
//! Why a file and not the datastore: the node opens a TAP by name inside the workload's
//! network namespace, and a namespace path (`CNI_NETNS`) means something on this host only. The
//! datastore is the cluster's shared state, and a WorkloadEndpoint has no field for it (Calico's
//! tools would drop or refuse one); what is host-local stays on the host.
//!
//! One JSON file per workload, named after the workload's `cali...` name (the endpoint's
//! `interfaceName`, which is how the node knows the workload): `<dir>/<cali-name>.json` =
//! `{"netns": ..., "ifname": ..., "container_id": ...}`. It is written whole or not at all
//! (a temporary file renamed over it), so the node never reads half of one. The container id
//! says whose it is: a DEL removes only its own container's registration, and the node uses
//! one only for that container's endpoint.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where registrations are kept unless configured otherwise.
pub const DEFAULT_DIR: &str = "/var/run/brindle/taps";
/// The node's setting of the directory (brindle-cni's is the netconf's `tap_dir`).
pub const DIR_ENV: &str = "BRINDLE_TAP_DIR";
/// A registration is a few hundred bytes; anything much larger is not one.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// One workload's TAP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapRegistration {
    /// The workload's network namespace, as the runtime gave it (`CNI_NETNS`).
    pub netns: PathBuf,
    /// The TAP's name there (`CNI_IFNAME`).
    pub ifname: String,
    /// The container it was made for (`CNI_CONTAINERID`).
    pub container_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("TAP registration {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("TAP registration {path}: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error("{interface:?} cannot name a TAP registration: not an interface name")]
    BadName { interface: String },
}

/// What [`release`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Release {
    /// There was none.
    Absent,
    /// It was this container's (or unreadable, so nobody's) and is gone.
    Removed(Option<TapRegistration>),
    /// It is another container's and was left alone.
    Kept { owner: String },
}

/// The file of workload `interface`'s registration. Refuses a name that is not an interface
/// name: names come from the datastore too, and none may reach outside `dir`.
pub fn file(dir: &Path, interface: &str) -> Result<PathBuf, RegistryError> {
    if !is_interface_name(interface) {
        return Err(RegistryError::BadName {
            interface: interface.to_owned(),
        });
    }
    Ok(dir.join(format!("{interface}.json")))
}

/// Writes `registration` for workload `interface`, replacing any earlier one at once.
pub fn write(
    dir: &Path,
    interface: &str,
    registration: &TapRegistration,
) -> Result<(), RegistryError> {
    let path = file(dir, interface)?;
    let io = |source| RegistryError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let bytes = serde_json::to_vec(registration).map_err(|e| io(std::io::Error::other(e)))?;
    // Beside the target, so that the rename stays on one filesystem and is atomic; the
    // leading dot and the process id keep it out of the way of readers and of other writers.
    let temp = dir.join(format!(".{interface}.json.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&temp, &path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written.map_err(io)
}

/// Workload `interface`'s registration: `None` when there is none, an error when the file
/// cannot be read or does not hold a usable registration.
pub fn read(dir: &Path, interface: &str) -> Result<Option<TapRegistration>, RegistryError> {
    let path = file(dir, interface)?;
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(RegistryError::Io { path, source }),
    };
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| RegistryError::Io {
            path: path.clone(),
            source,
        })?;
    let malformed = |reason: String| RegistryError::Malformed {
        path: path.clone(),
        reason,
    };
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(malformed(format!("over {MAX_FILE_BYTES} bytes")));
    }
    let registration: TapRegistration =
        serde_json::from_slice(&bytes).map_err(|e| malformed(e.to_string()))?;
    validate(&registration).map_err(malformed)?;
    Ok(Some(registration))
}

/// Removes workload `interface`'s registration if it is `container_id`'s. An unreadable one
/// is removed too: it is of use to nobody, and a later ADD would replace it anyway.
pub fn release(dir: &Path, interface: &str, container_id: &str) -> Result<Release, RegistryError> {
    let path = file(dir, interface)?;
    let found = match read(dir, interface) {
        Ok(None) => return Ok(Release::Absent),
        Ok(Some(r)) if r.container_id != container_id => {
            return Ok(Release::Kept {
                owner: r.container_id,
            })
        }
        Ok(Some(r)) => Some(r),
        Err(RegistryError::Malformed { .. }) => None,
        Err(e) => return Err(e),
    };
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(Release::Removed(found)),
        // Another DEL of the same container got there first.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Release::Absent),
        Err(source) => Err(RegistryError::Io { path, source }),
    }
}

/// What a usable registration holds: an absolute namespace path, an interface name, a
/// container id.
fn validate(r: &TapRegistration) -> Result<(), String> {
    if !r.netns.is_absolute() {
        return Err(format!(
            "netns {:?}: must be an absolute path",
            r.netns.display().to_string()
        ));
    }
    if !is_interface_name(&r.ifname) {
        return Err(format!(
            "ifname {:?}: not an interface name (1-15 characters, no '/', ':' or spaces)",
            r.ifname
        ));
    }
    if r.container_id.is_empty() {
        return Err("container_id \"\": must name the container".to_owned());
    }
    Ok(())
}

/// Linux interface names: 1-15 bytes, no '/', ':', whitespace or NUL (nor `.`/`..`).
fn is_interface_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(label: &str) -> Dir {
            let path =
                std::env::temp_dir().join(format!("brindle-tapreg-{label}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            Dir(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn registration(container_id: &str) -> TapRegistration {
        TapRegistration {
            netns: "/var/run/netns/c1".into(),
            ifname: "eth0".into(),
            container_id: container_id.into(),
        }
    }

    #[test]
    fn a_registration_is_written_whole_read_back_and_replaced() {
        let dir = Dir::new("rw");
        assert_eq!(read(&dir.0, "cali0123456789a").unwrap(), None);
        write(&dir.0, "cali0123456789a", &registration("c1")).unwrap();
        assert_eq!(
            read(&dir.0, "cali0123456789a").unwrap(),
            Some(registration("c1"))
        );
        let text = std::fs::read_to_string(dir.0.join("cali0123456789a.json")).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"netns": "/var/run/netns/c1", "ifname": "eth0", "container_id": "c1"})
        );
        write(&dir.0, "cali0123456789a", &registration("c2")).unwrap();
        assert_eq!(
            read(&dir.0, "cali0123456789a")
                .unwrap()
                .unwrap()
                .container_id,
            "c2"
        );
        let names: Vec<String> = std::fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec!["cali0123456789a.json"],
            "no temporary file left"
        );
    }

    #[test]
    fn a_malformed_registration_is_an_error_naming_the_file() {
        let dir = Dir::new("bad");
        std::fs::create_dir_all(&dir.0).unwrap();
        let cases = [
            ("calibad1", "{\"netns\":"),
            (
                "calibad2",
                r#"{"netns":"run/netns/x","ifname":"eth0","container_id":"c"}"#,
            ),
            (
                "calibad3",
                r#"{"netns":"/run/netns/x","ifname":"much-too-long-name","container_id":"c"}"#,
            ),
            (
                "calibad4",
                r#"{"netns":"/run/netns/x","ifname":"eth0","container_id":""}"#,
            ),
            ("calibad5", r#"{"netns":"/run/netns/x","ifname":"eth0"}"#),
        ];
        for (name, text) in cases {
            std::fs::write(dir.0.join(format!("{name}.json")), text).unwrap();
            let e = read(&dir.0, name).unwrap_err();
            assert!(matches!(e, RegistryError::Malformed { .. }), "{name}: {e}");
            assert!(e.to_string().contains(&format!("{name}.json")), "{e}");
        }
        let e = read(&dir.0, "calibad2").unwrap_err().to_string();
        assert!(e.contains("netns") && e.contains("run/netns/x"), "{e}");
        let e = read(&dir.0, "calibad3").unwrap_err().to_string();
        assert!(
            e.contains("ifname") && e.contains("much-too-long-name"),
            "{e}"
        );
    }

    #[test]
    fn names_that_are_not_interface_names_never_reach_outside_the_directory() {
        let dir = Dir::new("names");
        for name in [
            "../../etc/passwd",
            "",
            ".",
            "..",
            "a b",
            "x".repeat(16).as_str(),
        ] {
            assert!(
                matches!(read(&dir.0, name), Err(RegistryError::BadName { .. })),
                "{name:?}"
            );
            assert!(
                write(&dir.0, name, &registration("c1")).is_err(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn release_removes_only_this_containers_or_an_unreadable_registration() {
        let dir = Dir::new("release");
        assert_eq!(release(&dir.0, "cali1", "c1").unwrap(), Release::Absent);
        write(&dir.0, "cali1", &registration("c1")).unwrap();
        assert_eq!(
            release(&dir.0, "cali1", "c2").unwrap(),
            Release::Kept { owner: "c1".into() }
        );
        assert!(read(&dir.0, "cali1").unwrap().is_some(), "c2 took c1's");
        assert_eq!(
            release(&dir.0, "cali1", "c1").unwrap(),
            Release::Removed(Some(registration("c1")))
        );
        assert_eq!(read(&dir.0, "cali1").unwrap(), None);
        assert_eq!(release(&dir.0, "cali1", "c1").unwrap(), Release::Absent);
        std::fs::write(dir.0.join("cali2.json"), "not json").unwrap();
        assert_eq!(
            release(&dir.0, "cali2", "c1").unwrap(),
            Release::Removed(None)
        );
        assert!(!dir.0.join("cali2.json").exists());
    }
}
