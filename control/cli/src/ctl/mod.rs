//! `brindlectl`: a calicoctl-compatible command-line client over the datastore.
//!
//! - `config`: which datastore (`CalicoAPIConfig` file, else the environment).
//! - `store`: resources in the datastore with libcalico-go's semantics and error texts.
//! - `crud`: `create|replace|apply|delete|get|patch|label` and their messages; `manifest_files`
//!   (`-f DIR`, `-R`); `gotemplate` (`get -o go-template=`).
//! - `ipam`: `ipam show|release --ip`; `ipam_check` (and its report, `ipam_report`),
//!   `ipam_release` (`--from-report`), `ipam_config` (`configure`, `show --show-configuration`),
//!   `ipam_split`; `node`: `node status`, `node checksystem`; `node_diags` (with `tarball`);
//!   `version` (`--poll`).
//! - `datastore_migrate`: `datastore migrate lock|unlock|export|import`, over `cluster_info`.
//! - `table`: the boxed tables of `ipam show`.
//! - `convert`: Calico v1 manifests to v3; `node_run`: `node run` (start brindle-node here).
//!
//! [`run`] parses the arguments and runs one command, writing what calicoctl prints on
//! stdout into a string and returning the failure message (for stderr, exit code 1).

pub mod cluster_info;
pub mod config;
pub mod convert;
pub mod crud;
pub mod datastore_migrate;
pub mod gotemplate;
pub mod initialize;
pub mod ipam;
pub mod ipam_check;
pub mod ipam_config;
pub mod ipam_release;
pub mod ipam_report;
pub mod ipam_split;
pub mod manifest_files;
pub mod node;
pub mod node_diags;
pub mod node_run;
pub mod store;
pub mod table;
pub mod tarball;
pub mod version;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use clap::{Parser, Subcommand};
use datastore::Datastore;

/// A failed command: the message calicoctl would print (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CtlError(pub String);

impl CtlError {
    pub fn new(message: impl Into<String>) -> CtlError {
        CtlError(message.into())
    }
}

/// The datastore of one invocation, opened on first use (after the manifest has been read
/// and checked, so that a bad file fails without touching the store).
pub struct Session {
    config_path: Option<PathBuf>,
    store: OnceLock<Arc<dyn Datastore>>,
}

impl Session {
    pub fn new(config_path: Option<PathBuf>) -> Session {
        Session {
            config_path,
            store: OnceLock::new(),
        }
    }

    pub fn store_arc(&self) -> Result<Arc<dyn Datastore>, CtlError> {
        if let Some(ds) = self.store.get() {
            return Ok(ds.clone());
        }
        let fail = |e: &dyn std::fmt::Display| {
            CtlError::new(format!("Failed to create Calico API client: {e}"))
        };
        let cfg = config::load(self.config_path.as_deref()).map_err(|e| fail(&e))?;
        let ds = datastore::open(&cfg).map_err(|e| fail(&e))?;
        Ok(self.store.get_or_init(|| ds).clone())
    }

    /// The datastore configuration (config file, else environment) without opening it.
    pub fn datastore_config(&self) -> Result<datastore::DatastoreConfig, CtlError> {
        config::load(self.config_path.as_deref())
            .map_err(|e| CtlError::new(format!("Failed to execute command: invalid config: {e}")))
    }

    pub fn store(&self) -> Result<&dyn Datastore, CtlError> {
        self.store_arc()?;
        self.store
            .get()
            .map(|ds| ds.as_ref())
            .ok_or_else(|| CtlError::new("datastore not open"))
    }
}

