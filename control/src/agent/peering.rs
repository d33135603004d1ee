//! Who this node peers with, by Calico's rules (what confd renders into BIRD's config).
//!
//! Three sources, in calicoctl's PEER TYPE names:
//! - **node-to-node mesh**: with `nodeToNodeMeshEnabled` (BGPConfiguration `default`), every
//!   other Node;
//! - **global**: a BGPPeer with neither `node` nor `nodeSelector` applies to every node;
//! - **node specific**: a BGPPeer for one `node`, or for the nodes its `nodeSelector` matches.
//!
//! A BGPPeer names its peer by `peerIP` (any router, `asNumber` required) or by `peerSelector`
//! (Calico nodes, with their own addresses and AS numbers). A `peerSelector` peering holds in
//! both directions, as in Calico: a node the `peerSelector` matches also peers with every node
//! the BGPPeer applies to, so that one resource (`nodeSelector: all()`, `peerSelector:
//! route-reflector == 'true'`) wires reflectors and clients alike.
//!
//! Route reflection (RFC 4456): a node with `routeReflectorClusterID` is a reflector; an iBGP
//! peer whose cluster ID differs from ours (clients have none) is its client. A node never
//! peers with itself; one session per address, the most specific source winning (node
//! specific, then global, then mesh).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use super::view::{ClusterView, NodeFacts, PeerFacts};

/// calicoctl's PEER TYPE; the order is precedence (later wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerType {
    Mesh,
    Global,
    NodeSpecific,
}

impl fmt::Display for PeerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PeerType::Mesh => "node-to-node mesh",
            PeerType::Global => "global",
            PeerType::NodeSpecific => "node specific",
        })
    }
}

/// One session this node should have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredPeer {
    pub address: Ipv4Addr,
    pub port: u16,
    pub asn: u32,
    pub peer_type: PeerType,
    /// We reflect routes to this peer (RFC 4456 client).
    pub rr_client: bool,
    /// The Graceful Restart time we advertise to it (`maxRestartTime`,
    /// `nodeMeshMaxRestartTime`; BIRD's 120 s when unset).
    pub restart_time: u16,
}

/// This node's speaker settings that need a restart to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalSpeaker {
    pub asn: u32,
    pub cluster_id: Option<Ipv4Addr>,
    pub listen_port: u16,
}

/// The speaker settings for this node: its Node's AS (else the cluster's), its cluster ID,
/// the cluster's listen port.
pub fn local_speaker(view: &ClusterView) -> LocalSpeaker {
    let bgp = view.bgp();
    let me = view.this_node();
    LocalSpeaker {
        asn: me.and_then(|n| n.as_number).unwrap_or(bgp.as_number),
        cluster_id: me.and_then(|n| n.rr_cluster_id),
        listen_port: bgp.listen_port,
    }
}

/// Every session this node should have, by peer address.
pub fn desired_peers(view: &ClusterView) -> BTreeMap<Ipv4Addr, DesiredPeer> {
    let Some(me) = view.this_node() else {
        // Not registered yet: nothing to peer as.
        return BTreeMap::new();
    };
    let local = local_speaker(view);
    let bgp = view.bgp();
    let node_asn = |n: &NodeFacts| n.as_number.unwrap_or(bgp.as_number);
    let mut peers = Peers {
        me,
        local,
        chosen: BTreeMap::new(),
    };

    if bgp.mesh_enabled {
        for node in view.nodes() {
            let restart_time = bgp.mesh_restart_time;
            peers.offer_node(
                node,
                node_asn(node),
                bgp.listen_port,
                PeerType::Mesh,
                restart_time,
            );
        }
    }
    for resource in view.peers() {
        let peer_type = if resource.node.is_none() && resource.node_selector.is_none() {
            PeerType::Global
        } else {
            PeerType::NodeSpecific
        };
        if applies_to(resource, me) {
            match (&resource.peer_selector, resource.peer_ip) {
                (Some(selector), _) => {
                    for node in view.nodes().filter(|n| selector.matches(&n.labels)) {
                        let restart_time = resource.restart_time;
                        peers.offer_node(
                            node,
                            node_asn(node),
                            bgp.listen_port,
                            peer_type,
                            restart_time,
                        );
                    }
                }
                (None, Some((address, port))) => {
                    let Some(asn) = resource.as_number else {
                        continue;
                    };
                    let cluster_id = view
                        .nodes()
                        .find(|n| n.address == address)
                        .and_then(|n| n.rr_cluster_id);
                    peers.offer(
                        address,
                        asn,
                        port.unwrap_or(::bgp::speaker::BGP_PORT),
                        cluster_id,
                        peer_type,
                        resource.restart_time,
                    );
                }
                (None, None) => {}
            }
        }
        // The other direction of a peerSelector peering.
        if resource
            .peer_selector
            .as_ref()
            .is_some_and(|s| s.matches(&me.labels))
        {
            for node in view.nodes().filter(|n| applies_to(resource, n)) {
                let restart_time = resource.restart_time;
                peers.offer_node(
                    node,
                    node_asn(node),
                    bgp.listen_port,
                    peer_type,
                    restart_time,
                );
            }
        }
    }
    peers.chosen
}

