//! The node's BGP on our own speaker (`bgp::speaker`): Calico's node-to-node mesh, BGPPeers
//! (global, node specific, by selector), route reflection.
//!
//! The speaker runs on a small tokio runtime of its own; the agent thread talks to it through
//! the speaker handle's non-blocking calls. From the cluster view [`NodeBgp`] takes the
//! sessions to run ([`peering::desired_peers`]) and the prefixes to originate (this node's
//! affine IPAM blocks, and /32s for its workloads' addresses borrowed from other nodes'
//! blocks); from the speaker it takes the best routes learned, which become the dataplane's
//! remote routes with the encapsulation the covering pool asks for.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use bgp::fsm::State;
use bgp::rib::FibChange;
use bgp::speaker::{PeerSpec, Speaker, SpeakerConfig, SpeakerHandle};
use resources::EncapMode;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use super::peering::{self, DesiredPeer, LocalSpeaker, PeerType};
use super::view::ClusterView;
use crate::config::{RouteConfig, RouteEncap};
use crate::host::Ipv4Prefix;

/// How long a restart waits for the old speaker to close its listening socket.
const RESTART_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum BgpError {
    #[error("bgp runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Speaker(#[from] bgp::speaker::SpeakerError),
    #[error("{MAX_PREFIXES_ENV}={0:?}: expected a number of prefixes (0: no limit)")]
    MaxPrefixes(String),
}

/// The most prefixes each peer may have the node hold (RFC 4486 section 4): one more closes
/// the session with Cease / Maximum Number of Prefixes Reached and the peer rests two minutes
/// before it is taken back. Calico's BGPPeer has no field for it, so it is a node setting.
pub const MAX_PREFIXES_ENV: &str = "BRINDLE_BGP_MAX_PREFIXES";

/// [`MAX_PREFIXES_ENV`] as read by `get`: unset, the speaker's default; `0`, no limit.
pub fn max_prefixes(get: impl Fn(&str) -> Option<String>) -> Result<Option<u32>, BgpError> {
    match get(MAX_PREFIXES_ENV) {
        None => Ok(Some(bgp::speaker::DEFAULT_MAX_PREFIXES)),
        Some(v) => match v.trim().parse::<u32>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(BgpError::MaxPrefixes(v)),
        },
    }
}

/// The peer table as the stats server reads it, on its own thread: the running speaker (it
/// changes when the node's AS, cluster ID or listen port does) and each peer's type.
#[derive(Clone, Default)]
pub struct BgpStatus(Arc<Mutex<StatusSource>>);

#[derive(Default)]
struct StatusSource {
    speaker: Option<SpeakerHandle>,
    types: BTreeMap<Ipv4Addr, PeerType>,
}

impl BgpStatus {
    /// The peer table for the stats JSON (`bgp_peers`), sorted by address.
    pub fn json(&self) -> Value {
        let source = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(speaker) = &source.speaker else {
            return Value::Array(Vec::new());
        };
        status_json(speaker, &source.types)
    }

    fn set(&self, speaker: Option<SpeakerHandle>, types: BTreeMap<Ipv4Addr, PeerType>) {
        let mut source = self.0.lock().unwrap_or_else(|e| e.into_inner());
        source.speaker = speaker;
        source.types = types;
    }
}

/// The running speaker and what the node has told it.
pub struct NodeBgp {
    runtime: tokio::runtime::Runtime,
    speaker: SpeakerHandle,
    fib: UnboundedReceiver<FibChange>,
    /// The settings the speaker was started with.
    local: LocalSpeaker,
    /// This node's address and subnet: next hops outside it are "cross subnet".
    address: Ipv4Addr,
    subnet: Ipv4Prefix,
    peers: BTreeMap<Ipv4Addr, DesiredPeer>,
    originated: BTreeSet<Ipv4Prefix>,
    /// Best routes learned: prefix -> BGP next hop.
    learned: BTreeMap<Ipv4Prefix, Ipv4Addr>,
    status: BgpStatus,
    /// Every peer's [`PeerSpec::max_prefixes`] ([`MAX_PREFIXES_ENV`]).
    max_prefixes: Option<u32>,
}

