//! Replayed event sequences through the RFC 4271 section 8 FSM, compared with the actions
//! and states the RFC prescribes.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp::fsm::{
    Action,
    ConnectionId::{Incoming, Outgoing},
    DownReason, Event, GracefulRestart, Negotiated, PeerConfig, PeerFsm, PeerRestart, State,
};
use bgp::packet::consts::{cease, error_code, fsm_error, open_message_error};
use bgp::packet::{
    Capability, GracefulRestartFamily, Notification, Open, AFI_IPV4, AFI_IPV6, AS_TRANS,
    SAFI_UNICAST,
};

const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const LOW_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 0);
const HIGH_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);

fn config(passive: bool) -> PeerConfig {
    PeerConfig {
        passive,
        ..PeerConfig::new(64512, LOCAL_ID, 64512)
    }
}

fn peer_open(asn: u32, hold: u16, id: Ipv4Addr) -> Open {
    Open::new(asn, hold, id, vec![Capability::RouteRefresh])
}

/// One step of a replay: an event at `t0 + secs`, the actions expected, the state after.
struct Step(u64, Event, Vec<Action>, State);

fn replay(fsm: &mut PeerFsm, t0: Instant, steps: Vec<Step>) {
    for (i, Step(secs, event, expected, state)) in steps.into_iter().enumerate() {
        let shown = format!("{event:?}");
        let actions = fsm.handle(event, t0 + Duration::from_secs(secs));
        assert_eq!(actions, expected, "step {i} ({shown}): actions");
        assert_eq!(fsm.state(), state, "step {i} ({shown}): state");
    }
}

fn negotiated(hold: u16, peer_id: Ipv4Addr) -> Negotiated {
    Negotiated {
        peer_as: 64512,
        peer_id,
        four_octet_as: true,
        route_refresh: true,
        hold_time: hold,
        keepalive: hold / 3,
        graceful_restart: None,
    }
}

#[test]
fn active_peer_happy_path_reaches_established_and_keeps_alive() {
    let t0 = Instant::now();
    let cfg = config(false);
    let open = cfg.open();
    let mut fsm = PeerFsm::new(cfg);
    replay(
        &mut fsm,
        t0,
        vec![
            Step(0, Event::ManualStart, vec![Action::Connect], State::Connect),
            Step(
                1,
                Event::Tcp_CR_Acked,
                vec![Action::SendOpen(Outgoing, open)],
                State::OpenSent,
            ),
            Step(
                1,
                Event::BGPOpen(Outgoing, peer_open(64512, 30, HIGH_ID)),
                vec![Action::SendKeepalive(Outgoing)],
                State::OpenConfirm,
            ),
            Step(
                2,
                Event::KeepAliveMsg(Outgoing),
                vec![Action::Established(negotiated(30, HIGH_ID))],
                State::Established,
            ),
        ],
    );
    // Negotiated hold is min(90, 30) = 30, keepalive every 10 s.
    let timers = fsm.timers();
    assert_eq!(timers.hold, Some(t0 + Duration::from_secs(32)));
    assert_eq!(timers.keepalive, Some(t0 + Duration::from_secs(11)));
    assert_eq!(
        fsm.expired(t0 + Duration::from_secs(11)),
        Some(Event::KeepaliveTimer_Expires)
    );
    replay(
        &mut fsm,
        t0,
        vec![
            Step(
                11,
                Event::KeepaliveTimer_Expires,
                vec![Action::SendKeepalive(Outgoing)],
                State::Established,
            ),
            Step(20, Event::UpdateMsg(Outgoing), vec![], State::Established),
        ],
    );
    assert_eq!(
        fsm.timers().hold,
        Some(t0 + Duration::from_secs(50)),
        "an UPDATE restarts the HoldTimer"
    );
    assert_eq!(fsm.timers().keepalive, Some(t0 + Duration::from_secs(21)));
    assert_eq!(fsm.last_error(), None);
}

