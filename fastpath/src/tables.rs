//! The forwarding tables the workers read: FIB, next hops and ports.
//!
//! Control builds a whole [`Tables`] off the hot path and publishes it with an atomic pointer
//! swap (`arc_swap::ArcSwap<Tables>`); workers load the current snapshot once per batch. The one
//! thing that changes inside a published snapshot is a next hop's MAC address, which the slow
//! path fills in when ARP resolves it: it is an `AtomicU64` so that no worker ever waits.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::fib::Fib;
use crate::ids::PortId;
use crate::wire::ethernet::MacAddr;

/// What sits behind a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortKind {
    /// A workload's host-side veth (`cali…`): everything it sends comes to the vRouter.
    Workload,
    /// The node's link to the rest of the network.
    Uplink,
    /// The vRouter's end of the veth pair whose other end is the node's own network stack,
    /// there when a host endpoint is enforced on the uplink: what the node sends out of the
    /// uplink arrives here (the TC egress program redirects it), and what policy lets through
    /// to the node leaves here.
    Host,
}

/// An interface the node forwards on.
#[derive(Clone, Debug)]
pub struct PortInfo {
    pub name: String,
    pub ifindex: u32,
    pub kind: PortKind,
    /// Source MAC for frames sent out of this port (`ee:ee:ee:ee:ee:ee` on workload ports).
    pub mac: MacAddr,
    /// Address the node uses as ARP sender on this port (169.254.1.1 on workload ports, the
    /// node's address on the uplink).
    pub ip: Ipv4Addr,
    pub mtu: u16,
    /// The workload's compiled policy; `None`: the port is not policed (the uplink, and
    /// workloads in file mode).
    pub policy: Option<std::sync::Arc<crate::policy::EndpointPolicy>>,
    /// The workload's rate limits; `None`: not limited. Kept by the control plane across
    /// publishes while the limits stay the same, so that a publish does not refill a bucket.
    pub qos: Option<std::sync::Arc<crate::qos::PortQos>>,
}

/// What a FIB entry points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextHopKind {
    /// Deliver out of `port` to `ip`, whose MAC the neighbour table resolves. Routes to other
    /// nodes' workloads are neighbours too (on the uplink, `ip` being the other node or a
    /// gateway), with the next hop's [`Encap`] saying whether the packet is wrapped.
    Neighbor,
    /// Addresses of the node itself: hand to the slow path.
    Local,
    /// Known but unusable space (e.g. unallocated parts of the node's own IPAM blocks): drop.
    Blackhole,
}

/// How a next hop wraps the packets it sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encap {
    /// Sent as they are (another node on the same L2 segment, or a gateway that routes
    /// workload addresses).
    #[default]
    None,
    /// IP in IP (RFC 2003): an outer IPv4 header from `local` (this node's address) to `remote`
    /// (the other node) goes in front of the packet; the frame itself goes to the MAC of the
    /// next hop's `ip`, which is `remote` on a shared segment or a gateway otherwise.
    Ipip { local: Ipv4Addr, remote: Ipv4Addr },
}

/// Bytes IPIP adds to a packet: the outer IPv4 header (RFC 2003 section 3.1, no options).
pub const IPIP_OVERHEAD: u16 = 20;

/// A next hop: where a matching packet leaves and to whom.
#[derive(Debug)]
pub struct NextHop {
    pub kind: NextHopKind,
    pub port: PortId,
    /// The neighbour the frame is addressed to (the workload, or a node or gateway on the
    /// uplink).
    pub ip: Ipv4Addr,
    /// Whether packets are wrapped before they leave.
    pub encap: Encap,
    /// The addresses this next hop's routes cover are other nodes: IPIP packets from them are
    /// decapsulated, from anyone else dropped. Set on the /32 routes to known nodes only.
    pub tunnel_peer: bool,
    /// A connected route (the uplink's own subnet): each destination is its own neighbour,
    /// so `ip` (the subnet's address) is never resolved and the MAC stays unset; every packet
    /// is punted as unresolved and the slow path resolves and sends it by its destination
    /// (VPP's glean adjacency, without the per-neighbour /32s).
    pub connected: bool,
    /// Resolved MAC of `ip` as `MacAddr::to_u64() | RESOLVED`, or 0 while unresolved.
    mac: AtomicU64,
}

const RESOLVED: u64 = 1 << 63;

impl NextHop {
    pub fn new(kind: NextHopKind, port: PortId, ip: Ipv4Addr) -> NextHop {
        NextHop {
            kind,
            port,
            ip,
            encap: Encap::None,
            tunnel_peer: false,
            connected: false,
            mac: AtomicU64::new(0),
        }
    }

    /// Another node's workloads: out of the uplink `port` to the MAC of `via` (the node, or a
    /// gateway), wrapped as `encap` says.
    pub fn remote(port: PortId, via: Ipv4Addr, encap: Encap) -> NextHop {
        NextHop {
            encap,
            ..NextHop::new(NextHopKind::Neighbor, port, via)
        }
    }

    /// The route to a known node's own address (reached through `via` on the uplink `port`):
    /// it marks the node as a source IPIP is accepted from.
    pub fn tunnel_peer(port: PortId, via: Ipv4Addr) -> NextHop {
        NextHop {
            tunnel_peer: true,
            ..NextHop::new(NextHopKind::Neighbor, port, via)
        }
    }

    /// The route to the uplink's subnet `network` out of `port`: the destination itself is
    /// the neighbour.
    pub fn connected(port: PortId, network: Ipv4Addr) -> NextHop {
        NextHop {
            connected: true,
            ..NextHop::new(NextHopKind::Neighbor, port, network)
        }
    }

