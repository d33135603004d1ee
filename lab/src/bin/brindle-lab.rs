//! `brindle-lab`: build, inspect and remove a lab of network namespaces wired like Calico.
//! `up` records the lab in /run/brindle/labs/<name>.json so that `down` and `show` need only
//! the name. `plug` and `unplug` add and remove containers the way a container runtime does:
//! a network namespace, and `brindle-cni` run with the CNI environment and a network
//! configuration on stdin (the datastore settings come from brindle-lab's own environment).
//!
//! `multi-up` builds several such nodes on one L2 segment, the last ones behind a router in
//! another subnet (`lab::MultiLab`), and records each node `<name><k>` as a lab of its
//! own, so that `plug --name <name><k>` plugs containers into node `k`; `multi-down` removes
//! all of it.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use lab::{self, Forwarding, Lab, LabSpec, MultiLab, MultiLabSpec, Offloads, WorkloadPort};

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
        /// Leave the veths' checksum and segmentation offloads as Linux creates them (as
        /// Calico does) instead of turning them off.
        #[arg(long)]
        offloads_on: bool,
        /// Make each workload's eth0 a TAP with virtio-net headers that brindle-node attaches
        /// to (whole 64 KiB TCP segments), instead of a veth.
        #[arg(long, conflicts_with = "kernel")]
        tap: bool,
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
    /// Create a container namespace `<name>-<container>` and plug it into `network` with
    /// brindle-cni (CNI ADD, run in the node namespace); prints the CNI result.
    Plug {
        #[arg(long)]
        name: String,
        #[arg(long)]
        container: String,
        #[arg(long)]
        network: String,
        /// Pools (CIDRs or names) to allocate from; default: every enabled pool.
        #[arg(long)]
        pool: Vec<String>,
        #[arg(long, default_value_t = 1500)]
        mtu: u32,
        /// Node name for the workload endpoint (default: the lab name).
        #[arg(long)]
        node: Option<String>,
        /// Directory holding brindle-cni and brindle-ipam (CNI_PATH).
        #[arg(long, default_value = "target/release")]
        cni_bin_dir: PathBuf,
    },
    /// CNI DEL for a plugged container, then remove its namespace.
    Unplug {
        #[arg(long)]
        name: String,
        #[arg(long)]
        container: String,
        #[arg(long)]
        network: String,
        #[arg(long)]
        node: Option<String>,
        #[arg(long, default_value = "target/release")]
        cni_bin_dir: PathBuf,
    },
    /// Several nodes (`<name>1-node`, ...) on one L2 segment (`<name>-sw`), the last `routed`
    /// of them in another subnet behind a router (`<name>-rt`); each node is recorded as lab
    /// `<name><k>` for `plug`.
    MultiUp {
        /// At most 7 characters of [a-z0-9], starting with a letter.
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// How many nodes (the last ones) sit behind the router.
        #[arg(long, default_value_t = 1)]
        routed: usize,
        /// Static workloads per node (192.168.k.i); CNI-plugged containers need none.
        #[arg(long, default_value_t = 0)]
        workloads: usize,
        /// Make each static workload's eth0 a TAP brindle-node attaches to, as `up --tap`.
        #[arg(long)]
        tap: bool,
    },
    /// Delete the containers plugged into the nodes, then exactly the lab's namespaces.
    MultiDown {
        #[arg(long)]
        name: String,
        /// Node count, if the lab was not recorded by `multi-up`.
        #[arg(long)]
        nodes: Option<usize>,
        #[arg(long, default_value_t = 1)]
        routed: usize,
        #[arg(long, default_value_t = 0)]
        workloads: usize,
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

fn multi_record_path(name: &str) -> PathBuf {
    Path::new(RECORD_DIR).join(format!("{name}.multi.json"))
}

/// The multi-node spec recorded by `multi-up`, or one rebuilt from the command line.
fn recorded_multi_spec(
    name: &str,
    nodes: Option<usize>,
    routed: usize,
    workloads: usize,
) -> Result<MultiLabSpec> {
    let path = multi_record_path(name);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("reading lab record {}", path.display())),
        Err(_) => {
            let nodes =
                nodes.with_context(|| format!("no record {}; pass --nodes", path.display()))?;
            Ok(MultiLabSpec {
                routed_nodes: routed,
                ..MultiLabSpec::new(name, nodes, workloads)
            })
        }
    }
}