#[derive(Parser)]
#[command(
    name = "brindlectl",
    version,
    about = "Manage brindle (Calico-compatible) resources and IPAM"
)]
pub struct Cli {
    /// CalicoAPIConfig file (default /etc/brindle/brindlectl.cfg if it exists, else the
    /// environment: DATASTORE_TYPE, ETCD_ENDPOINTS, ETCD_*_FILE, BRINDLE_EMBEDDED_PATH).
    #[arg(short = 'c', long, global = true)]
    config: Option<PathBuf>,
    /// Namespace of namespaced resources (default: `default`).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create resources from a file or stdin (`-f -`); fails for existing ones.
    Create {
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// With `-f DIR`: the manifests of its subdirectories too.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// With `-f DIR`: skip files without resources instead of failing.
        #[arg(long)]
        skip_empty: bool,
        /// Skip over resources that already exist.
        #[arg(long)]
        skip_exists: bool,
    },
    /// Check resources from a file or stdin as create would, without a datastore.
    Validate {
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// With `-f DIR`: the manifests of its subdirectories too.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// With `-f DIR`: skip files without resources instead of failing.
        #[arg(long)]
        skip_empty: bool,
    },
    /// Replace existing resources from a file or stdin.
    Replace {
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// With `-f DIR`: the manifests of its subdirectories too.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// With `-f DIR`: skip files without resources instead of failing.
        #[arg(long)]
        skip_empty: bool,
    },
    /// Create or update resources from a file or stdin.
    Apply {
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// With `-f DIR`: the manifests of its subdirectories too.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// With `-f DIR`: skip files without resources instead of failing.
        #[arg(long)]
        skip_empty: bool,
    },
    /// Delete resources by file or by KIND NAME...
    Delete {
        #[arg(short = 'f', long = "filename")]
        file: Option<String>,
        /// With `-f DIR`: the manifests of its subdirectories too.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// With `-f DIR`: skip files without resources instead of failing.
        #[arg(long)]
        skip_empty: bool,
        kind: Option<String>,
        names: Vec<String>,
        /// Skip over resources that do not exist.
        #[arg(short = 's', long)]
        skip_not_exists: bool,
    },
    /// Print resources by file or by KIND [NAME...].
    Get {
        #[arg(short = 'f', long = "filename")]
        file: Option<String>,
        /// With `-f DIR`: the manifests of its subdirectories too.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// With `-f DIR`: skip files without resources instead of failing.
        #[arg(long)]
        skip_empty: bool,
        kind: Option<String>,
        names: Vec<String>,
        /// ps, wide, yaml, json, custom-columns=..., go-template=..., go-template-file=...
        #[arg(short = 'o', long, default_value = "ps")]
        output: String,
        /// List namespaced resources of every namespace (`-a` too, as calicoctl accepts).
        #[arg(short = 'A', long, short_alias = 'a')]
        all_namespaces: bool,
        /// Strip cluster-specific metadata (namespace, uid, resourceVersion,
        /// creationTimestamp) from resources fetched by name.
        #[arg(long)]
        export: bool,
    },
    /// Patch a resource in place with a JSON merge patch.
    Patch {
        kind: String,
        name: String,
        #[arg(short = 'p', long)]
        patch: String,
        /// Patch type; brindle applies every patch as a JSON merge patch (RFC 7386), which
        /// is what calicoctl's default (strategic) does for Calico resources.
        #[arg(short = 't', long = "type", default_value = "strategic")]
        patch_type: String,
    },
    /// Set (key=value) or remove (key --remove) a label.
    Label {
        kind: String,
        name: String,
        label: String,
        #[arg(long)]
        overwrite: bool,
        #[arg(long)]
        remove: bool,
    },
    /// IP address management.
    Ipam {
        #[command(subcommand)]
        command: IpamCommand,
    },
    /// Datastore management (calicoctl's `datastore migrate`).
    Datastore {
        #[command(subcommand)]
        command: DatastoreCommand,
    },
    /// This node.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Convert Calico v1 manifests (apiVersion: v1) to projectcalico.org/v3.
    Convert {
        #[arg(short = 'f', long = "filename")]
        file: String,
        /// yaml or json.
        #[arg(short = 'o', long, default_value = "yaml")]
        output: String,
    },
    /// Client and cluster versions.
    Version {
        /// The client version only.
        #[arg(long)]
        client: bool,
        /// Re-read the cluster information every DURATION (Go syntax: 5s, 1m30s) and print
        /// it again when it changes, until interrupted.
        #[arg(long)]
        poll: Option<String>,
    },
}

