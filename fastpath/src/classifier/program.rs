//! The compiled per-endpoint program: Calico's tiers, policies and profiles flattened into one
//! rule list whose control flow (Pass, Log, tier default actions) lives in each entry's
//! [`Effect`], plus an index that finds "the first rule at or after position `from` that
//! matches this packet".
//!
//! Flattening turns the whole evaluation into repeated first-match queries:
//! - Allow / Deny: the answer.
//! - Log: count, then ask again from the next rule.
//! - Pass: ask again from the first rule of the next tier (or the next profile).
//! - A tier's `defaultAction: Deny` is a match-everything Deny entry at the tier's end;
//!   `Pass` needs no entry (falling off the tier is passing).
//! - Nothing left to match: Deny ("no policy and no profile allowed it").
//!
//! Each query starts after the previous match, so evaluation takes at most as many queries as
//! there are Log and Pass rules matching the packet, plus one.

use std::cmp::Ordering;

use super::ipsets::{IpSetId, IpSets};
use super::rule::{Action, PacketFields, Rule};
use super::tuple::{self, TupleIndex};
use super::ClassifierError;

/// A tier, as it applies to one endpoint and direction: only the policies that select the
/// endpoint and have this direction in their `types`. A tier with no such policy is skipped.
#[derive(Debug, Clone)]
pub struct Tier {
    pub name: String,
    /// Tiers run by ascending order, then name; `None` (no order) after every ordered one.
    pub order: Option<f64>,
    pub default_action: TierDefaultAction,
    pub policies: Vec<Policy>,
}

/// Calico's tier `defaultAction`: what happens when a tier's policies applied but none of
/// their rules decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TierDefaultAction {
    #[default]
    Deny,
    Pass,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub name: String,
    /// Policies run by ascending order, then name; `None` after every ordered one.
    pub order: Option<f64>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// Everything that applies to one endpoint in one direction.
#[derive(Debug, Clone, Default)]
pub struct EndpointRules {
    pub tiers: Vec<Tier>,
    /// In the endpoint's `profiles` order.
    pub profiles: Vec<Profile>,
}

/// Index of a flattened rule in a [`PolicyProgram`]; dense, so counters can be an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleRef(pub u32);

/// Where a flattened rule came from, for logs, metrics and `describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOrigin {
    Policy {
        tier: String,
        policy: String,
        rule: usize,
    },
    TierDefault {
        tier: String,
    },
    Profile {
        profile: String,
        rule: usize,
    },
}

impl std::fmt::Display for RuleOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RuleOrigin::Policy { tier, policy, rule } => {
                write!(f, "tier {tier} policy {policy} rule {rule}")
            }
            RuleOrigin::TierDefault { tier } => write!(f, "tier {tier} default action"),
            RuleOrigin::Profile { profile, rule } => write!(f, "profile {profile} rule {rule}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyAction {
    Allow,
    Deny,
}

/// The outcome for one packet: the action and the rule that decided it (`None` when nothing
/// did: the implicit deny after the profiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub action: PolicyAction,
    pub rule: Option<RuleRef>,
}

/// What a flattened entry does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
    Log,
    /// Continue at this entry index (the next tier's, or next profile's, first rule).
    Pass {
        next: u32,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) rule: Rule,
    pub(crate) effect: Effect,
}

/// Which index a program was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// First-match scan over every rule: the reference, and the fallback when an index would
    /// exceed the memory bound.
    Linear,
    /// Tuple-space search: `tuples` hash tables holding `entries` (rule, key) pairs; the
    /// longest candidate list under one key is `largest_bucket` (what a packet may have to
    /// verify in one probe: rules that differ only in fields the index does not key on).
    TupleSpace {
        tuples: usize,
        entries: usize,
        largest_bucket: usize,
    },
}

#[derive(Debug)]
enum Index {
    Linear,
    Tuples(TupleIndex),
}

