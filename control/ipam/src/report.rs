//! Read-only views for `brindlectl ipam show [--show-blocks]` and `ipam check`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use datastore::keys;

use crate::cidr::{BlockMath, Ipv4Prefix};
use crate::ipam::pool_cidr;
use crate::records::IpamHandle;
use crate::{Ipam, PoolInfo, Result};

/// One pool's address usage (`ipam show`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolUsage {
    pub cidr: Ipv4Prefix,
    pub total: u64,
    pub in_use: u64,
    pub free: u64,
}

/// One block's usage (`ipam show --show-blocks`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockUsage {
    pub cidr: Ipv4Prefix,
    /// The node the block is affine to, `None` for a block nobody owns.
    pub affinity: Option<String>,
    pub in_use: u64,
    pub total: u64,
}

/// What `ipam check` found; empty lists mean a consistent datastore.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub blocks_checked: usize,
    pub allocations_checked: usize,
    pub handles_checked: usize,
    /// Allocated addresses whose handle record does not exist (or that have no handle): leaks.
    pub leaked: Vec<LeakedAllocation>,
    /// Handles whose per-block count differs from the allocations found in that block.
    pub handle_mismatches: Vec<HandleMismatch>,
    /// Blocks affine to a node that does not exist.
    pub orphaned_blocks: Vec<OrphanedBlock>,
    /// Records that could not be read: (key, reason).
    pub invalid_records: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakedAllocation {
    pub ip: Ipv4Addr,
    pub handle_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandleMismatch {
    pub handle_id: String,
    pub block: String,
    /// Addresses the handle says it holds in the block.
    pub recorded: u64,
    /// Addresses the block says the handle holds.
    pub found: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrphanedBlock {
    pub cidr: Ipv4Prefix,
    pub host: String,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.leaked.is_empty()
            && self.handle_mismatches.is_empty()
            && self.orphaned_blocks.is_empty()
            && self.invalid_records.is_empty()
    }
}

impl Ipam {
    /// Every block with its affinity and usage, in address order.
    pub fn blocks(&self) -> Result<Vec<BlockUsage>> {
        let (blocks, _) = self.list_blocks()?;
        Ok(blocks
            .iter()
            .map(|s| BlockUsage {
                cidr: s.block.cidr,
                affinity: s.block.host().map(str::to_string),
                in_use: s.block.in_use() as u64,
                total: s.block.size() as u64,
            })
            .collect())
    }

    /// Usage per pool, in the order given: addresses in the pool, allocated, free.
    pub fn usage(&self, pools: &[PoolInfo]) -> Result<Vec<PoolUsage>> {
        let blocks = self.blocks()?;
        pools
            .iter()
            .map(|p| {
                let cidr = pool_cidr(p)?;
                let in_use = blocks
                    .iter()
                    .filter(|b| cidr.covers(&b.cidr))
                    .map(|b| b.in_use)
                    .sum();
                Ok(PoolUsage {
                    cidr,
                    total: cidr.size(),
                    in_use,
                    free: cidr.size().saturating_sub(in_use),
                })
            })
            .collect()
    }

    /// Cross-checks blocks against handles and blocks' affinities against `nodes` (the names
    /// of the Node resources that exist).
    pub fn check(&self, nodes: &[String]) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let (blocks, invalid_blocks) = self.list_blocks()?;
        report.invalid_records.extend(invalid_blocks);
        let (handle_kvs, _) = self.store.list(keys::IPAM_HANDLES)?;
        let mut handles: BTreeMap<String, IpamHandle> = BTreeMap::new();
        for kv in handle_kvs {
            let id = kv
                .key
                .strip_prefix(keys::IPAM_HANDLES)
                .unwrap_or(&kv.key)
                .to_string();
            match serde_json::from_slice::<IpamHandle>(&kv.value) {
                Ok(h) => {
                    handles.insert(id, h);
                }
                Err(e) => report.invalid_records.push((kv.key.clone(), e.to_string())),
            }
        }
        report.handles_checked = handles.len();
        report.blocks_checked = blocks.len();

        let nodes: BTreeSet<&str> = nodes.iter().map(String::as_str).collect();
        // (handle, block) -> allocations found in blocks
        let mut found: BTreeMap<(String, String), u64> = BTreeMap::new();
        for s in &blocks {
            let block = &s.block;
            if let Some(host) = block.host() {
                if !nodes.contains(host) {
                    report.orphaned_blocks.push(OrphanedBlock {
                        cidr: block.cidr,
                        host: host.to_string(),
                    });
                }
            }
            for (ip, attr) in block.allocated() {
                report.allocations_checked += 1;
                match &attr.handle_id {
                    Some(h) if handles.contains_key(h) => {
                        *found
                            .entry((h.clone(), block.cidr.to_string()))
                            .or_default() += 1;
                    }
                    other => report.leaked.push(LeakedAllocation {
                        ip,
                        handle_id: other.clone(),
                    }),
                }
            }
        }
        for (id, handle) in &handles {
            for (block, &recorded) in &handle.block {
                let found = found.remove(&(id.clone(), block.clone())).unwrap_or(0);
                if found != recorded {
                    report.handle_mismatches.push(HandleMismatch {
                        handle_id: id.clone(),
                        block: block.clone(),
                        recorded,
                        found,
                    });
                }
            }
        }
        // Allocations under an existing handle in a block the handle does not list.
        for ((handle_id, block), found) in found {
            report.handle_mismatches.push(HandleMismatch {
                handle_id,
                block,
                recorded: 0,
                found,
            });
        }
        Ok(report)
    }
}
