//! `brindle-cni`, the network plugin (Calico's `calico` CNI plugin for the `cni`
//! orchestrator): ADD takes an address from the delegated IPAM plugin, wires the veth or the
//! TAP (`plumbing`; a TAP is registered for the node, `registration`), makes sure the
//! network's profile exists and records the WorkloadEndpoint; DEL undoes all of it and may run
//! any number of times; CHECK verifies that the pieces exist and agree (CNI spec 1.0.0, "ADD",
//! "DEL", "CHECK"); GC removes what the runtime no longer lists and STATUS says whether ADD can
//! be served (CNI spec 1.1.0).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use datastore::{keys, Datastore, DatastoreError};
use resources::{
    workload_endpoint_name, Kind, Metadata, Object, Profile, ProfileSpec, QosControls, Resource,
    WorkloadEndpoint, WorkloadEndpointSpec,
};
use serde_json::Value;

use super::bandwidth;
use super::cluster::{datastore_error, node_name, open_datastore, open_ready_datastore};
use super::delegate::run_ipam;
use super::entry::{ip_version_field, Request};
use super::gc::ValidAttachments;
use super::ipam_plugin::prev_result_ipv4s;
use super::names;
use super::plumbing;
use super::registration;
use super::spec::{
    code, CniError, CniResult, Command, NetConf, ResultInterface, ResultIp, ResultRoute,
    WorkloadInterface,
};
use super::status;

/// The orchestrator name Calico's plugin uses outside Kubernetes.
pub const ORCHESTRATOR: &str = "cni";
pub const DEFAULT_MTU: u32 = 1500;
pub const LABEL_NAMESPACE: &str = "projectcalico.org/namespace";
pub const LABEL_ORCHESTRATOR: &str = "projectcalico.org/orchestrator";

/// The names one container's attachment goes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub network: String,
    pub node: String,
    pub namespace: String,
    pub container_id: String,
    pub ifname: String,
    pub host_interface: String,
    pub endpoint_name: String,
    /// `K8S_POD_NAME` of CNI_ARGS, kept on the endpoint.
    pub pod: Option<String>,
}

impl Attachment {
    pub fn of(req: &Request) -> Result<Attachment, CniError> {
        let node = node_name(&req.conf)?;
        let inv = &req.invocation;
        let arg = |name: &str| inv.args.get(name).filter(|v| !v.is_empty());
        let identity = match (arg("K8S_POD_NAMESPACE"), arg("K8S_POD_NAME")) {
            (Some(namespace), Some(name)) => plumbing::WorkloadIdentity::Pod { namespace, name },
            _ => plumbing::WorkloadIdentity::Container {
                id: &inv.container_id,
                ifname: &inv.ifname,
            },
        };
        let namespace = arg("K8S_POD_NAMESPACE")
            .cloned()
            .unwrap_or_else(|| resources::DEFAULT_NAMESPACE.to_owned());
        Ok(Attachment {
            network: req.conf.name.clone(),
            endpoint_name: workload_endpoint_name(
                &node,
                ORCHESTRATOR,
                &inv.container_id,
                &inv.ifname,
            ),
            host_interface: plumbing::host_interface_name(identity),
            node,
            namespace,
            container_id: inv.container_id.clone(),
            ifname: inv.ifname.clone(),
            pod: arg("K8S_POD_NAME").cloned(),
        })
    }

