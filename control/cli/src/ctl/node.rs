//! `node status` and `node checksystem` (`version` is in `version`, `node diags` in
//! `node_diags`).

use std::net::SocketAddr;

use super::CtlError;

/// Where a running brindle-node answers Felix's health checks.
pub const DEFAULT_HEALTH_ADDR: &str = "127.0.0.1:9099";

/// `node status`: whether a brindle-node runs on this host (the process of `node run`'s pid
/// file lives, its `/liveness` endpoint answers, or its control socket accepts a connection),
/// then the BGP peer tables as the node's speaker reports them (peer address, peer type,
/// state, since, info).
pub fn status(
    health: SocketAddr,
    control_socket: &std::path::Path,
    pid_file: &std::path::Path,
    out: &mut String,
) -> Result<(), CtlError> {
    let running = super::node_run::running_pid(pid_file).is_some()
        || std::os::unix::net::UnixStream::connect(control_socket).is_ok()
        || crate::node_client::get(health, "/liveness").is_ok_and(|(code, _)| code == 200);
    if !running {
        // calicoctl's wording, so that scripts that grep for it keep working.
        return Err(CtlError::new("Calico process is not running."));
    }
    out.push_str("Calico process is running.\n\n");
    // The peer table comes from the node's control socket (`bgp_peers` in its stats).
    let peers = crate::node_client::fetch(control_socket)
        .ok()
        .and_then(|stats| stats.get("bgp_peers").and_then(|p| p.as_array()).cloned())
        .unwrap_or_default();
    out.push_str("IPv4 BGP status\n");
    if peers.is_empty() {
        out.push_str("No IPv4 peers found.\n\n");
    } else {
        let rows: Vec<Vec<String>> = peers.iter().map(peer_row).collect();
        out.push_str(&super::table::boxed(
            &["PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"],
            &rows,
        ));
        out.push('\n');
    }
    out.push_str("IPv6 BGP status\nNo IPv6 peers found.\n\n");
    Ok(())
}

/// One row of calicoctl's peer table: STATE is BIRD's protocol state (`up` once the session is
/// Established, else `start`), SINCE the time of day the state began (UTC), INFO
/// `Established` or the FSM state and the last error.
fn peer_row(peer: &serde_json::Value) -> Vec<String> {
    let text = |k: &str| {
        peer.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let state = if text("state") == "Established" {
        "up"
    } else {
        "start"
    };
    let since = peer
        .get("since")
        .and_then(|v| v.as_u64())
        .map(|secs| resources::meta::rfc3339_utc(secs)[11..19].to_owned())
        .unwrap_or_default();
    vec![
        text("address"),
        text("type"),
        state.to_owned(),
        since,
        text("info"),
    ]
}

/// `node checksystem`: the kernel, the uplink's driver, the NIC profile chosen for it (and
/// why), and every requirement of that profile with whether this host meets it. Fails (exit
/// code 1) when one is unmet, after printing the report.
pub fn checksystem(
    interface: Option<&str>,
    node_config: Option<&std::path::Path>,
    out: &mut String,
) -> Result<(), CtlError> {
    use hwprofile::{KernelFeatures, ProfileSet, Requirement};

    let fail =
        |e: &dyn std::fmt::Display| CtlError::new(format!("Failed to check the system: {e}"));
    let profiles = ProfileSet::load().map_err(|e| fail(&e))?;
    let hw = match node_config {
        None => None,
        Some(path) => node_config_hw(path).map_err(|e| fail(&e))?,
    };
    let kernel = KernelFeatures::detect();
    let (interface, how) = match interface {
        Some(name) => (Some(name.to_owned()), "given"),
        None => (crate::host::default_route_interface(), "default route"),
    };
    let driver = interface.as_deref().and_then(hwprofile::detect_driver);
    let source = node_config.map_or_else(|| "node.toml".to_owned(), |p| p.display().to_string());
    let chosen = profiles
        .resolve(
            driver.as_ref().map(|(d, _)| d.as_str()),
            hw.as_ref(),
            &source,
        )
        .map_err(|e| fail(&e))?;
    let profile = &chosen.profile;

    let version = kernel
        .version
        .map(|v| v.to_string())
        .unwrap_or_else(|| "unknown".into());
    out.push_str(&format!(
        "Kernel version:   {} ({version})\n",
        kernel.release
    ));
    match &interface {
        Some(name) => out.push_str(&format!("Interface:        {name} ({how})\n")),
        None => out.push_str("Interface:        none (no default route; give --interface)\n"),
    }
    match &driver {
        Some((name, found_by)) => {
            out.push_str(&format!("Driver:           {name} (from {found_by})\n"))
        }
        None => out.push_str("Driver:           not detected\n"),
    }
    out.push_str(&format!(
        "Profile:          {} ({}; {})\n",
        profile.driver, chosen.reason, chosen.origin
    ));
    if !chosen.overridden.is_empty() {
        out.push_str(&format!(
            "  overridden by [hw]: {}\n",
            chosen.overridden.join(", ")
        ));
    }
    out.push_str(&format!(
        "  xdp_mode {}, zero_copy {}, queue_policy {}, rings rx {} tx {}, frame {} (+{} headroom), batch {}, rx_mode {}\n",
        profile.xdp_mode,
        profile.zero_copy,
        profile.queue_policy,
        profile.rx_ring_size,
        profile.tx_ring_size,
        profile.frame_size,
        profile.frame_headroom,
        profile.batch_size,
        profile.rx_mode,
    ));
    out.push_str(&format!(
        "  prefer_busy_poll {}, busy_poll_budget {}, napi_defer_hard_irqs {}, gro_flush_timeout_ns {}, max MTU {}\n",
        profile.prefer_busy_poll,
        profile.busy_poll_budget,
        profile.napi_defer_hard_irqs,
        profile.gro_flush_timeout_ns,
        profile.max_mtu(),
    ));
    for quirk in &profile.quirks {
        out.push_str(&format!("  quirk: {quirk}\n"));
    }

    let mut requirements = Vec::new();
    match &interface {
        None => requirements.push(Requirement {
            name: "uplink".into(),
            met: false,
            detail: "no default route and no --interface".into(),
        }),
        Some(name)
            if !std::path::Path::new("/sys/class/net").join(name).exists()
                || name.contains('/') =>
        {
            requirements.push(Requirement {
                name: "uplink".into(),
                met: false,
                detail: format!("interface {name:?} does not exist in this network namespace"),
            })
        }
        Some(_) => {}
    }
    let mtu = interface.as_deref().and_then(hwprofile::interface_mtu);
    requirements.extend(hwprofile::requirements(profile, &kernel, mtu));

    out.push_str("\nRequirements:\n");
    for r in &requirements {
        let mark = if r.met { "ok" } else { "UNMET" };
        out.push_str(&format!("  [{mark:<5}] {}: {}\n", r.name, r.detail));
    }
    let unmet: Vec<&str> = requirements
        .iter()
        .filter(|r| !r.met)
        .map(|r| r.name.as_str())
        .collect();
    if unmet.is_empty() {
        out.push_str("\nSystem meets the requirements to run brindle.\n");
        Ok(())
    } else {
        Err(CtlError::new(format!(
            "System doesn't meet {} requirement(s) to run brindle: {}",
            unmet.len(),
            unmet.join(", ")
        )))
    }
}

/// The `[hw]` table of a node.toml, if it has one. Only that table is read here: the rest of
/// the file is node-agent business and checked when the node starts.
fn node_config_hw(path: &std::path::Path) -> Result<Option<toml::Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("{}: {}", path.display(), e.message()))?;
    Ok(doc.remove("hw"))
}