    /// The neighbour a packet to `dst` is sent to through this next hop.
    #[inline]
    pub fn neighbor_for(&self, dst: Ipv4Addr) -> Ipv4Addr {
        if self.connected {
            dst
        } else {
            self.ip
        }
    }

    /// The neighbour's MAC, if ARP has resolved it.
    #[inline]
    pub fn mac(&self) -> Option<MacAddr> {
        let v = self.mac.load(Ordering::Relaxed);
        (v & RESOLVED != 0).then(|| MacAddr::from_u64(v & !RESOLVED))
    }

    pub fn set_mac(&self, mac: Option<MacAddr>) {
        let v = mac.map_or(0, |m| m.to_u64() | RESOLVED);
        self.mac.store(v, Ordering::Relaxed);
    }
}

/// One immutable snapshot of everything the pipeline consults.
#[derive(Debug, Default)]
pub struct Tables {
    pub fib: Fib,
    pub next_hops: Vec<NextHop>,
    pub ports: Vec<PortInfo>,
    /// NAT outgoing, when any pool asks for it.
    pub snat: Option<SnatRules>,
    /// The way to the node's own network stack, when there is one.
    pub host: Option<HostPath>,
    /// Floating IPs of this node's workloads (empty: none).
    pub floating: FloatingIps,
}

/// Floating IPs (Calico's WorkloadEndpoint `ipNATs`, Felix's `cali-fip-dnat` and
/// `cali-fip-snat`): a packet to an external address is destination-NATed to the workload's
/// internal one, and the flow's replies leave with the external address as their source;
/// a workload reaching its own external address is source-NATed to it too (the hairpin).
/// Sorted by external address: one binary search per packet, no allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FloatingIps {
    /// (external, internal), sorted by external, each external once.
    by_external: Vec<(Ipv4Addr, Ipv4Addr)>,
}

impl FloatingIps {
    /// From (external, internal) pairs; the first pair for an external address keeps it.
    pub fn new(pairs: impl IntoIterator<Item = (Ipv4Addr, Ipv4Addr)>) -> FloatingIps {
        let mut by_external: Vec<(Ipv4Addr, Ipv4Addr)> = pairs.into_iter().collect();
        // Stable: the first pair of an external address stays first, and dedup keeps it.
        by_external.sort_by_key(|(external, _)| *external);
        by_external.dedup_by_key(|(external, _)| *external);
        FloatingIps { by_external }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.by_external.is_empty()
    }

    /// The internal address `external` is translated to, if it is a floating IP.
    #[inline]
    pub fn internal(&self, external: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.by_external.is_empty() {
            return None;
        }
        self.by_external
            .binary_search_by_key(&external, |(e, _)| *e)
            .ok()
            .map(|i| self.by_external[i].1)
    }

    /// The (external, internal) pairs, by external address.
    pub fn iter(&self) -> impl Iterator<Item = (Ipv4Addr, Ipv4Addr)> + '_ {
        self.by_external.iter().copied()
    }
}

/// The node's own stack, behind a port of kind [`PortKind::Host`] (a veth pair): workloads'
/// traffic to the node is delivered there and the node's traffic to workloads comes from there
/// (the kernel routes the pools to it); with a host endpoint on the uplink (Calico's
/// HostEndpoint), the node's own traffic through the uplink passes here too, policed with the
/// endpoint's programs.
#[derive(Clone, Debug)]
pub struct HostPath {
    /// The [`PortKind::Host`] port.
    pub port: PortId,
    /// The uplink: packets to the node arriving there are delivered; the node's packets the
    /// TC program redirected leave there.
    pub uplink: PortId,
    /// MAC of the kernel's end of the pair: frames delivered to the node are addressed to it
    /// (the kernel drops frames for other hosts).
    pub kernel_mac: MacAddr,
    /// The host endpoint's programs, when one is enforced on the uplink.
    pub policy: Option<std::sync::Arc<crate::policy::HostPolicy>>,
}

/// NAT outgoing (Calico's `natOutgoing`): packets from a NAT pool to a destination outside
/// every pool leave the uplink with the node's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnatRules {
    /// The node's address on the uplink: the translated source.
    pub node: Ipv4Addr,
    /// Pools with `natOutgoing: true`.
    pub nat_pools: Vec<crate::classifier::Cidr>,
    /// Every pool: destinations inside any of them are not translated.
    pub pools: Vec<crate::classifier::Cidr>,
}

impl SnatRules {
    /// Whether a packet from `src` to `dst` is source-NATed.
    pub fn applies(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.nat_pools.iter().any(|p| p.contains(src))
            && !self.pools.iter().any(|p| p.contains(dst))
    }
}

impl Tables {
    /// All next hops that deliver to `ip` out of `port` (used by the slow path when ARP
    /// resolves a neighbour).
    pub fn next_hops_to(&self, port: PortId, ip: Ipv4Addr) -> impl Iterator<Item = &NextHop> {
        self.next_hops.iter().filter(move |nh| {
            nh.kind == NextHopKind::Neighbor && !nh.connected && nh.port == port && nh.ip == ip
        })
    }

    /// Whether IPIP from `src` is accepted: the FIB routes `src` to a next hop marked as a
    /// tunnel peer (a known node). One lookup, no allocation, so it runs per packet.
    #[inline]
    pub fn is_tunnel_peer(&self, src: Ipv4Addr) -> bool {
        self.fib
            .lookup(u32::from(src))
            .and_then(|id| self.next_hops.get(id as usize))
            .is_some_and(|nh| nh.tunnel_peer)
    }
}
