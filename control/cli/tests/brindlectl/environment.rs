//! Backend-independent behaviour: configuration from the environment or a config file,
//! and `node status`.

use std::io::Write;
use std::process::Command;

use testkit::TempDir;

use super::fixture::{pool, BRINDLECTL};

#[test]
fn environment_configures_the_datastore_without_a_config_file() {
    // Precondition of this test: no default config file that would take precedence.
    assert!(
        !std::path::Path::new("/etc/brindle/brindlectl.cfg").exists(),
        "/etc/brindle/brindlectl.cfg exists on this host"
    );
    let dir = TempDir::new("ctl-env");
    let store = dir.path().join("env.redb");
    let p = dir.path().join("p.yaml");
    std::fs::write(&p, pool("envpool", "10.120.0.0/24")).unwrap();
    let run = |args: &[&str]| {
        Command::new(BRINDLECTL)
            .args(args)
            .env("DATASTORE_TYPE", "embedded")
            .env("BRINDLE_EMBEDDED_PATH", &store)
            .env_remove("ETCD_ENDPOINTS")
            .output()
            .unwrap()
    };
    let out = run(&["create", "-f", p.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Successfully created 1 'IPPool' resource(s)\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(store.exists());
    assert!(String::from_utf8_lossy(&run(&["get", "ippools"]).stdout).contains("envpool"));
    let out = Command::new(BRINDLECTL)
        .args(["get", "ippools"])
        .env("DATASTORE_TYPE", "kubernetes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATASTORE_TYPE=\"kubernetes\""));
}

#[test]
fn config_file_errors_name_the_field() {
    let dir = TempDir::new("ctl-badcfg");
    let cfg = dir.path().join("bad.cfg");
    std::fs::write(&cfg, "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  datastoreType: kubernetes\n").unwrap();
    let out = Command::new(BRINDLECTL)
        .arg("-c")
        .arg(&cfg)
        .args(["get", "ippools"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("spec.datastoreType") && stderr.contains("kubernetes"),
        "{stderr}"
    );
    // A named config file must exist (the environment is not consulted instead).
    let out = Command::new(BRINDLECTL)
        .args(["-c", "/nonexistent/brindlectl.cfg", "get", "ippools"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/brindlectl.cfg"));
}

#[test]
fn node_status_reports_whether_a_node_runs_here() {
    // A stand-in for brindle-node's health endpoint on a free loopback port.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        use std::io::Read;
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf);
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
            .unwrap();
    });
    let no_socket = "/nonexistent/brindle-node.sock";
    let out = Command::new(BRINDLECTL)
        .args([
            "node",
            "status",
            "--health",
            &addr,
            "--control-socket",
            no_socket,
        ])
        .output()
        .unwrap();
    server.join().unwrap();
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stdout).as_ref()),
        (Some(0), "Calico process is running.\n\nIPv4 BGP status\nNo IPv4 peers found.\n\nIPv6 BGP status\nNo IPv6 peers found.\n\n")
    );
    // Nothing listens on the port any more.
    let out = Command::new(BRINDLECTL)
        .args([
            "node",
            "status",
            "--health",
            &addr,
            "--control-socket",
            no_socket,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Calico process is not running.\n"
    );
}
