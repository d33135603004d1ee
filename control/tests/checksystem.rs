//! NIC profiles (hw-profiles/), driver detection and `brindlectl node checksystem`.
//!
//! The detection and checksystem tests build a veth pair in a network namespace of their own
//! (`brs9-<pid>-<tag>`), which is removed when the test ends.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use control::hwprofile::{
    self, DriverSource, HwProfile, ProfileError, ProfileOrigin, ProfileReason, ProfileSet,
    QueuePolicy,
};
use fastpath::{RxMode, XdpMode};

fn profiles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../hw-profiles")
}

fn shipped_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(profiles_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("brs9-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn toml(text: &str) -> toml::Value {
    toml::Value::Table(text.parse().unwrap())
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

#[test]
fn every_shipped_profile_parses_validates_and_is_embedded() {
    let files = shipped_files();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for wanted in [
        "veth",
        "virtio_net",
        "mlx5_core",
        "i40e",
        "ice",
        "ixgbe",
        "ena",
        "generic",
    ] {
        assert!(
            names.contains(&format!("{wanted}.toml").as_str()),
            "hw-profiles/{wanted}.toml missing: {names:?}"
        );
    }
    for (name, text) in &files {
        let profile = HwProfile::parse(name, text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format!("{}.toml", profile.driver), *name);
        assert!(
            profile.max_mtu() >= 1500,
            "{name}: a standard MTU must fit, limit {}",
            profile.max_mtu()
        );
        // include_str! of every file: a new profile that is not compiled in would be a profile
        // the node silently ignores.
        let embedded = hwprofile::EMBEDDED.iter().find(|(n, _)| n == name);
        assert_eq!(
            embedded.map(|(_, t)| *t),
            Some(text.as_str()),
            "{name} is not embedded as is"
        );
    }
    assert_eq!(
        hwprofile::EMBEDDED.len(),
        files.len(),
        "EMBEDDED names a file hw-profiles/ does not have"
    );
    let set = ProfileSet::embedded().unwrap();
    assert_eq!(set.drivers().count(), files.len());
}

#[test]
fn shipped_profiles_carry_the_driver_facts() {
    let set = ProfileSet::embedded().unwrap();
    let veth = set.get("veth").unwrap();
    assert_eq!((veth.xdp_mode, veth.zero_copy), (XdpMode::Native, false));
    let ena = set.get("ena").unwrap();
    assert_eq!(
        ena.queue_policy,
        QueuePolicy::Half,
        "ENA allows XDP on half the channels"
    );
    assert_eq!(ena.max_mtu_single_buffer, 3498);
    assert!(ena.quirks.iter().any(|q| q.contains("half")));
    for zc in ["mlx5_core", "i40e", "ice", "ixgbe"] {
        assert!(set.get(zc).unwrap().zero_copy, "{zc} does AF_XDP zero-copy");
        assert_eq!(set.get(zc).unwrap().rx_mode, RxMode::Poll);
    }
    let generic = set.get("generic").unwrap();
    assert_eq!(
        (generic.xdp_mode, generic.queue_policy),
        (XdpMode::Generic, QueuePolicy::One)
    );
}

#[test]
fn a_bad_profile_file_names_file_field_and_value() {
    let dir = scratch_dir("bad");
    let veth = shipped_files()
        .into_iter()
        .find(|(n, _)| n == "veth.toml")
        .unwrap()
        .1;
    let path = dir.join("veth.toml");
    std::fs::write(
        &path,
        veth.replace("tx_ring_size = 2048", "tx_ring_size = 3000"),
    )
    .unwrap();
    let e = ProfileSet::embedded().unwrap().add_dir(&dir).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: field tx_ring_size = 3000: expected a power of two (AF_XDP rings are)",
            path.display()
        )
    );

    std::fs::write(&path, veth.replace("xdp_mode = \"native\"", "xdp_mode = 1")).unwrap();
    let e = ProfileSet::embedded().unwrap().add_dir(&dir).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: field xdp_mode = 1: expected a string", path.display())
    );

    // A file must be named after the driver it describes.
    std::fs::remove_file(&path).unwrap();
    std::fs::write(dir.join("ice.toml"), &veth).unwrap();
    let e = ProfileSet::embedded().unwrap().add_dir(&dir).unwrap_err();
    assert!(
        matches!(&e, ProfileError::Field { field, value, .. } if field == "driver" && value == "\"veth\""),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_runtime_directory_replaces_and_adds_profiles() {
    let dir = scratch_dir("runtime");
    let veth = shipped_files()
        .into_iter()
        .find(|(n, _)| n == "veth.toml")
        .unwrap()
        .1;
    std::fs::write(
        dir.join("veth.toml"),
        veth.replace("rx_ring_size = 2048", "rx_ring_size = 512"),
    )
    .unwrap();
    let e1000 = veth.replace("driver = \"veth\"", "driver = \"e1000\"");
    std::fs::write(dir.join("e1000.toml"), e1000).unwrap();
    std::fs::write(dir.join("README.md"), "not a profile").unwrap();
    let mut set = ProfileSet::embedded().unwrap();
    set.add_dir(&dir).unwrap();
    assert_eq!(set.get("veth").unwrap().rx_ring_size, 512);
    let chosen = set.select(Some("veth"));
    assert_eq!(chosen.origin, ProfileOrigin::File(dir.join("veth.toml")));
    assert_eq!(
        set.select(Some("e1000")).reason,
        ProfileReason::MatchedDriver("e1000".into())
    );
    assert_eq!(
        set.get("mlx5_core").unwrap().rx_ring_size,
        4096,
        "untouched profiles stay embedded"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Fallbacks and overrides
// ---------------------------------------------------------------------------------------------

#[test]
fn an_unknown_or_undetected_driver_falls_back_to_generic() {
    let set = ProfileSet::embedded().unwrap();
    let chosen = set.select(Some("e1000e"));
    assert_eq!(chosen.profile.driver, "generic");
    assert_eq!(
        chosen.reason,
        ProfileReason::Fallback {
            driver: Some("e1000e".into())
        }
    );
    let chosen = set.select(None);
    assert_eq!(chosen.profile.driver, "generic");
    assert_eq!(chosen.reason, ProfileReason::Fallback { driver: None });
    let chosen = set.select(Some("ena"));
    assert_eq!(
        (chosen.profile.driver.as_str(), chosen.reason),
        ("ena", ProfileReason::MatchedDriver("ena".into()))
    );
}

#[test]
fn an_hw_table_overrides_fields_of_the_detected_profile() {
    let set = ProfileSet::embedded().unwrap();
    let hw = toml("rx_ring_size = 4096\nrx_mode = \"poll\"\nqueue_policy = 2\nquirks = []");
    let chosen = set.resolve(Some("veth"), Some(&hw), "node.toml").unwrap();
    assert_eq!(chosen.profile.driver, "veth");
    assert_eq!(chosen.profile.rx_ring_size, 4096);
    assert_eq!(chosen.profile.rx_mode, RxMode::Poll);
    assert_eq!(chosen.profile.queue_policy, QueuePolicy::Fixed(2));
    assert!(chosen.profile.quirks.is_empty());
    assert_eq!(
        chosen.profile.tx_ring_size,
        set.get("veth").unwrap().tx_ring_size,
        "fields not named keep the profile's value"
    );
    let mut overridden = chosen.overridden.clone();
    overridden.sort();
    assert_eq!(
        overridden,
        ["queue_policy", "quirks", "rx_mode", "rx_ring_size"]
    );

    // `profile` picks another profile, then the other fields apply on top.
    let hw = toml("profile = \"mlx5_core\"\nzero_copy = false");
    let chosen = set.resolve(Some("veth"), Some(&hw), "node.toml").unwrap();
    assert_eq!(
        (chosen.profile.driver.as_str(), chosen.profile.zero_copy),
        ("mlx5_core", false)
    );
    assert_eq!(chosen.reason, ProfileReason::Configured);

    // No [hw]: the profile as shipped.
    assert_eq!(
        set.resolve(Some("veth"), None, "node.toml")
            .unwrap()
            .profile,
        *set.get("veth").unwrap()
    );
}

#[test]
fn a_bad_hw_table_names_the_field_and_value() {
    let set = ProfileSet::embedded().unwrap();
    let error = |text: &str| {
        set.resolve(Some("veth"), Some(&toml(text)), "/etc/brindle/node.toml")
            .unwrap_err()
            .to_string()
    };
    assert!(
        error("turbo = 1").starts_with("/etc/brindle/node.toml: field hw.turbo = 1: unknown field"),
        "{}",
        error("turbo = 1")
    );
    assert_eq!(
        error("frame_size = 3000"),
        "/etc/brindle/node.toml: field hw.frame_size = 3000: expected 2048 or 4096"
    );
    assert!(error("profile = \"nic9000\"").starts_with(
        "/etc/brindle/node.toml: field hw.profile = \"nic9000\": expected one of ena, generic"
    ));
    assert!(error("driver = \"ice\"").contains("field hw.driver = \"ice\": the driver is detected"));
    // Cross-field checks run on the result.
    assert_eq!(
        error("batch_size = 128\nrx_ring_size = 64"),
        "/etc/brindle/node.toml: field batch_size = 128: larger than rx_ring_size 64"
    );
    let not_a_table = set
        .resolve(None, Some(&toml::Value::Integer(3)), "node.toml")
        .unwrap_err();
    assert_eq!(
        not_a_table.to_string(),
        "node.toml: field hw = 3: expected a table"
    );
}

// ---------------------------------------------------------------------------------------------
// Detection and checksystem in a namespace of our own
// ---------------------------------------------------------------------------------------------

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {}", args.join(" "));
}

/// A network namespace with a veth pair `v0`/`v1` inside it; removed on drop.
struct VethNamespace {
    name: String,
}

impl VethNamespace {
    fn new(tag: &str) -> VethNamespace {
        let name = format!("brs9-{}-{tag}", std::process::id());
        // A namespace left by a killed run of this test (same pid is unlikely, but cheap to undo).
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", &name]);
        let ns = VethNamespace { name };
        ns.exec_ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
        ns.exec_ip(&["link", "set", "v0", "up"]);
        ns.exec_ip(&["link", "set", "v1", "up"]);
        ns
    }

    fn exec_ip(&self, args: &[&str]) {
        let mut full = vec!["netns", "exec", &self.name, "ip"];
        full.extend_from_slice(args);
        ip(&full);
    }

    /// Runs `f` on a thread that has entered the namespace (setns affects only that thread).
    fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = std::fs::File::open(&path).unwrap();
                // SAFETY: setns on a namespace fd we own; only this thread moves.
                assert_eq!(
                    unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
                    0,
                    "setns {path}"
                );
                f()
            })
            .join()
            .unwrap()
        })
    }

    fn brindlectl(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.name])
            .arg(testkit::workspace_bin("brindlectl"))
            .args(["node", "checksystem"])
            .args(args);
        command.env_remove(hwprofile::PROFILES_ENV);
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap()
    }
}

