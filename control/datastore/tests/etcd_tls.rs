//! The etcd backend over TLS with client certificates (calicoctl's `ETCD_CA_CERT_FILE`,
//! `ETCD_CERT_FILE`, `ETCD_KEY_FILE`): certificates made by `openssl` for the test.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use datastore::{Datastore, EtcdConfig, EtcdStore};

#[test]
fn etcd_over_tls_with_client_certificates() {
    let dir = common::TempDir::new("tls");
    common::tls::make_certificates(dir.path());
    let port = common::free_port();
    let peer_port = common::free_port();
    let url = format!("https://127.0.0.1:{port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    let log = std::fs::File::create(dir.path().join("etcd.log")).unwrap();
    let p = |name: &str| dir.path().join(name);
    let mut etcd = KillOnDrop(
        Command::new(common::ETCD_BINARY)
            .args([
                "--name",
                "tls0",
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args([
                "--initial-cluster",
                &format!("tls0={peer}"),
                "--initial-cluster-state",
                "new",
            ])
            .arg("--data-dir")
            .arg(p("data"))
            .arg("--cert-file")
            .arg(p("server.pem"))
            .arg("--key-file")
            .arg(p("server.key"))
            .arg("--trusted-ca-file")
            .arg(p("ca.pem"))
            .arg("--client-cert-auth")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );

    let config = EtcdConfig {
        endpoints: vec![url.clone()],
        ca_file: Some(p("ca.pem")),
        cert_file: Some(p("client.pem")),
        key_file: Some(p("client.key")),
        timeout: Duration::from_secs(2),
    };
    let store = EtcdStore::connect(config.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let result = loop {
        match store.put("/t/tls", b"secret") {
            Ok(rev) => break Ok(rev),
            Err(e) if Instant::now() >= deadline => break Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let read_back = store.get("/t/tls");
    // Without a client certificate the server refuses the client.
    let anonymous = EtcdStore::connect(EtcdConfig {
        cert_file: None,
        key_file: None,
        ..config
    })
    .unwrap();
    let refused = anonymous.get("/t/tls");
    etcd.kill();

    let rev = result.unwrap_or_else(|e| {
        let log = std::fs::read_to_string(p("etcd.log")).unwrap_or_default();
        panic!(
            "TLS put failed: {e}\n{}",
            log.lines().rev().take(20).collect::<Vec<_>>().join("\n")
        )
    });
    let kv = read_back
        .unwrap()
        .expect("the key written over TLS reads back");
    assert_eq!(
        (kv.value.as_slice(), kv.mod_revision),
        (&b"secret"[..], rev)
    );
    // Refused, with an error that names the missing setting.
    let refused = refused
        .expect_err("a client without a certificate must be refused")
        .to_string();
    assert!(
        refused.contains("no certificate") && refused.contains("ETCD_CERT_FILE"),
        "{refused}"
    );
}

/// The test's etcd, killed by its pid even when an assertion fails first.
struct KillOnDrop(std::process::Child);

impl KillOnDrop {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.kill();
    }
}
