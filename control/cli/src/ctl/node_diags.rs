//! `node diags`: a bundle of this host's diagnostics in a `.tar.gz`, as calicoctl's `node
//! diags` gathers one (date, hostname, routes, addresses, nftables/iptables, sockets, the
//! node's journal and logs) plus what brindle needs: the node's stats from its control
//! socket (counters, ports, BGP peers), `ip -d` links/addresses/routes, network namespaces,
//! and the XDP/BPF programs attached.
//!
//! The bundle is `diags-YYYYMMDD_HHMMSS.tar.gz` in a fresh temp directory (`$TMPDIR`), its
//! members under `diagnostics/`. calicoctl prints a failure and leaves a section out; brindle
//! writes every section, and one that could not be collected holds the reason, so that the
//! bundle says what is missing and why. Each command is bounded in time and output.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::tarball::TarGz;
use super::CtlError;

/// How long one command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of one command's output, or of one log file, is kept.
const MAX_SECTION_BYTES: u64 = 32 << 20;
/// How many log files are copied (a log directory is not a place to archive a disk from).
const MAX_LOG_FILES: usize = 64;

/// One command whose output becomes `diagnostics/<file>`.
struct Section {
    info: &'static str,
    file: &'static str,
    argv: &'static [&'static str],
}

const SECTIONS: &[Section] = &[
    Section {
        info: "",
        file: "date",
        argv: &["date"],
    },
    Section {
        info: "",
        file: "hostname",
        argv: &["hostname"],
    },
    Section {
        info: "Dumping routes (IPv4)",
        file: "ipv4_route",
        argv: &["ip", "-4", "route"],
    },
    Section {
        info: "Dumping routes (IPv6)",
        file: "ipv6_route",
        argv: &["ip", "-6", "route"],
    },
    Section {
        info: "Dumping interface info (IPv4)",
        file: "ipv4_addr",
        argv: &["ip", "-4", "addr"],
    },
    Section {
        info: "Dumping interface info (IPv6)",
        file: "ipv6_addr",
        argv: &["ip", "-6", "addr"],
    },
    Section {
        info: "Dumping links (detailed)",
        file: "ip_link",
        argv: &["ip", "-d", "link"],
    },
    Section {
        info: "Dumping addresses (detailed)",
        file: "ip_addr",
        argv: &["ip", "-d", "addr"],
    },
    Section {
        info: "Dumping routes of every table",
        file: "ip_route",
        argv: &["ip", "-d", "route", "show", "table", "all"],
    },
    Section {
        info: "Dumping network namespaces",
        file: "ip_netns",
        argv: &["ip", "netns", "list"],
    },
    Section {
        info: "Dumping XDP/BPF attachments",
        file: "bpf_net",
        argv: &["bpftool", "net", "show"],
    },
    Section {
        info: "Dumping nftables",
        file: "nft_ruleset",
        argv: &["nft", "-n", "-a", "list", "ruleset"],
    },
    Section {
        info: "Dumping iptables (IPv4)",
        file: "ipv4_tables",
        argv: &["iptables-save", "-c"],
    },
    Section {
        info: "Dumping iptables (IPv6)",
        file: "ipv6_tables",
        argv: &["ip6tables-save", "-c"],
    },
    Section {
        info: "Dumping sockets",
        file: "ss",
        argv: &["ss", "-a", "-n"],
    },
    Section {
        info: "Copying journal for brindle-node.service",
        file: "journalctl_brindle_node",
        argv: &["journalctl", "-u", "brindle-node.service", "--no-pager"],
    },
];

/// The member names of a bundle (under `diagnostics/`), in order; `logs/` follows.
pub fn member_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = SECTIONS.iter().map(|s| s.file).collect();
    names.extend(["node_stats.json", "bgp_peers.json"]);
    names
}

/// `node diags`: collects, writes the bundle, prints its path.
pub fn diags(log_dir: &Path, control_socket: &Path, out: &mut String) -> Result<(), CtlError> {
    out.push_str("Collecting diagnostics\n");
    let dir = temp_dir()?;
    out.push_str(&format!("Using temp dir: {}\n", dir.display()));
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    for s in SECTIONS {
        if !s.info.is_empty() {
            out.push_str(&format!("{}\n", s.info));
        }
        let data = run_bounded(s.argv).unwrap_or_else(|why| {
            out.push_str(&format!(
                "Failed to run command: {}\nError: {why}\n",
                s.argv.join(" ")
            ));
            not_collected(&why)
        });
        members.push((s.file.to_string(), data));
    }
    out.push_str("Dumping brindle-node stats\n");
    let (stats, peers) = match crate::node_client::fetch(control_socket) {
        Ok(stats) => {
            let peers = stats
                .get("bgp_peers")
                .map(pretty)
                .unwrap_or_else(|| not_collected("the node's stats have no bgp_peers"));
            (pretty(&stats), peers)
        }
        Err(e) => {
            let why = format!("{e:#}");
            out.push_str(&format!("Failed to read the node's stats: {why}\n"));
            (not_collected(&why), not_collected(&why))
        }
    };
    members.push(("node_stats.json".to_string(), stats));
    members.push(("bgp_peers.json".to_string(), peers));
    let logs = collect_logs(log_dir, out);

    let stamp = timestamp();
    let bundle = dir.join(format!("diags-{stamp}.tar.gz"));
    write_bundle(&bundle, &members, &logs).map_err(|e| {
        CtlError::new(format!(
            "Error compressing the diagnostics into {}: {e}",
            bundle.display()
        ))
    })?;
    out.push_str(&format!("\nDiags saved to {}\n", bundle.display()));
    out.push_str("If required, you can upload the diagnostics bundle to a file sharing service.\n");
    Ok(())
}

