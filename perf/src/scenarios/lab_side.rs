//! The lab's own wiring: the kernel baseline, or brindle in file mode.

use super::*;

/// brindle's side in file mode on the lab's own wiring, or the kernel baseline.
pub(super) fn bring_up_lab(
    opts: &ScenarioOptions,
    kind: LabKind,
    forwarding: Forwarding,
    name: String,
    dir: &Path,
    ipip_method: &mut Option<baseline::KernelIpip>,
) -> Result<RunningLab, BenchError> {
    let mut running = match kind {
        LabKind::OneNode => {
            let spec = LabSpec {
                forwarding,
                offloads: lab_offloads(kind, forwarding),
                workload_port: workload_port(opts.wiring, forwarding),
                ..LabSpec::new(name, 2)
            };
            let lab = Lab::up(&spec)?;
            let mut nodes = Vec::new();
            if forwarding == Forwarding::Brindle {
                let socket = dir.join("node1.sock");
                let config = lab.node_config_toml(&opts.node_mode, &socket);
                nodes.push(start_node(opts, &lab.node_netns(), &config, dir, 1)?);
            }
            RunningLab {
                nodes,
                containers: Containers::default(),
                pods: Vec::new(),
                kernel_policy: None,
                built: Built::One(lab),
                kind,
            }
        }
        LabKind::L2 | LabKind::Ipip => {
            let spec = MultiLabSpec {
                offloads: lab_offloads(kind, forwarding),
                workload_port: workload_port(opts.wiring, forwarding),
                ..multi_spec(kind, name)
            };
            let lab = MultiLab::up(&spec)?;
            let encap = if kind == LabKind::Ipip {
                Encap::Ipip
            } else {
                Encap::Plain
            };
            if kind == LabKind::Ipip {
                set_ipip_workload_mtu(&spec)?;
            }
            let mut running = RunningLab {
                nodes: Vec::new(),
                containers: Containers::default(),
                pods: Vec::new(),
                kernel_policy: None,
                built: Built::Multi(lab),
                kind,
            };
            let Built::Multi(lab) = &running.built else {
                unreachable!("just built as a multi-node lab")
            };
            match forwarding {
                Forwarding::Kernel => {
                    for (k, other) in [(1, 2), (2, 1)] {
                        run_all(&baseline::kernel_forwarding_commands(
                            &spec, k, other, encap,
                        ))?;
                    }
                    if encap == Encap::Ipip {
                        *ipip_method = Some(baseline::setup_kernel_ipip(&spec, dir, &opts.clang)?);
                    }
                }
                Forwarding::Brindle => {
                    for (k, other) in [(1, 2), (2, 1)] {
                        let socket = dir.join(format!("node{k}.sock"));
                        let base = lab
                            .node_config_toml(k, &opts.node_mode, &socket)
                            .ok_or_else(|| BenchError::Run(format!("the lab has no node {k}")))?;
                        let config = format!(
                            "{base}{}{}{}",
                            crossnode::brindle_route_toml(&spec, other, encap),
                            subnet_route_toml(&spec, k, other),
                            node_route_toml(&spec, k, other)
                        );
                        let ns = spec.node_spec(k).node_netns();
                        running.nodes.push(start_node(opts, &ns, &config, dir, k)?);
                    }
                }
            }
            running
        }
    };
    if forwarding == Forwarding::Kernel
        && KernelPolicy::for_wiring(opts.wiring) == KernelPolicy::Iptables
    {
        running.kernel_policy = Some(KernelPolicyRules::install(
            policed_nodes(&running.built),
            dir,
        )?);
    }
    Ok(running)
}

/// Every node of a lab with its workloads (the lab's own wiring), for the kernel's rules.
pub(super) fn policed_nodes(built: &Built) -> Vec<PolicedNode> {
    let node = |lab: &Lab| PolicedNode {
        netns: lab.node_netns(),
        workloads: lab
            .workloads()
            .iter()
            .map(|w| (w.host_interface.clone(), w.ip))
            .collect(),
    };
    match built {
        Built::One(lab) => vec![node(lab)],
        Built::Multi(multi) => (1..=multi.spec().nodes)
            .filter_map(|k| multi.node(k))
            .map(node)
            .collect(),
    }
}

