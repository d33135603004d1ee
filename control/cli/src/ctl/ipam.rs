//! `ipam show [--show-blocks] [--ip=ADDR]`, `ipam release --ip=ADDR`, `ipam check`, over the
//! `ipam` crate (calicoctl's `commands/ipam`).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use datastore::Datastore;
use ipam::block::AllocationBlock;
use ipam::{Ipam, Ipv4Prefix, PoolInfo};
use resources::{Kind, Resource};

use super::store;
use super::table::{boxed, count_and_percent, go_g5};
use super::CtlError;

fn ipam_err(e: impl std::fmt::Display) -> CtlError {
    CtlError::new(format!("Error: {e}"))
}

fn parse_ip(ip: &str) -> Result<Ipv4Addr, CtlError> {
    ip.trim().parse().map_err(|_| {
        CtlError::new(format!(
            "Error executing command: invalid IP address specified: '{ip}'"
        ))
    })
}

/// The IPv4 pools as IPAM sees them (IPAM is IPv4-only for now), with their names.
fn ipv4_pools(ds: &dyn Datastore) -> Result<Vec<PoolInfo>, CtlError> {
    let (pools, _) = store::list(ds, Kind::IpPool, None).map_err(ipam_err)?;
    Ok(pools
        .iter()
        .filter_map(Resource::as_ip_pool)
        .filter_map(|p| match p.spec.network()? {
            ipnet::IpNet::V4(net) => Some(PoolInfo {
                cidr: (net.network(), net.prefix_len()),
                block_size: u8::try_from(p.spec.effective_block_size()).unwrap_or(26),
                disabled: p.spec.is_disabled(),
                node_selector_matches: true,
            }),
            ipnet::IpNet::V6(_) => None,
        })
        .collect())
}

/// `ipam show`: one row per pool (and its blocks with `--show-blocks`).
pub fn show(
    ds: std::sync::Arc<dyn Datastore>,
    show_blocks: bool,
    out: &mut String,
) -> Result<(), CtlError> {
    let pools = ipv4_pools(ds.as_ref())?;
    let ipam = Ipam::new(ds);
    let usage = ipam.usage(&pools).map_err(ipam_err)?;
    let blocks = if show_blocks {
        ipam.blocks().map_err(ipam_err)?
    } else {
        Vec::new()
    };
    let mut rows = Vec::new();
    let row = |grouping: &str, cidr: &Ipv4Prefix, in_use: u64, total: u64| {
        vec![
            grouping.to_string(),
            cidr.to_string(),
            go_g5(total),
            count_and_percent(in_use, total),
            count_and_percent(total.saturating_sub(in_use), total),
        ]
    };
    for pool in &usage {
        rows.push(row("IP Pool", &pool.cidr, pool.in_use, pool.total));
        for b in blocks.iter().filter(|b| pool.cidr.covers(&b.cidr)) {
            rows.push(row("Block", &b.cidr, b.in_use, b.total));
        }
    }
    // Blocks left behind by a deleted pool are shown without a pool row, as calicoctl does.
    for b in blocks
        .iter()
        .filter(|b| !usage.iter().any(|p| p.cidr.covers(&b.cidr)))
    {
        rows.push(row("Block", &b.cidr, b.in_use, b.total));
    }
    out.push_str(&boxed(
        &["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"],
        &rows,
    ));
    Ok(())
}

/// `ipam show --ip=ADDR`.
pub fn show_ip(
    ds: std::sync::Arc<dyn Datastore>,
    ip: &str,
    out: &mut String,
) -> Result<(), CtlError> {
    let ip = parse_ip(ip)?;
    match Ipam::new(ds).get_assignment_attrs(ip).map_err(ipam_err)? {
        None => out.push_str(&format!("{ip} is not assigned\n")),
        Some(a) => {
            out.push_str(&format!("IP {ip} is in use\n"));
            if a.attrs.is_empty() {
                out.push_str("No attributes defined\n");
            } else {
                out.push_str("Attributes:\n");
                for (k, v) in &a.attrs {
                    out.push_str(&format!("  {k}: {v}\n"));
                }
            }
        }
    }
    Ok(())
}

/// `ipam release --ip=ADDR`.
pub fn release(
    ds: std::sync::Arc<dyn Datastore>,
    ip: &str,
    out: &mut String,
) -> Result<(), CtlError> {
    let ip = parse_ip(ip)?;
    let not_released = Ipam::new(ds).release_ips(&[ip]).map_err(ipam_err)?;
    if !not_released.is_empty() {
        return Err(CtlError::new(format!("IP address {ip} is not assigned")));
    }
    out.push_str(&format!("Successfully released IP address {ip}\n"));
    Ok(())
}