impl NodeBgp {
    /// Starts the speaker (router id = the node address) on every address, at the cluster's
    /// listen port (179 unless BGPConfiguration `default` says otherwise), as calico-node's
    /// BIRD does; then peers and originates as the view says.
    pub fn start(view: &ClusterView, address: (Ipv4Addr, u8)) -> Result<NodeBgp, BgpError> {
        let max_prefixes = max_prefixes(|name| std::env::var(name).ok())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bgp")
            .enable_all()
            .build()
            .map_err(BgpError::Runtime)?;
        let local = peering::local_speaker(view);
        let (speaker, fib) = start_speaker(&runtime, local, address.0, Started::Process)?;
        let mut node = NodeBgp {
            runtime,
            speaker,
            fib,
            local,
            address: address.0,
            subnet: subnet_of(address.0, address.1),
            peers: BTreeMap::new(),
            originated: BTreeSet::new(),
            learned: BTreeMap::new(),
            status: BgpStatus::default(),
            max_prefixes,
        };
        node.sync(view);
        Ok(node)
    }

    /// Brings the speaker, its sessions and the originated prefixes in line with the view.
    pub fn sync(&mut self, view: &ClusterView) {
        let local = peering::local_speaker(view);
        if local != self.local {
            self.restart(local);
            if local != self.local {
                return;
            }
        }
        let wanted = peering::desired_peers(view);
        for (address, peer) in &self.peers {
            if wanted.get(address) != Some(peer) {
                tracing::info!(%address, "removing BGP peer");
                let _ = self.speaker.remove_peer(*address);
            }
        }
        for (address, peer) in &wanted {
            if self.peers.get(address) != Some(peer) {
                tracing::info!(%address, asn = peer.asn, port = peer.port, peer_type = %peer.peer_type, rr_client = peer.rr_client, "adding BGP peer");
                let spec = PeerSpec {
                    rr_client: peer.rr_client,
                    port: peer.port,
                    restart_time: Some(peer.restart_time),
                    max_prefixes: self.max_prefixes,
                    ..PeerSpec::new(*address, peer.asn)
                };
                if let Err(e) = self.speaker.add_peer(spec) {
                    tracing::warn!(%address, error = %e, "cannot add BGP peer");
                }
            }
        }
        self.peers = wanted;
        self.publish_status();

        let prefixes = originated_prefixes(view);
        for gone in self.originated.difference(&prefixes) {
            tracing::info!(prefix = %gone, "withdrawing");
            let _ = self.speaker.withdraw(*gone);
        }
        for new in prefixes.difference(&self.originated) {
            tracing::info!(prefix = %new, "originating");
            let _ = self.speaker.originate(*new);
        }
        self.originated = prefixes;
    }

