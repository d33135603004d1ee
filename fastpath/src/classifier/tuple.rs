//! Tuple-space search over the flattened rules (Srinivasan, Suri and Varghese, "Packet
//! Classification using Tuple Space Search", SIGCOMM 1999), with TupleMerge's coarsening of
//! prefix lengths (Daly, Bruschi, Linguaglossa, Pontarelli, Rossi, Tollet, Torng, Yourstone,
//! "TupleMerge", IEEE/ACM ToN 2019) so that few shapes cover many rules.
//!
//! Every rule is filed under one or more exact-match keys built from the fields it constrains
//! positively:
//! - its protocol class: TCP, UDP, ICMP, SCTP, UDPLite, or "other"; a rule without
//!   `protocol` is filed under all six (but the one its `notProtocol` excludes), which keeps
//!   protocol out of the shapes (one shape fewer to probe per other field combination);
//! - per side, one of: the first of its IP sets (all must hold the address, so any one is a
//!   valid key), or its networks, each masked to the nearest shorter length of 24, 16, 8
//!   (shorter than 8: the side is not keyed). TupleMerge's trade: /25../32 share the /24
//!   table, so a packet probes one table for all of them; only where more than
//!   `CROWDED_BUCKET` such nets fall in one /24 do its /32s move to a /32 table of their own,
//!   so candidate lists stay short;
//! - the destination port, one key per port when the rule's ports total at most
//!   `max_indexed_ports`.
//!
//! The set of keyed fields (and prefix lengths) is the rule's *shape*; each shape is one hash
//! table from key to the ascending ids of the rules under it. A packet probes every shape
//! with its own fields masked the same way (for a set-keyed side, once per set holding its
//! address) and verifies each candidate with the full [`Rule::matches`], since keys are only
//! necessary conditions (coarsened prefixes, unkeyed fields, negations, ICMP). Set
//! membership during verification comes from the packet's memberships, computed once per
//! evaluation, not from new lookups in [`IpSets`].
//!
//! Cost per packet: one probe per shape (times set memberships on set-keyed sides) plus the
//! candidates verified, not the number of rules. Shapes are visited by their smallest rule
//! id, and a shape whose smallest id is past the best match so far ends the search.
//!
//! Memory: the builder counts (rule, key) pairs before allocating and gives up (the caller
//! falls back to linear evaluation) beyond `max_index_entries`.

use super::hash::FastMap;
use super::ipsets::{IpSetId, IpSets};
use super::program::{ClassifierBuilder, Entry, Memberships, SetList};
use super::rule::{mask, protocol, Cidr, PacketFields, Rule};

/// Protocols with a key of their own; every other protocol shares class [`OTHER_PROTOCOLS`].
const KEYED_PROTOCOLS: [u8; 5] = [
    protocol::TCP,
    protocol::UDP,
    protocol::ICMP,
    protocol::SCTP,
    protocol::UDPLITE,
];
const OTHER_PROTOCOLS: u8 = 0;

/// Prefix lengths a net's key is coarsened to: the longest of these `<= len`.
const COARSE_LENGTHS: [u8; 3] = [24, 16, 8];
/// More nets of length >= 24 than this in one /24 (one side): its /32s get their own table.
const CROWDED_BUCKET: usize = 8;

