//! Conditional release (libcalico-go `ReleaseIPs` with `ReleaseOptions`): an address is freed
//! only while it is still the allocation a caller saw, the same handle and the same sequence
//! number, so that a report of leaked addresses made a while ago cannot free an address that
//! was released and handed to a new workload since.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use datastore::keys;

use crate::block::AllocationBlock;
use crate::cas::{retry, settle, Attempt};
use crate::cidr::{BlockMath, Ipv4Prefix};
use crate::{Ipam, Result};

/// One address to release and what it must still be allocated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseOptions {
    pub address: Ipv4Addr,
    /// The handle it must be held by (`None`: any, or none).
    pub handle: Option<String>,
    /// The block's sequence number for the allocation (`None`: not checked).
    pub sequence_number: Option<u64>,
}

/// What [`Ipam::release_checked`] did with each address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReleaseOutcome {
    pub released: Vec<Ipv4Addr>,
    /// Not allocated any more (released by someone else already).
    pub not_allocated: Vec<Ipv4Addr>,
    /// Allocated again, or under another handle, since the caller looked: left alone.
    pub changed: Vec<Ipv4Addr>,
}

/// Whether `opts` still describes the allocation of its address in `block`; `None` when the
/// address is not allocated.
fn still_matches(block: &AllocationBlock, opts: &ReleaseOptions) -> Option<bool> {
    let attr = block.attribute_of(opts.address)?;
    let handle_ok = match &opts.handle {
        Some(h) => attr.handle_id.as_deref() == Some(h.as_str()),
        None => true,
    };
    let seq_ok = match opts.sequence_number {
        Some(want) => {
            let ordinal = block.cidr.ordinal_of(opts.address)?;
            block
                .sequence_number_for_allocation
                .get(&ordinal.to_string())
                .copied()
                .unwrap_or(0)
                == want
        }
        None => true,
    };
    Some(handle_ok && seq_ok)
}

impl Ipam {
    /// Releases each address that is still allocated as described; one CAS write per block.
    pub fn release_checked(&self, requests: &[ReleaseOptions]) -> Result<ReleaseOutcome> {
        let mut outcome = ReleaseOutcome::default();
        let (blocks, _) = self.list_blocks()?;
        let mut by_block: BTreeMap<Ipv4Prefix, Vec<ReleaseOptions>> = BTreeMap::new();
        for r in requests {
            match blocks.iter().find(|s| s.block.cidr.contains(r.address)) {
                Some(s) => by_block.entry(s.block.cidr).or_default().push(r.clone()),
                None => outcome.not_allocated.push(r.address),
            }
        }
        for (cidr, group) in by_block {
            let key = keys::ipam_block(&cidr.to_string());
            let (released, not_allocated, changed) = retry(&key, || {
                let Some(mut stored) = self.read_block(&cidr)? else {
                    let gone = group.iter().map(|r| r.address).collect();
                    return Ok(Attempt::Done((Vec::new(), gone, Vec::new())));
                };
                let mut free = Vec::new();
                let mut not_allocated = Vec::new();
                let mut changed = Vec::new();
                for r in &group {
                    match still_matches(&stored.block, r) {
                        None => not_allocated.push(r.address),
                        Some(false) => changed.push(r.address),
                        Some(true) => free.push(r.address),
                    }
                }
                let (released, _) = stored.block.release(&free);
                if released.is_empty() {
                    return Ok(Attempt::Done((released, not_allocated, changed)));
                }
                Ok(
                    match settle(self.write_block(&stored.block, stored.revision))? {
                        Attempt::Done(()) => Attempt::Done((released, not_allocated, changed)),
                        Attempt::Retry => Attempt::Retry,
                    },
                )
            })?;
            let mut per_handle: BTreeMap<String, u64> = BTreeMap::new();
            for r in &released {
                if let Some(h) = &r.handle_id {
                    *per_handle.entry(h.clone()).or_default() += 1;
                }
            }
            for (handle, count) in per_handle {
                self.decrement_handle(&handle, &cidr, count)?;
            }
            outcome
                .released
                .extend(released.into_iter().map(|r| r.addr));
            outcome.not_allocated.extend(not_allocated);
            outcome.changed.extend(changed);
        }
        Ok(outcome)
    }
}
