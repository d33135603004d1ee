//! Benchmark: time and peak memory to learn N IPv4 prefixes from a GoBGP peer, our speaker
//! against BIRD 2, in one run, from the same GoBGP.
//!
//! ```text
//! cargo run --release -p bgp --bin bgp-learn-bench -- [--prefixes N] [--timeout-secs S]
//!     [--rounds R] [--bird-first] [--gobgp-gogc VALUE] [--trace]
//! ```
//!
//! Layout: GoBGP in namespace `<tag>-gobgp`, joined by one veth pair to `<tag>-ours` (our
//! speaker, this same binary re-executed with `speaker`) and by another to `<tag>-bird`
//! (BIRD 2). GoBGP is loaded from an MRT TABLE_DUMP_V2 file (RFC 6396) that we generate, via
//! `gobgp mrt inject global`: one gRPC stream instead of a process per prefix. Its neighbors are
//! passive, so each learner starts the session itself when we start it; the learners run
//! one after the other so neither competes with the other for the 2 cores.
//!
//! Time is measured by this orchestrator for both, from spawning the learner process to the
//! moment it holds all N routes (ours: exits after printing; BIRD: `birdc show route count`
//! polled); also from Established, and split into GoBGP preparing the table (Established to
//! the first route: GoBGP builds every UPDATE before sending one) and the transfer (first
//! route to all). Peak memory is VmHWM of the learner process; CPU time is reported for the
//! learner and for GoBGP during each learner's turn. `--rounds R` repeats the pair from the
//! one loaded GoBGP, alternating who goes first, and prints the median ratios; GoBGP is let
//! settle before every turn. `--gobgp-gogc off` runs gobgpd with `GOGC=off`: a collection
//! of its 1.6 GB heap otherwise lands in one learner's turn or the other's and moves that
//! turn by seconds (it grows gobgpd to ~4 GB per turn, so keep R small). Needs root;
//! namespaces and daemons are removed by exact name and pid on exit, pass or fail.

use std::io::{BufWriter, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bgp::fsm::State;
use bgp::speaker::{PeerSpec, Speaker, SpeakerConfig};

const GOBGP_AS: u32 = 65000;
const OUR_AS: u32 = 65001;
const BIRD_AS: u32 = 65003;
const GOBGP_TO_OURS: Ipv4Addr = Ipv4Addr::new(10, 203, 1, 2);
const OURS: Ipv4Addr = Ipv4Addr::new(10, 203, 1, 1);
const GOBGP_TO_BIRD: Ipv4Addr = Ipv4Addr::new(10, 203, 2, 2);
const BIRD: Ipv4Addr = Ipv4Addr::new(10, 203, 2, 1);
const GOBGP_API: &str = "127.0.0.1:50071";
const MRT_REPEAT: u32 = 65_536;
const POLL: Duration = Duration::from_millis(50);

type BoxError = Box<dyn std::error::Error>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = if args.get(1).map(String::as_str) == Some("speaker") {
        speaker_main(&args[2..])
    } else if args.get(1).map(String::as_str) == Some("write-mrt") {
        // For loading a GoBGP by hand: `write-mrt <path> <prefixes>`.
        match (args.get(2), args.get(3).and_then(|n| n.parse().ok())) {
            (Some(path), Some(n)) => write_mrt(Path::new(path), n),
            _ => Err("usage: write-mrt <path> <prefixes>".into()),
        }
    } else {
        bench_main(&args[1..])
    };
    if let Err(e) = result {
        eprintln!("bgp-learn-bench: {e}");
        std::process::exit(1);
    }
}

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, BoxError> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name} needs a value").into()),
    }
}

// --- the learner: our speaker ---------------------------------------------------------------

