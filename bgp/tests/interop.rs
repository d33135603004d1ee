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
            let handle = runtime
                .block_on(Speaker::start(config))
                .expect("start the speaker");
            (runtime, handle)
        })
        .join()
        .expect("speaker thread");
        let mut peer = PeerSpec::new(DAEMON_ADDR, peer_as);
        peer.hold_time = hold_time;
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

    /// Waits for the FIB change of `p`, skipping others.
    fn fib_change(&mut self, p: Ipv4Prefix, within: Duration) -> FibChange {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let fib = &mut self.fib;
            // The timer must be made inside the runtime.
            let got = self
                .runtime
                .block_on(async { tokio::time::timeout(left, fib.recv()).await });
            match got {
                Ok(Some(change)) if change.prefix == p => return change,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the speaker's FIB channel closed"),
                Err(_) => panic!("no FIB change for {p:?} within {within:?}"),
            }
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
    let conf = lab.dir.join("bird.conf");
    let sock = lab.dir.join("bird.ctl").display().to_string();
    std::fs::write(
        &conf,
        format!(
            "log \"{}\" all;
router id {DAEMON_ADDR};
protocol device {{ }}
protocol static announced {{
    ipv4;
    route 10.77.1.0/24 blackhole;
}}
protocol bgp brindle {{
    local {DAEMON_ADDR} as {BIRD_AS};
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
    lab.start(&["bird", "-f", "-c", &conf, "-s", &sock]);
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
    assert!(wait_for(Duration::from_secs(2), || us.handle.status()[0]
        .routes_received
        == 1));

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
    assert_eq!(us.handle.status()[0].routes_received, 0);

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

// --- GoBGP ----------------------------------------------------------------------------------

const GOBGP_AS: u32 = 65003;

fn gobgp(lab: &mut Lab, args: &[&str]) -> String {
    let mut full = vec!["gobgp", "-u", "127.0.0.1", "-p", "50051"];
    full.extend_from_slice(args);
    lab.query(&full)
}

/// Session up on both sides and one route each way.
#[test]
fn gobgp_session_and_one_route_each_way() {
    let mut lab = Lab::new("gobgp");
    let conf = lab.dir.join("gobgpd.toml");
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
  [neighbors.transport.config]
    local-address = "{DAEMON_ADDR}"
  [neighbors.timers.config]
    connect-retry = 2
    hold-time = 9
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    lab.start(&["gobgpd", "-f", &conf, "--api-hosts", "127.0.0.1:50051"]);
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
