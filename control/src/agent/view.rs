//! What the node agent knows of the cluster: the IP pools, this node's workload endpoints and
//! the IPAM blocks affine to this node, kept up to date from datastore events, and the
//! dataplane state they imply.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use datastore::{keys, KeyValue, WatchEvent};
use fastpath::qos::QosLimits;
use resources::Resource;
use selector::Selector;

use super::taps::TapEntry;
use crate::config::WorkloadConfig;
use crate::dataplane::DesiredState;
use crate::host::Ipv4Prefix;

/// A pool as the dataplane needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolFacts {
    pub cidr: Ipv4Prefix,
    pub disabled: bool,
    pub ipip: resources::EncapMode,
    pub nat_outgoing: bool,
}

/// A node of the cluster as BGP needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    /// Node `spec.bgp.ipv4Address` without its prefix length.
    pub address: Ipv4Addr,
    /// Node `spec.bgp.asNumber`, when the node overrides the cluster's.
    pub as_number: Option<u32>,
    /// Node `spec.bgp.routeReflectorClusterID`: set when the node is a route reflector.
    pub rr_cluster_id: Option<Ipv4Addr>,
    /// The Node's labels, for BGPPeer `nodeSelector` and `peerSelector`.
    pub labels: BTreeMap<String, String>,
}

/// BGPConfiguration `default` as BGP needs it (Calico's defaults when absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BgpFacts {
    pub as_number: u32,
    pub mesh_enabled: bool,
    /// `listenPort`: where every node's speaker listens, so also where mesh and selector
    /// peers are reached.
    pub listen_port: u16,
    /// `nodeMeshMaxRestartTime`: the Graceful Restart time of mesh sessions (seconds).
    pub mesh_restart_time: Option<u16>,
}

impl Default for BgpFacts {
    fn default() -> Self {
        BgpFacts {
            as_number: resources::BgpConfigurationSpec::default().as_number_or_default(),
            mesh_enabled: true,
            listen_port: ::bgp::speaker::BGP_PORT,
            mesh_restart_time: None,
        }
    }
}

/// A BGPPeer resource, its selectors parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerFacts {
    pub name: String,
    /// `spec.node`: this peering is for that node only.
    pub node: Option<String>,
    pub node_selector: Option<Selector>,
    /// Other Calico nodes as peers, chosen by their labels.
    pub peer_selector: Option<Selector>,
    /// `spec.peerIP`, with its port when given as `ip:port`.
    pub peer_ip: Option<(Ipv4Addr, Option<u16>)>,
    pub as_number: Option<u32>,
    /// `spec.maxRestartTime`: the Graceful Restart time of its sessions (seconds).
    pub restart_time: Option<u16>,
}

/// A workload endpoint of this node as the dataplane needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointFacts {
    pub interface: String,
    pub ips: Vec<Ipv4Addr>,
    /// `spec.containerID`: whose TAP registration applies to it.
    pub container_id: String,
    /// `spec.ipNATs` (IPv4, to one of `ips`): (external, internal) floating IPs.
    pub floating: Vec<(Ipv4Addr, Ipv4Addr)>,
    /// `spec.qosControls`: the rate limits the vRouter enforces.
    pub qos: QosLimits,
}

/// The datastore prefixes the agent lists and watches.
pub fn watched_prefixes(node: &str) -> [String; 6] {
    [
        keys::resource_prefix("ippools", None),
        keys::resource_prefix("workloadendpoints", None),
        keys::ipam_affinity_prefix(node),
        keys::resource_prefix("nodes", None),
        keys::resource_prefix("bgpconfigurations", None),
        keys::resource_prefix("bgppeers", None),
    ]
}

