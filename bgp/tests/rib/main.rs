//! RIB tests: best path selection step by step (RFC 4271 section 9.1.2.2, RFC 4456 section
//! 9), export rules (split horizon, route reflection, eBGP), loop prevention, withdrawals,
//! and a large table.

use std::net::Ipv4Addr;
use std::sync::Arc;

use bgp::packet::{
    AsPath, AsPathSegment, AsPathSegmentType, Ipv4Prefix, Origin, PathAttributes, Update,
};
use bgp::rib::{
    select_best, Candidate, FibChange, OutChange, PeerInfo, PeerKey, Rib, RibChanges, RibConfig,
    RibError, SourceInfo,
};

mod best_path;
mod exports;

const OUR_AS: u32 = 64512;
const OUR_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
