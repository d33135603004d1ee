//! The profiles a node knows, embedded then from the run-time directory, and the choice of one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::parse::{field_error, ProfileError};
use super::profile::HwProfile;

/// The name of the fallback profile, used for every driver without its own.
pub const GENERIC: &str = "generic";

/// The environment variable naming a directory of profiles that add to or replace the
/// embedded ones.
pub const PROFILES_ENV: &str = "BRINDLE_HW_PROFILES";

/// Every file of hw-profiles/, compiled in (a test checks that none is missing).
pub const EMBEDDED: &[(&str, &str)] = &[
    ("ena.toml", include_str!("../../../hw-profiles/ena.toml")),
    (
        "generic.toml",
        include_str!("../../../hw-profiles/generic.toml"),
    ),
    ("i40e.toml", include_str!("../../../hw-profiles/i40e.toml")),
    ("ice.toml", include_str!("../../../hw-profiles/ice.toml")),
    (
        "ixgbe.toml",
        include_str!("../../../hw-profiles/ixgbe.toml"),
    ),
    (
        "mlx5_core.toml",
        include_str!("../../../hw-profiles/mlx5_core.toml"),
    ),
    ("veth.toml", include_str!("../../../hw-profiles/veth.toml")),
    (
        "virtio_net.toml",
        include_str!("../../../hw-profiles/virtio_net.toml"),
    ),
];

/// Where a profile came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileOrigin {
    Embedded,
    File(PathBuf),
}

impl fmt::Display for ProfileOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileOrigin::Embedded => f.write_str("embedded"),
            ProfileOrigin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why a profile was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProfileReason {
    /// A profile exists for the detected driver.
    MatchedDriver(String),
    /// No profile for the driver (or no driver detected): the generic fallback.
    Fallback { driver: Option<String> },
    /// node.toml's `[hw] profile` named it.
    Configured,
}

impl fmt::Display for ProfileReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileReason::MatchedDriver(d) => write!(f, "matched driver {d}"),
            ProfileReason::Fallback { driver: Some(d) } => {
                write!(f, "fallback: no profile for driver {d}")
            }
            ProfileReason::Fallback { driver: None } => {
                f.write_str("fallback: driver not detected")
            }
            ProfileReason::Configured => f.write_str("set by node.toml [hw] profile"),
        }
    }
}

/// The profile a node uses, and why.
#[derive(Clone, Debug)]
pub struct ChosenProfile {
    pub profile: HwProfile,
    pub origin: ProfileOrigin,
    pub reason: ProfileReason,
    /// Fields node.toml's `[hw]` table overrode.
    pub overridden: Vec<String>,
}

/// Profiles by driver name; always holds [`GENERIC`].
#[derive(Clone, Debug)]
pub struct ProfileSet {
    profiles: BTreeMap<String, (HwProfile, ProfileOrigin)>,
}

/// Bounds on the run-time directory, which is as untrusted as any input.
const MAX_PROFILE_FILES: usize = 256;
const MAX_PROFILE_BYTES: u64 = 64 * 1024;

impl ProfileSet {
    /// The profiles compiled into the binary.
    pub fn embedded() -> Result<ProfileSet, ProfileError> {
        let mut profiles = BTreeMap::new();
        for (name, text) in EMBEDDED {
            let file = format!("embedded:hw-profiles/{name}");
            let profile = HwProfile::parse(&file, text)?;
            check_file_name(&file, name, &profile)?;
            profiles.insert(profile.driver.clone(), (profile, ProfileOrigin::Embedded));
        }
        Ok(ProfileSet { profiles })
    }

    /// The embedded profiles, with those of `$BRINDLE_HW_PROFILES` (when set) added or
    /// replacing them.
    pub fn load() -> Result<ProfileSet, ProfileError> {
        let mut set = ProfileSet::embedded()?;
        if let Some(dir) = std::env::var_os(PROFILES_ENV).filter(|d| !d.is_empty()) {
            set.add_dir(Path::new(&dir))?;
        }
        Ok(set)
    }

