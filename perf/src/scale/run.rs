//! The idle-workload run: the lab and the idle veths built once, every mode measured in rounds.

use super::*;

/// Builds the lab and the idle veths, runs every mode, takes everything down.
pub fn run(opts: &ScaleOptions) -> Result<ScaleReport, BenchError> {
    if opts.idle == 0 || opts.idle > MAX_IDLE {
        return Err(BenchError::Run(format!(
            "invalid idle {}: between 1 and {MAX_IDLE}",
            opts.idle
        )));
    }
    if opts.rounds == 0 || opts.rounds > 20 {
        return Err(BenchError::Run(format!(
            "invalid rounds {}: between 1 and 20",
            opts.rounds
        )));
    }
    for mode in &opts.modes {
        if mode != "poll" && mode != "interrupt" {
            return Err(BenchError::Run(format!(
                "invalid mode {mode:?}: expected poll or interrupt"
            )));
        }
    }
    if !opts.brindle_node.is_file() {
        return Err(BenchError::Run(format!(
            "brindle-node {} is not a file",
            opts.brindle_node.display()
        )));
    }
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    let name = format!("sq{}", std::process::id() % 100_000);
    let lab = Lab::up(&LabSpec::new(&name, 2))?;
    let idle = IdleWorkloads::up(&lab, opts.idle)?;
    let mut modes = Vec::new();
    for mode in &opts.modes {
        let mut few = Vec::new();
        let mut many = Vec::new();
        for _ in 0..opts.rounds {
            few.push(measure(&lab, &idle, 0, mode, opts)?);
            many.push(measure(&lab, &idle, opts.idle, mode, opts)?);
        }
        let few_pps = mean(few.iter().map(|r| r.pps_delivered));
        let many_pps = mean(many.iter().map(|r| r.pps_delivered));
        modes.push(ModeResult {
            mode: mode.clone(),
            few,
            many,
            few_pps_delivered: few_pps,
            many_pps_delivered: many_pps,
            ratio_many_to_few: ratio(Some(many_pps), Some(few_pps)),
        });
    }
    drop(idle);
    drop(lab);
    Ok(ScaleReport {
        frame_size: opts.frame_size,
        duration_secs: opts.duration.as_secs_f64(),
        idle_workloads: opts.idle,
        rounds: opts.rounds,
        generator_cpu: e2e::GENERATOR_CPU,
        node_cpu: NODE_CPU,
        modes,
    })
}

/// One round of brindle-node with `idle` idle workloads attached.
fn measure(
    lab: &Lab,
    workloads: &IdleWorkloads,
    idle: usize,
    mode: &str,
    opts: &ScaleOptions,
) -> Result<ScaleRun, BenchError> {
    let run = runner::run_once(&mut NodeWithIdle {
        lab,
        _workloads: workloads,
        idle,
        mode,
        opts,
    })?;
    eprintln!(
        "scale: {mode} idle={idle}: {:.0} pps delivered ({} interfaces attached)",
        run.pps_delivered, run.attached_interfaces
    );
    Ok(run)
}
