//! brindle-node on both nodes: its routes and configuration.

use super::*;

/// Node `k`'s `[[route]]` to node `other`'s block via node `other`.
pub fn brindle_route_toml(spec: &MultiLabSpec, other: usize, encap: Encap) -> String {
    let encap = match encap {
        Encap::Plain => "none",
        Encap::Ipip => "ipip",
    };
    format!(
        "\n[[route]]\nprefix = \"{}\"\nvia = \"{}\"\nencap = \"{encap}\"\n",
        spec.node_block(other),
        spec.node_ip(other)
    )
}

/// A node config with the worker pinned to `cpu`: the `cores` key goes first, before the
/// `[[workload]]` tables of `lab_config`, and the routes last.
pub fn brindle_node_toml(lab_config: &str, cpu: Option<usize>, routes: &str) -> String {
    let cores = cpu.map(|c| format!("cores = [{c}]\n")).unwrap_or_default();
    format!("{cores}{lab_config}{routes}")
}

pub(super) fn start_brindle_node(
    opts: &CrossnodeOptions,
    lab: &MultiLab,
    dir: &Path,
    k: usize,
    other: usize,
    encap: Encap,
) -> Result<NodeProcess, BenchError> {
    let socket = dir.join(format!("node{k}.sock"));
    let lab_config = lab
        .node_config_toml(k, &opts.node_mode, &socket)
        .ok_or_else(|| BenchError::Run(format!("the lab has no node {k}")))?;
    let config = brindle_node_toml(
        &lab_config,
        opts.node_cpus[k - 1],
        &brindle_route_toml(lab.spec(), other, encap),
    );
    let config_path = dir.join(format!("node{k}.toml"));
    std::fs::write(&config_path, config)
        .map_err(io_err(format!("writing {}", config_path.display())))?;
    let log_path = dir.join(format!("node{k}.log"));
    let ns = lab.spec().node_spec(k).node_netns();
    Ok(NodeLaunch::new(ns, &opts.brindle_node, log_path)
        .label(format!("brindle-node {k}"))
        .config(&config_path)
        .control_socket(socket)
        .start(NODE_READY_TIMEOUT)?)
}

pub(super) fn fastpath_counter(stats: &serde_json::Value, name: &str) -> Option<u64> {
    stats.get("fastpath")?.get(name)?.as_u64()
}
