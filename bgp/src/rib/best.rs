//! Best path selection: the Decision Process of RFC 4271 section 9.1, as the elimination
//! the RFC describes (each step keeps only the routes that tie for best at that step), not as
//! a pairwise comparison: MED is compared only between routes from the same neighbouring AS,
//! which is not a total order, so sorting would depend on the order routes arrived in.

use std::net::Ipv4Addr;

use smallvec::SmallVec;

use crate::packet::PathAttributes;

/// LOCAL_PREF assumed when a route has none (and for routes from external peers, whose
/// degree of preference is a matter of local policy, RFC 4271 section 9.1.1).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// Where a candidate route came from, as far as selection cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceInfo {
    /// Locally originated (the node's own blocks): preferred over anything learned, as
    /// BIRD prefers its static and direct protocols over BGP.
    pub local: bool,
    /// Learned from an external peer.
    pub ebgp: bool,
    /// BGP Identifier of the peer it was learned from (ours for local routes).
    pub router_id: Ipv4Addr,
    /// Address of the peer it was learned from (0.0.0.0 for local routes).
    pub address: Ipv4Addr,
}

/// One route competing for a prefix.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    pub attrs: &'a PathAttributes,
    pub source: SourceInfo,
}

impl Candidate<'_> {
    /// Degree of preference (section 9.1.1): LOCAL_PREF for internal routes; external
    /// routes carry none that counts.
    fn preference(&self) -> u32 {
        match self.source.ebgp {
            true => DEFAULT_LOCAL_PREF,
            false => self.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
        }
    }

    /// Section 9.1.2.2 c: a route without MED has the lowest possible value.
    fn med(&self) -> u32 {
        self.attrs.med.unwrap_or(0)
    }

    /// Section 9.1.2.2 f with RFC 4456 section 9: ORIGINATOR_ID stands for the BGP
    /// Identifier of the speaker that advertised a reflected route.
    fn bgp_identifier(&self) -> u32 {
        u32::from(self.attrs.originator_id.unwrap_or(self.source.router_id))
    }
}

/// The index of the best of `candidates`, `None` if there are none.
pub fn select_best(candidates: &[Candidate<'_>]) -> Option<usize> {
    match candidates.len() {
        0 => return None,
        1 => return Some(0),
        _ => {}
    }
    let mut alive: SmallVec<[usize; 8]> = (0..candidates.len()).collect();
    let c = |i: usize| &candidates[i];

    // Locally originated routes first, then section 9.1.1 degree of preference.
    keep_best(&mut alive, |i| std::cmp::Reverse(c(i).source.local));
    keep_best(&mut alive, |i| std::cmp::Reverse(c(i).preference()));
    // Section 9.1.2.2 a: fewest AS numbers in AS_PATH (an AS_SET counts 1).
    keep_best(&mut alive, |i| c(i).attrs.as_path.path_len());
    // b: lowest ORIGIN (IGP < EGP < INCOMPLETE).
    keep_best(&mut alive, |i| c(i).attrs.origin);
    // c: drop a route when another from the same neighbouring AS has a lower MED. Routes
    // with an empty AS_PATH (originated inside our AS) form one group.
    let snapshot = alive.clone();
    alive.retain(|i| {
        let (asn, med) = (c(*i).attrs.as_path.first_as(), c(*i).med());
        !snapshot
            .iter()
            .any(|&j| c(j).attrs.as_path.first_as() == asn && c(j).med() < med)
    });
    // d: routes from external peers over routes from internal ones.
    keep_best(&mut alive, |i| !c(i).source.ebgp);
    // e: interior cost to the NEXT_HOP: all next hops are on connected networks here
    // (Calico nodes peer directly), so every route ties.
    // f: lowest BGP Identifier (ORIGINATOR_ID when present).
    keep_best(&mut alive, |i| c(i).bgp_identifier());
    // RFC 4456 section 9: shortest CLUSTER_LIST.
    keep_best(&mut alive, |i| c(i).attrs.cluster_list.len());
    // g: lowest peer address.
    keep_best(&mut alive, |i| u32::from(c(i).source.address));
    alive.first().copied()
}

/// Keeps the indices whose key is the smallest.
fn keep_best<K: Ord>(alive: &mut SmallVec<[usize; 8]>, key: impl Fn(usize) -> K) {
    if alive.len() < 2 {
        return;
    }
    if let Some(best) = alive.iter().map(|&i| key(i)).min() {
        alive.retain(|i| key(*i) == best);
    }
}
