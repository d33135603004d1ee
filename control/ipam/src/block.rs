//! The allocation block: a run of addresses (one pool `blockSize`) that IPAM hands out one by
//! one, stored as JSON in libcalico-go's `AllocationBlock` shape at `keys::ipam_block(cidr)`:
//!
//! ```json
//! {"cidr":"192.168.0.0/26","affinity":"host:node1","strictAffinity":false,
//!  "allocations":[0,null,...],"unallocated":[1,2,...],
//!  "attributes":[{"handle_id":"k8s-pod-network.abc","secondary":{"node":"node1"}}],
//!  "deleted":false,"sequenceNumber":3,"sequenceNumberForAllocation":{"0":1}}
//! ```
//!
//! `allocations[ordinal]` is the index of the address's attribute (handle + metadata) or null
//! when free; `unallocated` lists the free ordinals in the order they will be handed out
//! (released ones go to the back, so an address is not reused at once). Everything here is
//! pure; the datastore round trips live in `ipam.rs`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::cidr::{BlockMath, Ipv4Prefix};

/// Smallest block IPAM accepts (Calico's IPv4 `blockSize` range is 20..=32), which also
/// bounds how large a block read from the datastore may be.
pub const MIN_BLOCK_PREFIX: u8 = 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationBlock {
    #[serde(with = "cidr_text")]
    pub cidr: Ipv4Prefix,
    /// `host:<node>` for a block affine to a node, null otherwise.
    pub affinity: Option<String>,
    #[serde(default)]
    pub strict_affinity: bool,
    pub allocations: Vec<Option<usize>>,
    pub unallocated: Vec<usize>,
    #[serde(default)]
    pub attributes: Vec<AllocationAttribute>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub sequence_number: u64,
    #[serde(default)]
    pub sequence_number_for_allocation: BTreeMap<String, u64>,
}

/// What an allocation is for: its handle and free-form metadata (Calico puts `node`,
/// `namespace`, `pod`, `timestamp` there).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationAttribute {
    #[serde(rename = "handle_id")]
    pub handle_id: Option<String>,
    #[serde(default)]
    pub secondary: BTreeMap<String, String>,
}

/// Why a specific address could not be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssignAddrError {
    NotInBlock,
    InUse { handle_id: Option<String> },
}

/// One address given back by [`AllocationBlock::release`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Released {
    pub addr: Ipv4Addr,
    pub handle_id: Option<String>,
}

impl AllocationBlock {
    /// An empty block; every ordinal free, in address order.
    pub fn new(cidr: Ipv4Prefix, host: Option<&str>, strict_affinity: bool) -> AllocationBlock {
        let size = cidr.size() as usize;
        AllocationBlock {
            cidr,
            affinity: host.map(affinity_of),
            strict_affinity,
            allocations: vec![None; size],
            unallocated: (0..size).collect(),
            attributes: Vec::new(),
            deleted: false,
            sequence_number: 0,
            sequence_number_for_allocation: BTreeMap::new(),
        }
    }

    /// Parses a stored block and checks that every index in it is in range, so that no
    /// operation below can index out of bounds whatever another writer stored.
    pub fn decode(bytes: &[u8]) -> Result<AllocationBlock, String> {
        let block: AllocationBlock = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        block.validate()?;
        Ok(block)
    }

