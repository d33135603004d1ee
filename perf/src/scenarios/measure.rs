//! The tests of the scenario suite: ping, iperf3 TCP/UDP and HTTP (nginx with ab or wrk) between two ends of a lab.

use super::*;

/// Runs one test between `from` and `to`; the metrics as the tool reported them.
pub(super) fn measure(
    opts: &ScenarioOptions,
    test: TestKind,
    from: &Endpoint,
    to: &Endpoint,
    dir: &Path,
) -> Result<Metrics, BenchError> {
    match test {
        TestKind::Ping => {
            let (latencies, sent) = e2e::ping_between(&from.netns, to.ip, opts.pings)?;
            ping_metrics(&latencies, sent)
        }
        TestKind::IperfTcp => parse_iperf_tcp(&iperf(opts, from, to, Iperf::Tcp { streams: 1 })?),
        TestKind::IperfTcp4 => parse_iperf_tcp(&iperf(opts, from, to, Iperf::Tcp { streams: 4 })?),
        TestKind::IperfUdp => parse_iperf_udp(&iperf(opts, from, to, Iperf::Udp)?),
        TestKind::IperfUdpHog => {
            let _hog = CpuHog::start(Duration::from_secs(u64::from(opts.iperf_secs) + 10))?;
            parse_iperf_udp(&iperf(opts, from, to, Iperf::Udp)?)
        }
        TestKind::HttpAb | TestKind::HttpWrk => {
            let server = Nginx::start(&to.netns, to.ip, &dir.join("nginx"))?;
            let url = format!("http://{}:{HTTP_PORT}/{HTTP_FILE}", to.ip);
            let secs = opts.http_secs.to_string();
            let concurrency = opts.http_concurrency.to_string();
            let timeout = Duration::from_secs(u64::from(opts.http_secs) + 30);
            let (tool, out) = if test == TestKind::HttpAb {
                // -t first: it implies -n 50000, which the -n after it replaces.
                let requests = opts.http_requests.to_string();
                let args = [
                    "ab",
                    "-q",
                    "-s",
                    "5",
                    "-t",
                    &secs,
                    "-n",
                    &requests,
                    "-c",
                    &concurrency,
                    &url,
                ];
                ("ab", exec(&from.netns, &args, timeout)?)
            } else {
                let args = [
                    "wrk",
                    "-t",
                    "1",
                    "-c",
                    &concurrency,
                    "-d",
                    &format!("{secs}s"),
                    "--timeout",
                    "2s",
                    "--latency",
                    &url,
                ];
                ("wrk", exec(&from.netns, &args, timeout)?)
            };
            server.stop()?;
            let text = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                return Err(BenchError::Run(format!(
                    "{tool} failed ({}): {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim(),
                    text.trim()
                )));
            }
            if tool == "ab" {
                parse_ab(&text)
            } else {
                parse_wrk(&text)
            }
        }
    }
}

/// What an iperf3 client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Iperf {
    /// TCP over `streams` parallel connections (`-P`).
    Tcp { streams: u8 },
    /// UDP at the options' rate.
    Udp,
}

/// A process that keeps one CPU busy (a shell loop, unpinned, as another workload would),
/// bounded by `timeout(1)` and killed when dropped.
pub(super) struct CpuHog {
    _process: ChildGuard,
}