/// A compiled program; immutable, shared by workers (e.g. behind `arc-swap`).
#[derive(Debug)]
pub struct PolicyProgram {
    entries: Vec<Entry>,
    origins: Vec<RuleOrigin>,
    index: Index,
}

// Workers share programs and set snapshots across threads: fail the build if that breaks.
const _: fn() = || {
    fn shared_by_workers<T: Send + Sync>() {}
    shared_by_workers::<PolicyProgram>();
    shared_by_workers::<IpSets>();
};

/// Compiles [`EndpointRules`] into a [`PolicyProgram`]; the knobs bound its memory.
#[derive(Debug, Clone)]
pub struct ClassifierBuilder {
    /// Most (rule, key) pairs the tuple index may hold; beyond, the program is linear.
    /// Build memory is about 48 bytes per pair, so the default (1 Mi pairs) bounds it to ~50 MB.
    pub max_index_entries: usize,
    /// Most keys one rule may expand into (nets x sets x ports); a rule beyond it is indexed
    /// on fewer fields (dst ports dropped first, then destination, then source).
    pub max_keys_per_rule: usize,
    /// A dst port list of at most this many ports in total is indexed port by port;
    /// a wider one leaves the port out of the key (and is checked on the candidates).
    pub max_indexed_ports: u32,
    /// Build the linear reference instead of an index.
    pub linear: bool,
}

/// The most rules in one program (entry indices are `u32`, with room for a sentinel).
pub const MAX_RULES: usize = 1 << 24;

impl Default for ClassifierBuilder {
    fn default() -> Self {
        ClassifierBuilder {
            max_index_entries: 1 << 20,
            max_keys_per_rule: 64,
            max_indexed_ports: 16,
            linear: false,
        }
    }
}

impl ClassifierBuilder {
    /// The builder of the reference (linear) program.
    pub fn linear() -> Self {
        ClassifierBuilder {
            linear: true,
            ..Self::default()
        }
    }

    pub fn compile(&self, rules: &EndpointRules) -> Result<PolicyProgram, ClassifierError> {
        let (entries, origins) = flatten(rules)?;
        let index = if self.linear {
            Index::Linear
        } else {
            match tuple::build(&entries, self) {
                Some(index) => Index::Tuples(index),
                None => {
                    tracing::warn!(
                        rules = entries.len(),
                        max_index_entries = self.max_index_entries,
                        "policy index would exceed its memory bound; using the linear evaluator"
                    );
                    Index::Linear
                }
            }
        };
        let program = PolicyProgram {
            entries,
            origins,
            index,
        };
        tracing::debug!(rules = program.rule_count(), index = ?program.index(), "compiled policy program");
        Ok(program)
    }
}

/// Ascending `order`, missing order last, then name (Calico's policy and tier ordering).
fn by_order_then_name(a: (Option<f64>, &str), b: (Option<f64>, &str)) -> Ordering {
    let order = |o: Option<f64>| o.unwrap_or(f64::INFINITY);
    order(a.0).total_cmp(&order(b.0)).then_with(|| a.1.cmp(b.1))
}

