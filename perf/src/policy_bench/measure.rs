//! Proving the policy in force with probes, and measuring a flood through it.

use super::*;

pub(super) fn probe(ends: &Ends, port: u16, frame_size: usize) -> Flood {
    Flood {
        src: ends.source_ip,
        dst: ends.sink_ip,
        base_port: port,
        flows: 1,
        frame_size,
        batch: 16,
        duration: Duration::from_secs(2),
        max_packets: PROBE_PACKETS,
        reverse: false,
    }
}

/// Sends allowed then denied probes; `denied_counter` reads the side's denial counter.
pub(super) fn prove(
    ends: &Ends,
    opts: &PolicyOptions,
    mut denied_counter: impl FnMut() -> Result<u64, BenchError>,
) -> Result<EnforcementProof, BenchError> {
    let settle = || std::thread::sleep(Duration::from_millis(300));
    let mut proof = EnforcementProof::default();
    let before = rx_packets(&ends.sink_ns)?;
    proof.allowed_sent = flood_from(
        &ends.source_ns,
        probe(ends, opts.port + PORT_SPAN - 1, opts.frame_size),
    )?
    .sent;
    settle();
    proof.allowed_delivered = rx_packets(&ends.sink_ns)?.saturating_sub(before);
    let denied_before = denied_counter()?;
    let before = rx_packets(&ends.sink_ns)?;
    proof.denied_sent = flood_from(
        &ends.source_ns,
        probe(ends, denied_port(opts.port), opts.frame_size),
    )?
    .sent;
    settle();
    proof.denied_delivered = rx_packets(&ends.sink_ns)?.saturating_sub(before);
    proof.denied_counted = denied_counter()?.saturating_sub(denied_before);
    Ok(proof)
}

/// Proves until it holds or `within` passes (brindle applies the policy asynchronously; until
/// then its sink's profile admits nothing from the source network, so allowed probes fail).
pub(super) fn prove_within(
    ends: &Ends,
    opts: &PolicyOptions,
    within: Duration,
    mut denied_counter: impl FnMut() -> Result<u64, BenchError>,
) -> Result<EnforcementProof, BenchError> {
    let deadline = Instant::now() + within;
    loop {
        let proof = prove(ends, opts, &mut denied_counter)?;
        if proof.holds() {
            return Ok(proof);
        }
        if Instant::now() >= deadline || cmd::interrupted() {
            return Err(BenchError::Run(format!(
                "the policy is not in force: {proof:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Opens each of `flows` flows in both directions: one packet from the source, then one reply
/// from the sink. Linux conntrack calls a UDP flow ESTABLISHED only once it has seen a reply;
/// until then every packet of a one-way flow is NEW and walks the rules (brindle's flow table
/// lets a one-way flow's later packets through either way; the replies cost it nothing more).
pub(super) fn open_flows(ends: &Ends, opts: &PolicyOptions, flows: u64) -> Result<(), BenchError> {
    let flood = Flood {
        src: ends.source_ip,
        dst: ends.sink_ip,
        base_port: opts.port,
        flows,
        frame_size: opts.frame_size,
        batch: 16,
        duration: Duration::from_secs(2),
        max_packets: flows,
        reverse: false,
    };
    flood_from(&ends.source_ns, flood)?;
    std::thread::sleep(Duration::from_millis(50));
    let reply = Flood {
        src: ends.sink_ip,
        dst: ends.source_ip,
        reverse: true,
        ..flood
    };
    flood_from(&ends.sink_ns, reply)?;
    std::thread::sleep(Duration::from_millis(50));
    Ok(())
}

/// One timed run of `flows` flows from the source to the sink.
pub(super) fn measure(
    ends: &Ends,
    opts: &PolicyOptions,
    flows: u64,
) -> Result<Measured, BenchError> {
    let before = rx_packets(&ends.sink_ns)?;
    let cpu_before = CpuTimes::read().map_err(io_err("reading /proc/stat"))?;
    let sent = flood_from(
        &ends.source_ns,
        Flood {
            src: ends.source_ip,
            dst: ends.sink_ip,
            base_port: opts.port,
            flows,
            frame_size: opts.frame_size,
            batch: opts.batch,
            duration: opts.duration,
            max_packets: u64::MAX,
            reverse: false,
        },
    )?;
    let cpu_after = CpuTimes::read().map_err(io_err("reading /proc/stat"))?;
    // Packets still in flight (queues, rings) arrive within a moment.
    std::thread::sleep(Duration::from_millis(300));
    let delivered = rx_packets(&ends.sink_ns)?.saturating_sub(before);
    let secs = if sent.secs > 0.0 { sent.secs } else { f64::NAN };
    Ok(Measured {
        pps_offered: sent.sent as f64 / secs,
        pps_delivered: delivered as f64 / secs,
        busy_cores: cpu_before.busy_cores_until(&cpu_after, stats::online_cpus()),
        sent: sent.sent,
        delivered,
        secs: sent.secs,
        refused_batches: sent.refused_batches,
    })
}
