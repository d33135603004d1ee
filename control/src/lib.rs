//! Brindle's control plane: the node service (static node.toml or the datastore agent), the CNI
//! plugins and brindlectl.
//!
//! `config` reads node.toml, `host` reads facts about interfaces, `programme` turns both into
//! fastpath tables, `dataplane` runs the ports, threads and tables and changes them live,
//! `node` drives it from node.toml (again on SIGHUP), `stats` serves the counters on a local
//! socket, `health` and `metrics` serve Felix's HTTP endpoints.

pub mod agent;
pub mod cni;
pub mod config;
pub mod ctl;
pub mod dataplane;
pub mod health;
pub mod host;
pub mod hostveth;
pub mod hwprofile;
pub mod metrics;
pub mod node;
pub mod policy;
pub mod programme;
pub mod stats;
