//! One side's measurement: UDP throughput and busy cores, ping latency and its CDF, per frame size.

use super::*;

/// One side's measurements: UDP throughput with CPU accounting, then ping RTTs.
pub fn measure(lab: &Lab, opts: &E2eOptions, side: &'static str) -> Result<SideResult, BenchError> {
    Ok(measure_all(lab, opts, &[], side)?.0)
}

/// Quantiles the CDF is drawn through: every percent, and the tail at 99.9%.
pub(super) fn cdf_quantiles() -> impl Iterator<Item = f64> {
    (0..100).map(|p| f64::from(p) / 100.0).chain([0.999, 1.0])
}

/// [`measure`], then the RTT CDF and one UDP run per extra frame size.
pub(super) fn measure_all(
    lab: &Lab,
    opts: &E2eOptions,
    sizes: &[usize],
    side: &'static str,
) -> Result<(SideResult, SideExtras), BenchError> {
    let (send, sink, busy_cores, udp_xdp) = udp_run_with_generator(lab, opts)?;
    let (latencies, pings_sent) = ping_run(lab, opts)?;
    let rtt_cdf = cdf_quantiles()
        .filter_map(|fraction| {
            let rtt_us = latencies.quantile_us(fraction)?;
            Some(CdfPoint { fraction, rtt_us })
        })
        .collect();
    let mut by_size = Vec::with_capacity(sizes.len());
    for &frame_size in sizes {
        let sized = E2eOptions {
            frame_size,
            ..opts.clone()
        };
        let (send, sink, _, xdp) = udp_run_with_generator(lab, &sized)?;
        let secs = if send.secs > 0.0 { send.secs } else { f64::NAN };
        by_size.push(SizeSide {
            pps_offered: send.sent as f64 / secs,
            pps_delivered: sink.received as f64 / secs,
            sent: send.sent,
            received: sink.received,
            xdp,
        });
    }
    let secs = if send.secs > 0.0 { send.secs } else { f64::NAN };
    let pps_delivered = sink.received as f64 / secs;
    let result = SideResult {
        forwarding: side,
        lab: lab.spec().name.clone(),
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
    Ok((
        result,
        SideExtras {
            by_size,
            rtt_cdf,
            udp_xdp,
            node: None,
        },
    ))
}

/// [`udp_run`] with the generator `opts` asks for; the AF_XDP one adds its details.
pub fn udp_run_with_generator(
    lab: &Lab,
    opts: &E2eOptions,
) -> Result<(SendReport, SinkReport, f64, Option<XdpUdp>), BenchError> {
    if opts.generator == Generator::Socket {
        let (send, sink, busy) = udp_run(lab, opts)?;
        return Ok((send, sink, busy, None));
    }
    let ((w1_ns, _), (w2_ns, w2_ip)) = two_workloads(lab)?;
    let ready = opts
        .work_dir
        .join(format!("sink-ready-{}", lab.spec().name));
    let (send, sink, busy, details) =
        crate::e2e_xdp::xdp_between(&w1_ns, &w2_ns, w2_ip, &ready, &UdpParams::of(opts))?;
    Ok((send, sink, busy, Some(details)))
}

/// Sink in w2, generator in w1 pinned to [`GENERATOR_CPU`]; CPU sampled around the generator.
pub fn udp_run(lab: &Lab, opts: &E2eOptions) -> Result<(SendReport, SinkReport, f64), BenchError> {
    let ((w1_ns, _), (w2_ns, w2_ip)) = two_workloads(lab)?;
    let ready = opts
        .work_dir
        .join(format!("sink-ready-{}", lab.spec().name));
    udp_between(&w1_ns, &w2_ns, w2_ip, &ready, &UdpParams::of(opts))
}

/// `ping -c N -i 0.002` from w1 to w2, pinned like the generator; RTTs from each reply line.
pub fn ping_run(lab: &Lab, opts: &E2eOptions) -> Result<(Latencies, u32), BenchError> {
    let ((w1_ns, _), (_, w2_ip)) = two_workloads(lab)?;
    ping_between(&w1_ns, w2_ip, opts.pings)
}
