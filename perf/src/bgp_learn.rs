//! Benchmark: time and peak memory to learn N IPv4 prefixes from a GoBGP peer, our speaker
//! against BIRD 2, in one run, from the same GoBGP.
//!
//! ```text
//! brindle-perf bgp-learn [--prefixes N] [--timeout-secs S] [--rounds R] [--bird-first]
//!     [--gobgp-gogc VALUE] [--trace] [--out perf/results/bgp-learn.json]
//! ```
//!
//! Layout: GoBGP in namespace `<tag>-gobgp`, joined by one veth pair to `<tag>-ours` (our
//! speaker, this same binary re-executed with `bgp-learn-speaker`) and by another to `<tag>-bird`
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

mod lab;
mod mrt;
mod process;
mod speaker;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::rounds::median;
use lab::{wait_for, Lab};
pub use mrt::write_mrt;
use mrt::{bird_config, gobgp_config};
use process::{cpu_seconds, vm_hwm_kib, wait_settled};
pub use speaker::speaker;

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

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What to run.
#[derive(Clone, Debug)]
pub struct BgpLearnOptions {
    pub prefixes: u32,
    /// Each learner's limit, from its start to holding every route.
    pub timeout: Duration,
    /// Rounds of one learner each, in alternating order (ours first in odd rounds), from the
    /// one loaded GoBGP: neither learner always gets the same place in the sequence.
    pub rounds: u32,
    /// BIRD first in odd rounds.
    pub bird_first: bool,
    /// GOGC for gobgpd ("off": no garbage collection); empty: unset, Go's default.
    pub gobgp_gogc: String,
    /// Prints both learners' route counts over time to stderr.
    pub trace: bool,
}

/// One learner's figures in one round.
#[derive(Clone, Debug, Serialize)]
pub struct LearnerFigures {
    pub seconds: f64,
    pub after_established: f64,
    pub first_route: f64,
    pub transfer: f64,
    pub vm_hwm_kib: u64,
    pub cpu_s: f64,
    pub gobgp_cpu_s: f64,
}

/// One round: both learners, ours over BIRD's.
#[derive(Clone, Debug, Serialize)]
pub struct RoundResult {
    pub round: u32,
    /// Who learned first: `ours` or `bird`.
    pub first: &'static str,
    pub ours: LearnerFigures,
    pub bird: LearnerFigures,
    pub time_ratio: f64,
    pub after_established_ratio: f64,
    pub transfer_ratio: f64,
    pub memory_ratio: f64,
}

/// One learner's medians over the rounds, under the names of the summary's rows.
#[derive(Clone, Debug, Serialize)]
pub struct Medians {
    pub learn_secs: Option<f64>,
    pub after_established_secs: Option<f64>,
    pub transfer_secs: Option<f64>,
    pub vm_hwm_kib: Option<f64>,
}

/// The run: every round, each learner's medians, and the medians of the per-round ratios.
#[derive(Clone, Debug, Serialize)]
pub struct BgpLearnReport {
    pub prefixes: u32,
    pub gogc: String,
    pub rounds: u32,
    pub results: Vec<RoundResult>,
    pub ours: Medians,
    pub bird: Medians,
    pub median_time_ratio: Option<f64>,
    pub median_after_established_ratio: Option<f64>,
    pub median_transfer_ratio: Option<f64>,
    pub median_memory_ratio: Option<f64>,
}

/// The report as a Markdown table: our speaker's medians against BIRD's.
pub fn markdown(report: &BgpLearnReport) -> String {
    let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    let mut md = format!(
        "# Learning {} prefixes from GoBGP: our speaker vs BIRD 2\n\n\
         {} round(s), medians; GOGC of gobgpd: {}.\n\n\
         | figure | ours | BIRD 2 | ours/BIRD (median of rounds) |\n|---|---:|---:|---:|\n",
        report.prefixes,
        report.rounds,
        if report.gogc.is_empty() {
            "default"
        } else {
            &report.gogc
        }
    );
    let rows = [
        (
            "learn s",
            report.ours.learn_secs,
            report.bird.learn_secs,
            report.median_time_ratio,
        ),
        (
            "after Established s",
            report.ours.after_established_secs,
            report.bird.after_established_secs,
            report.median_after_established_ratio,
        ),
        (
            "transfer s",
            report.ours.transfer_secs,
            report.bird.transfer_secs,
            report.median_transfer_ratio,
        ),
        (
            "peak memory KiB",
            report.ours.vm_hwm_kib,
            report.bird.vm_hwm_kib,
            report.median_memory_ratio,
        ),
    ];
    for (figure, ours, bird, ratio) in rows {
        md.push_str(&format!(
            "| {figure} | {} | {} | {} |\n",
            cell(ours),
            cell(bird),
            cell(ratio)
        ));
    }
    md
}

