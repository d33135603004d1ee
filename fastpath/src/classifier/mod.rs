//! Policy classifier: the per-endpoint, per-direction program Calico policy compiles into.
//!
//! CONTRACT
//! - The control plane describes what applies to one endpoint in one direction as
//!   [`EndpointRules`]: [`Tier`]s of [`Policy`]s of [`Rule`]s, then [`Profile`]s. Selectors and
//!   NetworkSets arrive as [`IpSetId`]s, named ports as numbers.
//! - [`ClassifierBuilder::compile`]`(&EndpointRules) -> Result<PolicyProgram, ClassifierError>`
//!   runs off the hot path. It sorts tiers and policies (order, then name), flattens them
//!   into one rule list with Calico's control flow attached, and indexes it (see `tuple`).
//!   Memory is bounded by [`ClassifierBuilder::max_index_entries`]: a rule set whose index
//!   would exceed it compiles to the linear evaluator instead (same decisions, slower), and
//!   [`PolicyProgram::index`] says which one was built.
//! - [`PolicyProgram::evaluate`]`(&PacketFields, &IpSets) -> Decision` is what workers call:
//!   no locks, no allocation. [`PolicyProgram::evaluate_with`] also reports every rule that
//!   matched on the way (Log, Pass, the deciding one) so per-worker [`RuleHits`] counters stay
//!   outside the immutable program.
//! - IP set membership changes through [`IpSetsWriter`] + `publish` without recompiling any
//!   program; workers read it through [`IpSetsReader::load`].
//!
//! Decisions where Calico leaves the fastpath a choice:
//! - `sets` of one rule side must **all** hold the address (Felix renders each IP set of a
//!   rule as its own match); `not_sets`: none may. The policy model gives one set per
//!   effective selector, so this matters only when a rule carries several.
//! - A Pass in a profile skips the rest of that profile (Felix returns from the profile's
//!   chain and goes on with the next profile).
//! - IPv4 only, as the fastpath. Named ports are numbers by the time they get here, which
//!   covers destination named ports of the endpoint itself; source named ports (Calico's
//!   "IP, port" sets) are not expressible.
//! - [`RuleRef`]s index one program; counters ([`RuleHits`]) restart with each new program.
//!
//! Evaluation (Calico's, as Felix renders it): tiers in order; within a tier the first
//! matching rule of its policies decides: Allow and Deny end evaluation, Pass skips to the
//! next tier, Log counts and continues. A tier with at least one policy but no decision ends
//! in its `defaultAction` (Deny, or Pass). After the tiers, the profiles' rules, first match
//! (a Pass there skips to the next profile); nothing matched: Deny.

mod hash;
mod ipsets;
mod program;
mod rule;
mod tuple;

#[cfg(test)]
mod equivalence_tests;

pub use ipsets::{IpSetId, IpSets, IpSetsReader, IpSetsWriter};
pub use program::{
    ClassifierBuilder, Decision, EndpointRules, IndexKind, Policy, PolicyAction, PolicyProgram,
    Profile, RuleHits, RuleOrigin, RuleRef, Tier, TierDefaultAction,
};
pub use rule::{protocol, Action, Cidr, EndpointMatch, IcmpMatch, PacketFields, PortRange, Rule};

use std::net::Ipv4Addr;

/// Why a rule set did not compile. Messages name the field and value.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ClassifierError {
    #[error("prefix length {len} of {addr} is longer than 32")]
    PrefixLength { addr: Ipv4Addr, len: u8 },
    #[error("port range {first}:{last} has its first port after its last")]
    PortRange { first: u16, last: u16 },
    #[error("{origin}: {source}")]
    InRule {
        origin: String,
        source: Box<ClassifierError>,
    },
    #[error("{count} rules exceed the limit of {max} per program")]
    TooManyRules { count: usize, max: usize },
}
