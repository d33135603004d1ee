//! The network driver (`--driver calico`), as Calico's libnetwork plugin behaved:
//!
//! - Scope `global`: a network created on one host is known to every host's dockerd (through
//!   dockerd's own cluster store) and every host's driver resolves it in brindle's datastore.
//! - CreateNetwork: refuses options it cannot honour and any IPAM driver but ours (its dummy
//!   gateway `0.0.0.0/0` is the tell), and marks the network's pool with the network id.
//! - CreateEndpoint: makes sure the network's profile (named after the network, admitting its
//!   members) exists and records the WorkloadEndpoint (orchestrator `libnetwork`, the /32
//!   dockerd got from RequestAddress, the profile).
//! - Join: makes the veth (`wiring`), records the container end's MAC and tells dockerd to
//!   move that end in as `cali0` with 169.254.1.1 as gateway, reached as a connected route.
//! - Leave removes the veth; DeleteEndpoint removes the endpoint (and a veth left behind);
//!   DeleteNetwork removes the profile and the pool made for the network.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use datastore::{keys, DatastoreError};
use resources::{
    workload_endpoint_name, Kind, Metadata, Object, Profile, ProfileSpec, Resource,
    WorkloadEndpoint, WorkloadEndpointSpec,
};
use serde_json::{json, Value};

use super::ipam::{read_pools, store_error, CREATED_POOL_PREFIX, NO_GATEWAY};
use super::types::{
    decode, docker_id, ipv4_address, shorten, CreateEndpointRequest, CreateNetworkRequest,
    DriverError, DriverResult, EndpointRequest, InterfaceName, JoinResponse, NetworkRequest,
    StaticRoute, ROUTE_CONNECTED,
};
use super::wiring::{self, VethNames, CONTAINER_PREFIX};
use super::Driver;

/// Calico's orchestrator, workload and namespace for Docker's endpoints.
pub const ORCHESTRATOR: &str = "libnetwork";
/// Calico's annotation naming the Docker network a pool or profile belongs to.
pub const NETWORK_ID_ANNOTATION: &str = "org.projectcalico.label.network.ID";
const OPTION_IPV6: &str = "com.docker.network.enable_ipv6";
const OPTION_DRIVER_OPTS: &str = "com.docker.network.generic";

/// Answers one `/NetworkDriver.*` call.
pub fn handle(driver: &Driver, call: &str, body: &[u8]) -> DriverResult<Value> {
    match call {
        "GetCapabilities" => Ok(json!({"Scope": "global", "ConnectivityScope": "global"})),
        "CreateNetwork" => create_network(driver, &decode(call, body)?).map(|()| json!({})),
        "DeleteNetwork" => delete_network(driver, &decode(call, body)?).map(|()| json!({})),
        "CreateEndpoint" => create_endpoint(driver, &decode(call, body)?).map(|()| json!({})),
        "DeleteEndpoint" => delete_endpoint(driver, &decode(call, body)?).map(|()| json!({})),
        "EndpointOperInfo" => Ok(json!({"Value": {}})),
        "Join" => join(driver, &decode(call, body)?)
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null)),
        "Leave" => {
            let req: EndpointRequest = decode(call, body)?;
            let id = docker_id("EndpointID", &req.endpoint_id)?;
            wiring::remove(&VethNames::of(id)).map(|()| json!({}))
        }
        // Nothing to do for these: discovery, external connectivity (no NAT or port
        // mapping: workloads are routed) and swarm's network allocation.
        "DiscoverNew"
        | "DiscoverDelete"
        | "ProgramExternalConnectivity"
        | "RevokeExternalConnectivity"
        | "AllocateNetwork"
        | "FreeNetwork" => Ok(json!({})),
        other => Err(DriverError::new(format!(
            "NetworkDriver.{}: not a network driver call",
            shorten(other)
        ))),
    }
}

fn create_network(driver: &Driver, req: &CreateNetworkRequest) -> DriverResult<()> {
    let id = docker_id("NetworkID", &req.network_id)?;
    for (key, value) in &req.options {
        let set = match (key.as_str(), value) {
            (OPTION_IPV6, Value::Bool(on)) => *on,
            (OPTION_DRIVER_OPTS, Value::Object(opts)) => !opts.is_empty(),
            (_, Value::Bool(on)) => *on,
            (_, Value::Null) => false,
            _ => true,
        };
        if set {
            return Err(DriverError::new(format!(
                "CreateNetwork: option {} = {} is not supported by brindle's driver",
                shorten(key),
                shorten(&value.to_string())
            )));
        }
    }
    if !req.ipv6_data.is_empty() {
        return Err(DriverError::new("CreateNetwork: IPv6 is not supported"));
    }
    let mut pools = Vec::new();
    for (i, data) in req.ipv4_data.iter().enumerate() {
        if data.gateway != NO_GATEWAY {
            return Err(DriverError::new(format!(
                "CreateNetwork: IPv4Data[{i}].Gateway {:?}: the network must use brindle's IPAM driver (--ipam-driver calico-ipam)",
                shorten(&data.gateway)
            )));
        }
        pools.push(data.pool.clone());
    }
    annotate_pools(driver, id, &pools)
}

