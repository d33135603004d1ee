//! The run: every lab, kernel side first, then brindle's.

use super::*;

/// Runs every scenario of every lab, kernel then brindle per lab. A scenario that fails on
/// one side is reported with the error and the run goes on; only invalid options and an
/// interruption are an `Err`.
pub fn run(opts: &ScenarioOptions) -> Result<ScenariosReport, BenchError> {
    opts.validate()?;
    if !opts.brindle_node().is_file() {
        return Err(BenchError::Run(format!(
            "brindle-node {} is not a file",
            opts.brindle_node().display()
        )));
    }
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    let started = Instant::now();
    let scenarios = opts.scenarios();
    let mut results: Vec<ScenarioResult> = scenarios
        .iter()
        .map(|s| ScenarioResult {
            lab: s.lab,
            path: s.path,
            test: s.test,
            kernel: None,
            brindle: None,
            kernel_error: None,
            brindle_error: None,
            ratios: Metrics::new(),
        })
        .collect();
    let mut progress = Progress::new("scenarios", scenarios.len() * 2);
    let mut ipip_method = None;
    let load_average_before = LoadAverage::read().map(|l| l.minutes());
    let mut labs = Vec::new();
    for &kind in &opts.labs {
        let indices: Vec<usize> = (0..scenarios.len())
            .filter(|&i| scenarios[i].lab == kind)
            .collect();
        if indices.is_empty() {
            continue;
        }
        labs.push(LabRun::new(kind, opts.wiring));
        for forwarding in [Forwarding::Kernel, Forwarding::Brindle] {
            let side = side_name(forwarding);
            let dir = opts.work_dir.join(format!("{}-{side}", kind.name()));
            let lab = bring_up(opts, kind, forwarding, &dir, &mut ipip_method);
            let mut lab = match lab {
                Ok(lab) => Some(lab),
                Err(e) => {
                    eprintln!("scenarios: {} {side} lab failed: {e}", kind.name());
                    for &i in &indices {
                        progress.step(&format!("{} {side} (lab failed)", scenarios[i].label()));
                        *error_slot(&mut results[i], forwarding) = Some(format!("lab: {e}"));
                    }
                    None
                }
            };
            let Some(running) = lab.as_mut() else {
                continue;
            };
            for &i in &indices {
                if cmd::interrupted() {
                    return Err(BenchError::Run("interrupted by a signal".into()));
                }
                let scenario = scenarios[i];
                progress.step(&format!("{} {side}", scenario.label()));
                let outcome = running
                    .ends(scenario.path)
                    .and_then(|(from, to)| measure(opts, scenario.test, &from, &to, &dir))
                    .and_then(|m| running.nodes_alive().map(|()| m));
                match outcome {
                    Ok(m) => match forwarding {
                        Forwarding::Kernel => results[i].kernel = Some(m),
                        Forwarding::Brindle => results[i].brindle = Some(m),
                    },
                    Err(e) => {
                        eprintln!("scenarios: {} {side} failed: {e}", scenario.label());
                        *error_slot(&mut results[i], forwarding) = Some(e.to_string());
                    }
                }
            }
            if let Some(running) = lab {
                running.stop();
            }
        }
    }
    progress.finish();
    for r in &mut results {
        if let (Some(k), Some(b)) = (&r.kernel, &r.brindle) {
            r.ratios = ratios(k, b);
        }
    }
    Ok(ScenariosReport {
        quick: opts.quick,
        ncpus: crate::stats::online_cpus(),
        node_mode: opts.node_mode.clone(),
        pings: opts.pings,
        iperf_secs: opts.iperf_secs,
        udp_offered_mbit: opts.udp_mbit,
        udp_datagram_bytes: UDP_DATAGRAM_BYTES,
        http_requests: opts.http_requests,
        http_concurrency: opts.http_concurrency,
        http_secs: opts.http_secs,
        http_file_bytes: HTTP_FILE_BYTES,
        kernel_ipip_method: ipip_method,
        labs,
        load_average_before,
        load_average_after: LoadAverage::read().map(|l| l.minutes()),
        elapsed_secs: started.elapsed().as_secs_f64(),
        scenarios: results,
    })
}

pub(super) fn side_name(forwarding: Forwarding) -> &'static str {
    match forwarding {
        Forwarding::Kernel => "kernel",
        Forwarding::Brindle => "brindle",
    }
}

pub(super) fn error_slot(
    result: &mut ScenarioResult,
    forwarding: Forwarding,
) -> &mut Option<String> {
    match forwarding {
        Forwarding::Kernel => &mut result.kernel_error,
        Forwarding::Brindle => &mut result.brindle_error,
    }
}
