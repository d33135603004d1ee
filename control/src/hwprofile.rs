//! NIC profiles: how to set up AF_XDP for one NIC driver (XDP mode, zero-copy, queues, rings,
//! frames, batch, rx mode, busy polling, the MTU limit), and the facts needed to pick one: the
//! uplink's driver and the kernel's features.
//!
//! The profiles live in `hw-profiles/*.toml` and are compiled into the binary, so a node needs
//! no install step; `BRINDLE_HW_PROFILES=<dir>` adds or replaces profiles at run time. A
//! profile file is untrusted input: every error names the file, the field and the value.
//! `node.toml` may override any field in its `[hw]` table ([`HwProfile::with_overrides`]).
//! The XDP and rx modes a profile names are fastpath's own ([`fastpath::XdpMode`],
//! [`fastpath::RxMode`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use fastpath::frame_sizes::XDP_HEADROOM;
use fastpath::wire::ethernet;
use fastpath::{RxMode, XdpMode};

// ---------------------------------------------------------------------------------------------
// The profile
// ---------------------------------------------------------------------------------------------

/// How many of the interface's queues get an AF_XDP socket and a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueuePolicy {
    All,
    /// Half of them (rounded down, at least one): drivers that need the rest as XDP TX queues.
    Half,
    One,
    Fixed(u32),
}

impl QueuePolicy {
    /// Queues to use on an interface with `available` queues (never 0, never above it).
    pub fn queues(&self, available: u32) -> u32 {
        let available = available.max(1);
        match *self {
            QueuePolicy::All => available,
            QueuePolicy::Half => (available / 2).max(1),
            QueuePolicy::One => 1,
            QueuePolicy::Fixed(n) => n.clamp(1, available),
        }
    }
}

impl fmt::Display for QueuePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueuePolicy::All => f.write_str("all"),
            QueuePolicy::Half => f.write_str("half"),
            QueuePolicy::One => f.write_str("one"),
            QueuePolicy::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// A kernel version, major.minor (the patch level decides no feature we test for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    pub const fn new(major: u32, minor: u32) -> KernelVersion {
        KernelVersion { major, minor }
    }

    /// Reads the leading `major.minor` of a release string (`6.18.44-fc-v669`, `5.4`).
    pub fn parse(text: &str) -> Option<KernelVersion> {
        let mut parts = text.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(KernelVersion { major, minor })
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// AF_XDP sockets appeared in 4.18.
pub const AF_XDP_KERNEL: KernelVersion = KernelVersion::new(4, 18);
/// XDP_USE_NEED_WAKEUP (the workers rely on it to sleep) appeared in 5.4.
pub const NEED_WAKEUP_KERNEL: KernelVersion = KernelVersion::new(5, 4);
/// SO_PREFER_BUSY_POLL and SO_BUSY_POLL_BUDGET appeared in 5.11.
pub const PREFER_BUSY_POLL_KERNEL: KernelVersion = KernelVersion::new(5, 11);

/// Taken from a frame before the packet fits: the headroom the kernel keeps in front of every
/// AF_XDP frame, and the Ethernet header.
const FRAME_OVERHEAD: u32 = XDP_HEADROOM + ethernet::HEADER_LEN as u32;

/// One NIC driver's settings. See hw-profiles/README.md for what each field means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HwProfile {
    pub driver: String,
    pub xdp_mode: XdpMode,
    pub zero_copy: bool,
    pub queue_policy: QueuePolicy,
    pub rx_ring_size: u32,
    pub tx_ring_size: u32,
    pub frame_size: u32,
    pub frame_headroom: u32,
    pub batch_size: u32,
    pub rx_mode: RxMode,
    pub prefer_busy_poll: bool,
    pub busy_poll_budget: u32,
    pub napi_defer_hard_irqs: u32,
    pub gro_flush_timeout_ns: u32,
    pub max_mtu_single_buffer: u32,
    pub min_kernel: KernelVersion,
    pub quirks: Vec<String>,
}

/// Every field a profile file must set, in file order.
pub const FIELDS: &[&str] = &[
    "driver",
    "xdp_mode",
    "zero_copy",
    "queue_policy",
    "rx_ring_size",
    "tx_ring_size",
    "frame_size",
    "frame_headroom",
    "batch_size",
    "rx_mode",
    "prefer_busy_poll",
    "busy_poll_budget",
    "napi_defer_hard_irqs",
    "gro_flush_timeout_ns",
    "max_mtu_single_buffer",
    "min_kernel",
    "quirks",
];