fn flatten(rules: &EndpointRules) -> Result<(Vec<Entry>, Vec<RuleOrigin>), ClassifierError> {
    let count: usize = rules
        .tiers
        .iter()
        .flat_map(|t| &t.policies)
        .map(|p| p.rules.len())
        .sum::<usize>()
        + rules.tiers.len()
        + rules.profiles.iter().map(|p| p.rules.len()).sum::<usize>();
    if count > MAX_RULES {
        return Err(ClassifierError::TooManyRules {
            count,
            max: MAX_RULES,
        });
    }
    let mut flat = Flattener {
        entries: Vec::with_capacity(count),
        origins: Vec::with_capacity(count),
        passes: vec![],
    };

    let mut tiers: Vec<&Tier> = rules
        .tiers
        .iter()
        .filter(|t| !t.policies.is_empty())
        .collect();
    tiers.sort_by(|a, b| by_order_then_name((a.order, &a.name), (b.order, &b.name)));
    for tier in tiers {
        let mut policies: Vec<&Policy> = tier.policies.iter().collect();
        policies.sort_by(|a, b| by_order_then_name((a.order, &a.name), (b.order, &b.name)));
        for policy in policies {
            for (i, rule) in policy.rules.iter().enumerate() {
                flat.push(
                    rule,
                    RuleOrigin::Policy {
                        tier: tier.name.clone(),
                        policy: policy.name.clone(),
                        rule: i,
                    },
                )?;
            }
        }
        if tier.default_action == TierDefaultAction::Deny {
            flat.push(
                &Rule::any(Action::Deny),
                RuleOrigin::TierDefault {
                    tier: tier.name.clone(),
                },
            )?;
        }
        // Passing skips the tier's default action too: the block ends after it.
        flat.end_block();
    }
    for profile in &rules.profiles {
        for (i, rule) in profile.rules.iter().enumerate() {
            flat.push(
                rule,
                RuleOrigin::Profile {
                    profile: profile.name.clone(),
                    rule: i,
                },
            )?;
        }
        flat.end_block();
    }
    Ok((flat.entries, flat.origins))
}

struct Flattener {
    entries: Vec<Entry>,
    origins: Vec<RuleOrigin>,
    /// Pass entries of the current block, whose target is the block's end.
    passes: Vec<usize>,
}

impl Flattener {
    fn push(&mut self, rule: &Rule, origin: RuleOrigin) -> Result<(), ClassifierError> {
        rule.validate().map_err(|e| ClassifierError::InRule {
            origin: origin.to_string(),
            source: Box::new(e),
        })?;
        let effect = match rule.action {
            Action::Allow => Effect::Allow,
            Action::Deny => Effect::Deny,
            Action::Log => Effect::Log,
            Action::Pass => {
                self.passes.push(self.entries.len());
                Effect::Pass { next: 0 } // patched by `end_block`
            }
        };
        self.entries.push(Entry {
            rule: rule.clone(),
            effect,
        });
        self.origins.push(origin);
        Ok(())
    }

    fn end_block(&mut self) {
        let next = self.entries.len() as u32;
        for i in self.passes.drain(..) {
            self.entries[i].effect = Effect::Pass { next };
        }
    }
}

/// Interned set memberships of one packet, computed once per evaluation.
pub(crate) struct Memberships {
    src: SetList,
    dst: SetList,
}

/// Up to [`SetList::CAPACITY`] set ids on the stack; `overflow` when the address is in more.
pub(crate) struct SetList {
    ids: [u32; SetList::CAPACITY],
    len: usize,
    pub(crate) overflow: bool,
}

impl SetList {
    pub(crate) const CAPACITY: usize = 64;

    #[inline]
    fn of(sets: &IpSets, addr: std::net::Ipv4Addr, wanted: bool) -> SetList {
        let mut list = SetList {
            ids: [0; Self::CAPACITY],
            len: 0,
            overflow: false,
        };
        if wanted {
            for IpSetId(id) in sets.sets_containing(addr) {
                if list.len == Self::CAPACITY {
                    list.overflow = true;
                    break;
                }
                list.ids[list.len] = id;
                list.len += 1;
            }
        }
        list
    }

    #[inline]
    pub(crate) fn ids(&self) -> &[u32] {
        &self.ids[..self.len]
    }

    #[inline]
    pub(crate) fn contains(&self, set: IpSetId) -> bool {
        self.ids().contains(&set.0)
    }
}

impl Memberships {
    pub(crate) fn src(&self) -> &SetList {
        &self.src
    }
    pub(crate) fn dst(&self) -> &SetList {
        &self.dst
    }
}

impl PolicyProgram {
    /// The decision for `packet`, with set membership from `sets`. No locks, no allocation.
    #[inline]
    pub fn evaluate(&self, packet: &PacketFields, sets: &IpSets) -> Decision {
        self.evaluate_with(packet, sets, |_, _| {})
    }