/// Whether a BGPPeer is configured on `node` (its `node`, its `nodeSelector`, or global).
fn applies_to(resource: &PeerFacts, node: &NodeFacts) -> bool {
    match (&resource.node, &resource.node_selector) {
        (Some(name), _) => *name == node.name,
        (None, Some(selector)) => selector.matches(&node.labels),
        (None, None) => true,
    }
}

struct Peers<'a> {
    me: &'a NodeFacts,
    local: LocalSpeaker,
    chosen: BTreeMap<Ipv4Addr, DesiredPeer>,
}

impl Peers<'_> {
    fn offer_node(
        &mut self,
        node: &NodeFacts,
        asn: u32,
        port: u16,
        peer_type: PeerType,
        restart_time: Option<u16>,
    ) {
        self.offer(
            node.address,
            asn,
            port,
            node.rr_cluster_id,
            peer_type,
            restart_time,
        );
    }

    fn offer(
        &mut self,
        address: Ipv4Addr,
        asn: u32,
        port: u16,
        cluster_id: Option<Ipv4Addr>,
        peer_type: PeerType,
        restart_time: Option<u16>,
    ) {
        if address == self.me.address {
            return;
        }
        if self
            .chosen
            .get(&address)
            .is_some_and(|p| p.peer_type >= peer_type)
        {
            return;
        }
        // RFC 4456 section 6: clients are iBGP peers outside our cluster.
        let rr_client = asn == self.local.asn
            && self.local.cluster_id.is_some()
            && cluster_id != self.local.cluster_id;
        self.chosen.insert(
            address,
            DesiredPeer {
                address,
                port,
                asn,
                peer_type,
                rr_client,
                restart_time: restart_time.unwrap_or(::bgp::speaker::DEFAULT_RESTART_TIME),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::fixtures::{bgp_configuration, bgp_peer, node, view_of};
    use resources::{AsNumber, BgpConfigurationSpec, BgpPeerSpec};

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    fn mesh_off() -> datastore::KeyValue {
        bgp_configuration(BgpConfigurationSpec {
            node_to_node_mesh_enabled: Some(false),
            ..Default::default()
        })
    }

    /// (address, type, rr client) of each desired peer, in address order.
    fn summary(peers: &BTreeMap<Ipv4Addr, DesiredPeer>) -> Vec<(String, String, bool)> {
        peers
            .values()
            .map(|p| (p.address.to_string(), p.peer_type.to_string(), p.rr_client))
            .collect()
    }

    fn three_nodes() -> Vec<datastore::KeyValue> {
        vec![
            node(
                "n1",
                "172.16.0.1/24",
                None,
                &[("route-reflector", "true")],
                "224.0.0.1",
            ),
            node("n2", "172.16.0.2/24", None, &[("rack", "a")], ""),
            node("n3", "172.17.0.3/24", Some(65001), &[("rack", "b")], ""),
        ]
    }

    #[test]
    fn the_mesh_is_every_other_node_with_its_as_unless_it_is_off() {
        let peers = desired_peers(&view_of("n2", three_nodes()));
        assert_eq!(peers.len(), 2, "not ourselves: {peers:?}");
        assert_eq!(
            peers[&ip("172.16.0.1")].asn,
            64512,
            "the cluster's AS by default"
        );
        assert_eq!(peers[&ip("172.17.0.3")].asn, 65001, "the Node's own AS");
        assert!(peers
            .values()
            .all(|p| p.peer_type == PeerType::Mesh && p.port == 179 && !p.rr_client));

        let mut off = three_nodes();
        off.push(mesh_off());
        assert!(
            desired_peers(&view_of("n2", off)).is_empty(),
            "nodeToNodeMeshEnabled: false"
        );
    }

    #[test]
    fn listen_port_applies_to_node_peers_and_peer_ip_ports_to_their_peers() {
        let mut records = three_nodes();
        records.push(bgp_configuration(BgpConfigurationSpec {
            listen_port: Some(1790),
            ..Default::default()
        }));
        records.push(bgp_peer(
            "tor",
            BgpPeerSpec {
                peer_ip: "10.0.0.254:1179".into(),
                as_number: Some(AsNumber::new(65100)),
                ..Default::default()
            },
        ));
        records.push(bgp_peer(
            "tor2",
            BgpPeerSpec {
                peer_ip: "10.0.0.253".into(),
                as_number: Some(AsNumber::new(65100)),
                ..Default::default()
            },
        ));
        let view = view_of("n2", records);
        assert_eq!(local_speaker(&view).listen_port, 1790);
        let peers = desired_peers(&view);
        assert_eq!(
            peers[&ip("172.16.0.1")].port,
            1790,
            "other nodes listen where we do"
        );
        assert_eq!(peers[&ip("10.0.0.254")].port, 1179, "peerIP ip:port");
        assert_eq!(peers[&ip("10.0.0.253")].port, 179, "peerIP without a port");
        assert_eq!(peers[&ip("10.0.0.254")].asn, 65100);
        assert_eq!(peers[&ip("10.0.0.254")].peer_type, PeerType::Global);
    }

    #[test]
    fn restart_times_come_from_max_restart_time_fields_else_birds_default() {
        let mut records = three_nodes();
        records.push(bgp_peer(
            "tor",
            BgpPeerSpec {
                peer_ip: "10.0.0.254".into(),
                as_number: Some(AsNumber::new(65100)),
                max_restart_time: Some("2m5s".into()),
                ..Default::default()
            },
        ));
        records.push(bgp_peer(
            "far",
            BgpPeerSpec {
                peer_ip: "10.0.0.253".into(),
                as_number: Some(AsNumber::new(65100)),
                max_restart_time: Some("3h".into()),
                ..Default::default()
            },
        ));
        let peers = desired_peers(&view_of("n2", records.clone()));
        assert_eq!(peers[&ip("10.0.0.254")].restart_time, 125);
        assert_eq!(
            peers[&ip("10.0.0.253")].restart_time,
            4095,
            "capped to the capability's 12 bits"
        );
        assert_eq!(peers[&ip("172.16.0.1")].restart_time, 120, "BIRD's default");

        records.push(bgp_configuration(BgpConfigurationSpec {
            node_mesh_max_restart_time: Some("90s".into()),
            ..Default::default()
        }));
        let peers = desired_peers(&view_of("n2", records));
        assert_eq!(peers[&ip("172.16.0.1")].restart_time, 90, "mesh peers");
        assert_eq!(peers[&ip("10.0.0.254")].restart_time, 125, "its own");
    }

    #[test]
    fn node_and_node_selector_peers_apply_only_to_their_nodes() {
        let mut records = three_nodes();
        records.push(mesh_off());
        records.push(bgp_peer(
            "for-n2",
            BgpPeerSpec {
                node: "n2".into(),
                peer_ip: "10.0.0.1".into(),
                as_number: Some(AsNumber::new(65100)),
                ..Default::default()
            },
        ));
        records.push(bgp_peer(
            "rack-b",
            BgpPeerSpec {
                node_selector: Some("rack == 'b'".into()),
                peer_ip: "10.0.0.2".into(),
                as_number: Some(AsNumber::new(65200)),
                ..Default::default()
            },
        ));
        let n2 = desired_peers(&view_of("n2", records.clone()));
        assert_eq!(
            summary(&n2),
            [("10.0.0.1".into(), "node specific".into(), false)]
        );
        let n3 = desired_peers(&view_of("n3", records.clone()));
        assert_eq!(
            summary(&n3),
            [("10.0.0.2".into(), "node specific".into(), false)]
        );
        assert!(desired_peers(&view_of("n1", records)).is_empty());
    }

    #[test]
    fn a_peer_selector_wires_reflectors_and_clients_in_both_directions() {
        // Calico's route reflector recipe: mesh off, one BGPPeer from every node to the
        // nodes labelled as reflectors.
        let mut records = three_nodes();
        records.push(mesh_off());
        records.push(bgp_peer(
            "peer-with-route-reflectors",
            BgpPeerSpec {
                node_selector: Some("all()".into()),
                peer_selector: Some("route-reflector == 'true'".into()),
                ..Default::default()
            },
        ));
        let reflector = view_of("n1", records.clone());
        assert_eq!(local_speaker(&reflector).cluster_id, Some(ip("224.0.0.1")));
        let rr = desired_peers(&reflector);
        assert_eq!(
            summary(&rr),
            [
                ("172.16.0.2".into(), "node specific".into(), true),
                ("172.17.0.3".into(), "node specific".into(), false)
            ],
            "n2 is a client; n3 is in another AS (eBGP, never a client)"
        );
        assert_eq!(rr[&ip("172.17.0.3")].asn, 65001);
        let client = desired_peers(&view_of("n2", records.clone()));
        assert_eq!(
            summary(&client),
            [("172.16.0.1".into(), "node specific".into(), false)],
            "only the reflector"
        );
        assert_eq!(local_speaker(&view_of("n2", records)).cluster_id, None);
    }

    #[test]
    fn reflectors_of_one_cluster_are_not_each_others_clients() {
        let records = vec![
            node("r1", "172.16.0.1/24", None, &[("rr", "y")], "224.0.0.1"),
            node("r2", "172.16.0.2/24", None, &[("rr", "y")], "224.0.0.1"),
            node("r3", "172.16.0.3/24", None, &[("rr", "y")], "224.0.0.9"),
            node("c", "172.16.0.4/24", None, &[], ""),
            mesh_off(),
            bgp_peer(
                "to-rr",
                BgpPeerSpec {
                    peer_selector: Some("has(rr)".into()),
                    ..Default::default()
                },
            ),
        ];
        let peers = desired_peers(&view_of("r1", records));
        assert_eq!(
            summary(&peers),
            [
                ("172.16.0.2".into(), "global".into(), false),
                ("172.16.0.3".into(), "global".into(), true),
                ("172.16.0.4".into(), "global".into(), true),
            ],
            "same cluster ID: non-client; other cluster or none: client"
        );
    }

    #[test]
    fn one_session_per_address_the_most_specific_source_winning() {
        let mut records = three_nodes();
        records.push(bgp_peer(
            "n1-again",
            BgpPeerSpec {
                node: "n2".into(),
                peer_ip: "172.16.0.1".into(),
                as_number: Some(AsNumber::new(64512)),
                ..Default::default()
            },
        ));
        let peers = desired_peers(&view_of("n2", records));
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[&ip("172.16.0.1")].peer_type, PeerType::NodeSpecific);
        assert_eq!(peers[&ip("172.17.0.3")].peer_type, PeerType::Mesh);
    }

    #[test]
    fn an_unregistered_node_has_no_peers() {
        assert!(desired_peers(&view_of("n9", three_nodes())).is_empty());
    }
}