#[derive(Debug, Default)]
pub struct ClusterView {
    node: String,
    pools: BTreeMap<String, PoolFacts>,
    endpoints: BTreeMap<String, EndpointFacts>,
    blocks: BTreeMap<String, Ipv4Prefix>,
    /// Every Node, this one included, by key.
    nodes: BTreeMap<String, NodeFacts>,
    /// BGPConfiguration `default`, when it exists.
    bgp: BTreeMap<String, BgpFacts>,
    /// Every BGPPeer, by key.
    peers: BTreeMap<String, PeerFacts>,
}

impl ClusterView {
    pub fn new(node: &str) -> ClusterView {
        ClusterView {
            node: node.to_owned(),
            ..ClusterView::default()
        }
    }

    /// Replaces everything with a full listing (a resync).
    pub fn reset(&mut self, listing: impl IntoIterator<Item = KeyValue>) {
        self.pools.clear();
        self.endpoints.clear();
        self.blocks.clear();
        self.nodes.clear();
        self.bgp.clear();
        self.peers.clear();
        for kv in listing {
            self.put(&kv);
        }
    }

    /// Applies one watch event; true if the view changed. Compacted/Disconnected are the
    /// caller's business (it resyncs).
    pub fn apply(&mut self, event: &WatchEvent) -> bool {
        match event {
            WatchEvent::Put(kv) => self.put(kv),
            WatchEvent::Delete { key, .. } => {
                self.pools.remove(key).is_some()
                    | self.endpoints.remove(key).is_some()
                    | self.blocks.remove(key).is_some()
                    | self.nodes.remove(key).is_some()
                    | self.bgp.remove(key).is_some()
                    | self.peers.remove(key).is_some()
            }
            WatchEvent::Compacted { .. } | WatchEvent::Disconnected { .. } => false,
        }
    }

    fn put(&mut self, kv: &KeyValue) -> bool {
        let [pools, endpoints, affinities, nodes, bgp, peers] = watched_prefixes(&self.node);
        if kv.key.starts_with(&pools) {
            let facts = pool_facts(kv);
            return replace(&mut self.pools, &kv.key, facts);
        }
        if kv.key.starts_with(&endpoints) {
            let facts = endpoint_facts(kv, &self.node);
            return replace(&mut self.endpoints, &kv.key, facts);
        }
        if let Some(block) = kv.key.strip_prefix(&affinities) {
            // The key names the block: a.b.c.d-NN.
            let facts = block.replacen('-', "/", 1).parse::<Ipv4Prefix>().ok();
            return replace(&mut self.blocks, &kv.key, facts);
        }
        if kv.key.starts_with(&nodes) {
            return replace(&mut self.nodes, &kv.key, node_facts(kv));
        }
        if kv.key.starts_with(&bgp) {
            // Only the cluster-wide `default` matters here; per-node configurations are not
            // supported yet.
            let facts = if kv.key == keys::resource("bgpconfigurations", None, "default") {
                bgp_facts(kv)
            } else {
                None
            };
            return replace(&mut self.bgp, &kv.key, facts);
        }
        if kv.key.starts_with(&peers) {
            return replace(&mut self.peers, &kv.key, peer_facts(kv));
        }
        false
    }

    /// The cluster's BGP settings (BGPConfiguration `default`, or Calico's defaults).
    pub fn bgp(&self) -> BgpFacts {
        self.bgp.values().next().copied().unwrap_or_default()
    }