#[test]
fn passive_peer_waits_for_the_peer_and_never_connects() {
    let t0 = Instant::now();
    let cfg = config(true);
    let open = cfg.open();
    let mut fsm = PeerFsm::new(cfg);
    replay(
        &mut fsm,
        t0,
        vec![Step(0, Event::ManualStart, vec![], State::Active)],
    );
    assert_eq!(
        fsm.timers().connect_retry,
        None,
        "a passive peer has nothing to retry"
    );
    replay(
        &mut fsm,
        t0,
        vec![
            Step(
                5,
                Event::TcpConnectionConfirmed,
                vec![Action::SendOpen(Incoming, open)],
                State::OpenSent,
            ),
            Step(
                5,
                Event::BGPOpen(Incoming, peer_open(64512, 90, LOW_ID)),
                vec![Action::SendKeepalive(Incoming)],
                State::OpenConfirm,
            ),
            Step(
                6,
                Event::KeepAliveMsg(Incoming),
                vec![Action::Established(negotiated(90, LOW_ID))],
                State::Established,
            ),
        ],
    );
}

#[test]
fn connect_retry_timer_retries_after_120_seconds_and_failure_goes_active() {
    let t0 = Instant::now();
    let mut fsm = PeerFsm::new(config(false));
    replay(
        &mut fsm,
        t0,
        vec![Step(
            0,
            Event::ManualStart,
            vec![Action::Connect],
            State::Connect,
        )],
    );
    assert_eq!(
        fsm.timers().connect_retry,
        Some(t0 + Duration::from_secs(120))
    );
    assert_eq!(fsm.expired(t0 + Duration::from_secs(119)), None);
    assert_eq!(
        fsm.expired(t0 + Duration::from_secs(120)),
        Some(Event::ConnectRetryTimer_Expires)
    );
    replay(
        &mut fsm,
        t0,
        vec![
            Step(
                120,
                Event::ConnectRetryTimer_Expires,
                vec![Action::CloseConnection(Outgoing), Action::Connect],
                State::Connect,
            ),
            Step(
                121,
                Event::TcpConnectionFails(Outgoing),
                vec![],
                State::Active,
            ),
            Step(
                241,
                Event::ConnectRetryTimer_Expires,
                vec![Action::Connect],
                State::Connect,
            ),
        ],
    );
    assert_eq!(fsm.last_error(), Some(&DownReason::ConnectionFailed));
}

#[test]
fn hold_timer_expiry_sends_notification_4_goes_idle_and_drops_routes() {
    let t0 = Instant::now();
    let cfg = config(false);
    let open = cfg.open();
    let mut fsm = PeerFsm::new(cfg);
    replay(
        &mut fsm,
        t0,
        vec![
            Step(0, Event::ManualStart, vec![Action::Connect], State::Connect),
            Step(
                0,
                Event::Tcp_CR_Acked,
                vec![Action::SendOpen(Outgoing, open)],
                State::OpenSent,
            ),
            Step(
                0,
                Event::BGPOpen(Outgoing, peer_open(64512, 9, HIGH_ID)),
                vec![Action::SendKeepalive(Outgoing)],
                State::OpenConfirm,
            ),
            Step(
                0,
                Event::KeepAliveMsg(Outgoing),
                vec![Action::Established(negotiated(9, HIGH_ID))],
                State::Established,
            ),
        ],
    );
    assert_eq!(
        fsm.expired(t0 + Duration::from_secs(9)),
        Some(Event::HoldTimer_Expires)
    );
    replay(
        &mut fsm,
        t0,
        vec![Step(
            9,
            Event::HoldTimer_Expires,
            vec![
                Action::SendNotification(
                    Outgoing,
                    Notification::new(error_code::HOLD_TIMER_EXPIRED, 0, vec![]),
                ),
                Action::CloseConnection(Outgoing),
                Action::Down(DownReason::HoldTimerExpired),
            ],
            State::Idle,
        )],
    );
    assert_eq!(fsm.last_error(), Some(&DownReason::HoldTimerExpired));
    assert_eq!(fsm.last_error().unwrap().to_string(), "Hold timer expired");
    // Still started: after the IdleHoldTimer it connects again by itself.
    assert_eq!(
        fsm.expired(t0 + Duration::from_secs(14)),
        Some(Event::IdleHoldTimer_Expires)
    );
    replay(
        &mut fsm,
        t0,
        vec![Step(
            14,
            Event::IdleHoldTimer_Expires,
            vec![Action::Connect],
            State::Connect,
        )],
    );
}