    /// Adds every `*.toml` of `dir`; a file replaces the profile of the same driver. The file
    /// must be named after its driver (`<driver>.toml`), so that a directory listing tells
    /// which drivers it covers.
    pub fn add_dir(&mut self, dir: &Path) -> Result<(), ProfileError> {
        let unreadable = |file: &Path, e: &dyn fmt::Display| ProfileError::Unreadable {
            file: file.display().to_string(),
            detail: e.to_string(),
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| unreadable(dir, &e))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .take(MAX_PROFILE_FILES + 1)
            .collect();
        if paths.len() > MAX_PROFILE_FILES {
            return Err(unreadable(
                dir,
                &format!("more than {MAX_PROFILE_FILES} profile files"),
            ));
        }
        paths.sort();
        for path in paths {
            let len = std::fs::metadata(&path)
                .map_err(|e| unreadable(&path, &e))?
                .len();
            if len > MAX_PROFILE_BYTES {
                return Err(unreadable(
                    &path,
                    &format!("{len} bytes, more than {MAX_PROFILE_BYTES}"),
                ));
            }
            let text = std::fs::read_to_string(&path).map_err(|e| unreadable(&path, &e))?;
            let file = path.display().to_string();
            let profile = HwProfile::parse(&file, &text)?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            check_file_name(&file, &name, &profile)?;
            self.profiles
                .insert(profile.driver.clone(), (profile, ProfileOrigin::File(path)));
        }
        Ok(())
    }

    pub fn get(&self, driver: &str) -> Option<&HwProfile> {
        self.profiles.get(driver).map(|(p, _)| p)
    }

    pub fn drivers(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    /// The profile for `driver`: its own, else the generic fallback.
    pub fn select(&self, driver: Option<&str>) -> ChosenProfile {
        let (name, reason) = match driver {
            Some(d) if self.profiles.contains_key(d) => {
                (d, ProfileReason::MatchedDriver(d.to_owned()))
            }
            other => (
                GENERIC,
                ProfileReason::Fallback {
                    driver: other.map(str::to_owned),
                },
            ),
        };
        let (profile, origin) = self
            .profiles
            .get(name)
            .cloned()
            // `embedded()` refuses a set without generic.toml, and nothing removes profiles.
            .unwrap_or_else(|| (HwProfile::placeholder(), ProfileOrigin::Embedded));
        ChosenProfile {
            profile,
            origin,
            reason,
            overridden: Vec::new(),
        }
    }

    /// The profile a node uses: `[hw] profile` if node.toml names one, else the driver's
    /// (or generic), then the rest of `[hw]` on top. `hw` is the `[hw]` value of node.toml;
    /// `source` names node.toml in errors.
    pub fn resolve(
        &self,
        driver: Option<&str>,
        hw: Option<&toml::Value>,
        source: &str,
    ) -> Result<ChosenProfile, ProfileError> {
        let Some(hw) = hw else {
            return Ok(self.select(driver));
        };
        let table = hw
            .as_table()
            .ok_or_else(|| field_error(source, "hw", hw, "expected a table".into()))?;
        let mut chosen = match table.get("profile") {
            None => self.select(driver),
            Some(value) => {
                let name = value
                    .as_str()
                    .filter(|n| self.profiles.contains_key(*n))
                    .ok_or_else(|| {
                        let known: Vec<&str> = self.drivers().collect();
                        field_error(
                            source,
                            "hw.profile",
                            value,
                            format!("expected one of {}", known.join(", ")),
                        )
                    })?;
                let (profile, origin) = self.profiles[name].clone();
                ChosenProfile {
                    profile,
                    origin,
                    reason: ProfileReason::Configured,
                    overridden: Vec::new(),
                }
            }
        };
        chosen.profile = chosen.profile.with_overrides(source, hw)?;
        chosen.overridden = table.keys().filter(|k| *k != "profile").cloned().collect();
        Ok(chosen)
    }
}

fn check_file_name(file: &str, name: &str, profile: &HwProfile) -> Result<(), ProfileError> {
    if name != format!("{}.toml", profile.driver) {
        return Err(ProfileError::Field {
            file: file.into(),
            field: "driver".into(),
            value: format!("\"{}\"", profile.driver),
            reason: format!(
                "a profile file is named after its driver; expected {}.toml",
                profile.driver
            ),
        });
    }
    Ok(())
}
