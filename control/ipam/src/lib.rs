//! IPAM like Calico's (libcalico-go `lib/ipam`), over the [`Datastore`] trait.
//!
//! Pools are cut into blocks of the pool's `blockSize`. A node claims a free block (creating
//! the block record and its affinity with compare-and-swap, so that of two nodes racing for a
//! block exactly one wins) and hands out addresses from its own blocks first. When the pools
//! have no free block left, it borrows a free address from another node's block, unless strict
//! affinity is configured. Every allocation carries a handle (CNI uses one per container), and
//! the handle record counts what the handle holds per block, so that releasing the handle
//! (CNI DEL) frees exactly what the ADD took.
//!
//! Records and their JSON shapes: [`block::AllocationBlock`], [`records`]. Every change is a
//! read-modify-write guarded by the record's revision ([`cas`]); many processes may allocate
//! from one datastore at once and never get the same address.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use datastore::{Datastore, DatastoreError};

pub mod block;
mod cas;
pub mod cidr;
mod ipam;
pub mod records;
mod release;
mod report;
mod store;

pub use cidr::{BlockMath, Ipv4Prefix};
pub use records::IpamConfig;
pub use release::{ReleaseOptions, ReleaseOutcome};
pub use report::{
    BlockUsage, CheckReport, HandleMismatch, LeakedAllocation, OrphanedBlock, PoolUsage,
};

/// An IP pool as IPAM needs it (the resource model lives in the `resources` crate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolInfo {
    /// Network address and prefix length.
    pub cidr: (Ipv4Addr, u8),
    /// Prefix length of the pool's blocks (Calico `blockSize`, default 26).
    pub block_size: u8,
    /// Disabled pools hand out no new addresses.
    pub disabled: bool,
    /// Whether the pool's `nodeSelector` selects the host being allocated for.
    pub node_selector_matches: bool,
}

/// Arguments of [`Ipam::auto_assign`].
#[derive(Clone, Debug, Default)]
pub struct AutoAssignArgs {
    pub num: usize,
    pub handle_id: String,
    /// Stored with each address (Calico: `node`, `namespace`, `pod`, `timestamp`).
    pub attrs: BTreeMap<String, String>,
    pub host: String,
    pub pools: Vec<PoolInfo>,
}

/// What an allocated address is recorded for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub block: Ipv4Prefix,
    pub handle_id: Option<String>,
    pub attrs: BTreeMap<String, String>,
}

/// Handle of a node's IPIP tunnel address (the name calico-node uses).
pub fn tunnel_handle(host: &str) -> String {
    format!("ipip-tunnel-addr-{host}")
}

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error(transparent)]
    Datastore(#[from] DatastoreError),
    #[error("stored IPAM record {key} is invalid: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("invalid IP pool {cidr}: {reason}")]
    InvalidPool { cidr: String, reason: String },
    #[error("no enabled IP pool is usable by host {host}")]
    NoUsablePool { host: String },
    #[error("assigned {assigned} out of {requested} requested IPv4 addresses: no more free addresses{}", if *.strict_affinity { " (strict affinity forbids borrowing)" } else { "" })]
    Exhausted {
        requested: usize,
        assigned: usize,
        strict_affinity: bool,
    },
    #[error("the provided IP address {ip} is not in a configured pool")]
    NotInPool { ip: Ipv4Addr },
    #[error("address {ip} is already assigned{}", match .handle_id { Some(h) => format!(" (handle {h})"), None => String::new() })]
    AddressInUse {
        ip: Ipv4Addr,
        handle_id: Option<String>,
    },
    #[error("gave up updating {key} after {attempts} conflicting writes")]
    TooManyConflicts { key: String, attempts: u32 },
}

pub type Result<T> = std::result::Result<T, IpamError>;

/// IPAM over one datastore. Cheap to share: it holds only the store.
pub struct Ipam {
    store: Arc<dyn Datastore>,
}

impl Ipam {
    pub fn new(store: Arc<dyn Datastore>) -> Ipam {
        Ipam { store }
    }
}
