//! The node agent: calico-node's environment, registration and the datastore watch that
//! programs the dataplane.

pub mod env;