    /// Every node of the cluster, this one included.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeFacts> {
        self.nodes.values()
    }

    /// Every BGPPeer.
    pub fn peers(&self) -> impl Iterator<Item = &PeerFacts> {
        self.peers.values()
    }

    /// The addresses of this node's workloads.
    pub fn endpoint_ips(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.endpoints.values().flat_map(|e| e.ips.iter().copied())
    }

    /// This node's workloads' floating IPs: (external, internal).
    pub fn floating_ips(&self) -> impl Iterator<Item = (Ipv4Addr, Ipv4Addr)> + '_ {
        self.endpoints
            .values()
            .flat_map(|e| e.floating.iter().copied())
    }

    /// The node this view belongs to, once registered.
    pub fn this_node(&self) -> Option<&NodeFacts> {
        self.nodes.values().find(|n| n.name == self.node)
    }

    /// The IPAM blocks affine to this node.
    pub fn blocks(&self) -> impl Iterator<Item = Ipv4Prefix> + '_ {
        self.blocks.values().copied()
    }

    /// The enabled pools.
    pub fn pools(&self) -> impl Iterator<Item = &PoolFacts> {
        self.pools.values().filter(|p| !p.disabled)
    }

    pub fn endpoint_count(&self) -> usize {
        self.endpoints.len()
    }

    /// (interface name, container id) of each of this node's endpoints.
    pub fn endpoint_ids(&self) -> impl Iterator<Item = (&str, &str)> {
        self.endpoints
            .values()
            .map(|e| (e.interface.as_str(), e.container_id.as_str()))
    }

    /// The dataplane state for this view, with the TAP registrations `taps` (by interface
    /// name): a workload registered by its endpoint's container has its TAP; one whose
    /// registration cannot be read is not ready and gets no port; any other is a veth.
    pub fn desired(&self, uplink: Option<&str>, taps: &BTreeMap<String, TapEntry>) -> DesiredState {
        let mut workloads: Vec<WorkloadConfig> = self
            .endpoints
            .values()
            .filter_map(|e| {
                let tap = match taps.get(&e.interface) {
                    None => None,
                    // A registration is for the endpoint of the container that wrote it;
                    // another's (left by a container gone without DEL) says nothing of this
                    // one. An endpoint naming no container takes what is there.
                    Some(TapEntry::Registered { tap, container_id })
                        if e.container_id.is_empty() || *container_id == e.container_id =>
                    {
                        Some(tap.clone())
                    }
                    Some(TapEntry::Registered { .. }) => None,
                    Some(TapEntry::Unreadable(_)) => return None,
                };
                Some(WorkloadConfig {
                    interface: e.interface.clone(),
                    ips: e.ips.clone(),
                    tap,
                    qos: e.qos,
                })
            })
            .collect();
        workloads.sort_by(|a, b| a.interface.cmp(&b.interface));
        workloads.dedup_by(|a, b| a.interface == b.interface);
        DesiredState {
            workloads,
            uplink: uplink.map(str::to_owned),
            pools: self
                .pools
                .values()
                .filter(|p| !p.disabled)
                .map(|p| p.cidr)
                .collect(),
            nat_pools: self
                .pools
                .values()
                .filter(|p| !p.disabled && p.nat_outgoing)
                .map(|p| p.cidr)
                .collect(),
            routes: Vec::new(),
            blackholes: self.blocks.values().copied().collect(),
            floating_ips: self.floating_ips().collect(),
            ..DesiredState::default()
        }
    }
}

/// Inserts or removes `key` so that the map holds `facts`; true if that changed anything.
fn replace<T: PartialEq>(map: &mut BTreeMap<String, T>, key: &str, facts: Option<T>) -> bool {
    match facts {
        Some(f) if map.get(key) == Some(&f) => false,
        Some(f) => {
            map.insert(key.to_owned(), f);
            true
        }
        None => map.remove(key).is_some(),
    }
}

fn pool_facts(kv: &KeyValue) -> Option<PoolFacts> {
    let Ok(Resource::IpPool(pool)) = Resource::from_kv(kv) else {
        tracing::warn!(key = %kv.key, "ignoring an IPPool that does not decode");
        return None;
    };
    // IPv6 pools are not forwarded yet; they simply do not appear.
    let cidr = pool.spec.cidr.parse().ok()?;
    Some(PoolFacts {
        cidr,
        disabled: pool.spec.disabled.unwrap_or(false),
        ipip: pool.spec.ipip(),
        nat_outgoing: pool.spec.nat_outgoing(),
    })
}