#[derive(Subcommand)]
enum IpamCommand {
    /// Usage per pool (and block), one address, or the IPAM configuration.
    Show {
        #[arg(long)]
        show_blocks: bool,
        #[arg(long)]
        ip: Option<String>,
        /// The IPAM configuration (StrictAffinity, AutoAllocateBlocks).
        #[arg(long)]
        show_configuration: bool,
    },
    /// Release one address, or the leaked addresses and handles of `ipam check` reports.
    Release {
        #[arg(long)]
        ip: Option<String>,
        /// A report written by `ipam check -o` (repeatable: only what every report calls
        /// leaked is released).
        #[arg(long = "from-report")]
        from_report: Vec<String>,
        /// Release although the datastore is not locked or the report is from another version.
        #[arg(long)]
        force: bool,
    },
    /// Report leaked addresses and inconsistent IPAM records.
    Check {
        /// Print every address checked.
        #[arg(long)]
        show_all_ips: bool,
        /// Print every address that is leaked or not allocated properly.
        #[arg(long)]
        show_problem_ips: bool,
        /// Write the report `ipam release --from-report` takes to this file.
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
    /// Set IPAM configuration.
    Configure {
        /// true or false: addresses of a block only for its node (no borrowing).
        #[arg(long = "strictaffinity")]
        strict_affinity: Option<String>,
        /// calicoctl's; refused (brindle's IPAM has no such setting).
        #[arg(long)]
        max_blocks_per_host: Option<String>,
        /// calicoctl's; refused (brindle's IPAM has no such setting).
        #[arg(long)]
        kubevirt_ip_persistence: Option<String>,
        /// calicoctl's; refused (brindle's IPAM has no such setting).
        #[arg(long)]
        ip_cooldown_seconds: Option<String>,
    },
    /// Split an IP pool into NUMBER (a power of two) pools; the datastore must be locked.
    Split {
        #[arg(allow_hyphen_values = true)]
        number: String,
        /// CIDR of the pool to split.
        #[arg(long)]
        cidr: Option<String>,
        /// Name of the pool to split.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum DatastoreCommand {
    /// Move a datastore's contents into another (empty) one.
    Migrate {
        #[command(subcommand)]
        command: MigrateCommand,
    },
}

#[derive(Subcommand)]
enum MigrateCommand {
    /// Lock the datastore (ClusterInformation datastoreReady: false).
    Lock,
    /// Unlock the datastore (datastoreReady: true).
    Unlock,
    /// Write every resource and the IPAM records to stdout (the datastore must be locked).
    Export,
    /// Read an export into this (empty) datastore; it is left locked.
    Import {
        #[arg(short = 'f', long = "filename")]
        file: String,
    },
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Whether brindle-node runs here, and its BGP peers.
    Status {
        /// The node's health endpoint.
        #[arg(long, default_value = node::DEFAULT_HEALTH_ADDR)]
        health: std::net::SocketAddr,
        /// The node's control socket.
        #[arg(long, default_value = crate::node_client::DEFAULT_CONTROL_SOCKET)]
        control_socket: PathBuf,
        /// The pid file `node run` wrote.
        #[arg(long, default_value = node_run::DEFAULT_PID_FILE)]
        pid_file: PathBuf,
    },
    /// Start brindle-node on this host (a systemd unit where systemd runs, else detached
    /// with a pid file and a log), configured as calicoctl's `node run` configures calico-node.
    Run {
        /// This node's IPv4 address (ADDR or ADDR/LEN), or `autodetect`.
        #[arg(long)]
        ip: Option<String>,
        /// first-found, interface=REGEX[,REGEX...] or can-reach=DEST.
        #[arg(long, default_value = "first-found")]
        ip_autodetection_method: String,
        /// This node's AS number (plain or asdot); default: the cluster's.
        #[arg(long = "as")]
        as_number: Option<String>,
        /// The node's name (default: the hostname).
        #[arg(long)]
        name: Option<String>,
        /// Do not create the default IP pool.
        #[arg(long)]
        no_default_ippools: bool,
        /// bird (BGP) or none (policy only).
        #[arg(long, default_value = "bird")]
        backend: String,
        /// The brindle-node binary (default: next to brindlectl, else on PATH).
        #[arg(long)]
        node_binary: Option<PathBuf>,
        /// Where the detached node's log (brindle-node.log) goes.
        #[arg(long, default_value = node_run::DEFAULT_LOG_DIR)]
        log_dir: PathBuf,
        /// The detached node's pid file.
        #[arg(long, default_value = node_run::DEFAULT_PID_FILE)]
        pid_file: PathBuf,
        /// Print the command that would start the node, and start nothing.
        #[arg(long)]
        dryrun: bool,
        /// Run the node in the foreground, for an init system to supervise.
        #[arg(long)]
        init_system: bool,
        /// Seconds to wait for the detached node's control socket.
        #[arg(long, default_value_t = 30)]
        start_timeout: u64,
    },
    /// Gather this host's diagnostics (routes, links, XDP/BPF, the node's stats and BGP
    /// peers, logs) into a .tar.gz in a temp directory and print its path.
    Diags {
        /// The directory of brindle-node's logs (where `node run` writes them).
        #[arg(long, default_value = node_run::DEFAULT_LOG_DIR)]
        log_dir: PathBuf,
        /// The node's control socket.
        #[arg(long, default_value = crate::node_client::DEFAULT_CONTROL_SOCKET)]
        control_socket: PathBuf,
    },
    /// Kernel, uplink driver, NIC profile (hw-profiles/) and every unmet requirement;
    /// exit code 1 when one is unmet.
    Checksystem {
        /// The uplink (default: the interface of the default route).
        #[arg(long)]
        interface: Option<String>,
        /// A node.toml whose `[hw]` table overrides the profile.
        #[arg(long)]
        node_config: Option<PathBuf>,
    },
}

/// Runs brindlectl with `args` (including the program name). What goes to stdout is
/// appended to `out`; `Err` holds the message for stderr (exit code 1).
pub fn run<I, T>(args: I, out: &mut String) -> Result<(), CtlError>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            out.push_str(&e.to_string());
            return Ok(());
        }
        Err(e) => return Err(CtlError::new(e.to_string().trim_end().to_string())),
    };
    let session = Session::new(cli.config);
    let ns = cli.namespace.as_deref();
    match cli.command {
        Command::Create {
            file,
            recursive,
            skip_empty,
            skip_exists,
        } => crud::create_or_apply(
            &session,
            files(&file, recursive, skip_empty),
            ns,
            crud::Write::Create { skip_exists },
            out,
        ),
        Command::Apply {
            file,
            recursive,
            skip_empty,
        } => crud::create_or_apply(
            &session,
            files(&file, recursive, skip_empty),
            ns,
            crud::Write::Apply,
            out,
        ),
        Command::Replace {
            file,
            recursive,
            skip_empty,
        } => crud::replace(&session, files(&file, recursive, skip_empty), ns, out),
        Command::Validate {
            file,
            recursive,
            skip_empty,
        } => crud::validate(files(&file, recursive, skip_empty), ns, out),
        Command::Delete {
            file,
            recursive,
            skip_empty,
            kind,
            names,
            skip_not_exists,
        } => {
            let target = target(
                file.as_deref().map(|f| files(f, recursive, skip_empty)),
                kind.as_deref(),
                &names,
            )?;
            crud::delete(&session, target, ns, skip_not_exists, out)
        }
        Command::Get {
            file,
            recursive,
            skip_empty,
            kind,
            names,
            output,
            all_namespaces,
            export,
        } => {
            let output: crud::Output = output
                .parse()
                .map_err(|e| CtlError::new(format!("Failed to get resources: {e}")))?;
            let target = target(
                file.as_deref().map(|f| files(f, recursive, skip_empty)),
                kind.as_deref(),
                &names,
            )?;
            crud::get(&session, target, ns, all_namespaces, export, output, out)
        }
        Command::Patch {
            kind,
            name,
            patch,
            patch_type,
        } => {
            if !matches!(patch_type.as_str(), "strategic" | "merge") {
                return Err(CtlError::new(format!(
                    "Failed to execute command: patch type '{patch_type}' is not supported (brindle applies strategic and merge patches as JSON merge patches)"
                )));
            }
            crud::patch(&session, &kind, &name, &patch, ns, out)
        }
        Command::Label {
            kind,
            name,
            label,
            overwrite,
            remove,
        } => {
            let args = crud::LabelArgs {
                kind: &kind,
                name: &name,
                label: &label,
                overwrite,
                remove,
            };
            crud::label(&session, args, ns, out)
        }
        Command::Ipam { command } => run_ipam(&session, command, out),
        Command::Datastore {
            command: DatastoreCommand::Migrate { command },
        } => {
            let ds = session.store()?;
            match command {
                MigrateCommand::Lock => datastore_migrate::lock(ds, out),
                MigrateCommand::Unlock => datastore_migrate::unlock(ds, out),
                MigrateCommand::Export => datastore_migrate::export(ds, out),
                MigrateCommand::Import { file } => datastore_migrate::import(ds, &file, out),
            }
        }
        Command::Node { command } => match command {
            NodeCommand::Status {
                health,
                control_socket,
                pid_file,
            } => node::status(health, &control_socket, &pid_file, out),
            NodeCommand::Run {
                ip,
                ip_autodetection_method,
                as_number,
                name,
                no_default_ippools,
                backend,
                node_binary,
                log_dir,
                pid_file,
                dryrun,
                init_system,
                start_timeout,
            } => {
                let args = node_run::RunArgs {
                    ip,
                    ip_autodetection_method,
                    as_number,
                    name,
                    no_default_ippools,
                    backend,
                    node_binary,
                    log_dir,
                    pid_file,
                    dryrun,
                    init_system,
                    start_timeout: std::time::Duration::from_secs(start_timeout),
                };
                node_run::run(&args, session.datastore_config(), out)
            }
            NodeCommand::Diags {
                log_dir,
                control_socket,
            } => node_diags::diags(&log_dir, &control_socket, out),
            NodeCommand::Checksystem {
                interface,
                node_config,
            } => node::checksystem(interface.as_deref(), node_config.as_deref(), out),
        },
        Command::Convert { file, output } => convert::convert(&file, &output, out),
        Command::Version { client, poll } => {
            let every = poll.as_deref().map(version::parse_duration).transpose()?;
            match every {
                Some(every) if !every.is_zero() && !client => version::poll(session.store(), every),
                _ => version::version(session.store(), client, out),
            }
        }
    }
}