/// Marks the pools of `--subnet` with the network id, as Calico's driver did; the pool of a
/// network without a subnet (`0.0.0.0/0`, every pool) is not marked.
fn annotate_pools(driver: &Driver, network_id: &str, cidrs: &[String]) -> DriverResult<()> {
    let store = driver.store.as_ref();
    for pool in read_pools(store)? {
        if !cidrs.contains(&pool.spec.cidr) || network_of(&pool.metadata) == Some(network_id) {
            continue;
        }
        let mut pool = pool;
        pool.metadata
            .annotations
            .insert(NETWORK_ID_ANNOTATION.to_owned(), network_id.to_owned());
        let resource = Resource::from(pool);
        let key = resource.key();
        let Some(current) = store
            .get(&key)
            .map_err(|e| store_error("CreateNetwork", e))?
        else {
            continue;
        };
        match store.update(&key, &resource.to_stored_json(), current.mod_revision) {
            // Another node annotated it first, with the same id.
            Ok(_) | Err(DatastoreError::Conflict { .. }) => {}
            Err(e) => return Err(store_error("CreateNetwork", e)),
        }
    }
    Ok(())
}

/// The Docker network a pool or profile is marked with.
fn network_of(metadata: &Metadata) -> Option<&str> {
    metadata
        .annotations
        .get(NETWORK_ID_ANNOTATION)
        .map(String::as_str)
}

/// Removes what belongs to the network: its profile and the pool the driver created for it
/// (a pool the user made beforehand stays, as it would with Calico's driver).
fn delete_network(driver: &Driver, req: &NetworkRequest) -> DriverResult<()> {
    let id = docker_id("NetworkID", &req.network_id)?;
    let store = driver.store.as_ref();
    let prefix = keys::resource_prefix(Kind::Profile.plural(), None);
    let (profiles, _) = store
        .list(&prefix)
        .map_err(|e| store_error("DeleteNetwork", e))?;
    for kv in profiles {
        if let Ok(Resource::Profile(p)) = Resource::from_kv(&kv) {
            if network_of(&p.metadata) == Some(id) {
                delete_key(store, &kv.key, "DeleteNetwork")?;
                tracing::info!(profile = %p.metadata.name, "removed the profile of a Docker network");
            }
        }
    }
    for pool in read_pools(store)? {
        if network_of(&pool.metadata) == Some(id)
            && pool.metadata.name.starts_with(CREATED_POOL_PREFIX)
        {
            delete_key(store, &Resource::from(pool.clone()).key(), "DeleteNetwork")?;
            tracing::info!(pool = %pool.metadata.name, "removed the IP pool of a Docker network");
        }
    }
    Ok(())
}

