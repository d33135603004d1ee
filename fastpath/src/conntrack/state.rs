//! Per-protocol flow state and the timeouts that follow from it.
//!
//! The tracker follows the TCP connection only as far as timeouts need (RFC 793 section 3.2
//! names the states); it does not check sequence windows. Timeouts default to Linux
//! nf_conntrack's documented sysctl defaults (Documentation/networking/nf_conntrack-sysctl):
//! tcp established 432000 s, syn_sent 120 s, syn_recv 60 s, fin_wait 120 s, close_wait 60 s,
//! last_ack 30 s, time_wait 120 s, close 10 s, udp 30 s, udp stream 120 s, icmp 30 s.

use std::time::Duration;

use super::key::Direction;
use crate::wire::ipv4::protocol;
use crate::wire::tcp::flags as tcp_flags;

/// A monotonic time in milliseconds, supplied by the caller (one clock read per batch).
pub type Millis = u64;

/// TCP states as far as the tracker can tell them from the flags it sees in each direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// A SYN from the initiator, nothing back yet.
    SynSent,
    /// The responder's SYN-ACK seen, the initiator's ACK not yet.
    SynRecv,
    /// Handshake complete (or a flow picked up in the middle, e.g. after a restart).
    Established,
    /// One side sent FIN.
    FinWait,
    /// The FIN was acknowledged by the other side, which has not closed yet.
    CloseWait,
    /// Both sides sent FIN; the last ACK is awaited.
    LastAck,
    /// Both FINs acknowledged; lingering for stray segments (RFC 793: 2 MSL).
    TimeWait,
    /// Reset by either side.
    Close,
}

/// UDP has no states on the wire; the tracker tells apart one-way and two-way flows, like
/// Linux does, so that a flood of unanswered datagrams expires (and is evicted) first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UdpState {
    Unreplied,
    /// A reply seen, but the flow is younger than [`UDP_STREAM_AFTER`].
    Replied,
    /// Replied and still active after [`UDP_STREAM_AFTER`]: the long timeout applies.
    Stream,
}

/// After how long a replied UDP flow counts as a stream (Linux: two seconds).
pub const UDP_STREAM_AFTER: Millis = 2_000;

/// State by protocol. `Other` covers ICMP echo and any other protocol the table tracks by
/// address pair (and echo identifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowState {
    Tcp {
        state: TcpState,
        fin_from: Option<Direction>,
    },
    Udp(UdpState),
    /// ICMP echo (and other protocols): whether the reply direction has been seen.
    Other {
        replied: bool,
    },
}

/// Timeout per state. Each packet sets a flow's deadline to `now + timeout(state)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp_syn_sent: Duration,
    pub tcp_syn_recv: Duration,
    pub tcp_established: Duration,
    pub tcp_fin_wait: Duration,
    pub tcp_close_wait: Duration,
    pub tcp_last_ack: Duration,
    pub tcp_time_wait: Duration,
    pub tcp_close: Duration,
    pub udp: Duration,
    pub udp_stream: Duration,
    pub icmp: Duration,
    /// Protocols other than TCP, UDP and ICMP (Linux `nf_conntrack_generic_timeout`: 600 s).
    pub other: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        let s = Duration::from_secs;
        Timeouts {
            tcp_syn_sent: s(120),
            tcp_syn_recv: s(60),
            tcp_established: s(432_000),
            tcp_fin_wait: s(120),
            tcp_close_wait: s(60),
            tcp_last_ack: s(30),
            tcp_time_wait: s(120),
            tcp_close: s(10),
            udp: s(30),
            udp_stream: s(120),
            icmp: s(30),
            other: s(600),
        }
    }
}

impl Timeouts {
    /// How long a flow in `state` of `protocol` lives without another packet, in ms.
    pub fn for_state(&self, protocol: u8, state: FlowState) -> Millis {
        let d = match state {
            FlowState::Tcp { state, .. } => match state {
                TcpState::SynSent => self.tcp_syn_sent,
                TcpState::SynRecv => self.tcp_syn_recv,
                TcpState::Established => self.tcp_established,
                TcpState::FinWait => self.tcp_fin_wait,
                TcpState::CloseWait => self.tcp_close_wait,
                TcpState::LastAck => self.tcp_last_ack,
                TcpState::TimeWait => self.tcp_time_wait,
                TcpState::Close => self.tcp_close,
            },
            FlowState::Udp(UdpState::Stream) => self.udp_stream,
            FlowState::Udp(_) => self.udp,
            FlowState::Other { .. } if protocol == protocol::ICMP => self.icmp,
            FlowState::Other { .. } => self.other,
        };
        d.as_millis().min(u128::from(u64::MAX)) as Millis
    }
}

