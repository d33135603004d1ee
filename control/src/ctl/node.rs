//! `node status` and `version`.

use std::net::SocketAddr;

use datastore::Datastore;
use resources::Kind;

use super::store::{self, Identity};
use super::CtlError;

/// Where a running brindle-node answers Felix's health checks.
pub const DEFAULT_HEALTH_ADDR: &str = "127.0.0.1:9099";

/// `node status`: whether a brindle-node runs on this host (its `/liveness` endpoint
/// answers, or its control socket accepts a connection), then the BGP peer tables as the
/// node's speaker reports them (peer address, peer type, state, since, info).
pub fn status(
    health: SocketAddr,
    control_socket: &std::path::Path,
    out: &mut String,
) -> Result<(), CtlError> {
    let by_health = crate::health::get(health, "/liveness").is_ok_and(|(code, _)| code == 200);
    let by_socket = std::os::unix::net::UnixStream::connect(control_socket).is_ok();
    if !(by_health || by_socket) {
        // calicoctl's wording, so that scripts that grep for it keep working.
        return Err(CtlError::new("Calico process is not running."));
    }
    out.push_str("Calico process is running.\n\n");
    // The peer table comes from the node's control socket (`bgp_peers` in its stats).
    let peers = crate::stats::fetch(control_socket)
        .ok()
        .and_then(|stats| stats.get("bgp_peers").and_then(|p| p.as_array()).cloned())
        .unwrap_or_default();
    out.push_str("IPv4 BGP status\n");
    if peers.is_empty() {
        out.push_str("No IPv4 peers found.\n\n");
    } else {
        let rows: Vec<Vec<String>> = peers.iter().map(peer_row).collect();
        out.push_str(&super::table::boxed(&["PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"], &rows));
        out.push('\n');
    }
    out.push_str("IPv6 BGP status\nNo IPv6 peers found.\n\n");
    Ok(())
}

/// One row of calicoctl's peer table: STATE is BIRD's protocol state (`up` once the session is
/// Established, else `start`), SINCE the time of day the state began (UTC), INFO
/// `Established` or the FSM state and the last error.
fn peer_row(peer: &serde_json::Value) -> Vec<String> {
    let text = |k: &str| peer.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let state = if text("state") == "Established" { "up" } else { "start" };
    let since = peer
        .get("since")
        .and_then(|v| v.as_u64())
        .map(|secs| resources::meta::rfc3339_utc(secs)[11..19].to_owned())
        .unwrap_or_default();
    vec![text("address"), text("type"), state.to_owned(), since, text("info")]
}

/// `version`: this client's version, and the cluster's from ClusterInformation `default`.
pub fn version(ds: Result<&dyn Datastore, CtlError>, out: &mut String) -> Result<(), CtlError> {
    out.push_str(&format!(
        "Client Version:    v{}\n",
        env!("CARGO_PKG_VERSION")
    ));
    let ds =
        ds.map_err(|e| CtlError::new(format!("Unable to retrieve Cluster Version or Type: {e}")))?;
    let info = store::get(
        ds,
        &Identity::new(Kind::ClusterInformation, None, "default"),
    )
    .map_err(|e| CtlError::new(format!("Unable to retrieve Cluster Version or Type: {e}")))?;
    let spec = info
        .as_ref()
        .and_then(|r| r.as_cluster_information())
        .map(|c| c.spec.clone())
        .unwrap_or_default();
    let nonempty = |v: Option<String>| {
        v.filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    };
    out.push_str(&format!(
        "Cluster Version:   {}\n",
        nonempty(spec.calico_version)
    ));
    out.push_str(&format!(
        "Cluster Type:      {}\n",
        nonempty(spec.cluster_type)
    ));
    Ok(())
}