fn write_bundle(
    path: &Path,
    members: &[(String, Vec<u8>)],
    logs: &[(String, Vec<u8>)],
) -> std::io::Result<()> {
    let mut tar = TarGz::create(path)?;
    tar.dir("diagnostics")?;
    for (name, data) in members {
        tar.file(&format!("diagnostics/{name}"), data)?;
    }
    tar.dir("diagnostics/logs")?;
    for (name, data) in logs {
        tar.file(&format!("diagnostics/logs/{name}"), data)?;
    }
    tar.finish()
}

fn not_collected(why: &str) -> Vec<u8> {
    format!("brindlectl could not collect this section: {why}\n").into_bytes()
}

fn pretty(v: &serde_json::Value) -> Vec<u8> {
    let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
    text.push('\n');
    text.into_bytes()
}

/// A new directory under the temp directory (calicoctl's `MkdirTemp("", "calico")`).
fn temp_dir() -> Result<PathBuf, CtlError> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    for attempt in 0..100u32 {
        let dir = base.join(format!(
            "brindle{}{:09}",
            std::process::id(),
            nanos.wrapping_add(attempt)
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(CtlError::new(format!(
                    "error creating temp directory to dump logs in {}: {e}",
                    base.display()
                )))
            }
        }
    }
    Err(CtlError::new(format!(
        "error creating temp directory to dump logs in {}: no free name",
        base.display()
    )))
}

/// `YYYYMMDD_HHMMSS` (UTC), as calicoctl names the bundle.
fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // rfc3339_utc: YYYY-MM-DDTHH:MM:SSZ
    let t = resources::meta::rfc3339_utc(secs);
    format!(
        "{}{}{}_{}{}{}",
        &t[0..4],
        &t[5..7],
        &t[8..10],
        &t[11..13],
        &t[14..16],
        &t[17..19]
    )
}

/// Runs `argv` with stdin closed; stdout and stderr together (as Go's CombinedOutput), at
/// most [`MAX_SECTION_BYTES`], killed after [`COMMAND_TIMEOUT`]. Err: why there is no output.
fn run_bounded(argv: &[&str]) -> Result<Vec<u8>, String> {
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", argv[0]))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut stdout).take(MAX_SECTION_BYTES).read_to_end(&mut buf);
        // Drain the rest so that the command is not blocked on a full pipe.
        let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut stderr).take(1 << 20).read_to_end(&mut buf);
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        buf
    });
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut data = out.join().unwrap_or_default();
    let errors = err.join().unwrap_or_default();
    match status {
        None => Err(format!(
            "{} did not finish within {}s",
            argv.join(" "),
            COMMAND_TIMEOUT.as_secs()
        )),
        Some(s) if !s.success() => Err(format!(
            "{} failed ({s}): {}",
            argv.join(" "),
            String::from_utf8_lossy(&errors).trim()
        )),
        Some(_) => {
            data.extend_from_slice(&errors);
            Ok(data)
        }
    }
}

/// The regular files of `log_dir` and its subdirectories (named relative to it), each at
/// most [`MAX_SECTION_BYTES`]; when there are none, a `README` saying why.
fn collect_logs(log_dir: &Path, out: &mut String) -> Vec<(String, Vec<u8>)> {
    let mut logs = Vec::new();
    match std::fs::metadata(log_dir) {
        Err(e) => {
            out.push_str(&format!(
                "Error copying log files: {}: {e}\n",
                log_dir.display()
            ));
            logs.push((
                "README".to_string(),
                not_collected(&format!("{}: {e}", log_dir.display())),
            ));
            return logs;
        }
        Ok(m) if !m.is_dir() => {
            out.push_str(&format!(
                "No logs found in {}; skipping log copying\n",
                log_dir.display()
            ));
            logs.push((
                "README".to_string(),
                not_collected(&format!("{} is not a directory", log_dir.display())),
            ));
            return logs;
        }
        Ok(_) => out.push_str("Copying brindle logs\n"),
    }
    let mut stack = vec![(log_dir.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, prefix, depth)) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = read.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() && depth < 4 {
                stack.push((e.path(), format!("{name}/"), depth + 1));
            } else if kind.is_file() && logs.len() < MAX_LOG_FILES && name.len() < 80 {
                let mut data = Vec::new();
                if let Ok(f) = std::fs::File::open(e.path()) {
                    let _ = f.take(MAX_SECTION_BYTES).read_to_end(&mut data);
                    logs.push((name, data));
                }
            }
        }
    }
    if logs.is_empty() {
        logs.push((
            "README".to_string(),
            not_collected(&format!("no log files in {}", log_dir.display())),
        ));
    }
    logs
}
