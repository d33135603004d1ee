//! Validating the options, and the run: both sides up, then the interleaved rounds.

use super::*;

/// Validates the options that do not need the machine.
pub fn validate(opts: &PolicyOptions) -> Result<(), BenchError> {
    let invalid = |field, value: String, reason: &str| {
        Err(BenchError::Invalid {
            field,
            value,
            reason: reason.into(),
        })
    };
    if !(1..=20).contains(&opts.rounds) {
        return invalid(
            "rounds",
            opts.rounds.to_string(),
            "must be between 1 and 20",
        );
    }
    if opts.duration.is_zero() || opts.duration > Duration::from_secs(600) {
        return invalid(
            "duration",
            format!("{:?}", opts.duration),
            "must be between 0 and 600 s",
        );
    }
    if !(1..=lab::udp::MAX_BATCH).contains(&opts.batch) {
        return invalid(
            "batch",
            opts.batch.to_string(),
            "must be between 1 and 1024",
        );
    }
    if opts.node_mode != "poll" && opts.node_mode != "interrupt" {
        return invalid(
            "node-mode",
            opts.node_mode.clone(),
            "expected poll or interrupt",
        );
    }
    lab::udp::payload_len(opts.frame_size).map_err(|e| BenchError::Run(e.to_string()))?;
    bench_rules(opts.rules, opts.port).map(|_| ())
}

/// Brings both sides up, proves the policy in force on each, then runs the interleaved rounds:
/// per round and traffic kind, the kernel (brindle-node stopped) then brindle.
pub fn run(opts: &PolicyOptions) -> Result<PolicyReport, BenchError> {
    validate(opts)?;
    let rules = bench_rules(opts.rules, opts.port)?;
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    let loadavg_before = LoadAverage::read().map(|l| l.line).unwrap_or_default();
    let tag = lab::run::pid_tag(5);
    let brindle = BrindleSide::up(&format!("pb{tag}"), opts, &rules)?;
    let kernel = KernelSide::up(&format!("pk{tag}"), &rules, &opts.work_dir, opts.iptables)?;
    let brindle_ends = brindle
        .ends
        .clone()
        .ok_or_else(|| BenchError::Run("no brindle workloads".into()))?;

    brindle.pause(true);
    let kernel_proof = prove_within(&kernel.ends, opts, Duration::from_secs(5), || {
        kernel.denied()
    });
    brindle.pause(false);
    let kernel_proof = kernel_proof?;
    let brindle_proof = prove_within(&brindle_ends, opts, Duration::from_secs(30), || {
        brindle.policy_denied()
    })?;

    let kinds = [("established", FEW_FLOWS), ("new_flows", all_flows())];
    let mut kernel_runs: Vec<Vec<Measured>> = vec![Vec::new(); kinds.len()];
    let mut brindle_runs: Vec<Vec<Measured>> = vec![Vec::new(); kinds.len()];
    for round in 1..=opts.rounds {
        for (i, (kind, flows)) in kinds.iter().enumerate() {
            if cmd::interrupted() {
                return Err(BenchError::Run("interrupted by a signal".into()));
            }
            let established = *flows == FEW_FLOWS;
            brindle.pause(true);
            let k = (if established {
                open_flows(&kernel.ends, opts, *flows)
            } else {
                Ok(())
            })
            .and_then(|()| measure(&kernel.ends, opts, *flows));
            brindle.pause(false);
            let k = k?;
            // The node gets a moment to notice it ran again.
            std::thread::sleep(Duration::from_millis(200));
            if established {
                open_flows(&brindle_ends, opts, *flows)?;
            }
            let b = measure(&brindle_ends, opts, *flows)?;
            eprintln!(
                "round {round}/{} {kind}: kernel {:.0} pps delivered, brindle {:.0}",
                opts.rounds, k.pps_delivered, b.pps_delivered
            );
            kernel_runs[i].push(k);
            brindle_runs[i].push(b);
        }
    }
    let kernel_conntrack_max = kernel.conntrack_max();
    let kinds = kinds
        .iter()
        .zip(kernel_runs.into_iter().zip(brindle_runs))
        .map(|((kind, flows), (k, b))| KindResult::new(kind, *flows, k, b))
        .collect();
    drop(kernel);
    drop(brindle);
    Ok(PolicyReport {
        rules: opts.rules,
        frame_size: opts.frame_size,
        duration_secs: opts.duration.as_secs_f64(),
        rounds: opts.rounds,
        node_mode: opts.node_mode.clone(),
        iptables: opts.iptables,
        generator_cpu: GENERATOR_CPU,
        node_cpu: NODE_CPU,
        ncpus: stats::online_cpus(),
        loadavg_before,
        loadavg_after: LoadAverage::read().map(|l| l.line).unwrap_or_default(),
        kernel_conntrack_max,
        kernel_proof,
        brindle_proof,
        kinds,
    })
}