/// The name of the fallback profile, used for every driver without its own.
pub const GENERIC: &str = "generic";

/// The environment variable naming a directory of profiles that add to or replace the
/// embedded ones.
pub const PROFILES_ENV: &str = "BRINDLE_HW_PROFILES";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("{file}: not valid TOML: {detail}")]
    Syntax { file: String, detail: String },
    #[error("{file}: field {field} = {value}: {reason}")]
    Field {
        file: String,
        field: String,
        value: String,
        reason: String,
    },
    #[error("{file}: missing field {field}")]
    Missing { file: String, field: String },
    #[error("{file}: {detail}")]
    Unreadable { file: String, detail: String },
}

/// Longest value quoted back in an error, so that a huge value cannot flood a log.
const QUOTED_VALUE_MAX: usize = 80;

fn quote(value: &toml::Value) -> String {
    let text = value.to_string();
    if text.len() <= QUOTED_VALUE_MAX {
        return text;
    }
    let mut end = QUOTED_VALUE_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

impl HwProfile {
    /// Parses and validates one profile; `file` names it in errors (a path or `embedded:x.toml`).
    pub fn parse(file: &str, text: &str) -> Result<HwProfile, ProfileError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ProfileError::Syntax {
                    file: file.into(),
                    detail: e.message().to_owned(),
                })?;
        // Start from the fallback's shape and require that every field be set, so that a
        // profile never silently inherits a value it did not state.
        let mut profile = HwProfile::placeholder();
        for (field, value) in &table {
            profile
                .set(field, value)
                .map_err(|reason| field_error(file, field, value, reason))?;
        }
        if let Some(missing) = FIELDS.iter().find(|f| !table.contains_key(**f)) {
            return Err(ProfileError::Missing {
                file: file.into(),
                field: (*missing).into(),
            });
        }
        profile.validate(file)?;
        Ok(profile)
    }

    /// This profile with the fields of a `[hw]` table of node.toml replacing its own.
    /// `hw` must be a table; `profile` (which profile to start from) is taken out by
    /// [`ProfileSet::resolve`], `driver` cannot be overridden, any other unknown key is an error.
    pub fn with_overrides(
        &self,
        source: &str,
        hw: &toml::Value,
    ) -> Result<HwProfile, ProfileError> {
        let table = hw
            .as_table()
            .ok_or_else(|| field_error(source, "hw", hw, "expected a table".into()))?;
        let mut profile = self.clone();
        for (field, value) in table {
            let field_name = format!("hw.{field}");
            match field.as_str() {
                "profile" => continue,
                "driver" => {
                    return Err(field_error(
                        source,
                        &field_name,
                        value,
                        "the driver is detected, not set; choose a profile with hw.profile".into(),
                    ))
                }
                _ => profile
                    .set(field, value)
                    .map_err(|reason| field_error(source, &field_name, value, reason))?,
            }
        }
        profile.validate(source)?;
        Ok(profile)
    }

    /// The largest MTU a single-buffer AF_XDP frame of this profile holds: the driver's limit,
    /// and what is left of a frame after the kernel's headroom, ours and the Ethernet header.
    pub fn max_mtu(&self) -> u32 {
        let frame_room = self
            .frame_size
            .saturating_sub(FRAME_OVERHEAD + self.frame_headroom);
        self.max_mtu_single_buffer.min(frame_room)
    }

    /// The oldest kernel this profile works on: the driver's own minimum, need_wakeup, and
    /// SO_PREFER_BUSY_POLL when the profile asks for it.
    pub fn required_kernel(&self) -> KernelVersion {
        let mut needed = self.min_kernel.max(NEED_WAKEUP_KERNEL);
        if self.prefer_busy_poll {
            needed = needed.max(PREFER_BUSY_POLL_KERNEL);
        }
        needed
    }

    fn placeholder() -> HwProfile {
        HwProfile {
            driver: String::new(),
            xdp_mode: XdpMode::Generic,
            zero_copy: false,
            queue_policy: QueuePolicy::One,
            rx_ring_size: 0,
            tx_ring_size: 0,
            frame_size: 0,
            frame_headroom: 0,
            batch_size: 0,
            rx_mode: RxMode::Adaptive,
            prefer_busy_poll: false,
            busy_poll_budget: 0,
            napi_defer_hard_irqs: 0,
            gro_flush_timeout_ns: 0,
            max_mtu_single_buffer: 0,
            min_kernel: AF_XDP_KERNEL,
            quirks: Vec::new(),
        }
    }

    /// Sets one field from its TOML value; the error is the reason the value is refused.
    fn set(&mut self, field: &str, value: &toml::Value) -> Result<(), String> {
        match field {
            "driver" => self.driver = driver_name(value)?,
            "xdp_mode" => self.xdp_mode = string(value)?.parse::<XdpMode>()?,
            "zero_copy" => self.zero_copy = boolean(value)?,
            "queue_policy" => self.queue_policy = queue_policy(value)?,
            "rx_ring_size" => self.rx_ring_size = ring_size(value)?,
            "tx_ring_size" => self.tx_ring_size = ring_size(value)?,
            "frame_size" => {
                // AF_XDP accepts chunk sizes from 2048 up to a page (aligned mode).
                self.frame_size = integer(value, 2048, 4096)?;
                if !matches!(self.frame_size, 2048 | 4096) {
                    return Err("expected 2048 or 4096".into());
                }
            }
            "frame_headroom" => self.frame_headroom = integer(value, 0, 512)?,
            "batch_size" => self.batch_size = integer(value, 1, 256)?,
            "rx_mode" => self.rx_mode = string(value)?.parse::<RxMode>()?,
            "prefer_busy_poll" => self.prefer_busy_poll = boolean(value)?,
            // The kernel refuses SO_BUSY_POLL_BUDGET above U16_MAX; NAPI's own budget is 64.
            "busy_poll_budget" => self.busy_poll_budget = integer(value, 1, 1024)?,
            "napi_defer_hard_irqs" => self.napi_defer_hard_irqs = integer(value, 0, 1000)?,
            // 10 ms: beyond that a missed wakeup stalls traffic noticeably.
            "gro_flush_timeout_ns" => self.gro_flush_timeout_ns = integer(value, 0, 10_000_000)?,
            "max_mtu_single_buffer" => self.max_mtu_single_buffer = integer(value, 576, 9216)?,
            "min_kernel" => {
                let text = string(value)?;
                self.min_kernel = KernelVersion::parse(text)
                    .filter(|v| *v >= AF_XDP_KERNEL)
                    .ok_or("expected a kernel version \"major.minor\", 4.18 (AF_XDP) or later")?
            }
            "quirks" => self.quirks = quirks(value)?,
            _ => return Err(format!("unknown field (known: {})", FIELDS.join(", "))),
        }
        Ok(())
    }

    /// Checks between fields, after all are set.
    fn validate(&self, file: &str) -> Result<(), ProfileError> {
        let fail = |field: &str, value: u32, reason: String| ProfileError::Field {
            file: file.into(),
            field: field.into(),
            value: value.to_string(),
            reason,
        };
        if self.batch_size > self.rx_ring_size {
            return Err(fail(
                "batch_size",
                self.batch_size,
                format!("larger than rx_ring_size {}", self.rx_ring_size),
            ));
        }
        // A frame must hold at least a minimal IPv4 packet (576 bytes, RFC 791 section 3.1).
        if self.max_mtu() < 576 {
            return Err(fail(
                "frame_headroom",
                self.frame_headroom,
                format!(
                    "leaves room for an MTU of only {} in a {}-byte frame",
                    self.max_mtu(),
                    self.frame_size
                ),
            ));
        }
        Ok(())
    }
}