/// What evicting a flow costs, lowest first: a flow that has not been answered (a scan, a
/// flood, a half-open connection) or is closing goes before one that has, and an established
/// TCP connection or UDP stream goes last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FlowValue {
    UnrepliedOrClosing = 0,
    Replied = 1,
    Established = 2,
}

impl FlowState {
    /// The state of a new flow whose first packet has `flags` (TCP flags, 0 for others).
    ///
    /// A TCP flow whose first packet is not a SYN is picked up as established (like Linux with
    /// `nf_conntrack_tcp_loose` on, its default): after a restart of the node service the
    /// connections that were open must keep working once policy allows them again.
    pub fn new(protocol: u8, flags: u8) -> FlowState {
        match protocol {
            protocol::TCP => {
                let state = if flags & tcp_flags::RST != 0 {
                    TcpState::Close
                } else if flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN {
                    TcpState::SynSent
                } else if flags & tcp_flags::FIN != 0 {
                    return FlowState::Tcp {
                        state: TcpState::FinWait,
                        fin_from: Some(Direction::Original),
                    };
                } else {
                    TcpState::Established
                };
                FlowState::Tcp {
                    state,
                    fin_from: None,
                }
            }
            protocol::UDP => FlowState::Udp(UdpState::Unreplied),
            _ => FlowState::Other { replied: false },
        }
    }

    /// The state after a packet in direction `dir` with TCP `flags` (ignored for other
    /// protocols); `age` is how long the flow has existed.
    pub fn advance(self, dir: Direction, flags: u8, age: Millis) -> FlowState {
        match self {
            FlowState::Tcp { state, fin_from } => advance_tcp(state, fin_from, dir, flags),
            FlowState::Udp(s) => FlowState::Udp(match (s, dir) {
                (UdpState::Unreplied, Direction::Original) => UdpState::Unreplied,
                (UdpState::Unreplied, Direction::Reply) | (UdpState::Replied, _) => {
                    if age >= UDP_STREAM_AFTER {
                        UdpState::Stream
                    } else {
                        UdpState::Replied
                    }
                }
                (UdpState::Stream, _) => UdpState::Stream,
            }),
            FlowState::Other { replied } => FlowState::Other {
                replied: replied || dir == Direction::Reply,
            },
        }
    }

    /// Whether a packet has been seen in the reply direction.
    pub fn replied(self) -> bool {
        match self {
            FlowState::Tcp { state, .. } => state != TcpState::SynSent,
            FlowState::Udp(s) => s != UdpState::Unreplied,
            FlowState::Other { replied } => replied,
        }
    }

    pub fn value(self) -> FlowValue {
        match self {
            FlowState::Tcp {
                state: TcpState::Established,
                ..
            }
            | FlowState::Udp(UdpState::Stream) => FlowValue::Established,
            FlowState::Tcp {
                state: TcpState::SynRecv,
                ..
            } => FlowValue::Replied,
            FlowState::Tcp { .. } => FlowValue::UnrepliedOrClosing,
            s if s.replied() => FlowValue::Replied,
            _ => FlowValue::UnrepliedOrClosing,
        }
    }
}

