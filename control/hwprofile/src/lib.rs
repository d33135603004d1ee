//! NIC profiles: how to set up AF_XDP for one NIC driver (XDP mode, zero-copy, queues, rings,
//! frames, batch, rx mode, busy polling, the MTU limit), and the facts needed to pick one: the
//! uplink's driver and the kernel's features.
//!
//! The profiles live in `hw-profiles/*.toml` and are compiled into the binary, so a node needs
//! no install step; `BRINDLE_HW_PROFILES=<dir>` adds or replaces profiles at run time. A
//! profile file is untrusted input: every error names the file, the field and the value.
//! `node.toml` may override any field in its `[hw]` table ([`HwProfile::with_overrides`]).
//!
//! - `profile`: the settings of one NIC driver ([`HwProfile`]) and the kernel versions they
//!   need.
//! - `parse`: reading a profile file, or node.toml's `[hw]` overrides, field by field.
//! - `set`: the profiles a node knows (embedded, then the run-time directory) and which one it
//!   uses.
//! - `env`: the same overrides in agent mode, from `BRINDLE_HW_*` variables.
//! - `detect`: the uplink's driver and the kernel's features.
//! - `requirements`: what `brindlectl node checksystem` reports.
//!
//! The XDP and rx modes a profile names are the dataplane's own, shared through the leaf crate
//! xdp-settings ([`xdp_settings::XdpMode`], [`xdp_settings::RxMode`]).

mod detect;
mod env;
mod parse;
mod profile;
mod requirements;
mod set;

pub use detect::{
    detect_driver, driver_from_ethtool, driver_from_sysfs, DriverSource, KernelFeatures,
};
pub use env::{env_overrides, OVERRIDE_ENV_PREFIX};
pub use parse::ProfileError;
pub use profile::{
    HwProfile, KernelVersion, QueuePolicy, AF_XDP_KERNEL, FIELDS, NEED_WAKEUP_KERNEL,
    PREFER_BUSY_POLL_KERNEL,
};
pub use requirements::{interface_mtu, requirements, Requirement};
pub use set::{
    ChosenProfile, ProfileOrigin, ProfileReason, ProfileSet, EMBEDDED, GENERIC, PROFILES_ENV,
};

/// Profile texts the tests of every part start from.
#[cfg(test)]
mod test_profiles {
    pub fn generic_text() -> String {
        super::EMBEDDED
            .iter()
            .find(|(n, _)| *n == "generic.toml")
            .unwrap()
            .1
            .to_owned()
    }

    /// The generic profile with one line replaced.
    pub fn with_line(field: &str, line: &str) -> String {
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
}
