//! The CNI plugins `brindle-cni` and `brindle-ipam`: the protocol (`spec`, `entry`, `names`), where the
//! cluster is (`cluster`), the IPAM plugin (`ipam_plugin`), GC and STATUS (`gc`, `status`), running it from the network plugin
//! (`delegate`), the network plugin (`plugin`) and its
//! `bandwidth` capability (`bandwidth`), the interface wiring (`plumbing`) and the
//! plugin's side of the TAP registry (`registration`).

pub mod bandwidth;
pub mod cluster;
pub mod delegate;
pub mod entry;
pub mod gc;
pub mod ipam_plugin;
pub mod names;
pub mod plugin;
pub mod plumbing;
pub mod registration;
pub mod spec;
pub mod status;
