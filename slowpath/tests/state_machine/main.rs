//! The slow path's state machine, driven with synthetic frames and a test clock.

#[path = "../common/mod.rs"]
mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fastpath::wire::ethernet::ethertype;
use fastpath::wire::icmpv4::msg_type;
use fastpath::wire::ipv4::protocol;
use fastpath::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetPacket, Icmpv4Packet, Ipv4Packet};
use fastpath::{MacAddr, PortId, PuntReason, Tables};
use slowpath::{Slowpath, SlowpathConfig, SlowpathCounters, SlowpathCountersSnapshot};

mod hostile_input;
mod icmp_errors;
mod learning;
mod local_delivery;
mod proxy_arp;
mod uplink_resolution;
mod workload_resolution;

type Sent = Vec<(PortId, Vec<u8>)>;

struct Harness {
    slowpath: Slowpath<FakeKernel>,
    counters: Arc<SlowpathCounters>,
    tables: Tables,
    t0: Instant,
}

impl Harness {
    fn new(config: SlowpathConfig) -> Harness {
        let counters = Arc::new(SlowpathCounters::default());
        Harness {
            slowpath: Slowpath::new(config, counters.clone(), FakeKernel::default()),
            counters,
            tables: tables(),
            t0: Instant::now(),
        }
    }

    fn default() -> Harness {
        Harness::new(SlowpathConfig::default())
    }

    /// Handles one frame at `t0 + at` and returns what was sent.
    fn punt(&mut self, port: PortId, reason: PuntReason, frame: &[u8], at: Duration) -> Sent {
        let mut out = Vec::new();
        self.slowpath
            .handle(&self.tables, port, reason, frame, self.t0 + at, &mut out);
        out
    }

    fn tick(&mut self, at: Duration) -> Sent {
        let mut out = Vec::new();
        self.slowpath.tick(&self.tables, self.t0 + at, &mut out);
        out
    }

    fn counters(&self) -> SlowpathCountersSnapshot {
        self.counters.snapshot()
    }
}

const T0: Duration = Duration::ZERO;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn arp_of(frame: &[u8]) -> (EthernetPacket<&[u8]>, ArpRepr) {
    let eth = EthernetPacket::new_checked(frame).unwrap();
    assert_eq!(eth.ethertype(), ethertype::ARP);
    let arp = ArpRepr::parse(&ArpPacket::new_checked(&frame[14..]).unwrap()).unwrap();
    (eth, arp)
}

type IcmpFrame<'a> = (
    EthernetPacket<&'a [u8]>,
    Ipv4Packet<&'a [u8]>,
    Icmpv4Packet<&'a [u8]>,
);

/// The Ethernet header, IPv4 header and ICMP message of a frame the slow path sent, with
/// every checksum checked.
fn icmp_of(frame: &[u8]) -> IcmpFrame<'_> {
    let eth = EthernetPacket::new_checked(frame).unwrap();
    assert_eq!(eth.ethertype(), ethertype::IPV4);
    let ip = Ipv4Packet::new_checked(&frame[14..]).unwrap();
    assert!(ip.verify_checksum(), "IPv4 header checksum");
    assert_eq!(ip.protocol(), protocol::ICMP);
    let icmp_bytes = &frame[14 + ip.header_len()..14 + usize::from(ip.total_len())];
    let icmp = Icmpv4Packet::new_checked(icmp_bytes).unwrap();
    assert!(icmp.verify_checksum(), "ICMP checksum");
    (eth, ip, icmp)
}

/// An echo request from workload A to `dst`: the frame and its ICMP message.
fn echo_request_from_a(dst: Ipv4Addr) -> (Vec<u8>, Vec<u8>) {
    let echo = icmp_message(msg_type::ECHO_REQUEST, 0, 0x1234_0007, b"abcdefghijklmnop");
    (
        ipv4_frame(
            A_MAC,
            MacAddr::CALICO_HOST_SIDE,
            A_IP,
            dst,
            64,
            protocol::ICMP,
            &echo,
        ),
        echo,
    )
}
