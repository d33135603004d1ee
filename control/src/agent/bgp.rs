//! The node's BGP: Calico's node-to-node mesh on our own speaker (`bgp::speaker`).
//!
//! The speaker runs on a small tokio runtime of its own; the agent thread talks to it through
//! the speaker handle's non-blocking calls. From the cluster view the mesh takes the peers
//! (every other Node's `spec.bgp.ipv4Address`, with the mesh enabled in BGPConfiguration
//! `default`) and the prefixes to originate (this node's affine IPAM blocks); from the speaker
//! it takes the best routes learned, which become the dataplane's remote routes with the
//! encapsulation the covering pool asks for.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, UNIX_EPOCH};

use bgp::fsm::State;
use bgp::rib::FibChange;
use bgp::speaker::{PeerSpec, Speaker, SpeakerConfig, SpeakerHandle, BGP_PORT};
use resources::EncapMode;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use super::view::ClusterView;
use crate::config::{RouteConfig, RouteEncap};
use crate::host::Ipv4Prefix;

/// calicoctl's PEER TYPE for mesh peers.
pub const MESH_PEER_TYPE: &str = "node-to-node mesh";

#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    #[error("bgp runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Speaker(#[from] bgp::speaker::SpeakerError),
}

/// The running speaker and what the node has told it.
pub struct Mesh {
    runtime: Option<tokio::runtime::Runtime>,
    speaker: SpeakerHandle,
    fib: UnboundedReceiver<FibChange>,
    asn: u32,
    /// This node's address and subnet: next hops outside it are "cross subnet".
    subnet: Ipv4Prefix,
    peers: BTreeMap<Ipv4Addr, u32>,
    originated: BTreeSet<bgp::packet::Ipv4Prefix>,
    /// Best routes learned: prefix -> BGP next hop.
    learned: BTreeMap<bgp::packet::Ipv4Prefix, Ipv4Addr>,
}

impl Mesh {
    /// Starts the speaker (router id = the node address) listening on `listen`, with the AS
    /// the view gives this node (its Node's `asNumber`, else the cluster's).
    pub fn start(
        view: &ClusterView,
        address: (Ipv4Addr, u8),
        listen: SocketAddr,
    ) -> Result<Mesh, MeshError> {
        let asn = view
            .this_node()
            .and_then(|n| n.as_number)
            .unwrap_or(view.bgp().as_number);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bgp")
            .enable_all()
            .build()
            .map_err(MeshError::Runtime)?;
        let speaker =
            runtime.block_on(Speaker::start(SpeakerConfig::new(asn, address.0, listen)))?;
        let fib = speaker
            .fib_changes()
            .ok_or(bgp::speaker::SpeakerError::Stopped)?;
        tracing::info!(asn, router_id = %address.0, %listen, "BGP speaker started");
        Ok(Mesh {
            runtime: Some(runtime),
            speaker,
            fib,
            asn,
            subnet: subnet_of(address.0, address.1),
            peers: BTreeMap::new(),
            originated: BTreeSet::new(),
            learned: BTreeMap::new(),
        })
    }

    /// Listens on every address, port 179, as calico-node's BIRD does.
    pub fn default_listen() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, BGP_PORT))
    }

    /// Brings the peers and the originated prefixes in line with the view.
    pub fn sync(&mut self, view: &ClusterView) {
        let wanted = mesh_peers(view);
        for (&address, &asn) in &self.peers {
            if wanted.get(&address) != Some(&asn) {
                tracing::info!(%address, "removing BGP mesh peer");
                let _ = self.speaker.remove_peer(address);
            }
        }
        for (&address, &asn) in &wanted {
            if self.peers.get(&address) != Some(&asn) {
                tracing::info!(%address, asn, "adding BGP mesh peer");
                if let Err(e) = self.speaker.add_peer(PeerSpec::new(address, asn)) {
                    tracing::warn!(%address, error = %e, "cannot add BGP peer");
                }
            }
        }
        self.peers = wanted;

        let blocks: BTreeSet<_> = view
            .blocks()
            .filter_map(|b| bgp::packet::Ipv4Prefix::new(b.addr, b.len))
            .collect();
        for gone in self.originated.difference(&blocks) {
            tracing::info!(prefix = %gone, "withdrawing block");
            let _ = self.speaker.withdraw(*gone);
        }
        for new in blocks.difference(&self.originated) {
            tracing::info!(prefix = %new, "originating block");
            let _ = self.speaker.originate(*new);
        }
        self.originated = blocks;
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
                let prefix = Ipv4Prefix {
                    addr: prefix.addr(),
                    len: prefix.len(),
                };
                RouteConfig {
                    prefix,
                    via,
                    encap: encap_for(view, prefix, via, self.subnet),
                }
            })
            .collect()
    }

    /// The peer table for the stats JSON (`bgp_peers`).
    pub fn status_json(&self) -> Value {
        status_json(&self.speaker)
    }

    /// The AS this node speaks as.
    pub fn asn(&self) -> u32 {
        self.asn
    }

    /// A handle for readers on other threads (the stats server).
    pub fn handle(&self) -> SpeakerHandle {
        self.speaker.clone()
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        // Cease to every peer, then give the tasks a moment to send it.
        self.speaker.shutdown();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_millis(500));
        }
    }
}