impl CpuHog {
    pub(super) fn start(at_most: Duration) -> Result<CpuHog, BenchError> {
        let child = Command::new("timeout")
            .args([
                &at_most.as_secs().to_string(),
                "sh",
                "-c",
                "while :; do :; done",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io_err("starting the CPU hog"))?;
        Ok(CpuHog {
            _process: ChildGuard::new("cpu hog", child),
        })
    }
}

/// An iperf3 server in `to` for one test (`-1`), the client in `from`; the client's JSON.
pub(super) fn iperf(
    opts: &ScenarioOptions,
    from: &Endpoint,
    to: &Endpoint,
    kind: Iperf,
) -> Result<String, BenchError> {
    let port = IPERF_PORT.to_string();
    let bind = to.ip.to_string();
    let server_child = Command::new("ip")
        .args([
            "netns", "exec", &to.netns, "iperf3", "-s", "-1", "-B", &bind, "-p", &port,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err("starting the iperf3 server"))?;
    let mut server = ChildGuard::new("iperf3 server", server_child);
    wait_listening(&to.netns, IPERF_PORT, &mut server)?;
    let secs = opts.iperf_secs.to_string();
    let mut args = vec![
        "iperf3",
        "-c",
        &bind,
        "-p",
        &port,
        "-t",
        &secs,
        "-J",
        "--connect-timeout",
        "3000",
    ];
    let rate = format!("{}M", opts.udp_mbit);
    let length = UDP_DATAGRAM_BYTES.to_string();
    let parallel;
    match kind {
        Iperf::Udp => args.extend(["-u", "-b", &rate, "-l", &length]),
        Iperf::Tcp { streams: 1 } => {}
        Iperf::Tcp { streams } => {
            parallel = streams.to_string();
            args.extend(["-P", &parallel]);
        }
    }
    let out = exec(
        &from.netns,
        &args,
        Duration::from_secs(u64::from(opts.iperf_secs) + 20),
    )?;
    // The server leaves after its one test; stop it anyway on every path.
    server.terminate(Duration::from_secs(2));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() && !text.contains("\"end\"") {
        return Err(BenchError::Run(format!(
            "iperf3 client failed ({}): {}",
            out.status,
            text.lines()
                .find(|l| l.contains("\"error\""))
                .unwrap_or(text.trim())
        )));
    }
    Ok(text)
}

/// Polls `ss` in `ns` until something listens on TCP `port` (iperf3's control connection
/// is TCP for UDP tests too).
pub(super) fn wait_listening(
    ns: &str,
    port: u16,
    server: &mut ChildGuard,
) -> Result<(), BenchError> {
    let filter = format!("sport = :{port}");
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    loop {
        let out = exec(ns, &["ss", "-Hltn", &filter], Duration::from_secs(3))?;
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return Ok(());
        }
        if server.try_wait().is_some() || Instant::now() >= deadline || cmd::interrupted() {
            return Err(BenchError::Run(format!(
                "nothing listened on port {port} in {ns} within {LISTEN_TIMEOUT:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// nginx in a workload: its own config, pid file and document root in a temp dir, in the
/// foreground (`daemon off`), no access log; stopped by its pid.
pub struct Nginx {
    process: ChildGuard,
    pid_file: PathBuf,
}

/// The configuration [`Nginx`] runs with, everything under `dir`.
pub fn nginx_config(dir: &Path, listen: Ipv4Addr) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
         server {{\n    listen {listen}:{HTTP_PORT};\n    root {d}/www;\n  }}\n}}\n"
    )
}

impl Nginx {
    pub fn start(ns: &str, listen: Ipv4Addr, dir: &Path) -> Result<Nginx, BenchError> {
        let www = dir.join("www");
        std::fs::create_dir_all(&www).map_err(io_err(format!("creating {}", www.display())))?;
        let page = dir.join("www").join(HTTP_FILE);
        std::fs::write(&page, "x".repeat(HTTP_FILE_BYTES))
            .map_err(io_err(format!("writing {}", page.display())))?;
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx_config(dir, listen))
            .map_err(io_err(format!("writing {}", conf.display())))?;
        let pid_file = dir.join("nginx.pid");
        let _ = std::fs::remove_file(&pid_file);
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "nginx", "-c"])
            .arg(&conf)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io_err("starting nginx"))?;
        let mut process = ChildGuard::new("nginx", child);
        wait_listening(ns, HTTP_PORT, &mut process).map_err(|e| {
            BenchError::Run(format!(
                "{e}; nginx error log: {}",
                log_tail(&dir.join("error.log"))
            ))
        })?;
        Ok(Nginx { process, pid_file })
    }

    /// SIGTERM to the pid nginx wrote (the master, which `ip netns exec` became), then the
    /// guard's own stop as a backstop.
    pub fn stop(self) -> Result<(), BenchError> {
        let written = std::fs::read_to_string(&self.pid_file).ok();
        let held = self.process.id();
        if let (Some(written), Some(held)) = (written, held) {
            if written.trim() != held.to_string() {
                return Err(BenchError::Run(format!(
                    "nginx pid file says {} but the process started is {held}",
                    written.trim()
                )));
            }
        }
        self.process.terminate(Duration::from_secs(3));
        Ok(())
    }
}