/// Calico gives the workload veth the pool's MTU: 1480 for IPIP, so that a full-size packet
/// still fits the 1500-byte uplink once wrapped.
pub(super) fn set_ipip_workload_mtu(spec: &MultiLabSpec) -> Result<(), BenchError> {
    let mtu = IPIP_WORKLOAD_MTU.to_string();
    for k in 1..=spec.nodes {
        let node = spec.node_spec(k);
        for i in 1..=spec.workloads {
            let cali = node.host_interface(i);
            // A TAP workload has no host end: its eth0 is all there is.
            if spec.workload_port == lab::WorkloadPort::Veth {
                cmd::run(
                    &[
                        "ip",
                        "-n",
                        &node.node_netns(),
                        "link",
                        "set",
                        &cali,
                        "mtu",
                        &mtu,
                    ],
                    cmd::CONFIG_TIMEOUT,
                )?;
            }
            cmd::run(
                &[
                    "ip",
                    "-n",
                    &node.workload_netns(i),
                    "link",
                    "set",
                    "eth0",
                    "mtu",
                    &mtu,
                ],
                cmd::CONFIG_TIMEOUT,
            )?;
        }
    }
    Ok(())
}

/// Node `k`'s route to node `other`'s own address, when they share the segment: a file-mode
/// node routes only what it is told (agent mode learns it from its peers), and pod-to-node
/// needs it.
pub fn node_route_toml(spec: &MultiLabSpec, k: usize, other: usize) -> String {
    if spec.is_routed(k) != spec.is_routed(other) {
        return String::new();
    }
    let ip = spec.node_ip(other);
    format!("\n[[route]]\nprefix = \"{ip}/32\"\nvia = \"{ip}\"\n")
}

/// Node `k`'s route to node `other`'s subnet through the router, when they are in different
/// subnets: the IPIP route's `via` must be reachable (see control's RouteConfig).
pub fn subnet_route_toml(spec: &MultiLabSpec, k: usize, other: usize) -> String {
    if spec.is_routed(k) == spec.is_routed(other) {
        return String::new();
    }
    let other_ip = u32::from(spec.node_ip(other));
    let mask = u32::MAX << (32 - lab::MULTI_PREFIX_LEN);
    let subnet = Ipv4Addr::from(other_ip & mask);
    format!(
        "\n[[route]]\nprefix = \"{subnet}/{}\"\nvia = \"{}\"\nencap = \"none\"\n",
        lab::MULTI_PREFIX_LEN,
        spec.gateway_for(k)
    )
}

/// Starts brindle-node `k` in `ns` with `config`; ready once its control socket answers.
pub(super) fn start_node(
    opts: &ScenarioOptions,
    ns: &str,
    config: &str,
    dir: &Path,
    k: usize,
) -> Result<NodeProcess, BenchError> {
    let config_path = dir.join(format!("node{k}.toml"));
    std::fs::write(&config_path, config)
        .map_err(io_err(format!("writing {}", config_path.display())))?;
    Ok(node_launch(opts, ns, dir, k)
        .config(&config_path)
        .start(NODE_READY_TIMEOUT)?)
}

/// brindle-node `k` in `ns`, its output to `node<k>.log` and its control socket
/// `node<k>.sock` in `dir`.
pub(super) fn node_launch(opts: &ScenarioOptions, ns: &str, dir: &Path, k: usize) -> NodeLaunch {
    NodeLaunch::new(ns, opts.brindle_node(), dir.join(format!("node{k}.log")))
        .label(format!("brindle-node {k}"))
        .control_socket(dir.join(format!("node{k}.sock")))
}

pub(super) fn run_all(commands: &[Vec<String>]) -> Result<(), BenchError> {
    for command in commands {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        cmd::run(&args, cmd::CONFIG_TIMEOUT)?;
    }
    Ok(())
}

pub(super) fn exec(
    ns: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<std::process::Output, CmdError> {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(args);
    cmd::run_interruptible(&full, timeout)
}