#[test]
fn hold_time_zero_means_no_keepalives_and_no_hold_timer() {
    let t0 = Instant::now();
    let cfg = config(false);
    let open = cfg.open();
    let mut fsm = PeerFsm::new(cfg);
    replay(
        &mut fsm,
        t0,
        vec![
            Step(0, Event::ManualStart, vec![Action::Connect], State::Connect),
            Step(
                0,
                Event::Tcp_CR_Acked,
                vec![Action::SendOpen(Outgoing, open)],
                State::OpenSent,
            ),
            Step(
                0,
                Event::BGPOpen(Outgoing, peer_open(64512, 0, HIGH_ID)),
                vec![Action::SendKeepalive(Outgoing)],
                State::OpenConfirm,
            ),
            Step(
                0,
                Event::KeepAliveMsg(Outgoing),
                vec![Action::Established(negotiated(0, HIGH_ID))],
                State::Established,
            ),
        ],
    );
    assert_eq!(fsm.timers().hold, None);
    assert_eq!(fsm.timers().keepalive, None);
    assert_eq!(fsm.expired(t0 + Duration::from_secs(100_000)), None);
}

/// Brings a fresh active FSM to OpenSent on the outgoing connection.
fn open_sent() -> (PeerFsm, Instant) {
    let t0 = Instant::now();
    let mut fsm = PeerFsm::new(config(false));
    fsm.handle(Event::ManualStart, t0);
    fsm.handle(Event::Tcp_CR_Acked, t0);
    assert_eq!(fsm.state(), State::OpenSent);
    (fsm, t0)
}

fn bad_open_is_refused(open: Open, subcode: u8, data: Vec<u8>) {
    let (mut fsm, t0) = open_sent();
    let n = Notification::new(error_code::OPEN_MESSAGE_ERROR, subcode, data);
    replay(
        &mut fsm,
        t0,
        vec![Step(
            1,
            Event::BGPOpen(Outgoing, open),
            vec![
                Action::SendNotification(Outgoing, n.clone()),
                Action::CloseConnection(Outgoing),
            ],
            State::Idle,
        )],
    );
    assert_eq!(fsm.last_error(), Some(&DownReason::NotificationSent(n)));
}

#[test]
fn open_with_wrong_peer_as_gets_bad_peer_as() {
    bad_open_is_refused(
        peer_open(64513, 90, HIGH_ID),
        open_message_error::BAD_PEER_AS,
        64513u16.to_be_bytes().to_vec(),
    );
}

#[test]
fn open_with_4_octet_as_is_checked_against_the_capability_not_as_trans() {
    // Configured peer AS 4200000000: the OPEN carries AS_TRANS and the capability.
    let t0 = Instant::now();
    let mut fsm = PeerFsm::new(PeerConfig::new(64512, LOCAL_ID, 4_200_000_000));
    fsm.handle(Event::ManualStart, t0);
    fsm.handle(Event::Tcp_CR_Acked, t0);
    let open = Open::new(4_200_000_000, 90, HIGH_ID, vec![]);
    assert_eq!(open.my_as, AS_TRANS);
    replay(
        &mut fsm,
        t0,
        vec![Step(
            0,
            Event::BGPOpen(Outgoing, open),
            vec![Action::SendKeepalive(Outgoing)],
            State::OpenConfirm,
        )],
    );
    assert_eq!(fsm.negotiated().unwrap().peer_as, 4_200_000_000);
    // A 2-octet speaker that says AS_TRANS is AS 23456, not the configured one.
    let (mut fsm, t0) = open_sent();
    let old = Open {
        capabilities: vec![],
        ..Open::new(23456, 90, HIGH_ID, vec![])
    };
    let actions = fsm.handle(Event::BGPOpen(Outgoing, old), t0);
    assert!(
        matches!(&actions[0], Action::SendNotification(_, n) if n.subcode == open_message_error::BAD_PEER_AS)
    );
}

