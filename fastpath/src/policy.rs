//! The stateful policy stage of the pipeline: anti-spoofing, connection tracking and the
//! per-endpoint policy programs, between the routing decision and the rewrite.
//!
//! Which programs apply (Calico's directions are the workload's point of view):
//! - a packet that arrived from a workload port is checked against that workload's **egress**
//!   program, and must carry one of the workload's own addresses (anti-spoofing: the caller's
//!   FIB routes the source back to the same port), whatever the policy;
//! - a packet routed to a workload port is checked against that workload's **ingress** program;
//! - both for traffic between two workloads of this node; none for transit (uplink to uplink);
//! - the node's own traffic to a workload (from the host port) passes without the workload's
//!   ingress program, as in Calico, and is tracked.
//!
//! The first packet of a flow is evaluated; if every program that applies allows it, the flow
//! is tracked and its later packets, and its replies, pass on the flow table's word without
//! evaluation (so a policy change affects new flows, and allowed established ones keep
//! working). ICMP errors about a tracked flow pass as that flow does (RFC 1122 section 3.2.2).
//! A port without an [`EndpointPolicy`] is not policed (file mode, the uplink).
//!
//! The node's own traffic through a host endpoint on the uplink ([`check_host`]) goes through
//! up to three stages, in Calico's order for traffic to and from host processes: untracked
//! (`doNotTrack`) programs for every packet, before the flow table; then the flow table; then,
//! for a new flow, pre-DNAT (`preDNAT`, ingress only) and the normal program. An untracked or
//! pre-DNAT program decides only through an explicit Allow or Deny rule; when none matches,
//! the next stage decides.
//!
//! NAT outgoing (Calico's `natOutgoing`) uses the same flow table: the first packet of a flow
//! from a NAT pool to a destination outside every pool gets a source port on the node's
//! address ([`SnatPorts`], in [`NAT_PORTS`]) and a flow whose reply key is the translated one;
//! every packet of the flow is then rewritten on its way out ([`check`]) and back
//! ([`nat_reply`]), checksums patched (RFC 1624).
//!
//! Floating IPs (Calico's `ipNATs`) use it too: the first packet to a floating IP is
//! destination-NATed to the workload ([`floating_dnat`]), policed as addressed to the
//! workload, and its flow tracked under the floating IP, so that later packets are rewritten
//! from the flow table and replies leave with the floating IP as their source.

use std::net::Ipv4Addr;

use crate::classifier::{IpSets, PacketFields, PolicyAction, PolicyProgram};
use crate::conntrack::{
    related, Direction, FlowKey, FlowTable, Millis, PolicyDecision, SnatPorts, SnatPortsConfig,
};
use crate::counters::DropReason;
use crate::ids::PortId;
use crate::tables::{HostPath, PortInfo, PortKind, SnatRules};
use crate::wire::icmpv4::msg_type;
use crate::wire::ipv4::protocol;
use crate::wire::Ipv4Packet;

/// The compiled policy of one workload endpoint.
#[derive(Debug)]
pub struct EndpointPolicy {
    /// For packets the workload sends.
    pub egress: PolicyProgram,
    /// For packets delivered to the workload.
    pub ingress: PolicyProgram,
    /// Changes whenever the control plane recompiles: flows record which generation allowed
    /// them.
    pub generation: u32,
    /// Whether traffic from the workload to the node itself, once its egress policy allows
    /// it, reaches the node (Felix's `defaultEndpointToHostAction`: Accept or Return) or is
    /// dropped (Drop).
    pub to_host: bool,
}

/// The compiled programs of a host endpoint (Calico's HostEndpoint), for the node's own
/// traffic: `normal.ingress` for packets to the node, `normal.egress` for packets from it.
#[derive(Debug)]
pub struct HostPolicy {
    pub normal: EndpointPolicy,
    /// `doNotTrack` policies: checked for every packet before the flow table; an allowed
    /// packet is neither tracked nor checked further.
    pub untracked: Option<StagePrograms>,
    /// `preDNAT` policies (ingress only): checked for the first packet of a flow before the
    /// normal program; an allowed flow skips it.
    pub pre_dnat: Option<PolicyProgram>,
    /// Normal policies with `applyOnForward`, for the first packet of a flow forwarded in
    /// through the endpoint (to a workload) and out through it (from a workload); `None`: no
    /// such policy in that direction, forwarded traffic passes (Calico's rule).
    pub forward_ingress: Option<PolicyProgram>,
    pub forward_egress: Option<PolicyProgram>,
}

