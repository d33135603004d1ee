//! `ipam show [--show-blocks] [--ip=ADDR]` and `ipam release --ip=ADDR`, over the `ipam`
//! crate (calicoctl's `commands/ipam`); `check`, `release --from-report`, `configure` and
//! `split` have modules of their own.

use std::net::Ipv4Addr;

use datastore::Datastore;
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
