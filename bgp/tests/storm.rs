//! Peers that misbehave (issue 14's fault list), with another peer's session and route
//! watched throughout:
//! - a hostile peer connects, opens and closes with a NOTIFICATION as fast as it can: the
//!   speaker rests in Idle between its sessions (RFC 4271 section 8.1.1, IdleHoldTimer), so it
//!   takes only a handful of them;
//! - a peer whose configuration flaps (its session torn down and set up again and again):
//!   once it stops, the session and its route come back.
//!
//! Our own speakers on loopback addresses and a python peer speaking raw BGP; no root needed.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bgp::fsm::State;
use bgp::packet::Ipv4Prefix;
use bgp::rib::FibChange;
use bgp::speaker::{PeerSpec, Speaker, SpeakerConfig, SpeakerHandle};
use tokio::sync::mpsc::UnboundedReceiver;

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const HOSTILE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const C: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
const STORM: Duration = Duration::from_secs(8);

/// Connects from argv[1] to argv[2]:argv[3] for argv[4] seconds: each time an OPEN (AS
/// 64999), then a Cease NOTIFICATION once the speaker's OPEN came (or at once if it did not),
/// then close. Prints how many sessions reached the speaker's OPEN.
const HOSTILE_PEER: &str = r#"
import socket, struct, sys, time
src, dst, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def msg(kind, body):
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), kind) + body
open_msg = msg(1, struct.pack("!BHH4sB", 4, 64999, 90, socket.inet_aton(src), 0))
cease = msg(3, bytes([6, 2]))
opened = attempts = 0
end = time.time() + seconds
while time.time() < end:
    attempts += 1
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(0.2)
    try:
        s.connect((dst, port))
        s.sendall(open_msg)
        try:
            head = s.recv(19)
            if len(head) == 19 and head[18] == 1:
                opened += 1
        except socket.timeout:
            pass
        s.sendall(cease)
    except OSError:
        pass
    finally:
        s.close()
print(attempts, opened)
"#;

fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn speaker(runtime: &tokio::runtime::Runtime, asn: u32, ip: Ipv4Addr, port: u16) -> SpeakerHandle {
    let config = SpeakerConfig::new(asn, ip, SocketAddr::from((ip, port)));
    runtime.block_on(Speaker::start(config)).unwrap()
}

/// `from` peers with the speaker at `to`:`port` (AS `asn`), actively or not.
fn peer_with(from: &SpeakerHandle, to: Ipv4Addr, asn: u32, port: u16, passive: bool) {
    let mut spec = PeerSpec::new(to, asn);
    spec.port = port;
    spec.passive = passive;
    from.add_peer(spec).unwrap();
}