/// The programs of one policy stage (untracked), both directions.
#[derive(Debug)]
pub struct StagePrograms {
    pub ingress: PolicyProgram,
    pub egress: PolicyProgram,
}

/// Which way a packet of the node's own traffic goes through its host endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostDirection {
    /// From the uplink to the node (the endpoint's ingress).
    ToHost,
    /// From the node out of the uplink (the endpoint's egress).
    FromHost,
}

/// What one worker keeps between packets for policy: its flow table (both directions of a
/// flow reach the same worker; see `conntrack`'s notes on workers).
pub struct PolicyState {
    /// `None`: stateless, every packet is evaluated (replies too), nothing is tracked and
    /// nothing can be source-NATed.
    pub flows: Option<FlowTable>,
    pub snat: SnatPorts,
    /// Milliseconds on the worker's monotonic clock, set once per batch.
    pub now: Millis,
    /// Nanoseconds on [`crate::qos::now_ns`]'s clock (one for all workers, since they share
    /// a port's rate limits), set once per batch: when rate limits are charged.
    pub now_ns: u64,
}

/// Source ports (and ICMP echo identifiers) of NAT outgoing. Above Linux's default
/// `ip_local_port_range` (32768-60999), so the node's own connections from the same address
/// never pick one; the XDP program sends uplink packets to these ports to the vRouter.
pub const NAT_PORTS: std::ops::RangeInclusive<u16> = 61000..=65535;

fn nat_ports() -> SnatPorts {
    let config = SnatPortsConfig {
        ports: NAT_PORTS,
        echo_ids: NAT_PORTS,
        ..SnatPortsConfig::default()
    };
    SnatPorts::new(config).expect("NAT_PORTS is not empty")
}

impl PolicyState {
    pub fn new(flows: FlowTable) -> PolicyState {
        PolicyState {
            flows: Some(flows),
            snat: nat_ports(),
            now: 0,
            now_ns: 0,
        }
    }

    pub fn stateless() -> PolicyState {
        PolicyState {
            flows: None,
            snat: nat_ports(),
            now: 0,
            now_ns: 0,
        }
    }

    /// Tracks flows and source-NATs from `ports` only (ports and echo identifiers): one
    /// worker's slice of [`NAT_PORTS`] when several share the node's address, so that replies
    /// tell by their port which worker's flow table knows them (`worker::nat_slice`). An
    /// empty range falls back to the whole of [`NAT_PORTS`].
    pub fn with_nat_ports(flows: FlowTable, ports: std::ops::RangeInclusive<u16>) -> PolicyState {
        let config = SnatPortsConfig {
            ports: ports.clone(),
            echo_ids: ports,
            ..SnatPortsConfig::default()
        };
        let snat = SnatPorts::new(config).unwrap_or_else(|_| nat_ports());
        PolicyState {
            flows: Some(flows),
            snat,
            now: 0,
            now_ns: 0,
        }
    }
}

/// The transport fields of a packet, read once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Transport {
    fields: PacketFields,
    tcp_flags: u8,
    /// The identifier of an ICMP echo request or reply.
    echo_ident: Option<u16>,
    /// The echo is a request (type 8), not a reply.
    echo_request: bool,
    /// Set for ICMP error messages: the flow they are about.
    related: Option<FlowKey>,
}

