//! Requirements: what `brindlectl node checksystem` reports.

use std::path::Path;

use super::detect::{valid_interface_name, KernelFeatures};
use super::profile::{HwProfile, NEED_WAKEUP_KERNEL, PREFER_BUSY_POLL_KERNEL};

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
    use crate::profile::KernelVersion;
    use crate::test_profiles::with_line;

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
}
