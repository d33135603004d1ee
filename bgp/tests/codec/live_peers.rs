//! Live peers, BIRD 2 and GoBGP, each started by its test in a network namespace of its
//! own, talk to a raw TCP listener: their OPEN, KEEPALIVEs and UPDATEs decode into what
//! their configuration says.

use super::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const OUR_AS: u16 = 65001;

/// The namespace, the daemon and the scratch directory a test made, removed by name and
/// pid when it ends, pass or fail.
struct Lab {
    netns: String,
    dir: PathBuf,
    daemon: Option<Child>,
    log: PathBuf,
}

impl Lab {
    fn new(test: &str) -> Lab {
        let netns = format!("bgpcodec-{test}-{}", std::process::id());
        let dir = std::env::temp_dir().join(&netns);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("daemon.log");
        let lab = Lab {
            netns,
            dir,
            daemon: None,
            log,
        };
        run(&["ip", "netns", "add", &lab.netns]);
        run(&[
            "ip", "netns", "exec", &lab.netns, "ip", "link", "set", "lo", "up",
        ]);
        lab
    }

    /// Starts `args` inside the namespace, its output in the lab's log.
    fn start(&mut self, args: &[&str]) {
        let log = std::fs::File::create(&self.log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the daemon");
        self.daemon = Some(child);
    }

    /// Panics with the daemon's log if it has exited.
    fn check_alive(&mut self) {
        if let Some(Ok(Some(status))) = self.daemon.as_mut().map(|d| d.try_wait()) {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("the daemon exited ({status}); log:\n{log}");
        }
    }

    /// Binds listeners inside the namespace: `setns` on a helper thread moves only that
    /// thread, and the sockets stay in the namespace they were made in.
    fn listen(&self, ports: &[u16]) -> Vec<TcpListener> {
        let path = format!("/run/netns/{}", self.netns);
        let ports = ports.to_vec();
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).expect("open netns");
            // SAFETY: setns on a valid namespace fd changes this thread's namespace only.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            ports
                .iter()
                .map(|p| TcpListener::bind(("127.0.0.1", *p)).expect("bind in netns"))
                .collect()
        })
        .join()
        .expect("listener thread")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut daemon) = self.daemon.take() {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect("spawn");
    assert!(status.success(), "{args:?} failed");
}

fn accept(listener: &TcpListener, deadline: Instant, lab: &mut Lab) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                lab.check_alive();
                assert!(Instant::now() < deadline, "the peer did not connect");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Plays the passive side of a session: answers the peer's OPEN with ours and a