/// The way a routed packet crosses the node: everything that decides which programs apply
/// to it, and whether NAT outgoing does.
#[derive(Clone, Copy, Debug)]
pub struct Crossing<'t> {
    /// The port the packet came in on, and its entry (`None`: not in the tables).
    pub ingress: PortId,
    pub from: Option<&'t PortInfo>,
    /// The port the route sends it out of.
    pub egress: PortId,
    pub to: &'t PortInfo,
    /// The node's stack and host endpoint, when there is a host port.
    pub host: Option<&'t HostPath>,
    /// NAT outgoing's rules, when it is on.
    pub snat: Option<&'t SnatRules>,
    /// The route wraps the packet in a tunnel.
    pub encapsulated: bool,
    /// It came out of an IPIP tunnel (it then did not arrive through the uplink's host
    /// endpoint, as in Calico, where it arrives on tunl0).
    pub tunnelled: bool,
    /// The first packet of a flow to a floating IP: its destination before the floating
    /// stage translated it (the flow is tracked under it, so that replies get it back).
    pub floating_dst: Option<Ipv4Addr>,
    /// The node has floating IPs: any flow may be translated, so the flow table is asked even
    /// when nothing is policed (a reply must leave with the floating IP).
    pub floating: bool,
}

/// Whether any program or NAT could apply to a packet from port `from` (its entry) to port
/// `to`: cheap, so that the common packet that crosses nothing policed skips [`check`] (and
/// building its [`Crossing`]). A necessary condition; `check` decides.
#[inline(always)]
pub fn may_be_policed(
    from: Option<&PortInfo>,
    to: &PortInfo,
    host: Option<&HostPath>,
    snat: Option<&SnatRules>,
) -> bool {
    from.is_some_and(|p| p.policy.is_some())
        || to.policy.is_some()
        || snat.is_some()
        || host.is_some_and(|h| h.policy.is_some())
}

impl Crossing<'_> {
    /// The node address to source-NAT to: NAT outgoing applies to a packet out of the uplink,
    /// unencapsulated, from a NAT pool to outside every pool.
    fn snat_to(&self, ip: &Ipv4Packet<&[u8]>) -> Option<Ipv4Addr> {
        let rules = self.snat?;
        let applies = !self.encapsulated
            && self.to.kind == PortKind::Uplink
            && rules.applies(ip.src_addr(), ip.dst_addr());
        applies.then_some(rules.node)
    }
}

/// Polices (and source-NATs) one routed packet: `Ok` with what to do with it ([`Passed`]:
/// rewrite it, hand it to the node's stack, or neither), the drop reason otherwise. Decides
/// which programs apply (none: the packet passes untouched); the caller may skip the call
/// when [`may_be_policed`] says nothing can and the node has no floating IPs.
///
/// `ip` is the checked IPv4 header of the packet; `owns_source(src)` tells whether the
/// ingress port may send from `src` (anti-spoofing, asked only for a policed sender).
///
/// A host endpoint on the uplink adds its forward programs (`applyOnForward`, and pre-DNAT
/// for traffic coming in) to flows forwarded through the uplink. Out of line: inlined, it
/// would crowd the pipeline's common path.
#[inline(never)]
pub fn check(
    ip: &Ipv4Packet<&[u8]>,
    crossing: &Crossing<'_>,
    owns_source: impl FnOnce(Ipv4Addr) -> bool,
    sets: &IpSets,
    state: &mut PolicyState,
) -> Result<Passed, DropReason> {
    let Crossing {
        ingress,
        egress,
        tunnelled,
        floating_dst,
        ..
    } = *crossing;
    let from = crossing.from.and_then(|p| p.policy.as_deref());
    let to = crossing.to.policy.as_deref();
    let snat = crossing.snat_to(ip);
    let host = crossing
        .host
        .and_then(|h| h.policy.as_deref().map(|p| (h.uplink, p)));
    let in_through_host = host.filter(|(uplink, p)| {
        *uplink == ingress && !tunnelled && (p.forward_ingress.is_some() || p.pre_dnat.is_some())
    });
    let out_through_host =
        host.filter(|(uplink, p)| *uplink == egress && p.forward_egress.is_some());
    if from.is_none()
        && to.is_none()
        && snat.is_none()
        && in_through_host.is_none()
        && out_through_host.is_none()
        && !crossing.floating
    {
        return Ok(Passed::default());
    }
    if from.is_some() && !owns_source(ip.src_addr()) {
        return Err(DropReason::SpoofedSource);
    }
    let transport = transport(ip);
    let decision = PolicyDecision {
        allowed: true,
        egress_endpoint: from.map(|_| u32::from(ingress)),
        ingress_endpoint: to.map(|_| u32::from(egress)),
        generation: from.or(to).map_or(0, |p| p.generation),
        via_host: crossing.host.is_some_and(|h| h.port == ingress),
    };
    let allowed = |policy: Option<&EndpointPolicy>,
                   program: fn(&EndpointPolicy) -> &PolicyProgram| {
        policy.is_none_or(|p| {
            program(p).evaluate(&transport.fields, sets).action == PolicyAction::Allow
        })
    };
    let forwarded_in = || {
        in_through_host.is_none_or(|(_, host)| {
            match host
                .pre_dnat
                .as_ref()
                .and_then(|p| stage_decides(p, &transport.fields, sets))
            {
                Some(allowed) => allowed,
                None => host.forward_ingress.as_ref().is_none_or(|p| {
                    p.evaluate(&transport.fields, sets).action == PolicyAction::Allow
                }),
            }
        })
    };
    let forwarded_out = || {
        out_through_host.is_none_or(|(_, host)| {
            host.forward_egress
                .as_ref()
                .is_none_or(|p| p.evaluate(&transport.fields, sets).action == PolicyAction::Allow)
        })
    };
    // The node's own traffic to a workload (from the host port) is not checked against the
    // workload's ingress, as with Felix ("Return if to workload": the host reaches its
    // workloads, e.g. kubelet's probes); it is tracked all the same, so the answers pass.
    let from_node = crossing.host.is_some_and(|h| h.port == ingress);
    let evaluate = || {
        if forwarded_in()
            && allowed(from, |p| &p.egress)
            && (from_node || allowed(to, |p| &p.ingress))
            && forwarded_out()
        {
            Ok(())
        } else {
            Err(DropReason::PolicyDenied)
        }
    };
    let nat = match (snat, floating_dst) {
        (Some(node), _) => Nat::Source(node),
        (None, Some(external)) => Nat::Floating(external),
        (None, None) => Nat::None,
    };
    tracked(
        &transport,
        u32::from(ip.total_len()),
        evaluate,
        decision,
        nat,
        state,
    )
}

