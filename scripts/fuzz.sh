#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain (issue 14, "Hostile input"); `make fuzz`.
#
# The targets in fuzz/ are built with the sanitizer-coverage instrumentation libFuzzer feeds on
# (rustc's stable `-C passes=sancov-module` and LLVM's sanitizer-coverage options, the flags
# cargo-fuzz passes with `--sanitizer none`) and linked with libFuzzer from the libfuzzer-sys
# crate; no nightly compiler, no cargo-fuzz. Each target runs for FUZZ_SECONDS from the
# committed seeds and crash regressions, at nice 19, and a table of executions, coverage and
# crashes is printed (and written to $FUZZ_WORK/report.md).
#
#   FUZZ_SECONDS=60       time per target
#   FUZZ_WORK=...         where the growing corpora, crash artifacts and logs go
#                         (default: <target dir>/fuzz-work; kept between runs)
#   scripts/fuzz.sh [TARGET...]   default: every target
#
# A crash, timeout (FUZZ_TIMEOUT, 10 s an input) or out-of-memory (FUZZ_RSS_MB, 2048) stops
# that target and leaves its input in $FUZZ_WORK/artifacts/TARGET/; the script then exits 1.
# To make it a regression: copy the input to fuzz/regressions/TARGET/, fix the code, and
# `cargo test --release --manifest-path fuzz/Cargo.toml` replays it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
timeout=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
cargo=${CARGO:-cargo}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
work=${FUZZ_WORK:-$target_dir/fuzz-work}
triple=$(rustc -vV | sed -n 's/^host: //p')
all_targets=(bgp_message bgp_update pipeline resources selector cni node_toml libnetwork)
targets=("${@:-${all_targets[@]}}")

# The instrumentation cargo-fuzz adds with `-s none`: 8-bit edge counters with their PC table
# (coverage), comparison tracing (so the fuzzer learns the constants parsers compare with) and
# stack depth; `--cfg fuzzing` as cargo-fuzz sets it. `--target` keeps these flags off build
# scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing"
echo "building the fuzz targets (stable $(rustc --version | cut -d' ' -f2), sanitizer coverage)"
nice -n 19 "$cargo" build --manifest-path fuzz/Cargo.toml --profile fuzz --target "$triple" \
    --target-dir "$target_dir" --bins
bin_dir=$target_dir/$triple/fuzz

failed=0
rows=()
for t in "${targets[@]}"; do
    corpus=$work/corpus/$t
    artifacts=$work/artifacts/$t
    log=$work/logs/$t.log
    mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
    regressions=()
    [ -d "fuzz/regressions/$t" ] && regressions=("fuzz/regressions/$t")
    echo "fuzzing $t for ${seconds}s (log: $log)"
    marker=$(mktemp)
    set +e
    # The first directory receives what the fuzzer finds; the committed ones only seed it.
    nice -n 19 "$bin_dir/$t" "$corpus" "fuzz/corpus/$t" "${regressions[@]}" \
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_mb" \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    # The last status line: "#N  DONE cov: C ft: F corp: ..." (or the line before a crash).
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    corp=$(grep -oE 'corp: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    crashes=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) -newer "$marker" | wc -l)
    rm -f "$marker"
    if [ "$status" -ne 0 ]; then
        failed=1
        crashes=$((crashes > 0 ? crashes : 1))
        grep -E 'ERROR: libFuzzer|panicked at|Test unit written' "$log" | head -5 || true
    fi
    rows+=("| $t | ${execs:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $crashes |")
done

report=$work/report.md
{
    echo "fuzzing, ${seconds}s a target, $(date -u +%Y-%m-%dT%H:%MZ), $(rustc --version | cut -d' ' -f1-2)"
    echo
    echo "| target | executions | coverage (edges) | features | corpus | crashes |"
    echo "|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
} >"$report"
echo
cat "$report"
exit "$failed"
