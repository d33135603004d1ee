//! One side of a comparison (the kernel or brindle in a lab, our BGP speaker or BIRD), and
//! how the benchmarks run their sides: bring up, prove the path, measure, tear down; several
//! sides in interleaved rounds, so that drift on the machine hits every side alike.

use std::fmt::Display;

/// A side the benchmark brings up, proves, measures and tears down, once per round.
pub trait Side {
    /// What is running while the side is up (a lab, a node, a daemon).
    type Up;
    type Measured;
    type Error: Display;

    /// The side's name in progress lines and failures (`kernel_plain`, `bird`).
    fn name(&self) -> String;

    fn bring_up(&mut self) -> Result<Self::Up, Self::Error>;

    /// Shows that traffic takes the path under test (a capture, a counter, a session up)
    /// before anything is measured.
    fn prove_path(&mut self, _up: &mut Self::Up) -> Result<(), Self::Error> {
        Ok(())
    }

    fn measure(&mut self, up: &mut Self::Up) -> Result<Self::Measured, Self::Error>;

    /// Stops what `bring_up` started; by default dropping it does (labs remove their
    /// namespaces on drop).
    fn tear_down(&mut self, up: Self::Up) -> Result<(), Self::Error> {
        drop(up);
        Ok(())
    }
}

/// One round of `side`: torn down whether or not the proof and the measurement succeed; the
/// first error wins.
pub fn run_once<S: Side>(side: &mut S) -> Result<S::Measured, S::Error> {
    let mut up = side.bring_up()?;
    let measured = side
        .prove_path(&mut up)
        .and_then(|()| side.measure(&mut up));
    let down = side.tear_down(up);
    let measured = measured?;
    down?;
    Ok(measured)
}

/// A round a side failed in; the side is not run again after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub side: String,
    pub round: usize,
    pub error: String,
}

/// What the rounds of every side gave: per side (in the order given) its measurements, or
/// `None` once it failed; and the failures.
#[derive(Debug)]
pub struct Interleaved<M> {
    pub passed: Vec<Option<Vec<M>>>,
    pub failures: Vec<Failure>,
}

/// `rounds` rounds of every side in turn (round 1 of each, then round 2 of each, ...). A side
/// that fails is reported and left out of the later rounds; the others go on. `stop` is asked
/// before each side's round (a signal) and ends the run with its error.
pub fn interleave<S: Side, E>(
    name: &str,
    sides: &mut [S],
    rounds: usize,
    stop: impl Fn() -> Result<(), E>,
) -> Result<Interleaved<S::Measured>, E> {
    let mut passed: Vec<Option<Vec<S::Measured>>> =
        sides.iter().map(|_| Some(Vec::new())).collect();
    let mut failures = Vec::new();
    let mut progress = crate::progress::Progress::new(name, rounds * sides.len());
    for round in 1..=rounds {
        for (side, results) in sides.iter_mut().zip(passed.iter_mut()) {
            stop()?;
            let Some(done) = results.as_mut() else {
                continue;
            };
            progress.step(&format!("round {round}/{rounds}: {}", side.name()));
            match run_once(side) {
                Ok(measured) => done.push(measured),
                Err(e) => {
                    eprintln!("{name}: {} failed in round {round}: {e}", side.name());
                    failures.push(Failure {
                        side: side.name(),
                        round,
                        error: e.to_string(),
                    });
                    *results = None;
                }
            }
        }
    }
    progress.finish();
    Ok(Interleaved { passed, failures })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Records its life cycle; fails where told to.
    struct Scripted<'a> {
        name: &'static str,
        log: &'a RefCell<Vec<String>>,
        fail_proof_in_round: Option<usize>,
        round: usize,
    }

    impl Side for Scripted<'_> {
        type Up = usize;
        type Measured = usize;
        type Error = String;

        fn name(&self) -> String {
            self.name.to_string()
        }

        fn bring_up(&mut self) -> Result<usize, String> {
            self.round += 1;
            self.log.borrow_mut().push(format!("up {}", self.name));
            Ok(self.round)
        }

        fn prove_path(&mut self, up: &mut usize) -> Result<(), String> {
            match self.fail_proof_in_round {
                Some(r) if r == *up => Err(format!("{} took another path", self.name)),
                _ => Ok(()),
            }
        }

        fn measure(&mut self, up: &mut usize) -> Result<usize, String> {
            self.log.borrow_mut().push(format!("measure {}", self.name));
            Ok(*up * 10)
        }

        fn tear_down(&mut self, _up: usize) -> Result<(), String> {
            self.log.borrow_mut().push(format!("down {}", self.name));
            Ok(())
        }
    }

    #[test]
    fn sides_run_in_interleaved_rounds_and_a_failed_side_is_left_out_after_it() {
        let log = RefCell::new(Vec::new());
        let side = |name, fail| Scripted {
            name,
            log: &log,
            fail_proof_in_round: fail,
            round: 0,
        };
        let mut sides = [side("kernel", None), side("brindle", Some(2))];
        let run = interleave("test", &mut sides, 3, || Ok::<(), ()>(())).unwrap();
        assert_eq!(run.passed, vec![Some(vec![10, 20, 30]), None]);
        assert_eq!(
            run.failures,
            vec![Failure {
                side: "brindle".into(),
                round: 2,
                error: "brindle took another path".into()
            }]
        );
        // Torn down after a failed proof too, and never measured without a proof.
        assert_eq!(
            log.borrow()[..8],
            [
                "up kernel",
                "measure kernel",
                "down kernel",
                "up brindle",
                "measure brindle",
                "down brindle",
                "up kernel",
                "measure kernel"
            ]
        );
        assert_eq!(
            log.borrow()[8..11],
            ["down kernel", "up brindle", "down brindle"]
        );
        assert_eq!(log.borrow().len(), 14, "{:?}", log.borrow());
    }

    #[test]
    fn a_stop_ends_the_run_with_its_error() {
        let log = RefCell::new(Vec::new());
        let mut sides = [Scripted {
            name: "kernel",
            log: &log,
            fail_proof_in_round: None,
            round: 0,
        }];
        let err = interleave("test", &mut sides, 2, || Err("interrupted")).unwrap_err();
        assert_eq!(err, "interrupted");
        assert!(log.borrow().is_empty());
    }
}
