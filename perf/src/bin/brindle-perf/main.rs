//! `brindle-perf`: UDP generator and sink, and the benchmarks that compare brindle with its
//! baselines (the kernel dataplane, BIRD, one IPAM client) in one run each; `report` makes
//! the Markdown report and plots of their results.

mod cli;

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Cmd};
use lab::{udp, xdpgen};
use perf::rows::Benchmark;
use perf::{
    bgp_learn, controlplane, crossnode, e2e, ipam_alloc, options, policy_bench, report, results,
    scale,
};

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::UdpSend {
            dst,
            port,
            size,
            duration,
            batch,
        } => {
            let duration = options::seconds("duration", duration)?;
            let report = udp::udp_send(SocketAddrV4::new(dst, port), size, duration, batch)?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Cmd::UdpSink {
            port,
            duration,
            idle_ms,
            ready_file,
        } => {
            let duration = options::seconds("duration", duration)?;
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
                duration: options::seconds("duration", duration)?,
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
                duration: options::seconds("duration", duration)?,
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
            traffic,
            out,
            queues,
            queue_mode,
        } => {
            lab::cmd::stop_on_signals();
            let duration = options::whole_seconds("duration", duration, 0..=3600)?;
            traffic.check()?;
            if !queues.is_empty() {
                let out = if out == std::path::Path::new("perf/results/scale.json") {
                    PathBuf::from("perf/results/scale-queues.json")
                } else {
                    out
                };
                let opts = scale::QueuesOptions {
                    brindle_node,
                    perf_exe: options::perf_exe().context("locating brindle-perf itself")?,
                    duration,
                    frame_size: traffic.size,
                    batch: traffic.batch,
                    port: traffic.port,
                    queues,
                    mode: queue_mode,
                    rounds,
                    work_dir: options::work_dir("brindle-perf-scale-q"),
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
                options::announce(&out, &md_path, &md);
                return Ok(());
            }
            let opts = scale::ScaleOptions {
                brindle_node,
                perf_exe: options::perf_exe().context("locating brindle-perf itself")?,
                duration,
                frame_size: traffic.size,
                batch: traffic.batch,
                port: traffic.port,
                idle,
                modes,
                rounds,
                work_dir: options::work_dir("brindle-perf-scale"),
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
            options::announce(&out, &md_path, &md);
        }
        Cmd::E2e {
            brindle_node,
            duration,
            pings,
            out,
            traffic,
            node_mode,
            sizes,
            generator,
            testpmd,
            tap,
        } => {
            // Ctrl-C or SIGTERM: give up waiting so that labs and children are cleaned up.
            lab::cmd::stop_on_signals();
            let duration = options::whole_seconds("duration", duration, 0..=3600)?;
            options::pings(pings)?;
            options::node_mode(&node_mode)?;
            traffic.check()?;
            let opts = e2e::E2eOptions {
                brindle_node,
                perf_exe: options::perf_exe().context("locating brindle-perf itself")?,
                duration,
                pings,
                frame_size: traffic.size,
                batch: traffic.batch,
                port: traffic.port,
                work_dir: options::work_dir("brindle-perf"),
                node_mode,
                generator,
                testpmd,
                workload_port: if tap {
                    lab::WorkloadPort::Tap
                } else {
                    lab::WorkloadPort::Veth
                },
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
            options::announce(&out, &md_path, &e2e::markdown(&report));
        }
        Cmd::Crossnode {
            brindle_node,
            duration,
            pings,
            out,
            traffic,
            node_mode,
            node_cpus,
            clang,
            rounds,
        } => {
            lab::cmd::stop_on_signals();
            let duration = options::whole_seconds("duration", duration, 1..=600)?;
            options::pings(pings)?;
            options::rounds(rounds, 1..=20)?;
            options::node_mode(&node_mode)?;
            traffic.check()?;
            let node_cpus = crossnode::parse_node_cpus(&node_cpus).map_err(anyhow::Error::msg)?;
            let opts = crossnode::CrossnodeOptions {
                brindle_node,
                perf_exe: options::perf_exe().context("locating brindle-perf itself")?,
                duration,
                pings,
                frame_size: traffic.size,
                batch: traffic.batch,
                port: traffic.port,
                work_dir: options::work_dir("brindle-crossnode"),
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
            options::announce(&out, &md_path, &crossnode::markdown(&report));
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
            traffic,
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
                duration: options::seconds("duration", duration)?,
                rounds,
                frame_size: traffic.size,
                batch: traffic.batch,
                port: traffic.port,
                rules: single.unwrap_or(1000),
                node_mode,
                work_dir: options::work_dir("brindle-policy"),
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
                options::announce(&sweep_out, &md_path, &policy_bench::sweep_markdown(&sweep));
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
            options::announce(&out, &md_path, &policy_bench::markdown(&report));
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
            let md_path = controlplane::write_report(Benchmark::CniLatency, &report, &md, &out)?;
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
            let timeout = options::seconds("timeout", timeout)?;
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
            let md_path = controlplane::write_report(Benchmark::Resync, &report, &md, &out)?;
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
            wiring,
            clang,
        } => {
            use perf::scenarios;
            lab::cmd::stop_on_signals();
            let work_dir = options::work_dir("brindle-scenarios");
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
            opts.wiring = scenarios::Wiring::parse(&wiring).map_err(anyhow::Error::msg)?;
            opts.clang = clang;
            let report = scenarios::run(&opts).with_context(|| {
                format!(
                    "scenarios failed; configs and logs kept in {}",
                    opts.work_dir.display()
                )
            })?;
            let md_path = scenarios::write_report(&report, &out)?;
            options::announce(&out, &md_path, &scenarios::markdown(&report));
            let _ = std::fs::remove_dir_all(&opts.work_dir);
        }
        Cmd::Ipam {
            etcd,
            clients,
            allocs,
            rounds,
            out,
        } => {
            let opts = ipam_alloc::IpamAllocOptions {
                etcd,
                clients,
                allocs,
                rounds,
            };
            let report = ipam_alloc::run(&opts).context("ipam")?;
            let md = ipam_alloc::markdown(&report);
            let md_path = write(Benchmark::IpamAlloc, &report, &md, &out)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            options::announce(&out, &md_path, &md);
        }
        Cmd::IpamWorker {
            store,
            host,
            count,
            handle_prefix,
            pool,
            block_size,
            release_every,
        } => {
            let opts = ipam_alloc::WorkerOptions {
                store,
                host,
                count,
                handle_prefix,
                pool,
                block_size,
                release_every,
            };
            println!("{}", ipam_alloc::worker(&opts)?);
        }
        Cmd::BgpLearn {
            prefixes,
            timeout_secs,
            rounds,
            bird_first,
            gobgp_gogc,
            trace,
            out,
        } => {
            let opts = bgp_learn::BgpLearnOptions {
                prefixes,
                timeout: Duration::from_secs(timeout_secs),
                rounds,
                bird_first,
                gobgp_gogc,
                trace,
            };
            let report = bgp_learn::run(&opts).map_err(|e| anyhow::anyhow!("bgp-learn: {e}"))?;
            let md = bgp_learn::markdown(&report);
            let md_path = write(Benchmark::BgpLearn, &report, &md, &out)?;
            options::announce(&out, &md_path, &md);
        }
        Cmd::BgpLearnSpeaker {
            prefixes,
            timeout_secs,
            trace,
        } => bgp_learn::speaker(prefixes, Duration::from_secs(timeout_secs), trace)
            .map_err(|e| anyhow::anyhow!("bgp-learn-speaker: {e}"))?,
        Cmd::BgpWriteMrt { path, prefixes } => bgp_learn::write_mrt(&path, prefixes)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?,
        Cmd::Summarise { files } => {
            for file in files {
                let added = results::add_summary(&file).map_err(write_error)?;
                let done = if added { "added" } else { "already there" };
                eprintln!("{}: summary {done}", file.display());
            }
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
                read.comparisons().count(),
                plots.len(),
                opts.plots_dir.display()
            );
        }
    }
    Ok(())
}

fn write_error(e: results::WriteError) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.what, e.source)
}

/// Writes the JSON (with its summary) and the Markdown of the benchmarks of this file.
fn write(
    benchmark: Benchmark,
    json: &impl serde::Serialize,
    md: &str,
    out: &std::path::Path,
) -> Result<PathBuf> {
    results::write_json_and_markdown(benchmark, json, md, out).map_err(write_error)
}