    /// The WorkloadEndpoint Calico's plugin writes for this attachment.
    pub fn endpoint(&self, ip: Option<Ipv4Addr>, mac: &str) -> WorkloadEndpoint {
        let mut metadata = Metadata::namespaced(&self.namespace, &self.endpoint_name);
        metadata.labels = BTreeMap::from([
            (LABEL_NAMESPACE.to_owned(), self.namespace.clone()),
            (LABEL_ORCHESTRATOR.to_owned(), ORCHESTRATOR.to_owned()),
        ]);
        let spec = WorkloadEndpointSpec {
            orchestrator: ORCHESTRATOR.to_owned(),
            workload: self.container_id.clone(),
            node: self.node.clone(),
            container_id: self.container_id.clone(),
            endpoint: self.ifname.clone(),
            interface_name: self.host_interface.clone(),
            mac: mac.to_owned(),
            ip_networks: ip.map(|ip| vec![format!("{ip}/32")]).unwrap_or_default(),
            profiles: vec![self.network.clone()],
            pod: self.pod.clone().unwrap_or_default(),
            ..WorkloadEndpointSpec::default()
        };
        Object::new(metadata, spec)
    }

    fn endpoint_key(&self) -> String {
        Resource::from(self.endpoint(None, "")).key()
    }
}

pub fn handle(req: &Request) -> Result<Value, CniError> {
    match req.invocation.command {
        Command::Add => add(req),
        Command::Del => del(req).map(|()| Value::Null),
        Command::Check => check(req).map(|()| Value::Null),
        Command::Gc => gc(req).map(|()| Value::Null),
        Command::Status => status(req).map(|()| Value::Null),
        Command::Version => Ok(Value::Null),
    }
}

// ---- ADD ---------------------------------------------------------------------------------

fn add(req: &Request) -> Result<Value, CniError> {
    // Before anything is allocated: a limit that cannot be honoured fails ADD here.
    let qos = bandwidth::limits(&req.conf)?;
    names::check_netns(&req.invocation.netns)?;
    if req.conf.ipam.is_none() {
        return Err(CniError::new(
            code::INVALID_NETWORK_CONFIG,
            "ipam: the network configuration has no ipam section",
        ));
    }
    let at = Attachment::of(req)?;
    // Refuse names the datastore would refuse before anything is allocated or created.
    Resource::from(at.endpoint(None, ""))
        .validate()
        .map_err(|e| {
            CniError::new(
                code::INVALID_NETWORK_CONFIG,
                format!("cannot name the workload endpoint: {e}"),
            )
        })?;
    let store = open_ready_datastore(&req.conf)?;
    refuse_taken_names(req, &at, &*store)?;
    let ipam_result = run_ipam(req, Command::Add)?.unwrap_or_default();
    let result = attach(req, &at, &*store, &ipam_result, qos);
    if result.is_err() {
        undo_add(req, &at, &*store);
    }
    result
}

/// An existing interface (or TAP registration) of the workload's name belongs to a live
/// attachment (or a DEL that has not run yet), and so does an existing container interface for
/// a TAP: undoing a failed ADD must never tear down what this ADD did not build.
fn refuse_taken_names(
    req: &Request,
    at: &Attachment,
    store: &dyn Datastore,
) -> Result<(), CniError> {
    if plumbing::interface_exists(&at.host_interface) {
        let owner = match other_owner(store, at, &at.host_interface)? {
            Some(other) => format!("it is container {other}'s (DEL that container first)"),
            None => format!(
                "no workload endpoint claims it; if container {} was attached before, DEL it first",
                at.container_id
            ),
        };
        return Err(CniError::new(
            code::PLUMBING,
            format!("interface {} already exists: {owner}", at.host_interface),
        ));
    }
    if let Some(why) = registration::taken_by(&req.conf, at)? {
        return Err(CniError::new(code::PLUMBING, why));
    }
    let netns = &req.invocation.netns;
    if req.conf.workload_interface == WorkloadInterface::Tap
        && plumbing::tap::exists_in(netns, &at.ifname)
    {
        return Err(CniError::new(
            code::PLUMBING,
            format!(
                "interface {} already exists in {netns}; if container {} was attached before, DEL it first",
                at.ifname, at.container_id
            ),
        ));
    }
    Ok(())
}

