//! `ipam check [--show-all-ips] [--show-problem-ips] [-o FILE]` (calicoctl's
//! `commands/ipam/check.go`): every allocation in the blocks is cross-referenced with what uses
//! addresses (WorkloadEndpoints and the Nodes' tunnel addresses; brindle has no Kubernetes API,
//! so there are no LoadBalancer services to ask), and handles with the allocations. The
//! summary lines are calicoctl's, in its order; brindle adds two checks of its own (handle
//! counts against blocks, blocks affine to nodes that do not exist). Like calicoctl it reports
//! and exits 0; `-o` writes the report `ipam release --from-report` takes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use datastore::{keys, Datastore};
use ipam::block::AllocationBlock;
use ipam::{BlockMath, Ipam};
use resources::{Kind, Resource};

use super::ipam_report::{client_version, Allocation, CheckReport, HandleInfo};
use super::{cluster_info, store, CtlError};

/// The handle Calico reserves addresses of Windows nodes under; those count as in use.
const WINDOWS_RESERVED_HANDLE: &str = "windows-reserved-ipam-handle";

/// What to print besides the summary, and where the report goes.
pub struct CheckArgs<'a> {
    pub show_all_ips: bool,
    pub show_problem_ips: bool,
    pub output: Option<&'a str>,
}

fn fail(what: &str) -> impl Fn(&dyn std::fmt::Display) -> CtlError + '_ {
    move |e| CtlError::new(format!("failed to {what}: {e}"))
}

/// The checker's state: allocations and in-use addresses by address.
struct Checker<'o> {
    show_all: bool,
    allocations: BTreeMap<IpAddr, Vec<Allocation>>,
    /// Attribute text per allocation (for the `attrs` of the printed lines).
    attr_text: BTreeMap<IpAddr, Vec<String>>,
    in_use: BTreeMap<IpAddr, Vec<String>>,
    in_use_handles: BTreeSet<String>,
    out: &'o mut String,
}

impl Checker<'_> {
    fn record_allocation(
        &mut self,
        b: &AllocationBlock,
        ip: IpAddr,
        attr: &ipam::block::AllocationAttribute,
    ) {
        let block_node = b.host().unwrap_or("").to_string();
        let mut a = Allocation {
            ip: ip.to_string(),
            ..Allocation::default()
        };
        match attr.handle_id.as_deref() {
            Some(WINDOWS_RESERVED_HANDLE) => {
                self.record_in_use(ip, "Reserved for Windows".to_string())
            }
            Some(h) => {
                a.handle = h.to_string();
                self.in_use_handles.insert(h.to_string());
            }
            None => {}
        }
        let get = |k: &str| attr.secondary.get(k).cloned().unwrap_or_default();
        a.node = Some(get("node"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| block_node.clone());
        a.pod = get("pod");
        a.namespace = get("namespace");
        a.alloc_type = get("type");
        a.creation_timestamp = get("timestamp");
        a.borrowed = a.node != block_node;
        a.sequence_number = Some(match ip {
            IpAddr::V4(v4) => b
                .cidr
                .ordinal_of(v4)
                .and_then(|o| b.sequence_number_for_allocation.get(&o.to_string()))
                .copied()
                .unwrap_or(0),
            IpAddr::V6(_) => 0,
        });
        let text = attrs_text(attr);
        if self.show_all {
            self.out
                .push_str(&format!("  {ip} allocated; attrs {text}\n"));
        }
        // An owner recorded before (the Windows reservation) marks it in use.
        if let Some(owners) = self.in_use.get(&ip) {
            a.in_use = true;
            a.owners = Some(owners.clone());
        }
        self.allocations.entry(ip).or_default().push(a);
        self.attr_text.entry(ip).or_default().push(text);
    }

    fn record_in_use(&mut self, ip: IpAddr, owner: String) {
        if self.show_all {
            self.out.push_str(&format!("  {ip} belongs to {owner}\n"));
        }
        for a in self.allocations.get_mut(&ip).into_iter().flatten() {
            a.in_use = true;
            a.owners.get_or_insert_with(Vec::new).push(owner.clone());
        }
        self.in_use.entry(ip).or_default().push(owner);
    }
}