/// `ipam check`: allocations nobody uses (leaks: no WorkloadEndpoint holds the address and
/// it is no node's tunnel address), allocations without a handle record, handle counts that
/// disagree with their blocks, and blocks affine to nodes that do not exist. The Node list
/// comes from the datastore. Like calicoctl it reports and exits 0.
pub fn check(ds: std::sync::Arc<dyn Datastore>, out: &mut String) -> Result<(), CtlError> {
    out.push_str("Checking IPAM for inconsistencies...\n\n");
    out.push_str("Loading all IPAM blocks...\n");
    let (block_kvs, _) = ds.list(datastore::keys::IPAM_BLOCKS).map_err(ipam_err)?;
    let blocks: Vec<AllocationBlock> = block_kvs
        .iter()
        .filter_map(|kv| AllocationBlock::decode(&kv.value).ok())
        .collect();
    out.push_str(&format!("Found {} IPAM blocks.\n", blocks.len()));

    out.push_str("Loading all nodes...\n");
    let (nodes, _) = store::list(ds.as_ref(), Kind::Node, None).map_err(ipam_err)?;
    let node_names: Vec<String> = nodes.iter().map(|n| n.name().to_string()).collect();
    let mut in_use: BTreeSet<Ipv4Addr> = nodes
        .iter()
        .filter_map(Resource::as_node)
        .filter_map(|n| n.spec.bgp.as_ref())
        .filter_map(|b| b.ipv4_ipip_tunnel_addr.parse().ok())
        .collect();
    out.push_str(&format!("Found {} nodes.\n", nodes.len()));

    out.push_str("Loading all workload endpoints...\n");
    let (weps, _) = store::list(ds.as_ref(), Kind::WorkloadEndpoint, None).map_err(ipam_err)?;
    for wep in weps.iter().filter_map(Resource::as_workload_endpoint) {
        for net in &wep.spec.ip_networks {
            let addr = net.split('/').next().unwrap_or(net);
            if let Ok(ip) = addr.parse::<Ipv4Addr>() {
                in_use.insert(ip);
            }
        }
    }
    out.push_str(&format!("Found {} workload endpoints.\n\n", weps.len()));

    out.push_str("Scanning for IPs that are allocated but not actually in use...\n");
    let mut problems = 0;
    let mut unused = Vec::new();
    for b in &blocks {
        for (ip, attr) in b.allocated() {
            if !in_use.contains(&ip) {
                unused.push((ip, attr.handle_id.clone()));
            }
        }
    }
    out.push_str(&format!(
        "Found {} IPs that are allocated in IPAM but not actually in use.\n",
        unused.len()
    ));
    for (ip, handle) in &unused {
        out.push_str(&format!(
            "  {ip} leaked; handle {}\n",
            handle.as_deref().unwrap_or("<none>")
        ));
    }
    problems += unused.len();

    let report = Ipam::new(ds).check(&node_names).map_err(ipam_err)?;
    out.push_str("Scanning allocations, handles and block affinities...\n");
    out.push_str(&format!(
        "Found {} allocations with no handle record.\n",
        report.leaked.len()
    ));
    for l in &report.leaked {
        out.push_str(&format!(
            "  {} handle {}\n",
            l.ip,
            l.handle_id.as_deref().unwrap_or("<none>")
        ));
    }
    out.push_str(&format!(
        "Found {} handles that disagree with their blocks.\n",
        report.handle_mismatches.len()
    ));
    for m in &report.handle_mismatches {
        out.push_str(&format!(
            "  handle {} block {}: records {} found {}\n",
            m.handle_id, m.block, m.recorded, m.found
        ));
    }
    out.push_str(&format!(
        "Found {} blocks affine to nodes that do not exist.\n",
        report.orphaned_blocks.len()
    ));
    for o in &report.orphaned_blocks {
        out.push_str(&format!("  block {} node {}\n", o.cidr, o.host));
    }
    for (key, reason) in &report.invalid_records {
        out.push_str(&format!("  unreadable record {key}: {reason}\n"));
    }
    problems += report.leaked.len()
        + report.handle_mismatches.len()
        + report.orphaned_blocks.len()
        + report.invalid_records.len();
    out.push_str(&format!("\nCheck complete; found {problems} problems.\n"));
    Ok(())
}
