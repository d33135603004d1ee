//! Several one-node labs on one L2 segment, some optionally behind a router in another
//! subnet: forwarding between nodes.

use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::netns::{
    delete_netns, netns_exists, toml_str, Lab, LabError, LabSpec, Offloads, WorkloadPort,
    MAX_NAME_LEN, UPLINK_IF,
};
use crate::wiring::{apply_offloads, ip, sysctl};

/// The segment the nodes' uplinks share: node `k` is `10.98.0.k/24`.
pub const SEGMENT_BASE: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 0);
/// The subnet behind the router, for nodes that are not on the segment: node `k` is
/// `10.97.0.k/24`.
pub const REMOTE_SUBNET_BASE: Ipv4Addr = Ipv4Addr::new(10, 97, 0, 0);
/// The router's address on each of the two subnets (`.254`).
pub const ROUTER_HOST: u8 = 254;
/// Both subnets are /24s.
pub const MULTI_PREFIX_LEN: u8 = 24;
/// Multi-node lab names leave room for the node digit in a [`LabSpec`] name.
pub const MAX_MULTI_NAME_LEN: usize = MAX_NAME_LEN - 1;
/// Nodes are numbered with one digit.
pub const MAX_NODES: usize = 9;

/// What to build: `nodes` nodes, each wired like the one-node lab (Calico workloads, the
/// kernel not forwarding), whose uplinks `eth0` are bridged on one L2 segment in the
/// `<name>-sw` namespace:
///
/// ```text
///  <name>1-node eth0 10.98.0.1 --+
///  <name>2-node eth0 10.98.0.2 --+-- br0 (<name>-sw) -- 10.98.0.254 <name>-rt 10.97.0.254 --+
///                                                                       br1 (<name>-sw) ----+
///  <name>3-node eth0 10.97.0.3 -----------------------------------------------------------+
/// ```
///
/// The last `routed_nodes` nodes sit on a second subnet behind a router namespace (for
/// CrossSubnet), which exists only when there are such nodes. Node `k` (from 1) hands its
/// workloads addresses from `192.168.k.0/24` ([`MultiLabSpec::node_block`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiLabSpec {
    /// `[a-z0-9]`, starts with a letter, at most 7 characters.
    pub name: String,
    pub nodes: usize,
    /// Workloads per node.
    pub workloads: usize,
    /// How many of the nodes (the last ones) are behind the router.
    pub routed_nodes: usize,
    /// Of every veth: the workloads', the uplinks' and the router's.
    #[serde(default)]
    pub offloads: Offloads,
    /// Every node's workloads' `eth0`.
    #[serde(default)]
    pub workload_port: WorkloadPort,
}

impl MultiLabSpec {
    pub fn new(name: impl Into<String>, nodes: usize, workloads: usize) -> Self {
        MultiLabSpec {
            name: name.into(),
            nodes,
            workloads,
            routed_nodes: 0,
            offloads: Offloads::Off,
            workload_port: WorkloadPort::Veth,
        }
    }

    pub fn validate(&self) -> Result<(), LabError> {
        if self.name.len() > MAX_MULTI_NAME_LEN {
            return Err(LabError::InvalidSpec {
                field: "name",
                value: self.name.clone(),
                reason: "a multi-node lab name has at most 7 characters",
            });
        }
        if self.nodes == 0 || self.nodes > MAX_NODES {
            return Err(LabError::InvalidSpec {
                field: "nodes",
                value: self.nodes.to_string(),
                reason: "1 to 9 nodes",
            });
        }
        if self.routed_nodes > self.nodes {
            return Err(LabError::InvalidSpec {
                field: "routed_nodes",
                value: self.routed_nodes.to_string(),
                reason: "more routed nodes than nodes",
            });
        }
        (1..=self.nodes).try_for_each(|k| self.node_spec(k).validate())
    }

    /// The one-node lab spec of node `k` (from 1): no uplink of its own (the multi-node lab
    /// adds `eth0`), workloads from [`MultiLabSpec::node_block`].
    pub fn node_spec(&self, k: usize) -> LabSpec {
        LabSpec {
            pool_base: Ipv4Addr::new(192, 168, k as u8, 0),
            uplink: false,
            offloads: self.offloads,
            workload_port: self.workload_port,
            ..LabSpec::new(format!("{}{k}", self.name), self.workloads)
        }
    }