/// calicoctl's `Main:<handle> Extra:k=v,...` of an allocation's attribute.
fn attrs_text(attr: &ipam::block::AllocationAttribute) -> String {
    let extra: Vec<String> = attr
        .secondary
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "Main:{} Extra:{}",
        attr.handle_id.as_deref().unwrap_or("<none>"),
        extra.join(",")
    )
}

/// An address as Calico normalises it (`10.0.0.1/32` and `10.0.0.1` are one address).
fn normalise(addr: &str) -> Option<IpAddr> {
    addr.split('/').next()?.trim().parse().ok()
}

/// calicoctl's `validateBlock`, for the structure rules that decoding does not already
/// enforce: every attribute is used, free ordinals are unique, in range and not allocated,
/// and free plus allocated is the block size.
fn validate_block(b: &AllocationBlock) -> Result<(), String> {
    let size = b.allocations.len();
    let mut seen_attrs = BTreeSet::new();
    let mut allocated = 0;
    for (o, a) in b.allocations.iter().enumerate() {
        let Some(i) = a else { continue };
        if *i >= b.attributes.len() {
            return Err(format!(
                "allocation {o} indexes a nonexistent attribute {i}"
            ));
        }
        seen_attrs.insert(*i);
        allocated += 1;
    }
    if let Some(i) = (0..b.attributes.len()).find(|i| !seen_attrs.contains(i)) {
        return Err(format!(
            "attribute index {i} exists but is not indexed by an allocation"
        ));
    }
    let mut free = BTreeSet::new();
    for &o in &b.unallocated {
        if o >= size {
            return Err(format!(
                "ordinal {o} appears in the Unallocated array but is out of the block"
            ));
        }
        if !free.insert(o) {
            return Err(format!(
                "ordinal {o} appears more than once in Unallocated array"
            ));
        }
        if b.allocations[o].is_some() {
            return Err(format!(
                "ordinal {o} is allocated but appears in Unallocated"
            ));
        }
    }
    if free.len() + allocated != size {
        return Err(format!(
            "expected {size} addresses in this block, but Unallocated ({}) + Allocated ({allocated}) = {}",
            free.len(),
            free.len() + allocated
        ));
    }
    Ok(())
}

