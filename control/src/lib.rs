//! Brindle's node service, brindle-node (static node.toml or the datastore agent). The CNI
//! plugins and brindlectl are in the `cli` package, which does not link the dataplane.
//!
//! `config` reads node.toml, `host` reads facts about interfaces, `programme` turns both into
//! fastpath tables, `dataplane` runs the ports, threads and tables and changes them live,
//! `node` drives it from node.toml (again on SIGHUP), `stats` serves the counters on a local
//! socket, `health` and `metrics` serve Felix's HTTP endpoints, `libnetwork` serves Docker's
//! network and IPAM drivers.

pub mod agent;
pub mod config;
pub mod dataplane;
pub mod health;
pub mod host;
pub mod hostveth;
pub mod libnetwork;
/// NIC profiles: their own crate, which brindlectl shares.
pub use hwprofile;
pub mod metrics;
pub mod node;
pub mod policy;
pub mod programme;
pub mod stats;
