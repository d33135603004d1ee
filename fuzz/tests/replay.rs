//! Every committed input (the seed corpora and the crash regressions) run through its
//! target's body, without libFuzzer: keeps the targets compiling and their invariants holding
//! on real traffic and on every input a fuzzer ever crashed on.

use std::path::Path;

#[test]
fn every_committed_input_holds_its_targets_invariants() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for target in brindle_fuzz::TARGETS {
        let mut inputs = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                eprintln!("{target}: {}", path.display());
                brindle_fuzz::run(target, &data);
                inputs += 1;
            }
        }
        // A target without seeds would be fuzzed from nothing.
        assert!(inputs >= 3, "{target}: {inputs} committed inputs");
    }
}