/// A packet [`check`] lets through, and what becomes of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Passed {
    /// Rewrite it to this key's addresses and ports (a translated flow).
    pub rewrite: Option<FlowKey>,
    /// A reply of a flow that came from the node's stack: hand it back to the node's stack
    /// (whose NAT made the flow) instead of routing it.
    pub to_host: bool,
}

/// The translation a new flow is tracked with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Nat {
    None,
    /// NAT outgoing to the node's address.
    Source(Ipv4Addr),
    /// The packet was destination-NATed from this floating IP (stage 3b).
    Floating(Ipv4Addr),
}

/// Polices a packet of the node's own traffic through its host endpoint `host` on `port`
/// (the uplink): `Ok` to deliver it (to the node, or out of the uplink), the drop reason
/// otherwise. Stages as the module docs say; no anti-spoofing (the node sends from any of its
/// addresses) and no NAT. Out of line, like [`check`].
#[inline(never)]
pub fn check_host(
    ip: &Ipv4Packet<&[u8]>,
    direction: HostDirection,
    host: &HostPolicy,
    port: PortId,
    sets: &IpSets,
    state: &mut PolicyState,
) -> Result<(), DropReason> {
    let transport = transport(ip);
    if let Some(untracked) = &host.untracked {
        let program = match direction {
            HostDirection::ToHost => &untracked.ingress,
            HostDirection::FromHost => &untracked.egress,
        };
        match stage_decides(program, &transport.fields, sets) {
            Some(true) => return Ok(()),
            Some(false) => return Err(DropReason::PolicyDenied),
            None => {}
        }
    }
    let endpoint = Some(u32::from(port));
    let decision = PolicyDecision {
        allowed: true,
        egress_endpoint: endpoint.filter(|_| direction == HostDirection::FromHost),
        ingress_endpoint: endpoint.filter(|_| direction == HostDirection::ToHost),
        generation: host.normal.generation,
        via_host: false,
    };
    let allowed = || {
        if direction == HostDirection::ToHost {
            if let Some(allowed) = host
                .pre_dnat
                .as_ref()
                .and_then(|p| stage_decides(p, &transport.fields, sets))
            {
                return allowed;
            }
        }
        let program = match direction {
            HostDirection::ToHost => &host.normal.ingress,
            HostDirection::FromHost => &host.normal.egress,
        };
        program.evaluate(&transport.fields, sets).action == PolicyAction::Allow
    };
    let evaluate = || {
        if allowed() {
            Ok(())
        } else {
            Err(DropReason::PolicyDenied)
        }
    };
    tracked(
        &transport,
        u32::from(ip.total_len()),
        evaluate,
        decision,
        Nat::None,
        state,
    )
    .map(|_| ())
}