#[test]
fn open_with_zero_or_our_own_identifier_gets_bad_bgp_identifier() {
    bad_open_is_refused(
        peer_open(64512, 90, Ipv4Addr::UNSPECIFIED),
        open_message_error::BAD_BGP_IDENTIFIER,
        vec![],
    );
    bad_open_is_refused(
        peer_open(64512, 90, LOCAL_ID),
        open_message_error::BAD_BGP_IDENTIFIER,
        vec![],
    );
}

#[test]
fn open_with_hold_time_1_or_2_gets_unacceptable_hold_time() {
    bad_open_is_refused(
        peer_open(64512, 1, HIGH_ID),
        open_message_error::UNACCEPTABLE_HOLD_TIME,
        vec![],
    );
    bad_open_is_refused(
        peer_open(64512, 2, HIGH_ID),
        open_message_error::UNACCEPTABLE_HOLD_TIME,
        vec![],
    );
}

#[test]
fn codec_errors_send_the_codecs_notification() {
    let (mut fsm, t0) = open_sent();
    let n = Notification::new(error_code::MESSAGE_HEADER_ERROR, 2, vec![0, 5]);
    replay(
        &mut fsm,
        t0,
        vec![Step(
            1,
            Event::BGPHeaderErr(Outgoing, n.clone()),
            vec![
                Action::SendNotification(Outgoing, n),
                Action::CloseConnection(Outgoing),
            ],
            State::Idle,
        )],
    );
}

#[test]
fn update_before_established_is_an_fsm_error() {
    let (mut fsm, t0) = open_sent();
    replay(
        &mut fsm,
        t0,
        vec![Step(
            1,
            Event::UpdateMsg(Outgoing),
            vec![
                Action::SendNotification(
                    Outgoing,
                    Notification::fsm_error(fsm_error::UNEXPECTED_MESSAGE_IN_OPEN_SENT),
                ),
                Action::CloseConnection(Outgoing),
            ],
            State::Idle,
        )],
    );
}

#[test]
fn manual_stop_sends_cease_administrative_shutdown_and_stays_idle() {
    let (mut fsm, t0) = open_sent();
    fsm.handle(Event::BGPOpen(Outgoing, peer_open(64512, 90, HIGH_ID)), t0);
    fsm.handle(Event::KeepAliveMsg(Outgoing), t0);
    assert_eq!(fsm.state(), State::Established);
    replay(
        &mut fsm,
        t0,
        vec![Step(
            1,
            Event::ManualStop,
            vec![
                Action::SendNotification(
                    Outgoing,
                    Notification::cease(cease::ADMINISTRATIVE_SHUTDOWN),
                ),
                Action::CloseConnection(Outgoing),
                Action::Down(DownReason::ManualStop),
            ],
            State::Idle,
        )],
    );
    assert_eq!(
        fsm.timers().next(),
        None,
        "a stopped peer does not restart by itself"
    );
}