/// KEEPALIVE, then reads until every `wanted` prefix was announced. Returns every
/// message and the raw bytes received.
fn session(
    lab: &mut Lab,
    listener: &TcpListener,
    our_open: Open,
    cx: DecodeContext,
    wanted: &[Ipv4Prefix],
) -> (Vec<Message>, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut conn = accept(listener, deadline, lab);
    let enc = EncodeContext {
        four_octet_as: cx.four_octet_as,
    };
    let (mut raw, mut sent_open) = (Vec::new(), false);
    loop {
        let (messages, _, error) = split_messages(&raw, &cx);
        assert_eq!(error, None, "the peer sent a malformed message: {raw:02x?}");
        if !sent_open && !messages.is_empty() {
            conn.write_all(&Message::Open(our_open.clone()).encode(&enc))
                .unwrap();
            conn.write_all(&Message::Keepalive.encode(&enc)).unwrap();
            sent_open = true;
        }
        let announced: Vec<Ipv4Prefix> = messages
            .iter()
            .filter_map(|m| match m {
                Message::Update(u) => Some(u.announced().collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect();
        if wanted.iter().all(|p| announced.contains(p)) {
            let bye = Notification::cease(cease::ADMINISTRATIVE_SHUTDOWN);
            let _ = conn.write_all(&Message::Notification(bye).encode(&enc));
            return (messages, raw);
        }
        assert!(
            Instant::now() < deadline,
            "routes not announced; got {messages:?}"
        );
        let mut buf = [0u8; 4096];
        match conn.read(&mut buf) {
            Ok(0) => panic!("the peer closed the session; got {messages:?}"),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn hex_of(raw: &[u8]) -> String {
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a peer was configured to send.
struct Expected {
    asn: u32,
    id: Ipv4Addr,
    origin: Origin,
    next_hop: Ipv4Addr,
    med: u32,
    community: u32,
    prefixes: Vec<Ipv4Prefix>,
}

fn check_stream(messages: &[Message], e: &Expected) {
    let Message::Open(open) = &messages[0] else {
        panic!("first message is not an OPEN: {messages:?}")
    };
    assert_eq!(open.version, 4);
    assert_eq!(open.my_as, AS_TRANS, "a 4-octet AS is AS_TRANS in My AS");
    assert_eq!(open.asn(), e.asn);
    assert_eq!(open.hold_time, 30);
    assert_eq!(open.bgp_identifier, e.id);
    assert!(open.supports_family(AFI_IPV4, SAFI_UNICAST), "{open:?}");
    assert!(open.supports_route_refresh(), "{open:?}");
    assert!(
        messages.contains(&Message::Keepalive),
        "our OPEN is answered with a KEEPALIVE"
    );

    let mut announced = Vec::new();
    for u in messages.iter().filter_map(|m| {
        if let Message::Update(u) = m {
            Some(u)
        } else {
            None
        }
    }) {
        assert!(!u.treat_as_withdraw && u.malformation.is_none(), "{u:?}");
        if u.announced().next().is_none() {
            continue;
        }
        let a = u.attributes.as_ref().unwrap();
        assert_eq!(a.origin, e.origin);
        assert_eq!(a.as_path, AsPath::from_sequence(vec![e.asn]), "{a:?}");
        assert_eq!(u.next_hop(), Some(e.next_hop));
        assert_eq!(a.med, Some(e.med));
        assert!(a.communities.contains(&e.community), "{a:?}");
        announced.extend(u.announced());
    }
    announced.sort();
    let mut wanted = e.prefixes.clone();
    wanted.sort();
    assert_eq!(announced, wanted);
}

/// AS4_PATH carrying `asn` alone, as it crosses a 2-octet session.
fn as4_path_of(asn: u32) -> Vec<u8> {
    let mut a = vec![0xc0, type_code::AS4_PATH, 6, 2, 1];
    a.extend_from_slice(&asn.to_be_bytes());
    a
}

const BIRD_AS: u32 = 4_200_000_001;

fn bird_config(log: &std::path::Path, ports: [u16; 2]) -> String {
    let session = |name: &str, port: u16| {
        format!(
            "protocol bgp {name} {{
                local 127.0.0.2 as {BIRD_AS};
                neighbor 127.0.0.1 port {port} as {OUR_AS};
                multihop;
                connect delay time 1;
                connect retry time 2;
                hold time 30;
                ipv4 {{
                    import none;
                    export filter {{ bgp_med = 50; bgp_community.add((65002, 100)); accept; }};
                }};
            }}\n"
        )
    };
    format!(
        "log \"{}\" all;
        router id 10.255.0.1;
        protocol device {{ }}
        protocol static {{
            ipv4;
            route 10.99.1.0/24 blackhole;
            route 10.99.2.0/25 blackhole;
        }}
        {}{}",
        log.display(),
        session("sess4", ports[0]),
        session("sess2", ports[1])
    )
}

/// BIRD 2 on a 4-octet session and on a 2-octet one (AS_TRANS in AS_PATH, the real
/// path in AS4_PATH, put back together on decode).
#[test]
fn bird2_open_keepalive_update_stream_decodes() {
    let mut lab = Lab::new("bird");
    let listeners = lab.listen(&[1791, 1792]);
    let conf = lab.dir.join("bird.conf");
    std::fs::write(&conf, bird_config(&lab.dir.join("bird.log"), [1791, 1792])).unwrap();
    let (conf, sock) = (
        conf.display().to_string(),
        lab.dir.join("bird.ctl").display().to_string(),
    );
    lab.start(&["bird", "-f", "-c", &conf, "-s", &sock]);
    let expected = Expected {
        asn: BIRD_AS,
        id: Ipv4Addr::new(10, 255, 0, 1),
        origin: Origin::Igp,
        next_hop: Ipv4Addr::new(127, 0, 0, 2),
        med: 50,
        community: (65002 << 16) | 100,
        prefixes: vec![prefix("10.99.1.0/24"), prefix("10.99.2.0/25")],
    };

    let ours = Open::new(
        u32::from(OUR_AS),
        90,
        Ipv4Addr::new(10, 255, 0, 2),
        vec![Capability::Multiprotocol {
            afi: AFI_IPV4,
            safi: SAFI_UNICAST,
        }],
    );
    let (messages, raw) = session(&mut lab, &listeners[0], ours, AS4, &expected.prefixes);
    eprintln!("BIRD 4-octet stream: {}", hex_of(&raw));
    check_stream(&messages, &expected);

    // No 4-octet capability from us this time.
    let ours = Open {
        version: 4,
        my_as: OUR_AS,
        hold_time: 90,
        bgp_identifier: Ipv4Addr::new(10, 255, 0, 2),
        capabilities: vec![Capability::Multiprotocol {
            afi: AFI_IPV4,
            safi: SAFI_UNICAST,
        }],
    };
    let (messages, raw) = session(&mut lab, &listeners[1], ours, AS2, &expected.prefixes);
    eprintln!("BIRD 2-octet stream: {}", hex_of(&raw));
    check_stream(&messages, &expected);
    let as4_path = as4_path_of(BIRD_AS);
    assert!(
        raw.windows(as4_path.len()).any(|w| w == as4_path),
        "AS4_PATH on the wire"
    );
}

const GOBGP_AS: u32 = 4_200_000_002;

/// GoBGP, with a route added through its API after it started.
#[test]
fn gobgp_open_keepalive_update_stream_decodes() {
    let mut lab = Lab::new("gobgp");
    let listeners = lab.listen(&[1793]);
    let conf = lab.dir.join("gobgpd.toml");
    std::fs::write(
        &conf,
        format!(
            r#"[global.config]
  as = {GOBGP_AS}
  router-id = "10.255.0.3"
  port = -1
[global.apply-policy.config]
  default-export-policy = "accept-route"
[[neighbors]]
  [neighbors.config]
neighbor-address = "127.0.0.1"
peer-as = {OUR_AS}
  [neighbors.transport.config]
remote-port = 1793
local-address = "127.0.0.3"
  [neighbors.timers.config]
connect-retry = 1
hold-time = 30
  [[neighbors.afi-safis]]
[neighbors.afi-safis.config]
  afi-safi-name = "ipv4-unicast"
"#
        ),
    )
    .unwrap();
    let conf = conf.display().to_string();
    lab.start(&["gobgpd", "-f", &conf, "--api-hosts", "127.0.0.1:50051"]);

    // The API comes up shortly after the daemon: retry the route add for a bounded time.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let added = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.netns,
                "gobgp",
                "-u",
                "127.0.0.1",
                "-p",
                "50051",
            ])
            .args([
                "global",
                "rib",
                "add",
                "10.98.1.0/24",
                "nexthop",
                "127.0.0.3",
            ])
            .args(["med", "40", "community", "65002:200", "-a", "ipv4"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run gobgp");
        if added.success() {
            break;
        }
        lab.check_alive();
        assert!(Instant::now() < deadline, "gobgp API did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }

    let expected = Expected {
        asn: GOBGP_AS,
        id: Ipv4Addr::new(10, 255, 0, 3),
        origin: Origin::Incomplete,
        next_hop: Ipv4Addr::new(127, 0, 0, 3),
        med: 40,
        community: (65002 << 16) | 200,
        prefixes: vec![prefix("10.98.1.0/24")],
    };
    let ours = Open::new(
        u32::from(OUR_AS),
        90,
        Ipv4Addr::new(10, 255, 0, 2),
        vec![
            Capability::Multiprotocol {
                afi: AFI_IPV4,
                safi: SAFI_UNICAST,
            },
            Capability::RouteRefresh,
        ],
    );
    let (messages, raw) = session(&mut lab, &listeners[0], ours, AS4, &expected.prefixes);
    eprintln!("GoBGP stream: {}", hex_of(&raw));
    check_stream(&messages, &expected);
}
