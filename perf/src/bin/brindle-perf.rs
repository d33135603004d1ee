//! `brindle-perf`: UDP generator and sink, and the end-to-end benchmark that compares the
//! kernel dataplane with brindle in one run.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use lab::{udp, xdpgen};
use perf::{controlplane, crossnode, e2e, e2e_xdp, policy_bench, report, scale};

#[derive(Parser)]
#[command(
    name = "brindle-perf",
    about = "Traffic generator, sink and end-to-end benchmark"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send UDP with sendmmsg for a while; prints {"sent", "secs", "refused_batches"}.
    UdpSend {
        #[arg(long)]
        dst: Ipv4Addr,
        #[arg(long)]
        port: u16,
        /// Ethernet frame size in bytes, FCS included (64 = 18 bytes of payload).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Seconds to send for (fractions allowed).
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Receive UDP with recvmmsg for a while; prints {"received", "bytes", "secs"}.
    UdpSink {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Stop early once traffic has stopped for this many milliseconds.
        #[arg(long)]
        idle_ms: Option<u64>,
        /// File created once the socket is bound, so that a generator can wait for it.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// UDP pps between two workloads with 2 vs 2 + N idle workloads attached, per worker
    /// mode, in one lab; JSON + Markdown report with the ratio.
    Scale {
        #[arg(long)]
        brindle_node: PathBuf,
        /// Idle workloads attached in the "many" runs.
        #[arg(long, default_value_t = 500)]
        idle: usize,
        #[arg(long, value_delimiter = ',', default_value = "poll,interrupt")]
        modes: Vec<String>,
        #[arg(long, default_value_t = 1)]
        rounds: usize,
        #[arg(long, default_value_t = 5)]
        duration: u64,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 5201)]
        port: u16,
        #[arg(long, default_value = "perf/results/scale.json")]
        out: PathBuf,
        /// Instead of idle workloads: pps from outside through an uplink veth with each of
        /// these queue counts (e.g. 1,2), one worker per queue; written to --out, or
        /// perf/results/scale-queues.json when --out is left as it is.
        #[arg(long, value_delimiter = ',')]
        queues: Vec<u32>,
        /// Worker mode of the --queues runs.
        #[arg(long, default_value = "interrupt")]
        queue_mode: String,
    },
    /// Send stamped UDP frames on an AF_XDP socket of --dev (run inside the workload
    /// namespace); prints the XdpSendReport as JSON.
    XdpSend {
        #[arg(long, default_value = "eth0")]
        dev: String,
        #[arg(long)]
        dst: Ipv4Addr,
        #[arg(long)]
        port: u16,
        /// Ethernet frame size in bytes, FCS included (64..1518).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Seconds to send for (fractions allowed).
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Stop after this many frames (0: only the duration bounds the run).
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// Frames per second (0: flat out).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long, default_value_t = 64)]
        batch: usize,
    },
    /// Receive stamped UDP frames on AF_XDP sockets of --dev (fastpath's XDP program sends
    /// every frame there; ARP for the interface's address is answered); prints the
    /// XdpSinkReport (loss, reordering, latency percentiles) as JSON.
    XdpSink {
        #[arg(long, default_value = "eth0")]
        dev: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Stop early once traffic has stopped for this many milliseconds.
        #[arg(long)]
        idle_ms: Option<u64>,
        /// Stop after this many stamped frames (0: no limit).
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// File created once the sockets receive, so that a generator can wait for it.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Kernel lab then brindle lab: UDP pps, ping RTT, busy cores; JSON + Markdown report.
    E2e {
        /// brindle-node binary; without it only the kernel side runs.
        #[arg(long)]
        brindle_node: Option<PathBuf>,
        #[arg(long, default_value_t = 5)]
        duration: u64,
        #[arg(long, default_value_t = 500)]
        pings: u32,
        #[arg(long, default_value = "perf/results/e2e.json")]
        out: PathBuf,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 5201)]
        port: u16,
        /// brindle-node worker mode: poll (busy, pinned to CPU 1) or interrupt.
        #[arg(long, default_value = "poll")]
        node_mode: String,
        /// Extra frame sizes (e.g. 64,512,1500): one more UDP run per size and side, in the
        /// same labs, for pps vs packet size.
        #[arg(long, value_delimiter = ',')]
        sizes: Vec<usize>,
        /// UDP generator and sink: socket (sendmmsg/recvmmsg) or xdp (AF_XDP, with loss and
        /// one-way latency percentiles).
        #[arg(long, default_value = "socket")]
        generator: e2e_xdp::Generator,
    },
    /// Two nodes on one segment, a workload each: kernel plain, kernel IPIP, brindle plain,
    /// brindle IPIP, one after the other; UDP pps, ping RTT, busy cores, path proof; JSON +
    /// Markdown report with brindle/kernel ratios per encapsulation.
    Crossnode {
        #[arg(long, default_value = "target/release/brindle-node")]
        brindle_node: PathBuf,
        /// Seconds of UDP per side.
        #[arg(long, default_value_t = 3)]
        duration: u64,
        #[arg(long, default_value_t = 500)]
        pings: u32,
        #[arg(long, default_value = "perf/results/crossnode.json")]
        out: PathBuf,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 5201)]
        port: u16,
        /// brindle-node worker mode: interrupt (two nodes share the cores) or poll.
        #[arg(long, default_value = "interrupt")]
        node_mode: String,
        /// Worker cores of node 1 and node 2: one for both ("1"), one each ("1,0"), or
        /// "none" (unpinned, the default: lowest RTT at the same pps on two cores).
        #[arg(long, default_value = "none")]
        node_cpus: String,
        /// Compiler of the kernel IPIP BPF program (kernels without the ipip driver).
        #[arg(long, default_value = "clang")]
        clang: String,
        /// Interleaved rounds of the four sides; each side reports its medians.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// One node, two workloads, 1,000 ingress rules on the sink: the kernel with Calico-style
    /// iptables and ipsets versus brindle-node in agent mode with the same GlobalNetworkPolicy;
    /// UDP pps for a few flows and for a new flow per packet, interleaved rounds, medians;
    /// JSON + Markdown report with brindle/kernel ratios.
    Policy {
        /// Directory holding brindle-node, brindle-cni, brindle-ipam and brindlectl.
        #[arg(long, default_value = "target/release")]
        brindle_bin_dir: PathBuf,
        /// Seconds of UDP per side, traffic kind and round.
        #[arg(long, default_value_t = 3.0)]
        duration: f64,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Rules in the policy; several (e.g. 10,100,1000,10000) sweep them in one run and
        /// write --sweep-out (pps vs number of rules); the report of 1000 rules, if among
        /// them, still goes to --out.
        #[arg(long, value_delimiter = ',', default_value = "1000")]
        rules: Vec<usize>,
        /// Where a sweep over several --rules counts writes its JSON (and Markdown beside it).
        #[arg(long, default_value = "perf/results/rules-sweep.json")]
        sweep_out: PathBuf,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// First allowed destination port (the policy allows 1024 from it on).
        #[arg(long, default_value_t = 5201)]
        port: u16,
        /// brindle-node worker mode: poll (busy, pinned to CPU 1) or interrupt.
        #[arg(long, default_value = "poll")]
        node_mode: String,
        /// The kernel side's iptables backend: legacy or nft.
        #[arg(long, default_value = "legacy")]
        iptables: String,
        #[arg(long, default_value = "perf/results/policy.json")]
        out: PathBuf,
    },
    /// CNI ADD, ADD-to-forwarding and DEL latency of N workloads plugged into one node in
    /// agent mode; JSON + Markdown report.
    CniLatency {
        /// Directory holding brindle-node, brindle-cni and brindle-ipam.
        #[arg(long, default_value = "target/release")]
        brindle_bin_dir: PathBuf,
        #[arg(long, default_value_t = 200)]
        workloads: usize,
        /// etcdv3 (started by the bench in the node namespace) or embedded.
        #[arg(long, default_value = "etcdv3")]
        datastore: String,
        #[arg(long, default_value = "perf/results/cni-latency.json")]
        out: PathBuf,
    },
    /// Time for a node in agent mode to sync N WorkloadEndpoints of its own (whose interfaces
    /// do not exist); JSON + Markdown report.
    Resync {
        /// Directory holding brindle-node.
        #[arg(long, default_value = "target/release")]
        brindle_bin_dir: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        endpoints: usize,
        /// etcdv3 (started by the bench in the node namespace) or embedded.
        #[arg(long, default_value = "etcdv3")]
        datastore: String,
        /// Parallel writers populating the datastore.
        #[arg(long, default_value_t = 4)]
        writers: usize,
        /// Skip the resync after a cut etcd connection.
        #[arg(long)]
        no_reconnect: bool,
        /// Seconds the node may take from start to every endpoint applied.
        #[arg(long, default_value_t = 120.0)]
        timeout: f64,
        #[arg(long, default_value = "perf/results/resync.json")]
        out: PathBuf,
    },
    /// The scenario suite: ping, iperf3 TCP/UDP and HTTP (nginx, ab, wrk) for pod-to-pod,
    /// pod-to-node and node-to-node in a one-node, an L2 and an IPIP lab, each through the
    /// kernel then brindle; JSON + Markdown report with brindle/kernel ratios.
    Scenarios {
        /// Directory holding brindle-node.
        #[arg(long, default_value = "target/release")]
        brindle_bin_dir: PathBuf,
        #[arg(long, default_value = "perf/results/scenarios.json")]
        out: PathBuf,
        /// Short counts and durations (a minute or two in all).
        #[arg(long)]
        quick: bool,
        /// Labs to run: one-node, l2, ipip [default: all].
        #[arg(long, value_delimiter = ',')]
        labs: Vec<String>,
        /// Tests to run: ping, iperf-tcp, iperf-udp, http-ab, http-wrk [default: all].
        #[arg(long, value_delimiter = ',')]
        tests: Vec<String>,
        #[arg(long)]
        pings: Option<u32>,
        /// Seconds per iperf3 run.
        #[arg(long)]
        iperf_secs: Option<u32>,
        /// Offered rate of the iperf3 UDP test, Mbit/s.
        #[arg(long)]
        udp_mbit: Option<u32>,
        /// ab's request count (ab also stops at --http-secs).
        #[arg(long)]
        http_requests: Option<u32>,
        #[arg(long)]
        http_concurrency: Option<u32>,
        /// wrk's duration and ab's time limit, seconds.
        #[arg(long)]
        http_secs: Option<u32>,
        /// brindle-node worker mode: interrupt or poll.
        #[arg(long, default_value = "interrupt")]
        node_mode: String,
        /// Compiler of the kernel IPIP BPF program (kernels without the ipip driver).
        #[arg(long, default_value = "clang")]
        clang: String,
    },
    /// Markdown report and SVG/PNG plots from every results JSON in a directory: brindle vs
    /// kernel per benchmark with the ratio from the same run, CNI latency CDFs.
    Report {
        /// Directory whose *.json files are read.
        #[arg(long, default_value = "perf/results")]
        results: PathBuf,
        /// Markdown report [default: <results>/report.md].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Directory for the plots [default: <results>/plots].
        #[arg(long)]
        plots: Option<PathBuf>,
        /// TrueType font for the text in the plots [default: DejaVu Sans from fonts-dejavu-core].
        #[arg(long)]
        font: Option<PathBuf>,
    },
}