fn node_facts(kv: &KeyValue) -> Option<NodeFacts> {
    let Ok(Resource::Node(node)) = Resource::from_kv(kv) else {
        tracing::warn!(key = %kv.key, "ignoring a Node that does not decode");
        return None;
    };
    let bgp = node.spec.bgp.as_ref()?;
    // `10.0.0.5/24`: the address is what peers connect to.
    let address = bgp.ipv4_address.split('/').next()?.parse().ok()?;
    let as_number = bgp.as_number.as_ref().and_then(|a| a.value().ok());
    let rr_cluster_id = match bgp.route_reflector_cluster_id.as_str() {
        "" => None,
        id => match id.parse() {
            Ok(id) => Some(id),
            Err(_) => {
                tracing::warn!(node = %node.metadata.name, routeReflectorClusterID = id, "not an IPv4 address; the node is not a route reflector");
                None
            }
        },
    };
    Some(NodeFacts {
        name: node.metadata.name.clone(),
        address,
        as_number,
        rr_cluster_id,
        labels: node.metadata.labels.clone(),
    })
}

/// A BGPPeer, or None (logged) when it cannot be used: brindlectl validates what it writes,
/// but anything can be in the datastore.
fn peer_facts(kv: &KeyValue) -> Option<PeerFacts> {
    let Ok(Resource::BgpPeer(peer)) = Resource::from_kv(kv) else {
        tracing::warn!(key = %kv.key, "ignoring a BGPPeer that does not decode");
        return None;
    };
    let name = peer.metadata.name.clone();
    let parse = |field: &str, text: &Option<String>| -> Result<Option<Selector>, ()> {
        match text.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => Selector::parse(text).map(Some).map_err(|e| {
                tracing::warn!(bgppeer = %name, field, selector = text, error = %e, "ignoring the BGPPeer");
            }),
        }
    };
    let node_selector = parse("spec.nodeSelector", &peer.spec.node_selector).ok()?;
    let peer_selector = parse("spec.peerSelector", &peer.spec.peer_selector).ok()?;
    let peer_ip = match peer.spec.peer_address() {
        Some((std::net::IpAddr::V4(ip), port)) => Some((ip, port)),
        Some(_) => {
            tracing::info!(bgppeer = %name, "IPv6 peers are not supported yet; ignoring the BGPPeer");
            return None;
        }
        None if peer_selector.is_some() => None,
        None => {
            tracing::warn!(bgppeer = %name, peerIP = %peer.spec.peer_ip, "ignoring the BGPPeer: no usable peerIP");
            return None;
        }
    };
    Some(PeerFacts {
        name: name.clone(),
        node: Some(peer.spec.node.clone()).filter(|n| !n.is_empty()),
        node_selector,
        peer_selector,
        peer_ip,
        as_number: peer.spec.as_number.as_ref().and_then(|a| a.value().ok()),
        restart_time: restart_time_of(&name, "spec.maxRestartTime", &peer.spec.max_restart_time),
    })
}

fn bgp_facts(kv: &KeyValue) -> Option<BgpFacts> {
    let Ok(Resource::BgpConfiguration(config)) = Resource::from_kv(kv) else {
        tracing::warn!(key = %kv.key, "ignoring a BGPConfiguration that does not decode");
        return None;
    };
    let listen_port = config
        .spec
        .listen_port
        .and_then(|p| u16::try_from(p).ok())
        .filter(|&p| p != 0);
    Some(BgpFacts {
        as_number: config.spec.as_number_or_default(),
        mesh_enabled: config.spec.mesh_enabled(),
        listen_port: listen_port.unwrap_or(::bgp::speaker::BGP_PORT),
        mesh_restart_time: restart_time_of(
            &config.metadata.name,
            "spec.nodeMeshMaxRestartTime",
            &config.spec.node_mesh_max_restart_time,
        ),
    })
}

