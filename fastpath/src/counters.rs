//! Per-worker counters: plain integers on the hot path, published to atomics once per batch,
//! summed over workers when read. A received frame is counted once, with its final [`Fate`]
//! ([`PipelineCounters::record`]), after the worker has acted on the pipeline's verdict.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why the pipeline (or the worker around it) dropped a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum DropReason {
    /// Shorter than an Ethernet header.
    BadEthernet,
    /// Neither IPv4 nor ARP (IPv6 comes later).
    UnsupportedEtherType,
    /// Truncated IPv4 header, version not 4, or IHL below 5.
    BadIpv4Header,
    /// IPv4 total length longer than the frame or shorter than the header.
    BadIpv4Length,
    /// IPv4 header checksum does not verify.
    BadIpv4Checksum,
    /// TTL would reach 0 (an ICMP time-exceeded is sent by the slow path).
    TtlExpired,
    /// No FIB entry (an ICMP destination-unreachable is sent by the slow path).
    NoRoute,
    /// FIB entry is a blackhole.
    Blackhole,
    /// The slow path queue or its buffer pool was full.
    PuntQueueFull,
    /// The egress port's TX ring or frame pool was full.
    TxFull,
    /// Malformed ARP, or ARP the node has no reason to answer.
    BadArp,
    /// Too many frames already waiting for a neighbour to resolve.
    NeighborQueueFull,
    /// IPIP from a source that is not a known node (spoofed or stray tunnel traffic).
    IpipUnknownSource,
    /// IPIP whose outer header is a fragment: the node does not reassemble.
    IpipFragment,
    /// Larger than the egress MTU (less the IPIP header when encapsulated) with DF set: the
    /// slow path answers with ICMP fragmentation needed (RFC 1191).
    FragmentationNeeded,
    /// Larger than the egress MTU without DF: the node does not fragment, so it drops.
    TooBig,
    /// Denied by the workload's policy (or by the default deny when nothing allowed it).
    PolicyDenied,
    /// Sent by a workload from an address that is not its own.
    SpoofedSource,
    /// NAT outgoing found no free source port, or no room to track the flow.
    NatFailed,
    /// From a workload to the node itself, refused by `defaultEndpointToHostAction: Drop`.
    ToHostDenied,
    /// Over a workload's rate limit (its `qosControls` or CNI bandwidth), sent by it or to it.
    RateLimited,
}

impl DropReason {
    pub const COUNT: usize = 21;
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::BadEthernet,
        DropReason::UnsupportedEtherType,
        DropReason::BadIpv4Header,
        DropReason::BadIpv4Length,
        DropReason::BadIpv4Checksum,
        DropReason::TtlExpired,
        DropReason::NoRoute,
        DropReason::Blackhole,
        DropReason::PuntQueueFull,
        DropReason::TxFull,
        DropReason::BadArp,
        DropReason::NeighborQueueFull,
        DropReason::IpipUnknownSource,
        DropReason::IpipFragment,
        DropReason::FragmentationNeeded,
        DropReason::TooBig,
        DropReason::PolicyDenied,
        DropReason::SpoofedSource,
        DropReason::NatFailed,
        DropReason::ToHostDenied,
        DropReason::RateLimited,
    ];

    /// Stable snake_case name, used in stats output and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::BadEthernet => "bad_ethernet",
            DropReason::UnsupportedEtherType => "unsupported_ethertype",
            DropReason::BadIpv4Header => "bad_ipv4_header",
            DropReason::BadIpv4Length => "bad_ipv4_length",
            DropReason::BadIpv4Checksum => "bad_ipv4_checksum",
            DropReason::TtlExpired => "ttl_expired",
            DropReason::NoRoute => "no_route",
            DropReason::Blackhole => "blackhole",
            DropReason::PuntQueueFull => "punt_queue_full",
            DropReason::TxFull => "tx_full",
            DropReason::BadArp => "bad_arp",
            DropReason::NeighborQueueFull => "neighbor_queue_full",
            DropReason::IpipUnknownSource => "ipip_unknown_source",
            DropReason::IpipFragment => "ipip_fragment",
            DropReason::FragmentationNeeded => "fragmentation_needed",
            DropReason::TooBig => "too_big",
            DropReason::PolicyDenied => "policy_denied",
            DropReason::SpoofedSource => "spoofed_source",
            DropReason::NatFailed => "nat_failed",
            DropReason::ToHostDenied => "to_host_denied",
            DropReason::RateLimited => "rate_limited",
        }
    }
}

