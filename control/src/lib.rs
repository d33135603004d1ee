//! Brindle's control plane. For now: the node service with a static configuration.
//!
//! `config` reads node.toml, `host` reads facts about interfaces, `programme` turns both into
//! fastpath tables, `node` starts the dataplane and runs until told to stop, `stats` serves the
//! counters on a local socket.

pub mod agent;
pub mod cni;
pub mod config;
pub mod host;
pub mod node;
pub mod programme;
pub mod stats;
