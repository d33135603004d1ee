//! Brindle's command-line tools, apart from the node: `brindlectl` (`ctl`) and the CNI plugins
//! `brindle-cni` and `brindle-ipam` (`cni`), over the resource model, the datastore and IPAM.
//!
//! `host` reads the host's name and kernel routes, and `node_client` talks to a running
//! brindle-node (its control socket and health endpoint); the node agent (`control`) reuses
//! both, and the CNI's pool lookup, from here. `tap_registry` is where brindle-cni tells the
//! node on its host where a workload's TAP is: written by the one, read by the other.

pub mod cni;
pub mod ctl;
pub mod host;
pub mod node_client;
pub mod tap_registry;
