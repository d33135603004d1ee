//! The run: the kernel side, then brindle's, each with its sweep of frame sizes.

use super::*;

/// Runs both sides and returns the report (written nowhere; see [`write_report`]).
pub fn run(opts: &E2eOptions) -> Result<E2eReport, BenchError> {
    run_with_sizes(opts, &[])
}

/// [`run`], then in each side's lab one more UDP run per frame size in `sizes` (pps vs
/// packet size; no pings or CPU figures for those).
pub fn run_with_sizes(opts: &E2eOptions, sizes: &[usize]) -> Result<E2eReport, BenchError> {
    if sizes.len() > MAX_SIZES {
        return Err(BenchError::Run(format!(
            "invalid sizes: {} given, at most {MAX_SIZES}",
            sizes.len()
        )));
    }
    for &size in sizes {
        lab::udp::payload_len(size)
            .map_err(|e| BenchError::Run(format!("invalid sizes: {size}: {e}")))?;
        if opts.generator == Generator::Xdp && size < lab::xdpgen::MIN_FRAME {
            return Err(BenchError::Run(format!(
                "invalid sizes: {size}: the xdp generator needs frames of at least {} bytes",
                lab::xdpgen::MIN_FRAME
            )));
        }
    }
    // Fail before the kernel side, not after it.
    if let Some(node) = &opts.brindle_node {
        if !node.is_file() {
            return Err(BenchError::Run(format!(
                "brindle-node {} is not a file",
                node.display()
            )));
        }
    }
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    let tag = lab::run::run_tag(5);
    let sides = 1 + usize::from(opts.brindle_node.is_some()) + usize::from(opts.testpmd.is_some());
    let mut progress = crate::progress::Progress::new("e2e", sides);
    progress.step("kernel side");
    let (kernel, kernel_extras) = runner::run_once(&mut KernelSide {
        opts,
        sizes,
        lab_name: format!("ek{tag}"),
    })?;
    let (brindle, brindle_extras) = match &opts.brindle_node {
        Some(node) => {
            progress.step("brindle side");
            let (side, extras) = runner::run_once(&mut BrindleSide {
                opts,
                sizes,
                brindle_node: node,
                lab_name: format!("eb{tag}"),
            })?;
            (Some(side), extras)
        }
        None => (None, SideExtras::default()),
    };
    let raw_afxdp = match &opts.testpmd {
        Some(testpmd) => {
            progress.step("raw AF_XDP side (dpdk-testpmd)");
            let (side, _) = runner::run_once(&mut RawAfXdpSide {
                opts,
                sizes: &[],
                testpmd,
                lab_name: format!("er{tag}"),
            })?;
            Some(side)
        }
        None => None,
    };
    let raw_ratios = brindle
        .as_ref()
        .zip(raw_afxdp.as_ref())
        .map(|(b, raw)| ratios(raw, b));
    let ratios = brindle.as_ref().map(|b| ratios(&kernel, b));
    let by_size = sizes
        .iter()
        .zip(&kernel_extras.by_size)
        .enumerate()
        .map(|(i, (&frame_size, k))| {
            let b = brindle_extras.by_size.get(i).cloned();
            SizeResult {
                frame_size,
                ratio_pps_delivered: ratio(
                    b.as_ref().map(|b| b.pps_delivered),
                    Some(k.pps_delivered),
                ),
                kernel: k.clone(),
                brindle: b,
            }
        })
        .collect();
    Ok(E2eReport {
        frame_size: opts.frame_size,
        generator: opts.generator,
        duration_secs: opts.duration.as_secs_f64(),
        pings: opts.pings,
        generator_cpu: GENERATOR_CPU,
        node_cpu: NODE_CPU,
        node_mode: opts.node_mode.clone(),
        ncpus: stats::online_cpus(),
        kernel,
        brindle,
        ratios,
        by_size,
        rtt_cdf_kernel: kernel_extras.rtt_cdf,
        rtt_cdf_brindle: brindle_extras.rtt_cdf,
        udp_xdp_kernel: kernel_extras.udp_xdp,
        udp_xdp_brindle: brindle_extras.udp_xdp,
        brindle_node: brindle_extras.node,
        raw_afxdp,
        raw_ratios,
    })
}