pub fn check(
    ds: std::sync::Arc<dyn Datastore>,
    args: &CheckArgs,
    out: &mut String,
) -> Result<(), CtlError> {
    let show_problems = args.show_problem_ips || args.show_all_ips;
    out.push_str("Checking IPAM for inconsistencies...\n\n");
    // calicoctl requires the ClusterInformation; brindle checks a datastore no node has
    // initialised too, with an empty GUID and revision in the report.
    let info = cluster_info::get(ds.as_ref())?;
    let mut report = CheckReport {
        version: client_version(),
        datastore_locked: cluster_info::is_locked(info.as_ref()),
        ..CheckReport::default()
    };
    if let Some(info) = &info {
        report.cluster_guid = info.spec.cluster_guid.clone().unwrap_or_default();
        report.cluster_type = info.spec.cluster_type.clone().unwrap_or_default();
        report.cluster_info_revision = info.metadata.resource_version.clone().unwrap_or_default();
    }

    let mut c = Checker {
        show_all: args.show_all_ips,
        allocations: BTreeMap::new(),
        attr_text: BTreeMap::new(),
        in_use: BTreeMap::new(),
        in_use_handles: BTreeSet::new(),
        out,
    };

    c.out.push_str("Loading all IPAM blocks...\n");
    let (block_kvs, _) = ds
        .list(keys::IPAM_BLOCKS)
        .map_err(|e| fail("list IPAM blocks")(&e))?;
    c.out
        .push_str(&format!("Found {} IPAM blocks.\n", block_kvs.len()));
    let mut invalid_blocks: Vec<(String, String)> = Vec::new();
    let mut blocks = Vec::new();
    for kv in &block_kvs {
        match AllocationBlock::decode(&kv.value) {
            Ok(b) => blocks.push(b),
            Err(reason) => invalid_blocks.push((kv.key.clone(), reason)),
        }
    }
    blocks.sort_by_key(|b| b.cidr);
    let mut num_allocs = 0;
    for b in &blocks {
        c.out.push_str(&format!(
            " IPAM block {} affinity={}:\n",
            b.cidr,
            b.affinity.as_deref().unwrap_or("<none>")
        ));
        for (ip, attr) in b.allocated() {
            num_allocs += 1;
            c.record_allocation(b, IpAddr::V4(ip), attr);
        }
        if let Err(reason) = validate_block(b) {
            invalid_blocks.push((keys::ipam_block(&b.cidr.to_string()), reason));
        }
    }
    c.out
        .push_str(&format!("IPAM blocks record {num_allocs} allocations.\n\n"));

    c.out.push_str("Loading all IPAM pools...\n");
    let (pools, _) =
        store::list(ds.as_ref(), Kind::IpPool, None).map_err(|e| fail("load IP pools")(&e))?;
    let mut active_pools = Vec::new();
    for p in pools.iter().filter_map(Resource::as_ip_pool) {
        if p.spec.is_disabled() {
            continue;
        }
        c.out.push_str(&format!("  {}\n", p.spec.cidr));
        let net = p.spec.network().ok_or_else(|| {
            CtlError::new(format!(
                "failed to parse IP pool CIDR: spec.cidr = '{}' of IPPool({})",
                p.spec.cidr, p.metadata.name
            ))
        })?;
        active_pools.push(net);
    }
    c.out.push_str(&format!(
        "Found {} active IP pools.\n\n",
        active_pools.len()
    ));

    c.out.push_str("Loading all nodes.\n");
    let (nodes, _) =
        store::list(ds.as_ref(), Kind::Node, None).map_err(|e| fail("list nodes")(&e))?;
    let mut node_ips = 0;
    for n in nodes.iter().filter_map(Resource::as_node) {
        let tunnels = [
            (
                "IPv4VXLANTunnelAddr",
                n.spec.ipv4_vxlan_tunnel_addr.as_str(),
            ),
            (
                "IPv4IPIPTunnelAddr",
                n.spec
                    .bgp
                    .as_ref()
                    .map_or("", |b| b.ipv4_ipip_tunnel_addr.as_str()),
            ),
        ];
        for (field, addr) in tunnels.into_iter().filter(|(_, a)| !a.is_empty()) {
            let ip = normalise(addr).ok_or_else(|| {
                CtlError::new(format!(
                    "failed to parse {field} ({addr}) of node {}",
                    n.metadata.name
                ))
            })?;
            c.record_in_use(ip, format!("Node({})", n.metadata.name));
            node_ips += 1;
        }
    }
    c.out
        .push_str(&format!("Found {node_ips} node tunnel IPs.\n\n"));

    c.out.push_str("Loading all service load balancer IPs.\n");
    c.out
        .push_str("No Kubernetes API in a brindle datastore, skipping service check\n\n");

    c.out.push_str("Loading all workload endpoints.\n");
    let (weps, _) = store::list(ds.as_ref(), Kind::WorkloadEndpoint, None)
        .map_err(|e| fail("list workload endpoints")(&e))?;
    let mut wep_ips = 0;
    for w in weps.iter().filter_map(Resource::as_workload_endpoint) {
        let ns = w.metadata.namespace.as_deref().unwrap_or("default");
        for net in &w.spec.ip_networks {
            let ip = normalise(net).ok_or_else(|| {
                CtlError::new(format!(
                    "failed to parse IP ({net}) of workload {ns}/{}",
                    w.metadata.name
                ))
            })?;
            c.record_in_use(ip, format!("Workload({ns}/{})", w.metadata.name));
            wep_ips += 1;
        }
    }
    c.out.push_str(&format!("Found {wep_ips} workload IPs.\n"));
    c.out.push_str(&format!(
        "Workloads and nodes are using {} IPs.\n\n",
        c.in_use.len()
    ));

    c.out.push_str("Loading all handles\n");
    let (handle_kvs, _) = ds
        .list(keys::IPAM_HANDLES)
        .map_err(|e| fail("list handles")(&e))?;
    let handles: BTreeMap<String, HandleInfo> = handle_kvs
        .iter()
        .map(|kv| {
            let id = kv
                .key
                .strip_prefix(keys::IPAM_HANDLES)
                .unwrap_or(&kv.key)
                .to_string();
            let info = HandleInfo {
                id: id.clone(),
                uid: None,
                revision: kv.mod_revision.to_string(),
            };
            (id, info)
        })
        .collect();

    print_top_nodes(c.out, &c.allocations);

    let mut problems = 0;
    c.out
        .push_str("Scanning for IPs that are allocated but not actually in use...\n");
    let mut leaked = 0;
    for (ip, allocs) in &c.allocations {
        if c.in_use.contains_key(ip) || allocs.iter().any(|a| a.cooling_down) {
            continue;
        }
        if show_problems {
            for text in c.attr_text.get(ip).into_iter().flatten() {
                c.out.push_str(&format!("  {ip} leaked; attrs {text}\n"));
            }
        }
        leaked += 1;
    }
    problems += leaked;
    c.out.push_str(&format!(
        "Found {leaked} IPs that are allocated in IPAM but not actually in use.\n"
    ));

    c.out.push_str(
        "Scanning for IPs that are in use by a workload or node but not allocated in IPAM...\n",
    );
    let (mut outside_pools, mut unallocated) = (0, 0);
    for (ip, owners) in &c.in_use {
        if show_problems && owners.len() > 1 {
            c.out.push_str(&format!("  {ip} has multiple owners.\n"));
        }
        if c.allocations.contains_key(ip) {
            continue;
        }
        let in_pool = active_pools.iter().any(|p| p.contains(ip));
        if show_problems {
            for owner in owners {
                if in_pool {
                    c.out.push_str(&format!(
                        "  {ip} in use by {owner} and in active IPAM pool but has no IPAM allocation.\n"
                    ));
                } else {
                    c.out.push_str(&format!(
                        "  {ip} in use by {owner} is not in any active IP pool.\n"
                    ));
                }
            }
        }
        if in_pool {
            unallocated += 1;
        } else {
            outside_pools += 1;
        }
    }
    problems += outside_pools + unallocated;
    c.out.push_str(&format!(
        "Found {outside_pools} in-use IPs that are not in active IP pools.\n"
    ));
    c.out.push_str(&format!(
        "Found {unallocated} in-use IPs that are in active IP pools but have no corresponding IPAM allocation.\n\n"
    ));

    c.out
        .push_str("Scanning for IPAM handles with no matching IPs...\n");
    let mut good = 0;
    for (id, info) in &handles {
        if c.in_use_handles.contains(id) {
            good += 1;
            continue;
        }
        if args.show_all_ips {
            c.out
                .push_str(&format!("  {id} doesn't have any active IPs.\n"));
        }
        report.leaked_handles.push(info.clone());
    }
    problems += report.leaked_handles.len();
    c.out.push_str(&format!(
        "Found {} handles with no matching IPs (and {good} handles with matches).\n",
        report.leaked_handles.len()
    ));

    c.out.push_str("Scanning for IPs with missing handle...\n");
    let mut missing = 0;
    for id in c
        .in_use_handles
        .iter()
        .filter(|h| !handles.contains_key(*h))
    {
        if show_problems {
            c.out
                .push_str(&format!("  {id} is in use in a block but doesn't exist.\n"));
        }
        missing += 1;
    }
    // calicoctl reports these without counting them as problems.
    c.out.push_str(&format!(
        "Found {missing} handles mentioned in blocks with no matching handle resource.\n"
    ));

    c.out.push_str("Validating IPAMBlock structures...\n");
    for (key, reason) in &invalid_blocks {
        c.out
            .push_str(&format!("  IPAMBlock {key} is invalid: {reason}\n"));
    }
    problems += invalid_blocks.len();
    c.out.push_str(&format!(
        "Found {} invalid IPAMBlocks.\n",
        invalid_blocks.len()
    ));

    problems += brindle_checks(&ds, &nodes, show_problems, c.out)?;
    c.out
        .push_str(&format!("Check complete; found {problems} problems.\n"));

    if let Some(path) = args.output {
        report.allocations = c
            .allocations
            .into_iter()
            .map(|(ip, a)| (ip.to_string(), a))
            .collect();
        write_report(path, &report)?;
    }
    Ok(())
}

