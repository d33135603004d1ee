//! The speaker against real BGP daemons: BIRD 2 and GoBGP, each in a network namespace of
//! its own, our speaker in another, a veth pair between them. Needs root (CI runs as root);
//! namespaces carry the test name and our pid, daemons are killed by pid and namespaces
//! deleted by name when a test ends, pass or fail.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bgp::fsm::State;
use bgp::packet::Ipv4Prefix;
use bgp::rib::FibChange;
use bgp::speaker::{PeerSpec, Speaker, SpeakerConfig, SpeakerHandle};
use tokio::sync::mpsc::UnboundedReceiver;

const OUR_AS: u32 = 65001;
const OUR_ADDR: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
const DAEMON_ADDR: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 2);

fn prefix(s: &str) -> Ipv4Prefix {
    let (addr, len) = s.split_once('/').unwrap();
    Ipv4Prefix::containing(addr.parse().unwrap(), len.parse().unwrap()).unwrap()
}

fn run(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect("spawn");
    assert!(status.success(), "{args:?} failed");
}

/// Two namespaces joined by a veth pair, a daemon in the second, our speaker in the first.
struct Lab {
    ours: String,
    theirs: String,
    dir: PathBuf,
    daemon: Option<Child>,
    log: PathBuf,
}

impl Lab {
    fn new(test: &str) -> Lab {
        let pid = std::process::id();
        let ours = format!("bgpi-{test}-{pid}-a");
        let theirs = format!("bgpi-{test}-{pid}-b");
        let dir = std::env::temp_dir().join(format!("bgpi-{test}-{pid}"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("daemon.log");
        let lab = Lab {
            ours,
            theirs,
            dir,
            daemon: None,
            log,
        };
        // veth names are at most 15 characters: the test's initial and our pid.
        let tag = &test[..1];
        let (va, vb) = (format!("bi{tag}{pid}a"), format!("bi{tag}{pid}b"));
        run(&["ip", "netns", "add", &lab.ours]);
        run(&["ip", "netns", "add", &lab.theirs]);
        run(&[
            "ip",
            "link",
            "add",
            &va,
            "netns",
            &lab.ours,
            "type",
            "veth",
            "peer",
            "name",
            &vb,
            "netns",
            &lab.theirs,
        ]);
        for (ns, dev, addr) in [(&lab.ours, &va, OUR_ADDR), (&lab.theirs, &vb, DAEMON_ADDR)] {
            let cidr = format!("{addr}/24");
            run(&["ip", "-n", ns, "addr", "add", &cidr, "dev", dev]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        lab
    }

    /// Starts `args` in the daemon's namespace (`ip netns exec` execs it: the child's pid
    /// is the daemon's).
    fn start(&mut self, args: &[&str]) {
        let log = std::fs::File::create(&self.log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.theirs])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the daemon");
        self.daemon = Some(child);
    }

    /// Kills the daemon outright (SIGKILL: no NOTIFICATION, the kernel closes its sockets),
    /// as a crash or a restart would.
    fn kill_daemon(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
    }

    fn daemon_pid(&self) -> String {
        self.daemon.as_ref().expect("daemon").id().to_string()
    }

    /// Runs a client command in the daemon's namespace and returns its stdout.
    fn query(&mut self, args: &[&str]) -> String {
        if let Some(Ok(Some(status))) = self.daemon.as_mut().map(|d| d.try_wait()) {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("the daemon exited ({status}); log:\n{log}");
        }
        let out = Command::new("ip")
            .args(["netns", "exec", &self.theirs])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run the client");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts our speaker in our namespace: the runtime is built on a thread that moved into
    /// the namespace, so its worker threads and every socket they make live there.
    fn speaker(&self, hold_time: u16, peer_as: u32) -> Running {
        self.start_speaker(hold_time, peer_as, false, None)
    }

    /// Our speaker holding at most `max_prefixes` from the peer, resting `idle_hold` after
    /// closing a session for more.
    fn speaker_limited(&self, peer_as: u32, max_prefixes: u32, idle_hold: Duration) -> Running {
        self.start_speaker(9, peer_as, false, Some((max_prefixes, idle_hold)))
    }

    /// Our speaker again after a restart: it says so (R bit) and that its forwarding state
    /// survived (F bit), as brindle-node does.
    fn speaker_restarted(&self, peer_as: u32) -> Running {
        self.start_speaker(9, peer_as, true, None)
    }

    fn start_speaker(
        &self,
        hold_time: u16,
        peer_as: u32,
        restarted: bool,
        prefix_limit: Option<(u32, Duration)>,
    ) -> Running {
        let path = format!("/run/netns/{}", self.ours);
        let (runtime, handle) = std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("open netns");
            // SAFETY: setns on a valid namespace fd changes this thread's namespace only.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let mut config = SpeakerConfig::new(
                OUR_AS,
                OUR_ADDR,
                SocketAddr::from((OUR_ADDR, bgp::speaker::BGP_PORT)),
            );
            config.connect_retry = Duration::from_secs(2);
            config.idle_hold = Duration::from_secs(1);
            config.restarting = restarted;
            config.forwarding_preserved = restarted;
            if let Some((_, idle_hold)) = prefix_limit {
                config.prefix_limit_idle_hold = idle_hold;
            }
            let handle = runtime
                .block_on(Speaker::start(config))
                .expect("start the speaker");
            (runtime, handle)
        })
        .join()
        .expect("speaker thread");
        let mut peer = PeerSpec::new(DAEMON_ADDR, peer_as);
        peer.hold_time = hold_time;
        if let Some((max_prefixes, _)) = prefix_limit {
            peer.max_prefixes = Some(max_prefixes);
        }
        handle.add_peer(peer).unwrap();
        let fib = handle.fib_changes().expect("fib channel");
        Running {
            runtime,
            handle,
            fib,
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            // A frozen daemon must be thawed to die of SIGTERM; SIGKILL needs no thaw.
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        for ns in [&self.ours, &self.theirs] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Running {
    runtime: tokio::runtime::Runtime,
    handle: SpeakerHandle,
    fib: UnboundedReceiver<FibChange>,
}

impl Running {
    fn peer_state(&self) -> Option<State> {
        self.handle.status().first().map(|s| s.state)
    }

    /// Waits until the first peer's (routes received, routes stale) are `counts`.
    fn wait_for_counts(&self, counts: (u64, u64)) {
        let now = || {
            let status = self.handle.status();
            status.first().map(|s| (s.routes_received, s.routes_stale))
        };
        assert!(
            wait_for(Duration::from_secs(5), || now() == Some(counts)),
            "routes (received, stale) are {:?}, not {counts:?}: {:?}",
            now(),
            self.handle.status()
        );
    }

    /// Waits until every prefix of `prefixes` has been installed, in any order.
    fn fib_installs(&mut self, prefixes: &[Ipv4Prefix], within: Duration) {
        let deadline = Instant::now() + within;
        let mut missing = prefixes.to_vec();
        while !missing.is_empty() {
            let change = self.next_fib_change(deadline, &format!("install of {missing:?}"));
            if change.next_hop.is_some() {
                missing.retain(|p| *p != change.prefix);
            }
        }
    }

    /// Waits for the FIB change of `p`, skipping others.
    fn fib_change(&mut self, p: Ipv4Prefix, within: Duration) -> FibChange {
        let deadline = Instant::now() + within;
        loop {
            let change = self.next_fib_change(deadline, &format!("change of {p:?}"));
            if change.prefix == p {
                return change;
            }
        }
    }

    fn next_fib_change(&mut self, deadline: Instant, awaited: &str) -> FibChange {
        let left = deadline.saturating_duration_since(Instant::now());
        let fib = &mut self.fib;
        // The timer must be made inside the runtime.
        let got = self
            .runtime
            .block_on(async { tokio::time::timeout(left, fib.recv()).await });
        match got {
            Ok(Some(change)) => change,
            Ok(None) => panic!("the speaker's FIB channel closed"),
            Err(_) => panic!("no FIB {awaited} in time"),
        }
    }
}

/// Polls `cond` every 100 ms until it holds or `within` passes.
fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// --- BIRD 2 ---------------------------------------------------------------------------------

const BIRD_AS: u32 = 65002;

fn start_bird(lab: &mut Lab) -> String {
    start_bird_with(lab, &["10.77.1.0/24"], "", &[])
}

/// BIRD announcing `routes`, with `bgp_options` in its BGP protocol and `args` on its
/// command line.
fn start_bird_with(lab: &mut Lab, routes: &[&str], bgp_options: &str, args: &[&str]) -> String {
    let conf = lab.dir.join("bird.conf");
    let sock = lab.dir.join("bird.ctl").display().to_string();
    let routes: String = routes
        .iter()
        .map(|r| format!("    route {r} blackhole;\n"))
        .collect();
    std::fs::write(
        &conf,
        format!(
            "log \"{}\" all;
router id {DAEMON_ADDR};
protocol device {{ }}
protocol static announced {{
    ipv4;
{routes}}}
protocol bgp brindle {{
    local {DAEMON_ADDR} as {BIRD_AS};
    {bgp_options}
    neighbor {OUR_ADDR} as {OUR_AS};
    hold time 9;
    connect delay time 1;
    connect retry time 2;
    error wait time 1, 2;
    ipv4 {{
        import all;
        export where source = RTS_STATIC;
    }};
}}
",
            lab.dir.join("bird.log").display()
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    let mut command = vec!["bird", "-f", "-c", &conf, "-s", &sock];
    command.extend_from_slice(args);
    lab.start(&command);
    sock
}

fn bird_established(lab: &mut Lab, sock: &str) -> bool {
    lab.query(&["birdc", "-s", sock, "show", "protocols", "brindle"])
        .lines()
        .any(|l| l.starts_with("brindle") && l.contains("Established"))
}

/// Session up on both sides, routes both ways with the right attributes, withdrawals both
/// ways.
#[test]
fn bird2_session_routes_and_withdrawals_flow_both_ways() {
    let mut lab = Lab::new("rt");
    let sock = start_bird(&mut lab);
    let mut us = lab.speaker(9, BIRD_AS);

    assert!(
        wait_for(Duration::from_secs(15), || us.peer_state()
            == Some(State::Established)),
        "our session did not reach Established: {:?}",
        us.handle.status()
    );
    assert!(
        wait_for(Duration::from_secs(5), || bird_established(&mut lab, &sock)),
        "BIRD does not show the session Established"
    );
    let status = &us.handle.status()[0];
    assert_eq!((status.address, status.asn), (DAEMON_ADDR, BIRD_AS));
    assert_eq!(status.state.to_string(), "Established");

    // BIRD's static route reaches our FIB with BIRD as the next hop.
    let theirs = prefix("10.77.1.0/24");
    let change = us.fib_change(theirs, Duration::from_secs(10));
    assert_eq!(change.next_hop, Some(DAEMON_ADDR));
    us.wait_for_counts((1, 0));

    // Our prefix reaches BIRD with our next hop and our AS path.
    let ours = prefix("10.88.0.0/24");
    us.handle.originate(ours).unwrap();
    let mut shown = String::new();
    assert!(
        wait_for(Duration::from_secs(10), || {
            shown = lab.query(&["birdc", "-s", &sock, "show", "route", "10.88.0.0/24", "all"]);
            shown.contains("10.88.0.0/24")
        }),
        "BIRD did not learn our prefix"
    );
    assert!(
        shown.contains(&format!("BGP.next_hop: {OUR_ADDR}")),
        "next hop: {shown}"
    );
    assert!(
        shown.contains(&format!("BGP.as_path: {OUR_AS}\n")),
        "AS path: {shown}"
    );

    // Our withdrawal leaves BIRD's table.
    us.handle.withdraw(ours).unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || !lab
            .query(&["birdc", "-s", &sock, "show", "route", "10.88.0.0/24"])
            .contains("10.88.0.0/24")),
        "BIRD kept our withdrawn prefix"
    );

    // BIRD's withdrawal leaves our FIB.
    lab.query(&["birdc", "-s", &sock, "disable", "announced"]);
    let change = us.fib_change(theirs, Duration::from_secs(10));
    assert_eq!(change.next_hop, None);
    us.wait_for_counts((0, 0));

    // BIRD closes the session with a NOTIFICATION (Cease / Administrative Shutdown): we
    // leave Established and say why.
    lab.query(&["birdc", "-s", &sock, "disable", "brindle"]);
    assert!(
        wait_for(Duration::from_secs(5), || us.peer_state()
            != Some(State::Established)),
        "the session survived the peer's NOTIFICATION"
    );
    let error = us.handle.status()[0].last_error.clone().unwrap_or_default();
    assert!(
        error.starts_with("Received: Cease (6) / Administrative Shutdown"),
        "last error: {error}"
    );
}

/// BIRD frozen with SIGSTOP: our Hold Timer (9 s) drops the session; after SIGCONT it comes
/// back.
#[test]
fn bird2_frozen_peer_dropped_at_hold_timer_and_reestablished() {
    let mut lab = Lab::new("hold");
    let sock = start_bird(&mut lab);
    let us = lab.speaker(9, BIRD_AS);
    assert!(
        wait_for(Duration::from_secs(15), || us.peer_state()
            == Some(State::Established)),
        "our session did not reach Established: {:?}",
        us.handle.status()
    );
    assert!(wait_for(Duration::from_secs(5), || bird_established(
        &mut lab, &sock
    )));

    let pid = lab.daemon_pid();
    run(&["kill", "-STOP", &pid]);
    let frozen = Instant::now();
    let dropped = wait_for(Duration::from_secs(12), || {
        us.peer_state() != Some(State::Established)
    });
    let after = frozen.elapsed();
    let status = us.handle.status()[0].clone();
    run(&["kill", "-CONT", &pid]);
    assert!(dropped, "the session outlived the hold time: {status:?}");
    // The last KEEPALIVE came at most a keepalive interval (3 s) before the freeze.
    assert!(
        after >= Duration::from_secs(5),
        "dropped too early: {after:?}"
    );
    assert_eq!(status.last_error.as_deref(), Some("Hold timer expired"));
    assert_ne!(status.state, State::Established);

    assert!(
        wait_for(Duration::from_secs(15), || us.peer_state()
            == Some(State::Established)),
        "the session did not come back after SIGCONT: {:?}",
        us.handle.status()
    );
    assert!(wait_for(Duration::from_secs(5), || bird_established(
        &mut lab, &sock
    )));
}

/// A peer announcing far more prefixes than allowed (RFC 4486 section 4): BIRD announces
/// 3000, we allow 1000. The session is closed with Cease / Maximum Number of Prefixes
/// Reached, which BIRD reports; what we held never exceeds the limit by more than one
/// UPDATE's worth and is all dropped; and the session does not come back before the
/// prefix-limit idle hold (BIRD itself reconnects after a second or two, and is refused).
#[test]
fn bird2_announcing_more_prefixes_than_allowed_is_ceased_and_held_off() {
    const LIMIT: u32 = 1000;
    const ANNOUNCED: u32 = 3000;
    const IDLE_HOLD: Duration = Duration::from_secs(12);
    let mut lab = Lab::new("maxpfx");
    let routes: Vec<String> = (0..ANNOUNCED)
        .map(|i| format!("10.90.{}.{}/32", i / 256, i % 256))
        .collect();
    let routes: Vec<&str> = routes.iter().map(String::as_str).collect();
    let _sock = start_bird_with(&mut lab, &routes, "", &[]);
    let mut us = lab.speaker_limited(BIRD_AS, LIMIT, IDLE_HOLD);

    // Watch the count we hold while the session comes up and is closed (both may happen
    // between two looks).
    let mut most_held = 0;
    let closed = wait_for(Duration::from_secs(30), || {
        let Some(status) = us.handle.status().first().cloned() else {
            return false;
        };
        most_held = most_held.max(status.routes_received);
        status.state == State::Idle
            && status
                .last_error
                .is_some_and(|e| e.contains("Maximum Number of Prefixes"))
    });
    let status = us.handle.status()[0].clone();
    assert!(closed, "the session was not closed: {status:?}");
    assert_eq!(
        status.last_error.as_deref(),
        Some("Sent: Cease (6) / Maximum Number of Prefixes Reached (1)"),
        "{status:?}"
    );
    // The FIB saw every install and removal in order: replayed, they give the most routes
    // ever held at once. One UPDATE of /32s carries at most (4096 - 23 - attributes) / 5 <
    // 820 prefixes, so the limit is overshot by less than that.
    let mut installed = std::collections::HashSet::new();
    let mut peak = 0;
    for change in drain(&mut us.fib) {
        if change.next_hop.is_some() {
            installed.insert(change.prefix);
        } else {
            installed.remove(&change.prefix);
        }
        peak = peak.max(installed.len());
    }
    let peak = peak.max(most_held as usize);
    assert!(
        peak > LIMIT as usize && peak <= LIMIT as usize + 820,
        "held at most {peak} prefixes with a limit of {LIMIT}"
    );
    assert!(
        installed.is_empty(),
        "{} routes left in the FIB",
        installed.len()
    );
    assert!(
        wait_for(Duration::from_secs(5), || us.handle.status()[0]
            .routes_received
            == 0),
        "the peer's routes were not dropped: {:?}",
        us.handle.status()
    );
    // BIRD's log, not `show protocols`: BIRD reconnects within a second or two, and that
    // refused connection becomes its "last error".
    let bird_log = lab.dir.join("bird.log");
    let mut log = String::new();
    let told = wait_for(Duration::from_secs(5), || {
        log = std::fs::read_to_string(&bird_log).unwrap_or_default();
        log.contains("Received: Maximum number of prefixes reached")
    });
    assert!(told, "BIRD did not get our NOTIFICATION:\n{log}");

    // Held off: not Established again before the idle hold, though BIRD keeps trying.
    let idle_since = status.since.expect("a state change time");
    let back = wait_for(IDLE_HOLD - Duration::from_secs(2), || {
        us.peer_state() == Some(State::Established)
    });
    assert!(
        !back,
        "re-established during the idle hold: {:?}",
        us.handle.status()
    );
    // Then it starts again by itself (and is closed again for the same reason): the next
    // state change comes after the idle hold, not before.
    let moved_on = |s: &bgp::speaker::PeerStatus| {
        s.since.is_some_and(|t| {
            t.duration_since(idle_since)
                .is_ok_and(|d| d > Duration::from_secs(1))
        })
    };
    let restarted = wait_for(IDLE_HOLD + Duration::from_secs(15), || {
        moved_on(&us.handle.status()[0])
    });
    let status = us.handle.status()[0].clone();
    assert!(restarted, "the session never started again: {status:?}");
    let rested = status.since.unwrap().duration_since(idle_since).unwrap();
    assert!(
        rested >= IDLE_HOLD - Duration::from_secs(1),
        "started again after {rested:?}, before the idle hold of {IDLE_HOLD:?}"
    );
}

/// The FIB changes that have arrived, without waiting.
fn drain(fib: &mut UnboundedReceiver<FibChange>) -> Vec<FibChange> {
    std::iter::from_fn(|| fib.try_recv().ok()).collect()
}

fn bird_has_route(lab: &mut Lab, sock: &str, route: &str) -> bool {
    lab.query(&["birdc", "-s", sock, "show", "route", route])
        .contains(route)
}

/// Graceful Restart as Calico's BIRD configuration has it (`graceful restart`).
const BIRD_GRACEFUL: &str = "graceful restart on;\n    graceful restart time 60;";

/// We restart (BIRD helps): see [`we_restart_and_the_peer_keeps_our_routes`].
#[test]
fn bird2_keeps_our_routes_while_we_restart_and_drops_only_what_we_did_not_send_again() {
    let mut lab = Lab::new("grus");
    let sock = start_bird_with(&mut lab, &["10.77.1.0/24"], BIRD_GRACEFUL, &[]);
    let helper = Helper {
        name: "BIRD",
        asn: BIRD_AS,
        has_route: &|lab, route| bird_has_route(lab, &sock, route),
        established: &|lab| bird_established(lab, &sock),
        table: &|lab| lab.query(&["birdc", "-s", &sock, "show", "route"]),
    };
    we_restart_and_the_peer_keeps_our_routes(&mut lab, &helper);
}

/// BIRD restarts (we help): killed, then back with `-R` (graceful restart recovery) and one
/// route fewer; see [`the_peer_restarts_and_we_keep_its_routes`].
#[test]
fn bird2_restarting_keeps_its_routes_with_us_until_its_end_of_rib() {
    let mut lab = Lab::new("grthem");
    let (kept, dropped) = (prefix("10.77.1.0/24"), prefix("10.77.2.0/24"));
    start_bird_with(
        &mut lab,
        &["10.77.1.0/24", "10.77.2.0/24"],
        BIRD_GRACEFUL,
        &[],
    );
    let mut us = lab.speaker(9, BIRD_AS);
    the_peer_restarts_and_we_keep_its_routes(&mut lab, &mut us, kept, dropped, |lab| {
        start_bird_with(lab, &["10.77.1.0/24"], BIRD_GRACEFUL, &["-R"]);
    });
}

/// A peer doing Graceful Restart, seen through its own tools.
struct Helper<'a> {
    name: &'static str,
    asn: u32,
    has_route: &'a dyn Fn(&mut Lab, &str) -> bool,
    established: &'a dyn Fn(&mut Lab) -> bool,
    table: &'a dyn Fn(&mut Lab) -> String,
}

/// We restart and `peer` helps: closing without a NOTIFICATION, the peer keeps our routes
/// while we are away; the restarted speaker sends what it still has and its End-of-RIB, and
/// the peer then drops only the route we no longer announce.
fn we_restart_and_the_peer_keeps_our_routes(lab: &mut Lab, peer: &Helper) {
    let name = peer.name;
    let us = lab.speaker(9, peer.asn);
    let (kept, dropped) = ("10.88.0.0/24", "10.88.1.0/24");
    us.handle.originate(prefix(kept)).unwrap();
    us.handle.originate(prefix(dropped)).unwrap();
    let both = |lab: &mut Lab| (peer.has_route)(lab, kept) && (peer.has_route)(lab, dropped);
    assert!(
        wait_for(Duration::from_secs(20), || both(lab)),
        "{name} did not learn our prefixes: {:?}",
        us.handle.status()
    );

    // Stop for a restart: the session ends, the routes stay.
    us.handle.stop_for_restart();
    assert!(
        wait_for(Duration::from_secs(5), || !(peer.established)(lab)),
        "{name} still shows the session established"
    );
    drop(us);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        both(lab),
        "{name} dropped our routes when the session went: {}",
        (peer.table)(lab)
    );

    // Back, announcing one of the two: the peer keeps it throughout and sweeps the other
    // after our End-of-RIB.
    let back = lab.speaker_restarted(peer.asn);
    back.handle.originate(prefix(kept)).unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || {
            assert!(
                (peer.has_route)(lab, kept),
                "{name} lost {kept} during the restart"
            );
            back.peer_state() == Some(State::Established) && !(peer.has_route)(lab, dropped)
        }),
        "{name} kept {dropped} after our End-of-RIB: {}",
        (peer.table)(lab)
    );
}