/// What finally became of a received frame, once the worker has acted on its verdict: a
/// frame has exactly one fate, so that `rx_packets == forwarded + punted + total_drops()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Put on a TX ring, or handed to the worker that owns the egress port; `tunnelled`: inside
    /// an IPIP tunnel.
    Sent {
        tunnelled: bool,
    },
    /// Taken by the slow path.
    Punted,
    Dropped(DropReason),
}

/// What the pipeline did to a received frame besides deciding its fate, counted with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    /// An IPIP header was stripped (whatever then happened to the inner packet).
    pub decapsulated: bool,
    /// A TCP or UDP checksum its sender left to offload was completed.
    pub checksum_completed: bool,
    /// It came whole as a GSO segment (a TAP port's, up to 64 KiB).
    pub gso: bool,
}

impl Marks {
    pub const NONE: Marks = Marks {
        decapsulated: false,
        checksum_completed: false,
        gso: false,
    };
}

/// What the kernel counted on a worker's AF_XDP sockets (`XDP_STATISTICS`, summed over the
/// sockets, those already closed included): frames lost before the pipeline ever saw them,
/// which no pipeline counter can include. The `*_empty` fields count events, not frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketCounters {
    /// Received frames the kernel dropped: no free frame from the fill ring (copy mode), or
    /// larger than a UMEM frame.
    pub rx_dropped: u64,
    /// Received frames dropped because the RX ring was full (the worker fell behind).
    pub rx_ring_full: u64,
    /// Fill ring entries the kernel found invalid.
    pub rx_invalid_descs: u64,
    /// Times the kernel found the fill ring empty.
    pub rx_fill_ring_empty: u64,
    /// TX descriptors the kernel refused as invalid: frames the worker sent that never left.
    pub tx_invalid_descs: u64,
    /// Times the kernel looked for frames to send and found the TX ring empty.
    pub tx_ring_empty: u64,
    /// Frames TAP workloads sent that their TAP's queue dropped (the worker had not read the
    /// ones before): the TAPs' `tx_dropped` since their ports attached.
    pub tap_queue_full: u64,
}

impl SocketCounters {
    /// The fields, with their stable snake_case names, in one order (stats and metrics).
    pub fn named(&self) -> [(&'static str, u64); 7] {
        [
            ("rx_dropped", self.rx_dropped),
            ("rx_ring_full", self.rx_ring_full),
            ("rx_invalid_descs", self.rx_invalid_descs),
            ("rx_fill_ring_empty", self.rx_fill_ring_empty),
            ("tx_invalid_descs", self.tx_invalid_descs),
            ("tx_ring_empty", self.tx_ring_empty),
            ("tap_queue_full", self.tap_queue_full),
        ]
    }

    /// The inverse of [`SocketCounters::named`]: the values in its order.
    pub fn from_values(v: [u64; 7]) -> SocketCounters {
        let [rx_dropped, rx_ring_full, rx_invalid_descs, rx_fill_ring_empty, tx_invalid_descs, tx_ring_empty, tap_queue_full] =
            v;
        SocketCounters {
            rx_dropped,
            rx_ring_full,
            rx_invalid_descs,
            rx_fill_ring_empty,
            tx_invalid_descs,
            tx_ring_empty,
            tap_queue_full,
        }
    }

    /// Frames lost in the sockets (the event counts left out).
    pub fn lost(&self) -> u64 {
        self.rx_dropped
            + self.rx_ring_full
            + self.rx_invalid_descs
            + self.tx_invalid_descs
            + self.tap_queue_full
    }

    pub fn add(&mut self, other: &SocketCounters) {
        self.rx_dropped += other.rx_dropped;
        self.rx_ring_full += other.rx_ring_full;
        self.rx_invalid_descs += other.rx_invalid_descs;
        self.rx_fill_ring_empty += other.rx_fill_ring_empty;
        self.tx_invalid_descs += other.tx_invalid_descs;
        self.tx_ring_empty += other.tx_ring_empty;
        self.tap_queue_full += other.tap_queue_full;
    }
}

/// What one worker counts while it processes a batch; no atomics, no sharing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PipelineCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub forwarded: u64,
    pub punted: u64,
    pub injected: u64,
    pub tx_packets: u64,
    /// Packets sent into an IPIP tunnel (by the worker, once the TX ring took them).
    pub ipip_encapsulated: u64,
    /// IPIP packets from known nodes whose outer header the pipeline stripped (whatever then
    /// happened to the inner packet, which is counted like any other).
    pub ipip_decapsulated: u64,
    /// TCP and UDP checksums a sender on this host left to offload, completed by the
    /// pipeline (whatever then happened to the frame).
    pub checksums_completed: u64,
    /// Frames received whole as GSO segments (TAP ports), each standing for several packets.
    pub gso_received: u64,
    /// Packets the worker cut GSO frames into for ports that take no offload metadata (the
    /// frames are counted once, as received, whatever they were cut into).
    pub gso_cut: u64,
    /// Packets written to a TAP joined with others of their flow into one GSO frame.
    pub gro_merged: u64,
    pub drops: [u64; DropReason::COUNT],
    /// The kernel's counts on the worker's sockets, outside `rx_packets` (those frames were
    /// never received).
    pub socket: SocketCounters,
}