fn state_of(handle: &SpeakerHandle, peer: Ipv4Addr) -> Option<State> {
    handle
        .status()
        .into_iter()
        .find(|s| s.address == peer)
        .map(|s| s.state)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits (at most `within`) for `route` to be installed in the FIB `fib` reports to; the
/// changes seen until then, that one last, or `None` if it was not.
fn installed(
    runtime: &tokio::runtime::Runtime,
    fib: &mut UnboundedReceiver<FibChange>,
    route: Ipv4Prefix,
    within: Duration,
) -> Option<Vec<FibChange>> {
    let mut seen = Vec::new();
    let found = runtime.block_on(async {
        tokio::time::timeout(within, async {
            while let Some(change) = fib.recv().await {
                seen.push(change);
                if change.prefix == route && change.next_hop.is_some() {
                    return true;
                }
            }
            false
        })
        .await
            == Ok(true)
    });
    found.then_some(seen)
}

#[test]
fn a_notification_storm_is_rested_off_and_another_peers_session_and_routes_stay() {
    let runtime = runtime();
    let (port_a, port_b) = (free_port(A), free_port(B));
    let a = speaker(&runtime, 65001, A, port_a);
    let b = speaker(&runtime, 65002, B, port_b);
    peer_with(&a, B, 65002, port_b, false);
    peer_with(&b, A, 65001, port_a, true);
    let mut hostile = PeerSpec::new(HOSTILE, 64999);
    hostile.passive = true;
    a.add_peer(hostile).unwrap();
    let mut fib = a.fib_changes().unwrap();
    let route: Ipv4Prefix = "10.1.0.0/24".parse().unwrap();
    b.originate(route).unwrap();
    assert!(
        installed(&runtime, &mut fib, route, Duration::from_secs(20)).is_some(),
        "A learned B's route: {:?}",
        a.status()
    );

    let storm = Command::new("python3")
        .args(["-c", HOSTILE_PEER])
        .args([&HOSTILE.to_string(), &A.to_string(), &port_a.to_string()])
        .arg(STORM.as_secs().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let started = Instant::now();
    while started.elapsed() < STORM {
        assert_eq!(
            state_of(&a, B),
            Some(State::Established),
            "B's session during the storm: {:?}",
            a.status()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = storm.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let counts: Vec<u64> = text
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    let [attempts, opened] = counts[..] else {
        panic!("the hostile peer printed {text:?}");
    };
    // Idle for DEFAULT_IDLE_HOLD (5 s) after each NOTIFICATION: over 8 s, a few sessions.
    assert!(attempts > 20, "the storm made only {attempts} attempts");
    assert!(
        (1..=4).contains(&opened),
        "{opened} of {attempts} hostile sessions reached our OPEN"
    );
    assert!(
        std::iter::from_fn(|| fib.try_recv().ok()).all(|c| c.prefix != route),
        "B's route changed during the storm"
    );
    assert_eq!(state_of(&a, B), Some(State::Established));
}

#[test]
fn a_flapping_peer_comes_back_once_it_stops_and_another_peers_route_never_moves() {
    let runtime = runtime();
    let (port_a, port_b, port_c) = (free_port(A), free_port(B), free_port(C));
    let a = speaker(&runtime, 65001, A, port_a);
    let b = speaker(&runtime, 65002, B, port_b);
    let c = speaker(&runtime, 65003, C, port_c);
    peer_with(&a, B, 65002, port_b, false);
    peer_with(&a, C, 65003, port_c, false);
    peer_with(&b, A, 65001, port_a, true);
    peer_with(&c, A, 65001, port_a, true);
    let mut fib = a.fib_changes().unwrap();
    let (from_b, from_c): (Ipv4Prefix, Ipv4Prefix) = (
        "10.2.0.0/24".parse().unwrap(),
        "10.3.0.0/24".parse().unwrap(),
    );
    b.originate(from_b).unwrap();
    c.originate(from_c).unwrap();
    // Either route may be installed first: the wait for B's sees C's if it came before.
    let seen = installed(&runtime, &mut fib, from_b, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("A learned {from_b:?}: {:?}", a.status()));
    if !seen
        .iter()
        .any(|change| change.prefix == from_c && change.next_hop.is_some())
    {
        assert!(
            installed(&runtime, &mut fib, from_c, Duration::from_secs(20)).is_some(),
            "A learned {from_c:?}: {:?}",
            a.status()
        );
    }

    // B's side of the session is torn down and set up again, twenty times in four seconds.
    for _ in 0..20 {
        b.remove_peer(A).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        peer_with(&b, A, 65001, port_a, true);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            state_of(&a, C),
            Some(State::Established),
            "{:?}",
            a.status()
        );
    }
    // Quiet again: within the idle hold and a connect retry, B's session and route are back,
    // and C's route did not move meanwhile.
    let changes = installed(&runtime, &mut fib, from_b, Duration::from_secs(30));
    let changes =
        changes.unwrap_or_else(|| panic!("B's route after the flapping: {:?}", a.status()));
    assert!(
        changes.iter().all(|change| change.prefix != from_c),
        "C's route moved while B flapped: {changes:?}"
    );
    assert!(
        changes
            .iter()
            .any(|change| change.prefix == from_b && change.next_hop.is_none()),
        "B's route never went while it flapped: {changes:?}"
    );
    assert_eq!(state_of(&a, B), Some(State::Established));
}
