//! The CNI plugins `brindle-cni` and `brindle-ipam`: the protocol (`spec`, `entry`), where the
//! cluster is (`cluster`), the IPAM plugin (`ipam_plugin`), running it from the network plugin
//! (`delegate`), the network plugin (`plugin`) and the interface wiring (`plumbing`).

pub mod cluster;
pub mod delegate;
pub mod entry;
pub mod ipam_plugin;
pub mod plugin;
pub mod plumbing;
pub mod spec;
