//! Selector-derived address sets: one [`IpSetId`] per distinct selector a policy or profile
//! rule uses, its members the addresses of every labelled thing the selector matches
//! (workload and host endpoints cluster-wide, NetworkSets, GlobalNetworkSets).
//!
//! Membership is kept here, counted per (set, address), because two things may contribute the
//! same address to one set (two endpoints claiming one IP, a NetworkSet covering an endpoint's
//! /32 exactly): the address leaves the set only when its last contributor does. The fastpath's
//! `IpSetsWriter` keeps plain sets, so it only ever sees the 0 <-> 1 transitions, as
//! [`IpSetDelta`]s.
//!
//! Deltas accumulate until taken. A change undone before it was taken (an endpoint relabelled
//! away and back, a set released and its member re-added) cancels out rather than reaching the
//! dataplane twice.

use std::collections::{BTreeMap, HashMap};

use fastpath::classifier::{Cidr, IpSetId, IpSetsWriter};
use selector::Selector;

use super::MemberKey;

/// One membership change for the dataplane's IP sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpSetDelta {
    pub set: IpSetId,
    pub member: Cidr,
    pub change: MemberChange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Added,
    Removed,
}

/// Applies deltas in order; the caller publishes afterwards (once per batch).
pub fn apply_ipset_deltas(writer: &mut IpSetsWriter, deltas: &[IpSetDelta]) {
    for d in deltas {
        match d.change {
            MemberChange::Added => writer.add_member(d.set, d.member),
            MemberChange::Removed => writer.remove_member(d.set, d.member),
        };
    }
}

/// Something that carries labels and addresses and so can be a set member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct MemberFacts {
    /// Effective labels: own labels over inherited profile labels, flattened.
    pub labels: BTreeMap<String, String>,
    pub cidrs: Vec<Cidr>,
}

#[derive(Debug)]
struct SetState {
    selector: Selector,
    /// Policies/profiles holding the set (rules count once each).
    refs: usize,
    /// Address -> how many members contribute it.
    members: HashMap<Cidr, u32>,
}

#[derive(Debug)]
struct MemberState {
    facts: MemberFacts,
    /// The sets this member's addresses are counted in.
    in_sets: Vec<IpSetId>,
}

#[derive(Debug, Default)]
pub(crate) struct AddressSets {
    by_selector: HashMap<Selector, IpSetId>,
    sets: BTreeMap<IpSetId, SetState>,
    members: BTreeMap<MemberKey, MemberState>,
    next_id: u32,
    /// (set, address) -> whether it is present after the pending changes.
    pending: BTreeMap<(IpSetId, Cidr), bool>,
}

impl AddressSets {
    /// The set for `selector`, created (and filled from every known member) on first use.
    pub(crate) fn acquire(&mut self, selector: &Selector) -> IpSetId {
        if let Some(&id) = self.by_selector.get(selector) {
            if let Some(set) = self.sets.get_mut(&id) {
                set.refs += 1;
            }
            return id;
        }
        // Ids are never reused: a program compiled against a released id must not start
        // matching a different selector's members.
        self.next_id = self.next_id.wrapping_add(1);
        let id = IpSetId(self.next_id);
        self.by_selector.insert(selector.clone(), id);
        self.sets.insert(
            id,
            SetState {
                selector: selector.clone(),
                refs: 1,
                members: HashMap::new(),
            },
        );
        let matching: Vec<(MemberKey, Vec<Cidr>)> = self
            .members
            .iter()
            .filter(|(_, m)| selector.matches(&m.facts.labels))
            .map(|(k, m)| (k.clone(), m.facts.cidrs.clone()))
            .collect();
        for (key, cidrs) in matching {
            for cidr in cidrs {
                self.count_in(id, cidr);
            }
            if let Some(m) = self.members.get_mut(&key) {
                m.in_sets.push(id);
            }
        }
        id
    }

    /// Drops one hold on `id`; the last one empties and forgets the set.
    pub(crate) fn release(&mut self, id: IpSetId) {
        let Some(set) = self.sets.get_mut(&id) else {
            return;
        };
        set.refs = set.refs.saturating_sub(1);
        if set.refs > 0 {
            return;
        }
        let addresses: Vec<Cidr> = set.members.keys().copied().collect();
        let selector = set.selector.clone();
        for cidr in addresses {
            self.note(id, cidr, false);
        }
        self.sets.remove(&id);
        self.by_selector.remove(&selector);
        for m in self.members.values_mut() {
            m.in_sets.retain(|&s| s != id);
        }
    }

    /// Adds or replaces a member; its addresses move between sets as its labels say.
    pub(crate) fn upsert_member(&mut self, key: MemberKey, facts: MemberFacts) {
        if self.members.get(&key).is_some_and(|m| m.facts == facts) {
            return;
        }
        self.remove_member(&key);
        let in_sets: Vec<IpSetId> = self
            .sets
            .iter()
            .filter(|(_, s)| s.selector.matches(&facts.labels))
            .map(|(&id, _)| id)
            .collect();
        for &id in &in_sets {
            for &cidr in &facts.cidrs {
                self.count_in(id, cidr);
            }
        }
        self.members.insert(key, MemberState { facts, in_sets });
    }

    pub(crate) fn remove_member(&mut self, key: &MemberKey) {
        let Some(old) = self.members.remove(key) else {
            return;
        };
        for id in old.in_sets {
            for &cidr in &old.facts.cidrs {
                self.count_out(id, cidr);
            }
        }
    }

    pub(crate) fn member(&self, key: &MemberKey) -> Option<&MemberFacts> {
        self.members.get(key).map(|m| &m.facts)
    }

    pub(crate) fn selector(&self, id: IpSetId) -> Option<&Selector> {
        self.sets.get(&id).map(|s| &s.selector)
    }

    pub(crate) fn set_ids(&self) -> impl Iterator<Item = IpSetId> + '_ {
        self.sets.keys().copied()
    }

    /// The current members of `id`, sorted.
    pub(crate) fn addresses(&self, id: IpSetId) -> Vec<Cidr> {
        let mut v: Vec<Cidr> = self
            .sets
            .get(&id)
            .map(|s| s.members.keys().copied().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    pub(crate) fn take_deltas(&mut self) -> Vec<IpSetDelta> {
        std::mem::take(&mut self.pending)
            .into_iter()
            .map(|((set, member), present)| IpSetDelta {
                set,
                member,
                change: if present {
                    MemberChange::Added
                } else {
                    MemberChange::Removed
                },
            })
            .collect()
    }

    fn count_in(&mut self, id: IpSetId, cidr: Cidr) {
        let Some(set) = self.sets.get_mut(&id) else {
            return;
        };
        let n = set.members.entry(cidr).or_insert(0);
        *n += 1;
        if *n == 1 {
            self.note(id, cidr, true);
        }
    }

    fn count_out(&mut self, id: IpSetId, cidr: Cidr) {
        let Some(set) = self.sets.get_mut(&id) else {
            return;
        };
        let Some(n) = set.members.get_mut(&cidr) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            set.members.remove(&cidr);
            self.note(id, cidr, false);
        }
    }

    /// Records a 0 <-> 1 transition. Transitions of one (set, address) alternate, so an
    /// opposite pending one is exactly what this one undoes.
    fn note(&mut self, id: IpSetId, cidr: Cidr, present: bool) {
        match self.pending.get(&(id, cidr)) {
            Some(&p) if p != present => {
                self.pending.remove(&(id, cidr));
            }
            _ => {
                self.pending.insert((id, cidr), present);
            }
        }
    }
}
