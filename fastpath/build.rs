//! Compiles the XDP program (`bpf/brindle_xdp.c`) to a BPF object in OUT_DIR; `xdp.rs` embeds
//! it with `include_bytes!`, so the binary carries its own program and needs no files at run
//! time.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SOURCE: &str = "bpf/brindle_xdp.c";

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BRINDLE_CLANG");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("brindle_xdp.o");
    let clang = env::var("BRINDLE_CLANG").unwrap_or_else(|_| "clang".to_string());

    // <linux/bpf.h> includes <asm/types.h>, which Debian keeps in the multiarch directory of
    // the target (e.g. /usr/include/x86_64-linux-gnu); `-target bpf` does not search it.
    let multiarch_include = format!("-I/usr/include/{}", multiarch_triple());

    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(&multiarch_include)
        .arg("-c")
        .arg(SOURCE)
        .arg("-o")
        .arg(&object)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{clang} failed to compile {SOURCE} ({s}); see the compiler output above"),
        Err(e) => panic!(
            "cannot run `{clang}` to compile the XDP program {SOURCE}: {e}. \
             Install the build dependencies with scripts/deps.sh (clang, llvm, libbpf-dev)."
        ),
    }
}

/// Debian's multiarch tuple for the target being built.
fn multiarch_triple() -> String {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let abi = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_else(|_| "gnu".into());
    match arch.as_str() {
        "arm" => "arm-linux-gnueabihf".to_string(),
        "x86" => "i386-linux-gnu".to_string(),
        "powerpc64" => "powerpc64le-linux-gnu".to_string(),
        _ => format!("{arch}-linux-{abi}"),
    }
}