/// Everything ADD does after IPAM; on error the caller releases the address and removes the
/// interface, the registration and the endpoint.
fn attach(
    req: &Request,
    at: &Attachment,
    store: &dyn Datastore,
    ipam_result: &CniResult,
    qos: Option<QosControls>,
) -> Result<Value, CniError> {
    let ip = first_ipv4(ipam_result)?;
    let mtu = req.conf.mtu.unwrap_or(DEFAULT_MTU);
    let netns = &req.invocation.netns;
    let wired = match req.conf.workload_interface {
        WorkloadInterface::Veth => {
            plumbing::veth::wire(netns, &at.ifname, &at.host_interface, ip, mtu)
        }
        WorkloadInterface::Tap => plumbing::tap::wire(netns, &at.ifname, ip, mtu),
    }
    .map_err(|e| {
        CniError::new(code::PLUMBING, "cannot wire the workload's interface").with_details(e)
    })?;
    if req.conf.workload_interface == WorkloadInterface::Tap {
        // Before the endpoint: the node looks for the registration when the endpoint arrives.
        registration::register(&req.conf, at, netns)?;
    }
    ensure_profile(store, &at.network)?;
    let mut endpoint = at.endpoint(Some(ip), &wired.container_mac);
    // The `bandwidth` capability's limits, which the node's vRouter enforces.
    endpoint.spec.qos_controls = qos.map(Box::new);
    let endpoint = Resource::from(endpoint);
    endpoint.validate().map_err(|e| {
        CniError::new(code::INVALID_NETWORK_CONFIG, "invalid workload endpoint").with_details(e)
    })?;
    store
        .put(&endpoint.key(), &endpoint.to_stored_json())
        .map_err(datastore_error)?;
    tracing::info!(endpoint = %at.endpoint_name, %ip, interface = %at.host_interface, kind = ?req.conf.workload_interface, "workload attached");
    // A TAP has no host interface, so the result lists none: an entry without a sandbox says
    // "this is on the host", and a chained plugin (bandwidth, tuning) would look for it there.
    // The `cali...` name stays the endpoint's `interfaceName`, the workload's name in the node.
    let mut interfaces: Vec<ResultInterface> = wired
        .host
        .iter()
        .map(|host| ResultInterface {
            name: host.name.clone(),
            mac: host.mac.clone(),
            sandbox: String::new(),
        })
        .collect();
    interfaces.push(ResultInterface {
        name: at.ifname.clone(),
        mac: wired.container_mac.clone(),
        sandbox: req.invocation.netns.clone(),
    });
    let result = CniResult {
        cni_version: req.conf.cni_version.clone(),
        ips: vec![ResultIp {
            version: ip_version_field(&req.conf.cni_version),
            address: format!("{ip}/32"),
            gateway: None,
            // The container's interface, the last of `interfaces`.
            interface: Some(interfaces.len() - 1),
        }],
        interfaces,
        // What `plumbing` installed in the container: everything leaves via the link-local
        // gateway the host answers ARP for.
        routes: vec![ResultRoute {
            dst: "0.0.0.0/0".into(),
            gw: Some(plumbing::GATEWAY),
        }],
        dns: BTreeMap::new(),
    };
    serde_json::to_value(result)
        .map_err(|e| CniError::new(code::IO_FAILURE, "cannot encode the result").with_details(e))
}

fn first_ipv4(result: &CniResult) -> Result<Ipv4Addr, CniError> {
    result
        .ips
        .iter()
        .find_map(|ip| {
            ip.address
                .split_once('/')
                .map_or(ip.address.as_str(), |(a, _)| a)
                .parse::<Ipv4Addr>()
                .ok()
        })
        .ok_or_else(|| CniError::new(code::IPAM, "the IPAM plugin returned no IPv4 address"))
}

