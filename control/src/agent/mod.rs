//! The node agent: calico-node's environment, registration and the datastore watch that
//! programs the dataplane.
//!
//! At start the agent registers this host's Node resource (its address and AS), creates the
//! default IP pool and the cluster information when nobody has yet (as calico-node does), then
//! lists the pools, the workload endpoints and this node's IPAM block affinities and watches
//! them from the listing's revision. Every change yields a new [`DesiredState`] for the
//! dataplane. When the watch reports a compaction or a lost connection the agent resyncs
//! (list, then watch again); while the datastore is away the dataplane keeps the state it has.
//! When it comes back reset (its data lost), the node first writes back its own records from
//! the copy it keeps (`recovery`), so that its workloads never read as gone.
//!
//! Which workloads have a TAP rather than a veth is host-local and comes from the TAP registry
//! brindle-cni writes (`taps`), read with every datastore change and every second besides; so
//! are the bandwidth limits a chained CNI `bandwidth` plugin puts on workload veths
//! (`tc_limits`), which the vRouter would otherwise bypass.

pub mod address_watch;
pub mod bgp;
pub mod env;
pub mod failsafe;
mod felix_counts;
#[cfg(test)]
mod fixtures;
pub mod peering;
pub mod policy;
pub mod qos;
mod recovery;
pub mod taps;
pub mod tc_limits;
#[cfg(test)]
mod tests;
pub mod view;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datastore::{keys, Datastore, DatastoreError, Watch, WatchEvent};
use resources::{
    AsNumber, ClusterInformationSpec, IpPoolSpec, Metadata, NodeBgpSpec, NodeSpec, Resource,
};

use crate::dataplane::DesiredState;
use crate::host::Ipv4Prefix;
use crate::hostveth::HostPort;
use env::{NodeEnv, PoolIpip};
use view::{watched_prefixes, ClusterView};

/// Name calico-node gives the pool it creates.
pub const DEFAULT_POOL_NAME: &str = "default-ipv4-ippool";
/// How long the agent waits between attempts while the datastore is unreachable.
const RESYNC_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("datastore: {0}")]
    Datastore(#[from] DatastoreError),
    #[error("{what}: {reason}")]
    Resource { what: String, reason: String },
}

/// The node's identity in the cluster.
#[derive(Clone, Debug)]
pub struct Identity {
    pub node_name: String,
    /// The node's address with its subnet's prefix length (Node `spec.bgp.ipv4Address`).
    pub address: (std::net::Ipv4Addr, u8),
    /// The interface holding the address: the uplink.
    pub uplink: String,
}

pub struct Agent {
    store: Arc<dyn Datastore>,
    identity: Identity,
    view: ClusterView,
    watches: Vec<Watch>,
    /// Set after a compaction, a lost connection or a failed resync.
    needs_resync: bool,
    /// Resyncs begun, the first included (`felix_resyncs_started`).
    resyncs_started: u64,
    last_attempt: Option<Instant>,
    /// The node's BGP, once started ([`Agent::start_bgp`]).
    bgp: Option<bgp::NodeBgp>,
    /// Network policy: the model and the local workloads' compiled programs.
    policy: policy::NodePolicy,
    /// The TAP registrations of this node's workloads, as last read.
    taps: taps::TapRegistry,
    /// The limits tc qdiscs (a chained CNI `bandwidth` plugin) put on workload veths.
    tc: tc_limits::TcLimits,
    /// What the way to the node's own stack is made of (`BRINDLE_HOST_PORT`).
    host_port: HostPort,
    /// A copy of the node's own records, put back if the datastore comes back reset.
    own: recovery::OwnRecords,
    /// The node's address, autodetected again now and then.
    address: address_watch::AddressWatch,
}