#[test]
fn notification_from_peer_drops_the_session_without_answering() {
    let (mut fsm, t0) = open_sent();
    fsm.handle(Event::BGPOpen(Outgoing, peer_open(64512, 90, HIGH_ID)), t0);
    fsm.handle(Event::KeepAliveMsg(Outgoing), t0);
    let n = Notification::cease(cease::ADMINISTRATIVE_RESET);
    replay(
        &mut fsm,
        t0,
        vec![Step(
            1,
            Event::NotifMsg(Outgoing, n.clone()),
            vec![
                Action::CloseConnection(Outgoing),
                Action::Down(DownReason::NotificationReceived(n.clone())),
            ],
            State::Idle,
        )],
    );
    assert_eq!(
        fsm.last_error().unwrap().to_string(),
        "Received: Cease (6) / Administrative Reset (4)"
    );
}

fn collision_notification() -> Notification {
    Notification::cease(cease::CONNECTION_COLLISION_RESOLUTION)
}

#[test]
fn collision_with_higher_peer_id_keeps_the_peers_connection() {
    // We (10.0.0.1) connect out; the peer (10.0.0.9) connects in too. Its identifier is
    // higher, so the connection it initiated (Incoming) survives.
    let (mut fsm, t0) = open_sent();
    let open = fsm.config().open();
    replay(
        &mut fsm,
        t0,
        vec![
            Step(
                1,
                Event::TcpConnectionConfirmed,
                vec![Action::SendOpen(Incoming, open)],
                State::OpenSent,
            ),
            Step(
                1,
                Event::BGPOpen(Outgoing, peer_open(64512, 90, HIGH_ID)),
                vec![
                    Action::SendNotification(Outgoing, collision_notification()),
                    Action::CloseConnection(Outgoing),
                ],
                State::OpenSent,
            ),
            Step(
                1,
                Event::BGPOpen(Incoming, peer_open(64512, 90, HIGH_ID)),
                vec![Action::SendKeepalive(Incoming)],
                State::OpenConfirm,
            ),
            Step(
                2,
                Event::KeepAliveMsg(Incoming),
                vec![Action::Established(negotiated(90, HIGH_ID))],
                State::Established,
            ),
        ],
    );
    assert_eq!(fsm.connection(), Some(Incoming));
}

#[test]
fn collision_with_lower_peer_id_keeps_our_connection() {
    // The peer (10.0.0.0) has the lower identifier: our Outgoing connection survives, and
    // the OPEN on the incoming one is answered with Cease / Connection Collision Resolution.
    let (mut fsm, t0) = open_sent();
    let open = fsm.config().open();
    replay(
        &mut fsm,
        t0,
        vec![
            Step(
                1,
                Event::BGPOpen(Outgoing, peer_open(64512, 90, LOW_ID)),
                vec![Action::SendKeepalive(Outgoing)],
                State::OpenConfirm,
            ),
            Step(
                1,
                Event::TcpConnectionConfirmed,
                vec![Action::SendOpen(Incoming, open)],
                State::OpenConfirm,
            ),
            Step(
                1,
                Event::BGPOpen(Incoming, peer_open(64512, 90, LOW_ID)),
                vec![
                    Action::SendNotification(Incoming, collision_notification()),
                    Action::CloseConnection(Incoming),
                ],
                State::OpenConfirm,
            ),
            Step(
                2,
                Event::KeepAliveMsg(Outgoing),
                vec![Action::Established(negotiated(90, LOW_ID))],
                State::Established,
            ),
        ],
    );
    assert_eq!(fsm.connection(), Some(Outgoing));
}

#[test]
fn collision_with_an_established_session_closes_the_new_connection() {
    let (mut fsm, t0) = open_sent();
    fsm.handle(Event::BGPOpen(Outgoing, peer_open(64512, 90, HIGH_ID)), t0);
    fsm.handle(Event::KeepAliveMsg(Outgoing), t0);
    replay(
        &mut fsm,
        t0,
        vec![Step(
            1,
            Event::TcpConnectionConfirmed,
            vec![
                Action::SendNotification(Incoming, collision_notification()),
                Action::CloseConnection(Incoming),
            ],
            State::Established,
        )],
    );
    assert_eq!(fsm.connection(), Some(Outgoing));
}

