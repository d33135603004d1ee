//! Calico resources (work in progress).
