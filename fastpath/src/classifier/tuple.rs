//! Tuple-space search over the flattened rules (Srinivasan, Suri and Varghese, "Packet
//! Classification using Tuple Space Search", SIGCOMM 1999), with TupleMerge's coarsening of
//! prefix lengths (Daly, Bruschi, Linguaglossa, Pontarelli, Rossi, Tollet, Torng, Yourstone,
//! "TupleMerge", IEEE/ACM ToN 2019) so that few shapes cover many rules.
//!
//! Every rule is filed under one or more exact-match keys built from the fields it constrains
//! positively:
//! - protocol (when set);
//! - per side, one of: a network (masked to the nearest shorter length of 8, 16, 24, 32;
//!   shorter than 8 is not keyed), or the first of its IP sets (all must hold the address,
//!   so any one is a valid key), or nothing;
//! - the destination port, one key per port when the rule's ports total at most
//!   `max_indexed_ports`.
//!
//! The set of keyed fields (and prefix lengths) is the rule's *shape*; each shape is one hash
//! table from key to the ascending ids of the rules under it. A packet probes every shape
//! with its own fields masked the same way (for a set-keyed side, once per set holding its
//! address) and verifies each candidate with the full [`Rule::matches`], since keys are only
//! necessary conditions (coarsened prefixes, unkeyed fields, negations, ICMP).
//!
//! Cost per packet: one probe per shape (times set memberships on set-keyed sides) plus the
//! candidates verified, not the number of rules. Shapes are visited by their smallest rule
//! id, and a shape whose smallest id is past the best match so far ends the search.
//!
//! Memory: the builder counts (rule, key) pairs before allocating and gives up (the caller
//! falls back to linear evaluation) beyond `max_index_entries`.

use super::hash::FastMap;
use super::ipsets::IpSets;
use super::program::{ClassifierBuilder, Entry, Memberships, SetList};
use super::rule::{mask, PacketFields, Rule};

/// Prefix lengths keys are coarsened to (a rule's net of length `l` is keyed at the longest
/// of these `<= l`); `l < 8` leaves the side unkeyed.
const KEY_LENGTHS: [u8; 4] = [32, 24, 16, 8];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SideKey {
    Any,
    Net(u8),
    Set,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
    protocol: bool,
    src: SideKey,
    dst: SideKey,
    dst_port: bool,
}

#[derive(Debug)]
struct Tuple {
    shape: Shape,
    src_mask: u32,
    dst_mask: u32,
    min_rule: u32,
    max_rule: u32,
    /// Key -> (start, len) in `TupleIndex::rule_ids`.
    buckets: FastMap<u128, (u32, u32)>,
}

#[derive(Debug)]
pub(crate) struct TupleIndex {
    /// Ascending by `min_rule`.
    tuples: Vec<Tuple>,
    rule_ids: Vec<u32>,
    keys_src_sets: bool,
    keys_dst_sets: bool,
}

#[inline]
fn key(protocol: u8, dst_port: u16, src: u32, dst: u32) -> u128 {
    u128::from(protocol) | u128::from(dst_port) << 8 | u128::from(src) << 24 | u128::from(dst) << 56
}

/// The alternatives one side of a rule can be keyed by: (how, value) pairs, any of which the
/// packet must satisfy.
fn side_alternatives(nets: &[super::Cidr], sets: &[super::IpSetId]) -> Vec<(SideKey, u32)> {
    if let Some(set) = sets.first() {
        return vec![(SideKey::Set, set.0)];
    }
    let mut alternatives = Vec::with_capacity(nets.len());
    for net in nets {
        match KEY_LENGTHS.iter().find(|&&l| l <= net.len()) {
            Some(&len) => alternatives.push((SideKey::Net(len), net.bits() & mask(len))),
            // A net this wide may hold anything: the side cannot be keyed at all.
            None => return vec![(SideKey::Any, 0)],
        }
    }
    if alternatives.is_empty() {
        alternatives.push((SideKey::Any, 0));
    }
    alternatives
}

fn port_alternatives(rule: &Rule, max_ports: u32) -> Vec<Option<u16>> {
    let width: u32 = rule.dst.ports.iter().map(|r| r.width()).sum();
    if rule.dst.ports.is_empty() || width > max_ports {
        return vec![None];
    }
    rule.dst.ports.iter().flat_map(|r| r.first..=r.last).map(Some).collect()
}

