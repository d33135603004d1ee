//! The fuzz targets' bodies (issue 14, "Hostile input"), one module per untrusted input the
//! node reads. Each `run` drives the real parsing and validation code and asserts what must
//! hold for every input, not only that nothing panics: a decoded message re-encodes into one
//! that decodes the same, a selector's canonical form parses back to it, every frame has
//! exactly one fate in the counters and what is forwarded is a well-formed frame.
//!
//! The libFuzzer binaries in `fuzz_targets/` call these; `tests/replay.rs` runs the committed
//! corpora and crash regressions through them without libFuzzer, so that `make test` keeps
//! them compiling and passing.

pub mod bgp_message;
pub mod bgp_update;
pub mod cni;
pub mod libnetwork;
pub mod node_toml;
pub mod pipeline;
pub mod resources;
pub mod selector;

/// The target names, in the order `make fuzz` runs them; each is a module above, a binary in
/// `fuzz_targets/` and a directory in `corpus/`.
pub const TARGETS: [&str; 8] = [
    "bgp_message",
    "bgp_update",
    "pipeline",
    "resources",
    "selector",
    "cni",
    "node_toml",
    "libnetwork",
];

/// Runs `target` on one input (for the replay test).
pub fn run(target: &str, data: &[u8]) {
    match target {
        "bgp_message" => bgp_message::run(data),
        "bgp_update" => bgp_update::run(data),
        "pipeline" => pipeline::run(data),
        "resources" => resources::run(data),
        "selector" => selector::run(data),
        "cni" => cni::run(data),
        "node_toml" => node_toml::run(data),
        "libnetwork" => libnetwork::run(data),
        other => panic!("no fuzz target {other:?}"),
    }
}