impl Agent {
    /// Registers the node and the cluster defaults, then lists and watches. `tap_dir`: where
    /// brindle-cni registers TAP workloads (`BRINDLE_TAP_DIR`).
    pub fn start(
        store: Arc<dyn Datastore>,
        env: &NodeEnv,
        identity: Identity,
        tap_dir: PathBuf,
    ) -> Result<Agent, AgentError> {
        register_node(store.as_ref(), &identity, env.as_number)?;
        ensure_cluster_information(store.as_ref())?;
        if let Some((cidr, ipip)) = env.default_pool {
            ensure_default_pool(store.as_ref(), cidr, ipip)?;
        }
        ensure_tunnel_address(&store, &identity)?;
        let address = address_watch::AddressWatch::new(
            &env.address,
            (
                identity.uplink.clone(),
                identity.address.0,
                identity.address.1,
            ),
            address_watch::poll_interval(
                std::env::var(address_watch::POLL_INTERVAL_ENV)
                    .ok()
                    .as_deref(),
            ),
        );
        let mut agent = Agent {
            store,
            view: ClusterView::new(&identity.node_name),
            policy: policy::NodePolicy::new(&identity.node_name, endpoint_to_host_from_env()),
            identity,
            watches: Vec::new(),
            needs_resync: true,
            resyncs_started: 0,
            last_attempt: None,
            bgp: None,
            taps: taps::TapRegistry::new(tap_dir),
            tc: tc_limits::TcLimits::default(),
            host_port: HostPort::default(),
            own: recovery::OwnRecords::default(),
            address,
        };
        agent.resync()?;
        Ok(agent)
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Why the node must restart to take up a new address of its own, if autodetection (due
    /// now and then) finds one ([`address_watch`]).
    pub fn address_changed(&mut self) -> Option<String> {
        let (uplink, ip, len) = self.address.changed()?;
        let (old_ip, old_len) = self.identity.address;
        Some(format!(
            "the node's address changed from {old_ip}/{old_len} on {} to {ip}/{len} on {uplink}",
            self.identity.uplink
        ))
    }

    /// The agent with the node's stack behind `host_port`.
    pub fn with_host_port(mut self, host_port: HostPort) -> Agent {
        self.host_port = host_port;
        self
    }

    pub fn desired(&self) -> DesiredState {
        let mut desired = self
            .view
            .desired(Some(&self.identity.uplink), self.taps.entries());
        if let Some(bgp) = &self.bgp {
            desired.routes = bgp.routes(&self.view);
        }
        // A limit the endpoint does not set comes from the qdiscs on its veth, if any.
        for w in desired.workloads.iter_mut().filter(|w| w.tap.is_none()) {
            w.qos = tc_limits::merge(w.qos, self.tc.of(&w.interface));
        }
        desired.enforce_policy = true;
        desired.route_underlay = true;
        desired.policies = self.policy.programs().clone();
        desired.host_endpoint = self.policy.host_endpoint(&self.identity.uplink);
        desired.host_port = self.host_port;
        desired
    }

    /// Hands the agent the workers' policy address sets, which it keeps up to date.
    pub fn attach_ip_sets(&mut self, writer: fastpath::classifier::IpSetsWriter) {
        self.policy.attach_sets(writer);
    }

    /// Starts the BGP speaker and peers and originates as the view says; from then on
    /// [`Agent::poll`] keeps it in line and [`Agent::desired`] holds what it learns.
    pub fn start_bgp(&mut self) -> Result<bgp::BgpStatus, bgp::BgpError> {
        let node_bgp = bgp::NodeBgp::start(&self.view, self.identity.address)?;
        let status = node_bgp.status();
        self.bgp = Some(node_bgp);
        Ok(status)
    }

    pub fn endpoint_count(&self) -> usize {
        self.view.endpoint_count()
    }

    /// Every prefix the agent lists and watches, each once.
    fn prefixes(&self) -> Vec<String> {
        let mut prefixes: Vec<String> = watched_prefixes(&self.identity.node_name)
            .into_iter()
            .chain(policy::watched_prefixes())
            .collect();
        prefixes.sort();
        prefixes.dedup();
        prefixes
    }

    /// Lists everything the agent watches and starts the watches from there.
    fn resync(&mut self) -> Result<(), AgentError> {
        self.last_attempt = Some(Instant::now());
        self.resyncs_started += 1;
        self.watches.clear();
        // Before the listing, so that a reset datastore never reads as "no workloads here".
        let put_back = self.own.put_back_if_reset(self.store.as_ref())?;
        if put_back > 0 {
            tracing::warn!(
                records = put_back,
                "the datastore came back reset: the node's own records put back"
            );
        }
        let mut listing = Vec::new();
        let mut from = i64::MAX;
        let prefixes = self.prefixes();
        for prefix in &prefixes {
            let (kvs, revision) = self.store.list(prefix)?;
            listing.extend(kvs);
            from = from.min(revision + 1);
        }
        // Watching from the oldest listing's revision may replay changes a later listing
        // already holds; replaying them in order ends in the same state.
        let mut watches = Vec::new();
        for prefix in &prefixes {
            watches.push(self.store.watch(prefix, from)?);
        }
        self.policy.reset(&listing);
        self.view.reset(listing);
        self.taps.refresh(self.view.endpoint_ids());
        self.watches = watches;
        self.needs_resync = false;
        self.own.mark_stale();
        self.own
            .retake_if_due(self.store.as_ref(), &self.identity.node_name);
        tracing::info!(
            endpoints = self.view.endpoint_count(),
            revision = from - 1,
            "datastore synced"
        );
        Ok(())
    }

    /// Takes in every change that has arrived; true if the desired state may have changed.
    /// Never fails: datastore trouble is logged and retried, and the view is kept meanwhile.
    pub fn poll(&mut self) -> bool {
        if self.needs_resync {
            if self
                .last_attempt
                .is_some_and(|t| t.elapsed() < RESYNC_BACKOFF)
            {
                return false;
            }
            return match self.resync() {
                Ok(()) => {
                    if let Some(bgp) = &mut self.bgp {
                        bgp.sync(&self.view);
                    }
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "datastore resync failed; keeping the current state");
                    false
                }
            };
        }
        let mut changed = false;
        for watch in &self.watches {
            while let Some(event) = watch.try_next() {
                match &event {
                    WatchEvent::Compacted { compact_revision } => {
                        tracing::warn!(compact_revision, "watch compacted; resyncing");
                        self.needs_resync = true;
                    }
                    WatchEvent::Disconnected { reason } => {
                        tracing::warn!(%reason, "datastore connection lost; resyncing when it is back");
                        self.needs_resync = true;
                    }
                    _ => {
                        changed |= self.view.apply(&event);
                        changed |= self.policy.apply(&event);
                        self.own.mark_stale();
                    }
                }
                if self.needs_resync {
                    break;
                }
            }
        }
        if let Some(bgp) = &mut self.bgp {
            if changed {
                bgp.sync(&self.view);
            }
            changed |= bgp.poll();
        }
        self.own
            .retake_if_due(self.store.as_ref(), &self.identity.node_name);
        // With every change, so that a registration written just before its endpoint is
        // read with it; without one, now and then.
        if changed || self.taps.due() {
            changed |= self.taps.refresh(self.view.endpoint_ids());
        }
        if changed || self.tc.due() {
            let veths = self.view.endpoint_ids().map(|(interface, _)| interface);
            changed |= self.tc.refresh(veths);
        }
        changed
    }
}

/// `FELIX_DEFAULTENDPOINTTOHOSTACTION`, when set; a bad value is reported and ignored.
fn endpoint_to_host_from_env() -> Option<resources::EndpointToHostAction> {
    let value = std::env::var(policy::ENDPOINT_TO_HOST_ENV).ok()?;
    policy::parse_endpoint_to_host(&value)
        .map_err(|e| tracing::error!("{e}; using the datastore's setting"))
        .ok()
}

/// Creates or updates this node's Node resource with its address and AS (compare-and-swap).
fn register_node(
    store: &dyn Datastore,
    id: &Identity,
    as_number: Option<u32>,
) -> Result<(), AgentError> {
    let key = keys::resource("nodes", None, &id.node_name);
    let address = format!("{}/{}", id.address.0, id.address.1);
    for _ in 0..10 {
        let existing = store.get(&key)?;
        let mut node = match &existing {
            Some(kv) => match Resource::from_kv(kv) {
                Ok(Resource::Node(n)) => n,
                _ => {
                    return Err(AgentError::Resource {
                        what: key.clone(),
                        reason: "stored Node does not decode".into(),
                    })
                }
            },
            None => resources::Node::new(Metadata::named(&id.node_name), NodeSpec::default()),
        };
        let bgp = node.spec.bgp.get_or_insert_with(NodeBgpSpec::default);
        bgp.ipv4_address = address.clone();
        if let Some(asn) = as_number {
            bgp.as_number = Some(AsNumber::new(asn));
        }
        let resource = Resource::Node(node);
        resource.validate().map_err(|e| AgentError::Resource {
            what: format!("Node {}", id.node_name),
            reason: e.to_string(),
        })?;
        let value = resource.to_stored_json();
        let result = match &existing {
            Some(kv) => store.update(&key, &value, kv.mod_revision).map(|_| ()),
            None => store.create(&key, &value).map(|_| ()),
        };
        match result {
            Ok(()) => {
                tracing::info!(node = %id.node_name, %address, "registered the node");
                return Ok(());
            }
            Err(DatastoreError::Conflict { .. } | DatastoreError::AlreadyExists { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AgentError::Resource {
        what: format!("Node {}", id.node_name),
        reason: "kept losing update races".into(),
    })
}

/// The node's IPIP tunnel address (Node `spec.bgp.ipv4IPIPTunnelAddr`), allocated by IPAM from
/// the IPIP pools with the handle `ipip-tunnel-addr-<node>`, as calico-node does; released
/// again when no pool uses IPIP.
fn ensure_tunnel_address(store: &Arc<dyn Datastore>, id: &Identity) -> Result<(), AgentError> {
    let pools =
        cli::cni::cluster::read_pools(store.as_ref()).map_err(|e| AgentError::Resource {
            what: "IP pools".into(),
            reason: e.msg,
        })?;
    let ipip: Vec<_> = pools
        .into_iter()
        .filter(|p| {
            p.spec.ipip() != resources::EncapMode::Never
                && !p.spec.is_disabled()
                && p.spec.cidr.contains('.')
        })
        .collect();
    let infos = if ipip.is_empty() {
        Vec::new()
    } else {
        cli::cni::cluster::pools_for(&ipip, &[]).map_err(|e| AgentError::Resource {
            what: "IPIP pools".into(),
            reason: e.msg,
        })?
    };
    let ipam = ipam::Ipam::new(store.clone());
    let tunnel = ipam
        .ensure_tunnel_address(&id.node_name, &infos)
        .map_err(|e| AgentError::Resource {
            what: "IPIP tunnel address".into(),
            reason: e.to_string(),
        })?;
    let want = tunnel.map(|a| a.to_string()).unwrap_or_default();
    let key = keys::resource("nodes", None, &id.node_name);
    for _ in 0..10 {
        let Some(kv) = store.get(&key)? else {
            return Ok(());
        };
        let Ok(Resource::Node(mut node)) = Resource::from_kv(&kv) else {
            return Err(AgentError::Resource {
                what: key,
                reason: "stored Node does not decode".into(),
            });
        };
        let bgp = node.spec.bgp.get_or_insert_with(NodeBgpSpec::default);
        if bgp.ipv4_ipip_tunnel_addr == want {
            return Ok(());
        }
        bgp.ipv4_ipip_tunnel_addr = want.clone();
        match store.update(
            &key,
            &Resource::Node(node).to_stored_json(),
            kv.mod_revision,
        ) {
            Ok(_) => {
                tracing::info!(tunnel = %want, "IPIP tunnel address");
                return Ok(());
            }
            Err(DatastoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AgentError::Resource {
        what: format!("Node {}", id.node_name),
        reason: "kept losing update races".into(),
    })
}

/// ClusterInformation `default`, created once per cluster by the first node.
fn ensure_cluster_information(store: &dyn Datastore) -> Result<(), AgentError> {
    let key = keys::resource("clusterinformations", None, "default");
    if store.get(&key)?.is_some() {
        return Ok(());
    }
    let guid: String = {
        let mut bytes = [0u8; 16];
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            let _ = std::io::Read::read_exact(&mut f, &mut bytes);
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    };
    let spec = ClusterInformationSpec {
        cluster_guid: Some(guid),
        cluster_type: Some("brindle,bgp".into()),
        calico_version: Some(format!("brindle-v{}", env!("CARGO_PKG_VERSION"))),
        datastore_ready: Some(true),
        ..ClusterInformationSpec::default()
    };
    let info = Resource::ClusterInformation(resources::ClusterInformation::new(
        Metadata::named("default"),
        spec,
    ));
    match store.create(&key, &info.to_stored_json()) {
        Ok(_) | Err(DatastoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The pool calico-node creates when the cluster has none (`CALICO_IPV4POOL_CIDR`,
/// `CALICO_IPV4POOL_IPIP`; `NO_DEFAULT_POOLS=true` skips it).
fn ensure_default_pool(
    store: &dyn Datastore,
    cidr: Ipv4Prefix,
    ipip: PoolIpip,
) -> Result<(), AgentError> {
    let (existing, _) = store.list(&keys::resource_prefix("ippools", None))?;
    if !existing.is_empty() {
        return Ok(());
    }
    let spec = IpPoolSpec {
        cidr: cidr.to_string(),
        ipip_mode: Some(match ipip {
            PoolIpip::Never => resources::EncapMode::Never,
            PoolIpip::Always => resources::EncapMode::Always,
            PoolIpip::CrossSubnet => resources::EncapMode::CrossSubnet,
        }),
        nat_outgoing: Some(true),
        ..IpPoolSpec::default()
    };
    let mut pool = Resource::IpPool(resources::IpPool::new(
        Metadata::named(DEFAULT_POOL_NAME),
        spec,
    ));
    pool.apply_defaults();
    pool.validate().map_err(|e| AgentError::Resource {
        what: "CALICO_IPV4POOL_CIDR".into(),
        reason: e.to_string(),
    })?;
    match store.create(&pool.key(), &pool.to_stored_json()) {
        Ok(_) => {
            tracing::info!(%cidr, ipip = ipip.as_str(), "created the default IP pool");
            Ok(())
        }
        Err(DatastoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
