//! `brindlectl`: calicoctl's verbs over brindle's datastore (see `cli::ctl`).
//!
//! Output goes to stdout, failures to stderr with exit code 1, as calicoctl does.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut out = String::new();
    let result = cli::ctl::run(std::env::args_os(), &mut out);
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (`brindlectl get ... | head`) is not worth a panic.
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