    /// A new speaker with new settings: sessions and learned routes start over. On failure
    /// the old settings stay recorded, so that the next sync tries again.
    fn restart(&mut self, local: LocalSpeaker) {
        tracing::info!(asn = local.asn, cluster_id = ?local.cluster_id, port = local.listen_port, "BGP settings changed; restarting the speaker");
        self.speaker.shutdown();
        self.peers.clear();
        self.originated.clear();
        self.learned.clear();
        // The old speaker lets go of its listening socket once its tasks have seen the
        // shutdown: give it a moment.
        let deadline = std::time::Instant::now() + RESTART_WAIT;
        loop {
            match start_speaker(&self.runtime, local, self.address, Started::NewSettings) {
                Ok((speaker, fib)) => {
                    self.speaker = speaker;
                    self.fib = fib;
                    self.local = local;
                    return;
                }
                Err(e) if std::time::Instant::now() >= deadline => {
                    tracing::error!(error = %e, "BGP speaker not restarted; trying again on the next change");
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn publish_status(&self) {
        let types = self.peers.iter().map(|(a, p)| (*a, p.peer_type)).collect();
        self.status.set(Some(self.speaker.clone()), types);
    }

    /// Takes in the best-route changes that have arrived; true if any did.
    pub fn poll(&mut self) -> bool {
        let mut changed = false;
        while let Ok(change) = self.fib.try_recv() {
            changed = true;
            match change.next_hop {
                Some(hop) => self.learned.insert(change.prefix, hop),
                None => self.learned.remove(&change.prefix),
            };
        }
        changed
    }

    /// The learned routes as dataplane routes, encapsulated as their pools ask.
    pub fn routes(&self, view: &ClusterView) -> Vec<RouteConfig> {
        self.learned
            .iter()
            .map(|(prefix, &via)| {
                let prefix = *prefix;
                RouteConfig {
                    prefix,
                    via,
                    encap: encap_for(view, prefix, via, self.subnet),
                }
            })
            .collect()
    }

    /// The peer table, readable from other threads (the stats server).
    pub fn status(&self) -> BgpStatus {
        self.status.clone()
    }

    /// The AS this node speaks as.
    pub fn asn(&self) -> u32 {
        self.local.asn
    }
}

impl Drop for NodeBgp {
    fn drop(&mut self) {
        // The node is stopping, most likely to start again: close the sessions without a
        // NOTIFICATION so that peers keep our routes for the restart time (RFC 4724), as
        // they do for calico-node's BIRD. A node that does not come back is swept by its
        // peers when that time runs out, or at once when it leaves the cluster.
        self.speaker.stop_for_restart();
        self.status.set(None, BTreeMap::new());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Why a speaker is started.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Started {
    /// With the node process, which may be coming back from a restart: the first sessions
    /// say so (Graceful Restart's R bit). Set on every start: the node cannot tell a restart
    /// from a first start, and the bit only tells peers not to wait for our End-of-RIB,
    /// which we send in any case.
    Process,
    /// The BGP settings changed under a running node.
    NewSettings,
}

fn start_speaker(
    runtime: &tokio::runtime::Runtime,
    local: LocalSpeaker,
    router_id: Ipv4Addr,
    started: Started,
) -> Result<(SpeakerHandle, UnboundedReceiver<FibChange>), BgpError> {
    let listen = SocketAddr::from((Ipv4Addr::UNSPECIFIED, local.listen_port));
    let config = SpeakerConfig {
        cluster_id: local.cluster_id,
        restarting: started == Started::Process,
        // The F bit: peers keep our routes until our End-of-RIB instead of dropping them
        // when we reconnect and taking them back a moment later. Either way, packets for
        // our workloads wait for our dataplane, which starts beside the speaker.
        forwarding_preserved: true,
        ..SpeakerConfig::new(local.asn, router_id, listen)
    };
    let speaker = runtime.block_on(Speaker::start(config))?;
    let fib = speaker
        .fib_changes()
        .ok_or(bgp::speaker::SpeakerError::Stopped)?;
    tracing::info!(asn = local.asn, %router_id, %listen, cluster_id = ?local.cluster_id, "BGP speaker started");
    Ok((speaker, fib))
}

/// What this node announces: its affine blocks, and a /32 for each of its workloads' addresses
/// outside them (borrowed from another node's block), as Calico does; and a /32 for each of
/// its workloads' floating IPs (Felix routes them to the workload, BIRD exports that route).
fn originated_prefixes(view: &ClusterView) -> BTreeSet<Ipv4Prefix> {
    let blocks: Vec<Ipv4Prefix> = view.blocks().collect();
    let borrowed = view
        .endpoint_ips()
        .filter(|ip| !blocks.iter().any(|b| b.contains(*ip)))
        .map(Ipv4Prefix::host);
    let floating = view
        .floating_ips()
        .map(|(external, _)| Ipv4Prefix::host(external));
    blocks
        .iter()
        .copied()
        .chain(borrowed)
        .chain(floating)
        .collect()
}

/// The peer table as `brindlectl node status` shows it.
fn status_json(speaker: &SpeakerHandle, types: &BTreeMap<Ipv4Addr, PeerType>) -> Value {
    let mut peers = speaker.status();
    peers.sort_by_key(|p| p.address);
    Value::Array(
        peers
            .iter()
            .map(|p| {
                let info = if p.state == State::Established {
                    "Established".to_owned()
                } else {
                    p.last_error.clone().unwrap_or_else(|| p.state.to_string())
                };
                let peer_type = types.get(&p.address).copied().unwrap_or(PeerType::Mesh);
                json!({
                    "address": p.address.to_string(),
                    "asn": p.asn,
                    "type": peer_type.to_string(),
                    "state": p.state.to_string(),
                    // Seconds since the Unix epoch; null when the session never started.
                    "since": p.since.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs()),
                    "info": info,
                    "routes_received": p.routes_received,
                    // Kept from before the peer restarted, not sent again yet (RFC 4724).
                    "routes_stale": p.routes_stale,
                })
            })
            .collect(),
    )
}

/// The encapsulation of a route to `prefix` via `via`, from the covering pool's ipipMode:
/// Always -> IPIP, CrossSubnet -> IPIP only when `via` is outside this node's subnet, Never
/// (or no pool) -> plain.
pub fn encap_for(
    view: &ClusterView,
    prefix: Ipv4Prefix,
    via: Ipv4Addr,
    subnet: Ipv4Prefix,
) -> RouteEncap {
    let pool = view.pools().find(|p| p.cidr.covers(&prefix));
    match pool.map(|p| p.ipip) {
        Some(EncapMode::Always) => RouteEncap::Ipip,
        Some(EncapMode::CrossSubnet) if !subnet.contains(via) => RouteEncap::Ipip,
        _ => RouteEncap::None,
    }
}

/// The canonical prefix of `ip/len`.
pub fn subnet_of(ip: Ipv4Addr, len: u8) -> Ipv4Prefix {
    // The length is clamped to 32, so `containing` cannot refuse it.
    Ipv4Prefix::containing(ip, len.min(32)).unwrap_or(Ipv4Prefix::host(ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::fixtures::{affinity, endpoint, endpoint_with_nats, node, pool, view_of};

    fn prefix(text: &str) -> Ipv4Prefix {
        text.parse().unwrap()
    }

    #[test]
    fn the_prefix_limit_is_the_speakers_default_unless_set_and_zero_lifts_it() {
        let env = |v: Option<&'static str>| move |_: &str| v.map(str::to_owned);
        assert_eq!(
            max_prefixes(env(None)).unwrap(),
            Some(bgp::speaker::DEFAULT_MAX_PREFIXES)
        );
        assert_eq!(max_prefixes(env(Some("5000"))).unwrap(), Some(5000));
        assert_eq!(max_prefixes(env(Some("0"))).unwrap(), None);
        let e = max_prefixes(env(Some("lots"))).unwrap_err().to_string();
        assert!(
            e.contains("BRINDLE_BGP_MAX_PREFIXES") && e.contains("\"lots\""),
            "{e}"
        );
    }

    #[test]
    fn encapsulation_follows_the_covering_pools_ipip_mode() {
        let v = view_of(
            "n1",
            vec![
                pool("always", "10.1.0.0/16", EncapMode::Always),
                pool("cross", "10.2.0.0/16", EncapMode::CrossSubnet),
                pool("never", "10.3.0.0/16", EncapMode::Never),
            ],
        );
        let subnet = subnet_of("172.16.0.1".parse().unwrap(), 24);
        let same: Ipv4Addr = "172.16.0.2".parse().unwrap();
        let other: Ipv4Addr = "172.17.0.2".parse().unwrap();
        assert_eq!(
            encap_for(&v, prefix("10.1.4.0/26"), same, subnet),
            RouteEncap::Ipip
        );
        assert_eq!(
            encap_for(&v, prefix("10.2.4.0/26"), same, subnet),
            RouteEncap::None,
            "CrossSubnet, same subnet"
        );
        assert_eq!(
            encap_for(&v, prefix("10.2.4.0/26"), other, subnet),
            RouteEncap::Ipip,
            "CrossSubnet, other subnet"
        );
        assert_eq!(
            encap_for(&v, prefix("10.3.4.0/26"), other, subnet),
            RouteEncap::None
        );
        assert_eq!(
            encap_for(&v, prefix("10.9.0.0/26"), other, subnet),
            RouteEncap::None,
            "in no pool: plain"
        );
        assert_eq!(
            encap_for(&v, prefix("10.0.0.0/8"), other, subnet),
            RouteEncap::None,
            "wider than every pool"
        );
    }

    #[test]
    fn a_node_originates_its_blocks_and_its_borrowed_addresses_as_host_routes() {
        let v = view_of(
            "n1",
            vec![
                node("n1", "172.16.0.1/24", None, &[], ""),
                affinity("n1", "10.1.0.0/26"),
                affinity("n2", "10.1.0.64/26"),
                endpoint("n1", "a", "10.1.0.5"),
                // Borrowed from n2's block: announced as a /32 that beats n2's /26.
                endpoint("n1", "b", "10.1.0.70"),
                // Another node's workload: not ours to announce.
                endpoint("n2", "c", "10.1.0.71"),
            ],
        );
        let announced: Vec<String> = originated_prefixes(&v)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(announced, ["10.1.0.0/26", "10.1.0.70/32"]);
    }

    #[test]
    fn a_node_announces_its_workloads_floating_ips_as_host_routes() {
        let v = view_of(
            "n1",
            vec![
                node("n1", "172.16.0.1/24", None, &[], ""),
                affinity("n1", "10.1.0.0/26"),
                endpoint_with_nats("n1", "a", "10.1.0.5", &[("10.1.0.5", "198.51.100.7")]),
                // Another node's floating IP is that node's to announce.
                endpoint_with_nats("n2", "b", "10.1.0.70", &[("10.1.0.70", "198.51.100.8")]),
            ],
        );
        let announced: Vec<String> = originated_prefixes(&v)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(announced, ["10.1.0.0/26", "198.51.100.7/32"]);
    }
}
