//! The run: every side, round after round, through the runner.

use super::*;

/// Runs the four sides and returns the report (written nowhere; see [`write_report`]). A
/// side that fails is listed in `failures` and the others still run; only a setup error
/// before any side (or an interruption) is an `Err`.
pub fn run(opts: &CrossnodeOptions) -> Result<CrossnodeReport, BenchError> {
    if !opts.brindle_node.is_file() {
        return Err(BenchError::Run(format!(
            "brindle-node {} is not a file",
            opts.brindle_node.display()
        )));
    }
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io_err(format!("creating {}", opts.work_dir.display())))?;
    let tag = pid_tag(5);
    let mut report = CrossnodeReport {
        frame_size: opts.frame_size,
        duration_secs: opts.duration.as_secs_f64(),
        pings: opts.pings,
        generator_cpu: GENERATOR_CPU,
        node_mode: opts.node_mode.clone(),
        node_cpus: opts.node_cpus,
        ncpus: stats::online_cpus(),
        rounds: opts.rounds,
        kernel_ipip_method: None,
        load_average_before: LoadAverage::read().and_then(|l| l.averages()),
        load_average_after: None,
        kernel_plain: None,
        kernel_ipip: None,
        brindle_plain: None,
        brindle_ipip: None,
        ratios: CrossRatios::default(),
        failures: Vec::new(),
    };
    let mut sides: Vec<SideRun> = Side::ALL
        .into_iter()
        .map(|side| SideRun {
            opts,
            side,
            tag: &tag,
            kernel_ipip_method: None,
        })
        .collect();
    let run = runner::interleave(
        "crossnode",
        &mut sides,
        opts.rounds,
        || match cmd::interrupted() {
            true => Err(BenchError::Run("interrupted by a signal".into())),
            false => Ok(()),
        },
    )?;
    report.kernel_ipip_method = sides
        .iter()
        .find(|s| s.side == Side::new(Forwarder::Kernel, Encap::Ipip))
        .and_then(|s| s.kernel_ipip_method);
    report.failures = (run.failures.into_iter())
        .map(|f| SideFailure {
            side: Side::ALL
                .into_iter()
                .find(|s| s.name() == f.side)
                .map_or("?", |s| s.name()),
            round: f.round,
            error: f.error,
        })
        .collect();
    let passed = run.passed;
    for (side, rounds) in Side::ALL.into_iter().zip(passed) {
        let combined = rounds.and_then(combine_rounds);
        match (side.forwarder, side.encap) {
            (Forwarder::Kernel, Encap::Plain) => report.kernel_plain = combined,
            (Forwarder::Kernel, Encap::Ipip) => report.kernel_ipip = combined,
            (Forwarder::Brindle, Encap::Plain) => report.brindle_plain = combined,
            (Forwarder::Brindle, Encap::Ipip) => report.brindle_ipip = combined,
        }
    }
    report.load_average_after = LoadAverage::read().and_then(|l| l.averages());
    report.ratios = cross_ratios(&report);
    Ok(report)
}

/// One side as the runner runs it, round after round. Its lab and nodes are brought up, its
/// path proven and everything torn down within [`run_side_in`].
pub(super) struct SideRun<'a> {
    pub(super) opts: &'a CrossnodeOptions,
    pub(super) side: Side,
    pub(super) tag: &'a str,
    /// How the kernel's IPIP side encapsulated, as its last round found.
    pub(super) kernel_ipip_method: Option<KernelIpip>,
}

impl runner::Side for SideRun<'_> {
    type Up = ();
    type Measured = CrossSide;
    type Error = BenchError;

    fn name(&self) -> String {
        self.side.name().to_string()
    }

    fn bring_up(&mut self) -> Result<(), BenchError> {
        Ok(())
    }

    fn measure(&mut self, _: &mut ()) -> Result<CrossSide, BenchError> {
        let mut method = None;
        let outcome = run_side_in(self.opts, self.side, self.tag, &mut method);
        if method.is_some() {
            self.kernel_ipip_method = method;
        }
        outcome
    }
}