    /// Where node `k`'s workloads are: `192.168.k.0/24`.
    pub fn node_block(&self, k: usize) -> String {
        format!("192.168.{k}.0/24")
    }

    /// Whether node `k` is behind the router rather than on the segment.
    pub fn is_routed(&self, k: usize) -> bool {
        k > self.nodes - self.routed_nodes
    }

    /// Node `k`'s uplink address.
    pub fn node_ip(&self, k: usize) -> Ipv4Addr {
        let base = if self.is_routed(k) {
            REMOTE_SUBNET_BASE
        } else {
            SEGMENT_BASE
        };
        Ipv4Addr::from(u32::from(base) + k as u32)
    }

    /// The router's address on node `k`'s subnet: node `k`'s gateway to the other subnet.
    pub fn gateway_for(&self, k: usize) -> Ipv4Addr {
        let base = if self.is_routed(k) {
            REMOTE_SUBNET_BASE
        } else {
            SEGMENT_BASE
        };
        Ipv4Addr::from(u32::from(base) + u32::from(ROUTER_HOST))
    }

    pub fn switch_netns(&self) -> String {
        format!("{}-sw", self.name)
    }

    pub fn router_netns(&self) -> String {
        format!("{}-rt", self.name)
    }

    /// The bridge port in the switch namespace that node `k`'s uplink is plugged into.
    pub fn switch_port(&self, k: usize) -> String {
        format!("n{k}")
    }

    /// The namespaces of the segment itself (switch, and router when there is one).
    fn fabric_netns(&self) -> Vec<String> {
        let mut names = vec![self.switch_netns()];
        if self.routed_nodes > 0 {
            names.push(self.router_netns());
        }
        names
    }

    /// Every namespace the lab is made of: each node's (workloads first), then the fabric.
    pub fn netns_names(&self) -> Vec<String> {
        (1..=self.nodes)
            .flat_map(|k| self.node_spec(k).netns_names())
            .chain(self.fabric_netns())
            .collect()
    }
}

