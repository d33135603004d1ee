//! etcd with mutual TLS end to end (issue 14, item 7): a real etcd serving clients on
//! https with `--client-cert-auth`, certificates made by openssl for the test, and every
//! client of the cluster using calicoctl's and Calico's names for the files: brindle-node
//! (`ETCD_CA_CERT_FILE`, `ETCD_CERT_FILE`, `ETCD_KEY_FILE`) registers its Node, brindlectl
//! (`etcdCACertFile`, `etcdCertFile`, `etcdKeyFile` in its config file) creates and reads a
//! pool, brindle-cni (netconf `etcd_ca_cert_file`, `etcd_cert_file`, `etcd_key_file`) ADDs
//! and DELs a container. A client without a certificate is refused with an error that says
//! so. The node's control socket is root-only. Root: network namespaces, XDP, etcd.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use lab::cni::CniPlugin;
use lab::etcd::{EtcdMemberSpec, EtcdTls};
use lab::node::NodeLaunch;
use lab::{Lab, LabSpec};
use testkit::tls::{make_certificates, Certificates};

const NODE_BIN: &str = env!("CARGO_BIN_EXE_brindle-node");
const CLIENT_URL: &str = "https://127.0.0.1:23791";

/// The lab's node namespace, the etcd in it, the certificates and a directory for files.
struct Host {
    lab: Lab,
    dir: PathBuf,
    certs: Certificates,
    etcd: Option<Child>,
    containers: Vec<String>,
}

impl Host {
    fn new() -> Host {
        let name = format!("mt{}", std::process::id() % 100_000);
        let lab = Lab::up(&LabSpec::new(name.clone(), 0)).expect("lab up");
        let dir = std::env::temp_dir().join(format!("brindle-mtls-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let certs = make_certificates(&dir);
        let member = EtcdMemberSpec {
            tls: Some(EtcdTls {
                cert_file: certs.server_cert.clone(),
                key_file: certs.server_key.clone(),
                trusted_ca_file: certs.ca.clone(),
            }),
            ..EtcdMemberSpec::single(
                lab.node_netns(),
                "m0",
                dir.join("etcd"),
                CLIENT_URL,
                "http://127.0.0.1:23801",
                dir.join("etcd.log"),
            )
        }
        .spawn()
        .expect("start etcd");
        Host {
            lab,
            dir,
            certs,
            etcd: Some(member),
            containers: Vec::new(),
        }
    }

    fn node_name(&self) -> String {
        format!("node-{}", self.lab.spec().name)
    }

    /// calicoctl.cfg naming the certificate files, or (`with_cert` false) only the CA.
    fn config(&self, with_cert: bool) -> PathBuf {
        let c = &self.certs;
        let mut spec = format!(
            "  datastoreType: etcdv3\n  etcdEndpoints: {CLIENT_URL}\n  etcdCACertFile: {}\n",
            c.ca.display()
        );
        if with_cert {
            spec.push_str(&format!(
                "  etcdCertFile: {}\n  etcdKeyFile: {}\n",
                c.client_cert.display(),
                c.client_key.display()
            ));
        }
        let path = self.dir.join(format!(
            "calicoctl-{}.cfg",
            if with_cert { "mtls" } else { "ca" }
        ));
        std::fs::write(
            &path,
            format!("apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n{spec}"),
        )
        .unwrap();
        path
    }

    /// brindlectl in the node's namespace with `config`; nothing else of the test's
    /// environment reaches it.
    fn brindlectl(&self, config: &Path, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.lab.node_netns()])
            .arg(testkit::workspace_bin("brindlectl"))
            .arg("-c")
            .arg(config)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .output()
            .unwrap()
    }