/// The answer of an untracked or pre-DNAT program: `Some(allowed)` when one of its rules
/// decided, `None` when none matched (such programs have no profiles and their tiers pass,
/// so only the implicit end says nothing).
fn stage_decides(program: &PolicyProgram, fields: &PacketFields, sets: &IpSets) -> Option<bool> {
    let decision = program.evaluate(fields, sets);
    decision
        .rule
        .map(|_| decision.action == PolicyAction::Allow)
}

/// The flow table's part of policing: a packet of a tracked flow (or an ICMP error about one)
/// passes on the flow's word, rewritten when the flow is translated; the first packet of a
/// flow passes if `evaluate` allows it (else the reason it gives), and the flow is then
/// tracked with `decision` and translated as `nat` says.
#[inline]
fn tracked(
    transport: &Transport,
    bytes: u32,
    evaluate: impl FnOnce() -> Result<(), DropReason>,
    decision: PolicyDecision,
    nat: Nat,
    state: &mut PolicyState,
) -> Result<Passed, DropReason> {
    let translated = nat != Nat::None;
    let now = state.now;
    let key = flow_key(transport);
    if let Some(flows) = state.flows.as_mut() {
        let hit = flows
            .lookup(&key, now)
            .filter(|hit| echo_fits(transport, hit.direction));
        if let Some(hit) = hit {
            let flow = flows.flow(hit.id);
            if !flow.policy.allowed {
                return Err(DropReason::PolicyDenied);
            }
            let passed = Passed {
                rewrite: flow.is_translated().then(|| flow.translated(hit.direction)),
                to_host: flow.policy.via_host && hit.direction == Direction::Reply,
            };
            flows.track(hit, transport.tcp_flags, bytes, now);
            return Ok(passed);
        }
        if let Some(related) = transport.related {
            if let Some(hit) = flows.lookup(&related, now) {
                let flow = flows.flow(hit.id);
                return if flow.policy.allowed {
                    Ok(Passed {
                        rewrite: None,
                        // An error about the node's flow goes where the node's answer would.
                        to_host: flow.policy.via_host && hit.direction == Direction::Original,
                    })
                } else {
                    Err(DropReason::PolicyDenied)
                };
            }
        }
    }
    evaluate()?;
    // Only allowed flows are tracked: a denied flow's next packet is evaluated again, so
    // that an allowing policy takes effect at once and a flood of denied packets cannot fill
    // the table.
    let Some(flows) = state.flows.as_mut() else {
        // Stateless: nowhere to keep a translation.
        return if translated {
            Err(DropReason::NatFailed)
        } else {
            Ok(Passed::default())
        };
    };
    if transport.related.is_some() {
        return Ok(Passed::default());
    }
    // The flow's two keys, and the packet's translation beyond what is done already.
    let (original, reply, rewrite) = match nat {
        Nat::Source(node) => {
            let reply = state
                .snat
                .allocate(flows, &key, node, now)
                .map_err(|_| DropReason::NatFailed)?;
            (key, reply, Some(reply.reversed()))
        }
        // Destination-NATed already (`key` is the translated packet's): tracked under the
        // floating IP, so that replies leave with it as their source. A workload reaching its
        // own floating IP (the hairpin, Felix's `cali-fip-snat`: source and destination the
        // internal address) is also source-NATed to it, so that its reply comes back to the
        // flow rather than straight to itself.
        Nat::Floating(external) => {
            let original = FlowKey {
                dst: external,
                ..key
            };
            let hairpin = key.src == key.dst;
            let reply = if hairpin {
                FlowKey {
                    dst: external,
                    ..key.reversed()
                }
            } else {
                key.reversed()
            };
            (original, reply, hairpin.then(|| reply.reversed()))
        }
        Nat::None => (key, key.reversed(), None),
    };
    let passed = Passed {
        rewrite,
        to_host: false,
    };
    match flows.insert(original, reply, transport.tcp_flags, bytes, decision, now) {
        Ok(_) => Ok(passed),
        // A translated flow cannot go out untracked: its replies would find nothing.
        Err(_) if translated => Err(DropReason::NatFailed),
        // A full table (nothing evictable) is counted by the table; the packet was allowed,
        // so it goes on, and its replies are evaluated on their own.
        Err(_) => Ok(passed),
    }
}