/// Builds the index, or `None` when it would hold more than `max_index_entries` pairs.
pub(crate) fn build(entries: &[Entry], limits: &ClassifierBuilder) -> Option<TupleIndex> {
    let mut shapes: FastMap<Shape, usize> = FastMap::default();
    let mut tables: Vec<(Shape, FastMap<u128, Vec<u32>>)> = Vec::new();
    let mut pairs = 0usize;
    for (id, entry) in entries.iter().enumerate() {
        let rule = &entry.rule;
        let id = id as u32;
        let mut src = side_alternatives(&rule.src.nets, &rule.src.sets);
        let mut dst = side_alternatives(&rule.dst.nets, &rule.dst.sets);
        let mut ports = port_alternatives(rule, limits.max_indexed_ports);
        // Too many combinations: key on fewer fields (each dropped field is still verified).
        let max = limits.max_keys_per_rule.max(1);
        if src.len() * dst.len() * ports.len() > max {
            ports = vec![None];
        }
        if src.len() * dst.len() > max {
            dst = vec![(SideKey::Any, 0)];
        }
        if src.len() > max {
            src = vec![(SideKey::Any, 0)];
        }
        pairs += src.len() * dst.len() * ports.len();
        if pairs > limits.max_index_entries {
            return None;
        }
        for &(src_key, src_value) in &src {
            for &(dst_key, dst_value) in &dst {
                for &port in &ports {
                    let shape =
                        Shape { protocol: rule.protocol.is_some(), src: src_key, dst: dst_key, dst_port: port.is_some() };
                    let table = *shapes.entry(shape).or_insert_with(|| {
                        tables.push((shape, FastMap::default()));
                        tables.len() - 1
                    });
                    let k = key(rule.protocol.unwrap_or(0), port.unwrap_or(0), src_value, dst_value);
                    let ids = tables[table].1.entry(k).or_default();
                    // Two alternatives of one rule may coarsen to the same key.
                    if ids.last() != Some(&id) {
                        ids.push(id);
                    }
                }
            }
        }
    }

    let mut rule_ids = Vec::with_capacity(pairs);
    let mut tuples: Vec<Tuple> = Vec::with_capacity(tables.len());
    for (shape, table) in tables {
        let mut buckets = FastMap::default();
        buckets.reserve(table.len());
        let (mut min_rule, mut max_rule) = (u32::MAX, 0);
        for (k, ids) in table {
            min_rule = min_rule.min(ids[0]);
            max_rule = max_rule.max(*ids.last().unwrap_or(&0));
            buckets.insert(k, (rule_ids.len() as u32, ids.len() as u32));
            rule_ids.extend_from_slice(&ids);
        }
        let net_mask = |side| match side {
            SideKey::Net(len) => mask(len),
            _ => 0,
        };
        tuples.push(Tuple { shape, src_mask: net_mask(shape.src), dst_mask: net_mask(shape.dst), min_rule, max_rule, buckets });
    }
    tuples.sort_by_key(|t| t.min_rule);
    let keys_src_sets = tuples.iter().any(|t| t.shape.src == SideKey::Set);
    let keys_dst_sets = tuples.iter().any(|t| t.shape.dst == SideKey::Set);
    Some(TupleIndex { tuples, rule_ids, keys_src_sets, keys_dst_sets })
}

impl TupleIndex {
    pub(crate) fn keys_src_sets(&self) -> bool {
        self.keys_src_sets
    }

    pub(crate) fn keys_dst_sets(&self) -> bool {
        self.keys_dst_sets
    }

    pub(crate) fn tuple_count(&self) -> usize {
        self.tuples.len()
    }

    pub(crate) fn entry_count(&self) -> usize {
        self.rule_ids.len()
    }

    /// The first entry at or after `from` whose rule matches `packet`.
    #[inline]
    pub(crate) fn first_match(
        &self,
        entries: &[Entry],
        from: u32,
        packet: &PacketFields,
        sets: &IpSets,
        memberships: &Memberships,
    ) -> Option<u32> {
        if memberships.src().overflow || memberships.dst().overflow {
            // An address in more sets than fit on the stack: correct, just not indexed.
            return super::program::linear_first_match(entries, from, packet, sets);
        }
        let src = u32::from(packet.src);
        let dst = u32::from(packet.dst);
        let mut best = u32::MAX;
        for tuple in &self.tuples {
            if tuple.min_rule >= best {
                break;
            }
            if tuple.max_rule < from {
                continue;
            }
            let shape = tuple.shape;
            let protocol = if shape.protocol { packet.protocol } else { 0 };
            let port = if shape.dst_port { packet.dst_port } else { 0 };
            let src_one = [src & tuple.src_mask];
            let dst_one = [dst & tuple.dst_mask];
            let src_values = side_values(shape.src, &src_one, memberships.src());
            let dst_values = side_values(shape.dst, &dst_one, memberships.dst());
            for &s in src_values {
                for &d in dst_values {
                    let Some(&(start, len)) = tuple.buckets.get(&key(protocol, port, s, d)) else { continue };
                    let ids = &self.rule_ids[start as usize..(start + len) as usize];
                    let first = ids.partition_point(|&id| id < from);
                    for &id in &ids[first..] {
                        if id >= best {
                            break;
                        }
                        if entries[id as usize].rule.matches(packet, sets) {
                            best = id;
                            break;
                        }
                    }
                }
            }
        }
        (best != u32::MAX).then_some(best)
    }
}

#[inline]
fn side_values<'a>(side: SideKey, one: &'a [u32; 1], sets: &'a SetList) -> &'a [u32] {
    match side {
        SideKey::Any | SideKey::Net(_) => one,
        SideKey::Set => sets.ids(),
    }
}
