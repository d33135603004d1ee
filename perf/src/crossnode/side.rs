//! One side: its lab built, made to forward, its path proven, measured and taken down.

use super::*;

/// Runs one side alone ([`run`] runs all four): builds its lab, makes it forward, proves the
/// path, measures, takes the lab down.
pub fn run_side(opts: &CrossnodeOptions, side: Side) -> Result<CrossSide, BenchError> {
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    run_side_in(opts, side, &pid_tag(5), &mut None)
}

/// [`run_side`] with the lab name's tag; `method` is set as soon as the kernel IPIP side has
/// chosen its mechanism, so that a failure later still reports it.
pub(super) fn run_side_in(
    opts: &CrossnodeOptions,
    side: Side,
    tag: &str,
    method: &mut Option<KernelIpip>,
) -> Result<CrossSide, BenchError> {
    let forwarding = match side.forwarder {
        Forwarder::Kernel => lab::Forwarding::Kernel,
        Forwarder::Brindle => lab::Forwarding::Brindle,
    };
    let spec = MultiLabSpec {
        offloads: crate::baseline::offloads_for(forwarding),
        ..MultiLabSpec::new(format!("{}{tag}", side.lab_prefix()), 2, 1)
    };
    let lab = MultiLab::up(&spec)?;
    let path = WorkloadPath::of(&lab)?;
    let dir = opts.work_dir.join(side.name());
    std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
    // Declared after `lab`, so dropped (stopped) before the lab goes down.
    let mut nodes: Vec<NodeProcess> = Vec::new();
    match side.forwarder {
        Forwarder::Kernel => {
            for (k, other) in [(1, 2), (2, 1)] {
                run_all(&kernel_forwarding_commands(&spec, k, other, side.encap))?;
            }
            if side.encap == Encap::Ipip {
                *method = Some(setup_kernel_ipip(&spec, &dir, &opts.clang)?);
            }
        }
        Forwarder::Brindle => {
            for (k, other) in [(1, 2), (2, 1)] {
                nodes.push(start_brindle_node(opts, &lab, &dir, k, other, side.encap)?);
            }
        }
    }
    let timeout = match side.forwarder {
        Forwarder::Kernel => Duration::from_secs(5),
        Forwarder::Brindle => NODE_READY_TIMEOUT,
    };
    wait_until_reachable(&path, timeout, || {
        for node in nodes.iter_mut() {
            node.check_running("before forwarding")?;
        }
        Ok(())
    })?;

    let (capture_ipip, capture_bare) = capture_path_pings(&path, &dir)?;
    let node1 = spec.node_spec(1).node_netns();
    let node2 = spec.node_spec(2).node_netns();
    let uplink_before = link_tx(&node1, UPLINK_IF)?;
    let (send, sink, busy_cores) = udp_run(&path, opts, &dir)?;
    let uplink_after = link_tx(&node1, UPLINK_IF)?;
    let mut evidence = PathEvidence {
        uplink_tx_packets: uplink_after.0.saturating_sub(uplink_before.0),
        capture_ipip,
        capture_bare,
        ..PathEvidence::default()
    };
    evidence.uplink_tx_bytes_per_packet = (evidence.uplink_tx_packets > 0).then(|| {
        uplink_after.1.saturating_sub(uplink_before.1) as f64 / evidence.uplink_tx_packets as f64
    });
    if *method == Some(KernelIpip::Device) {
        evidence.tunnel_tx_packets_node1 = Some(link_tx(&node1, TUNNEL_IF)?.0);
        evidence.tunnel_rx_packets_node2 = Some(link_rx_packets(&node2, TUNNEL_IF)?);
    }
    if side.forwarder == Forwarder::Brindle {
        let node1_stats = nodes[0].stats()?;
        let node2_stats = nodes[1].stats()?;
        evidence.brindle_forwarded_node1 = fastpath_counter(&node1_stats, "forwarded");
        evidence.brindle_ipip_encapsulated_node1 =
            fastpath_counter(&node1_stats, "ipip_encapsulated");
        evidence.brindle_ipip_decapsulated_node2 =
            fastpath_counter(&node2_stats, "ipip_decapsulated");
    }
    check_path(side, opts.frame_size, sink.received, &evidence).map_err(|reason| {
        BenchError::WrongPath {
            side: side.name(),
            reason,
        }
    })?;

    let (latencies, pings_sent) = ping_run(&path, opts)?;
    for (i, node) in nodes.into_iter().enumerate() {
        if let Some(status) = node.stop(NODE_STOP_GRACE) {
            if !status.success() {
                eprintln!(
                    "brindle-node {} exited with {status} after SIGTERM; log in {}",
                    i + 1,
                    dir.display()
                );
            }
        }
    }
    let secs = if send.secs > 0.0 { send.secs } else { f64::NAN };
    let pps_delivered = sink.received as f64 / secs;
    let forwarding = match side.forwarder {
        Forwarder::Kernel => "kernel",
        Forwarder::Brindle => "brindle",
    };
    let measured = SideResult {
        forwarding,
        lab: spec.name.clone(),
        pps_offered: send.sent as f64 / secs,
        pps_delivered,
        rtt_p50_us: latencies.p50_us(),
        rtt_p99_us: latencies.p99_us(),
        busy_cores,
        pps_per_busy_core: (busy_cores > 0.0).then(|| pps_delivered / busy_cores),
        sent: send.sent,
        received: sink.received,
        generator_secs: send.secs,
        pings_sent,
        ping_replies: latencies.len(),
    };
    Ok(CrossSide {
        side: side.name(),
        encap: side.encap,
        kernel_ipip_method: *method,
        rounds: vec![measured.clone()],
        measured,
        path: evidence,
    })
    // `lab` drops here and on every early return: its namespaces (and with them routes,
    // tunnels, qdiscs and XDP programs) are removed.
}