/// calicoctl's "top nodes by allocations" lines (at most 20, most first, ties by name).
fn print_top_nodes(out: &mut String, allocations: &BTreeMap<IpAddr, Vec<Allocation>>) {
    const TOP: usize = 20;
    out.push_str(&format!(
        "Looking for top (up to {TOP}) nodes by allocations...\n"
    ));
    let mut by_node: BTreeMap<&str, usize> = BTreeMap::new();
    for a in allocations.values().flatten() {
        *by_node.entry(a.node.as_str()).or_default() += 1;
    }
    let mut nodes: Vec<(&str, usize)> = by_node.into_iter().collect();
    nodes.sort_by_key(|n| std::cmp::Reverse(n.1));
    for (node, count) in nodes.iter().take(TOP) {
        out.push_str(&format!("  {node} has {count} allocations\n"));
    }
    if let Some((_, max)) = nodes.first() {
        let median = nodes[nodes.len() / 2].1;
        out.push_str(&format!(
            "Node with most allocations has {max}; median is {median}\n"
        ));
    }
    out.push('\n');
}

/// brindle's own checks after calicoctl's: handle records whose per-block counts disagree
/// with the blocks, and blocks affine to a node that does not exist. Returns the problems.
fn brindle_checks(
    ds: &std::sync::Arc<dyn Datastore>,
    nodes: &[Resource],
    show_problems: bool,
    out: &mut String,
) -> Result<usize, CtlError> {
    let names: Vec<String> = nodes.iter().map(|n| n.name().to_string()).collect();
    let r = Ipam::new(ds.clone())
        .check(&names)
        .map_err(|e| CtlError::new(format!("Error: {e}")))?;
    out.push_str("Scanning handle counts against blocks...\n");
    if show_problems {
        for m in &r.handle_mismatches {
            out.push_str(&format!(
                "  handle {} in block {} records {} addresses, the block has {}.\n",
                m.handle_id, m.block, m.recorded, m.found
            ));
        }
    }
    out.push_str(&format!(
        "Found {} handles whose counts disagree with their blocks.\n",
        r.handle_mismatches.len()
    ));
    out.push_str("Scanning block affinities...\n");
    if show_problems {
        for o in &r.orphaned_blocks {
            out.push_str(&format!(
                "  block {} is affine to node {}.\n",
                o.cidr, o.host
            ));
        }
    }
    out.push_str(&format!(
        "Found {} blocks affine to nodes that do not exist.\n",
        r.orphaned_blocks.len()
    ));
    Ok(r.handle_mismatches.len() + r.orphaned_blocks.len())
}

fn write_report(path: &str, report: &CheckReport) -> Result<(), CtlError> {
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| CtlError::new(format!("failed to encode the report: {e}")))?;
    std::fs::write(path, json).map_err(|e| {
        CtlError::new(format!(
            "failed to write the report to --output '{path}': {e}"
        ))
    })
}