#[inline]
fn protocol_class(p: u8) -> u8 {
    if KEYED_PROTOCOLS.contains(&p) {
        p
    } else {
        OTHER_PROTOCOLS
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SideKey {
    Any,
    Net(u8),
    Set,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
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
    /// Cheap pre-filters, so that most packets that cannot hit this table skip hashing:
    /// dst ports present (port-keyed tables), /16s covered (net-keyed sides).
    port_filter: Option<Bitmap16>,
    src_filter: Option<Bitmap16>,
    dst_filter: Option<Bitmap16>,
}

/// One bit per 16-bit value (8 KiB): ports, or the top 16 bits of an address.
#[derive(Debug)]
struct Bitmap16(Box<[u64]>);

impl Bitmap16 {
    fn new() -> Self {
        Bitmap16(vec![0u64; 1 << 10].into_boxed_slice())
    }

    fn set(&mut self, value: u16) {
        self.0[usize::from(value >> 6)] |= 1 << (value & 63);
    }

    /// Marks every /16 a key of a `len`-bit network covers.
    fn set_network(&mut self, network: u32, len: u8) {
        let first = (network >> 16) as u16;
        let count = if len >= 16 {
            1
        } else {
            1u32 << (16 - u32::from(len))
        };
        for i in 0..count {
            self.set(first.wrapping_add(i as u16));
        }
    }

    #[inline]
    fn get(&self, value: u16) -> bool {
        // `value >> 6` < 1024 = the length: no bounds panic possible.
        self.0
            .get(usize::from(value >> 6))
            .is_some_and(|w| w & (1 << (value & 63)) != 0)
    }
}

/// Whether a packet value can pass an optional filter.
#[inline]
fn passes(filter: &Option<Bitmap16>, value: u16) -> bool {
    filter.as_ref().is_none_or(|f| f.get(value))
}

#[derive(Debug)]
pub(crate) struct TupleIndex {
    /// Ascending by `min_rule`.
    tuples: Vec<Tuple>,
    rule_ids: Vec<u32>,
    uses_src_sets: bool,
    uses_dst_sets: bool,
}

#[inline]
fn key(protocol_class: u8, dst_port: u16, src: u32, dst: u32) -> u128 {
    u128::from(protocol_class)
        | u128::from(dst_port) << 8
        | u128::from(src) << 24
        | u128::from(dst) << 56
}

/// Nets of length >= 24 per /24, on one side, over the whole program.
type Crowding = FastMap<u32, usize>;

fn count_crowding(entries: &[Entry], side: impl Fn(&Rule) -> (&[Cidr], &[IpSetId])) -> Crowding {
    let mut crowding = Crowding::default();
    for entry in entries {
        let (nets, sets) = side(&entry.rule);
        if sets.is_empty() {
            for net in nets.iter().filter(|n| n.len() >= 24) {
                *crowding.entry(net.bits() & mask(24)).or_default() += 1;
            }
        }
    }
    crowding
}

/// The alternatives one side of a rule can be keyed by: (how, value) pairs, one of which
/// every packet the rule matches satisfies.
fn side_alternatives(nets: &[Cidr], sets: &[IpSetId], crowding: &Crowding) -> Vec<(SideKey, u32)> {
    if let Some(set) = sets.first() {
        return vec![(SideKey::Set, set.0)];
    }
    let mut alternatives = Vec::with_capacity(nets.len());
    for net in nets {
        let crowded = net.len() == 32
            && crowding
                .get(&(net.bits() & mask(24)))
                .is_some_and(|&n| n > CROWDED_BUCKET);
        if crowded {
            alternatives.push((SideKey::Net(32), net.bits()));
            continue;
        }
        match COARSE_LENGTHS.iter().find(|&&l| l <= net.len()) {
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

fn protocol_alternatives(rule: &Rule) -> Vec<u8> {
    match rule.protocol {
        Some(p) => vec![protocol_class(p)],
        None => {
            let excluded = rule.not_protocol.filter(|p| KEYED_PROTOCOLS.contains(p));
            KEYED_PROTOCOLS
                .iter()
                .copied()
                .filter(|&p| Some(p) != excluded)
                .chain([OTHER_PROTOCOLS])
                .collect()
        }
    }
}

fn port_alternatives(rule: &Rule, max_ports: u32) -> Vec<Option<u16>> {
    let width: u32 = rule.dst.ports.iter().map(|r| r.width()).sum();
    if rule.dst.ports.is_empty() || width > max_ports {
        return vec![None];
    }
    rule.dst
        .ports
        .iter()
        .flat_map(|r| r.first..=r.last)
        .map(Some)
        .collect()
}

/// Builds the index, or `None` when it would hold more than `max_index_entries` pairs.
pub(crate) fn build(entries: &[Entry], limits: &ClassifierBuilder) -> Option<TupleIndex> {
    let src_crowding = count_crowding(entries, |r| (&r.src.nets, &r.src.sets));
    let dst_crowding = count_crowding(entries, |r| (&r.dst.nets, &r.dst.sets));
    let mut shapes: FastMap<Shape, usize> = FastMap::default();
    let mut tables: Vec<(Shape, FastMap<u128, Vec<u32>>)> = Vec::new();
    let mut pairs = 0usize;
    for (id, entry) in entries.iter().enumerate() {
        let rule = &entry.rule;
        let id = id as u32;
        let protocols = protocol_alternatives(rule);
        let mut src = side_alternatives(&rule.src.nets, &rule.src.sets, &src_crowding);
        let mut dst = side_alternatives(&rule.dst.nets, &rule.dst.sets, &dst_crowding);
        let mut ports = port_alternatives(rule, limits.max_indexed_ports);
        // Too many combinations: key on fewer fields (each dropped field is still verified).
        let max = limits.max_keys_per_rule.max(protocols.len());
        let p = protocols.len();
        if p * src.len() * dst.len() * ports.len() > max {
            ports = vec![None];
        }
        if p * src.len() * dst.len() > max {
            dst = vec![(SideKey::Any, 0)];
        }
        if p * src.len() > max {
            src = vec![(SideKey::Any, 0)];
        }
        pairs += p * src.len() * dst.len() * ports.len();
        if pairs > limits.max_index_entries {
            return None;
        }
        for &(src_key, src_value) in &src {
            for &(dst_key, dst_value) in &dst {
                for &port in &ports {
                    let shape = Shape {
                        src: src_key,
                        dst: dst_key,
                        dst_port: port.is_some(),
                    };
                    let table = *shapes.entry(shape).or_insert_with(|| {
                        tables.push((shape, FastMap::default()));
                        tables.len() - 1
                    });
                    for &class in &protocols {
                        let ids = tables[table]
                            .1
                            .entry(key(class, port.unwrap_or(0), src_value, dst_value))
                            .or_default();
                        // Two alternatives of one rule may coarsen to the same key.
                        if ids.last() != Some(&id) {
                            ids.push(id);
                        }
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
        tuples.push(Tuple {
            shape,
            src_mask: net_mask(shape.src),
            dst_mask: net_mask(shape.dst),
            min_rule,
            max_rule,
            port_filter: filter_of(
                &buckets,
                shape.dst_port.then_some(|k: u128| (k >> 8) as u16),
            ),
            src_filter: side_filter(shape.src, &buckets, 24),
            dst_filter: side_filter(shape.dst, &buckets, 56),
            buckets,
        });
    }
    tuples.sort_by_key(|t| t.min_rule);
    let uses_src_sets = entries.iter().any(|e| e.rule.uses_sets().0);
    let uses_dst_sets = entries.iter().any(|e| e.rule.uses_sets().1);
    Some(TupleIndex {
        tuples,
        rule_ids,
        uses_src_sets,
        uses_dst_sets,
    })
}

/// A filter of the 16-bit values `value_of` extracts from every key, if the field is keyed.
fn filter_of(
    buckets: &FastMap<u128, (u32, u32)>,
    value_of: Option<impl Fn(u128) -> u16>,
) -> Option<Bitmap16> {
    let value_of = value_of?;
    let mut filter = Bitmap16::new();
    for &k in buckets.keys() {
        filter.set(value_of(k));
    }
    Some(filter)
}

/// The /16 filter of a net-keyed side whose value sits at bit `shift` of the key.
fn side_filter(side: SideKey, buckets: &FastMap<u128, (u32, u32)>, shift: u32) -> Option<Bitmap16> {
    let SideKey::Net(len) = side else { return None };
    let mut filter = Bitmap16::new();
    for &k in buckets.keys() {
        filter.set_network((k >> shift) as u32, len);
    }
    Some(filter)
}

impl TupleIndex {
    /// Whether any rule names a set on the source side (the packet's memberships are needed).
    pub(crate) fn uses_src_sets(&self) -> bool {
        self.uses_src_sets
    }

    pub(crate) fn uses_dst_sets(&self) -> bool {
        self.uses_dst_sets
    }

    pub(crate) fn tuple_count(&self) -> usize {
        self.tuples.len()
    }

    pub(crate) fn entry_count(&self) -> usize {
        self.rule_ids.len()
    }

    pub(crate) fn largest_bucket(&self) -> usize {
        self.tuples
            .iter()
            .flat_map(|t| t.buckets.values())
            .map(|&(_, len)| len as usize)
            .max()
            .unwrap_or(0)
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
        let (src_sets, dst_sets) = (memberships.src(), memberships.dst());
        if src_sets.overflow || dst_sets.overflow {
            // An address in more sets than fit on the stack: correct, just not indexed.
            return super::program::linear_first_match(entries, from, packet, sets);
        }
        let src = u32::from(packet.src);
        let dst = u32::from(packet.dst);
        let class = protocol_class(packet.protocol);
        let mut best = u32::MAX;
        for tuple in &self.tuples {
            if tuple.min_rule >= best {
                break;
            }
            if tuple.max_rule < from {
                continue;
            }
            if !(passes(&tuple.port_filter, packet.dst_port)
                && passes(&tuple.src_filter, (src >> 16) as u16)
                && passes(&tuple.dst_filter, (dst >> 16) as u16))
            {
                continue;
            }
            let shape = tuple.shape;
            let port = if shape.dst_port { packet.dst_port } else { 0 };
            let src_one = [src & tuple.src_mask];
            let dst_one = [dst & tuple.dst_mask];
            for &s in side_values(shape.src, &src_one, src_sets) {
                for &d in side_values(shape.dst, &dst_one, dst_sets) {
                    let Some(&(start, len)) = tuple.buckets.get(&key(class, port, s, d)) else {
                        continue;
                    };
                    let ids = &self.rule_ids[start as usize..(start + len) as usize];
                    let first = ids.partition_point(|&id| id < from);
                    for &id in &ids[first..] {
                        if id >= best {
                            break;
                        }
                        let rule = &entries[id as usize].rule;
                        if rule.matches_with(
                            packet,
                            |s| src_sets.contains(s),
                            |s| dst_sets.contains(s),
                        ) {
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