fn delete_key(store: &dyn datastore::Datastore, key: &str, call: &str) -> DriverResult<()> {
    match store.delete(key, None) {
        Ok(()) | Err(DatastoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(store_error(call, e)),
    }
}

/// Endpoint `endpoint_id` of this node as Calico's driver named and filled it.
pub fn endpoint(
    node: &str,
    endpoint_id: &str,
    network: &str,
    ip: Ipv4Addr,
    mac: &str,
) -> WorkloadEndpoint {
    let name = workload_endpoint_name(node, ORCHESTRATOR, ORCHESTRATOR, endpoint_id);
    let mut metadata = Metadata::namespaced(ORCHESTRATOR, &name);
    metadata.labels = BTreeMap::from([
        (
            cli::cni::plugin::LABEL_NAMESPACE.to_owned(),
            ORCHESTRATOR.to_owned(),
        ),
        (
            cli::cni::plugin::LABEL_ORCHESTRATOR.to_owned(),
            ORCHESTRATOR.to_owned(),
        ),
    ]);
    let spec = WorkloadEndpointSpec {
        orchestrator: ORCHESTRATOR.to_owned(),
        workload: ORCHESTRATOR.to_owned(),
        node: node.to_owned(),
        endpoint: endpoint_id.to_owned(),
        interface_name: VethNames::of(endpoint_id).host,
        mac: mac.to_owned(),
        ip_networks: vec![format!("{ip}/32")],
        profiles: vec![network.to_owned()],
        ..WorkloadEndpointSpec::default()
    };
    Object::new(metadata, spec)
}

fn endpoint_key(node: &str, endpoint_id: &str) -> String {
    Resource::from(endpoint(node, endpoint_id, "", Ipv4Addr::UNSPECIFIED, "")).key()
}

fn create_endpoint(driver: &Driver, req: &CreateEndpointRequest) -> DriverResult<()> {
    let network_id = docker_id("NetworkID", &req.network_id)?;
    let endpoint_id = docker_id("EndpointID", &req.endpoint_id)?;
    if req.interface.address.is_empty() {
        return Err(DriverError::new(
            "CreateEndpoint: Interface.Address: no IPv4 address was assigned to the endpoint",
        ));
    }
    let ip = ipv4_address("Interface.Address", &req.interface.address)?;
    let network = driver.docker.network_name(network_id)?;
    ensure_profile(driver, &network, network_id)?;
    let endpoint = Resource::from(endpoint(
        &driver.node,
        endpoint_id,
        &network,
        ip,
        &req.interface.mac_address.to_ascii_lowercase(),
    ));
    endpoint.validate().map_err(|e| {
        DriverError::new(format!(
            "CreateEndpoint: network {}: {e}",
            shorten(&network)
        ))
    })?;
    driver
        .store
        .put(&endpoint.key(), &endpoint.to_stored_json())
        .map_err(|e| store_error("CreateEndpoint", e))?;
    tracing::info!(%network, %ip, endpoint = %endpoint_id, "Docker endpoint recorded");
    Ok(())
}

/// The network's profile, as brindle-cni makes it (members admit each other, egress open),
/// marked with the network id so that DeleteNetwork finds it; an existing profile (perhaps
/// edited by the user) is left as it is.
fn ensure_profile(driver: &Driver, network: &str, network_id: &str) -> DriverResult<()> {
    let mut metadata = Metadata::named(network);
    metadata
        .annotations
        .insert(NETWORK_ID_ANNOTATION.to_owned(), network_id.to_owned());
    let profile: Profile = Object::new(metadata, ProfileSpec::for_network(network));
    let profile = Resource::from(profile);
    profile.validate().map_err(|e| {
        DriverError::new(format!(
            "CreateEndpoint: the network name {} cannot name a profile: {e}",
            shorten(network)
        ))
    })?;
    match driver
        .store
        .create(&profile.key(), &profile.to_stored_json())
    {
        Ok(_) | Err(DatastoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(store_error("CreateEndpoint", e)),
    }
}

fn delete_endpoint(driver: &Driver, req: &EndpointRequest) -> DriverResult<()> {
    let endpoint_id = docker_id("EndpointID", &req.endpoint_id)?;
    delete_key(
        driver.store.as_ref(),
        &endpoint_key(&driver.node, endpoint_id),
        "DeleteEndpoint",
    )?;
    // Leave removed the veth unless the container never ran or dockerd lost track of it.
    wiring::remove(&VethNames::of(endpoint_id))?;
    tracing::info!(endpoint = %endpoint_id, "Docker endpoint removed");
    Ok(())
}

fn join(driver: &Driver, req: &EndpointRequest) -> DriverResult<JoinResponse> {
    let endpoint_id = docker_id("EndpointID", &req.endpoint_id)?;
    let key = endpoint_key(&driver.node, endpoint_id);
    let store = driver.store.as_ref();
    let kv = store
        .get(&key)
        .map_err(|e| store_error("Join", e))?
        .ok_or_else(|| DriverError::new(format!("Join: endpoint {endpoint_id} was not created")))?;
    let Ok(Resource::WorkloadEndpoint(mut wep)) = Resource::from_kv(&kv) else {
        return Err(DriverError::new(format!(
            "Join: the workload endpoint at {key} is unreadable"
        )));
    };
    let names = VethNames::of(endpoint_id);
    let mac = wiring::create(&names, driver.mtu)?;
    // A MAC dockerd chose (`--mac-address`) is the one it sets in the container.
    if wep.spec.mac.is_empty() {
        wep.spec.mac = mac;
    }
    let written = store.update(&key, &Resource::from(wep).to_stored_json(), kv.mod_revision);
    if let Err(e) = written {
        let _ = wiring::remove(&names);
        return Err(store_error("Join", e));
    }
    let gateway = cli::cni::plumbing::GATEWAY.to_string();
    Ok(JoinResponse {
        interface_name: InterfaceName {
            src_name: names.temporary,
            dst_prefix: CONTAINER_PREFIX.to_owned(),
        },
        static_routes: vec![StaticRoute {
            destination: format!("{gateway}/32"),
            route_type: ROUTE_CONNECTED,
            next_hop: String::new(),
        }],
        gateway,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_named_and_filled_as_calicos_libnetwork_driver_did() {
        let id = "5efe1ee8d2b8a3bf2237a3c41ea32622ac332e844762fa3a2aa2d5b27939494b";
        let wep = endpoint("node-a", id, "calico-net1", Ipv4Addr::new(10, 1, 1, 5), "");
        assert_eq!(
            wep.metadata.name,
            format!("node--a-libnetwork-libnetwork-{id}")
        );
        assert_eq!(wep.metadata.namespace.as_deref(), Some("libnetwork"));
        assert_eq!(wep.spec.orchestrator, "libnetwork");
        assert_eq!(wep.spec.endpoint, id);
        assert_eq!(wep.spec.ip_networks, vec!["10.1.1.5/32"]);
        assert_eq!(wep.spec.profiles, vec!["calico-net1"]);
        assert_eq!(wep.spec.interface_name, VethNames::of(id).host);
        Resource::from(wep).validate().unwrap();
    }
}
