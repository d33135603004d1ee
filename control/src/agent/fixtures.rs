//! Datastore records for the agent's unit tests, as the datastore would list them.

use datastore::{keys, KeyValue};
use resources::{
    AsNumber, BgpConfigurationSpec, BgpPeerSpec, EncapMode, IpPoolSpec, Metadata, NodeBgpSpec,
    NodeSpec, Resource, WorkloadEndpointSpec,
};

use super::view::ClusterView;

/// An embedded store in `dir`, shareable with other processes as the node's is.
pub fn embedded_store(dir: &std::path::Path) -> std::sync::Arc<dyn datastore::Datastore> {
    let path = dir.join("store.redb");
    let config = datastore::DatastoreConfig::from_lookup(|k| match k {
        "DATASTORE_TYPE" => Some("embedded".into()),
        "BRINDLE_EMBEDDED_PATH" => Some(path.display().to_string()),
        _ => None,
    })
    .unwrap();
    datastore::open(&config).unwrap()
}

pub fn kv(resource: Resource) -> KeyValue {
    KeyValue {
        key: resource.key(),
        value: resource.to_stored_json(),
        create_revision: 1,
        mod_revision: 1,
    }
}

pub fn pool(name: &str, cidr: &str, ipip: EncapMode) -> KeyValue {
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

/// A Node with its address, AS override, labels and route reflector cluster ID.
pub fn node(
    name: &str,
    address: &str,
    asn: Option<u32>,
    labels: &[(&str, &str)],
    cluster_id: &str,
) -> KeyValue {
    let bgp = NodeBgpSpec {
        ipv4_address: address.into(),
        as_number: asn.map(AsNumber::new),
        route_reflector_cluster_id: cluster_id.into(),
        ..NodeBgpSpec::default()
    };
    let mut meta = Metadata::named(name);
    meta.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    kv(Resource::Node(resources::Node::new(
        meta,
        NodeSpec {
            bgp: Some(bgp),
            ..NodeSpec::default()
        },
    )))
}

pub fn bgp_configuration(spec: BgpConfigurationSpec) -> KeyValue {
    kv(Resource::BgpConfiguration(
        resources::BgpConfiguration::new(Metadata::named("default"), spec),
    ))
}

pub fn bgp_peer(name: &str, spec: BgpPeerSpec) -> KeyValue {
    kv(Resource::BgpPeer(resources::BgpPeer::new(
        Metadata::named(name),
        spec,
    )))
}

pub fn endpoint(node: &str, name: &str, ip: &str) -> KeyValue {
    let spec = WorkloadEndpointSpec {
        node: node.into(),
        interface_name: format!("cali{name}"),
        ip_networks: vec![format!("{ip}/32")],
        ..WorkloadEndpointSpec::default()
    };
    kv(Resource::WorkloadEndpoint(
        resources::WorkloadEndpoint::new(Metadata::namespaced("default", name), spec),
    ))
}

/// An endpoint of `node` at `ip` with floating IPs `nats` (internal, external).
pub fn endpoint_with_nats(node: &str, name: &str, ip: &str, nats: &[(&str, &str)]) -> KeyValue {
    let spec = WorkloadEndpointSpec {
        node: node.into(),
        interface_name: format!("cali{name}"),
        ip_networks: vec![format!("{ip}/32")],
        ip_nats: nats
            .iter()
            .map(|(internal, external)| resources::IpNat {
                internal_ip: (*internal).into(),
                external_ip: (*external).into(),
                ..resources::IpNat::default()
            })
            .collect(),
        ..WorkloadEndpointSpec::default()
    };
    kv(Resource::WorkloadEndpoint(
        resources::WorkloadEndpoint::new(Metadata::namespaced("default", name), spec),
    ))
}

pub fn affinity(node: &str, cidr: &str) -> KeyValue {
    KeyValue {
        key: keys::ipam_affinity(node, cidr),
        value: b"{\"state\":\"confirmed\"}".to_vec(),
        create_revision: 1,
        mod_revision: 1,
    }
}

/// The view of node `me` after listing `records`.
pub fn view_of(me: &str, records: Vec<KeyValue>) -> ClusterView {
    let mut view = ClusterView::new(me);
    view.reset(records);
    view
}
