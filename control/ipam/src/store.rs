//! Typed reads and writes of the IPAM records: decoding (stored data is untrusted and checked
//! on the way in), the handle counters, and the IPAM config.

use std::collections::BTreeMap;

use datastore::{keys, DatastoreError, KeyValue};

use crate::block::AllocationBlock;
use crate::cas::{retry, settle, Attempt};
use crate::cidr::Ipv4Prefix;
use crate::records::{IpamConfig, IpamHandle, IPAM_CONFIG_KEY};
use crate::{Ipam, IpamError, Result};

/// A record that could not be decoded: its key and why.
pub type InvalidRecord = (String, String);

/// A stored block and the revision it was read at.
pub struct StoredBlock {
    pub block: AllocationBlock,
    pub revision: i64,
}

impl Ipam {
    pub(crate) fn read_block(&self, cidr: &Ipv4Prefix) -> Result<Option<StoredBlock>> {
        self.store
            .get(&keys::ipam_block(&cidr.to_string()))?
            .map(|kv| decode_block(&kv))
            .transpose()
    }

    /// Every block, in address order; blocks that fail to decode are returned apart.
    pub(crate) fn list_blocks(&self) -> Result<(Vec<StoredBlock>, Vec<InvalidRecord>)> {
        let (kvs, _) = self.store.list(keys::IPAM_BLOCKS)?;
        let mut good = Vec::with_capacity(kvs.len());
        let mut bad = Vec::new();
        for kv in &kvs {
            match decode_block(kv) {
                Ok(b) => good.push(b),
                Err(IpamError::Corrupt { key, reason }) => {
                    tracing::warn!(%key, %reason, "skipping invalid IPAM block");
                    bad.push((key, reason));
                }
                Err(e) => return Err(e),
            }
        }
        good.sort_by_key(|b| b.block.cidr);
        Ok((good, bad))
    }

    /// Writes `block` back at `revision`; an empty block nobody is affine to is deleted, as
    /// Calico does, so that borrowed space returns to the pool.
    pub(crate) fn write_block(
        &self,
        block: &AllocationBlock,
        revision: i64,
    ) -> std::result::Result<(), DatastoreError> {
        let key = keys::ipam_block(&block.cidr.to_string());
        if block.is_empty() && block.affinity.is_none() {
            self.store.delete(&key, Some(revision))
        } else {
            self.store
                .update(&key, &block.encode(), revision)
                .map(|_| ())
        }
    }

    pub(crate) fn read_handle(&self, handle_id: &str) -> Result<Option<(IpamHandle, i64)>> {
        let key = keys::ipam_handle(handle_id);
        match self.store.get(&key)? {
            None => Ok(None),
            Some(kv) => {
                let handle: IpamHandle =
                    serde_json::from_slice(&kv.value).map_err(|e| IpamError::Corrupt {
                        key,
                        reason: e.to_string(),
                    })?;
                Ok(Some((handle, kv.mod_revision)))
            }
        }
    }

    /// Records that `handle_id` took `count` more addresses in `block`. Done before the block
    /// write, so that a crash in between leaves a handle that over-counts (found by `check`,
    /// released by handle) rather than an allocation no handle knows.
    pub(crate) fn increment_handle(
        &self,
        handle_id: &str,
        block: &Ipv4Prefix,
        count: u64,
    ) -> Result<()> {
        let key = keys::ipam_handle(handle_id);
        retry(&key, || match self.read_handle(handle_id)? {
            None => {
                let handle = IpamHandle {
                    handle_id: handle_id.to_string(),
                    block: BTreeMap::from([(block.to_string(), count)]),
                    deleted: false,
                };
                settle(self.store.create(&key, &to_json(&handle)).map(|_| ()))
            }
            Some((mut handle, revision)) => {
                *handle.block.entry(block.to_string()).or_default() += count;
                settle(
                    self.store
                        .update(&key, &to_json(&handle), revision)
                        .map(|_| ()),
                )
            }
        })
    }

    /// Undoes `increment_handle`; the handle goes when it holds nothing.
    pub(crate) fn decrement_handle(
        &self,
        handle_id: &str,
        block: &Ipv4Prefix,
        count: u64,
    ) -> Result<()> {
        let key = keys::ipam_handle(handle_id);
        retry(&key, || {
            let Some((mut handle, revision)) = self.read_handle(handle_id)? else {
                return Ok(Attempt::Done(()));
            };
            let cidr = block.to_string();
            let left = handle
                .block
                .get(&cidr)
                .map_or(0, |c| c.saturating_sub(count));
            if left == 0 {
                handle.block.remove(&cidr);
            } else {
                handle.block.insert(cidr, left);
            }
            if handle.block.is_empty() {
                settle(self.store.delete(&key, Some(revision)))
            } else {
                settle(
                    self.store
                        .update(&key, &to_json(&handle), revision)
                        .map(|_| ()),
                )
            }
        })
    }

    /// The global IPAM config, Calico's defaults when none is stored.
    pub fn config(&self) -> Result<IpamConfig> {
        match self.store.get(IPAM_CONFIG_KEY)? {
            None => Ok(IpamConfig::default()),
            Some(kv) => serde_json::from_slice(&kv.value).map_err(|e| IpamError::Corrupt {
                key: IPAM_CONFIG_KEY.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// Stores the global IPAM config (`brindlectl ipam configure --strictaffinity=...`).
    pub fn set_config(&self, config: &IpamConfig) -> Result<()> {
        self.store.put(IPAM_CONFIG_KEY, &to_json(config))?;
        Ok(())
    }
}

fn decode_block(kv: &KeyValue) -> Result<StoredBlock> {
    let block = AllocationBlock::decode(&kv.value).map_err(|reason| IpamError::Corrupt {
        key: kv.key.clone(),
        reason,
    })?;
    if keys::ipam_block(&block.cidr.to_string()) != kv.key {
        return Err(IpamError::Corrupt {
            key: kv.key.clone(),
            reason: format!("holds block {}", block.cidr),
        });
    }
    Ok(StoredBlock {
        block,
        revision: kv.mod_revision,
    })
}

/// `a.b.c.d-NN` (the last key segment) -> the prefix.
pub(crate) fn cidr_from_key_segment(key: &str) -> Option<Ipv4Prefix> {
    let segment = key.rsplit('/').next()?;
    let (addr, len) = segment.rsplit_once('-')?;
    format!("{addr}/{len}").parse().ok()
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("IPAM records always serialize")
}