    fn validate(&self) -> Result<(), String> {
        if self.cidr.len() < MIN_BLOCK_PREFIX {
            return Err(format!(
                "block {} is larger than a /{MIN_BLOCK_PREFIX}",
                self.cidr
            ));
        }
        let size = self.cidr.size() as usize;
        if self.allocations.len() != size {
            return Err(format!(
                "{} allocations for a block of {size}",
                self.allocations.len()
            ));
        }
        if let Some(i) = self
            .allocations
            .iter()
            .flatten()
            .find(|&&i| i >= self.attributes.len())
        {
            return Err(format!(
                "attribute index {i} out of {} attributes",
                self.attributes.len()
            ));
        }
        if let Some(o) = self.unallocated.iter().find(|&&o| o >= size) {
            return Err(format!("unallocated ordinal {o} outside a block of {size}"));
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a block always serializes")
    }

    /// The node this block is affine to, if any.
    pub fn host(&self) -> Option<&str> {
        self.affinity
            .as_deref()
            .and_then(|a| a.strip_prefix("host:"))
    }

    pub fn is_affine_to(&self, host: &str) -> bool {
        self.host() == Some(host)
    }

    pub fn size(&self) -> usize {
        self.allocations.len()
    }

    pub fn in_use(&self) -> usize {
        self.allocations.iter().filter(|a| a.is_some()).count()
    }

    pub fn free(&self) -> usize {
        self.size() - self.in_use()
    }

    pub fn is_empty(&self) -> bool {
        self.in_use() == 0
    }

    /// Takes up to `num` free addresses in `unallocated` order for `handle_id`.
    pub fn assign_next(
        &mut self,
        num: usize,
        handle_id: Option<&str>,
        attrs: &BTreeMap<String, String>,
    ) -> Vec<Ipv4Addr> {
        let mut taken = Vec::new();
        let mut kept = Vec::with_capacity(self.unallocated.len());
        self.sequence_number += 1;
        let attr = self.attribute_index(handle_id, attrs);
        for ordinal in std::mem::take(&mut self.unallocated) {
            // An ordinal listed as free but allocated is an inconsistency from some other
            // writer: never hand it out, and drop it from the free list.
            if self.allocations[ordinal].is_some() {
                continue;
            }
            if taken.len() < num {
                self.allocations[ordinal] = Some(attr);
                self.sequence_number_for_allocation
                    .insert(ordinal.to_string(), self.sequence_number);
                taken.push(self.addr(ordinal));
            } else {
                kept.push(ordinal);
            }
        }
        self.unallocated = kept;
        self.compact_attributes();
        taken
    }

    /// Takes exactly `addr`.
    pub fn assign_addr(
        &mut self,
        addr: Ipv4Addr,
        handle_id: Option<&str>,
        attrs: &BTreeMap<String, String>,
    ) -> Result<(), AssignAddrError> {
        let ordinal = self.ordinal(addr).ok_or(AssignAddrError::NotInBlock)?;
        if let Some(i) = self.allocations[ordinal] {
            return Err(AssignAddrError::InUse {
                handle_id: self.attributes[i].handle_id.clone(),
            });
        }
        self.sequence_number += 1;
        let attr = self.attribute_index(handle_id, attrs);
        self.allocations[ordinal] = Some(attr);
        self.unallocated.retain(|&o| o != ordinal);
        self.sequence_number_for_allocation
            .insert(ordinal.to_string(), self.sequence_number);
        Ok(())
    }

    /// Frees the given addresses of this block; returns what was freed and which of them
    /// were not allocated (or not in the block).
    pub fn release(&mut self, addrs: &[Ipv4Addr]) -> (Vec<Released>, Vec<Ipv4Addr>) {
        let mut released = Vec::new();
        let mut not_allocated = Vec::new();
        for &addr in addrs {
            match self
                .ordinal(addr)
                .and_then(|o| self.allocations[o].map(|a| (o, a)))
            {
                Some((ordinal, attr)) => {
                    released.push(Released {
                        addr,
                        handle_id: self.attributes[attr].handle_id.clone(),
                    });
                    self.free_ordinal(ordinal);
                }
                None => not_allocated.push(addr),
            }
        }
        if !released.is_empty() {
            self.sequence_number += 1;
            self.compact_attributes();
        }
        (released, not_allocated)
    }

    /// Frees every address held by `handle_id`; returns them.
    pub fn release_handle(&mut self, handle_id: &str) -> Vec<Ipv4Addr> {
        let held = self.addrs_of_handle(handle_id);
        self.release(&held).0.into_iter().map(|r| r.addr).collect()
    }

    /// The addresses `handle_id` holds in this block.
    pub fn addrs_of_handle(&self, handle_id: &str) -> Vec<Ipv4Addr> {
        self.allocated()
            .filter(|(_, attr)| attr.handle_id.as_deref() == Some(handle_id))
            .map(|(addr, _)| addr)
            .collect()
    }

    /// Every allocated address with its attribute.
    pub fn allocated(&self) -> impl Iterator<Item = (Ipv4Addr, &AllocationAttribute)> {
        self.allocations
            .iter()
            .enumerate()
            .filter_map(|(o, a)| a.map(|a| (self.addr(o), &self.attributes[a])))
    }

    /// The attribute of `addr` if it is allocated.
    pub fn attribute_of(&self, addr: Ipv4Addr) -> Option<&AllocationAttribute> {
        let ordinal = self.ordinal(addr)?;
        self.allocations[ordinal].map(|a| &self.attributes[a])
    }

    fn ordinal(&self, addr: Ipv4Addr) -> Option<usize> {
        self.cidr.ordinal_of(addr).map(|o| o as usize)
    }

    fn addr(&self, ordinal: usize) -> Ipv4Addr {
        // Ordinals come from `allocations` indices, all inside the block (validated).
        self.cidr
            .addr_at(ordinal as u64)
            .unwrap_or(self.cidr.addr())
    }

    fn free_ordinal(&mut self, ordinal: usize) {
        self.allocations[ordinal] = None;
        self.sequence_number_for_allocation
            .remove(&ordinal.to_string());
        if !self.unallocated.contains(&ordinal) {
            self.unallocated.push(ordinal);
        }
    }

    /// Reuses an identical attribute (as Calico does) or appends a new one.
    fn attribute_index(
        &mut self,
        handle_id: Option<&str>,
        attrs: &BTreeMap<String, String>,
    ) -> usize {
        let wanted = AllocationAttribute {
            handle_id: handle_id.map(str::to_string),
            secondary: attrs.clone(),
        };
        match self.attributes.iter().position(|a| *a == wanted) {
            Some(i) => i,
            None => {
                self.attributes.push(wanted);
                self.attributes.len() - 1
            }
        }
    }

    /// Drops attributes no allocation refers to and renumbers the rest.
    fn compact_attributes(&mut self) {
        let mut used = vec![false; self.attributes.len()];
        for &a in self.allocations.iter().flatten() {
            used[a] = true;
        }
        let mut new_index = vec![0; self.attributes.len()];
        let mut next = 0;
        for (i, u) in used.iter().enumerate() {
            if *u {
                new_index[i] = next;
                next += 1;
            }
        }
        for a in self.allocations.iter_mut().flatten() {
            *a = new_index[*a];
        }
        let mut i = 0;
        self.attributes.retain(|_| {
            i += 1;
            used[i - 1]
        });
    }
}

/// Calico's affinity string for a node.
pub fn affinity_of(host: &str) -> String {
    format!("host:{host}")
}

/// `cidr` as the text Calico stores.
mod cidr_text {
    use super::Ipv4Prefix;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(cidr: &Ipv4Prefix, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(cidr)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Ipv4Prefix, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> AllocationBlock {
        AllocationBlock::new("10.0.0.0/30".parse().unwrap(), Some("n1"), false)
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn new_block_matches_calicos_json_shape() {
        let json: serde_json::Value = serde_json::from_slice(&block().encode()).unwrap();
        assert_eq!(json["cidr"], "10.0.0.0/30");
        assert_eq!(json["affinity"], "host:n1");
        assert_eq!(json["strictAffinity"], false);
        assert_eq!(
            json["allocations"],
            serde_json::json!([null, null, null, null])
        );
        assert_eq!(json["unallocated"], serde_json::json!([0, 1, 2, 3]));
        assert_eq!(json["attributes"], serde_json::json!([]));
        assert_eq!(json["sequenceNumber"], 0);
    }

    #[test]
    fn assigns_in_order_and_reuses_released_last() {
        let mut b = block();
        let attrs = BTreeMap::from([("node".to_string(), "n1".to_string())]);
        assert_eq!(
            b.assign_next(2, Some("h1"), &attrs),
            [ip("10.0.0.0"), ip("10.0.0.1")]
        );
        let (released, missing) = b.release(&[ip("10.0.0.0"), ip("10.0.0.3"), ip("10.9.9.9")]);
        assert_eq!(
            released,
            [Released {
                addr: ip("10.0.0.0"),
                handle_id: Some("h1".into())
            }]
        );
        assert_eq!(missing, [ip("10.0.0.3"), ip("10.9.9.9")]);
        assert_eq!(
            b.assign_next(5, Some("h2"), &attrs),
            [ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.0")]
        );
        assert_eq!(b.free(), 0);
        assert_eq!(b.addrs_of_handle("h2").len(), 3);
        let json: serde_json::Value = serde_json::from_slice(&b.encode()).unwrap();
        // h1 still holds 10.0.0.1, so its attribute keeps index 0.
        assert_eq!(json["attributes"][0]["handle_id"], "h1");
        assert_eq!(json["attributes"][0]["secondary"]["node"], "n1");
        assert_eq!(json["attributes"][1]["handle_id"], "h2");
        assert_eq!(json["allocations"], serde_json::json!([1, 0, 1, 1]));
    }

    #[test]
    fn release_handle_compacts_attributes() {
        let mut b = block();
        let none = BTreeMap::new();
        b.assign_next(1, Some("a"), &none);
        b.assign_next(1, Some("b"), &none);
        assert_eq!(b.release_handle("a"), [ip("10.0.0.0")]);
        assert_eq!(b.attributes.len(), 1);
        assert_eq!(
            b.attribute_of(ip("10.0.0.1")).unwrap().handle_id.as_deref(),
            Some("b")
        );
        assert!(b.release_handle("a").is_empty());
    }

    #[test]
    fn specific_address_in_use_is_refused() {
        let mut b = block();
        let none = BTreeMap::new();
        b.assign_addr(ip("10.0.0.2"), Some("a"), &none).unwrap();
        assert_eq!(
            b.assign_addr(ip("10.0.0.2"), Some("b"), &none),
            Err(AssignAddrError::InUse {
                handle_id: Some("a".into())
            })
        );
        assert_eq!(
            b.assign_addr(ip("10.0.1.2"), Some("b"), &none),
            Err(AssignAddrError::NotInBlock)
        );
        assert_eq!(
            b.assign_next(4, None, &none),
            [ip("10.0.0.0"), ip("10.0.0.1"), ip("10.0.0.3")]
        );
    }

    #[test]
    fn decode_refuses_inconsistent_blocks() {
        let mut b = block();
        b.allocations[0] = Some(3);
        assert!(AllocationBlock::decode(&b.encode())
            .unwrap_err()
            .contains("attribute index"));
        let mut b = block();
        b.unallocated.push(9);
        assert!(AllocationBlock::decode(&b.encode()).is_err());
        let mut b = block();
        b.allocations.pop();
        assert!(AllocationBlock::decode(&b.encode()).is_err());
        let huge = AllocationBlock::new("10.0.0.0/16".parse().unwrap(), None, false);
        assert!(AllocationBlock::decode(&huge.encode()).is_err());
        assert!(AllocationBlock::decode(b"{").is_err());
        assert!(AllocationBlock::decode(b"{\"cidr\":\"10.0.0.1/30\"}").is_err());
        assert_eq!(AllocationBlock::decode(&block().encode()).unwrap(), block());
    }

    #[test]
    fn free_list_entry_that_is_allocated_is_never_handed_out() {
        let mut b = block();
        let none = BTreeMap::new();
        b.assign_next(1, Some("a"), &none);
        b.unallocated.insert(0, 0); // corrupt: 10.0.0.0 listed free while held by "a"
        assert_eq!(b.assign_next(1, Some("b"), &none), [ip("10.0.0.1")]);
    }
}
