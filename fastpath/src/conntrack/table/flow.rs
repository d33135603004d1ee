//! One tracked flow as the table stores it, and the small types that name and describe it.

use std::net::Ipv4Addr;

use crate::conntrack::key::{Direction, FlowKey};
use crate::conntrack::state::{FlowState, FlowValue, Millis};

/// Index of a flow in its table's slab. Valid until the flow is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowId(pub(super) u32);

impl FlowId {
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A packet's flow and the direction the packet travels in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowHit {
    pub id: FlowId,
    pub direction: Direction,
}

/// Which side of the policy decided, for a flow whose verdict is cached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyDecision {
    /// The verdict for the flow (both directions: replies of an allowed flow pass).
    pub allowed: bool,
    /// The local endpoint whose egress policy was evaluated for the original direction.
    pub egress_endpoint: Option<u32>,
    /// The local endpoint whose ingress policy was evaluated for the original direction.
    pub ingress_endpoint: Option<u32>,
    /// Generation of the policy programme that decided, so a newer programme can be told from
    /// the one that allowed an established flow.
    pub generation: u32,
    /// The first packet came from the node's own stack (the host port): the node may have
    /// translated it (a hostPort's DNAT, a service's), so the replies go back through the
    /// node's stack, which undoes that, rather than straight to their destination.
    pub via_host: bool,
}

/// Packets and bytes seen in one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionCounters {
    pub packets: u64,
    pub bytes: u64,
}

/// One tracked flow.
///
/// Laid out in C order and cache-line aligned so that what a lookup reads (the keys, the
/// deadline, whether the entry is live) sits in the entry's first cache line.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Flow {
    /// Original and reply keys, indexed by [`Direction`]. When the reply key is not the
    /// original reversed, the flow is translated (see [`Flow::translated`]).
    pub(in crate::conntrack) keys: [FlowKey; 2],
    pub(in crate::conntrack) live: bool,
    pub(in crate::conntrack) state: FlowState,
    pub(super) deadline: Millis,
    pub(super) created: Millis,
    pub(super) counters: [DirectionCounters; 2],
    pub policy: PolicyDecision,
}

impl Flow {
    pub(super) const VACANT: Flow = Flow {
        keys: [FlowKey {
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
            protocol: 0,
            src_port: 0,
            dst_port: 0,
        }; 2],
        state: FlowState::Other { replied: false },
        created: 0,
        deadline: 0,
        counters: [DirectionCounters {
            packets: 0,
            bytes: 0,
        }; 2],
        policy: PolicyDecision {
            allowed: false,
            egress_endpoint: None,
            ingress_endpoint: None,
            generation: 0,
            via_host: false,
        },
        live: false,
    };

    pub fn key(&self, direction: Direction) -> &FlowKey {
        &self.keys[direction.index()]
    }

    pub fn original(&self) -> &FlowKey {
        &self.keys[0]
    }

    pub fn reply(&self) -> &FlowKey {
        &self.keys[1]
    }

    pub fn state(&self) -> FlowState {
        self.state
    }

    pub fn created(&self) -> Millis {
        self.created
    }

    /// When the flow expires unless another packet arrives.
    pub fn deadline(&self) -> Millis {
        self.deadline
    }

    pub fn counters(&self, direction: Direction) -> DirectionCounters {
        self.counters[direction.index()]
    }

    /// True when packets of this flow are rewritten (source or destination NAT).
    pub fn is_translated(&self) -> bool {
        self.keys[1] != self.keys[0].reversed()
    }

    /// The key a packet travelling in `direction` must carry when it leaves: the other
    /// direction's key reversed. For a source-NATed flow this is the node's address and port
    /// on the way out and the workload's on the way back.
    pub fn translated(&self, direction: Direction) -> FlowKey {
        self.keys[direction.opposite().index()].reversed()
    }

    #[inline]
    pub(super) fn is_expired(&self, now: Millis) -> bool {
        self.deadline <= now
    }

    /// Eviction order: expired first, then by value, then earliest deadline.
    #[inline]
    pub(super) fn eviction_rank(&self, now: Millis) -> (bool, FlowValue, Millis) {
        (!self.is_expired(now), self.state.value(), self.deadline)
    }
}