/// The peer restarts and we help: killed, its two routes stay in our FIB, counted stale;
/// `restart` brings it back with `kept` only, and its End-of-RIB sweeps `dropped` alone.
fn the_peer_restarts_and_we_keep_its_routes(
    lab: &mut Lab,
    us: &mut Running,
    kept: Ipv4Prefix,
    dropped: Ipv4Prefix,
    restart: impl FnOnce(&mut Lab),
) {
    // The speaker tells the FIB first and then counts, so each is awaited on its own.
    us.fib_installs(&[kept, dropped], Duration::from_secs(20));
    us.wait_for_counts((2, 0));

    lab.kill_daemon();
    assert!(
        wait_for(Duration::from_secs(5), || us.peer_state()
            != Some(State::Established)),
        "the session outlived the killed peer"
    );
    us.wait_for_counts((2, 2));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        drain(&mut us.fib),
        vec![],
        "the FIB changed while the peer was away"
    );

    restart(lab);
    let change = us.fib_change(dropped, Duration::from_secs(30));
    assert_eq!(change.next_hop, None);
    assert!(
        drain(&mut us.fib).iter().all(|c| c.prefix != kept),
        "{kept:?} changed across the restart"
    );
    us.wait_for_counts((1, 0));
}

// --- GoBGP ----------------------------------------------------------------------------------