#[test]
fn idle_refuses_connections_until_started() {
    let t0 = Instant::now();
    let mut fsm = PeerFsm::new(config(true));
    replay(
        &mut fsm,
        t0,
        vec![Step(
            0,
            Event::TcpConnectionConfirmed,
            vec![Action::CloseConnection(Incoming)],
            State::Idle,
        )],
    );
}

/// RFC 4724: the capability goes in our OPEN with the R bit only until the first session
/// is Established; the peer's capability is negotiated for IPv4 unicast only, and only the
/// ends that keep routes (TCP gone, hold timer) keep them.
#[test]
fn graceful_restart_is_advertised_negotiated_and_the_r_bit_is_for_the_first_session_only() {
    let t0 = Instant::now();
    let cfg = PeerConfig {
        graceful_restart: Some(GracefulRestart {
            restart_time: 120,
            restarting: true,
            forwarding_preserved: true,
        }),
        ..config(false)
    };
    let ours = |r_bit: bool| {
        cfg.open()
            .graceful_restart()
            .map(|(r, time, families)| (r, time, families.to_vec()))
            == Some((
                r_bit,
                120,
                vec![GracefulRestartFamily {
                    afi: AFI_IPV4,
                    safi: SAFI_UNICAST,
                    forwarding_state: true,
                }],
            ))
    };
    assert!(ours(true));
    let family = |afi, f| GracefulRestartFamily {
        afi,
        safi: SAFI_UNICAST,
        forwarding_state: f,
    };
    let peer_gr = |families: Vec<GracefulRestartFamily>| {
        let mut open = peer_open(64512, 30, HIGH_ID);
        open.capabilities.push(Capability::GracefulRestart {
            restart_state: false,
            restart_time: 90,
            families,
        });
        open
    };
    let establish = |fsm: &mut PeerFsm, open: Open| -> Option<Negotiated> {
        fsm.handle(Event::ManualStart, t0);
        fsm.handle(Event::Tcp_CR_Acked, t0);
        fsm.handle(Event::BGPOpen(Outgoing, open), t0);
        fsm.handle(Event::KeepAliveMsg(Outgoing), t0)
            .into_iter()
            .find_map(|a| match a {
                Action::Established(n) => Some(n),
                _ => None,
            })
    };

    let mut fsm = PeerFsm::new(cfg.clone());
    let n = establish(&mut fsm, peer_gr(vec![family(AFI_IPV4, true)])).unwrap();
    assert_eq!(
        n.graceful_restart,
        Some(PeerRestart {
            restart_time: 90,
            forwarding_preserved: true
        })
    );
    // The next session's OPEN no longer says we restarted.
    let actions = fsm.handle(Event::TcpConnectionFails(Outgoing), t0);
    assert!(actions.contains(&Action::Down(DownReason::ConnectionFailed)));
    // A gracefully restarting peer is taken back without resting in Idle.
    assert_eq!(fsm.timers().idle_hold, Some(t0));
    let again = fsm.handle(Event::IdleHoldTimer_Expires, t0 + Duration::from_secs(10));
    assert_eq!(again, vec![Action::Connect]);
    let open = fsm
        .handle(Event::Tcp_CR_Acked, t0 + Duration::from_secs(10))
        .into_iter()
        .find_map(|a| match a {
            Action::SendOpen(_, open) => Some(open),
            _ => None,
        })
        .unwrap();
    assert_eq!(open.graceful_restart().map(|(r, _, _)| r), Some(false));

    // A peer listing only IPv6, or no capability, or us without it: nothing negotiated.
    let mut fsm = PeerFsm::new(cfg.clone());
    let n = establish(&mut fsm, peer_gr(vec![family(AFI_IPV6, true)])).unwrap();
    assert_eq!(n.graceful_restart, None);
    let mut fsm = PeerFsm::new(cfg.clone());
    let n = establish(&mut fsm, peer_open(64512, 30, HIGH_ID)).unwrap();
    assert_eq!(n.graceful_restart, None);
    // Without it, a lost session rests the idle hold, as after any error.
    fsm.handle(Event::TcpConnectionFails(Outgoing), t0);
    assert_eq!(fsm.timers().idle_hold, Some(t0 + cfg.idle_hold));
    let mut fsm = PeerFsm::new(config(false));
    assert_eq!(config(false).open().graceful_restart(), None);
    let n = establish(&mut fsm, peer_gr(vec![family(AFI_IPV4, true)])).unwrap();
    assert_eq!(n.graceful_restart, None);

    // Which ends keep the routes.
    assert!(DownReason::ConnectionFailed.keeps_routes());
    assert!(DownReason::HoldTimerExpired.keeps_routes());
    assert!(!DownReason::ManualStop.keeps_routes());
    let cease = Notification::cease(cease::ADMINISTRATIVE_SHUTDOWN);
    assert!(!DownReason::NotificationReceived(cease.clone()).keeps_routes());
    assert!(!DownReason::NotificationSent(cease).keeps_routes());
}