/// Starts the speaker, peers with GoBGP, exits printing JSON once the peer's Adj-RIB-In holds
/// `--prefixes` routes, or fails at `--timeout-secs`.
fn speaker_main(args: &[String]) -> Result<(), BoxError> {
    let want: u64 = flag(args, "--prefixes", 1_000_000)?;
    let timeout = Duration::from_secs(flag(args, "--timeout-secs", 300)?);
    let trace = args.iter().any(|a| a == "--trace");
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let config = SpeakerConfig::new(OUR_AS, OURS, SocketAddr::from((OURS, 0)));
        let speaker = Speaker::start(config).await?;
        // The dataplane would consume these; drain them so they are not queued unbounded.
        if let Some(mut fib) = speaker.fib_changes() {
            tokio::spawn(async move { while fib.recv().await.is_some() {} });
        }
        let mut peer = PeerSpec::new(GOBGP_TO_OURS, GOBGP_AS);
        peer.hold_time = 90;
        speaker.add_peer(peer)?;
        let mut established = None;
        let mut first_route = None;
        loop {
            let status = speaker.status();
            let row = status.first();
            if established.is_none() && row.is_some_and(|r| r.state == State::Established) {
                established = Some(started.elapsed());
            }
            let held = row.map_or(0, |r| r.routes_received);
            if first_route.is_none() && held > 0 {
                first_route = Some(started.elapsed());
            }
            if trace {
                eprintln!("trace {:.3} {held}", started.elapsed().as_secs_f64());
            }
            if held >= want {
                let learned = started.elapsed();
                let hwm = vm_hwm_kib(Path::new("/proc/self/status")).unwrap_or(0);
                let cpu = cpu_seconds(Path::new("/proc/self/stat")).unwrap_or(0.0);
                println!(
                    "{{\"routes\":{held},\"established_s\":{:.3},\"first_route_s\":{:.3},\"learned_s\":{:.3},\"vm_hwm_kib\":{hwm},\"cpu_s\":{cpu:.3}}}",
                    established.unwrap_or(learned).as_secs_f64(),
                    first_route.unwrap_or(learned).as_secs_f64(),
                    learned.as_secs_f64()
                );
                speaker.shutdown();
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(format!("timeout: {held} of {want} routes; {status:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

fn vm_hwm_kib(status: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU time of a process from `/proc/<pid>/stat` (fields 14 and 15, in
/// USER_HZ ticks, which the kernel ABI fixes at 100 per second): where the learner's time
/// went, and how much of the 2 cores it left to GoBGP.
fn cpu_seconds(stat: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(stat).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let after_name = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Waits (at most `within`) until the process of `stat` has used under a tenth of a core
/// for a second; returns the seconds waited. GoBGP goes on digesting the injected table and
/// collecting garbage for a while after its RIB count is reached, and a learner must not
/// compete with that for the 2 cores: without this wait the first learner pays for it.
fn wait_settled(stat: &Path, within: Duration) -> f64 {
    let started = Instant::now();
    let mut last = cpu_seconds(stat).unwrap_or(0.0);
    while started.elapsed() < within {
        std::thread::sleep(Duration::from_secs(1));
        let now = cpu_seconds(stat).unwrap_or(0.0);
        if now - last < 0.1 {
            break;
        }
        last = now;
    }
    started.elapsed().as_secs_f64()
}

// --- the orchestrator -----------------------------------------------------------------------

/// Namespaces, files and daemons of one run; dropping it kills the daemons by pid and deletes
/// the namespaces by name.
struct Lab {
    tag: String,
    dir: PathBuf,
    daemons: Vec<Child>,
}

impl Lab {
    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.tag)
    }

    fn new() -> Result<Lab, BoxError> {
        let pid = std::process::id();
        let tag = format!("blb{pid}");
        let dir = std::env::temp_dir().join(&tag);
        std::fs::create_dir_all(&dir)?;
        let lab = Lab {
            tag,
            dir,
            daemons: Vec::new(),
        };
        for role in ["gobgp", "ours", "bird"] {
            run(&["ip", "netns", "add", &lab.ns(role)])?;
            run(&["ip", "-n", &lab.ns(role), "link", "set", "lo", "up"])?;
        }
        let links = [
            ("ours", "o", OURS, GOBGP_TO_OURS),
            ("bird", "b", BIRD, GOBGP_TO_BIRD),
        ];
        for (role, c, learner, gobgp) in links {
            let (vl, vg) = (format!("{c}{pid}l"), format!("{c}{pid}g"));
            run(&[
                "ip",
                "link",
                "add",
                &vl,
                "netns",
                &lab.ns(role),
                "type",
                "veth",
                "peer",
                "name",
                &vg,
                "netns",
                &lab.ns("gobgp"),
            ])?;
            for (ns, dev, addr) in [(lab.ns(role), &vl, learner), (lab.ns("gobgp"), &vg, gobgp)] {
                run(&[
                    "ip",
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    dev,
                ])?;
                run(&["ip", "-n", &ns, "link", "set", dev, "up"])?;
            }
        }
        Ok(lab)
    }

    /// Spawns `args` in namespace `role`; `ip netns exec` execs, so the child pid is the
    /// program's.
    fn spawn(&mut self, role: &str, args: &[&str], out: Stdio) -> Result<u32, BoxError> {
        let log = std::fs::File::create(self.dir.join(format!("{role}.log")))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log)
            .spawn()?;
        let pid = child.id();
        self.daemons.push(child);
        Ok(pid)
    }

    fn query(&self, role: &str, args: &[&str]) -> Result<String, BoxError> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(role)])
            .args(args)
            .stdin(Stdio::null())
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.daemons {
            let _ = child.kill();
            let _ = child.wait();
        }
        for role in ["gobgp", "ours", "bird"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(role)])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(args: &[&str]) -> Result<(), BoxError> {
    let status = Command::new(args[0]).args(&args[1..]).status()?;
    if !status.success() {
        return Err(format!("{args:?} failed: {status}").into());
    }
    Ok(())
}

/// Polls `cond` every [`POLL`] until it holds or `within` passes.
fn wait_for(
    within: Duration,
    mut cond: impl FnMut() -> Result<bool, BoxError>,
) -> Result<bool, BoxError> {
    let deadline = Instant::now() + within;
    loop {
        if cond()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
}

/// The i-th /24 from 20.0.0.0: 1M of them span 20.0.0.0 to 35.255.255.0.
fn nth_prefix(i: u32) -> [u8; 3] {
    let net = (20u32 << 24).wrapping_add(i << 8);
    let b = net.to_be_bytes();
    [b[0], b[1], b[2]]
}

/// Writes an MRT TABLE_DUMP_V2 file (RFC 6396 section 4.3): one PEER_INDEX_TABLE, then one
/// RIB_IPV4_UNICAST record per prefix with ORIGIN IGP, an empty AS_PATH and NEXT_HOP 0.0.0.0.
///
/// The first [`MRT_REPEAT`] prefixes are written again at the end: Debian's `gobgp` 3.10
/// `mrt inject` exits before its last ~1,000 paths reach the daemon (measured: 8,589 to
/// 9,236 of 10,000 arrived), so the tail it drops is a repeat of paths already injected.
fn write_mrt(path: &Path, prefixes: u32) -> Result<(), BoxError> {
    const TABLE_DUMP_V2: u16 = 13;
    const PEER_INDEX_TABLE: u16 = 1;
    const RIB_IPV4_UNICAST: u16 = 2;
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let mut record = |subtype: u16, body: &[u8]| -> std::io::Result<()> {
        out.write_all(&0u32.to_be_bytes())?; // timestamp
        out.write_all(&TABLE_DUMP_V2.to_be_bytes())?;
        out.write_all(&subtype.to_be_bytes())?;
        out.write_all(&(body.len() as u32).to_be_bytes())?;
        out.write_all(body)
    };
    // Section 4.3.1: collector id, empty view name, one peer (type 0x02: IPv4, 4-octet AS).
    let mut peers = Vec::new();
    peers.extend_from_slice(&GOBGP_TO_OURS.octets());
    peers.extend_from_slice(&0u16.to_be_bytes());
    peers.extend_from_slice(&1u16.to_be_bytes());
    peers.push(0x02);
    peers.extend_from_slice(&GOBGP_TO_OURS.octets());
    peers.extend_from_slice(&GOBGP_TO_OURS.octets());
    peers.extend_from_slice(&GOBGP_AS.to_be_bytes());
    record(PEER_INDEX_TABLE, &peers)?;
    // Path attributes (RFC 4271 section 4.3): well-known transitive flags 0x40.
    let mut attrs = vec![0x40, 1, 1, 0]; // ORIGIN IGP
    attrs.extend_from_slice(&[0x40, 2, 0]); // AS_PATH, empty
                                            // NEXT_HOP 0.0.0.0: GoBGP then announces each peer its own local address (an explicit
                                            // one would be sent unchanged, off BIRD's subnet, and BIRD would drop the routes).
    attrs.extend_from_slice(&[0x40, 3, 4, 0, 0, 0, 0]);
    let mut body = Vec::with_capacity(64);
    let repeat = prefixes.min(MRT_REPEAT);
    for (sequence, i) in (0..prefixes).chain(0..repeat).enumerate() {
        body.clear();
        body.extend_from_slice(&(sequence as u32).to_be_bytes());
        body.push(24);
        body.extend_from_slice(&nth_prefix(i));
        body.extend_from_slice(&1u16.to_be_bytes()); // entry count
        body.extend_from_slice(&0u16.to_be_bytes()); // peer index
        body.extend_from_slice(&0u32.to_be_bytes()); // originated time
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        record(RIB_IPV4_UNICAST, &body)?;
    }
    out.flush()?;
    Ok(())
}

fn gobgp_config(path: &Path) -> Result<(), BoxError> {
    let mut conf = format!(
        "[global.config]\n  as = {GOBGP_AS}\n  router-id = \"{GOBGP_TO_OURS}\"\n\
         [global.apply-policy.config]\n  default-import-policy = \"accept-route\"\n  \
         default-export-policy = \"accept-route\"\n"
    );
    for (peer, asn, local) in [
        (OURS, OUR_AS, GOBGP_TO_OURS),
        (BIRD, BIRD_AS, GOBGP_TO_BIRD),
    ] {
        conf += &format!(
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{peer}\"\n    \
             peer-as = {asn}\n  [neighbors.transport.config]\n    local-address = \"{local}\"\n    \
             passive-mode = true\n  [neighbors.timers.config]\n    hold-time = 90\n  \
             [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      \
             afi-safi-name = \"ipv4-unicast\"\n"
        );
    }
    std::fs::write(path, conf)?;
    Ok(())
}

fn bird_config(path: &Path, log: &Path) -> Result<(), BoxError> {
    let conf = format!(
        "log \"{}\" {{ warning, error, fatal }};
router id {BIRD};
protocol device {{ }}
protocol bgp gobgp {{
    local {BIRD} as {BIRD_AS};
    neighbor {GOBGP_TO_BIRD} as {GOBGP_AS};
    connect delay time 0;
    ipv4 {{ import all; export none; }};
}}
",
        log.display()
    );
    std::fs::write(path, conf)?;
    Ok(())
}

fn gobgp(lab: &Lab, args: &[&str]) -> Result<String, BoxError> {
    let (host, port) = GOBGP_API.split_once(':').unwrap_or(("127.0.0.1", "50071"));
    let mut full = vec!["gobgp", "-u", host, "-p", port];
    full.extend_from_slice(args);
    lab.query("gobgp", &full)
}

/// The first number on `birdc show route count`'s summary line ("N of M routes for K
/// networks in table master4").
fn bird_route_count(shown: &str) -> u64 {
    shown
        .lines()
        .find(|l| l.contains("routes for"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

struct Learned {
    /// From spawning the process to holding all N routes.
    seconds: f64,
    /// From the session reaching Established to holding all N routes.
    after_established: f64,
    /// From Established to the first route held: GoBGP preparing the table for this peer
    /// (it builds every UPDATE before it sends the first).
    first_route: f64,
    vm_hwm_kib: u64,
    /// The learner's own CPU time (user + system).
    cpu_seconds: f64,
    /// GoBGP's CPU time while this learner ran.
    gobgp_cpu_seconds: f64,
}

impl Learned {
    /// From the first route to the last: the transfer itself, which the learner can speed
    /// up or slow down (the preparation before it is GoBGP's alone).
    fn transfer(&self) -> f64 {
        self.after_established - self.first_route
    }

    fn json(&self) -> String {
        format!(
            "{{\"seconds\":{:.3},\"after_established\":{:.3},\"first_route\":{:.3},\"transfer\":{:.3},\"vm_hwm_kib\":{},\"cpu_s\":{:.2},\"gobgp_cpu_s\":{:.2}}}",
            self.seconds,
            self.after_established,
            self.first_route,
            self.transfer(),
            self.vm_hwm_kib,
            self.cpu_seconds,
            self.gobgp_cpu_seconds
        )
    }
}

/// The number after `"key":` in our speaker's one-line JSON.
fn json_number(json: &str, key: &str) -> f64 {
    json.split(&format!("\"{key}\":"))
        .nth(1)
        .and_then(|s| s.split([',', '}']).next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0.0)
}

fn bench_main(args: &[String]) -> Result<(), BoxError> {
    let n: u32 = flag(args, "--prefixes", 1_000_000)?;
    let timeout = Duration::from_secs(flag(args, "--timeout-secs", 300)?);
    // Rounds of one learner each, in alternating order (ours first in odd rounds), from
    // the one loaded GoBGP: neither learner always gets the same place in the sequence.
    let rounds: u32 = flag(args, "--rounds", 1)?;
    let bird_first = args.iter().any(|a| a == "--bird-first");
    // GOGC for gobgpd ("off": no garbage collection). Default: unset, Go's default.
    let gogc: String = flag(args, "--gobgp-gogc", String::new())?;
    // Prints both learners' route counts over time to stderr.
    let trace = args.iter().any(|a| a == "--trace");
    let mut lab = Lab::new()?;

    // GoBGP loaded with N prefixes.
    let mrt = lab.dir.join("table.mrt");
    let t = Instant::now();
    write_mrt(&mrt, n)?;
    eprintln!(
        "MRT file of {n} prefixes written in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let conf = lab.dir.join("gobgpd.toml");
    gobgp_config(&conf)?;
    let conf = conf.display().to_string();
    let gogc_env = format!("GOGC={gogc}");
    let mut gobgpd = vec!["gobgpd", "-f", &conf, "--api-hosts", GOBGP_API];
    if !gogc.is_empty() {
        gobgpd.splice(0..0, ["env", gogc_env.as_str()]);
    }
    let gobgp_pid = lab.spawn("gobgp", &gobgpd, Stdio::null())?;
    if !wait_for(Duration::from_secs(20), || {
        Ok(gobgp(&lab, &["global"])?.contains("AS:"))
    })? {
        return Err("gobgpd did not come up".into());
    }
    let t = Instant::now();
    let injected = gobgp(
        &lab,
        &[
            "mrt",
            "inject",
            "global",
            "--no-ipv6",
            &mrt.display().to_string(),
        ],
    )?;
    let summary = |lab: &Lab| -> Result<u64, BoxError> {
        // "Table ipv4-unicast / Destination: N, Path: N"
        let shown = gobgp(lab, &["global", "rib", "summary", "-a", "ipv4"])?;
        Ok(shown
            .split("Destination:")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0))
    };
    if !wait_for(timeout, || Ok(summary(&lab)? >= u64::from(n)))? {
        return Err(format!("GoBGP holds {} of {n} prefixes: {injected}", summary(&lab)?).into());
    }
    eprintln!("GoBGP loaded in {:.2} s", t.elapsed().as_secs_f64());
    let gobgp_stat = PathBuf::from(format!("/proc/{gobgp_pid}/stat"));

    // The learners one after the other, GoBGP settled before each; its CPU time is counted
    // per learner (what sending the table to that learner cost it).
    let learn = |lab: &mut Lab, ours: bool| -> Result<Learned, BoxError> {
        let settled = wait_settled(&gobgp_stat, Duration::from_secs(60));
        eprintln!("GoBGP settled after {settled:.1} s");
        let before = cpu_seconds(&gobgp_stat).unwrap_or(0.0);
        let mut learned = match ours {
            true => learn_ours(lab, n, timeout, trace)?,
            false => learn_bird(lab, n, timeout, trace)?,
        };
        learned.gobgp_cpu_seconds = cpu_seconds(&gobgp_stat).unwrap_or(0.0) - before;
        Ok(learned)
    };
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let ours_first = (round % 2 == 1) != bird_first;
        let (ours, bird) = if ours_first {
            let ours = learn(&mut lab, true)?;
            (ours, learn(&mut lab, false)?)
        } else {
            let bird = learn(&mut lab, false)?;
            (learn(&mut lab, true)?, bird)
        };
        let ratio = Ratios {
            time: ours.seconds / bird.seconds,
            after_established: ours.after_established / bird.after_established,
            transfer: ours.transfer() / bird.transfer().max(0.001),
            memory: ours.vm_hwm_kib as f64 / bird.vm_hwm_kib.max(1) as f64,
        };
        println!(
            "{{\"prefixes\":{n},\"round\":{round},\"first\":\"{}\",\"gogc\":\"{gogc}\",\"ours\":{},\"bird\":{},\
             \"time_ratio\":{:.3},\"after_established_ratio\":{:.3},\"transfer_ratio\":{:.3},\"memory_ratio\":{:.3}}}",
            if ours_first { "ours" } else { "bird" },
            ours.json(),
            bird.json(),
            ratio.time,
            ratio.after_established,
            ratio.transfer,
            ratio.memory
        );
        ratios.push(ratio);
    }
    if rounds > 1 {
        let median = |f: fn(&Ratios) -> f64| {
            let mut v: Vec<f64> = ratios.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "{{\"rounds\":{rounds},\"median_time_ratio\":{:.3},\"median_after_established_ratio\":{:.3},\"median_transfer_ratio\":{:.3},\"median_memory_ratio\":{:.3}}}",
            median(|r| r.time),
            median(|r| r.after_established),
            median(|r| r.transfer),
            median(|r| r.memory)
        );
    }
    Ok(())
}

/// Ours over BIRD's, for one round.
struct Ratios {
    time: f64,
    after_established: f64,
    transfer: f64,
    memory: f64,
}

/// (a) Our speaker, this binary re-executed in its namespace; it exits once it holds N.
fn learn_ours(lab: &mut Lab, n: u32, timeout: Duration, trace: bool) -> Result<Learned, BoxError> {
    let exe = std::env::current_exe()?.display().to_string();
    let (n_s, timeout_s) = (n.to_string(), timeout.as_secs().to_string());
    let spawned = Instant::now();
    lab.spawn(
        "ours",
        &[
            &exe,
            "speaker",
            "--prefixes",
            &n_s,
            "--timeout-secs",
            &timeout_s,
            if trace { "--trace" } else { "--no-trace" },
        ],
        Stdio::piped(),
    )?;
    let child = lab.daemons.last_mut().ok_or("no child")?;
    let mut status = None;
    wait_for(timeout + Duration::from_secs(5), || {
        status = child.try_wait()?;
        Ok(status.is_some())
    })?;
    let seconds = spawned.elapsed().as_secs_f64();
    let mut json = String::new();
    if let Some(mut out) = child.stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut json)?;
    }
    if !status.is_some_and(|s| s.success()) {
        let log = std::fs::read_to_string(lab.dir.join("ours.log")).unwrap_or_default();
        return Err(format!("our speaker failed ({status:?}): {log}").into());
    }
    if trace {
        let log = std::fs::read_to_string(lab.dir.join("ours.log")).unwrap_or_default();
        eprint!("{}", log.replace("trace ", "trace ours "));
    }
    eprintln!("ours: {}", json.trim());
    Ok(Learned {
        seconds,
        after_established: json_number(&json, "learned_s") - json_number(&json, "established_s"),
        first_route: json_number(&json, "first_route_s") - json_number(&json, "established_s"),
        vm_hwm_kib: json_number(&json, "vm_hwm_kib") as u64,
        cpu_seconds: json_number(&json, "cpu_s"),
        gobgp_cpu_seconds: 0.0,
    })
}

/// (b) BIRD 2, polled with `birdc`; stopped (by its pid) once it holds N, as ours exits.
fn learn_bird(lab: &mut Lab, n: u32, timeout: Duration, trace: bool) -> Result<Learned, BoxError> {
    let bird_conf = lab.dir.join("bird.conf");
    bird_config(&bird_conf, &lab.dir.join("bird.log"))?;
    let sock = lab.dir.join("bird.ctl").display().to_string();
    let bird_conf = bird_conf.display().to_string();
    let spawned = Instant::now();
    let pid = lab.spawn(
        "bird",
        &["bird", "-f", "-c", &bird_conf, "-s", &sock],
        Stdio::null(),
    )?;
    let mut count = 0;
    let mut established = None;
    let mut first_route = None;
    let done = wait_for(timeout, || {
        if established.is_none() {
            let shown = lab.query(
                "bird",
                &["birdc", "-s", &sock, "show", "protocols", "gobgp"],
            )?;
            if shown
                .lines()
                .any(|l| l.starts_with("gobgp") && l.contains("Established"))
            {
                established = Some(Instant::now());
            }
        }
        count = bird_route_count(
            &lab.query("bird", &["birdc", "-s", &sock, "show", "route", "count"])?,
        );
        if first_route.is_none() && count > 0 {
            first_route = Some(Instant::now());
        }
        if trace {
            eprintln!("trace bird {:.3} {count}", spawned.elapsed().as_secs_f64());
        }
        Ok(count >= u64::from(n))
    })?;
    let learned_at = Instant::now();
    let seconds = learned_at.duration_since(spawned).as_secs_f64();
    if !done {
        return Err(format!("BIRD learned {count} of {n} within {timeout:?}").into());
    }
    let learned = Learned {
        seconds,
        after_established: established
            .map_or(seconds, |t| learned_at.duration_since(t).as_secs_f64()),
        first_route: match (established, first_route) {
            (Some(e), Some(f)) => f.duration_since(e).as_secs_f64(),
            _ => 0.0,
        },
        vm_hwm_kib: vm_hwm_kib(Path::new(&format!("/proc/{pid}/status"))).unwrap_or(0),
        cpu_seconds: cpu_seconds(Path::new(&format!("/proc/{pid}/stat"))).unwrap_or(0.0),
        gobgp_cpu_seconds: 0.0,
    };
    // As our speaker does on exit: Cease to the peer (so GoBGP takes the next session at
    // once), then gone. Killed by pid if it does not go.
    lab.query("bird", &["birdc", "-s", &sock, "down"])?;
    if let Some(child) = lab.daemons.iter_mut().find(|c| c.id() == pid) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait()?.is_none() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(learned)
}