/// Loads GoBGP, then runs the learners `opts.rounds` times; prints every round's figures as
/// one JSON line on stdout as it ends.
pub fn run(opts: &BgpLearnOptions) -> Result<BgpLearnReport, BoxError> {
    let BgpLearnOptions {
        prefixes: n,
        timeout,
        rounds,
        bird_first,
        trace,
        ..
    } = *opts;
    let gogc = opts.gobgp_gogc.clone();
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
        // A learner's previous session may have just ended: GoBGP keeps that neighbor Idle
        // for a while and refuses its connections, which would time the learner's retry
        // timer rather than the learning.
        let neighbor = if ours { OURS } else { BIRD }.to_string();
        let started = Instant::now();
        let mut state = String::new();
        let ready = wait_for(Duration::from_secs(30), || {
            let shown = gobgp(lab, &["neighbor", &neighbor])?.to_lowercase();
            state = shown
                .lines()
                .find(|l| l.contains("bgp state"))
                .unwrap_or_default()
                .trim()
                .to_string();
            Ok(state.starts_with("bgp state = active"))
        })?;
        eprintln!(
            "GoBGP settled after {settled:.1} s; neighbor {neighbor}: {state:?} after {:.1} s more{}",
            started.elapsed().as_secs_f64(),
            if ready { "" } else { " (not waiting for a connection: going on)" }
        );
        let before = cpu_seconds(&gobgp_stat).unwrap_or(0.0);
        let mut learned = match ours {
            true => learn_ours(lab, n, timeout, trace)?,
            false => learn_bird(lab, n, timeout, trace)?,
        };
        learned.gobgp_cpu_seconds = cpu_seconds(&gobgp_stat).unwrap_or(0.0) - before;
        Ok(learned)
    };
    let mut results = Vec::new();
    for round in 1..=rounds {
        let ours_first = (round % 2 == 1) != bird_first;
        let (ours, bird) = if ours_first {
            let ours = learn(&mut lab, true)?;
            (ours, learn(&mut lab, false)?)
        } else {
            let bird = learn(&mut lab, false)?;
            (learn(&mut lab, true)?, bird)
        };
        let result = RoundResult {
            round,
            first: if ours_first { "ours" } else { "bird" },
            time_ratio: ours.seconds / bird.seconds,
            after_established_ratio: ours.after_established / bird.after_established,
            transfer_ratio: ours.transfer() / bird.transfer().max(0.001),
            memory_ratio: ours.vm_hwm_kib as f64 / bird.vm_hwm_kib.max(1) as f64,
            ours: ours.figures(),
            bird: bird.figures(),
        };
        println!("{}", serde_json::to_string(&result)?);
        results.push(result);
    }
    let of = |f: &dyn Fn(&RoundResult) -> f64| median(results.iter().map(f));
    let medians = |side: fn(&RoundResult) -> &LearnerFigures| Medians {
        learn_secs: of(&|r| side(r).seconds),
        after_established_secs: of(&|r| side(r).after_established),
        transfer_secs: of(&|r| side(r).transfer),
        vm_hwm_kib: of(&|r| side(r).vm_hwm_kib as f64),
    };
    Ok(BgpLearnReport {
        prefixes: n,
        gogc,
        rounds,
        ours: medians(|r| &r.ours),
        bird: medians(|r| &r.bird),
        median_time_ratio: of(&|r| r.time_ratio),
        median_after_established_ratio: of(&|r| r.after_established_ratio),
        median_transfer_ratio: of(&|r| r.transfer_ratio),
        median_memory_ratio: of(&|r| r.memory_ratio),
        results,
    })
}

/// (a) Our speaker, this binary re-executed in its namespace; it exits once it holds N.
fn learn_ours(lab: &mut Lab, n: u32, timeout: Duration, trace: bool) -> Result<Learned, BoxError> {
    let exe = std::env::current_exe()?.display().to_string();
    let (n_s, timeout_s) = (n.to_string(), timeout.as_secs().to_string());
    let spawned = Instant::now();
    let mut args = vec![
        exe.as_str(),
        "bgp-learn-speaker",
        "--prefixes",
        &n_s,
        "--timeout-secs",
        &timeout_s,
    ];
    if trace {
        args.push("--trace");
    }
    lab.spawn("ours", &args, Stdio::piped())?;
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

    fn figures(&self) -> LearnerFigures {
        LearnerFigures {
            seconds: self.seconds,
            after_established: self.after_established,
            first_route: self.first_route,
            transfer: self.transfer(),
            vm_hwm_kib: self.vm_hwm_kib,
            cpu_s: self.cpu_seconds,
            gobgp_cpu_s: self.gobgp_cpu_seconds,
        }
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
