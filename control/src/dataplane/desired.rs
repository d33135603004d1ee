//! What the node should be forwarding for: the desired state an apply brings the dataplane to.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use fastpath::hostpath::FailsafePort;
use fastpath::policy::{EndpointPolicy, HostPolicy};

use crate::config::{NodeConfig, RouteConfig, WorkloadConfig};
use crate::host::Ipv4Prefix;
use crate::hostveth::HostPort;

/// What the node should be forwarding for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredState {
    pub workloads: Vec<WorkloadConfig>,
    pub uplink: Option<String>,
    pub pools: Vec<Ipv4Prefix>,
    /// Pools with `natOutgoing`: their workloads' traffic to destinations outside every pool
    /// leaves with the node's address.
    pub nat_pools: Vec<Ipv4Prefix>,
    /// Route through the host's own gateway routes on the uplink too (agent mode).
    pub route_underlay: bool,
    /// Static routes, and routes to other nodes' workloads: prefix, via (the other node, or a
    /// gateway on the uplink's subnet) and encapsulation (none or IPIP). The `via` of every
    /// IPIP route is a known node, whose IPIP packets are decapsulated (see
    /// `programme::tables`).
    pub routes: Vec<RouteConfig>,
    /// The node's own IPAM blocks: addresses in them that no workload has are dropped here
    /// rather than sent anywhere (Calico's blackhole routes for affine blocks).
    pub blackholes: Vec<Ipv4Prefix>,
    /// Police workloads: each gets its program from `policies`, and one without a program
    /// gets none of its traffic through (Calico: no policy and no profile, no traffic). Off in
    /// file mode, where workloads are not policed.
    pub enforce_policy: bool,
    /// Compiled policy of the workloads, by interface name.
    pub policies: BTreeMap<String, EndpointPolicyHandle>,
    /// The host endpoint on the uplink (agent mode), when one applies: the node's own traffic
    /// through the uplink then goes round the vRouter and is policed (see `hostveth`).
    pub host_endpoint: Option<HostEndpointState>,
    /// What the way to the node's stack is made of.
    pub host_port: HostPort,
    /// The workloads' floating IPs (WorkloadEndpoint `ipNATs`): (external, internal).
    pub floating_ips: Vec<(Ipv4Addr, Ipv4Addr)>,
}

/// A host endpoint's compiled policy and Felix's failsafe ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEndpointState {
    pub policy: HostPolicyHandle,
    pub failsafe_inbound: Vec<FailsafePort>,
    pub failsafe_outbound: Vec<FailsafePort>,
}

/// A compiled policy; equal when it is the same compilation.
#[derive(Debug)]
pub struct PolicyHandle<P>(pub(super) Arc<P>);

/// A host endpoint's compiled policy.
pub type HostPolicyHandle = PolicyHandle<HostPolicy>;

/// A workload's compiled policy.
pub type EndpointPolicyHandle = PolicyHandle<EndpointPolicy>;

impl<P> PolicyHandle<P> {
    pub fn new(policy: P) -> PolicyHandle<P> {
        PolicyHandle(Arc::new(policy))
    }
}

impl<P> Clone for PolicyHandle<P> {
    fn clone(&self) -> Self {
        PolicyHandle(self.0.clone())
    }
}

impl<P> PartialEq for PolicyHandle<P> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<P> Eq for PolicyHandle<P> {}

impl DesiredState {
    pub fn from_config(config: &NodeConfig) -> DesiredState {
        DesiredState {
            workloads: config.workloads.clone(),
            uplink: config.uplink.clone(),
            pools: config.pools.clone(),
            nat_pools: Vec::new(),
            route_underlay: false,
            routes: config.routes.clone(),
            blackholes: Vec::new(),
            enforce_policy: false,
            policies: BTreeMap::new(),
            host_endpoint: None,
            host_port: config.host_port,
            floating_ips: Vec::new(),
        }
    }

    /// What the XDP program sends from the uplink to the vRouter by destination: the pools,
    /// and the floating IPs (as /32s).
    pub fn vrouter_destinations(&self) -> Vec<Ipv4Prefix> {
        let mut prefixes = self.pools.clone();
        for (external, _) in &self.floating_ips {
            let host = Ipv4Prefix::host(*external);
            if !prefixes.contains(&host) {
                prefixes.push(host);
            }
        }
        prefixes
    }
}
