//! `brindle-node`: the per-host node service.
//!
//! `brindle-node --config node.toml` runs the dataplane until SIGTERM or SIGINT, and re-reads
//! and applies node.toml on SIGHUP; without `--config` and without /etc/brindle/node.toml it
//! runs as calico-node does: configured by its environment (NODENAME, IP, DATASTORE_TYPE,
//! ETCD_ENDPOINTS, ...) and programmed from the datastore;
//! `brindle-node stats` prints the running node's counters as JSON.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use control::config::DEFAULT_CONTROL_SOCKET;

const DEFAULT_CONFIG: &str = "/etc/brindle/node.toml";

#[derive(Parser)]
#[command(
    name = "brindle-node",
    version,
    about = "Brindle node service: AF_XDP vRouter for Calico-style networking"
)]
struct Cli {
    /// Node configuration file (static mode). Default: /etc/brindle/node.toml if it exists,
    /// else the datastore mode configured by the environment.
    #[arg(long, short)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the counters of the running node as JSON.
    Stats {
        /// Control socket of the node (default: the config's control_socket).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = cli
        .config
        .clone()
        .or_else(|| Some(PathBuf::from(DEFAULT_CONFIG)).filter(|p| p.exists()));
    match cli.command {
        Some(Command::Stats { socket }) => {
            let socket = match socket {
                Some(s) => s,
                None => match &config {
                    Some(path) => control::node::load_config(path)?.0.control_socket,
                    None => std::env::var_os("BRINDLE_CONTROL_SOCKET")
                        .map_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET), PathBuf::from),
                },
            };
            let report = control::stats::fetch(&socket)?;
            let text = serde_json::to_string_pretty(&report)?;
            let mut stdout = std::io::stdout().lock();
            // A reader that stops early (`brindle-node stats | head`) closes the pipe: that
            // ends the output, it is not an error.
            match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
        None => {
            let stop = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(signal, stop.clone())
                    .context("installing signal handlers")?;
            }
            match config {
                Some(path) => control::node::run(&path, stop),
                None => control::node::run_agent(stop),
            }
        }
    }
}
