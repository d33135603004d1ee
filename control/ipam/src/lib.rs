//! IPAM (work in progress).