fn write_record(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::create_dir_all(RECORD_DIR).with_context(|| format!("creating {RECORD_DIR}"))?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Removes the containers `plug` created for lab `name`, and its records.
fn forget_lab(name: &str) {
    for container in plugged(name) {
        let _ = lab::cmd::run_unchecked(
            &["ip", "netns", "del", &container],
            lab::cmd::CONFIG_TIMEOUT,
        );
    }
    let _ = std::fs::remove_file(plugged_path(name));
    let _ = std::fs::remove_file(record_path(name));
}

fn main() -> Result<()> {
    // Interrupted halfway through `up`, the lab removes what it created instead of leaving it.
    lab::cmd::stop_on_signals();
    match Cli::parse().command {
        Cmd::Up {
            name,
            workloads,
            pool_base,
            kernel,
            no_uplink,
            offloads_on,
            tap,
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
                offloads: if offloads_on {
                    Offloads::AsCreated
                } else {
                    Offloads::Off
                },
                workload_port: if tap {
                    WorkloadPort::Tap
                } else {
                    WorkloadPort::Veth
                },
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
            forget_lab(&name);
            lab::down_spec(&spec)?;
        }
        Cmd::MultiUp {
            name,
            nodes,
            routed,
            workloads,
            tap,
        } => {
            let spec = MultiLabSpec {
                routed_nodes: routed,
                workload_port: if tap {
                    WorkloadPort::Tap
                } else {
                    WorkloadPort::Veth
                },
                ..MultiLabSpec::new(name, nodes, workloads)
            };
            let multi = MultiLab::up(&spec)?;
            write_record(
                &multi_record_path(&spec.name),
                &serde_json::to_vec_pretty(&spec)?,
            )?;
            for k in 1..=spec.nodes {
                let node = spec.node_spec(k);
                write_record(&record_path(&node.name), &serde_json::to_vec_pretty(&node)?)?;
            }
            print_multi_summary(&multi);
            multi.keep();
        }
        Cmd::MultiDown {
            name,
            nodes,
            routed,
            workloads,
        } => {
            let spec = recorded_multi_spec(&name, nodes, routed, workloads)?;
            for k in 1..=spec.nodes {
                forget_lab(&spec.node_spec(k).name);
            }
            lab::down_multi_spec(&spec)?;
            let _ = std::fs::remove_file(multi_record_path(&name));
        }
        Cmd::Plug {
            name,
            container,
            network,
            pool,
            mtu,
            node,
            cni_bin_dir,
        } => {
            let spec = recorded_spec(&name, None)?;
            let netns = container_netns(&name, &container)?;
            lab::cmd::run(&["ip", "netns", "add", &netns], lab::cmd::CONFIG_TIMEOUT)?;
            let mut list = plugged(&name);
            list.push(netns.clone());
            std::fs::write(plugged_path(&name), list.join("\n"))?;
            let pools: Vec<&str> = pool.iter().map(String::as_str).collect();
            let conf =
                lab::cni::netconf(&network, &pools, mtu, node.as_deref().unwrap_or(&spec.name));
            let out = plugin(cni_bin_dir).invoke(
                &spec.node_netns(),
                "ADD",
                &container_id(&netns),
                &netns_path(&netns),
                "eth0",
                &conf,
            )?;
            anyhow::ensure!(
                out.success,
                "brindle-cni ADD failed: {}{}",
                out.stdout,
                out.stderr
            );
            println!("{}", out.stdout.trim());
        }
        Cmd::Unplug {
            name,
            container,
            network,
            node,
            cni_bin_dir,
        } => {
            let spec = recorded_spec(&name, None)?;
            let netns = container_netns(&name, &container)?;
            let conf =
                lab::cni::netconf(&network, &[], 1500, node.as_deref().unwrap_or(&spec.name));
            let out = plugin(cni_bin_dir).invoke(
                &spec.node_netns(),
                "DEL",
                &container_id(&netns),
                &netns_path(&netns),
                "eth0",
                &conf,
            )?;
            anyhow::ensure!(
                out.success,
                "brindle-cni DEL failed: {}{}",
                out.stdout,
                out.stderr
            );
            let _ =
                lab::cmd::run_unchecked(&["ip", "netns", "del", &netns], lab::cmd::CONFIG_TIMEOUT);
            let list: Vec<String> = plugged(&name).into_iter().filter(|n| *n != netns).collect();
            std::fs::write(plugged_path(&name), list.join("\n"))?;
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

fn plugged_path(name: &str) -> PathBuf {
    Path::new(RECORD_DIR).join(format!("{name}.containers"))
}

/// Container namespaces `plug` created for the lab.
fn plugged(name: &str) -> Vec<String> {
    std::fs::read_to_string(plugged_path(name))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn container_netns(lab: &str, container: &str) -> Result<String> {
    let ok = !container.is_empty()
        && container.len() <= 16
        && container
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    anyhow::ensure!(
        ok,
        "invalid container {container:?}: 1-16 characters of [a-z0-9]"
    );
    Ok(format!("{lab}-{container}"))
}

/// A container id as runtimes make them: 64 hex characters, here derived from the namespace
/// name (FNV-1a, then the splitmix64 finalizer so that similar names differ in every digit)
/// so that plug and unplug agree; its first 11 characters name the host-side interface, so
/// they must differ between containers.
fn container_id(netns: &str) -> String {
    let hash = |salt: u8| {
        let mut h = netns
            .bytes()
            .chain([salt])
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^ (h >> 31)
    };
    (0..4).map(|i| format!("{:016x}", hash(i))).collect()
}

fn netns_path(netns: &str) -> PathBuf {
    PathBuf::from(format!("/var/run/netns/{netns}"))
}

fn plugin(bin_dir: PathBuf) -> lab::cni::CniPlugin {
    let bin_dir = std::fs::canonicalize(&bin_dir).unwrap_or(bin_dir);
    lab::cni::CniPlugin {
        bin_dir,
        plugin: "brindle-cni".into(),
        env: Vec::new(),
    }
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

fn print_multi_summary(multi: &MultiLab) {
    let spec = multi.spec();
    println!(
        "lab {}: {} nodes on segment {}/{} (bridge br0 in {}){}",
        spec.name,
        spec.nodes - spec.routed_nodes,
        lab::SEGMENT_BASE,
        lab::MULTI_PREFIX_LEN,
        spec.switch_netns(),
        if spec.routed_nodes > 0 {
            format!(
                ", {} behind router {} in subnet {}/{}",
                spec.routed_nodes,
                spec.router_netns(),
                lab::REMOTE_SUBNET_BASE,
                lab::MULTI_PREFIX_LEN
            )
        } else {
            String::new()
        }
    );
    for k in 1..=spec.nodes {
        let Some(node) = multi.node(k) else { continue };
        println!(
            "  node {}: namespace {:<12} eth0 {}/{}  gateway to the other subnet {}",
            node.spec().name,
            node.node_netns(),
            spec.node_ip(k),
            lab::MULTI_PREFIX_LEN,
            if spec.routed_nodes > 0 {
                spec.gateway_for(k).to_string()
            } else {
                "-".into()
            }
        );
        for w in node.workloads() {
            println!("    {:<10} {:<15} {}", w.netns, w.ip, w.host_interface);
        }
    }
}