/// Deletes exactly the namespaces named by `spec`, if present (for a lab built by another
/// process, e.g. `brindle-lab multi-up`); idempotent.
pub fn down_multi_spec(spec: &MultiLabSpec) -> Result<(), LabError> {
    spec.validate()?;
    let mut first_error = None;
    for ns in spec.netns_names() {
        if let Err(e) = delete_netns(&ns) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// A multi-node lab that exists; dropping it takes it down.
#[derive(Debug)]
pub struct MultiLab {
    spec: MultiLabSpec,
    /// Node `k` is `nodes[k - 1]`; each takes its own namespaces down on drop.
    nodes: Vec<Lab>,
    down_on_drop: bool,
}

impl MultiLab {
    /// Builds the segment, then every node. On failure, what was built is removed.
    pub fn up(spec: &MultiLabSpec) -> Result<MultiLab, LabError> {
        spec.validate()?;
        let fabric = spec.fabric_netns();
        let node_namespaces = (1..=spec.nodes).flat_map(|k| spec.node_spec(k).netns_names());
        if let Some(ns) = fabric
            .iter()
            .cloned()
            .chain(node_namespaces)
            .find(|ns| netns_exists(ns))
        {
            return Err(LabError::Exists(ns));
        }
        let mut lab = MultiLab {
            spec: spec.clone(),
            nodes: Vec::with_capacity(spec.nodes),
            down_on_drop: true,
        };
        // On error `lab` drops: the nodes built so far and the fabric are removed.
        lab.build_fabric()?;
        for k in 1..=spec.nodes {
            let node = Lab::up(&spec.node_spec(k))?;
            lab.nodes.push(node);
            lab.plug_node(k)?;
        }
        Ok(lab)
    }

    pub fn spec(&self) -> &MultiLabSpec {
        &self.spec
    }

    /// Node `k` (from 1) as a one-node lab: its namespaces and workloads.
    pub fn node(&self, k: usize) -> Option<&Lab> {
        k.checked_sub(1).and_then(|i| self.nodes.get(i))
    }

    /// The `brindle-node` configuration of node `k`, with `eth0` as its uplink and no
    /// routes (the caller appends `[[route]]` tables).
    pub fn node_config_toml(&self, k: usize, mode: &str, control_socket: &Path) -> Option<String> {
        let node = self.node(k)?;
        // Top-level keys go before the [[workload]] tables the one-node lab writes.
        Some(format!(
            "uplink = {}\n{}",
            toml_str(UPLINK_IF),
            node.node_config_toml(mode, control_socket)
        ))
    }

    /// Leaves the lab in place when this handle is dropped (for the CLI's `multi-up`).
    pub fn keep(mut self) {
        self.down_on_drop = false;
        for node in std::mem::take(&mut self.nodes) {
            node.keep();
        }
    }

    /// Deletes the fabric's namespaces and every node's.
    pub fn down(&self) -> Result<(), LabError> {
        let mut first_error = None;
        for node in &self.nodes {
            if let Err(e) = node.down() {
                first_error.get_or_insert(e);
            }
        }
        for ns in self.spec.fabric_netns() {
            if let Err(e) = delete_netns(&ns) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The switch (two bridges) and, with routed nodes, the router between them.
    fn build_fabric(&mut self) -> Result<(), LabError> {
        let sw = self.spec.switch_netns();
        add_bare_netns(&sw)?;
        for bridge in ["br0", "br1"] {
            ip(&["-n", &sw, "link", "add", bridge, "type", "bridge"])?;
            ip(&["-n", &sw, "link", "set", bridge, "up"])?;
        }
        if self.spec.routed_nodes == 0 {
            return Ok(());
        }
        let rt = self.spec.router_netns();
        add_bare_netns(&rt)?;
        sysctl(&rt, "net.ipv4.ip_forward", "1")?;
        let legs = [
            ("seg", "br0", SEGMENT_BASE),
            ("rem", "br1", REMOTE_SUBNET_BASE),
        ];
        for (leg, bridge, base) in legs {
            ip(&[
                "-n", &rt, "link", "add", leg, "type", "veth", "peer", "name", leg, "netns", &sw,
            ])?;
            let cidr = format!(
                "{}/{MULTI_PREFIX_LEN}",
                Ipv4Addr::from(u32::from(base) + u32::from(ROUTER_HOST))
            );
            ip(&["-n", &rt, "addr", "add", &cidr, "dev", leg])?;
            apply_offloads(self.spec.offloads, &[(&rt, leg), (&sw, leg)])?;
            ip(&["-n", &sw, "link", "set", leg, "master", bridge, "up"])?;
            ip(&["-n", &rt, "link", "set", leg, "up"])?;
        }
        Ok(())
    }

    /// Node `k`'s `eth0`, plugged into its subnet's bridge, with a kernel route to the other
    /// subnet through the router (for the node's own traffic; the kernel does not forward).
    fn plug_node(&mut self, k: usize) -> Result<(), LabError> {
        let spec = &self.spec;
        let node = spec.node_spec(k).node_netns();
        let sw = spec.switch_netns();
        let port = spec.switch_port(k);
        ip(&[
            "-n", &node, "link", "add", UPLINK_IF, "type", "veth", "peer", "name", &port, "netns",
            &sw,
        ])?;
        let cidr = format!("{}/{MULTI_PREFIX_LEN}", spec.node_ip(k));
        ip(&["-n", &node, "addr", "add", &cidr, "dev", UPLINK_IF])?;
        apply_offloads(spec.offloads, &[(&node, UPLINK_IF), (&sw, &port)])?;
        let bridge = if spec.is_routed(k) { "br1" } else { "br0" };
        ip(&["-n", &sw, "link", "set", &port, "master", bridge, "up"])?;
        ip(&["-n", &node, "link", "set", UPLINK_IF, "up"])?;
        if spec.routed_nodes > 0 {
            let other = if spec.is_routed(k) {
                SEGMENT_BASE
            } else {
                REMOTE_SUBNET_BASE
            };
            let other = format!("{other}/{MULTI_PREFIX_LEN}");
            let gateway = spec.gateway_for(k).to_string();
            ip(&["-n", &node, "route", "add", &other, "via", &gateway])?;
        }
        Ok(())
    }
}

impl Drop for MultiLab {
    fn drop(&mut self) {
        if !self.down_on_drop {
            return;
        }
        if let Err(e) = self.down() {
            eprintln!("multi-node lab {}: teardown failed: {e}", self.spec.name);
        }
    }
}

/// A namespace with loopback up, outside any one-node lab.
fn add_bare_netns(ns: &str) -> Result<(), LabError> {
    ip(&["netns", "add", ns])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_node_addresses_put_routed_nodes_behind_the_router() {
        let spec = MultiLabSpec {
            routed_nodes: 1,
            ..MultiLabSpec::new("mesh", 3, 2)
        };
        spec.validate().unwrap();
        assert_eq!(spec.node_ip(1), Ipv4Addr::new(10, 98, 0, 1));
        assert_eq!(spec.node_ip(2), Ipv4Addr::new(10, 98, 0, 2));
        assert!(spec.is_routed(3) && !spec.is_routed(2));
        assert_eq!(spec.node_ip(3), Ipv4Addr::new(10, 97, 0, 3));
        assert_eq!(spec.gateway_for(1), Ipv4Addr::new(10, 98, 0, 254));
        assert_eq!(spec.gateway_for(3), Ipv4Addr::new(10, 97, 0, 254));
        let node2 = spec.node_spec(2);
        assert_eq!((node2.name.as_str(), node2.uplink), ("mesh2", false));
        assert_eq!(node2.workload_ip(1), Ipv4Addr::new(192, 168, 2, 1));
        assert_eq!(spec.node_block(2), "192.168.2.0/24");
        assert_eq!(
            spec.fabric_netns(),
            vec!["mesh-sw".to_owned(), "mesh-rt".to_owned()]
        );
        assert_eq!(
            MultiLabSpec::new("mesh", 2, 1).fabric_netns(),
            vec!["mesh-sw".to_owned()],
            "no router without routed nodes"
        );
    }

    #[test]
    fn multi_node_namespaces_are_every_nodes_then_the_fabric() {
        let spec = MultiLabSpec {
            routed_nodes: 1,
            ..MultiLabSpec::new("demo", 3, 1)
        };
        let names = spec.netns_names();
        assert_eq!(
            names,
            [
                "demo1-w1",
                "demo1-node",
                "demo2-w1",
                "demo2-node",
                "demo3-w1",
                "demo3-node",
                "demo-sw",
                "demo-rt"
            ]
        );
        let json = serde_json::to_string(&spec).unwrap();
        let back: MultiLabSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back, spec,
            "the record brindle-lab multi-up writes reads back"
        );
    }

    /// Root: builds namespaces. `brindle-lab multi-up` keeps the lab after its handle is gone,
    /// and `multi-down` (another process) removes exactly its namespaces, idempotently.
    #[test]
    fn a_kept_multi_node_lab_outlives_its_handle_until_down_multi_spec() {
        let spec = MultiLabSpec {
            routed_nodes: 1,
            ..MultiLabSpec::new(format!("k{}", std::process::id() % 100_000), 2, 1)
        };
        MultiLab::up(&spec).expect("multi-node lab up").keep();
        let kept: Vec<String> = spec
            .netns_names()
            .into_iter()
            .filter(|ns| !netns_exists(ns))
            .collect();
        let first_down = down_multi_spec(&spec);
        let left: Vec<String> = spec
            .netns_names()
            .into_iter()
            .filter(|ns| netns_exists(ns))
            .collect();
        assert!(kept.is_empty(), "missing after keep(): {kept:?}");
        assert!(first_down.is_ok(), "{first_down:?}");
        assert!(left.is_empty(), "left after down_multi_spec: {left:?}");
        assert!(down_multi_spec(&spec).is_ok(), "idempotent");
    }

    #[test]
    fn multi_node_specs_refuse_long_names_and_bad_counts() {
        assert!(
            MultiLabSpec::new("eightchr", 2, 1).validate().is_err(),
            "node names would exceed 8 characters"
        );
        assert!(MultiLabSpec::new("m", 0, 1).validate().is_err());
        assert!(MultiLabSpec::new("m", 10, 1).validate().is_err());
        assert!(MultiLabSpec {
            routed_nodes: 3,
            ..MultiLabSpec::new("m", 2, 1)
        }
        .validate()
        .is_err());
    }
}