    /// As [`evaluate`](Self::evaluate), calling `on_match(rule, action)` for every rule that
    /// matched on the way: Log and Pass rules, then the deciding one.
    #[inline]
    pub fn evaluate_with(
        &self,
        packet: &PacketFields,
        sets: &IpSets,
        mut on_match: impl FnMut(RuleRef, Action),
    ) -> Decision {
        let memberships = match &self.index {
            Index::Tuples(index) => Some(Memberships {
                src: SetList::of(sets, packet.src, index.uses_src_sets()),
                dst: SetList::of(sets, packet.dst, index.uses_dst_sets()),
            }),
            Index::Linear => None,
        };
        let mut from = 0u32;
        loop {
            let found = match (&self.index, &memberships) {
                (Index::Tuples(index), Some(m)) => {
                    index.first_match(&self.entries, from, packet, sets, m)
                }
                _ => linear_first_match(&self.entries, from, packet, sets),
            };
            let Some(at) = found else {
                return Decision {
                    action: PolicyAction::Deny,
                    rule: None,
                };
            };
            let entry = &self.entries[at as usize];
            on_match(RuleRef(at), entry.rule.action);
            match entry.effect {
                Effect::Allow => {
                    return Decision {
                        action: PolicyAction::Allow,
                        rule: Some(RuleRef(at)),
                    }
                }
                Effect::Deny => {
                    return Decision {
                        action: PolicyAction::Deny,
                        rule: Some(RuleRef(at)),
                    }
                }
                Effect::Log => from = at + 1,
                // `next` is past `at` (patched at the block's end), so the loop always advances.
                Effect::Pass { next } => from = next,
            }
        }
    }

    /// Number of flattened rules (the size [`RuleHits`] needs).
    pub fn rule_count(&self) -> usize {
        self.entries.len()
    }

    /// Where a rule came from.
    pub fn origin(&self, rule: RuleRef) -> Option<&RuleOrigin> {
        self.origins.get(rule.0 as usize)
    }

    /// The flattened rule itself.
    pub fn rule(&self, rule: RuleRef) -> Option<&Rule> {
        self.entries.get(rule.0 as usize).map(|e| &e.rule)
    }

    pub fn index(&self) -> IndexKind {
        match &self.index {
            Index::Linear => IndexKind::Linear,
            Index::Tuples(t) => IndexKind::TupleSpace {
                tuples: t.tuple_count(),
                entries: t.entry_count(),
                largest_bucket: t.largest_bucket(),
            },
        }
    }
}

/// The reference: the first entry at or after `from` whose rule matches.
pub(crate) fn linear_first_match(
    entries: &[Entry],
    from: u32,
    packet: &PacketFields,
    sets: &IpSets,
) -> Option<u32> {
    let start = (from as usize).min(entries.len());
    entries[start..]
        .iter()
        .position(|e| e.rule.matches(packet, sets))
        .map(|i| (start + i) as u32)
}

/// Per-worker hit counters for one program, indexed by [`RuleRef`]; sum workers' on read.
/// Make a new one when the program is swapped (rule refs are per program).
#[derive(Debug, Clone, Default)]
pub struct RuleHits {
    hits: Box<[u64]>,
}

impl RuleHits {
    pub fn for_program(program: &PolicyProgram) -> Self {
        RuleHits {
            hits: vec![0; program.rule_count()].into_boxed_slice(),
        }
    }

    /// Counts one hit; a ref from another (bigger) program is ignored rather than panicking.
    #[inline]
    pub fn hit(&mut self, rule: RuleRef) {
        if let Some(h) = self.hits.get_mut(rule.0 as usize) {
            *h += 1;
        }
    }

    pub fn get(&self, rule: RuleRef) -> u64 {
        self.hits.get(rule.0 as usize).copied().unwrap_or(0)
    }

    pub fn add(&mut self, other: &RuleHits) {
        for (a, b) in self.hits.iter_mut().zip(other.hits.iter()) {
            *a += b;
        }
    }
}