/// For a packet that arrived on the uplink addressed to the node: when it belongs to a
/// source-NATed flow, rewrites it (`datagram`, from the IPv4 header on) back to the workload
/// and returns true; a reply gets the workload's address and port, an ICMP error about the
/// flow (RFC 792) its outer destination and its quoted packet restored, so that path MTU
/// discovery and unreachables reach the workload. False: the node's own traffic, untouched.
/// Out of line, like [`check`].
#[inline(never)]
pub fn nat_reply(datagram: &mut [u8], state: &mut PolicyState) -> bool {
    let Some(flows) = state.flows.as_mut() else {
        return false;
    };
    let Ok(ip) = Ipv4Packet::new_checked(&*datagram) else {
        return false;
    };
    let transport = transport(&ip);
    let bytes = u32::from(ip.total_len());
    if let Some(related) = transport.related {
        let Some(hit) = flows.lookup(&related, state.now) else {
            return false;
        };
        let flow = *flows.flow(hit.id);
        return flow.is_translated()
            && flow.policy.allowed
            && related::translate_error(datagram, &flow, hit.direction).is_ok();
    }
    let hit = flows
        .lookup(&flow_key(&transport), state.now)
        .filter(|hit| echo_fits(&transport, hit.direction));
    let Some(hit) = hit else {
        return false;
    };
    let flow = flows.flow(hit.id);
    if !flow.is_translated() || !flow.policy.allowed {
        return false;
    }
    let to = flow.translated(hit.direction);
    flows.track(hit, transport.tcp_flags, bytes, state.now);
    crate::conntrack::rewrite::translate(datagram, &to).is_ok()
}

/// What the floating stage did to a packet addressed to a floating IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatingDnat {
    /// A packet of a tracked flow (or an ICMP error about one), rewritten as the flow says:
    /// the policy stage is skipped.
    Tracked,
    /// The first packet of a flow: its destination is now the internal address; the policy
    /// stage decides, and tracks the flow under `external`.
    New { external: Ipv4Addr },
}

/// For a packet addressed to floating IP `external` of workload address `internal`
/// (`datagram` from the IPv4 header on): rewrites it to `internal` (Felix's `cali-fip-dnat`),
/// from the flow table when the flow is known. Refused (`NatFailed`) without a flow table,
/// where a translation could not be undone for the replies, or when the packet cannot be
/// rewritten; a tracked flow that policy denied stays denied. Out of line, like [`check`].
#[inline(never)]
pub fn floating_dnat(
    datagram: &mut [u8],
    external: Ipv4Addr,
    internal: Ipv4Addr,
    state: &mut PolicyState,
) -> Result<FloatingDnat, DropReason> {
    let Some(flows) = state.flows.as_mut() else {
        return Err(DropReason::NatFailed);
    };
    let Ok(ip) = Ipv4Packet::new_checked(&*datagram) else {
        return Err(DropReason::NatFailed);
    };
    let transport = transport(&ip);
    let bytes = u32::from(ip.total_len());
    let rewrite = |datagram: &mut [u8], to: &FlowKey| {
        crate::conntrack::rewrite::translate(datagram, to).map_err(|_| DropReason::NatFailed)
    };
    if let Some(related) = transport.related {
        // An ICMP error about a flow that left with the floating IP.
        if let Some(hit) = flows.lookup(&related, state.now) {
            let flow = *flows.flow(hit.id);
            if flow.is_translated() && flow.policy.allowed {
                return related::translate_error(datagram, &flow, hit.direction)
                    .map(|()| FloatingDnat::Tracked)
                    .map_err(|_| DropReason::NatFailed);
            }
        }
    }
    let key = flow_key(&transport);
    if let Some(hit) = flows.lookup(&key, state.now) {
        let flow = flows.flow(hit.id);
        if !flow.policy.allowed {
            return Err(DropReason::PolicyDenied);
        }
        let to = flow.translated(hit.direction);
        flows.track(hit, transport.tcp_flags, bytes, state.now);
        rewrite(datagram, &to)?;
        return Ok(FloatingDnat::Tracked);
    }
    rewrite(
        datagram,
        &FlowKey {
            dst: internal,
            ..key
        },
    )?;
    Ok(FloatingDnat::New { external })
}