/// The TCP transitions (RFC 793 section 3.5 for the close sequence). RST closes from any
/// state; a SYN from the initiator after the connection closed reopens it (a new connection
/// reusing the same ports, as Linux allows from TIME_WAIT and CLOSE).
fn advance_tcp(
    state: TcpState,
    fin_from: Option<Direction>,
    dir: Direction,
    flags: u8,
) -> FlowState {
    use TcpState::*;
    let syn = flags & tcp_flags::SYN != 0;
    let ack = flags & tcp_flags::ACK != 0;
    let fin = flags & tcp_flags::FIN != 0;
    let tcp = |state| FlowState::Tcp { state, fin_from };
    if flags & tcp_flags::RST != 0 {
        return tcp(Close);
    }
    let original = dir == Direction::Original;
    match state {
        SynSent if !original && syn => tcp(SynRecv),
        SynSent => tcp(SynSent),
        SynRecv if fin => FlowState::Tcp {
            state: FinWait,
            fin_from: Some(dir),
        },
        SynRecv if original && ack && !syn => tcp(Established),
        SynRecv => tcp(SynRecv),
        Established if fin => FlowState::Tcp {
            state: FinWait,
            fin_from: Some(dir),
        },
        Established => tcp(Established),
        // The side that did not close yet sends FIN: both have closed.
        FinWait | CloseWait if fin && fin_from != Some(dir) => tcp(LastAck),
        // The other side acknowledges the first FIN and keeps sending.
        FinWait if ack && fin_from != Some(dir) => tcp(CloseWait),
        FinWait | CloseWait => tcp(state),
        // The first closer acknowledges the second FIN.
        LastAck if ack && fin_from == Some(dir) => tcp(TimeWait),
        LastAck => tcp(LastAck),
        TimeWait | Close if original && syn && !ack => FlowState::Tcp {
            state: SynSent,
            fin_from: None,
        },
        TimeWait | Close => tcp(state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Original as O, Reply as R};

    const SYN: u8 = tcp_flags::SYN;
    const SYNACK: u8 = tcp_flags::SYN | tcp_flags::ACK;
    const ACK: u8 = tcp_flags::ACK;
    const FIN: u8 = tcp_flags::FIN | tcp_flags::ACK;
    const RST: u8 = tcp_flags::RST;

    fn tcp_state(s: FlowState) -> TcpState {
        match s {
            FlowState::Tcp { state, .. } => state,
            other => panic!("not tcp: {other:?}"),
        }
    }

    /// Runs `steps` from a new flow opened by `first` and returns every state on the way.
    fn run(first: u8, steps: &[(Direction, u8)]) -> Vec<TcpState> {
        let mut s = FlowState::new(protocol::TCP, first);
        let mut out = vec![tcp_state(s)];
        for &(dir, flags) in steps {
            s = s.advance(dir, flags, 0);
            out.push(tcp_state(s));
        }
        out
    }

    #[test]
    fn handshake_goes_syn_sent_syn_recv_established() {
        use TcpState::*;
        assert_eq!(
            run(SYN, &[(R, SYNACK), (O, ACK)]),
            vec![SynSent, SynRecv, Established]
        );
    }

    #[test]
    fn retransmitted_syn_stays_syn_sent_and_reply_without_syn_does_not_advance() {
        use TcpState::*;
        assert_eq!(
            run(SYN, &[(O, SYN), (R, ACK)]),
            vec![SynSent, SynSent, SynSent]
        );
    }

    #[test]
    fn initiator_close_runs_fin_wait_close_wait_last_ack_time_wait() {
        use TcpState::*;
        let states = run(
            SYN,
            &[
                (R, SYNACK),
                (O, ACK),
                (O, FIN),
                (R, ACK),
                (R, FIN),
                (O, ACK),
            ],
        );
        assert_eq!(
            states,
            vec![
                SynSent,
                SynRecv,
                Established,
                FinWait,
                CloseWait,
                LastAck,
                TimeWait
            ]
        );
    }

    #[test]
    fn responder_close_and_simultaneous_close() {
        use TcpState::*;
        let states = run(ACK, &[(R, FIN), (O, ACK), (O, FIN), (R, ACK)]);
        assert_eq!(
            states,
            vec![Established, FinWait, CloseWait, LastAck, TimeWait]
        );
        let states = run(ACK, &[(O, FIN), (R, FIN), (O, ACK)]);
        assert_eq!(states, vec![Established, FinWait, LastAck, TimeWait]);
        // The closer's own ACKs neither advance FIN_WAIT nor finish LAST_ACK.
        let states = run(ACK, &[(O, FIN), (O, ACK), (R, FIN), (R, ACK)]);
        assert_eq!(
            states,
            vec![Established, FinWait, FinWait, LastAck, LastAck]
        );
    }

    #[test]
    fn rst_closes_from_every_state_and_syn_reopens() {
        use TcpState::*;
        for prefix in [
            &[][..],
            &[(R, SYNACK)],
            &[(R, SYNACK), (O, ACK)],
            &[(R, SYNACK), (O, ACK), (O, FIN)],
        ] {
            for dir in [O, R] {
                let mut steps = prefix.to_vec();
                steps.push((dir, RST));
                assert_eq!(*run(SYN, &steps).last().unwrap(), Close, "{steps:?}");
            }
        }
        assert_eq!(
            run(SYN, &[(O, RST), (O, SYN)]),
            vec![SynSent, Close, SynSent]
        );
        assert_eq!(run(RST, &[]), vec![Close]);
        assert_eq!(
            run(ACK, &[(O, FIN), (R, FIN), (O, ACK), (O, SYN)]).last(),
            Some(&SynSent)
        );
    }

    #[test]
    fn midstream_pickup_is_established_and_first_fin_is_fin_wait() {
        assert_eq!(run(ACK, &[]), vec![TcpState::Established]);
        assert_eq!(run(FIN, &[]), vec![TcpState::FinWait]);
    }

    #[test]
    fn tcp_timeouts_follow_state() {
        let t = Timeouts::default();
        let ms = |st: TcpState| {
            t.for_state(
                protocol::TCP,
                FlowState::Tcp {
                    state: st,
                    fin_from: None,
                },
            )
        };
        assert_eq!(ms(TcpState::SynSent), 120_000);
        assert_eq!(ms(TcpState::SynRecv), 60_000);
        assert_eq!(ms(TcpState::Established), 432_000_000);
        assert_eq!(ms(TcpState::FinWait), 120_000);
        assert_eq!(ms(TcpState::CloseWait), 60_000);
        assert_eq!(ms(TcpState::LastAck), 30_000);
        assert_eq!(ms(TcpState::TimeWait), 120_000);
        assert_eq!(ms(TcpState::Close), 10_000);
    }

    #[test]
    fn udp_goes_unreplied_replied_stream() {
        let t = Timeouts::default();
        let s = FlowState::new(protocol::UDP, 0);
        assert_eq!(s, FlowState::Udp(UdpState::Unreplied));
        assert_eq!(
            s.advance(O, 0, 5_000),
            FlowState::Udp(UdpState::Unreplied),
            "one-way stays unreplied"
        );
        let replied = s.advance(R, 0, 100);
        assert_eq!(replied, FlowState::Udp(UdpState::Replied));
        assert_eq!(t.for_state(protocol::UDP, replied), 30_000);
        let stream = replied.advance(O, 0, UDP_STREAM_AFTER);
        assert_eq!(stream, FlowState::Udp(UdpState::Stream));
        assert_eq!(t.for_state(protocol::UDP, stream), 120_000);
        assert_eq!(t.for_state(protocol::UDP, s), 30_000);
        assert!(!s.replied() && replied.replied() && stream.replied());
    }

    #[test]
    fn icmp_and_other_protocols() {
        let t = Timeouts::default();
        let s = FlowState::new(protocol::ICMP, 0);
        assert_eq!(s, FlowState::Other { replied: false });
        assert_eq!(s.advance(O, 0, 0), s);
        assert_eq!(s.advance(R, 0, 0), FlowState::Other { replied: true });
        assert_eq!(t.for_state(protocol::ICMP, s), 30_000);
        assert_eq!(t.for_state(47, s), 600_000);
    }

    #[test]
    fn value_orders_unreplied_before_replied_before_established() {
        let syn_sent = FlowState::new(protocol::TCP, SYN);
        let est = FlowState::new(protocol::TCP, ACK);
        let udp = FlowState::new(protocol::UDP, 0);
        assert_eq!(syn_sent.value(), FlowValue::UnrepliedOrClosing);
        assert_eq!(udp.value(), FlowValue::UnrepliedOrClosing);
        assert_eq!(udp.advance(R, 0, 0).value(), FlowValue::Replied);
        assert_eq!(est.value(), FlowValue::Established);
        assert_eq!(
            est.advance(O, RST, 0).value(),
            FlowValue::UnrepliedOrClosing
        );
        assert!(
            FlowValue::UnrepliedOrClosing < FlowValue::Replied
                && FlowValue::Replied < FlowValue::Established
        );
    }
}