impl PipelineCounters {
    /// Counts a received frame of `bytes` bytes, what the pipeline did to it (`marks`) and
    /// its final fate. The one place a received frame is counted.
    #[inline]
    pub fn record(&mut self, bytes: usize, marks: Marks, fate: Fate) {
        self.rx_packets += 1;
        self.rx_bytes += bytes as u64;
        // Branches, not adds of 0: both are rare, and a skipped store is free.
        if marks.decapsulated {
            self.ipip_decapsulated += 1;
        }
        if marks.checksum_completed {
            self.checksums_completed += 1;
        }
        if marks.gso {
            self.gso_received += 1;
        }
        match fate {
            Fate::Sent { tunnelled } => {
                self.forwarded += 1;
                self.tx_packets += 1;
                if tunnelled {
                    self.ipip_encapsulated += 1;
                }
            }
            Fate::Punted => self.punted += 1,
            Fate::Dropped(reason) => self.drop(reason),
        }
    }

    /// Counts a frame the slow path injected: sent, or dropped as `TxFull` (injected frames
    /// are not received ones, so they stay out of `rx_packets` either way).
    #[inline]
    pub fn record_injected(&mut self, sent: bool) {
        if sent {
            self.injected += 1;
            self.tx_packets += 1;
        } else {
            self.drop(DropReason::TxFull);
        }
    }

    #[inline]
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds another set of counters into this one (used to sum workers).
    pub fn add(&mut self, other: &PipelineCounters) {
        self.rx_packets += other.rx_packets;
        self.rx_bytes += other.rx_bytes;
        self.forwarded += other.forwarded;
        self.punted += other.punted;
        self.injected += other.injected;
        self.tx_packets += other.tx_packets;
        self.ipip_encapsulated += other.ipip_encapsulated;
        self.ipip_decapsulated += other.ipip_decapsulated;
        self.checksums_completed += other.checksums_completed;
        self.gso_received += other.gso_received;
        self.gso_cut += other.gso_cut;
        self.gro_merged += other.gro_merged;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += b;
        }
        self.socket.add(&other.socket);
    }
}

/// A worker's counters as other threads see them. Only the owning worker writes (with plain
/// stores, so there is no read-modify-write contention); readers may see a batch late.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    forwarded: AtomicU64,
    punted: AtomicU64,
    injected: AtomicU64,
    tx_packets: AtomicU64,
    ipip_encapsulated: AtomicU64,
    ipip_decapsulated: AtomicU64,
    checksums_completed: AtomicU64,
    gso_received: AtomicU64,
    gso_cut: AtomicU64,
    gro_merged: AtomicU64,
    drops: [AtomicU64; DropReason::COUNT],
    socket: [AtomicU64; 7],
}

impl WorkerCounters {
    /// Publishes the worker's running totals.
    pub fn publish(&self, totals: &PipelineCounters) {
        let r = Ordering::Relaxed;
        self.rx_packets.store(totals.rx_packets, r);
        self.rx_bytes.store(totals.rx_bytes, r);
        self.forwarded.store(totals.forwarded, r);
        self.punted.store(totals.punted, r);
        self.injected.store(totals.injected, r);
        self.tx_packets.store(totals.tx_packets, r);
        self.ipip_encapsulated.store(totals.ipip_encapsulated, r);
        self.ipip_decapsulated.store(totals.ipip_decapsulated, r);
        self.checksums_completed
            .store(totals.checksums_completed, r);
        self.gso_received.store(totals.gso_received, r);
        self.gso_cut.store(totals.gso_cut, r);
        self.gro_merged.store(totals.gro_merged, r);
        for (slot, v) in self.drops.iter().zip(totals.drops.iter()) {
            slot.store(*v, r);
        }
        for (slot, (_, v)) in self.socket.iter().zip(totals.socket.named()) {
            slot.store(v, r);
        }
    }