/// RFC 4486 section 4: too many prefixes closes an Established session with Cease / Maximum
/// Number of Prefixes Reached (AFI, SAFI and the bound as data), drops its routes, and the
/// peer rests for the prefix-limit idle hold, not the ordinary one, before starting again.
#[test]
fn prefix_limit_sends_cease_1_drops_routes_and_rests_longer_before_restarting() {
    let t0 = Instant::now();
    let cfg = PeerConfig {
        prefix_limit_idle_hold: Duration::from_secs(120),
        ..config(false)
    };
    let open = cfg.open();
    let mut fsm = PeerFsm::new(cfg);
    // Before Established there are no prefixes to count: nothing happens.
    replay(
        &mut fsm,
        t0,
        vec![
            Step(0, Event::ManualStart, vec![Action::Connect], State::Connect),
            Step(
                0,
                Event::PrefixLimitExceeded { limit: 10 },
                vec![],
                State::Connect,
            ),
            Step(
                0,
                Event::Tcp_CR_Acked,
                vec![Action::SendOpen(Outgoing, open)],
                State::OpenSent,
            ),
            Step(
                0,
                Event::BGPOpen(Outgoing, peer_open(64512, 9, HIGH_ID)),
                vec![Action::SendKeepalive(Outgoing)],
                State::OpenConfirm,
            ),
            Step(
                0,
                Event::KeepAliveMsg(Outgoing),
                vec![Action::Established(negotiated(9, HIGH_ID))],
                State::Established,
            ),
        ],
    );
    let cease_1 = Notification::new(
        error_code::CEASE,
        cease::MAXIMUM_NUMBER_OF_PREFIXES_REACHED,
        vec![0, 1, 1, 0, 0, 0x27, 0x10],
    );
    assert_eq!(bgp::fsm::prefix_limit_notification(10_000), cease_1);
    replay(
        &mut fsm,
        t0,
        vec![Step(
            1,
            Event::PrefixLimitExceeded { limit: 10_000 },
            vec![
                Action::SendNotification(Outgoing, cease_1.clone()),
                Action::CloseConnection(Outgoing),
                Action::Down(DownReason::NotificationSent(cease_1)),
            ],
            State::Idle,
        )],
    );
    assert_eq!(
        fsm.last_error().unwrap().to_string(),
        "Sent: Cease (6) / Maximum Number of Prefixes Reached (1)"
    );
    // Not at the ordinary idle hold (5 s), only after the prefix-limit one.
    assert_eq!(fsm.expired(t0 + Duration::from_secs(60)), None);
    assert_eq!(fsm.timers().idle_hold, Some(t0 + Duration::from_secs(121)));
    replay(
        &mut fsm,
        t0,
        vec![Step(
            121,
            Event::IdleHoldTimer_Expires,
            vec![Action::Connect],
            State::Connect,
        )],
    );
}
