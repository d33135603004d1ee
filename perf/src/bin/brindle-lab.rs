//! `brindle-lab`: build, inspect and remove a lab of network namespaces wired like Calico.
//! `up` records the lab in /run/brindle/labs/<name>.json so that `down` and `show` need only
//! the name.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use perf::lab::{self, Forwarding, Lab, LabSpec};

const RECORD_DIR: &str = "/run/brindle/labs";

#[derive(Parser)]
#[command(
    name = "brindle-lab",
    about = "Network-namespace labs wired like Calico's CNI"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the namespaces, veths, addresses and routes.
    Up {
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 2)]
        workloads: usize,
        /// First address of the pool; workload i gets pool_base + i.
        #[arg(long, default_value = "192.168.0.0")]
        pool_base: Ipv4Addr,
        /// Let Linux forward (proxy ARP, /32 routes) instead of brindle.
        #[arg(long)]
        kernel: bool,
        #[arg(long)]
        no_uplink: bool,
        /// Write a brindle-node config for this lab to FILE.
        #[arg(long, value_name = "FILE")]
        write_config: Option<PathBuf>,
        /// brindle-node mode for --write-config: poll | interrupt.
        #[arg(long, default_value = "interrupt")]
        mode: String,
        /// Control socket for --write-config.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Delete exactly the namespaces of the lab.
    Down {
        #[arg(long)]
        name: String,
        /// Workload count, if the lab was not recorded by `up`.
        #[arg(long)]
        workloads: Option<usize>,
    },
    /// Addresses, interfaces and routes of every namespace of the lab.
    Show {
        #[arg(long)]
        name: String,
        #[arg(long)]
        workloads: Option<usize>,
    },
}

fn record_path(name: &str) -> PathBuf {
    Path::new(RECORD_DIR).join(format!("{name}.json"))
}

/// The spec recorded by `up`, or one rebuilt from the command line.
fn recorded_spec(name: &str, workloads: Option<usize>) -> Result<LabSpec> {
    let path = record_path(name);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let spec: LabSpec = serde_json::from_slice(&bytes)
                .with_context(|| format!("reading lab record {}", path.display()))?;
            Ok(spec)
        }
        Err(_) => {
            let workloads = workloads
                .with_context(|| format!("no record {}; pass --workloads", path.display()))?;
            Ok(LabSpec::new(name, workloads))
        }
    }
}

fn main() -> Result<()> {
    // Interrupted halfway through `up`, the lab removes what it created instead of leaving it.
    perf::cmd::stop_on_signals();
    match Cli::parse().command {
        Cmd::Up {
            name,
            workloads,
            pool_base,
            kernel,
            no_uplink,
            write_config,
            mode,
            socket,
        } => {
            anyhow::ensure!(
                mode == "poll" || mode == "interrupt",
                "invalid mode {mode:?}: expected poll or interrupt"
            );
            let spec = LabSpec {
                name,
                workloads,
                pool_base,
                forwarding: if kernel {
                    Forwarding::Kernel
                } else {
                    Forwarding::Brindle
                },
                uplink: !no_uplink,
            };
            let lab = Lab::up(&spec)?;
            std::fs::create_dir_all(RECORD_DIR)
                .with_context(|| format!("creating {RECORD_DIR}"))?;
            std::fs::write(record_path(&spec.name), serde_json::to_vec_pretty(&spec)?)
                .with_context(|| format!("writing {}", record_path(&spec.name).display()))?;
            if let Some(path) = write_config {
                let socket = socket
                    .unwrap_or_else(|| PathBuf::from(format!("/run/brindle/{}.sock", spec.name)));
                std::fs::write(&path, lab.node_config_toml(&mode, &socket))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            print_summary(&lab);
            lab.keep();
        }
        Cmd::Down { name, workloads } => {
            let spec = recorded_spec(&name, workloads)?;
            lab::down_spec(&spec)?;
            let _ = std::fs::remove_file(record_path(&name));
        }
        Cmd::Show { name, workloads } => {
            let spec = recorded_spec(&name, workloads)?;
            let lab = Lab::attach(&spec)?;
            print_summary(&lab);
            print!("{}", lab.describe());
        }
    }
    Ok(())
}

fn print_summary(lab: &Lab) {
    let spec = lab.spec();
    println!(
        "lab {} ({:?} forwarding), node namespace {}, pool {}",
        spec.name,
        spec.forwarding,
        lab.node_netns(),
        spec.pool_cidr()
    );
    for w in lab.workloads() {
        println!(
            "  {:<10} {:<15} {} mac {}",
            w.netns, w.ip, w.host_interface, w.mac
        );
    }
    if let Some(u) = lab.uplink() {
        println!(
            "  uplink {} {} <-> {} eth0 {}",
            u.node_interface, u.node_ip, u.ext_netns, u.ext_ip
        );
    }
}