fn field_error(file: &str, field: &str, value: &toml::Value, reason: String) -> ProfileError {
    ProfileError::Field {
        file: file.into(),
        field: field.into(),
        value: quote(value),
        reason,
    }
}

fn string(value: &toml::Value) -> Result<&str, String> {
    value.as_str().ok_or_else(|| "expected a string".into())
}

fn boolean(value: &toml::Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| "expected true or false".into())
}

fn integer(value: &toml::Value, min: u32, max: u32) -> Result<u32, String> {
    let n = value.as_integer().ok_or("expected an integer")?;
    u32::try_from(n)
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| format!("expected {min}..={max}"))
}

fn ring_size(value: &toml::Value) -> Result<u32, String> {
    let n = integer(value, 64, 16384)?;
    if !n.is_power_of_two() {
        return Err("expected a power of two (AF_XDP rings are)".into());
    }
    Ok(n)
}

/// Driver names as the kernel reports them: short, lower case, digits, `_` and `-`.
fn driver_name(value: &toml::Value) -> Result<String, String> {
    let name = string(value)?;
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !ok {
        return Err("expected 1..32 characters of a-z, 0-9, _ and -".into());
    }
    Ok(name.to_owned())
}

fn queue_policy(value: &toml::Value) -> Result<QueuePolicy, String> {
    if value.is_integer() {
        return integer(value, 1, 1024).map(QueuePolicy::Fixed);
    }
    match value.as_str() {
        Some("all") => Ok(QueuePolicy::All),
        Some("half") => Ok(QueuePolicy::Half),
        Some("one") => Ok(QueuePolicy::One),
        _ => Err("expected \"all\", \"half\", \"one\" or a queue count 1..=1024".into()),
    }
}