fn run_ipam(session: &Session, command: IpamCommand, out: &mut String) -> Result<(), CtlError> {
    match command {
        IpamCommand::Show { ip: Some(ip), .. } => ipam::show_ip(session.store_arc()?, &ip, out),
        // calicoctl's precedence: --ip, --show-blocks, --show-configuration.
        IpamCommand::Show {
            show_blocks: true, ..
        } => ipam::show(session.store_arc()?, true, out),
        IpamCommand::Show {
            show_configuration: true,
            ..
        } => ipam_config::show_configuration(session.store_arc()?, out),
        IpamCommand::Show { .. } => ipam::show(session.store_arc()?, false, out),
        IpamCommand::Release {
            from_report, force, ..
        } if !from_report.is_empty() => {
            ipam_release::release_from_reports(session.store_arc()?, &from_report, force, out)
        }
        IpamCommand::Release { ip: Some(ip), .. } => ipam::release(session.store_arc()?, &ip, out),
        IpamCommand::Release { .. } => Err(CtlError::new(
            "Error: give the address to release (--ip=ADDR) or a report (--from-report=FILE)",
        )),
        IpamCommand::Check {
            show_all_ips,
            show_problem_ips,
            output,
        } => {
            let args = ipam_check::CheckArgs {
                show_all_ips,
                show_problem_ips,
                output: output.as_deref(),
            };
            ipam_check::check(session.store_arc()?, &args, out)
        }
        IpamCommand::Configure {
            strict_affinity,
            max_blocks_per_host,
            kubevirt_ip_persistence,
            ip_cooldown_seconds,
        } => {
            let given: Vec<(&str, &str)> = [
                ("max-blocks-per-host", max_blocks_per_host.as_deref()),
                (
                    "kubevirt-ip-persistence",
                    kubevirt_ip_persistence.as_deref(),
                ),
                ("ip-cooldown-seconds", ip_cooldown_seconds.as_deref()),
            ]
            .into_iter()
            .filter_map(|(flag, v)| v.map(|v| (flag, v)))
            .collect();
            ipam_config::configure(
                session.store_arc()?,
                strict_affinity.as_deref(),
                &given,
                out,
            )
        }
        IpamCommand::Split { number, cidr, name } => ipam_split::split(
            session.store()?,
            &number,
            cidr.as_deref(),
            name.as_deref(),
            out,
        ),
    }
}

fn files(path: &str, recursive: bool, skip_empty: bool) -> crud::Files<'_> {
    crud::Files {
        path,
        recursive,
        skip_empty,
    }
}

fn target<'a>(
    file: Option<crud::Files<'a>>,
    kind: Option<&'a str>,
    names: &'a [String],
) -> Result<crud::Target<'a>, CtlError> {
    match (file, kind) {
        (Some(_), Some(_)) => Err(CtlError::new(
            "Failed to execute command: give either -f FILE or KIND [NAME...], not both",
        )),
        (Some(f), None) => Ok(crud::Target::File(f)),
        (None, Some(k)) => Ok(crud::Target::Named { kind: k, names }),
        (None, None) => Err(CtlError::new(
            "Failed to execute command: a resource type (KIND) or -f FILE is required",
        )),
    }
}