    /// Retries `brindlectl` until it succeeds (etcd is still starting) or 20 s pass.
    fn brindlectl_ok(&self, config: &Path, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.brindlectl(config, args);
            if out.status.success() {
                return text(&out.stdout);
            }
            assert!(
                Instant::now() < deadline,
                "brindlectl {args:?}: {}{}\netcd log:\n{}",
                text(&out.stdout),
                text(&out.stderr),
                self.etcd_log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn etcd_log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        tail.join("\n")
    }

    /// The netconf with Calico's etcd fields.
    fn netconf(&self) -> String {
        serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "mtls-net",
            "type": "brindle-cni",
            "nodename": self.node_name(),
            "datastore_type": "etcdv3",
            "etcd_endpoints": CLIENT_URL,
            "etcd_ca_cert_file": self.certs.ca,
            "etcd_cert_file": self.certs.client_cert,
            "etcd_key_file": self.certs.client_key,
            "ipam": { "type": "brindle-ipam" },
        })
        .to_string()
    }

    fn cni(&self, command: &str, ns: &str) -> lab::cni::CniOutcome {
        let cni = CniPlugin {
            bin_dir: testkit::workspace_bin_dir(&["brindle-cni", "brindle-ipam"]),
            plugin: "brindle-cni".into(),
            env: Vec::new(),
        };
        cni.invoke(
            &self.lab.node_netns(),
            command,
            &format!("{ns}0123abcd"),
            &PathBuf::from(format!("/var/run/netns/{ns}")),
            "eth0",
            &self.netconf(),
        )
        .unwrap()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for ns in &self.containers {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if let Some(mut etcd) = self.etcd.take() {
            let _ = etcd.kill();
            let _ = etcd.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn node_plugin_and_brindlectl_work_over_etcd_with_mutual_tls() {
    let mut host = Host::new();
    let mtls = host.config(true);

    // brindlectl: create, then get, over mutual TLS.
    let pool = host.dir.join("pool.yaml");
    std::fs::write(
        &pool,
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: mtls-pool\nspec:\n  cidr: 10.123.0.0/16\n  ipipMode: Never\n  blockSize: 26\n",
    )
    .unwrap();
    host.brindlectl_ok(&mtls, &["create", "-f", &pool.display().to_string()]);
    let got = host.brindlectl_ok(&mtls, &["get", "ippool", "mtls-pool", "-o", "yaml"]);
    assert!(got.contains("cidr: 10.123.0.0/16"), "{got}");

    // A client that trusts the CA but has no certificate of its own is refused, and told
    // why.
    let anonymous = host.brindlectl(&host.config(false), &["get", "ippools"]);
    let refused = text(&anonymous.stderr);
    assert!(
        !anonymous.status.success(),
        "no certificate, yet: {}",
        text(&anonymous.stdout)
    );
    assert!(
        refused.contains("certificate"),
        "the refusal does not say a certificate is missing: {refused}"
    );

    // brindle-node registers its Node over mutual TLS.
    let c = &host.certs;
    let socket = host.dir.join("run/node.sock");
    let node = NodeLaunch::new(host.lab.node_netns(), NODE_BIN, host.dir.join("node.log"))
        .env("NODENAME", host.node_name())
        .env("IP_AUTODETECTION_METHOD", "interface=eth0")
        .env("NO_DEFAULT_POOLS", "true")
        .env("DATASTORE_TYPE", "etcdv3")
        .env("ETCD_ENDPOINTS", CLIENT_URL)
        .env("ETCD_CA_CERT_FILE", c.ca.display().to_string())
        .env("ETCD_CERT_FILE", c.client_cert.display().to_string())
        .env("ETCD_KEY_FILE", c.client_key.display().to_string())
        .env("BRINDLE_CONTROL_SOCKET", socket.display().to_string())
        .control_socket(&socket)
        .start(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("brindle-node did not become ready: {e}"));
    let registered = host.brindlectl_ok(&mtls, &["get", "node", &host.node_name(), "-o", "yaml"]);
    assert!(
        registered.contains(&format!("name: {}", host.node_name())),
        "{registered}\nnode log:\n{}",
        node.log_tail()
    );
    // Its control socket is root-only.
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "control socket mode");

    // brindle-cni: ADD (IPAM from the pool, the endpoint written) and DEL, over mutual TLS.
    let ns = format!("{}-c1", host.lab.spec().name);
    assert!(Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap()
        .success());
    host.containers.push(ns.clone());
    let add = host.cni("ADD", &ns);
    assert!(add.success, "CNI ADD: {}\n{}", add.stdout, add.stderr);
    let address = add.json()["ips"][0]["address"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(address.starts_with("10.123."), "{}", add.stdout);
    let weps = host.brindlectl_ok(&mtls, &["get", "workloadendpoints", "-o", "yaml"]);
    assert!(weps.contains(&address), "{weps}");
    let del = host.cni("DEL", &ns);
    assert!(del.success, "CNI DEL: {}\n{}", del.stdout, del.stderr);
    let weps = host.brindlectl_ok(&mtls, &["get", "workloadendpoints", "-o", "yaml"]);
    assert!(!weps.contains(&address), "{weps}");

    drop(node);
}