fn quirks(value: &toml::Value) -> Result<Vec<String>, String> {
    const MAX_QUIRKS: usize = 32;
    const MAX_QUIRK_LEN: usize = 400;
    let items = value.as_array().ok_or("expected an array of strings")?;
    if items.len() > MAX_QUIRKS {
        return Err(format!("at most {MAX_QUIRKS} quirks"));
    }
    items
        .iter()
        .map(|item| match item.as_str() {
            Some(s) if s.len() <= MAX_QUIRK_LEN => Ok(s.to_owned()),
            Some(_) => Err(format!("a quirk is longer than {MAX_QUIRK_LEN} bytes")),
            None => Err("expected an array of strings".into()),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The set of profiles: embedded, then the run-time directory
// ---------------------------------------------------------------------------------------------

/// Every file of hw-profiles/, compiled in (a test checks that none is missing).
pub const EMBEDDED: &[(&str, &str)] = &[
    ("ena.toml", include_str!("../../hw-profiles/ena.toml")),
    (
        "generic.toml",
        include_str!("../../hw-profiles/generic.toml"),
    ),
    ("i40e.toml", include_str!("../../hw-profiles/i40e.toml")),
    ("ice.toml", include_str!("../../hw-profiles/ice.toml")),
    ("ixgbe.toml", include_str!("../../hw-profiles/ixgbe.toml")),
    (
        "mlx5_core.toml",
        include_str!("../../hw-profiles/mlx5_core.toml"),
    ),
    ("veth.toml", include_str!("../../hw-profiles/veth.toml")),
    (
        "virtio_net.toml",
        include_str!("../../hw-profiles/virtio_net.toml"),
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

// ---------------------------------------------------------------------------------------------
// Agent mode: overrides from the environment
// ---------------------------------------------------------------------------------------------

/// Prefix of the variables that override profile fields in agent mode (no node.toml there):
/// `BRINDLE_HW_XDP_MODE=generic` is node.toml's `[hw] xdp_mode = "generic"`.
pub const OVERRIDE_ENV_PREFIX: &str = "BRINDLE_HW_";

/// Most override variables read: one per field, and `profile`.
const MAX_ENV_OVERRIDES: usize = 32;

/// The `[hw]` table spelled by `BRINDLE_HW_<FIELD>=value` variables (`None` when there are
/// none); [`PROFILES_ENV`] is not a field and is skipped. A value is read as TOML (`1024`,
/// `true`, `"x"`) and otherwise taken as a string (`generic`). Each value is checked here, so
/// that an error names the variable and its value.
pub fn env_overrides(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Option<toml::Value>, String> {
    let mut table = toml::Table::new();
    for (var, text) in vars {
        let Some(field) = var.strip_prefix(OVERRIDE_ENV_PREFIX) else {
            continue;
        };
        if var == PROFILES_ENV {
            continue;
        }
        if table.len() >= MAX_ENV_OVERRIDES {
            return Err(format!(
                "more than {MAX_ENV_OVERRIDES} {OVERRIDE_ENV_PREFIX}* variables"
            ));
        }
        let shown: String = text.chars().take(QUOTED_VALUE_MAX).collect();
        let field = field.to_ascii_lowercase();
        let value = format!("v = {text}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(text.clone()));
        match field.as_str() {
            "profile" => {
                if !value.is_str() {
                    return Err(format!("{var}={shown}: expected a profile name"));
                }
            }
            "driver" => return Err(format!("{var}={shown}: the driver is detected, not set; choose a profile with {OVERRIDE_ENV_PREFIX}PROFILE")),
            _ => HwProfile::placeholder().set(&field, &value).map_err(|reason| format!("{var}={shown}: {reason}"))?,
        }
        table.insert(field, value);
    }
    Ok((!table.is_empty()).then_some(toml::Value::Table(table)))
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

// ---------------------------------------------------------------------------------------------
// Detection: the interface's driver, the kernel's features
// ---------------------------------------------------------------------------------------------

/// How a driver name was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverSource {
    /// The ETHTOOL_GDRVINFO ioctl (what `ethtool -i` prints).
    Ethtool,
    /// The `/sys/class/net/<if>/device/driver` symlink.
    Sysfs,
}

impl fmt::Display for DriverSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriverSource::Ethtool => "ethtool driver info",
            DriverSource::Sysfs => "sysfs device/driver",
        })
    }
}

/// The driver of `interface` in this network namespace: ethtool's driver info first (it
/// also answers for virtual devices such as veth, which have no `device` in sysfs), then
/// the sysfs symlink. `None` when neither answers.
pub fn detect_driver(interface: &str) -> Option<(String, DriverSource)> {
    if let Some(d) = driver_from_ethtool(interface) {
        return Some((d, DriverSource::Ethtool));
    }
    driver_from_sysfs(Path::new("/sys/class/net"), interface).map(|d| (d, DriverSource::Sysfs))
}

/// The last component of `<class_net>/<if>/device/driver`'s target (`../../bus/pci/drivers/ixgbe`).
pub fn driver_from_sysfs(class_net: &Path, interface: &str) -> Option<String> {
    if !valid_interface_name(interface) {
        return None;
    }
    let target = std::fs::read_link(class_net.join(interface).join("device/driver")).ok()?;
    let name = target.file_name()?.to_str()?;
    (!name.is_empty()).then(|| name.to_owned())
}

fn valid_interface_name(name: &str) -> bool {
    // IFNAMSIZ is 16 with the terminating NUL; `/` and NUL would escape the path or the ioctl.
    !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace())
}

/// `struct ethtool_drvinfo` (include/uapi/linux/ethtool.h).
#[repr(C)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// `struct ifreq` with the `ifr_data` member of its union.
#[repr(C)]
struct IfreqData {
    name: [u8; 16],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;

/// The driver name ethtool reports for `interface` (SIOCETHTOOL / ETHTOOL_GDRVINFO).
pub fn driver_from_ethtool(interface: &str) -> Option<String> {
    if !valid_interface_name(interface) {
        return None;
    }
    // SAFETY: an ordinary socket, closed below; the ioctl writes only into `info`, which
    // outlives the call, and reads the NUL-terminated name from `request`.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let mut info: EthtoolDrvinfo = std::mem::zeroed();
        info.cmd = ETHTOOL_GDRVINFO;
        let mut request = IfreqData {
            name: [0; 16],
            data: (&mut info as *mut EthtoolDrvinfo).cast(),
            _pad: [0; 16],
        };
        request.name[..interface.len()].copy_from_slice(interface.as_bytes());
        let rc = libc::ioctl(fd, SIOCETHTOOL as _, &mut request as *mut IfreqData);
        libc::close(fd);
        if rc != 0 {
            return None;
        }
        let len = info
            .driver
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(info.driver.len());
        let name = std::str::from_utf8(&info.driver[..len]).ok()?;
        (!name.is_empty()).then(|| name.to_owned())
    }
}

/// What the running kernel offers the dataplane.
#[derive(Clone, Debug)]
pub struct KernelFeatures {
    /// `uname -r`.
    pub release: String,
    /// `None` when the release does not start with `major.minor`.
    pub version: Option<KernelVersion>,
    /// Whether an AF_XDP socket could be created, else why not.
    pub af_xdp: Result<(), String>,
    /// Whether the bpf(2) syscall works (a one-entry array map could be created), else why not.
    pub bpf: Result<(), String>,
}

impl KernelFeatures {
    pub fn detect() -> KernelFeatures {
        let release = kernel_release();
        KernelFeatures {
            version: KernelVersion::parse(&release),
            release,
            af_xdp: try_af_xdp_socket(),
            bpf: try_bpf_map(),
        }
    }

    pub fn at_least(&self, needed: KernelVersion) -> bool {
        self.version.is_some_and(|v| v >= needed)
    }

    pub fn need_wakeup(&self) -> bool {
        self.at_least(NEED_WAKEUP_KERNEL)
    }

    pub fn prefer_busy_poll(&self) -> bool {
        self.at_least(PREFER_BUSY_POLL_KERNEL)
    }
}

fn kernel_release() -> String {
    // SAFETY: uname fills the zeroed struct; its fields are NUL-terminated.
    unsafe {
        let mut uts: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut uts) != 0 {
            return String::new();
        }
        std::ffi::CStr::from_ptr(uts.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

fn try_af_xdp_socket() -> Result<(), String> {
    // SAFETY: creating and closing a socket has no other effect.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!(
            "socket(AF_XDP): {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    Ok(())
}

fn try_bpf_map() -> Result<(), String> {
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    // union bpf_attr for BPF_MAP_CREATE: map_type, key_size, value_size, max_entries, then
    // fields that must be zero.
    let mut attr = [0u32; 16];
    attr[..4].copy_from_slice(&[BPF_MAP_TYPE_ARRAY, 4, 4, 1]);
    // SAFETY: the kernel reads `size_of_val(&attr)` bytes of attr; a fd comes back or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if fd < 0 {
        return Err(format!(
            "bpf(BPF_MAP_CREATE): {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: fd is ours.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Requirements: what `brindlectl node checksystem` reports
// ---------------------------------------------------------------------------------------------

/// One thing the dataplane needs, and whether this host has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    pub name: String,
    pub met: bool,
    pub detail: String,
}

/// The requirements of `profile` on a host with `kernel`, for an uplink with `mtu` (if known).
pub fn requirements(
    profile: &HwProfile,
    kernel: &KernelFeatures,
    mtu: Option<u32>,
) -> Vec<Requirement> {
    let mut list = Vec::new();
    let mut push = |name: &str, met: bool, detail: String| {
        list.push(Requirement {
            name: name.into(),
            met,
            detail,
        })
    };
    let version = kernel.version.map_or_else(
        || format!("unknown ({:?})", kernel.release),
        |v| v.to_string(),
    );
    push(
        "AF_XDP sockets",
        kernel.af_xdp.is_ok(),
        kernel
            .af_xdp
            .clone()
            .err()
            .unwrap_or_else(|| "an AF_XDP socket can be created".into()),
    );
    push(
        "BPF",
        kernel.bpf.is_ok(),
        kernel
            .bpf
            .clone()
            .err()
            .unwrap_or_else(|| "bpf(2) creates maps".into()),
    );
    push(
        "need_wakeup",
        kernel.need_wakeup(),
        format!(
            "XDP_USE_NEED_WAKEUP needs kernel {NEED_WAKEUP_KERNEL} or later; this is {version}"
        ),
    );
    if profile.prefer_busy_poll {
        push(
            "busy poll",
            kernel.prefer_busy_poll(),
            format!("SO_PREFER_BUSY_POLL needs kernel {PREFER_BUSY_POLL_KERNEL} or later; this is {version}"),
        );
    }
    push(
        "driver support",
        kernel.at_least(profile.min_kernel),
        format!(
            "profile {} needs kernel {} or later; this is {version}",
            profile.driver, profile.min_kernel
        ),
    );
    match mtu {
        Some(mtu) => push(
            "MTU",
            mtu <= profile.max_mtu(),
            format!(
                "MTU {mtu}, limit {} (driver single-buffer limit {}, {}-byte frames)",
                profile.max_mtu(),
                profile.max_mtu_single_buffer,
                profile.frame_size
            ),
        ),
        None => push("MTU", false, "cannot read the interface's MTU".into()),
    }
    list
}

/// The MTU of `interface` in this network namespace.
pub fn interface_mtu(interface: &str) -> Option<u32> {
    if !valid_interface_name(interface) {
        return None;
    }
    std::fs::read_to_string(Path::new("/sys/class/net").join(interface).join("mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic_text() -> String {
        EMBEDDED
            .iter()
            .find(|(n, _)| *n == "generic.toml")
            .unwrap()
            .1
            .to_owned()
    }

    /// The generic profile with one line replaced.
    fn with_line(field: &str, line: &str) -> String {
        generic_text()
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{field} =")) {
                    line.to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn kernel_versions_parse_from_release_strings() {
        assert_eq!(
            KernelVersion::parse("6.18.44-fc-v669"),
            Some(KernelVersion::new(6, 18))
        );
        assert_eq!(KernelVersion::parse("5.4"), Some(KernelVersion::new(5, 4)));
        assert_eq!(KernelVersion::parse("x.y"), None);
        assert_eq!(KernelVersion::parse("6"), None);
        assert!(KernelVersion::new(5, 10) < KernelVersion::new(5, 11));
    }

    #[test]
    fn queue_policies_stay_within_the_available_queues() {
        assert_eq!(QueuePolicy::All.queues(8), 8);
        assert_eq!(QueuePolicy::Half.queues(8), 4);
        assert_eq!(QueuePolicy::Half.queues(1), 1);
        assert_eq!(QueuePolicy::One.queues(8), 1);
        assert_eq!(QueuePolicy::Fixed(16).queues(8), 8);
        assert_eq!(QueuePolicy::Fixed(2).queues(0), 1);
    }

    #[test]
    fn a_bad_value_names_file_field_and_value() {
        let e = HwProfile::parse(
            "x/generic.toml",
            &with_line("rx_ring_size", "rx_ring_size = 1000"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x/generic.toml: field rx_ring_size = 1000: expected a power of two (AF_XDP rings are)"
        );
        let e =
            HwProfile::parse("g.toml", &with_line("rx_mode", "rx_mode = \"turbo\"")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("g.toml: field rx_mode = \"turbo\": expected"),
            "{e}"
        );
        let e =
            HwProfile::parse("g.toml", &with_line("frame_size", "frame_size = 3000")).unwrap_err();
        assert!(
            e.to_string()
                .contains("field frame_size = 3000: expected 2048 or 4096"),
            "{e}"
        );
        let e =
            HwProfile::parse("g.toml", &with_line("batch_size", "batch_size = -1")).unwrap_err();
        assert!(
            e.to_string()
                .contains("field batch_size = -1: expected 1..=256"),
            "{e}"
        );
        let e = HwProfile::parse("g.toml", &with_line("min_kernel", "min_kernel = \"3.10\""))
            .unwrap_err();
        assert!(e.to_string().contains("field min_kernel = \"3.10\""), "{e}");
    }

    #[test]
    fn missing_unknown_and_cross_field_errors() {
        let e = HwProfile::parse("g.toml", &with_line("zero_copy", "")).unwrap_err();
        assert_eq!(
            e,
            ProfileError::Missing {
                file: "g.toml".into(),
                field: "zero_copy".into()
            }
        );
        let e =
            HwProfile::parse("g.toml", &format!("{}\nturbo = true\n", generic_text())).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("g.toml: field turbo = true: unknown field"),
            "{e}"
        );
        let small_ring = with_line("rx_ring_size", "rx_ring_size = 64")
            .replace("batch_size = 32", "batch_size = 128");
        let e = HwProfile::parse("g.toml", &small_ring).unwrap_err();
        assert!(
            e.to_string()
                .contains("field batch_size = 128: larger than rx_ring_size 64"),
            "{e}"
        );
        let e = HwProfile::parse("g.toml", "driver = [").unwrap_err();
        assert!(
            matches!(e, ProfileError::Syntax { ref file, .. } if file == "g.toml"),
            "{e}"
        );
    }

    #[test]
    fn a_huge_value_is_quoted_short() {
        let long = "x".repeat(10_000);
        let e = HwProfile::parse(
            "g.toml",
            &with_line("rx_mode", &format!("rx_mode = \"{long}\"")),
        )
        .unwrap_err();
        assert!(e.to_string().len() < 300, "{}", e.to_string().len());
    }

    #[test]
    fn max_mtu_takes_the_smaller_of_driver_and_frame_limits() {
        let mut p = HwProfile::parse("g.toml", &generic_text()).unwrap();
        p.max_mtu_single_buffer = 3504;
        p.frame_size = 2048;
        assert_eq!(p.max_mtu(), 2048 - 256 - 14);
        p.frame_size = 4096;
        assert_eq!(p.max_mtu(), 3504);
        p.frame_headroom = 512;
        assert_eq!(
            p.max_mtu(),
            4096 - 256 - 512 - 14,
            "the frame is now the tighter limit"
        );
    }

    #[test]
    fn requirements_follow_the_kernel_version() {
        let p = HwProfile::parse(
            "g.toml",
            &with_line("prefer_busy_poll", "prefer_busy_poll = true"),
        )
        .unwrap();
        let kernel = |v: &str| KernelFeatures {
            release: v.into(),
            version: KernelVersion::parse(v),
            af_xdp: Ok(()),
            bpf: Ok(()),
        };
        let unmet = |k: &KernelFeatures| -> Vec<String> {
            requirements(&p, k, Some(1500))
                .into_iter()
                .filter(|r| !r.met)
                .map(|r| r.name)
                .collect()
        };
        assert_eq!(unmet(&kernel("6.1.0")), Vec::<String>::new());
        assert_eq!(unmet(&kernel("5.10.0")), vec!["busy poll".to_string()]);
        assert_eq!(
            unmet(&kernel("5.3.0")),
            vec!["need_wakeup".to_string(), "busy poll".to_string()]
        );
        let no_xdp = KernelFeatures {
            af_xdp: Err("nope".into()),
            ..kernel("6.1.0")
        };
        assert_eq!(unmet(&no_xdp), vec!["AF_XDP sockets".to_string()]);
        let over = requirements(&p, &kernel("6.1.0"), Some(1501));
        assert!(over.iter().any(|r| r.name == "MTU" && !r.met), "{over:?}");
    }

    #[test]
    fn sysfs_driver_is_the_symlink_target_name() {
        let root =
            std::env::temp_dir().join(format!("brindle-hwprofile-sysfs-{}", std::process::id()));
        let device = root.join("eth7/device");
        std::fs::create_dir_all(&device).unwrap();
        let _ = std::fs::remove_file(device.join("driver"));
        std::os::unix::fs::symlink("../../../bus/pci/drivers/ixgbe", device.join("driver"))
            .unwrap();
        std::fs::create_dir_all(root.join("veth9")).unwrap();
        assert_eq!(driver_from_sysfs(&root, "eth7").as_deref(), Some("ixgbe"));
        assert_eq!(driver_from_sysfs(&root, "veth9"), None, "no device dir");
        assert_eq!(
            driver_from_sysfs(&root, "../eth7"),
            None,
            "names cannot escape the directory"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn environment_overrides_read_toml_or_strings_and_name_the_variable() {
        let vars = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            env_overrides(vars(&[("PATH", "/bin"), (PROFILES_ENV, "/etc/x")])).unwrap(),
            None
        );
        let hw = env_overrides(vars(&[
            ("BRINDLE_HW_XDP_MODE", "generic"),
            ("BRINDLE_HW_RX_RING_SIZE", "1024"),
            ("BRINDLE_HW_ZERO_COPY", "false"),
            ("BRINDLE_HW_PROFILE", "veth"),
        ]))
        .unwrap()
        .unwrap();
        let t = hw.as_table().unwrap();
        assert_eq!(t["xdp_mode"].as_str(), Some("generic"));
        assert_eq!(t["rx_ring_size"].as_integer(), Some(1024));
        assert_eq!(t["zero_copy"].as_bool(), Some(false));
        let set = ProfileSet::embedded().unwrap();
        let chosen = set
            .resolve(Some("ixgbe"), Some(&hw), "environment")
            .unwrap();
        assert_eq!(
            chosen.profile.driver, "veth",
            "BRINDLE_HW_PROFILE picks the profile"
        );
        assert_eq!(chosen.profile.xdp_mode, XdpMode::Generic);
        assert_eq!(chosen.profile.rx_ring_size, 1024);

        let e = env_overrides(vars(&[("BRINDLE_HW_XDP_MODE", "turbo")])).unwrap_err();
        assert!(
            e.contains("BRINDLE_HW_XDP_MODE=turbo") && e.contains("native"),
            "{e}"
        );
        let e = env_overrides(vars(&[("BRINDLE_HW_RX_RING_SIZE", "1000")])).unwrap_err();
        assert!(
            e.contains("BRINDLE_HW_RX_RING_SIZE=1000") && e.contains("power of two"),
            "{e}"
        );
        let e = env_overrides(vars(&[("BRINDLE_HW_COLOUR", "blue")])).unwrap_err();
        assert!(
            e.contains("BRINDLE_HW_COLOUR=blue") && e.contains("unknown field"),
            "{e}"
        );
        let e = env_overrides(vars(&[("BRINDLE_HW_DRIVER", "ice")])).unwrap_err();
        assert!(e.contains("BRINDLE_HW_DRIVER=ice"), "{e}");
    }
}