const GOBGP_AS: u32 = 65003;

fn gobgp(lab: &mut Lab, args: &[&str]) -> String {
    let mut full = vec!["gobgp", "-u", "127.0.0.1", "-p", "50051"];
    full.extend_from_slice(args);
    lab.query(&full)
}

/// How GoBGP is started.
#[derive(Clone, Copy, Default)]
struct GoBgp {
    /// Graceful Restart on for IPv4 unicast.
    graceful: bool,
    /// The neighbor starts disabled (`gobgp neighbor ADDR enable` brings it up).
    admin_down: bool,
    /// `--graceful-restart`: the R bit, as after a restart.
    restarting: bool,
}

fn start_gobgp(lab: &mut Lab, how: GoBgp) {
    let conf = lab.dir.join("gobgpd.toml");
    let graceful = if how.graceful {
        "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = 60\n"
    } else {
        ""
    };
    let family_graceful = if how.graceful {
        "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true\n"
    } else {
        ""
    };
    let admin_down = if how.admin_down {
        "    admin-down = true\n"
    } else {
        ""
    };
    std::fs::write(
        &conf,
        format!(
            r#"[global.config]
  as = {GOBGP_AS}
  router-id = "{DAEMON_ADDR}"
[global.apply-policy.config]
  default-import-policy = "accept-route"
  default-export-policy = "accept-route"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{OUR_ADDR}"
    peer-as = {OUR_AS}
{admin_down}{graceful}  [neighbors.transport.config]
    local-address = "{DAEMON_ADDR}"
  [neighbors.timers.config]
    connect-retry = 2
    hold-time = 9
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
{family_graceful}"#
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    let mut command = vec!["gobgpd", "-f", &conf, "--api-hosts", "127.0.0.1:50051"];
    if how.restarting {
        command.push("--graceful-restart");
    }
    lab.start(&command);
}

fn gobgp_has_route(lab: &mut Lab, route: &str) -> bool {
    gobgp(lab, &["global", "rib", "-a", "ipv4", route]).contains(route)
}

fn gobgp_established(lab: &mut Lab) -> bool {
    gobgp(lab, &["neighbor", &OUR_ADDR.to_string()]).contains("BGP state = ESTABLISHED")
}

/// Waits for GoBGP's API, then adds `route` to its global RIB.
fn gobgp_add_route(lab: &mut Lab, route: &str) {
    let mut added = String::new();
    let ok = wait_for(Duration::from_secs(10), || {
        added = gobgp(lab, &["global", "rib", "add", route, "-a", "ipv4"]);
        added.is_empty() && gobgp_has_route(lab, route)
    });
    assert!(ok, "gobgp rib add {route}: {added}");
}

/// Session up on both sides and one route each way.
#[test]
fn gobgp_session_and_one_route_each_way() {
    let mut lab = Lab::new("gobgp");
    start_gobgp(&mut lab, GoBgp::default());
    let mut us = lab.speaker(9, GOBGP_AS);

    assert!(
        wait_for(Duration::from_secs(20), || us.peer_state()
            == Some(State::Established)),
        "our session did not reach Established: {:?}",
        us.handle.status()
    );
    let neighbor = OUR_ADDR.to_string();
    let mut shown = String::new();
    assert!(
        wait_for(Duration::from_secs(5), || {
            shown = gobgp(&mut lab, &["neighbor", &neighbor]);
            shown.contains("BGP state = ESTABLISHED")
        }),
        "GoBGP does not show the session established: {shown}"
    );

    // GoBGP's route reaches our FIB.
    let theirs = prefix("10.66.1.0/24");
    let added = gobgp(
        &mut lab,
        &["global", "rib", "add", "10.66.1.0/24", "-a", "ipv4"],
    );
    assert!(!added.contains("rror"), "gobgp rib add: {added}");
    let change = us.fib_change(theirs, Duration::from_secs(10));
    assert_eq!(change.next_hop, Some(DAEMON_ADDR));

    // Our route reaches GoBGP with our next hop and AS path.
    us.handle.originate(prefix("10.88.0.0/24")).unwrap();
    let mut shown = String::new();
    assert!(
        wait_for(Duration::from_secs(10), || {
            shown = gobgp(&mut lab, &["global", "rib", "-a", "ipv4", "10.88.0.0/24"]);
            shown.contains("10.88.0.0/24")
        }),
        "GoBGP did not learn our prefix"
    );
    let line = shown
        .lines()
        .find(|l| l.contains("10.88.0.0/24"))
        .unwrap()
        .to_string();
    assert!(line.contains(&OUR_ADDR.to_string()), "next hop: {line}");
    assert!(line.contains(&OUR_AS.to_string()), "AS path: {line}");
}

/// We restart (GoBGP helps): see [`we_restart_and_the_peer_keeps_our_routes`].
#[test]
fn gobgp_keeps_our_routes_while_we_restart_and_drops_only_what_we_did_not_send_again() {
    let mut lab = Lab::new("ggus");
    start_gobgp(
        &mut lab,
        GoBgp {
            graceful: true,
            ..GoBgp::default()
        },
    );
    let helper = Helper {
        name: "GoBGP",
        asn: GOBGP_AS,
        has_route: &gobgp_has_route,
        established: &gobgp_established,
        table: &|lab| gobgp(lab, &["global", "rib", "-a", "ipv4"]),
    };
    we_restart_and_the_peer_keeps_our_routes(&mut lab, &helper);
}

/// GoBGP restarts (we help): killed, then back with `--graceful-restart` and one route
/// fewer; see [`the_peer_restarts_and_we_keep_its_routes`].
#[test]
fn gobgp_restarting_keeps_its_routes_with_us_until_its_end_of_rib() {
    let mut lab = Lab::new("ggthem");
    let (kept, dropped) = (prefix("10.66.1.0/24"), prefix("10.66.2.0/24"));
    // The neighbour is enabled once the routes are in GoBGP's table, so the first UPDATEs
    // after a restart carry them (routes come over its API, not from its file).
    let graceful = GoBgp {
        graceful: true,
        admin_down: true,
        ..GoBgp::default()
    };
    let neighbor = OUR_ADDR.to_string();
    start_gobgp(&mut lab, graceful);
    gobgp_add_route(&mut lab, "10.66.1.0/24");
    gobgp_add_route(&mut lab, "10.66.2.0/24");
    gobgp(&mut lab, &["neighbor", &neighbor, "enable"]);
    let mut us = lab.speaker(9, GOBGP_AS);
    the_peer_restarts_and_we_keep_its_routes(&mut lab, &mut us, kept, dropped, |lab| {
        let restarting = GoBgp {
            restarting: true,
            ..graceful
        };
        start_gobgp(lab, restarting);
        gobgp_add_route(lab, "10.66.1.0/24");
        gobgp(lab, &["neighbor", &neighbor, "enable"]);
    });
}
