//! brindle's side wired as a cluster: agent-mode nodes, workloads plugged in by brindle-cni.

use super::*;

/// brindle's side wired as a cluster is: agent-mode nodes sharing one embedded store, the
/// workloads plugged in by brindle-cni (two on the one node, or one per node). Node 1 starts
/// first: it creates the default pool, as the first calico-node does.
pub(super) fn bring_up_agent(
    opts: &ScenarioOptions,
    kind: LabKind,
    name: String,
    dir: &Path,
) -> Result<RunningLab, BenchError> {
    let store = dir.join("store.redb");
    // A store left by an earlier run in this directory would bring its pools and endpoints.
    let _ = std::fs::remove_file(&store);
    // One registry for every node: brindle-cni runs in each node's namespace but on this
    // host, and the interface names it registers are unique.
    let tap_dir = (opts.wiring == Wiring::BrindleCniTap).then(|| dir.join("taps"));
    let (built, node_count, pods_per_node) = match kind {
        LabKind::OneNode => {
            let spec = LabSpec {
                forwarding: Forwarding::Brindle,
                ..LabSpec::new(name.clone(), 0)
            };
            (Built::One(Lab::up(&spec)?), 1, 2)
        }
        LabKind::L2 | LabKind::Ipip => {
            let spec = MultiLabSpec {
                workloads: 0,
                ..multi_spec(kind, name.clone())
            };
            (Built::Multi(MultiLab::up(&spec)?), 2, 1)
        }
    };
    let node_netns = |built: &Built, k: usize| match built {
        Built::One(lab) => lab.node_netns(),
        Built::Multi(lab) => lab.spec().node_spec(k).node_netns(),
    };
    let mut running = RunningLab {
        nodes: Vec::new(),
        containers: Containers::default(),
        pods: Vec::new(),
        kernel_policy: None,
        built,
        kind,
    };
    let node_name = |k: usize| format!("{name}n{k}");
    for k in 1..=node_count {
        let paths = AgentPaths {
            store: store.clone(),
            control_socket: dir.join(format!("node{k}.sock")),
            tap_dir: tap_dir.clone(),
        };
        let env = agent_env(kind, &node_name(k), &opts.node_mode, &paths);
        let ns = node_netns(&running.built, k);
        running.nodes.push(
            node_launch(opts, &ns, dir, k)
                .envs(env)
                .start(NODE_READY_TIMEOUT)?,
        );
    }
    let cni = CniPlugin {
        bin_dir: opts.bin_dir.clone(),
        plugin: "brindle-cni".into(),
        env: datastore_env(&store),
    };
    for k in 1..=node_count {
        let ns = node_netns(&running.built, k);
        let mut pods = Vec::new();
        for _ in 0..pods_per_node {
            pods.push(plug_pod(
                &cni,
                &mut running.containers,
                &name,
                &ns,
                &node_name(k),
                kind,
                tap_dir.as_deref(),
            )?);
        }
        running.pods.push(pods);
    }
    Ok(running)
}

/// A container namespace `<lab>-c<n>` plugged into node `node_name` by brindle-cni ADD, run
/// in the node's namespace as a runtime runs it.
pub(super) fn plug_pod(
    cni: &CniPlugin,
    containers: &mut Containers,
    lab_name: &str,
    node_ns: &str,
    node_name: &str,
    kind: LabKind,
    tap_dir: Option<&Path>,
) -> Result<Endpoint, BenchError> {
    let ns = format!("{lab_name}-c{}", containers.0.len() + 1);
    cmd::run(&["ip", "netns", "add", &ns], cmd::CONFIG_TIMEOUT)?;
    containers.0.push(ns.clone());
    cmd::run(
        &["ip", "-n", &ns, "link", "set", "lo", "up"],
        cmd::CONFIG_TIMEOUT,
    )?;
    let netns_path = Path::new("/var/run/netns").join(&ns);
    let netconf = scenario_netconf(kind, node_name, tap_dir);
    let out = cni
        .invoke(
            node_ns,
            "ADD",
            &format!("{ns}-0123456789ab"),
            &netns_path,
            "eth0",
            &netconf,
        )
        .map_err(io_err(format!("running brindle-cni ADD for {ns}")))?;
    if !out.success {
        return Err(BenchError::Run(format!(
            "brindle-cni ADD of {ns} on {node_name} failed: {}{}",
            out.stdout.trim(),
            out.stderr.trim()
        )));
    }
    Ok(Endpoint {
        ip: cni_result_address(&out.stdout)?,
        netns: ns,
    })
}

/// The workload's address in a CNI ADD result (`ips[0].address`, `a.b.c.d/32`).
pub fn cni_result_address(result: &str) -> Result<Ipv4Addr, BenchError> {
    let doc: serde_json::Value = serde_json::from_str(result)
        .map_err(|e| parse_err("brindle-cni", format!("result is not JSON: {e}")))?;
    let address = doc
        .pointer("/ips/0/address")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| parse_err("brindle-cni", "no ips[0].address in the result"))?;
    let ip = address.split('/').next().unwrap_or_default();
    ip.parse().map_err(|_| {
        parse_err(
            "brindle-cni",
            format!("ips[0].address {address:?} is not an IPv4 address"),
        )
    })
}
