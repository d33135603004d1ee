//! One measurement: brindle-node started with or without the idle workloads, UDP w1 -> w2.

use super::*;

/// Starts brindle-node with the two workloads and `idle` idle ones, waits until every port is
/// attached and w1 reaches w2, measures UDP w1 -> w2, stops the node.
pub(super) fn measure(
    lab: &Lab,
    _idle: &IdleWorkloads,
    idle: usize,
    mode: &str,
    opts: &ScaleOptions,
) -> Result<ScaleRun, BenchError> {
    let config_path = opts.work_dir.join("node.toml");
    let socket = opts.work_dir.join("node.sock");
    let log_path = opts.work_dir.join(format!("node-{mode}-{idle}.log"));
    let cores: &[usize] = if mode == "poll" { &[NODE_CPU] } else { &[] };
    let mut config = lab.node_config_toml_pinned(mode, &socket, cores);
    config.push_str(&idle_workloads_toml(idle));
    std::fs::write(&config_path, config)
        .map_err(io_err(format!("writing {}", config_path.display())))?;
    let mut node = NodeLaunch::new(lab.node_netns(), &opts.brindle_node, &log_path)
        .config(&config_path)
        .spawn()?;
    // The two workloads, the uplink and every idle workload.
    let expected = 3 + idle;
    let started = Instant::now();
    let attached = loop {
        let n = attached_interfaces(&lab.node_netns())?;
        if n >= expected && reachable(lab)? {
            break n;
        }
        node.check_running("before forwarding")?;
        if started.elapsed() > NODE_READY_TIMEOUT || cmd::interrupted() {
            return Err(BenchError::Run(format!(
                "brindle-node attached {n} of {expected} interfaces within {NODE_READY_TIMEOUT:?}; log: {}",
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (w1, w2) = match (lab.workload(1), lab.workload(2)) {
        (Some(a), Some(b)) => (a.clone(), b.clone()),
        _ => return Err(BenchError::Run("the lab needs two workloads".into())),
    };
    let ready = opts
        .work_dir
        .join(format!("sink-ready-{}", lab.spec().name));
    let params = UdpParams {
        perf_exe: opts.perf_exe.clone(),
        duration: opts.duration,
        frame_size: opts.frame_size,
        batch: opts.batch,
        port: opts.port,
    };
    let result = e2e::udp_between(&w1.netns, &w2.netns, w2.ip, &ready, &params);
    node.stop(NODE_STOP_GRACE);
    let (send, sink, _) = result?;
    let secs = if send.secs > 0.0 { send.secs } else { f64::NAN };
    let run = ScaleRun {
        idle_workloads: idle,
        pps_offered: send.sent as f64 / secs,
        pps_delivered: sink.received as f64 / secs,
        sent: send.sent,
        received: sink.received,
        attached_interfaces: attached,
    };
    eprintln!(
        "scale: {mode} idle={idle}: {:.0} pps delivered ({} interfaces attached)",
        run.pps_delivered, attached
    );
    Ok(run)
}

/// Interfaces in `netns` with an XDP program attached (`ip -o link` shows `prog/xdp`).
pub(crate) fn attached_interfaces(netns: &str) -> Result<usize, BenchError> {
    let out = cmd::run(&["ip", "-o", "-n", netns, "link", "show"], CONFIG_TIMEOUT)?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("prog/xdp"))
        .count())
}

pub(super) fn reachable(lab: &Lab) -> Result<bool, BenchError> {
    let (Some(w1), Some(w2)) = (lab.workload(1), lab.workload(2)) else {
        return Err(BenchError::Run("the lab needs two workloads".into()));
    };
    Ok(lab::ping::answers(&w1.netns, w2.ip)?)
}