impl Drop for VethNamespace {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn a_veth_in_a_test_namespace_is_detected_as_veth() {
    let ns = VethNamespace::new("detect");
    let (v0, lo, missing) = ns.run(|| {
        (
            hwprofile::detect_driver("v0"),
            hwprofile::detect_driver("lo"),
            hwprofile::detect_driver("nosuch0"),
        )
    });
    assert_eq!(v0, Some(("veth".to_string(), DriverSource::Ethtool)));
    assert_eq!(lo, None, "loopback has no driver");
    assert_eq!(missing, None);
    let set = ProfileSet::embedded().unwrap();
    assert_eq!(
        set.select(v0.as_ref().map(|(d, _)| d.as_str())).reason,
        ProfileReason::MatchedDriver("veth".into())
    );
    assert_eq!(
        set.select(lo.as_ref().map(|(d, _)| d.as_str()))
            .profile
            .driver,
        "generic"
    );
    // In this namespace v1 is not there under another name, and names that are not interface
    // names never reach the ioctl.
    assert_eq!(ns.run(|| hwprofile::detect_driver("v0/../v1")), None);
}

#[test]
fn checksystem_reports_a_veth_uplink_and_fails_on_an_unmet_requirement() {
    let ns = VethNamespace::new("check");
    ns.exec_ip(&["addr", "add", "10.251.0.1/24", "dev", "v0"]);
    ns.exec_ip(&["route", "add", "default", "via", "10.251.0.2", "dev", "v0"]);

    // The uplink defaults to the default route's interface.
    let run = ns.brindlectl(&[], &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("Interface:        v0 (default route)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Driver:           veth (from ethtool driver info)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Profile:          veth (matched driver veth; embedded)"),
        "{stdout}"
    );
    assert!(stdout.contains("[ok   ] AF_XDP sockets"), "{stdout}");
    assert!(
        stdout.contains("[ok   ] MTU: MTU 1500, limit 1778"),
        "{stdout}"
    );
    assert!(stdout.starts_with("Kernel version:   "), "{stdout}");

    // An MTU above what a 2048-byte frame holds: exit code 1, and the report says why.
    ns.exec_ip(&["link", "set", "v0", "mtu", "3000"]);
    let run = ns.brindlectl(&["--interface", "v0"], &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("[UNMET] MTU: MTU 3000, limit 1778"),
        "{stdout}"
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stderr).trim(),
        "System doesn't meet 1 requirement(s) to run brindle: MTU"
    );

