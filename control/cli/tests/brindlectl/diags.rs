//! `node diags`: the bundle is a valid .tar.gz (read back with the system's tar) with every
//! section, the node's stats when its control socket answers, the reason where a section
//! could not be collected, and the logs.

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::process::Command;

use crate::fixture::{Fixture, BRINDLECTL};

fn bundle_of(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Diags saved to "))
        .unwrap_or_else(|| panic!("no bundle path in {stdout}"));
    line.to_string()
}

fn tar(args: &[&str]) -> String {
    let out = Command::new("tar").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "tar {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn diags(tmp: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(BRINDLECTL)
        .args(["node", "diags"])
        .args(args)
        .env("TMPDIR", tmp)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub(crate) fn node_diags_bundles_what_it_can_and_says_why_not(f: &Fixture) {
    let tmp = std::path::PathBuf::from(f.file("tmp", ""));
    std::fs::remove_file(&tmp).unwrap();
    std::fs::create_dir(&tmp).unwrap();

    // No node: the stats sections and the logs say why.
    let none = tmp.join("none.sock");
    let stdout = diags(
        &tmp,
        &[
            "--control-socket",
            &none.display().to_string(),
            "--log-dir",
            "/nonexistent-brindle-logs",
        ],
    );
    assert!(
        stdout.starts_with("Collecting diagnostics\nUsing temp dir: "),
        "{stdout}"
    );
    let bundle = bundle_of(&stdout);
    assert!(
        bundle.starts_with(&tmp.display().to_string()) && bundle.ends_with(".tar.gz"),
        "{bundle}"
    );
    let listed = tar(&["-tzf", &bundle]);
    let mut expected = vec!["diagnostics/".to_string()];
    expected.extend(
        cli::ctl::node_diags::member_names()
            .iter()
            .map(|n| format!("diagnostics/{n}")),
    );
    expected.extend([
        "diagnostics/logs/".to_string(),
        "diagnostics/logs/README".to_string(),
    ]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), expected);
    for n in ["ip_link", "ip_route", "ip_netns", "bpf_net", "ipv4_route"] {
        assert!(expected.contains(&format!("diagnostics/{n}")), "{n}");
    }
    let stats = tar(&["-xzOf", &bundle, "diagnostics/node_stats.json"]);
    assert!(
        stats.starts_with("brindlectl could not collect this section: connecting to ")
            && stats.contains("none.sock"),
        "{stats}"
    );
    let readme = tar(&["-xzOf", &bundle, "diagnostics/logs/README"]);
    assert!(readme.contains("/nonexistent-brindle-logs"), "{readme}");
    let hostname = tar(&["-xzOf", &bundle, "diagnostics/hostname"]);
    assert!(!hostname.trim().is_empty());

    // A node answering on its control socket, and a log directory.
    let sock = tmp.join("node.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(
            br#"{"rx_packets": 7, "bgp_peers": [{"address": "10.0.0.2", "state": "Established"}]}"#,
        )
        .unwrap();
    });
    let logs = tmp.join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(logs.join("brindle-node.log"), "started\n").unwrap();
    let stdout = diags(
        &tmp,
        &[
            "--control-socket",
            &sock.display().to_string(),
            "--log-dir",
            &logs.display().to_string(),
        ],
    );
    server.join().unwrap();
    let bundle = bundle_of(&stdout);
    let stats = tar(&["-xzOf", &bundle, "diagnostics/node_stats.json"]);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["rx_packets"], 7);
    let peers = tar(&["-xzOf", &bundle, "diagnostics/bgp_peers.json"]);
    assert!(
        peers.contains("10.0.0.2") && peers.contains("Established"),
        "{peers}"
    );
    assert_eq!(
        tar(&["-xzOf", &bundle, "diagnostics/logs/brindle-node.log"]),
        "started\n"
    );
}