/// The peer table as `brindlectl node status` shows it: every peer here is a mesh peer.
pub fn status_json(speaker: &SpeakerHandle) -> Value {
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
                json!({
                    "address": p.address.to_string(),
                    "asn": p.asn,
                    "type": MESH_PEER_TYPE,
                    "state": p.state.to_string(),
                    // Seconds since the Unix epoch; null when the session never started.
                    "since": p.since.and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs()),
                    "info": info,
                    "routes_received": p.routes_received,
                })
            })
            .collect(),
    )
}

/// Every other node, by address, with its AS; none when the mesh is off.
fn mesh_peers(view: &ClusterView) -> BTreeMap<Ipv4Addr, u32> {
    let bgp = view.bgp();
    if !bgp.mesh_enabled {
        return BTreeMap::new();
    }
    let me = view.this_node().map(|n| n.name.clone());
    view.nodes()
        .filter(|n| Some(&n.name) != me.as_ref())
        .map(|n| (n.address, n.as_number.unwrap_or(bgp.as_number)))
        .collect()
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
    let pool = view
        .pools()
        .find(|p| p.cidr.len <= prefix.len && p.cidr.contains(prefix.addr));
    match pool.map(|p| p.ipip) {
        Some(EncapMode::Always) => RouteEncap::Ipip,
        Some(EncapMode::CrossSubnet) if !subnet.contains(via) => RouteEncap::Ipip,
        _ => RouteEncap::None,
    }
}

/// The canonical prefix of `ip/len`.
pub fn subnet_of(ip: Ipv4Addr, len: u8) -> Ipv4Prefix {
    let len = len.min(32);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Ipv4Prefix {
        addr: Ipv4Addr::from(u32::from(ip) & mask),
        len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datastore::KeyValue;
    use resources::{AsNumber, IpPoolSpec, Metadata, NodeBgpSpec, NodeSpec, Resource};

    fn kv(resource: Resource) -> KeyValue {
        KeyValue {
            key: resource.key(),
            value: resource.to_stored_json(),
            create_revision: 1,
            mod_revision: 1,
        }
    }

    fn pool(name: &str, cidr: &str, ipip: EncapMode) -> KeyValue {
        let spec = IpPoolSpec {
            cidr: cidr.into(),
            ipip_mode: Some(ipip),
            ..IpPoolSpec::default()
        };
        kv(Resource::IpPool(resources::IpPool::new(
            Metadata::named(name),
            spec,
        )))
    }

    fn node(name: &str, address: &str, asn: Option<u32>) -> KeyValue {
        let bgp = NodeBgpSpec {
            ipv4_address: address.into(),
            as_number: asn.map(AsNumber::new),
            ..NodeBgpSpec::default()
        };
        kv(Resource::Node(resources::Node::new(
            Metadata::named(name),
            NodeSpec {
                bgp: Some(bgp),
                ..NodeSpec::default()
            },
        )))
    }

    fn prefix(text: &str) -> Ipv4Prefix {
        text.parse().unwrap()
    }

    fn view(listing: Vec<KeyValue>) -> ClusterView {
        let mut view = ClusterView::new("n1");
        view.reset(listing);
        view
    }

    #[test]
    fn encapsulation_follows_the_covering_pools_ipip_mode() {
        let v = view(vec![
            pool("always", "10.1.0.0/16", EncapMode::Always),
            pool("cross", "10.2.0.0/16", EncapMode::CrossSubnet),
            pool("never", "10.3.0.0/16", EncapMode::Never),
        ]);
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
    fn mesh_peers_are_the_other_nodes_with_their_as_unless_the_mesh_is_off() {
        let mut listing = vec![
            node("n1", "172.16.0.1/24", None),
            node("n2", "172.16.0.2/24", None),
            node("n3", "172.16.0.3/24", Some(65001)),
        ];
        let peers = mesh_peers(&view(listing.clone()));
        let expected: BTreeMap<Ipv4Addr, u32> = [
            ("172.16.0.2".parse().unwrap(), 64512),
            ("172.16.0.3".parse().unwrap(), 65001),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            peers, expected,
            "not ourselves; the default AS unless the Node overrides it"
        );

        let off = resources::BgpConfigurationSpec {
            node_to_node_mesh_enabled: Some(false),
            ..Default::default()
        };
        listing.push(kv(Resource::BgpConfiguration(
            resources::BgpConfiguration::new(Metadata::named("default"), off),
        )));
        assert!(
            mesh_peers(&view(listing)).is_empty(),
            "nodeToNodeMeshEnabled: false"
        );
    }
}
