//! `brindle-node stats` as a shell pipeline uses it: a reader that stops early must not make
//! it panic (no root needed: a test socket stands in for the node).

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::Duration;

const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");

#[test]
fn stats_into_a_pipe_closed_early_ends_quietly() {
    let dir = std::env::temp_dir().join(format!("brindle-stats-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("node.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    // A stats document far larger than a pipe's buffer, so that the writer meets the close.
    let big: Vec<String> = (0..20_000).map(|i| format!("\"port-{i}\"")).collect();
    let doc = format!("{{\"ports\":[{}]}}\n", big.join(","));
    let server = std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let _ = conn.write_all(doc.as_bytes());
        }
    });
    let mut child = Command::new(NODE_BIN)
        .args(["stats", "--socket"])
        .arg(&socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 16];
    let mut stdout = child.stdout.take().unwrap();
    stdout.read_exact(&mut head).unwrap();
    drop(stdout);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "stats did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let _ = server.join();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(head.starts_with(b"{"), "{head:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success(), "{status}: {stderr}");
}