/// Polices a packet from `ingress` addressed to the node itself (or the workloads' gateway):
/// from a policed workload it must carry the workload's address, pass its egress program and
/// be allowed to the host (`defaultEndpointToHostAction`). Tracked like any flow, so that the
/// node's answers, which come back through the host port, pass the workload's ingress on the
/// flow table's word (and a flow the node opened is answered without these checks).
///
/// `from` is the policy of the ingress port (`None`: not policed, the packet passes);
/// `owns_source` as for [`check`]; out of line, like it.
#[inline(never)]
pub fn to_host(
    ip: &Ipv4Packet<&[u8]>,
    ingress: PortId,
    from: Option<&EndpointPolicy>,
    owns_source: impl FnOnce(Ipv4Addr) -> bool,
    sets: &IpSets,
    state: &mut PolicyState,
) -> Result<(), DropReason> {
    let Some(from) = from else {
        return Ok(());
    };
    if !owns_source(ip.src_addr()) {
        return Err(DropReason::SpoofedSource);
    }
    let transport = transport(ip);
    let decision = PolicyDecision {
        allowed: true,
        egress_endpoint: Some(u32::from(ingress)),
        ingress_endpoint: None,
        generation: from.generation,
        via_host: false,
    };
    let evaluate = || {
        if from.egress.evaluate(&transport.fields, sets).action != PolicyAction::Allow {
            return Err(DropReason::PolicyDenied);
        }
        if !from.to_host {
            return Err(DropReason::ToHostDenied);
        }
        Ok(())
    };
    tracked(
        &transport,
        u32::from(ip.total_len()),
        evaluate,
        decision,
        Nat::None,
        state,
    )
    .map(|_| ())
}

/// The flow key of a packet: ports for TCP and UDP, the identifier for ICMP echo (the reply
/// carries the same one), zero otherwise.
fn flow_key(t: &Transport) -> FlowKey {
    let f = &t.fields;
    match t.echo_ident {
        Some(ident) => FlowKey::icmp_echo(f.src, f.dst, ident),
        None => FlowKey::new(f.src, f.dst, f.protocol, f.src_port, f.dst_port),
    }
}

/// Whether an ICMP echo plays the part its flow's `direction` gives it (anything else fits).
/// Linux conntrack keys echoes by type as well: a request opens a flow and a reply answers
/// one. A request that matches a flow's reply key is the other host's own ping with the same
/// identifier, not an answer, and is policed as the first packet of its own flow.
fn echo_fits(t: &Transport, direction: Direction) -> bool {
    t.echo_ident.is_none() || t.echo_request == (direction == Direction::Original)
}

/// Reads the transport header of the first fragment; later fragments carry none, so their
/// ports are 0 (the node does not reassemble).
fn transport(ip: &Ipv4Packet<&[u8]>) -> Transport {
    let fields = PacketFields::from_ipv4(ip);
    let mut t = Transport {
        fields,
        tcp_flags: 0,
        echo_ident: None,
        echo_request: false,
        related: None,
    };
    if ip.frag_offset() != 0 {
        return t;
    }
    let payload = ip.payload();
    match (fields.protocol, fields.icmp_type) {
        (protocol::TCP, _) => t.tcp_flags = payload.get(13).copied().unwrap_or(0),
        (protocol::ICMP, Some(msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY)) => {
            t.echo_ident = payload.get(4..6).map(|b| u16::from_be_bytes([b[0], b[1]]));
            t.echo_request = fields.icmp_type == Some(msg_type::ECHO_REQUEST);
        }
        (protocol::ICMP, Some(_)) => t.related = related::related_key(payload).ok().flatten(),
        _ => {}
    }
    t
}