/// A Graceful Restart time (a Go duration, as Calico writes it) in whole seconds, within
/// what the capability's 12-bit field carries (RFC 4724 section 3); a value past it is
/// capped, said in the log. `None`: not set (or unreadable, logged), so BIRD's 120 s.
fn restart_time_of(resource: &str, field: &str, value: &Option<String>) -> Option<u16> {
    let text = value.as_deref()?;
    let Some(secs) = resources::validate::parse_go_duration(text).filter(|s| *s >= 0.0) else {
        tracing::warn!(
            resource,
            field,
            value = text,
            "not a duration; using the default restart time"
        );
        return None;
    };
    let max = ::bgp::fsm::MAX_RESTART_TIME;
    if secs > f64::from(max) {
        tracing::warn!(
            resource,
            field,
            value = text,
            max,
            "longer than Graceful Restart can say; capped"
        );
    }
    Some(secs.round().min(f64::from(max)) as u16)
}

fn endpoint_facts(kv: &KeyValue, node: &str) -> Option<EndpointFacts> {
    let Ok(Resource::WorkloadEndpoint(wep)) = Resource::from_kv(kv) else {
        tracing::warn!(key = %kv.key, "ignoring a WorkloadEndpoint that does not decode");
        return None;
    };
    if wep.spec.node != node || wep.spec.interface_name.is_empty() {
        return None;
    }
    let ips: Vec<Ipv4Addr> = wep
        .spec
        .ip_networks
        .iter()
        .filter_map(|n| n.strip_suffix("/32").unwrap_or(n).parse::<Ipv4Addr>().ok())
        .collect();
    // Validated on write (the internal address is one of the endpoint's); checked again,
    // as a record may have been written by something else.
    let floating = wep
        .spec
        .ip_nats
        .iter()
        .filter_map(|nat| {
            let external = nat.external_ip.parse::<Ipv4Addr>().ok()?;
            let internal = nat.internal_ip.parse::<Ipv4Addr>().ok()?;
            ips.contains(&internal).then_some((external, internal))
        })
        .collect();
    Some(EndpointFacts {
        interface: wep.spec.interface_name.clone(),
        floating,
        ips,
        container_id: wep.spec.container_id.clone(),
        qos: super::qos::limits(wep.spec.qos_controls.as_deref()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{endpoint, endpoint_with_nats, kv, view_of};
    use super::*;
    use crate::config::TapWorkload;

    fn tap(netns: &str) -> TapWorkload {
        TapWorkload {
            netns: netns.into(),
            ifname: "eth0".into(),
        }
    }

    /// An endpoint of node n1 run by `container`.
    fn endpoint_of(name: &str, ip: &str, container: &str) -> KeyValue {
        let Ok(Resource::WorkloadEndpoint(mut wep)) = Resource::from_kv(&endpoint("n1", name, ip))
        else {
            unreachable!()
        };
        wep.spec.container_id = container.into();
        kv(Resource::WorkloadEndpoint(wep))
    }

    /// Endpoint `a` of node n1 with `qos` as its `qosControls`.
    fn endpoint_with_qos(qos: Option<resources::QosControls>) -> KeyValue {
        let Ok(Resource::WorkloadEndpoint(mut wep)) =
            Resource::from_kv(&endpoint("n1", "a", "10.1.0.1"))
        else {
            unreachable!()
        };
        wep.spec.qos_controls = qos.map(Box::new);
        kv(Resource::WorkloadEndpoint(wep))
    }

    #[test]
    fn an_endpoints_qos_controls_are_its_workloads_limits_and_a_change_is_a_change() {
        let qos = resources::QosControls {
            ingress_bandwidth: 20_000_000,
            ingress_burst: 1_000_000,
            egress_bandwidth: 10_000_000,
            ..resources::QosControls::default()
        };
        let mut view = view_of("n1", vec![endpoint_with_qos(Some(qos.clone()))]);
        let limits = |view: &ClusterView| view.desired(None, &BTreeMap::new()).workloads[0].qos;
        let first = limits(&view);
        assert_eq!(first, super::super::qos::limits(Some(&qos)));
        assert_eq!(
            first.ingress.bandwidth.map(|r| (r.per_second, r.burst)),
            Some((20_000_000, 1_000_000))
        );
        assert!(first.egress.bandwidth.is_some());
        // The same limits again: nothing to apply; others: a change, which the dataplane gets.
        assert!(!view.apply(&WatchEvent::Put(endpoint_with_qos(Some(qos.clone())))));
        let slower = resources::QosControls {
            ingress_bandwidth: 5_000_000,
            ..qos
        };
        assert!(view.apply(&WatchEvent::Put(endpoint_with_qos(Some(slower)))));
        assert_eq!(
            limits(&view).ingress.bandwidth.map(|r| r.per_second),
            Some(5_000_000)
        );
        assert!(view.apply(&WatchEvent::Put(endpoint_with_qos(None))));
        assert!(limits(&view).is_unlimited());
    }

    #[test]
    fn floating_ips_of_this_nodes_endpoints_reach_the_dataplane_and_the_vrouters_destinations() {
        let view = view_of(
            "n1",
            vec![
                endpoint_with_nats("n1", "a", "10.1.0.1", &[("10.1.0.1", "198.51.100.7")]),
                // To an address not the endpoint's own (written by something that did not
                // validate): ignored.
                endpoint_with_nats("n1", "b", "10.1.0.2", &[("10.1.0.9", "198.51.100.8")]),
                endpoint_with_nats("n2", "c", "10.1.0.3", &[("10.1.0.3", "198.51.100.9")]),
            ],
        );
        let desired = view.desired(None, &BTreeMap::new());
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            desired.floating_ips,
            vec![(ip("198.51.100.7"), ip("10.1.0.1"))]
        );
        assert!(
            desired
                .vrouter_destinations()
                .contains(&"198.51.100.7/32".parse().unwrap()),
            "the XDP program sends uplink traffic to the floating IP to the vRouter"
        );
    }

    #[test]
    fn a_registered_tap_is_the_workloads_port_and_an_unreadable_one_keeps_it_waiting() {
        let view = view_of(
            "n1",
            vec![
                endpoint_of("a", "10.1.0.1", "ca"),
                endpoint_of("b", "10.1.0.2", "cb"),
                endpoint_of("c", "10.1.0.3", "cc"),
                endpoint_of("d", "10.1.0.4", "cd"),
                endpoint_of("e", "10.1.0.5", ""),
            ],
        );
        let registered = |netns: &str, container: &str| TapEntry::Registered {
            tap: tap(netns),
            container_id: container.into(),
        };
        let taps = BTreeMap::from([
            ("calia".to_owned(), registered("/run/netns/a", "ca")),
            // Left by another container under this name: not this endpoint's.
            ("calic".to_owned(), registered("/run/netns/old", "gone")),
            (
                "calid".to_owned(),
                TapEntry::Unreadable("calid.json: EOF".into()),
            ),
            ("calie".to_owned(), registered("/run/netns/e", "ce")),
        ]);
        let desired = view.desired(None, &taps);
        let by_name: BTreeMap<&str, &WorkloadConfig> = desired
            .workloads
            .iter()
            .map(|w| (w.interface.as_str(), w))
            .collect();
        assert_eq!(by_name["calia"].tap, Some(tap("/run/netns/a")));
        assert_eq!(by_name["calia"].ips, vec![Ipv4Addr::new(10, 1, 0, 1)]);
        assert_eq!(by_name["calib"].tap, None, "no registration: a veth");
        assert_eq!(
            by_name["calic"].tap, None,
            "another container's registration"
        );
        assert!(!by_name.contains_key("calid"), "unreadable: no port yet");
        assert_eq!(
            by_name["calie"].tap,
            Some(tap("/run/netns/e")),
            "an endpoint naming no container"
        );
        assert_eq!(
            view.desired(None, &BTreeMap::new())
                .workloads
                .iter()
                .filter(|w| w.tap.is_some())
                .count(),
            0,
            "without registrations every workload is a veth"
        );
    }
}