fn seconds(field: &str, value: f64) -> Result<Duration> {
    // Bounded so that a typo cannot start a run of days.
    anyhow::ensure!(
        value.is_finite() && (0.0..=3600.0).contains(&value),
        "invalid {field} {value}: must be between 0 and 3600 seconds"
    );
    Ok(Duration::from_secs_f64(value))
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::UdpSend {
            dst,
            port,
            size,
            duration,
            batch,
        } => {
            let duration = seconds("duration", duration)?;
            let report = udp::udp_send(SocketAddrV4::new(dst, port), size, duration, batch)?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Cmd::UdpSink {
            port,
            duration,
            idle_ms,
            ready_file,
        } => {
            let duration = seconds("duration", duration)?;
            let mut ready_error = None;
            let report = udp::udp_sink(port, duration, idle_ms.map(Duration::from_millis), |_| {
                if let Some(path) = &ready_file {
                    if let Err(e) = std::fs::write(path, b"ready\n") {
                        ready_error = Some(format!("writing {}: {e}", path.display()));
                    }
                }
            })?;
            if let Some(e) = ready_error {
                anyhow::bail!(e);
            }
            println!("{}", serde_json::to_string(&report)?);
        }
        Cmd::XdpSend {
            dev,
            dst,
            port,
            size,
            duration,
            count,
            rate,
            batch,
        } => {
            let opts = xdpgen::SendOptions {
                dev,
                dst,
                port,
                frame_size: size,
                duration: seconds("duration", duration)?,
                count,
                rate_pps: rate,
                batch,
            };
            println!("{}", serde_json::to_string(&xdpgen::xdp_send(&opts)?)?);
        }
        Cmd::XdpSink {
            dev,
            port,
            duration,
            idle_ms,
            count,
            ready_file,
        } => {
            let opts = xdpgen::SinkOptions {
                dev,
                port,
                duration: seconds("duration", duration)?,
                idle: idle_ms.map(Duration::from_millis),
                count,
            };
            let mut ready_error = None;
            let report = xdpgen::xdp_sink(&opts, || {
                if let Some(path) = &ready_file {
                    if let Err(e) = xdpgen::touch(path) {
                        ready_error = Some(e.to_string());
                    }
                }
            })?;
            if let Some(e) = ready_error {
                anyhow::bail!(e);
            }
            println!("{}", serde_json::to_string(&report)?);
        }
        Cmd::Scale {
            brindle_node,
            idle,
            modes,
            rounds,
            duration,
            size,
            batch,
            port,
            out,
            queues,
            queue_mode,
        } => {
            lab::cmd::stop_on_signals();
            anyhow::ensure!(
                duration <= 3600,
                "invalid duration {duration}: at most 3600 s"
            );
            anyhow::ensure!(
                (1..=udp::MAX_BATCH).contains(&batch),
                "invalid batch {batch}: between 1 and {}",
                udp::MAX_BATCH
            );
            udp::payload_len(size)?;
            if !queues.is_empty() {
                let out = if out == std::path::Path::new("perf/results/scale.json") {
                    PathBuf::from("perf/results/scale-queues.json")
                } else {
                    out
                };
                let opts = scale::QueuesOptions {
                    brindle_node,
                    perf_exe: std::env::current_exe().context("locating brindle-perf itself")?,
                    duration: Duration::from_secs(duration),
                    frame_size: size,
                    batch,
                    port,
                    queues,
                    mode: queue_mode,
                    rounds,
                    work_dir: std::env::temp_dir()
                        .join(format!("brindle-perf-scale-q-{}", std::process::id())),
                };
                let report = scale::run_queues(&opts).with_context(|| {
                    format!(
                        "scale --queues failed; node configs and logs kept in {}",
                        opts.work_dir.display()
                    )
                })?;
                let _ = std::fs::remove_dir_all(&opts.work_dir);
                let md = scale::queues_markdown(&report);
                let md_path = scale::write_report(&report, &md, &out)?;
                print!("{md}");
                eprintln!("wrote {} and {}", out.display(), md_path.display());
                return Ok(());
            }
            let opts = scale::ScaleOptions {
                brindle_node,
                perf_exe: std::env::current_exe().context("locating brindle-perf itself")?,
                duration: Duration::from_secs(duration),
                frame_size: size,
                batch,
                port,
                idle,
                modes,
                rounds,
                work_dir: std::env::temp_dir()
                    .join(format!("brindle-perf-scale-{}", std::process::id())),
            };
            let report = scale::run(&opts).with_context(|| {
                format!(
                    "scale failed; node configs and logs kept in {}",
                    opts.work_dir.display()
                )
            })?;
            let _ = std::fs::remove_dir_all(&opts.work_dir);
            let md = scale::markdown(&report);
            let md_path = scale::write_report(&report, &md, &out)?;
            print!("{md}");
            eprintln!("wrote {} and {}", out.display(), md_path.display());
        }
        Cmd::E2e {
            brindle_node,
            duration,
            pings,
            out,
            size,
            batch,
            port,
            node_mode,
            sizes,
            generator,
        } => {
            // Ctrl-C or SIGTERM: give up waiting so that labs and children are cleaned up.
            lab::cmd::stop_on_signals();
            anyhow::ensure!(
                duration <= 3600,
                "invalid duration {duration}: at most 3600 s"
            );
            anyhow::ensure!(pings <= 100_000, "invalid pings {pings}: at most 100000");
            anyhow::ensure!(
                node_mode == "poll" || node_mode == "interrupt",
                "invalid node-mode {node_mode:?}: expected poll or interrupt"
            );
            anyhow::ensure!(
                (1..=udp::MAX_BATCH).contains(&batch),
                "invalid batch {batch}: between 1 and {}",
                udp::MAX_BATCH
            );
            udp::payload_len(size)?;
            let opts = e2e::E2eOptions {
                brindle_node,
                perf_exe: std::env::current_exe().context("locating brindle-perf itself")?,
                duration: Duration::from_secs(duration),
                pings,
                frame_size: size,
                batch,
                port,
                work_dir: std::env::temp_dir().join(format!("brindle-perf-{}", std::process::id())),
                node_mode,
                generator,
            };
            // The work dir (node.toml, node.log) is kept when the run fails, for the post-mortem.
            let report = e2e::run_with_sizes(&opts, &sizes).with_context(|| {
                format!(
                    "e2e failed; node config and log kept in {}",
                    opts.work_dir.display()
                )
            })?;
            let _ = std::fs::remove_dir_all(&opts.work_dir);
            let md_path = e2e::write_report(&report, &out)?;
            print!("{}", e2e::markdown(&report));
            eprintln!("wrote {} and {}", out.display(), md_path.display());
        }
        Cmd::Crossnode {
            brindle_node,
            duration,
            pings,
            out,
            size,
            batch,
            port,
            node_mode,
            node_cpus,
            clang,
            rounds,
        } => {
            lab::cmd::stop_on_signals();
            anyhow::ensure!(
                (1..=600).contains(&duration),
                "invalid duration {duration}: between 1 and 600 s per side"
            );
            anyhow::ensure!(pings <= 100_000, "invalid pings {pings}: at most 100000");
            anyhow::ensure!(
                (1..=20).contains(&rounds),
                "invalid rounds {rounds}: between 1 and 20"
            );
            anyhow::ensure!(
                node_mode == "poll" || node_mode == "interrupt",
                "invalid node-mode {node_mode:?}: expected poll or interrupt"
            );
            anyhow::ensure!(
                (1..=udp::MAX_BATCH).contains(&batch),
                "invalid batch {batch}: between 1 and {}",
                udp::MAX_BATCH
            );
            udp::payload_len(size)?;
            let node_cpus = crossnode::parse_node_cpus(&node_cpus).map_err(anyhow::Error::msg)?;
            let opts = crossnode::CrossnodeOptions {
                brindle_node,
                perf_exe: std::env::current_exe().context("locating brindle-perf itself")?,
                duration: Duration::from_secs(duration),
                pings,
                frame_size: size,
                batch,
                port,
                work_dir: std::env::temp_dir()
                    .join(format!("brindle-crossnode-{}", std::process::id())),
                node_mode,
                node_cpus,
                clang,
                rounds,
            };
            let report = crossnode::run(&opts).with_context(|| {
                format!(
                    "crossnode failed; configs and logs kept in {}",
                    opts.work_dir.display()
                )
            })?;
            let md_path = crossnode::write_report(&report, &out)?;
            print!("{}", crossnode::markdown(&report));
            eprintln!("wrote {} and {}", out.display(), md_path.display());
            // The report is written either way; a failed side fails the run. Its work dir
            // (node configs, logs, captures) stays for the post-mortem.
            if !report.failures.is_empty() {
                anyhow::bail!(
                    "{} side(s) failed; configs and logs kept in {}",
                    report.failures.len(),
                    opts.work_dir.display()
                );
            }
            let _ = std::fs::remove_dir_all(&opts.work_dir);
        }
        Cmd::Policy {
            brindle_bin_dir,
            duration,
            rounds,
            rules,
            size,
            batch,
            port,
            node_mode,
            iptables,
            out,
            sweep_out,
        } => {
            lab::cmd::stop_on_signals();
            let single = match rules[..] {
                [one] => Some(one),
                _ => None,
            };
            let opts = policy_bench::PolicyOptions {
                iptables: iptables.parse()?,
                bin_dir: brindle_bin_dir,
                duration: seconds("duration", duration)?,
                rounds,
                frame_size: size,
                batch,
                port,
                rules: single.unwrap_or(1000),
                node_mode,
                work_dir: std::env::temp_dir()
                    .join(format!("brindle-policy-{}", std::process::id())),
            };
            if single.is_none() {
                let mut written = Ok(());
                let sweep = policy_bench::run_sweep(&opts, &rules, |report| {
                    if report.rules == 1000 && written.is_ok() {
                        written = policy_bench::write_report(report, &out).map(|_| ());
                    }
                })
                .with_context(|| {
                    format!(
                        "policy sweep failed; node log kept in {}",
                        opts.work_dir.display()
                    )
                })?;
                written?;
                let _ = std::fs::remove_dir_all(&opts.work_dir);
                let md_path = policy_bench::write_sweep(&sweep, &sweep_out)?;
                print!("{}", policy_bench::sweep_markdown(&sweep));
                eprintln!("wrote {} and {}", sweep_out.display(), md_path.display());
                return Ok(());
            }
            let report = policy_bench::run(&opts).with_context(|| {
                format!(
                    "policy failed; node log kept in {}",
                    opts.work_dir.display()
                )
            })?;
            let _ = std::fs::remove_dir_all(&opts.work_dir);
            let md_path = policy_bench::write_report(&report, &out)?;
            print!("{}", policy_bench::markdown(&report));
            eprintln!("wrote {} and {}", out.display(), md_path.display());
        }
        Cmd::CniLatency {
            brindle_bin_dir,
            workloads,
            datastore,
            out,
        } => {
            lab::cmd::stop_on_signals();
            let opts = controlplane::CniLatencyOptions {
                bin_dir: brindle_bin_dir,
                workloads,
                datastore: datastore.parse()?,
            };
            let report = controlplane::run_cni_latency(&opts).context("cni-latency")?;
            let md = controlplane::cni_latency_markdown(&report);
            let md_path = controlplane::write_report(&report, &md, &out)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            print!("{md}");
            eprintln!("wrote {} and {}", out.display(), md_path.display());
        }
        Cmd::Resync {
            brindle_bin_dir,
            endpoints,
            datastore,
            writers,
            no_reconnect,
            timeout,
            out,
        } => {
            lab::cmd::stop_on_signals();
            let timeout = seconds("timeout", timeout)?;
            let opts = controlplane::ResyncOptions {
                bin_dir: brindle_bin_dir,
                endpoints,
                datastore: datastore.parse()?,
                writers,
                reconnect: !no_reconnect,
                timeout,
            };
            let report = controlplane::run_resync(&opts).context("resync")?;
            let md = controlplane::resync_markdown(&report);
            let md_path = controlplane::write_report(&report, &md, &out)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            print!("{md}");
            eprintln!("wrote {} and {}", out.display(), md_path.display());
            // The report is written either way; a node that did not sync is still a failure.
            if let Some(error) = &report.node_error {
                anyhow::bail!("the node did not sync {endpoints} endpoints: {error}");
            }
        }
        Cmd::Scenarios {
            brindle_bin_dir,
            out,
            quick,
            labs,
            tests,
            pings,
            iperf_secs,
            udp_mbit,
            http_requests,
            http_concurrency,
            http_secs,
            node_mode,
            clang,
        } => {
            use perf::scenarios;
            lab::cmd::stop_on_signals();
            let work_dir =
                std::env::temp_dir().join(format!("brindle-scenarios-{}", std::process::id()));
            let mut opts = scenarios::ScenarioOptions::defaults(brindle_bin_dir, work_dir, quick);
            if !labs.is_empty() {
                opts.labs = labs
                    .iter()
                    .map(|l| scenarios::LabKind::parse(l))
                    .collect::<Result<_, _>>()
                    .map_err(anyhow::Error::msg)?;
            }
            opts.tests = tests
                .iter()
                .map(|t| scenarios::TestKind::parse(t))
                .collect::<Result<_, _>>()
                .map_err(anyhow::Error::msg)?;
            opts.pings = pings.unwrap_or(opts.pings);
            opts.iperf_secs = iperf_secs.unwrap_or(opts.iperf_secs);
            opts.udp_mbit = udp_mbit.unwrap_or(opts.udp_mbit);
            opts.http_requests = http_requests.unwrap_or(opts.http_requests);
            opts.http_concurrency = http_concurrency.unwrap_or(opts.http_concurrency);
            opts.http_secs = http_secs.unwrap_or(opts.http_secs);
            opts.node_mode = node_mode;
            opts.clang = clang;
            let report = scenarios::run(&opts).with_context(|| {
                format!(
                    "scenarios failed; configs and logs kept in {}",
                    opts.work_dir.display()
                )
            })?;
            let md_path = scenarios::write_report(&report, &out)?;
            print!("{}", scenarios::markdown(&report));
            eprintln!("wrote {} and {}", out.display(), md_path.display());
            let _ = std::fs::remove_dir_all(&opts.work_dir);
        }
        Cmd::Report {
            results,
            out,
            plots,
            font,
        } => {
            let mut opts = report::ReportOptions::in_dir(&results);
            opts.out = out.unwrap_or(opts.out);
            opts.plots_dir = plots.unwrap_or(opts.plots_dir);
            opts.font = font;
            let (read, plots) = report::run(&opts)?;
            for skipped in &read.skipped {
                eprintln!("left out: {skipped}");
            }
            eprintln!(
                "wrote {} ({} comparisons) and {} plots in {}",
                opts.out.display(),
                read.comparisons.len(),
                plots.len(),
                opts.plots_dir.display()
            );
        }
    }
    Ok(())
}