    pub fn snapshot(&self) -> PipelineCounters {
        let r = Ordering::Relaxed;
        let mut drops = [0; DropReason::COUNT];
        for (d, slot) in drops.iter_mut().zip(self.drops.iter()) {
            *d = slot.load(r);
        }
        PipelineCounters {
            rx_packets: self.rx_packets.load(r),
            rx_bytes: self.rx_bytes.load(r),
            forwarded: self.forwarded.load(r),
            punted: self.punted.load(r),
            injected: self.injected.load(r),
            tx_packets: self.tx_packets.load(r),
            ipip_encapsulated: self.ipip_encapsulated.load(r),
            ipip_decapsulated: self.ipip_decapsulated.load(r),
            checksums_completed: self.checksums_completed.load(r),
            gso_received: self.gso_received.load(r),
            gso_cut: self.gso_cut.load(r),
            gro_merged: self.gro_merged.load(r),
            drops,
            socket: SocketCounters::from_values(self.socket.each_ref().map(|v| v.load(r))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_reason_in_discriminant_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
    }

    #[test]
    fn every_recorded_fate_keeps_received_equal_to_forwarded_punted_and_dropped() {
        let mut c = PipelineCounters::default();
        let decapsulated = Marks {
            decapsulated: true,
            ..Marks::NONE
        };
        c.record(60, Marks::NONE, Fate::Sent { tunnelled: false });
        c.record(80, decapsulated, Fate::Sent { tunnelled: true });
        c.record(42, Marks::NONE, Fate::Punted);
        c.record(10, Marks::NONE, Fate::Dropped(DropReason::TxFull));
        c.record_injected(true);
        c.record_injected(false);
        assert_eq!((c.rx_packets, c.rx_bytes), (4, 192));
        assert_eq!((c.forwarded, c.punted, c.tx_packets), (2, 1, 3));
        assert_eq!(
            (c.ipip_encapsulated, c.ipip_decapsulated, c.injected),
            (1, 1, 1)
        );
        assert_eq!(
            c.dropped(DropReason::TxFull),
            2,
            "one received, one injected"
        );
        assert_eq!(
            c.rx_packets,
            c.forwarded + c.punted + c.total_drops() - 1,
            "the failed injection is a drop outside rx"
        );
    }

    #[test]
    fn published_counters_read_back_and_sum() {
        let mut local = PipelineCounters {
            rx_packets: 5,
            ipip_encapsulated: 3,
            ipip_decapsulated: 4,
            ..Default::default()
        };
        local.drop(DropReason::NoRoute);
        let shared = WorkerCounters::default();
        shared.publish(&local);
        let mut sum = shared.snapshot();
        sum.add(&local);
        assert_eq!(sum.rx_packets, 10);
        assert_eq!(sum.dropped(DropReason::NoRoute), 2);
        assert_eq!((sum.ipip_encapsulated, sum.ipip_decapsulated), (6, 8));
    }

    #[test]
    fn socket_counters_keep_each_field_through_publishing_and_sums() {
        let socket = SocketCounters::from_values([1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            socket.named().map(|(_, v)| v),
            [1, 2, 3, 4, 5, 6, 7],
            "named() is from_values()'s order"
        );
        assert_eq!(
            socket.lost(),
            1 + 2 + 3 + 5 + 7,
            "event counts are not frames"
        );
        let local = PipelineCounters {
            socket,
            ..Default::default()
        };
        let shared = WorkerCounters::default();
        shared.publish(&local);
        let mut sum = shared.snapshot();
        assert_eq!(sum.socket, socket);
        sum.add(&local);
        assert_eq!(
            sum.socket,
            SocketCounters::from_values([2, 4, 6, 8, 10, 12, 14])
        );
        assert_eq!(sum.rx_packets, 0, "socket losses are not received frames");
    }
}
