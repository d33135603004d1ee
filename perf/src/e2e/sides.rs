//! Each side brought up for its measurement: the kernel lab, or brindle-node in a brindle lab.

use super::*;

pub(super) fn run_kernel_side(
    opts: &E2eOptions,
    sizes: &[usize],
    name: &str,
) -> Result<(SideResult, SideExtras), BenchError> {
    let mut spec = LabSpec::new(name, 2);
    spec.forwarding = Forwarding::Kernel;
    let lab = Lab::up(&spec)?;
    wait_until_reachable(&lab, Duration::from_secs(5), || Ok(()))?;
    measure_all(&lab, opts, sizes, "kernel")
    // `lab` is dropped here, and on every early return above: namespaces removed.
}

pub(super) fn run_brindle_side(
    opts: &E2eOptions,
    sizes: &[usize],
    brindle_node: &Path,
    name: &str,
) -> Result<(SideResult, SideExtras), BenchError> {
    let spec = LabSpec::new(name, 2);
    let lab = Lab::up(&spec)?;
    let config_path = opts.work_dir.join("node.toml");
    let socket = opts.work_dir.join("node.sock");
    let log_path = opts.work_dir.join("node.log");
    let config = lab.node_config_toml_pinned(&opts.node_mode, &socket, &[NODE_CPU]);
    std::fs::write(&config_path, config)
        .map_err(io_err(format!("writing {}", config_path.display())))?;
    let mut node = NodeLaunch::new(lab.node_netns(), brindle_node, &log_path)
        .config(&config_path)
        .spawn()?;

    wait_until_reachable(&lab, NODE_READY_TIMEOUT, || {
        Ok(node.check_running("before forwarding")?)
    })?;
    let result = measure_all(&lab, opts, sizes, "brindle");
    let status = node.stop(NODE_STOP_GRACE);
    let result = result?;
    if let Some(status) = status {
        if !status.success() {
            eprintln!(
                "brindle-node exited with {status} after SIGTERM; log: {}",
                log_path.display()
            );
        }
    }
    Ok(result)
}

/// Pings w1 -> w2 once per second-bounded attempt until a reply comes back or `timeout`
/// passes; `still_ok` is consulted between attempts (e.g. to notice a dead node).
pub(super) fn wait_until_reachable(
    lab: &Lab,
    timeout: Duration,
    mut still_ok: impl FnMut() -> Result<(), BenchError>,
) -> Result<(), BenchError> {
    let (w1, w2) = two_workloads(lab)?;
    let target = w2.1.to_string();
    let started = Instant::now();
    let max_attempts = timeout.as_secs().max(1) * 4;
    for _ in 0..max_attempts {
        if lab::ping::answers(&w1.0, w2.1)? {
            return Ok(());
        }
        still_ok()?;
        if started.elapsed() >= timeout || cmd::interrupted() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(BenchError::Run(format!(
        "{} -> {target} not reachable within {timeout:?}",
        w1.0
    )))
}

pub(super) type NsAndIp = (String, Ipv4Addr);

pub(super) fn two_workloads(lab: &Lab) -> Result<(NsAndIp, NsAndIp), BenchError> {
    match (lab.workload(1), lab.workload(2)) {
        (Some(a), Some(b)) => Ok(((a.netns.clone(), a.ip), (b.netns.clone(), b.ip))),
        _ => Err(BenchError::Run("the lab needs two workloads".into())),
    }
}