/// Creates the network's profile if it is missing, exactly as Calico's plugin does; an
/// existing profile (perhaps edited by the user) is left alone.
fn ensure_profile(store: &dyn Datastore, network: &str) -> Result<(), CniError> {
    let profile: Profile = Object::new(Metadata::named(network), ProfileSpec::for_network(network));
    let profile = Resource::from(profile);
    match store.create(&profile.key(), &profile.to_stored_json()) {
        Ok(_) | Err(DatastoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(datastore_error(e)),
    }
}

/// Best effort, every step attempted: the error that made ADD fail is what the runtime sees.
fn undo_add(req: &Request, at: &Attachment, store: &dyn Datastore) {
    match store.delete(&at.endpoint_key(), None) {
        Ok(()) | Err(DatastoreError::NotFound { .. }) => {}
        Err(e) => {
            tracing::warn!(error = %e, endpoint = %at.endpoint_name, "undoing ADD: cannot delete the endpoint")
        }
    }
    let unwired = match req.conf.workload_interface {
        WorkloadInterface::Veth => {
            plumbing::veth::unwire(&at.host_interface).map_err(|e| e.to_string())
        }
        // The TAP, then its registration.
        WorkloadInterface::Tap => {
            registration::release(&req.conf, at, &req.invocation.netns).map_err(|e| e.to_string())
        }
    };
    if let Err(e) = unwired {
        tracing::warn!(error = %e, "undoing ADD: cannot remove the interface");
    }
    if let Err(e) = run_ipam(req, Command::Del) {
        tracing::warn!(error = %e, "undoing ADD: cannot release the address");
    }
}

// ---- DEL ---------------------------------------------------------------------------------

/// Removes the endpoint, releases the address, removes the interface. Whatever is already gone
/// is skipped; a datastore that cannot be reached fails DEL so that the runtime retries it.
fn del(req: &Request) -> Result<(), CniError> {
    let at = Attachment::of(req)?;
    let netns = del_netns(&req.invocation.netns);
    let store = open_ready_datastore(&req.conf)?;
    let host_if = remove_endpoint(&*store, &at)?;
    if req.conf.ipam.is_some() {
        run_ipam(req, Command::Del)?;
    }
    remove_interface(&req.conf, &*store, &at, &host_if, netns)
}

/// DEL's namespace: `CNI_NETNS` when it is a network namespace, else none (DEL must succeed
/// when the namespace is already gone, CNI SPEC.md "DEL"; a path that is no namespace is
/// treated as gone, never entered).
fn del_netns(netns: &str) -> &str {
    if netns.is_empty() {
        return netns;
    }
    match names::check_netns(netns) {
        Ok(()) => netns,
        Err(e) => {
            tracing::warn!(error = %e.msg, "DEL: the namespace is treated as gone");
            ""
        }
    }
}

/// Deletes the attachment's endpoint if it is this container's; returns the host interface
/// to remove: the one the endpoint records (a plugin that named interfaces differently may
/// have made it), else the name this plugin gives.
fn remove_endpoint(store: &dyn Datastore, at: &Attachment) -> Result<String, CniError> {
    let key = at.endpoint_key();
    let mut host_if = at.host_interface.clone();
    match store.get(&key).map_err(datastore_error)? {
        // The name embeds the container id, but a record written by someone else for another
        // container must not be removed by this container's DEL.
        Some(kv) if !endpoint_belongs_to(&kv, &at.container_id) => {
            tracing::warn!(endpoint = %at.endpoint_name, "endpoint belongs to another container; left alone");
        }
        Some(kv) => {
            if let Ok(Resource::WorkloadEndpoint(wep)) = Resource::from_kv(&kv) {
                if !wep.spec.interface_name.is_empty() {
                    host_if = wep.spec.interface_name;
                }
            }
            match store.delete(&key, Some(kv.mod_revision)) {
                Ok(()) | Err(DatastoreError::NotFound { .. }) => {}
                Err(e) => return Err(datastore_error(e)),
            }
        }
        None => {}
    }
    Ok(host_if)
}

/// Removes the TAP and its registration, or the veth `host_if`. A TAP is in this container's
/// namespace (`netns`, else the registered one), so whoever else claims the name, it is ours;
/// a veth goes only if no other container's endpoint claims it: a DEL must never take a
/// running container's eth0 away.
fn remove_interface(
    conf: &NetConf,
    store: &dyn Datastore,
    at: &Attachment,
    host_if: &str,
    netns: &str,
) -> Result<(), CniError> {
    registration::release(conf, at, netns)?;
    if let Some(other) = other_owner(store, at, host_if)? {
        tracing::warn!(interface = %host_if, owner = %other, "interface belongs to another container; left alone");
        return Ok(());
    }
    plumbing::veth::unwire(host_if).map_err(|e| {
        CniError::new(code::PLUMBING, "cannot remove the workload's interface").with_details(e)
    })
}

// ---- GC and STATUS -----------------------------------------------------------------------

/// GC (CNI spec 1.1.0): every endpoint of this network on this node whose attachment the
/// runtime no longer lists goes, with its interface; then the IPAM plugin's GC releases the
/// addresses. Everything is attempted; the first failure is returned.
fn gc(req: &Request) -> Result<(), CniError> {
    let valid = ValidAttachments::of(&req.conf)?;
    let node = node_name(&req.conf)?;
    let store = open_datastore(&req.conf)?;
    let prefix = keys::resource_prefix(Kind::WorkloadEndpoint.plural(), None);
    let (records, _) = store.list(&prefix).map_err(datastore_error)?;
    let stale: Vec<Attachment> = records
        .iter()
        .filter_map(|kv| match Resource::from_kv(kv) {
            Ok(Resource::WorkloadEndpoint(wep)) => Some(wep),
            _ => None,
        })
        .filter(|wep| {
            wep.spec.orchestrator == ORCHESTRATOR
                && wep.spec.node == node
                && wep.spec.profiles.contains(&req.conf.name)
                && !valid.has(&wep.spec.container_id, &wep.spec.endpoint)
        })
        .map(|wep| Attachment {
            network: req.conf.name.clone(),
            node: node.clone(),
            namespace: wep
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| resources::DEFAULT_NAMESPACE.to_owned()),
            container_id: wep.spec.container_id.clone(),
            ifname: wep.spec.endpoint.clone(),
            host_interface: wep.spec.interface_name.clone(),
            endpoint_name: wep.metadata.name.clone(),
            pod: (!wep.spec.pod.is_empty()).then(|| wep.spec.pod.clone()),
        })
        .collect();
    let mut first_error = None;
    for at in &stale {
        let removed = remove_endpoint(&*store, at)
            .and_then(|host_if| remove_interface(&req.conf, &*store, at, &host_if, ""));
        match removed {
            Ok(()) => tracing::info!(endpoint = %at.endpoint_name, "GC removed a stale attachment"),
            Err(e) => {
                tracing::warn!(endpoint = %at.endpoint_name, error = %e, "GC: cannot remove");
                first_error.get_or_insert(e);
            }
        }
    }
    if req.conf.ipam.is_some() {
        if let Err(e) = run_ipam(req, Command::Gc) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// STATUS (CNI spec 1.1.0): ours, then the IPAM plugin's.
fn status(req: &Request) -> Result<(), CniError> {
    status::ready(&req.conf)?;
    if req.conf.ipam.is_some() {
        run_ipam(req, Command::Status)?;
    }
    Ok(())
}

/// The container, other than this attachment's, whose endpoint on this node names the host
/// interface `host_if`.
fn other_owner(
    store: &dyn Datastore,
    at: &Attachment,
    host_if: &str,
) -> Result<Option<String>, CniError> {
    let prefix = keys::resource_prefix(Kind::WorkloadEndpoint.plural(), None);
    let (records, _) = store.list(&prefix).map_err(datastore_error)?;
    Ok(records
        .iter()
        .filter_map(|kv| match Resource::from_kv(kv) {
            Ok(Resource::WorkloadEndpoint(wep)) => Some(wep.spec),
            _ => None,
        })
        .find(|wep| {
            wep.node == at.node
                && wep.interface_name == host_if
                && !wep.container_id.is_empty()
                && wep.container_id != at.container_id
        })
        .map(|wep| wep.container_id))
}

fn endpoint_belongs_to(kv: &datastore::KeyValue, container_id: &str) -> bool {
    match Resource::from_kv(kv) {
        Ok(Resource::WorkloadEndpoint(wep)) => {
            wep.spec.container_id.is_empty() || wep.spec.container_id == container_id
        }
        // An unreadable record under our name is ours to clean up.
        _ => true,
    }
}

// ---- CHECK -------------------------------------------------------------------------------

/// The endpoint exists and names this container, its address is the one the IPAM handle holds
/// (and the one in `prevResult`, when given), the host interface is there with Calico's MAC
/// (for a TAP: the registration is this container's and the TAP is a TAP with virtio-net
/// headers), and the container's interface has the address and the routes.
fn check(req: &Request) -> Result<(), CniError> {
    names::check_netns(&req.invocation.netns)?;
    let at = Attachment::of(req)?;
    let store = open_datastore(&req.conf)?;
    let mismatch = |msg: String| CniError::new(code::PLUMBING, msg);
    let kv = store
        .get(&at.endpoint_key())
        .map_err(datastore_error)?
        .ok_or_else(|| {
            CniError::new(
                code::UNKNOWN_CONTAINER,
                format!("workload endpoint {} does not exist", at.endpoint_name),
            )
        })?;
    let wep = match Resource::from_kv(&kv) {
        Ok(Resource::WorkloadEndpoint(wep)) => wep,
        _ => {
            return Err(CniError::new(
                code::DATASTORE,
                format!("workload endpoint {} is unreadable", at.endpoint_name),
            ))
        }
    };
    if wep.spec.container_id != at.container_id || wep.spec.interface_name != at.host_interface {
        return Err(mismatch(format!(
            "workload endpoint {} is for container {} on {}, not {} on {}",
            at.endpoint_name,
            wep.spec.container_id,
            wep.spec.interface_name,
            at.container_id,
            at.host_interface
        )));
    }
    let recorded: Vec<Ipv4Addr> = wep
        .spec
        .ip_networks
        .iter()
        .filter_map(|n| {
            n.split_once('/')
                .map_or(n.as_str(), |(a, _)| a)
                .parse()
                .ok()
        })
        .collect();
    let Some(&ip) = recorded.first() else {
        return Err(mismatch(format!(
            "workload endpoint {} has no IPv4 address",
            at.endpoint_name
        )));
    };
    for prev in prev_result_ipv4s(req.conf.prev_result.as_ref())? {
        if !recorded.contains(&prev) {
            return Err(mismatch(format!(
                "prevResult address {prev} is not on workload endpoint {}",
                at.endpoint_name
            )));
        }
    }
    // The limits the runtime asks for now are the ones the node enforces.
    let wanted = bandwidth::limits(&req.conf)?;
    if wep.spec.qos_controls.as_deref() != wanted.as_ref() {
        return Err(mismatch(format!(
            "workload endpoint {} has limits {}, runtimeConfig.bandwidth asks for {}",
            at.endpoint_name,
            describe_qos(wep.spec.qos_controls.as_deref()),
            describe_qos(wanted.as_ref())
        )));
    }
    if req.conf.ipam.is_some() {
        run_ipam(req, Command::Check)?;
    }
    let netns = &req.invocation.netns;
    if req.conf.workload_interface == WorkloadInterface::Tap {
        registration::check(&req.conf, &at, netns)?;
        return plumbing::tap::check(netns, &at.ifname, ip).map_err(mismatch);
    }
    plumbing::veth::check(netns, &at.ifname, &at.host_interface, ip).map_err(mismatch)?;
    Ok(())
}

fn describe_qos(qos: Option<&QosControls>) -> String {
    qos.and_then(|q| serde_json::to_string(q).ok())
        .unwrap_or_else(|| "none".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::spec::{Invocation, NetConf};

    fn request(container_id: &str, args: &str) -> Request {
        let vars = [
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", container_id),
            ("CNI_NETNS", "/var/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", args),
        ];
        let invocation = Invocation::from_env(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        let raw_conf =
            br#"{"cniVersion":"1.0.0","name":"net1","type":"brindle-cni","nodename":"node-a",
                            "ipam":{"type":"brindle-ipam"}}"#
                .to_vec();
        Request {
            invocation,
            conf: NetConf::parse(&raw_conf).unwrap(),
            raw_conf,
        }
    }

    #[test]
    fn endpoint_is_named_and_filled_as_calicos_cni_orchestrator_does() {
        let at = Attachment::of(&request("0123456789abcdef", "")).unwrap();
        assert_eq!(at.endpoint_name, "node--a-cni-0123456789abcdef-eth0");
        // `printf 0123456789abcdef.eth0 | sha1sum`: ac9ae96ed116...
        assert_eq!(at.host_interface, "caliac9ae96ed11");
        assert_eq!(at.namespace, "default");
        let wep = at.endpoint(Some(Ipv4Addr::new(10, 20, 0, 1)), "aa:bb:cc:dd:ee:ff");
        assert_eq!(wep.spec.orchestrator, "cni");
        assert_eq!(wep.spec.node, "node-a");
        assert_eq!(wep.spec.container_id, "0123456789abcdef");
        assert_eq!(wep.spec.endpoint, "eth0");
        assert_eq!(wep.spec.interface_name, "caliac9ae96ed11");
        assert_eq!(wep.spec.ip_networks, vec!["10.20.0.1/32"]);
        assert_eq!(wep.spec.profiles, vec!["net1"]);
        assert_eq!(wep.metadata.labels[LABEL_ORCHESTRATOR], "cni");
        assert_eq!(wep.metadata.labels[LABEL_NAMESPACE], "default");
        let resource = Resource::from(wep);
        resource.validate().unwrap();
        assert_eq!(
            resource.key(),
            "/calico/resources/v3/projectcalico.org/workloadendpoints/default/node--a-cni-0123456789abcdef-eth0"
        );
    }

    #[test]
    fn the_pod_namespace_comes_from_cni_args() {
        let at = Attachment::of(&request("c1", "K8S_POD_NAMESPACE=web;K8S_POD_NAME=p")).unwrap();
        assert_eq!(at.namespace, "web");
        assert_eq!(
            at.endpoint(None, "").metadata.labels[LABEL_NAMESPACE],
            "web"
        );
        let wep = at.endpoint(None, "");
        assert_eq!(wep.spec.pod, "p", "the pod is kept on the endpoint");
        Resource::from(wep).validate().unwrap();
        // A pod's interface is named as Calico names it, from `namespace.pod`
        // (`printf web.p | sha1sum`), whatever its sandbox container's id.
        assert_eq!(at.host_interface, "calib5e57844a35");
    }

    #[test]
    fn the_first_ipv4_of_an_ipam_result_is_used_and_none_is_an_ipam_error() {
        let ip = |a: &str| ResultIp {
            version: None,
            address: a.into(),
            gateway: None,
            interface: None,
        };
        let r = CniResult {
            ips: vec![ip("fd00::2/128"), ip("10.20.0.9/32")],
            ..CniResult::default()
        };
        assert_eq!(first_ipv4(&r).unwrap(), Ipv4Addr::new(10, 20, 0, 9));
        assert_eq!(
            first_ipv4(&CniResult::default()).unwrap_err().code,
            code::IPAM
        );
    }
}
