//! The IPAM operations: assignment (own blocks, then a newly claimed block, then borrowing),
//! release by address and by handle, node affinities, and the IPIP tunnel address.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use datastore::{keys, DatastoreError};

use crate::block::{AllocationBlock, AssignAddrError, MIN_BLOCK_PREFIX};
use crate::cas::{lost_race, retry, settle, Attempt};
use crate::cidr::{BlockMath, Ipv4Prefix};
use crate::records::{AffinityState, BlockAffinity, IpamConfig};
use crate::store::{cidr_from_key_segment, to_json};
use crate::{tunnel_handle, Assignment, AutoAssignArgs, Ipam, IpamError, PoolInfo, Result};

/// A pool checked and in the form the algorithm walks.
#[derive(Clone, Copy, Debug)]
struct Pool {
    cidr: Ipv4Prefix,
    block_size: u8,
}

/// Which blocks an assignment may take from.
#[derive(Clone, Copy)]
enum BlockUse<'a> {
    /// Only while the block is still affine to this host.
    Affine(&'a str),
    /// Any block except one with strict affinity to another host.
    Borrow(&'a str),
}

impl Ipam {
    /// Assigns `args.num` addresses to `args.handle_id` (libcalico-go `AutoAssign`): from the
    /// host's affine blocks first, then from blocks it claims, then borrowed from other hosts'
    /// blocks unless strict affinity is on. All or nothing: on a shortfall the addresses taken
    /// by this call are given back and `Exhausted` is returned.
    pub fn auto_assign(&self, args: &AutoAssignArgs) -> Result<Vec<Ipv4Addr>> {
        if args.num == 0 {
            return Ok(Vec::new());
        }
        let pools = usable_pools(&args.pools)?;
        if pools.is_empty() {
            return Err(IpamError::NoUsablePool {
                host: args.host.clone(),
            });
        }
        let config = self.config()?;
        let mut taken = Vec::with_capacity(args.num);
        let outcome = self.fill(args, &pools, &config, &mut taken);
        let shortfall = match outcome {
            Ok(()) if taken.len() == args.num => return Ok(taken),
            Ok(()) => IpamError::Exhausted {
                requested: args.num,
                assigned: taken.len(),
                strict_affinity: config.strict_affinity,
            },
            Err(e) => e,
        };
        if let Err(e) = self.release_ips(&taken) {
            tracing::warn!(error = %e, handle = %args.handle_id, "could not give back a partial assignment");
        }
        Err(shortfall)
    }

    fn fill(
        &self,
        args: &AutoAssignArgs,
        pools: &[Pool],
        config: &IpamConfig,
        taken: &mut Vec<Ipv4Addr>,
    ) -> Result<()> {
        let host = args.host.as_str();
        for cidr in self.affine_blocks(host, pools)? {
            let need = args.num - taken.len();
            if need == 0 {
                return Ok(());
            }
            taken.extend(self.assign_from_block(&cidr, need, BlockUse::Affine(host), args)?);
        }
        if config.auto_allocate_blocks {
            // Each round claims one block; a claimed block can be emptied by borrowers before
            // we reach it, hence a loop, bounded by the request size plus slack.
            for _ in 0..args.num + 8 {
                let need = args.num - taken.len();
                if need == 0 {
                    return Ok(());
                }
                let Some(cidr) = self.claim_free_block(host, pools, config)? else {
                    break;
                };
                taken.extend(self.assign_from_block(&cidr, need, BlockUse::Affine(host), args)?);
            }
        }
        if taken.len() < args.num && !config.strict_affinity {
            let (blocks, _) = self.list_blocks()?;
            for stored in blocks {
                let need = args.num - taken.len();
                if need == 0 {
                    break;
                }
                let b = &stored.block;
                if b.free() == 0
                    || b.is_affine_to(host)
                    || !pools.iter().any(|p| p.cidr.covers(&b.cidr))
                {
                    continue;
                }
                taken.extend(self.assign_from_block(
                    &b.cidr,
                    need,
                    BlockUse::Borrow(host),
                    args,
                )?);
            }
        }
        Ok(())
    }

    /// The blocks `host` holds an affinity for inside the usable pools, in address order.
    fn affine_blocks(&self, host: &str, pools: &[Pool]) -> Result<Vec<Ipv4Prefix>> {
        let (kvs, _) = self.store.list(&keys::ipam_affinity_prefix(host))?;
        let mut blocks: Vec<Ipv4Prefix> = kvs
            .iter()
            .filter_map(|kv| cidr_from_key_segment(&kv.key))
            .filter(|b| pools.iter().any(|p| p.cidr.covers(b)))
            .collect();
        blocks.sort();
        Ok(blocks)
    }

    /// Takes up to `num` addresses from one block (CAS on the block; the handle is counted
    /// first and uncounted if the block write loses).
    fn assign_from_block(
        &self,
        cidr: &Ipv4Prefix,
        num: usize,
        usage: BlockUse,
        args: &AutoAssignArgs,
    ) -> Result<Vec<Ipv4Addr>> {
        let key = keys::ipam_block(&cidr.to_string());
        retry(&key, || {
            let Some(mut stored) = self.read_block(cidr)? else {
                return Ok(Attempt::Done(Vec::new()));
            };
            let b = &mut stored.block;
            let allowed = match usage {
                BlockUse::Affine(host) => b.is_affine_to(host),
                BlockUse::Borrow(host) => {
                    !(b.strict_affinity && b.affinity.is_some() && !b.is_affine_to(host))
                }
            };
            if !allowed || b.free() == 0 {
                return Ok(Attempt::Done(Vec::new()));
            }
            let ips = b.assign_next(num, Some(&args.handle_id), &args.attrs);
            self.increment_handle(&args.handle_id, cidr, ips.len() as u64)?;
            match self.store.update(&key, &b.encode(), stored.revision) {
                Ok(_) => Ok(Attempt::Done(ips)),
                Err(e) => {
                    self.decrement_handle(&args.handle_id, cidr, ips.len() as u64)?;
                    if lost_race(&e) {
                        Ok(Attempt::Retry)
                    } else {
                        Err(e.into())
                    }
                }
            }
        })
    }

    /// Claims the first block of the pools that nobody has created yet; `None` when the
    /// pools are full.
    fn claim_free_block(
        &self,
        host: &str,
        pools: &[Pool],
        config: &IpamConfig,
    ) -> Result<Option<Ipv4Prefix>> {
        let (kvs, _) = self.store.list(keys::IPAM_BLOCKS)?;
        let existing: BTreeSet<Ipv4Prefix> = kvs
            .iter()
            .filter_map(|kv| cidr_from_key_segment(&kv.key))
            .collect();
        for pool in pools {
            for candidate in pool.cidr.subnets(pool.block_size) {
                if existing.contains(&candidate) {
                    continue;
                }
                if self.try_claim(host, &candidate, config)? {
                    return Ok(Some(candidate));
                }
            }
        }
        Ok(None)
    }

    /// Claims one block for `host`: a pending affinity, then the block itself with a create
    /// that only one writer can win, then the affinity confirmed. Returns whether `host` owns
    /// the block now.
    fn try_claim(&self, host: &str, cidr: &Ipv4Prefix, config: &IpamConfig) -> Result<bool> {
        let cidr_text = cidr.to_string();
        let affinity_key = keys::ipam_affinity(host, &cidr_text);
        match self.store.create(
            &affinity_key,
            &to_json(&BlockAffinity::new(AffinityState::Pending)),
        ) {
            // An existing affinity of ours is a claim a crash interrupted: carry on with it.
            Ok(_) | Err(DatastoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let block = AllocationBlock::new(*cidr, Some(host), config.strict_affinity);
        let ours = match self
            .store
            .create(&keys::ipam_block(&cidr_text), &block.encode())
        {
            Ok(_) => true,
            Err(DatastoreError::AlreadyExists { .. }) => self
                .read_block(cidr)?
                .is_some_and(|s| s.block.is_affine_to(host)),
            Err(e) => return Err(e.into()),
        };
        if ours {
            self.store.put(
                &affinity_key,
                &to_json(&BlockAffinity::new(AffinityState::Confirmed)),
            )?;
            tracing::debug!(host, block = %cidr, "claimed block");
        } else {
            match self.store.delete(&affinity_key, None) {
                Ok(()) | Err(DatastoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(ours)
    }

    /// Assigns exactly `ip` to `handle_id` (libcalico-go `AssignIP`). The address must lie in
    /// an enabled pool; its block is claimed for `host` if it does not exist yet.
    pub fn assign_ip(
        &self,
        ip: Ipv4Addr,
        handle_id: &str,
        attrs: &BTreeMap<String, String>,
        host: &str,
        pools: &[PoolInfo],
    ) -> Result<()> {
        // Calico's AssignIP honours only the pool being enabled, not its node selector.
        let enabled: Vec<PoolInfo> = pools
            .iter()
            .map(|p| PoolInfo {
                node_selector_matches: true,
                ..p.clone()
            })
            .collect();
        let pools = usable_pools(&enabled)?;
        let pool = pools
            .iter()
            .find(|p| p.cidr.contains(ip))
            .ok_or(IpamError::NotInPool { ip })?;
        let cidr =
            Ipv4Prefix::containing(ip, pool.block_size).map_err(|e| IpamError::InvalidPool {
                cidr: pool.cidr.to_string(),
                reason: e.to_string(),
            })?;
        let config = self.config()?;
        let key = keys::ipam_block(&cidr.to_string());
        retry(&key, || {
            let Some(mut stored) = self.read_block(&cidr)? else {
                // Won or lost, the block exists afterwards: go round and read it.
                self.try_claim(host, &cidr, &config)?;
                return Ok(Attempt::Retry);
            };
            match stored.block.assign_addr(ip, Some(handle_id), attrs) {
                Ok(()) => {}
                Err(AssignAddrError::InUse { handle_id }) => {
                    return Err(IpamError::AddressInUse { ip, handle_id })
                }
                Err(AssignAddrError::NotInBlock) => {
                    return Err(IpamError::Corrupt {
                        key: key.clone(),
                        reason: format!("does not contain {ip}"),
                    })
                }
            }
            self.increment_handle(handle_id, &cidr, 1)?;
            match self
                .store
                .update(&key, &stored.block.encode(), stored.revision)
            {
                Ok(_) => Ok(Attempt::Done(())),
                Err(e) => {
                    self.decrement_handle(handle_id, &cidr, 1)?;
                    if lost_race(&e) {
                        Ok(Attempt::Retry)
                    } else {
                        Err(e.into())
                    }
                }
            }
        })
    }

    /// Releases addresses (libcalico-go `ReleaseIPs`); returns those that were not allocated.
    pub fn release_ips(&self, ips: &[Ipv4Addr]) -> Result<Vec<Ipv4Addr>> {
        if ips.is_empty() {
            return Ok(Vec::new());
        }
        let (blocks, _) = self.list_blocks()?;
        let mut by_block: BTreeMap<Ipv4Prefix, Vec<Ipv4Addr>> = BTreeMap::new();
        let mut not_allocated = Vec::new();
        for &ip in ips {
            match blocks.iter().find(|s| s.block.cidr.contains(ip)) {
                Some(s) => by_block.entry(s.block.cidr).or_default().push(ip),
                None => not_allocated.push(ip),
            }
        }
        for (cidr, group) in by_block {
            let key = keys::ipam_block(&cidr.to_string());
            let (released, missing) = retry(&key, || {
                let Some(mut stored) = self.read_block(&cidr)? else {
                    return Ok(Attempt::Done((Vec::new(), group.clone())));
                };
                let (released, missing) = stored.block.release(&group);
                if released.is_empty() {
                    return Ok(Attempt::Done((released, missing)));
                }
                Ok(
                    match settle(self.write_block(&stored.block, stored.revision))? {
                        Attempt::Done(()) => Attempt::Done((released, missing)),
                        Attempt::Retry => Attempt::Retry,
                    },
                )
            })?;
            not_allocated.extend(missing);
            let mut per_handle: BTreeMap<String, u64> = BTreeMap::new();
            for r in released {
                if let Some(h) = r.handle_id {
                    *per_handle.entry(h).or_default() += 1;
                }
            }
            for (handle, count) in per_handle {
                self.decrement_handle(&handle, &cidr, count)?;
            }
        }
        Ok(not_allocated)
    }

    /// Releases everything `handle_id` holds and removes the handle (libcalico-go
    /// `ReleaseByHandle`); returns the released addresses. Releasing an unknown handle is
    /// not an error, so CNI DEL can run twice.
    pub fn release_by_handle(&self, handle_id: &str) -> Result<Vec<Ipv4Addr>> {
        let key = keys::ipam_handle(handle_id);
        let mut released = Vec::new();
        retry(&key, || {
            let Some((handle, revision)) = self.read_handle(handle_id)? else {
                return Ok(Attempt::Done(()));
            };
            for cidr in handle
                .block
                .keys()
                .filter_map(|c| c.parse::<Ipv4Prefix>().ok())
            {
                released.extend(self.release_handle_in_block(&cidr, handle_id)?);
            }
            // Deleting at the revision read means an assignment that raced in under the same
            // handle sends us round again instead of being orphaned.
            settle(self.store.delete(&key, Some(revision)))
        })?;
        Ok(released)
    }

    fn release_handle_in_block(&self, cidr: &Ipv4Prefix, handle_id: &str) -> Result<Vec<Ipv4Addr>> {
        let key = keys::ipam_block(&cidr.to_string());
        retry(&key, || {
            let Some(mut stored) = self.read_block(cidr)? else {
                return Ok(Attempt::Done(Vec::new()));
            };
            let ips = stored.block.release_handle(handle_id);
            if ips.is_empty() {
                return Ok(Attempt::Done(ips));
            }
            Ok(
                match settle(self.write_block(&stored.block, stored.revision))? {
                    Attempt::Done(()) => Attempt::Done(ips),
                    Attempt::Retry => Attempt::Retry,
                },
            )
        })
    }

    /// The addresses `handle_id` holds, in address order.
    pub fn ips_by_handle(&self, handle_id: &str) -> Result<Vec<Ipv4Addr>> {
        let Some((handle, _)) = self.read_handle(handle_id)? else {
            return Ok(Vec::new());
        };
        let mut ips = Vec::new();
        for cidr in handle
            .block
            .keys()
            .filter_map(|c| c.parse::<Ipv4Prefix>().ok())
        {
            if let Some(stored) = self.read_block(&cidr)? {
                ips.extend(stored.block.addrs_of_handle(handle_id));
            }
        }
        ips.sort();
        Ok(ips)
    }

    /// The handle and attributes `ip` is allocated with, `None` if it is not allocated.
    pub fn get_assignment_attrs(&self, ip: Ipv4Addr) -> Result<Option<Assignment>> {
        let (blocks, _) = self.list_blocks()?;
        Ok(blocks
            .iter()
            .find(|s| s.block.cidr.contains(ip))
            .and_then(|s| {
                s.block.attribute_of(ip).map(|a| Assignment {
                    block: s.block.cidr,
                    handle_id: a.handle_id.clone(),
                    attrs: a.secondary.clone(),
                })
            }))
    }

    /// Gives up all of `host`'s block affinities (node removal): empty blocks are deleted,
    /// blocks still in use lose their affinity and keep their addresses until released.
    pub fn release_affinities(&self, host: &str) -> Result<()> {
        let (kvs, _) = self.store.list(&keys::ipam_affinity_prefix(host))?;
        for kv in kvs {
            let Some(cidr) = cidr_from_key_segment(&kv.key) else {
                tracing::warn!(key = %kv.key, "ignoring affinity with an unreadable block name");
                continue;
            };
            self.store.put(
                &kv.key,
                &to_json(&BlockAffinity::new(AffinityState::PendingDeletion)),
            )?;
            let block_key = keys::ipam_block(&cidr.to_string());
            retry(&block_key, || {
                let Some(mut stored) = self.read_block(&cidr)? else {
                    return Ok(Attempt::Done(()));
                };
                if !stored.block.is_affine_to(host) {
                    return Ok(Attempt::Done(()));
                }
                stored.block.affinity = None;
                settle(self.write_block(&stored.block, stored.revision))
            })?;
            match self.store.delete(&kv.key, None) {
                Ok(()) | Err(DatastoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Makes sure `host` has one IPIP tunnel address (handle `ipip-tunnel-addr-<host>`) from
    /// `ipip_pools`, the IPIP-enabled pools the host may use. Idempotent: an address already
    /// held inside those pools is kept. With no usable IPIP pool any tunnel address is
    /// released and `None` returned.
    pub fn ensure_tunnel_address(
        &self,
        host: &str,
        ipip_pools: &[PoolInfo],
    ) -> Result<Option<Ipv4Addr>> {
        let handle = tunnel_handle(host);
        let pools = usable_pools(ipip_pools)?;
        let held = self.ips_by_handle(&handle)?;
        if let Some(&keep) = held
            .iter()
            .find(|ip| pools.iter().any(|p| p.cidr.contains(**ip)))
        {
            let extra: Vec<Ipv4Addr> = held.into_iter().filter(|&ip| ip != keep).collect();
            self.release_ips(&extra)?;
            return Ok(Some(keep));
        }
        self.release_by_handle(&handle)?;
        if pools.is_empty() {
            return Ok(None);
        }
        let attrs = BTreeMap::from([
            ("node".to_string(), host.to_string()),
            ("type".to_string(), "ipipTunnelAddress".to_string()),
        ]);
        let ips = self.auto_assign(&AutoAssignArgs {
            num: 1,
            handle_id: handle,
            attrs,
            host: host.to_string(),
            pools: ipip_pools.to_vec(),
        })?;
        Ok(ips.first().copied())
    }
}

/// The enabled pools whose selector matches, checked; a malformed pool is an error naming it.
fn usable_pools(pools: &[PoolInfo]) -> Result<Vec<Pool>> {
    let mut usable = Vec::new();
    for p in pools {
        let pool = check_pool(p)?;
        if !p.disabled && p.node_selector_matches {
            usable.push(pool);
        }
    }
    Ok(usable)
}

fn check_pool(p: &PoolInfo) -> Result<Pool> {
    let text = format!("{}/{}", p.cidr.0, p.cidr.1);
    let invalid = |reason: String| IpamError::InvalidPool {
        cidr: text.clone(),
        reason,
    };
    let cidr = Ipv4Prefix::new(p.cidr.0, p.cidr.1).map_err(|e| invalid(e.to_string()))?;
    if p.block_size < cidr.len() || p.block_size > 32 || p.block_size < MIN_BLOCK_PREFIX {
        return Err(invalid(format!(
            "blockSize {} must be between {} and 32 and not shorter than the pool prefix",
            p.block_size, MIN_BLOCK_PREFIX
        )));
    }
    Ok(Pool {
        cidr,
        block_size: p.block_size,
    })
}

pub(crate) fn pool_cidr(p: &PoolInfo) -> Result<Ipv4Prefix> {
    check_pool(p).map(|p| p.cidr)
}