    // node.toml's [hw] raises the frame size: the same MTU now fits.
    let dir = scratch_dir("check");
    let node_toml = dir.join("node.toml");
    std::fs::write(&node_toml, "mode = \"poll\"\n[hw]\nframe_size = 4096\n").unwrap();
    let run = ns.brindlectl(
        &[
            "--interface",
            "v0",
            "--node-config",
            node_toml.to_str().unwrap(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    assert!(
        stdout.contains("overridden by [hw]: frame_size"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[ok   ] MTU: MTU 3000, limit 3504"),
        "{stdout}"
    );

    // An interface that is not there, and the generic fallback for it.
    let run = ns.brindlectl(&["--interface", "nosuch0"], &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stdout.contains("Profile:          generic (fallback: driver not detected; embedded)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[UNMET] uplink: interface \"nosuch0\" does not exist"),
        "{stdout}"
    );

    // A bad profile in $BRINDLE_HW_PROFILES: the error names file, field and value.
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    let veth = shipped_files()
        .into_iter()
        .find(|(n, _)| n == "veth.toml")
        .unwrap()
        .1;
    std::fs::write(
        profiles.join("veth.toml"),
        veth.replace("batch_size = 64", "batch_size = 0"),
    )
    .unwrap();
    let run = ns.brindlectl(
        &["--interface", "v0"],
        &[(hwprofile::PROFILES_ENV, &profiles)],
    );
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&run.stderr).trim(),
        format!(
            "Failed to check the system: {}: field batch_size = 0: expected 1..=256",
            profiles.join("veth.toml").display()
        )
    );
    // A good one replaces the embedded profile, and the report says where it came from.
    std::fs::write(
        profiles.join("veth.toml"),
        veth.replace("frame_size = 2048", "frame_size = 4096"),
    )
    .unwrap();
    let run = ns.brindlectl(
        &["--interface", "v0"],
        &[(hwprofile::PROFILES_ENV, &profiles)],
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "(matched driver veth; {})",
            profiles.join("veth.toml").display()
        )),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
