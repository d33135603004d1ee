//! `brindle-node`: the per-host node service.
//!
//! `brindle-node --config node.toml` runs the dataplane until SIGTERM or SIGINT, and re-reads
//! and applies node.toml on SIGHUP;
//! `brindle-node stats` prints the running node's counters as JSON.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use control::config::DEFAULT_CONTROL_SOCKET;

#[derive(Parser)]
#[command(name = "brindle-node", version, about = "Brindle node service: AF_XDP vRouter for Calico-style networking")]
struct Cli {
    /// Node configuration file.
    #[arg(long, short, default_value = "/etc/brindle/node.toml")]
    config: PathBuf,
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
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Stats { socket }) => {
            let socket = match socket {
                Some(s) => s,
                None if cli.config.exists() => control::node::load_config(&cli.config)?.0.control_socket,
                None => PathBuf::from(DEFAULT_CONTROL_SOCKET),
            };
            let report = control::stats::fetch(&socket)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        None => {
            let stop = Arc::new(AtomicBool::new(false));
            for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
                signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
            }
            control::node::run(&cli.config, stop)
        }
    }
}
